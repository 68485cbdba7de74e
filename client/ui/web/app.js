// garden ui's page. Its first view, with no clicks: the server it talks to,
// the models by name, and the charts of one model size, standard and
// deduped side by side (model_panel.js); below, causal unmasking and
// generation (lm.js). Everything comes from gardend through garden ui's
// JSON bridge (api.js).
//
// For tests: window.garden.charts (ECharts instances by element id),
// window.garden.inflight (requests under way) and window.garden.firstView
// (true once the first view's requests have all ended).
import * as api from "./api.js";
import { charts } from "./charts.js";
import { GenerateSection, UnmaskSection } from "./lm.js";
import { ModelColumn } from "./model_panel.js";
import { Panel } from "./panel.js";
import { el, groupOf, nameOf } from "./util.js";

const garden = { charts, inflight: 0, firstView: false };
window.garden = garden;
api.onInflight((n) => {
  garden.inflight = n;
  document.body.dataset.inflight = String(n);
});

const VARIANT_ORDER = { standard: 0, deduped: 1 };

// Models of one suite, size and run, standard first.
function groupModels(models) {
  const groups = new Map();
  for (const info of models) {
    const key = groupOf(info);
    if (!groups.has(key)) groups.set(key, []);
    groups.get(key).push(info);
  }
  for (const list of groups.values()) {
    list.sort((a, b) => (VARIANT_ORDER[a.model.variant] ?? 9) - (VARIANT_ORDER[b.model.variant] ?? 9));
  }
  return groups;
}

async function showServer() {
  const line = document.getElementById("server");
  try {
    const i = await api.info();
    line.textContent = `gardend at ${i.server} · ${i.tls ? "TLS" : "plaintext"}` +
      ` · ${i.token ? "with a token" : "no token"}`;
    line.dataset.server = i.server;
  } catch (error) {
    line.textContent = `garden ui: ${error}`;
  }
}

function modelTable(models, onPick) {
  const body = models.map((info) => {
    const steps = info.steps.map(Number);
    const name = nameOf(info);
    return el("tr", { data: { model: name } },
      el("td", {}, el("button", { type: "button", class: "link model-name", text: name,
        title: "show its charts", on: { click: () => onPick(info) } })),
      el("td", { text: info.model.suite }), el("td", { text: info.model.size }),
      el("td", { text: info.model.variant }), el("td", { text: info.model.run || "main" }),
      el("td", { class: "num", text: String(steps.length) }),
      el("td", { text: steps.length ? `${steps[0]}–${steps[steps.length - 1]}` : "" }),
      el("td", { text: info.layout }), el("td", { text: info.repo_id || "" }));
  });
  return el("table", { id: "models-table" },
    el("thead", {}, el("tr", {}, ["model", "suite", "size", "variant", "run", "steps", "range",
      "layout", "repository"].map((h) => el("th", { text: h })))),
    el("tbody", {}, body));
}

class Comparison {
  constructor(models, datasets) {
    this.groups = groupModels(models);
    this.columns = [];
    this.group = el("select", { id: "group", on: { change: () => this.show(this.group.value) } },
      [...this.groups.keys()].map((key) => el("option", { value: key, text: key })));
    this.dataset = el("select", { id: "ppl-dataset" },
      datasets.map((d) => el("option", { value: d.name, text: `${d.name} (${d.examples} examples)` })));
    const preferred = datasets.find((d) => d.name.startsWith("lambada")) || datasets[0];
    if (preferred) this.dataset.value = preferred.name;
    this.limit = el("input", { id: "ppl-limit", type: "number", min: 1, value: 20, size: 6,
      placeholder: "all" });
    this.pplButton = el("button", { id: "ppl-run", type: "submit", text: "Perplexity",
      disabled: datasets.length === 0 });
    const controls = el("form", { class: "controls", id: "compare-form",
      on: { submit: (e) => { e.preventDefault(); this.rerunPerplexity(); } } },
    el("label", { class: "field" }, el("span", { text: "suite / size" }), this.group),
    el("label", { class: "field" }, el("span", { text: "perplexity on" }), this.dataset),
    el("label", { class: "field" }, el("span", { text: "first examples" }), this.limit),
    this.pplButton);
    this.grid = el("div", { class: "columns", id: "columns" });
    this.root = el("section", { id: "compare" },
      el("h2", { text: "Over training, standard and deduped side by side" }), controls, this.grid);
  }

  perplexity() {
    const text = this.limit.value.trim();
    return { dataset: this.dataset.value || null, limit: text === "" ? null : Number(text) };
  }

  // Shows one suite/size: its models' columns, each loading its charts.
  async show(key) {
    this.group.value = key;
    const shown = (this.shown = (this.shown || 0) + 1);
    await Promise.all(this.columns.map((c) => c.close()));
    if (shown !== this.shown) return;  // another size was picked meanwhile
    this.columns = (this.groups.get(key) || []).map((info) => new ModelColumn(info));
    this.grid.replaceChildren(...this.columns.map((c) => c.root));
    this.grid.dataset.group = key;
    const settings = this.perplexity();
    await Promise.all(this.columns.map((c) => c.load(settings)));
  }

  async rerunPerplexity() {
    const settings = this.perplexity();
    await Promise.all(this.columns.map((c) => c.loadPerplexity(settings)));
  }
}

async function main() {
  const page = document.getElementById("page");
  if (!window.echarts) {
    const panel = new Panel("The chart library is missing", { id: "panel-fatal" });
    panel.showError(new api.GardenError("NOT_FOUND",
      "vendor/echarts.min.js did not load: build the garden_ui_web target with node and npm installed"));
    page.append(panel.root);
    garden.firstView = true;
    return;
  }
  await showServer();
  const modelsPanel = new Panel("Models", { id: "panel-models" });
  page.append(el("section", { id: "models" }, el("h2", { text: "Models" }), modelsPanel.root));
  let models = null;
  await modelsPanel.run("models", async (task) => {
    task.progress(0, 0, "listing");
    models = (await api.call("ListModels", {})).models;
  });
  if (!models) {
    garden.firstView = true;
    return;
  }
  if (models.length === 0) {
    modelsPanel.showNote("gardend serves no models (gardend --checkpoints DIR)");
    garden.firstView = true;
    return;
  }
  let datasets = [];
  let datasetError = null;
  try {
    datasets = (await api.call("ListDatasets", {})).datasets;
  } catch (error) {
    datasetError = error;
  }
  const comparison = new Comparison(models, datasets);
  const unmask = new UnmaskSection(models);
  const generate = new GenerateSection(models);
  const pick = (info) => {
    unmask.selectModel(info);
    generate.selectModel(info);
    comparison.show(groupOf(info));
  };
  modelsPanel.body.append(modelTable(models, pick));
  modelsPanel.statusLine.replaceChildren(el("span", { class: "note",
    text: `${models.length} models; pick one to see its size's charts` }));
  page.append(comparison.root, unmask.root, generate.root);
  if (datasetError) {
    comparison.root.querySelector(".controls").after(el("div", { class: "error", id: "datasets-error",
      data: { code: datasetError.code } }, el("strong", { text: datasetError.code }), " ",
    datasetError.message));
  }
  const first = [...comparison.groups.keys()][0];
  unmask.selectModel(comparison.groups.get(first)[0]);
  generate.selectModel(comparison.groups.get(first)[0]);
  await comparison.show(first);
  garden.firstView = true;
  document.body.dataset.firstView = "done";
}

main();
