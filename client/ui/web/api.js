// The page's way to gardend, through garden ui's JSON bridge:
//   POST /api/call/METHOD    a unary RPC, one JSON object back
//   POST /api/stream/METHOD  a streaming RPC, one JSON line per message
//                            ({"message": ...}), then {"status": {...}}
//   POST /api/cancel/ID      cancels the stream sent as X-Garden-Request: ID
// Requests and messages are protobuf's JSON mapping (the .proto's field
// names; 64-bit integers come back as strings: read them with num()).

// A gRPC status that is not OK: code is its name ("NOT_FOUND").
export class GardenError extends Error {
  constructor(code, message) {
    super(message);
    this.code = code;
  }
  toString() {
    return `${this.code}: ${this.message}`;
  }
}

// Requests in flight, for window.garden.inflight (tests wait for 0).
let inflight = 0;
const changed = new Set();
export function onInflight(listener) {
  changed.add(listener);
}
function track(delta) {
  inflight += delta;
  for (const listener of changed) listener(inflight);
}

async function post(path, body, headers = {}, signal = undefined) {
  return fetch(path, {
    method: "POST",
    headers: { "Content-Type": "application/json", ...headers },
    body: JSON.stringify(body),
    signal,
  });
}

// The GardenError an HTTP error reply carries ({"status": {code, message}}).
async function replyError(response) {
  let status = null;
  try {
    status = (await response.json()).status;
  } catch {
    // not JSON: the HTTP status says what there is
  }
  if (status && status.code) return new GardenError(status.code, status.message || "");
  return new GardenError(`HTTP ${response.status}`, response.statusText || "no details");
}

function networkError(error) {
  if (error instanceof GardenError) return error;
  if (error && error.name === "AbortError") {
    return new GardenError("CANCELLED", "cancelled from the page");
  }
  return new GardenError("UNAVAILABLE", `garden ui cannot be reached: ${error}`);
}

// GET /api/info: {server, tls, token}.
export async function info() {
  const response = await fetch("/api/info");
  if (!response.ok) throw await replyError(response);
  return response.json();
}

// A unary RPC: its response message.
export async function call(method, request) {
  track(+1);
  try {
    const response = await post(`/api/call/${method}`, request);
    if (!response.ok) throw await replyError(response);
    return await response.json();
  } catch (error) {
    throw networkError(error);
  } finally {
    track(-1);
  }
}

let counter = 0;
// An id for X-Garden-Request: [A-Za-z0-9_-], at most 64.
export function newRequestId(prefix) {
  counter += 1;
  const clean = prefix.replace(/[^A-Za-z0-9_-]/g, "_").slice(0, 32);
  return `${clean}-${Date.now().toString(36)}-${counter}`;
}

// A streaming RPC: onMessage(message) for each message as it arrives;
// resolves when the stream ends OK, throws a GardenError otherwise
// (CANCELLED when cancelled). `id` names it for cancel(); `signal` (an
// AbortSignal) closes it from the page.
export async function stream(method, request, onMessage, { id, signal } = {}) {
  track(+1);
  try {
    const headers = id ? { "X-Garden-Request": id } : {};
    const response = await post(`/api/stream/${method}`, request, headers, signal);
    if (!response.ok) throw await replyError(response);
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    let status = null;
    const line = (text) => {
      if (text.trim() === "") return;
      const record = JSON.parse(text);
      if (record.message !== undefined) onMessage(record.message);
      else if (record.status) status = record.status;
    };
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += value;
      let end;
      while ((end = buffer.indexOf("\n")) >= 0) {
        line(buffer.slice(0, end));
        buffer = buffer.slice(end + 1);
      }
    }
    line(buffer);
    if (!status) throw new GardenError("UNKNOWN", "the stream ended without its status line");
    if (status.code !== "OK") throw new GardenError(status.code, status.message || "");
  } catch (error) {
    throw networkError(error);
  } finally {
    track(-1);
  }
}

// Asks garden ui to cancel the stream `id`: true if it was running.
export async function cancel(id) {
  try {
    const response = await post(`/api/cancel/${encodeURIComponent(id)}`, {});
    return response.ok;
  } catch {
    return false;
  }
}
