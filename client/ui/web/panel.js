// A panel of the page: a title, a status line for the request that fills
// it (progress, a Cancel button, how it ended), the error that request met
// (code and message, in place of the chart) and its body.
//
// The panel's data-state is "idle", "running", "done", "failed" or
// "cancelled"; its error box carries data-code.
import * as api from "./api.js";
import { el } from "./util.js";

export class Panel {
  constructor(title, { id, className = "" } = {}) {
    this.statusLine = el("div", { class: "status" });
    this.errorBox = el("div", { class: "error", role: "alert", hidden: true });
    this.body = el("div", { class: "body" });
    this.heading = el("h4", { text: title });
    this.root = el("div", { class: `panel ${className}`.trim(), id, data: { state: "idle" } },
      this.heading, this.statusLine, this.errorBox, this.body);
    this.task = null;
  }

  setTitle(title) {
    this.heading.textContent = title;
  }

  showError(error) {
    const code = error.code || "ERROR";
    let message = error.message || "";
    // A call cancelled here ends with gRPC's own CANCELLED, saying nothing more.
    if (code === "CANCELLED" && (message === "" || message.toUpperCase() === code)) {
      message = "cancelled from the page; gardend stopped the request";
    }
    this.errorBox.replaceChildren(el("strong", { class: "code", text: code }), " ",
      el("span", { class: "message", text: message }));
    this.errorBox.dataset.code = code;
    this.errorBox.hidden = false;
    this.body.hidden = true;
  }

  clearError() {
    this.errorBox.hidden = true;
    this.errorBox.replaceChildren();
    delete this.errorBox.dataset.code;
    this.body.hidden = false;
  }

  // A note in place of the body that is not an error (no dataset, ...).
  showNote(text) {
    this.clearError();
    this.statusLine.replaceChildren(el("span", { class: "note", text }));
    this.root.dataset.state = "idle";
  }

  // Runs fn(task), a streaming request, with its progress on the status
  // line; a request already running here is cancelled first. Resolves
  // once it ended, whichever way (errors are shown, not thrown).
  async run(label, fn) {
    if (this.task) await this.task.cancel();
    const task = new Task(label);
    this.task = task;
    this.clearError();
    this.statusLine.replaceChildren(task.root);
    this.root.dataset.state = "running";
    const started = performance.now();
    try {
      await fn(task);
      if (this.task !== task) return;
      task.ended("done", `done in ${((performance.now() - started) / 1000).toFixed(1)} s`);
      this.root.dataset.state = "done";
    } catch (error) {
      if (this.task !== task) return;
      const cancelled = error.code === "CANCELLED";
      task.ended(cancelled ? "cancelled" : "failed", cancelled ? "cancelled" : "failed");
      this.root.dataset.state = cancelled ? "cancelled" : "failed";
      this.showError(error);
    } finally {
      if (this.task === task) this.task = null;
    }
  }

  async close() {
    if (this.task) await this.task.cancel();
  }
}

// One request of a panel: its id (sent as X-Garden-Request), an
// AbortSignal, and its line: label, progress bar, text, Cancel.
export class Task {
  constructor(label) {
    this.id = api.newRequestId(label);
    this.controller = new AbortController();
    this.signal = this.controller.signal;
    this.bar = el("progress", { max: 1 });
    this.text = el("span", { class: "progress-text", text: "starting…" });
    this.button = el("button", { type: "button", class: "cancel", text: "Cancel",
      on: { click: () => this.cancel() } });
    this.root = el("span", { class: "task", data: { request: this.id } },
      el("span", { class: "label", text: label }), this.bar, this.text, this.button);
    this.finished = false;
    this.words = "starting…";
    this.started = performance.now();
    // The time it has run, beside the progress, while it runs.
    this.clock = setInterval(() => this.render(), 500);
  }

  render() {
    const seconds = (performance.now() - this.started) / 1000;
    this.text.textContent = seconds >= 1 ? `${this.words} · ${seconds.toFixed(0)} s` : this.words;
  }

  // done of total (total 0: unknown), with a few words.
  progress(done, total, words) {
    if (total > 0) {
      this.bar.max = total;
      this.bar.value = Math.min(done, total);
    } else {
      this.bar.removeAttribute("value");
    }
    this.words = words;
    this.render();
  }

  // Asks garden ui to cancel the gRPC call; closes the reply if it is no
  // longer running there, or if its last line has not come 5 s later.
  async cancel() {
    if (this.finished) return;
    this.button.disabled = true;
    this.words = "cancelling…";
    this.render();
    const running = await api.cancel(this.id);
    if (!running) this.controller.abort();
    else setTimeout(() => this.controller.abort(), 5000);
  }

  ended(state, words) {
    this.finished = true;
    clearInterval(this.clock);
    this.root.dataset.state = state;
    this.button.remove();
    this.bar.remove();
    this.text.textContent = words;
  }
}
