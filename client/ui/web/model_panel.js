// One model's column of the comparison: the density heatmap of
// embed_out.weight over steps with its step slider (that step's histogram
// and moments), the MSD and its peak, the perplexity across steps and the
// bifurcation branches. Element ids end in the model's name:
//   heat-, hist-, slider-, step-, moments-, msd-, peak-, ppl-, bif-, onset-.
import * as api from "./api.js";
import { bifurcationOption, densityOption, disposeChart, histogramOption, makeChart,
  msdOption, perplexityOption, selectedLine } from "./charts.js";
import { Panel } from "./panel.js";
import { el, fmt, nameOf, num, refOf } from "./util.js";

export const HISTOGRAM_BINS = 64;
const MOMENTS = ["mean", "std", "skewness", "kurtosis", "n", "min", "max"];

// Calls fn at most once per animation frame.
function throttled(fn) {
  let queued = false;
  return () => {
    if (queued) return;
    queued = true;
    requestAnimationFrame(() => {
      queued = false;
      fn();
    });
  };
}

export class ModelColumn {
  constructor(info) {
    this.info = info;
    this.name = nameOf(info);
    this.ref = refOf(info);
    const steps = info.steps.map(Number);
    this.steps = steps;
    this.root = el("section", { class: "model", data: { model: this.name } },
      el("h3", {}, this.name, " ", el("small", {
        text: `${this.ref.variant} · ${steps.length} steps` +
          (steps.length ? ` (${steps[0]}–${steps[steps.length - 1]})` : ""),
      })));
    this.panels = [];
    this.buildDensity();
    this.buildMsd();
    this.buildPerplexity();
    this.buildBifurcation();
  }

  addPanel(title, id) {
    const panel = new Panel(title, { id });
    this.root.append(panel.root);
    this.panels.push(panel);
    return panel;
  }

  chartIds() {
    return ["heat", "hist", "msd", "ppl", "bif"].map((p) => `${p}-${this.name}`);
  }

  // Cancels what still runs and frees the charts (another size is shown).
  async close() {
    this.closed = true;
    await Promise.all(this.panels.map((p) => p.close()));
    for (const id of this.chartIds()) disposeChart(id);
  }

  // The first view: every chart, one request after the other.
  async load(perplexity) {
    const steps = [() => this.loadHistograms(), () => this.loadMsd(),
      () => this.loadBifurcation(), () => this.loadPerplexity(perplexity)];
    for (const step of steps) {
      if (this.closed) return;
      await step();
    }
  }

  // ------------------------------------------------------------ density
  buildDensity() {
    const panel = this.addPanel("Density of embed_out.weight over steps", `panel-heat-${this.name}`);
    this.density = makeChart(panel.body, `heat-${this.name}`, "chart tall");
    this.slider = el("input", { type: "range", id: `slider-${this.name}`, min: 0, max: 0,
      value: 0, step: 1, disabled: true, "aria-label": `step of ${this.name}`,
      on: { input: () => this.onSlider() } });
    this.stepLabel = el("output", { id: `step-${this.name}`, class: "step", text: "no step yet" });
    panel.body.append(el("div", { class: "slider-row" }, el("span", { text: "step" }),
      this.slider, this.stepLabel));
    this.histogram = makeChart(panel.body, `hist-${this.name}`);
    this.moments = el("dl", { class: "moments", id: `moments-${this.name}` });
    panel.body.append(this.moments);
    this.densityPanel = panel;
    this.frames = [];
    this.follow = true;  // the slider stays on the newest step until moved
  }

  async loadHistograms() {
    this.frames = [];
    this.follow = true;
    const redraw = throttled(() => this.drawDensity());
    await this.densityPanel.run("histograms", (task) => api.stream("StreamHistograms", {
      model: this.ref, steps: { all: true }, bins: HISTOGRAM_BINS,
    }, (message) => {
      if (message.progress) {
        const p = message.progress;
        task.progress(num(p.done), num(p.total), `scanning ${p.done}/${p.total} steps`);
      } else if (message.frame) {
        const f = message.frame;
        this.frames.push(f);
        task.progress(num(f.index) + 1, num(f.total), `step ${f.step} (${num(f.index) + 1}/${f.total})`);
        redraw();
      }
    }, task));
    this.drawDensity();
  }

  drawDensity() {
    const last = this.frames.length - 1;
    this.slider.max = Math.max(last, 0);
    this.slider.disabled = last < 0;
    if (this.follow) this.slider.value = Math.max(last, 0);
    this.density.setOption(densityOption(this.frames, this.selectedIndex()), { notMerge: true });
    this.showStep();
  }

  selectedIndex() {
    return this.frames.length ? Math.min(Number(this.slider.value), this.frames.length - 1) : -1;
  }

  onSlider() {
    this.follow = Number(this.slider.value) === this.frames.length - 1;
    this.density.setOption({ series: [{ id: "density", markLine: selectedLine(this.selectedIndex()) }] });
    this.showStep();
  }

  // The slider's step: its label, histogram and moments.
  showStep() {
    const index = this.selectedIndex();
    if (index < 0) return;
    const frame = this.frames[index];
    this.stepLabel.textContent = `${frame.step} (${index + 1} of ${this.frames.length})`;
    this.stepLabel.dataset.step = String(frame.step);
    this.stepLabel.dataset.index = String(index);
    this.histogram.setOption(histogramOption(frame), { notMerge: true });
    this.moments.replaceChildren(...MOMENTS.flatMap((key) => [
      el("dt", { text: key }),
      el("dd", { text: fmt(frame[key], 6), data: { moment: key, value: String(frame[key]) } }),
    ]), el("dt", { text: "dtype" }), el("dd", { text: `${frame.dtype} [${frame.shape.join(" × ")}]` }));
  }

