// ECharts (the global `echarts`, from vendor/echarts.min.js) for the page's
// figures. Every chart is registered by its element id in `charts`
// (window.garden.charts), so tests can read what it holds:
//   window.garden.charts["heat-NAME"].getOption().series[0].data
import { el, fmt, num } from "./util.js";

export const charts = {};

const VIRIDIS = ["#440154", "#482878", "#3e4989", "#31688e", "#26828e", "#1f9e89",
  "#35b779", "#6ece58", "#b5de2b", "#fde725"];

// A chart in a new div#id appended to `parent`.
export function makeChart(parent, id, className = "chart") {
  const div = el("div", { class: className, id });
  parent.append(div);
  const chart = echarts.init(div, null, { renderer: "canvas" });
  charts[id] = chart;
  new ResizeObserver(() => chart.resize()).observe(div);
  return chart;
}

export function disposeChart(id) {
  if (charts[id]) {
    charts[id].dispose();
    delete charts[id];
  }
}

const grid = { left: 64, right: 24, top: 36, bottom: 44 };
const tooltip = { trigger: "axis", confine: true };

// Bin centres of a histogram frame.
export function binCentres(frame) {
  const lo = num(frame.lo);
  const hi = num(frame.hi);
  const bins = frame.counts.length;
  const width = (hi - lo) / bins;
  return Array.from({ length: bins }, (_, i) => lo + (i + 0.5) * width);
}

// Figure 2: x = step (one column per step), y = bin centre, colour = log10
// of the density. Each cell is [step index, bin, log10 density, count];
// empty bins have no colour ("-") and count 0.
export function densityOption(frames, selected) {
  const centres = frames.length ? binCentres(frames[0]) : [];
  const data = [];
  let min = Infinity;
  let max = -Infinity;
  frames.forEach((frame, x) => {
    const counts = frame.counts.map(Number);
    const total = counts.reduce((a, b) => a + b, 0);
    const width = (num(frame.hi) - num(frame.lo)) / counts.length;
    counts.forEach((count, y) => {
      if (count > 0 && total > 0 && width > 0) {
        const value = Math.log10(count / (total * width));
        min = Math.min(min, value);
        max = Math.max(max, value);
        data.push([x, y, value, count]);
      } else {
        data.push([x, y, "-", count]);
      }
    });
  });
  if (!(min <= max)) {
    min = 0;
    max = 1;
  }
  return {
    animation: false,
    grid: { ...grid, right: 112 },
    tooltip: {
      confine: true,
      formatter: (p) => `step ${frames[p.data[0]].step}<br>bin centre ${fmt(centres[p.data[1]])}` +
        `<br>count ${p.data[3]}<br>log10 density ${p.data[2] === "-" ? "-" : fmt(p.data[2])}`,
    },
    xAxis: { type: "category", name: "step", nameLocation: "middle", nameGap: 28,
      data: frames.map((f) => String(f.step)) },
    yAxis: { type: "category", name: "bin centre", data: centres.map((c) => fmt(c, 3)),
      axisLabel: { interval: Math.max(0, Math.ceil(centres.length / 8) - 1) },
      axisTick: { alignWithLabel: true } },
    visualMap: { type: "continuous", min, max, dimension: 2, calculable: false,
      orient: "vertical", right: 34, top: 62, itemHeight: 180, itemWidth: 14, precision: 1,
      text: ["log10\ndensity", ""], textGap: 10, inRange: { color: VIRIDIS } },
    series: [{
      id: "density", type: "heatmap", data, progressive: 0,
      markLine: selectedLine(selected),
    }],
  };
}

// The vertical line at the slider's step.
export function selectedLine(index) {
  if (index === null || index === undefined || index < 0) return { data: [] };
  return { silent: true, symbol: "none", animation: false,
    lineStyle: { color: "#e8384f", width: 2, type: "solid" },
    label: { show: false }, data: [{ xAxis: index }] };
}

