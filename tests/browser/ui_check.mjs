// Drives garden ui's page in a real browser (Debian's chromium through
// playwright-core) and writes what it saw as JSON; ui_test.py starts the
// servers, runs this and compares what the page showed with the CLI's
// numbers. Run by ui_test.py:
//   node ui_check.mjs CONFIG.json
// CONFIG: {url, down_url, chromium, screenshots, out, long_dataset,
//          unmask: {model, steps, text}, generate: {model, step, prompt, tokens},
//          bad_steps}
// Exits 0 once OUT is written; 1 (with the reason on stderr) when the page
// never got where a step needs it.
import { readFileSync, writeFileSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { chromium } from "playwright-core";

const config = JSON.parse(readFileSync(process.argv[2], "utf8"));
const seen = { console_errors: [], page_errors: [], foreign_requests: [], steps: [] };
const log = (what) => {
  seen.steps.push(what);
  process.stderr.write(`ui_check: ${what}\n`);
};
mkdirSync(config.screenshots, { recursive: true });
const shot = async (page, name, target = null) => {
  const path = join(config.screenshots, `${name}.png`);
  if (target) await target.screenshot({ path });
  else await page.screenshot({ path });
  log(`screenshot ${path}`);
};

// One shot of the smallest rectangle around every element `selectors` name.
const shotAround = async (page, name, selectors) => {
  const boxes = await page.evaluate((selectors) => selectors.map((sel) => {
    const r = document.querySelector(sel).getBoundingClientRect();
    return { x: r.x + window.scrollX, y: r.y + window.scrollY, right: r.right + window.scrollX,
      bottom: r.bottom + window.scrollY };
  }), selectors);
  const pad = 8;
  const x = Math.max(0, Math.min(...boxes.map((b) => b.x)) - pad);
  const y = Math.max(0, Math.min(...boxes.map((b) => b.y)) - pad);
  const clip = { x, y, width: Math.max(...boxes.map((b) => b.right)) + pad - x,
    height: Math.max(...boxes.map((b) => b.bottom)) + pad - y };
  const path = join(config.screenshots, `${name}.png`);
  await page.screenshot({ path, fullPage: true, clip });
  log(`screenshot ${path}`);
};

// What a model's column shows: every chart's data and the texts beside them.
async function columnState(page, name) {
  return page.evaluate((name) => {
    const option = (id) => {
      const chart = window.garden.charts[id];
      return chart ? chart.getOption() : null;
    };
    const heat = option(`heat-${name}`);
    const hist = option(`hist-${name}`);
    const msd = option(`msd-${name}`);
    const ppl = option(`ppl-${name}`);
    const bif = option(`bif-${name}`);
    const text = (id) => document.getElementById(id)?.textContent ?? null;
    const data = (id) => ({ ...(document.getElementById(id)?.dataset ?? {}) });
    const moments = {};
    for (const dd of document.querySelectorAll(`#moments-${CSS.escape(name)} dd[data-moment]`)) {
      moments[dd.dataset.moment] = dd.dataset.value;
    }
    const panels = {};
    for (const p of document.querySelectorAll(`section.model[data-model="${name}"] .panel`)) {
      panels[p.id] = { state: p.dataset.state, status: p.querySelector(".status").textContent,
        error: p.querySelector(".error").hidden ? null : p.querySelector(".error").textContent };
    }
    const box = document.querySelector(`section.model[data-model="${name}"]`).getBoundingClientRect();
    return {
      box: { x: box.x, y: box.y, width: box.width },
      panels,
      heat: heat && { steps: heat.xAxis[0].data, bins: heat.yAxis[0].data.length,
        cells: heat.series[0].data, marked: heat.series[0].markLine?.data?.map((d) => d.xAxis) },
      hist: hist && { counts: hist.series[0].data, title: hist.title[0].text },
      step: { text: text(`step-${name}`), ...data(`step-${name}`) },
      slider: (() => {
        const s = document.getElementById(`slider-${name}`);
        return { value: s.value, max: s.max, disabled: s.disabled };
      })(),
      moments,
      msd: msd && { points: msd.series[0].data, peak_marks: msd.series[0].markPoint?.data ?? [] },
      peak: { text: text(`peak-${name}`), ...data(`peak-${name}`) },
      ppl: ppl && { points: ppl.series[0].data },
      ppl_caption: text(`ppl-caption-${name}`),
      bif: bif && { modes: bif.series[0].data, onset_marks: bif.series[0].markLine?.data ?? [] },
      onset: { text: text(`onset-${name}`), ...data(`onset-${name}`) },
    };
  }, name);
}

const panelDone = (page, id, states = ["done", "failed", "cancelled"], timeout = 60000) =>
  page.waitForFunction(([id, states]) => {
    const p = document.getElementById(id);
    return p && states.includes(p.dataset.state);
  }, [id, states], { timeout });

const panelState = (page, id) => page.evaluate((id) => {
  const p = document.getElementById(id);
  const error = p.querySelector(".error");
  return { state: p.dataset.state, status: p.querySelector(".status").textContent,
    error_code: error.hidden ? null : error.dataset.code,
    error: error.hidden ? null : error.textContent,
    body_hidden: p.querySelector(".body").hidden };
}, id);

const origin = new URL(config.url).origin;
const browser = await chromium.launch({ executablePath: config.chromium, args: ["--no-sandbox"] });
try {
  const context = await browser.newContext({ viewport: { width: 1440, height: 900 } });
  const page = await context.newPage();
  page.on("console", (m) => { if (m.type() === "error") seen.console_errors.push(m.text()); });
  page.on("pageerror", (e) => seen.page_errors.push(String(e)));
  page.on("request", (r) => {
    const u = r.url();
    if (!u.startsWith(origin) && !u.startsWith("data:")) seen.foreign_requests.push(u);
  });

  // ------------------------------------------------ the first view, no clicks
  const started = Date.now();
  await page.goto(config.url);
  await page.waitForFunction(() => window.garden && window.garden.firstView === true &&
    window.garden.inflight === 0, null, { timeout: 60000 });
  seen.first_view_ms = Date.now() - started;
  log(`first view in ${seen.first_view_ms} ms`);
  seen.server_line = await page.textContent("#server");
  seen.listed = await page.$$eval("#models-table tbody tr", (rows) => rows.map((r) => r.dataset.model));
  seen.columns = await page.$$eval("#columns section.model", (s) => s.map((e) => e.dataset.model));
  seen.first = {};
  for (const name of seen.columns) seen.first[name] = await columnState(page, name);
  await shot(page, "ui-first-view");
  await shot(page, "ui-compare", page.locator("#columns"));

  // ------------------------------------------------------------ the slider
  const name = seen.columns[0];
  const slider = page.locator(`[id="slider-${name}"]`);
  seen.slider = [];
  await slider.focus();
  await page.keyboard.press("Home");
  seen.slider.push({ keys: "Home", ...(await columnState(page, name)) });
  for (let i = 0; i < 3; ++i) await page.keyboard.press("ArrowRight");
  seen.slider.push({ keys: "Home ArrowRight×3", ...(await columnState(page, name)) });
  await shotAround(page, "ui-density-slider", seen.columns.map((n) => `[id="panel-heat-${n}"]`));

  // ------------------------------------------------- causal unmasking
  await page.selectOption("#unmask-model", { label: config.unmask.model });
  await page.fill("#unmask-steps", config.unmask.steps);
  await page.fill("#unmask-text", config.unmask.text);
  await page.click("#unmask-run");
  await panelDone(page, "panel-unmask");
  seen.unmask = { panel: await panelState(page, "panel-unmask"),
    rows: await page.$$eval("#unmask-rows .unmask-row", (rows) => rows.map((r) => ({
      ...r.dataset,
      prefix: r.querySelector(".prefix").textContent,
      generated: [...r.querySelectorAll(".generated")].map((g) => g.textContent),
      marked: [...r.querySelectorAll(".generated")].map((g) => g.classList.contains("match")),
      prefix_color: getComputedStyle(r.querySelector(".prefix")).color,
      generated_color: r.querySelector(".generated:not(.match)")
        ? getComputedStyle(r.querySelector(".generated:not(.match)")).color : null,
    }))) };
  await page.locator("#unmask").scrollIntoViewIfNeeded();
  await shot(page, "ui-unmask", page.locator("#unmask"));

  // ------------------------------------------------------------ generation
  await page.selectOption("#gen-model", { label: config.generate.model });
  await page.selectOption("#gen-step", String(config.generate.step));
  await page.fill("#gen-prompt", config.generate.prompt);
  await page.fill("#gen-max", String(config.generate.tokens));
  // Every change of the token count as it happens, to see them arrive.
  await page.evaluate(() => {
    window.tokenCounts = [];
    const out = document.getElementById("gen-output");
    new MutationObserver(() => window.tokenCounts.push(out.querySelectorAll(".token").length))
      .observe(out, { childList: true });
  });
  await page.click("#gen-run");
  await panelDone(page, "panel-gen");
  seen.generate = { panel: await panelState(page, "panel-gen"),
    prompt: await page.textContent("#gen-output .prompt"),
    tokens: await page.$$eval("#gen-output .token", (t) => t.map((e) => ({ id: Number(e.dataset.id),
      index: Number(e.dataset.index), text: e.textContent }))),
    counts: await page.evaluate(() => window.tokenCounts) };
  await page.locator("#generate").scrollIntoViewIfNeeded();
  await shot(page, "ui-generate", page.locator("#generate"));

  // -------------------------------------- an error: a step the model lacks
  await page.selectOption("#unmask-model", { label: config.unmask.model });
  await page.fill("#unmask-steps", config.bad_steps);
  await page.click("#unmask-run");
  await panelDone(page, "panel-unmask");
  seen.unmask_error = await panelState(page, "panel-unmask");
  await page.locator("#unmask").scrollIntoViewIfNeeded();
  await shot(page, "ui-error", page.locator("#unmask"));

  // ------------------------------------- a long request, cancelled from the page
  await page.locator("#compare-form").scrollIntoViewIfNeeded();
  await page.selectOption("#ppl-dataset", config.long_dataset);
  await page.fill("#ppl-limit", "");
  await page.click("#ppl-run");
  const runAt = Date.now();
  const pplPanels = seen.columns.map((n) => `panel-ppl-${n}`);
  // Running, and the first model's first point is in: gardend is at work.
  await page.waitForFunction(([id, name]) => {
    const p = document.getElementById(id);
    const chart = window.garden.charts[`ppl-${name}`];
    return p.dataset.state === "running" && chart.getOption().series[0].data.length >= 1;
  }, [pplPanels[0], seen.columns[0]], { timeout: 120000 });
  await shotAround(page, "ui-progress", pplPanels.map((id) => `[id="${id}"]`));
  seen.cancel = { before: {} };
  for (const id of pplPanels) seen.cancel.before[id] = await panelState(page, id);
  seen.cancel.clicked_at = new Date().toISOString();
  const clicked = Date.now();
  seen.cancel.ran_ms = clicked - runAt;
  for (const id of pplPanels) {
    const button = page.locator(`[id="${id}"] button.cancel`);
    if (await button.count()) await button.click();
  }
  for (const id of pplPanels) await panelDone(page, id, ["cancelled", "failed", "done"], 30000);
  seen.cancel.took_ms = Date.now() - clicked;
  seen.cancel.after = {};
  for (const id of pplPanels) seen.cancel.after[id] = await panelState(page, id);
  seen.cancel.points = {};
  for (const n of seen.columns) {
    seen.cancel.points[n] = (await columnState(page, n)).ppl?.points?.length ?? 0;
  }
  log(`cancelled in ${seen.cancel.took_ms} ms`);
  await shotAround(page, "ui-cancelled", pplPanels.map((id) => `[id="${id}"]`));
  await context.close();

  // ---------------------------- the page of a garden ui whose gardend is down
  if (config.down_url) {
    const down = await browser.newPage({ viewport: { width: 1440, height: 900 } });
    await down.goto(config.down_url);
    await down.waitForFunction(() => window.garden && window.garden.firstView === true,
      null, { timeout: 60000 });
    seen.down = await panelState(down, "panel-models");
    seen.down.charts = await down.evaluate(() => Object.keys(window.garden.charts).length);
    await shot(down, "ui-server-down");
    await down.close();
  }
} finally {
  await browser.close();
  writeFileSync(config.out, JSON.stringify(seen, null, 1));
}
