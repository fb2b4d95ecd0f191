// The Durable HTTP API as the monitor uses it: where it is, which key and hub go with every call.
//
// The page only ever talks to /runtime/webhooks/durabletask/ of one app: this host by default, or the
// app named by ?base= (the handler then allows exactly that origin in the page's connect-src).
"use strict";

const KEY_STORE = "durable-monitor.key";
const HUB_STORE = "durable-monitor.hub";
const WEBHOOK_PATH = "/runtime/webhooks/durabletask";

const params = new URLSearchParams(window.location.search);

// A key given in the address (?code=) is kept for this tab only and taken out of the address bar,
// so it is neither bookmarked nor left in the history.
if (params.has("code")) {
  sessionStorage.setItem(KEY_STORE, params.get("code"));
  params.delete("code");
  const query = params.toString();
  history.replaceState(null, "", window.location.pathname + (query ? `?${query}` : "") + window.location.hash);
}

export const appBase = (params.get("base") || "").replace(/\/+$/, "");
export const apiBase = (appBase || window.location.origin) + WEBHOOK_PATH;

export function systemKey() {
  return sessionStorage.getItem(KEY_STORE) || "";
}

export function taskHub() {
  return sessionStorage.getItem(HUB_STORE) || "";
}

export function saveConnection({ key, hub }) {
  if (key) sessionStorage.setItem(KEY_STORE, key);
  if (hub) sessionStorage.setItem(HUB_STORE, hub); else sessionStorage.removeItem(HUB_STORE);
}

export function forgetKey() {
  sessionStorage.removeItem(KEY_STORE);
}

export class ApiError extends Error {
  constructor(message, status) {
    super(message);
    this.status = status;
  }
}

// Listeners told about every 401, so the page can say plainly that a key is needed.
const unauthorizedListeners = [];
export function onUnauthorized(listener) {
  unauthorizedListeners.push(listener);
}

export function url(path, query = {}) {
  const target = new URL(`${apiBase}/${path}`);
  for (const [name, value] of Object.entries(query)) {
    if (value !== undefined && value !== null && value !== "") target.searchParams.set(name, value);
  }
  if (taskHub()) target.searchParams.set("taskHub", taskHub());
  return target.toString();
}

// One API call. Resolves to {status, headers, body} for any HTTP answer (body parsed when JSON);
// rejects with ApiError only when the app cannot be reached or answers 401.
export async function call(method, path, { query, body, headers = {}, signal } = {}) {
  const init = { method, cache: "no-store", signal, headers: { Accept: "application/json", ...headers } };
  if (systemKey()) init.headers["x-functions-key"] = systemKey();
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = typeof body === "string" ? body : JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(url(path, query), init);
  } catch (error) {
    if (signal?.aborted) throw error;
    throw new ApiError(`The Durable HTTP API at ${apiBase} could not be reached: ${error.message}`, 0);
  }
  const text = await response.text();
  let parsed = text;
  if (text) {
    try {
      parsed = JSON.parse(text);
    } catch {
      // Not JSON: keep the text.
    }
  }
  if (response.status === 401) {
    const message = systemKey()
      ? "HTTP 401 Unauthorized: the app refused the system key. Check it under Connection."
      : "HTTP 401 Unauthorized: this app needs its system key (durabletask_extension) or master key. "
        + "Enter it under Connection.";
    for (const listener of unauthorizedListeners) listener(message);
    throw new ApiError(message, 401);
  }
  return { status: response.status, statusText: response.statusText, headers: response.headers, body: parsed };
}

// GET /instances, one page. The continuation token travels in a header both ways.
export async function listPage(query, token, signal) {
  const reply = await call("GET", "instances", {
    query: { showInput: "false", ...query },
    headers: token ? { "x-ms-continuation-token": token } : {},
    signal,
  });
  if (reply.status !== 200 || !Array.isArray(reply.body)) {
    throw new ApiError(`Listing instances failed: ${describe(reply)}`, reply.status);
  }
  const next = reply.headers.get("x-ms-continuation-token") || "";
  // Old Azure Storage builds answered base64("null") on the last page.
  return { rows: reply.body, next: next === "bnVsbA==" ? "" : next };
}

// "HTTP 412 Precondition Failed: <what the API said>"
export function describe(reply) {
  const body = reply.body;
  let detail = "";
  if (typeof body === "string") detail = body;
  else if (body && typeof body === "object" && !Array.isArray(body)) {
    detail = [body.Message, body.ExceptionMessage].filter(Boolean).join(" ") || JSON.stringify(body);
  } else if (body !== undefined && body !== "") detail = JSON.stringify(body);
  return `HTTP ${reply.status} ${reply.statusText || ""}`.trim() + (detail ? `: ${detail}` : "");
}