// One step's histogram: bars of exact counts over the bin centres.
export function histogramOption(frame) {
  const centres = binCentres(frame);
  return {
    animation: false,
    grid,
    tooltip: { ...tooltip, axisPointer: { type: "shadow" } },
    title: { text: `step ${frame.step}`, left: "center", top: 4, textStyle: { fontSize: 13 } },
    xAxis: { type: "category", name: "bin centre", nameLocation: "middle", nameGap: 28,
      data: centres.map((c) => fmt(c, 3)),
      axisLabel: { interval: Math.max(0, Math.ceil(centres.length / 8) - 1) } },
    yAxis: { type: "value", name: "count", axisLabel: { formatter: tick } },
    series: [{ id: "counts", type: "bar", barCategoryGap: "5%", data: frame.counts.map(Number),
      itemStyle: { color: "#31688e" } }],
  };
}

// An axis label: 3 significant digits, "1e10" rather than "1.00e+10".
function tick(value) {
  const a = Math.abs(value);
  if (value !== 0 && (a >= 1e5 || a < 1e-3)) {
    return Number(value.toPrecision(3)).toExponential().replace("e+", "e");
  }
  return String(Number(value.toPrecision(3)));
}

// The step axis of the curves: the model's first to last step (`steps`,
// ascending), so a curve that is still arriving grows across it.
function stepAxis(steps) {
  const range = steps && steps.length ? { min: steps[0], max: steps[steps.length - 1] }
    : { min: "dataMin", max: "dataMax" };
  return { type: "value", name: "step", nameLocation: "middle", nameGap: 28, ...range,
    axisLine: { onZero: false } };
}

// A curve over steps: series data [step, value, ...extra].
function curveOption(name, points, steps, { log = false, color, markPoint, markLine } = {}) {
  return {
    animation: false,
    grid,
    tooltip,
    xAxis: stepAxis(steps),
    yAxis: { type: log ? "log" : "value", name, scale: !log, axisLabel: { formatter: tick } },
    series: [{ id: name, name, type: "line", showSymbol: true, symbolSize: 5, data: points,
      lineStyle: { color }, itemStyle: { color }, markPoint, markLine }],
  };
}

// MSD over steps, the peak marked when there is one.
export function msdOption(points, peak, steps) {
  const markPoint = peak && peak.interior
    ? { symbol: "pin", symbolSize: 44, itemStyle: { color: "#e8384f" },
        label: { formatter: "peak" },
        data: [{ name: "peak", coord: [num(peak.step), num(peak.msd)] }] }
    : { data: [] };
  return curveOption("msd", points, steps, { color: "#5b3d8f", markPoint });
}

// Perplexity over steps (log scale): data [step, perplexity, accuracy].
export function perplexityOption(points, steps) {
  const option = curveOption("perplexity", points, steps, { log: true, color: "#1f9e89" });
  option.tooltip = {
    trigger: "axis", confine: true,
    formatter: (ps) => ps.map((p) => `step ${p.data[0]}<br>perplexity ${fmt(p.data[1])}` +
      `<br>accuracy ${fmt(p.data[2])}`).join("<br>"),
  };
  return option;
}

// The bifurcation diagram: each step's modes as points [step, location,
// height]; the onset, if any, as a vertical line.
export function bifurcationOption(modes, onset, steps) {
  return {
    animation: false,
    grid,
    tooltip: { trigger: "item", confine: true,
      formatter: (p) => `step ${p.data[0]}<br>mode at ${fmt(p.data[1])}<br>height ${fmt(p.data[2])}` },
    xAxis: stepAxis(steps),
    yAxis: { type: "value", name: "mode location", scale: true, axisLabel: { formatter: tick } },
    series: [{
      id: "branches", type: "scatter", symbolSize: 6, data: modes,
      itemStyle: { color: "#26828e" },
      markLine: onset === null || onset === undefined ? { data: [] } : {
        silent: true, symbol: "none", lineStyle: { color: "#e8384f", type: "dashed", width: 2 },
        label: { formatter: `onset ${onset}`, position: "insideEndTop" },
        data: [{ xAxis: onset }],
      },
    }],
  };
}
