// Small helpers shared by the page's modules: DOM building, numbers from
// protobuf's JSON mapping, step selections as the CLI writes them.

// el("div", {class: "x", id: "y", text: "z", data: {step: 3}, on: {click: f}}, ...children)
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key === "data") Object.assign(node.dataset, value);
    else if (key === "on") {
      for (const [event, handler] of Object.entries(value)) node.addEventListener(event, handler);
    } else if (key in node && typeof value !== "string") node[key] = value;
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

// A number from the JSON mapping: int64/uint64 come as strings, doubles
// may be "NaN", "Infinity" or "-Infinity"; absent is NaN.
export function num(value) {
  if (value === undefined || value === null) return NaN;
  return Number(value);
}

// Up to `digits` significant digits, without trailing noise.
export function fmt(value, digits = 4) {
  const x = num(value);
  if (!Number.isFinite(x)) return String(x);
  if (x === 0) return "0";
  const a = Math.abs(x);
  if (a >= 1e6 || a < 1e-3) return x.toExponential(digits - 1);
  return String(Number(x.toPrecision(digits)));
}

// "all", "0,1000,2000" or "1000:5000" (as the CLI's --steps) as a
// StepSelection; throws an Error naming the text otherwise.
export function parseSteps(text) {
  const t = text.trim();
  if (t === "" || t === "all") return { all: true };
  const range = /^(\d+)\s*:\s*(\d+)$/.exec(t);
  if (range) return { range: { first: Number(range[1]), last: Number(range[2]) } };
  const items = t.split(",").map((s) => s.trim());
  if (items.every((s) => /^\d+$/.test(s))) return { list: { steps: items.map(Number) } };
  throw new Error(`steps "${text}": expected all, a list 0,1,2 or a range 1000:5000`);
}

// The ModelRef of a ModelInfo.
export function refOf(info) {
  const m = info.model;
  return { suite: m.suite, size: m.size, variant: m.variant, run: m.run || "" };
}

// The group a model is compared in: its suite and size, and its training run
// ("pythia/160m@seed3") where the suite has several.
export function groupOf(info) {
  const m = info.model;
  return `${m.suite}/${m.size}${m.run ? `@${m.run}` : ""}`;
}

// A model's name as the CLI prints it ("pythia-70m-deduped", "pythia-160m-seed3").
export function nameOf(info) {
  const m = info.model;
  return `${m.suite}-${m.size}${m.variant === "deduped" ? "-deduped" : ""}${m.run ? `-${m.run}` : ""}`;
}

// A few steps spread over a model's steps: first, middle, last.
export function spreadSteps(steps, count = 3) {
  if (steps.length <= count) return steps.slice();
  const out = [];
  for (let i = 0; i < count; ++i) out.push(steps[Math.round((i * (steps.length - 1)) / (count - 1))]);
  return [...new Set(out)];
}