  // --------------------------------------------------------------- MSD
  buildMsd() {
    this.msdPanel = this.addPanel("Mean square displacement to the first step", `panel-msd-${this.name}`);
    this.msd = makeChart(this.msdPanel.body, `msd-${this.name}`);
    this.peakText = el("p", { class: "caption", id: `peak-${this.name}` });
    this.msdPanel.body.append(this.peakText);
  }

  async loadMsd() {
    const points = [];
    let peak = null;
    const total = this.info.steps.length;
    const redraw = throttled(() => this.msd.setOption(msdOption(points, peak, this.steps), { notMerge: true }));
    await this.msdPanel.run("msd", (task) => api.stream("StreamMSD", {
      model: this.ref, steps: { all: true }, mode: "REFERENCE",
    }, (message) => {
      if (message.point) {
        points.push([num(message.point.step), num(message.point.msd)]);
        task.progress(points.length, total, `${points.length}/${total} steps`);
      } else if (message.peak) {
        peak = message.peak;
      }
      redraw();
    }, task));
    this.msd.setOption(msdOption(points, peak, this.steps), { notMerge: true });
    this.describePeak(peak);
  }

  // A peak is an interior maximum; a monotonic curve has none.
  describePeak(peak) {
    const t = this.peakText;
    delete t.dataset.peakStep;
    if (!peak) {
      t.textContent = "no peak reported";
      t.dataset.peak = "none";
      return;
    }
    t.dataset.largestStep = String(peak.step);
    t.dataset.trend = peak.trend;
    if (peak.interior) {
      t.dataset.peak = "interior";
      t.dataset.peakStep = String(peak.step);
      t.textContent = `peak at step ${peak.step} (msd ${fmt(peak.msd)})`;
    } else {
      const trend = { TREND_INCREASING: "increasing", TREND_DECREASING: "decreasing" }[peak.trend];
      t.dataset.peak = "none";
      t.textContent = `no peak: the curve is ${trend || "flat or bends at an end"}; ` +
        `largest msd ${fmt(peak.msd)} at step ${peak.step}`;
    }
  }

  // -------------------------------------------------------- perplexity
  buildPerplexity() {
    this.pplPanel = this.addPanel("Perplexity across steps", `panel-ppl-${this.name}`);
    this.ppl = makeChart(this.pplPanel.body, `ppl-${this.name}`);
    this.pplText = el("p", { class: "caption", id: `ppl-caption-${this.name}` });
    this.pplPanel.body.append(this.pplText);
  }

  // perplexity: {dataset, limit} (limit null: every example).
  async loadPerplexity({ dataset, limit }) {
    if (this.closed) return;
    if (!dataset) {
      this.ppl.clear();
      this.pplPanel.showNote("the server has no dataset (gardend --dataset NAME=FILE.jsonl)");
      return;
    }
    const points = [];
    const total = this.info.steps.length;
    const request = { model: this.ref, steps: { all: true }, dataset };
    if (limit !== null && limit !== undefined) request.limit = limit;
    this.pplPanel.setTitle(`Perplexity on ${dataset} across steps`);
    this.pplText.textContent = "";
    this.ppl.setOption(perplexityOption(points, this.steps), { notMerge: true });
    const redraw = throttled(() => this.ppl.setOption(perplexityOption(points, this.steps), { notMerge: true }));
    await this.pplPanel.run("perplexity", (task) => {
      task.progress(0, total, `0/${total} steps`);
      return api.stream("StreamPerplexity", request, (point) => {
        points.push([num(point.step), num(point.perplexity), num(point.accuracy)]);
        task.progress(points.length, total, `${points.length}/${total} steps`);
        this.pplText.textContent = `${point.n} examples of ${dataset} per step`;
        redraw();
      }, task);
    });
    this.ppl.setOption(perplexityOption(points, this.steps), { notMerge: true });
  }

  // ------------------------------------------------------- bifurcation
  buildBifurcation() {
    this.bifPanel = this.addPanel("Bifurcation: modes of the density", `panel-bif-${this.name}`);
    this.bif = makeChart(this.bifPanel.body, `bif-${this.name}`);
    this.onsetText = el("p", { class: "caption", id: `onset-${this.name}` });
    this.bifPanel.body.append(this.onsetText);
  }

  async loadBifurcation() {
    const modes = [];
    let onset = null;
    const redraw = throttled(() => this.bif.setOption(bifurcationOption(modes, onset, this.steps), { notMerge: true }));
    await this.bifPanel.run("bifurcation", (task) => api.stream("StreamBifurcation", {
      model: this.ref, steps: { all: true },
    }, (message) => {
      if (message.progress) {
        const p = message.progress;
        task.progress(num(p.done), num(p.total), `scanning ${p.done}/${p.total} steps`);
      } else if (message.step) {
        const s = message.step;
        s.mode_locations.forEach((x, i) => modes.push([num(s.step), num(x), num(s.mode_heights[i])]));
        task.progress(0, 0, `step ${s.step}`);
      } else if (message.summary) {
        onset = message.summary.onset === undefined ? null : num(message.summary.onset);
      }
      redraw();
    }, task));
    this.bif.setOption(bifurcationOption(modes, onset, this.steps), { notMerge: true });
    this.onsetText.dataset.onset = onset === null ? "" : String(onset);
    this.onsetText.textContent = onset === null
      ? "no onset: never bimodal for enough consecutive steps"
      : `onset of the bifurcation at step ${onset}`;
  }
}
