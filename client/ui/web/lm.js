// The language-model panels: causal unmasking of a typed sentence at
// chosen steps (CausalUnmask: each row the prefix in black, the greedy
// continuation in grey, tokens that match the sentence marked) and
// generation streamed token by token (Generate).
import * as api from "./api.js";
import { Panel } from "./panel.js";
import { el, fmt, nameOf, num, parseSteps, refOf, spreadSteps } from "./util.js";

function modelSelect(id, models, onChange) {
  const select = el("select", { id, on: { change: onChange } },
    models.map((m, i) => el("option", { value: String(i), text: nameOf(m) })));
  return select;
}

function field(label, input) {
  return el("label", { class: "field" }, el("span", { text: label }), input);
}

// ------------------------------------------------------------- unmasking
export class UnmaskSection {
  constructor(models) {
    this.models = models;
    this.model = modelSelect("unmask-model", models, () => this.suggestSteps());
    this.steps = el("input", { id: "unmask-steps", type: "text", size: 18,
      title: "all, a list 0,1000,2000 or a range 1000:5000" });
    this.text = el("input", { id: "unmask-text", type: "text", size: 48,
      value: "The cat sat on the mat and looked out of the window." });
    this.prefixes = el("input", { id: "unmask-k", type: "text", size: 10,
      placeholder: "six, evenly", title: "prefix lengths in tokens, e.g. 1,3,5" });
    this.button = el("button", { id: "unmask-run", type: "submit", text: "Unmask" });
    this.form = el("form", { class: "controls", id: "unmask-form",
      on: { submit: (e) => { e.preventDefault(); this.run(); } } },
      field("model", this.model), field("steps", this.steps), field("sentence", this.text),
      field("prefix lengths", this.prefixes), this.button);
    this.panel = new Panel("Causal unmasking", { id: "panel-unmask" });
    this.rows = el("div", { class: "unmask-rows", id: "unmask-rows" });
    this.panel.body.append(this.rows);
    this.root = el("section", { id: "unmask" }, el("h2", { text: "Causal unmasking" }),
      el("p", { class: "hint", text: "Greedy completions of the sentence from growing prefixes: " +
        "the prefix in black, the model's continuation in grey, its tokens that match the " +
        "sentence underlined in green." }),
      this.form, this.panel.root);
    this.suggestSteps();
  }

  selectModel(info) {
    const i = this.models.indexOf(info);
    if (i >= 0) {
      this.model.value = String(i);
      this.suggestSteps();
    }
  }

  suggestSteps() {
    const info = this.models[Number(this.model.value)];
    if (info) this.steps.value = spreadSteps(info.steps.map(Number)).join(",");
  }

  async run() {
    const info = this.models[Number(this.model.value)];
    this.rows.replaceChildren();
    await this.panel.run("unmask", async (task) => {
      const request = { model: refOf(info), steps: parseStepsOrThrow(this.steps.value),
        text: this.text.value };
      const ks = this.prefixes.value.trim();
      if (ks) request.prefix_lengths = ks.split(",").map((s) => Number(s.trim()));
      let frames = 0;
      await api.stream("CausalUnmask", request, (frame) => {
        frames += 1;
        task.progress(0, 0, `${frames} rows (step ${frame.step}, k ${frame.k})`);
        this.rows.append(unmaskRow(frame));
      }, task);
    });
  }
}

function parseStepsOrThrow(text) {
  try {
    return parseSteps(text);
  } catch (error) {
    throw new api.GardenError("INVALID_ARGUMENT", error.message);
  }
}

// One frame as text: the prefix, then each generated token, marked where
// it is the sentence's own next token.
function unmaskRow(frame) {
  const pieces = frame.generated_pieces || [];
  const agree = frame.agree || [];
  const matched = agree.filter(Boolean).length;
  return el("div", { class: "unmask-row", data: { step: String(frame.step), k: String(frame.k),
    recovered: String(frame.recovered), agree: agree.map((a) => (a ? "1" : "0")).join("") } },
    el("span", { class: "meta", text: `step ${frame.step} · k ${frame.k}/${frame.n} · ` +
      `${matched}/${agree.length} match` }),
    el("span", { class: "text" },
      el("span", { class: "prefix", text: frame.prefix_text }),
      pieces.map((piece, i) => el("span", {
        class: agree[i] ? "generated match" : "generated",
        text: piece, title: `token ${frame.generated_ids[i]}${agree[i] ? ", matches the sentence" : ""}`,
      }))));
}

// ------------------------------------------------------------ generation
export class GenerateSection {
  constructor(models) {
    this.models = models;
    this.model = modelSelect("gen-model", models, () => this.fillSteps());
    this.step = el("select", { id: "gen-step" });
    this.prompt = el("input", { id: "gen-prompt", type: "text", size: 40, value: "The cat" });
    this.max = el("input", { id: "gen-max", type: "number", min: 1, value: 48, size: 6 });
    this.greedy = el("input", { id: "gen-greedy", type: "checkbox", checked: true });
    this.seed = el("input", { id: "gen-seed", type: "number", min: 0, value: 1, size: 6 });
    this.button = el("button", { id: "gen-run", type: "submit", text: "Generate" });
    this.form = el("form", { class: "controls", id: "gen-form",
      on: { submit: (e) => { e.preventDefault(); this.run(); } } },
      field("model", this.model), field("step", this.step), field("prompt", this.prompt),
      field("new tokens", this.max), field("greedy", this.greedy), field("seed", this.seed),
      this.button);
    this.panel = new Panel("Generation", { id: "panel-gen" });
    this.output = el("pre", { class: "generation", id: "gen-output" });
    this.panel.body.append(this.output);
    this.root = el("section", { id: "generate" }, el("h2", { text: "Generation" }),
      el("p", { class: "hint", text: "The prompt in black, each new token appended as gardend " +
        "sends it (sampled with temperature 1 and the seed unless greedy)." }),
      this.form, this.panel.root);
    this.fillSteps();
  }

  selectModel(info) {
    const i = this.models.indexOf(info);
    if (i >= 0) {
      this.model.value = String(i);
      this.fillSteps();
    }
  }

  fillSteps() {
    const info = this.models[Number(this.model.value)];
    if (!info) return;
    const steps = info.steps.map(Number);
    this.step.replaceChildren(...steps.map((s) => el("option", { value: String(s), text: String(s) })));
    if (steps.length) this.step.value = String(steps[steps.length - 1]);
  }

  async run() {
    const info = this.models[Number(this.model.value)];
    const max = Number(this.max.value);
    const prompt = this.prompt.value;
    const sampling = this.greedy.checked ? { greedy: true }
      : { greedy: false, seed: Number(this.seed.value) || 0 };
    this.output.replaceChildren(el("span", { class: "prompt", text: prompt }));
    this.output.dataset.tokens = "0";
    await this.panel.run("generate", async (task) => {
      let count = 0;
      task.progress(0, max, `0/${max} tokens`);
      await api.stream("Generate", {
        checkpoint: { model: refOf(info), step: Number(this.step.value) },
        prompt, max_new_tokens: max, sampling,
      }, (message) => {
        if (message.prompt_ids && message.prompt_ids.length) {
          this.output.dataset.promptIds = message.prompt_ids.join(",");
        }
        const t = message.token;
        if (!t) return;
        count += 1;
        this.output.append(el("span", { class: "token", text: t.text,
          title: `token ${t.id}, log p ${fmt(t.logprob)}`,
          data: { id: String(t.id), index: String(num(t.index)) } }));
        this.output.dataset.tokens = String(count);
        task.progress(count, max, `${count}/${max} tokens`);
      }, task);
    });
  }
}
