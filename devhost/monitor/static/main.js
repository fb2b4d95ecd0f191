// The monitor page: the instance list (filters, paging, counts, histogram), one instance's detail
// (JSON, timeline, live while it runs) and the actions of the Durable HTTP API, each confirmed first
// and answered with what the API said. Plain JavaScript modules, no dependencies.
"use strict";

import {
  ApiError, apiBase, appBase, call, describe, forgetKey, listPage, onUnauthorized, saveConnection, systemKey,
  taskHub,
} from "./api.js";
import { ACTIVE, InstanceIndex, STATUSES, drawHistogram } from "./counts.js";
import { buildTimeline, drawTimeline } from "./timeline.js";

const LIST_REFRESH_MS = 5000;
const DETAIL_REFRESH_MS = 1000;
// A name filter is applied to the rows of each page (the API cannot filter by name); at most this many
// pages are read to fill one screen before it is shown as it is.
const MAX_FETCHES_PER_SCREEN = 10;
const MAX_TIMELINE_BARS = 300;

const $ = (name, root = document) => root.querySelector(`[data-part="${name}"]`);
const show = (element, visible) => { element.hidden = !visible; };

// ---------------------------------------------------------------------------------------------
// Shared bits: alerts, dates, JSON, the theme

// One line for the whole page: an error (red) or, with kind "info", the outcome of a list action.
function alertText(message, kind = "error") {
  const alert = $("alert");
  alert.textContent = message || "";
  alert.dataset.kind = kind;
  show(alert, Boolean(message));
}

onUnauthorized((message) => {
  alertText(message);
  // Opened once; each later refresh that meets the same 401 leaves what the person is typing alone.
  if ($("connection").hidden) openConnection(true);
});

function formatTime(value) {
  const parsed = Date.parse(value || "");
  return Number.isNaN(parsed) ? "" : new Date(parsed).toLocaleString();
}

function pretty(value) {
  if (value === undefined) return "";
  return JSON.stringify(value, null, 2);
}

function short(value, length = 80) {
  if (value === null || value === undefined) return "";
  const text = typeof value === "string" ? value : JSON.stringify(value);
  return text.length > length ? `${text.slice(0, length - 1)}…` : text;
}

function badge(element, status) {
  element.textContent = status;
  element.dataset.status = status;
}

const THEMES = ["auto", "light", "dark"];
function applyTheme(theme) {
  if (theme === "auto") delete document.documentElement.dataset.theme;
  else document.documentElement.dataset.theme = theme;
  $("theme").textContent = `Theme: ${theme}`;
  localStorage.setItem("durable-monitor.theme", theme);
}

// ---------------------------------------------------------------------------------------------
// Connection: app URL (?base=), system key and task hub

function openConnection(open) {
  const form = $("connection");
  show(form, open);
  $("open-connection").setAttribute("aria-expanded", String(open));
  if (open) {
    form.elements.base.value = appBase;
    form.elements.hub.value = taskHub();
    form.elements.key.value = "";
    form.elements.key.placeholder = systemKey() ? "(a key is set)" : "";
    (systemKey() ? form.elements.base : form.elements.key).focus();
  }
}

function isAppUrl(text) {
  try {
    const url = new URL(text);
    return (url.protocol === "https:" || url.protocol === "http:") && Boolean(url.host);
  } catch {
    return false;
  }
}

function setupConnection() {
  $("api-base").textContent = apiBase + (taskHub() ? ` (task hub ${taskHub()})` : "");
  $("open-connection").addEventListener("click", () => openConnection($("connection").hidden));
  $("connection").addEventListener("submit", (event) => {
    event.preventDefault();
    const form = event.target;
    const base = form.elements.base.value.trim().replace(/\/+$/, "");
    if (base && !isAppUrl(base)) {
      alertText("The app URL must be an https:// (or http://) address, e.g. https://myapp.azurewebsites.net.");
      form.elements.base.focus();
      return;
    }
    saveConnection({ key: form.elements.key.value.trim(), hub: form.elements.hub.value.trim() });
    // The page's Content-Security-Policy names the app it may call, so another app means a reload.
    const params = new URLSearchParams(window.location.search);
    if (base) params.set("base", base); else params.delete("base");
    const query = params.toString();
    const target = new URL(window.location.pathname + (query ? `?${query}` : "") + window.location.hash,
      window.location.href).toString();
    if (target === window.location.href) window.location.reload(); else window.location.assign(target);
  });
  $("forget-key").addEventListener("click", () => {
    forgetKey();
    $("connection").elements.key.placeholder = "";
    alertText("The system key was forgotten.", "info");
  });
}

// ---------------------------------------------------------------------------------------------
// Confirmation dialog: returns the field values on confirm, null on cancel.

function confirmDialog({ title, text, fields = [], confirm = "Confirm", validate }) {
  const dialog = $("dialog");
  const form = $("dialog-form");
  $("dialog-title").textContent = title;
  $("dialog-text").textContent = text;
  $("dialog-error").textContent = "";
  $("dialog-confirm").textContent = confirm;
  const box = $("dialog-fields");
  box.replaceChildren(...fields.map((field) => {
    const wrap = document.createElement("div");
    wrap.className = field.type === "checkbox" ? "field check" : "field wide";
    const id = `dlg-${field.name}`;
    const label = document.createElement("label");
    label.htmlFor = id;
    label.textContent = field.label;
    const input = document.createElement(field.type === "textarea" ? "textarea" : "input");
    input.id = id;
    input.name = field.name;
    if (field.type === "checkbox") {
      input.type = "checkbox";
      input.checked = Boolean(field.value);
      wrap.append(input, label);
    } else {
      if (field.type !== "textarea") input.type = "text";
      input.value = field.value ?? "";
      input.autocomplete = "off";
      if (field.type === "textarea") input.rows = 4;
      wrap.append(label, input);
    }
    return wrap;
  }));
  return new Promise((resolve) => {
    const finish = (result) => {
      form.removeEventListener("submit", onSubmit);
      $("dialog-cancel").removeEventListener("click", onCancel);
      dialog.removeEventListener("cancel", onCancel);
      dialog.close();
      resolve(result);
    };
    const onSubmit = (event) => {
      event.preventDefault();
      const values = {};
      for (const field of fields) {
        const input = form.elements[field.name];
        values[field.name] = field.type === "checkbox" ? input.checked : input.value;
      }
      const problem = validate?.(values);
      if (problem) {
        $("dialog-error").textContent = problem;
        return;
      }
      finish(values);
    };
    const onCancel = (event) => {
      event?.preventDefault();
      finish(null);
    };
    form.addEventListener("submit", onSubmit);
    $("dialog-cancel").addEventListener("click", onCancel);
    dialog.addEventListener("cancel", onCancel);
    dialog.showModal();
    (box.querySelector("input, textarea") || $("dialog-confirm")).focus();
  });
}

function parseJson(text) {
  try {
    JSON.parse(text);
    return null;
  } catch (error) {
    return `The body is not valid JSON: ${error.message}`;
  }
}

// ---------------------------------------------------------------------------------------------
// The list

const list = {
  filters: null,
  pageStarts: [""], // continuation token that starts each page seen so far
  page: 0,
  nextToken: "",
  paused: false,
  timer: null,
  index: new InstanceIndex(),
  loading: null,
};

function readFilters() {
  const form = $("filters");
  const statuses = [...form.querySelectorAll("input[name=status]:checked")].map((input) => input.value);
  const range = form.elements.range.value;
  let from = null;
  let to = null;
  if (range === "custom") {
    const f = Date.parse(form.elements.from.value);
    const t = Date.parse(form.elements.to.value);
    from = Number.isNaN(f) ? null : f;
    to = Number.isNaN(t) ? null : t;
  } else if (range !== "all") {
    from = Date.now() - Number(range) * 1000;
  }
  return {
    statuses, name: form.elements.name.value.trim(), prefix: form.elements.prefix.value.trim(), from, to,
    size: Number(form.elements.size.value) || 50,
  };
}

function listQuery(filters) {
  return {
    runtimeStatus: filters.statuses.join(",") || undefined,
    instanceIdPrefix: filters.prefix || undefined,
    createdTimeFrom: filters.from !== null ? new Date(filters.from).toISOString() : undefined,
    createdTimeTo: filters.to !== null ? new Date(filters.to).toISOString() : undefined,
    top: filters.size,
  };
}

// One screen of rows from `token` on: the API's pages, narrowed by name here.
async function fetchScreen(filters, token) {
  const wanted = filters.name.toLowerCase();
  const rows = [];
  let next = token;
  let fetches = 0;
  do {
    const page = await listPage(listQuery(filters), next);
    fetches += 1;
    rows.push(...(wanted ? page.rows.filter((row) => (row.name || "").toLowerCase().includes(wanted)) : page.rows));
    next = page.next;
  } while (next && rows.length < filters.size && fetches < MAX_FETCHES_PER_SCREEN && wanted);
  return { rows, next };
}

function renderRows(rows) {
  const body = $("rows");
  body.replaceChildren(...rows.map((row) => {
    const tr = document.createElement("tr");
    tr.dataset.instanceId = row.instanceId;
    const idCell = document.createElement("td");
    const link = document.createElement("a");
    link.href = `#/instance/${encodeURIComponent(row.instanceId)}`;
    link.textContent = row.instanceId;
    link.className = "mono";
    idCell.append(link);
    const name = document.createElement("td");
    name.textContent = row.name;
    const status = document.createElement("td");
    const b = document.createElement("span");
    b.className = "badge";
    badge(b, row.runtimeStatus);
    status.append(b);
    const custom = document.createElement("td");
    custom.className = "mono custom";
    custom.textContent = short(row.customStatus);
    custom.title = short(row.customStatus, 2000);
    const created = document.createElement("td");
    created.textContent = formatTime(row.createdTime);
    const updated = document.createElement("td");
    updated.textContent = formatTime(row.lastUpdatedTime);
    for (const [cell, label] of [[idCell, "Instance id"], [name, "Name"], [status, "Status"], [custom, "Custom status"],
      [created, "Created"], [updated, "Last updated"]]) cell.dataset.label = label;
    tr.append(idCell, name, status, custom, created, updated);
    return tr;
  }));
  show($("no-rows"), rows.length === 0);
}

// The table is aria-busy from a change of filters or page until the rows for it are shown.
function markBusy(busy) {
  $("instances").setAttribute("aria-busy", String(busy));
}

async function loadPage() {
  const filters = list.filters;
  const page = list.page;
  const token = list.pageStarts[page];
  const screen = await fetchScreen(filters, token);
  if (filters !== list.filters || page !== list.page) return; // changed meanwhile; a newer load follows
  markBusy(false);
  list.nextToken = screen.next;
  renderRows(screen.rows);
  $("prev").disabled = list.page === 0;
  $("next").disabled = !screen.next;
  $("page-label").textContent = `Page ${list.page + 1}`;
}

function renderCounts() {
  const filters = list.filters;
  const counts = list.index.counts(filters.name);
  for (const input of $("filters").querySelectorAll("input[name=status]")) {
    input.parentElement.querySelector(".count").textContent = counts[input.value] ?? 0;
  }
  const items = list.index.matching(filters.name);
  const shown = filters.statuses.length ? items.filter((item) => filters.statuses.includes(item.status)) : items;
  // Not under the keyboard focus: redrawing would throw the focus out of the chart.
  if (!$("histogram").contains(document.activeElement)) {
    drawHistogram($("histogram"), shown, { from: filters.from, to: filters.to, statuses: STATUSES, onPick: pickRange });
  }
  const total = Object.values(counts).reduce((a, b) => a + b, 0);
  $("counts-note").textContent = `${total} instance(s) in range`
    + (list.index.truncated ? " (counted up to the first 200,000)" : "")
    + ". Counts come from listing the range once, then only active and new instances on each refresh.";
}

// A bar of the histogram picked: show the instances created in its time span.
function pickRange(from, to) {
  const form = $("filters");
  const local = (ms) => {
    const date = new Date(ms - new Date(ms).getTimezoneOffset() * 60_000);
    return date.toISOString().slice(0, 19);
  };
  form.elements.range.value = "custom";
  form.elements.range.dispatchEvent(new Event("change"));
  form.elements.from.value = local(from);
  form.elements.to.value = local(to);
  applyFilters();
}

async function refreshList({ full = false } = {}) {
  // One refresh at a time; a caller that comes during one (new filters, a page turn) runs after it.
  while (list.loading) await list.loading;
  list.loading = (async () => {
    try {
      const filters = list.filters;
      await Promise.all([
        loadPage(),
        list.index.refresh({ prefix: filters.prefix, from: filters.from, to: filters.to }, { full })
          .then(renderCounts),
      ]);
      if ($("alert").dataset.source === "list") alertText("");
      $("refreshed").textContent = `Updated ${new Date().toLocaleTimeString()}`;
    } catch (error) {
      if (!(error instanceof ApiError) || error.status !== 401) alertText(error.message);
      $("alert").dataset.source = "list";
      markBusy(false);
    } finally {
      list.loading = null;
    }
  })();
  return list.loading;
}

function scheduleList() {
  clearTimeout(list.timer);
  if (list.paused || route().view !== "list") return;
  list.timer = setTimeout(async () => {
    if (!document.hidden) await refreshList();
    scheduleList();
  }, LIST_REFRESH_MS);
}

function applyFilters() {
  markBusy(true);
  list.filters = readFilters();
  list.pageStarts = [""];
  list.page = 0;
  refreshList().then(scheduleList);
}

function setupList() {
  const box = $("status-filters");
  box.replaceChildren(...STATUSES.map((status) => {
    const label = document.createElement("label");
    label.className = "status-choice";
    const input = document.createElement("input");
    input.type = "checkbox";
    input.name = "status";
    input.value = status;
    const text = document.createElement("span");
    text.textContent = status;
    const count = document.createElement("span");
    count.className = "count";
    count.dataset.part = `count-${status}`;
    label.append(input, text, count);
    label.dataset.status = status;
    return label;
  }));
  const form = $("filters");
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    applyFilters();
  });
  form.elements.range.addEventListener("change", () => {
    const custom = form.elements.range.value === "custom";
    show($("custom-range"), custom);
    show($("custom-range-to"), custom);
  });
  $("next").addEventListener("click", async () => {
    if (!list.nextToken) return;
    markBusy(true);
    list.page += 1;
    list.pageStarts[list.page] = list.nextToken;
    list.pageStarts.length = list.page + 1;
    await refreshList();
  });
  $("prev").addEventListener("click", async () => {
    if (list.page === 0) return;
    markBusy(true);
    list.page -= 1;
    await refreshList();
  });
  $("pause").addEventListener("click", () => {
    list.paused = !list.paused;
    $("pause").setAttribute("aria-pressed", String(list.paused));
    $("pause").textContent = list.paused ? "Resume auto-refresh" : "Pause auto-refresh";
    scheduleList();
  });
  $("purge-filter").addEventListener("click", purgeByFilter);
}

async function purgeByFilter() {
  const filters = readFilters();
  const since = filters.from !== null ? `from ${new Date(filters.from).toLocaleString()}` : "any time";
  const describeRange = `created ${since}`
    + (filters.to !== null ? ` to ${new Date(filters.to).toLocaleString()}` : "");
  const statuses = filters.statuses.length ? filters.statuses.join(", ") : "any status";
  let perInstance = null;
  let text;
  if (filters.name || filters.prefix) {
    // The API's purge filter has no name or id prefix; purge exactly the instances that match, by id.
    await list.index.refresh({ prefix: filters.prefix, from: filters.from, to: filters.to });
    perInstance = list.index.matching(filters.name)
      .filter((item) => (filters.statuses.length ? filters.statuses.includes(item.status) : !ACTIVE.has(item.status)));
    text = `Purge the history of ${perInstance.length} instance(s): ${statuses}`
      + `${filters.statuses.length ? "" : " (finished ones)"}, ${describeRange}`
      + `${filters.name ? `, name containing "${filters.name}"` : ""}`
      + `${filters.prefix ? `, id starting with "${filters.prefix}"` : ""}. `
      + "They are deleted one by one. This cannot be undone.";
  } else {
    text = `Purge the history of every instance with ${statuses}, ${describeRange}, in one API call `
      + "(DELETE /instances). This cannot be undone.";
  }
  const ok = await confirmDialog({ title: "Purge instances?", text, confirm: "Purge" });
  if (!ok) return;
  try {
    if (perInstance) {
      let deleted = 0;
      const failures = [];
      for (const item of perInstance) {
        const reply = await call("DELETE", `instances/${encodeURIComponent(item.id)}`);
        if (reply.status === 200) deleted += 1;
        else failures.push(`${item.id}: ${describe(reply)}`);
      }
      const problems = failures.length ? ` ${failures.slice(0, 3).join("; ")}` : "";
      alertText(`Purged ${deleted} of ${perInstance.length} instance(s).${problems}`, failures.length ? "error" : "info");
    } else {
      const reply = await call("DELETE", "instances", {
        query: {
          createdTimeFrom: new Date(filters.from ?? 0).toISOString(),
          createdTimeTo: filters.to !== null ? new Date(filters.to).toISOString() : undefined,
          runtimeStatus: filters.statuses.join(",") || undefined,
        },
      });
      alertText(`Purge by filter: ${describe(reply)}`, reply.status < 300 || reply.status === 404 ? "info" : "error");
    }
    $("alert").dataset.source = "purge";
  } catch (error) {
    alertText(error.message);
  }
  markBusy(true);
  list.pageStarts = [""];
  list.page = 0;
  await refreshList({ full: true });
}

// ---------------------------------------------------------------------------------------------
// One instance

const detail = {
  id: null,
  status: null,
  customMarks: [],
  timer: null,
  abort: null,
};

function resetDetail(id) {
  detail.abort?.abort();
  clearTimeout(detail.timer);
  detail.id = id;
  detail.status = null;
  detail.customMarks = [];
  detail.abort = new AbortController();
  show($("answer"), false);
  $("d-id").textContent = id;
  $("d-name").textContent = "";
  badge($("d-status"), "");
  for (const name of ["d-custom", "d-input", "d-output", "d-history", "d-failure"]) $(name).textContent = "";
  $("timeline").replaceChildren();
}

function noteCustomStatus(status) {
  const value = status.customStatus;
  const last = detail.customMarks[detail.customMarks.length - 1];
  if (value === null || value === undefined) return;
  if (last && JSON.stringify(last.value) === JSON.stringify(value)) return;
  // Saved with the checkpoint that wrote the newest history events; lastUpdatedTime has whole seconds only.
  const times = (status.historyEvents || []).map((event) => Date.parse(event.Timestamp))
    .filter((t) => !Number.isNaN(t));
  const updated = Date.parse(status.lastUpdatedTime);
  const at = times.length ? Math.max(...times) : updated;
  detail.customMarks.push({ at: Number.isNaN(at) ? Date.now() : at, value });
}

function failureText(status) {
  const parts = [];
  if (status.runtimeStatus === "Failed") {
    parts.push(typeof status.output === "string" ? status.output : pretty(status.output));
  }
  for (const event of status.historyEvents || []) {
    if (event.EventType === "TaskFailed" || event.EventType === "SubOrchestrationInstanceFailed") {
      parts.push(`${event.FunctionName}: ${event.Reason || ""}\n${event.Details || ""}`.trim());
    }
    if (event.EventType === "ExecutionCompleted" && event.FailureDetails) parts.push(pretty(event.FailureDetails));
  }
  return parts.join("\n\n");
}

function renderDetail(status) {
  detail.status = status;
  $("d-name").textContent = status.name;
  badge($("d-status"), status.runtimeStatus);
  $("d-created").textContent = formatTime(status.createdTime);
  $("d-updated").textContent = formatTime(status.lastUpdatedTime);
  $("d-custom").textContent = pretty(status.customStatus);
  $("d-input").textContent = pretty(status.input);
  $("d-output").textContent = pretty(status.output);
  const failure = failureText(status);
  $("d-failure").textContent = failure;
  show($("d-failure-card"), Boolean(failure));
  $("d-history").textContent = pretty(status.historyEvents || []);
  noteCustomStatus(status);
  const model = buildTimeline(status, Date.now());
  const steps = model.bars.length;
  // A long history draws its latest steps only; the JSON below still holds all of it.
  model.bars = model.bars.slice(-MAX_TIMELINE_BARS);
  drawTimeline($("timeline"), model, detail.customMarks);
  $("timeline-note").textContent = (steps > MAX_TIMELINE_BARS
    ? `The latest ${MAX_TIMELINE_BARS} of ${steps} steps are drawn. ` : "") + "Custom status is not part of the history: the ◆ marks show the value when the page "
    + "opened and every change it saw since, each at the checkpoint that saved it. A wait for an event starts at "
    + "the last step the orchestration recorded before the event arrived.";
  const active = ACTIVE.has(status.runtimeStatus);
  const enabled = {
    raise: active,
    suspend: active && status.runtimeStatus !== "Suspended",
    resume: status.runtimeStatus === "Suspended",
    terminate: active, rewind: status.runtimeStatus === "Failed", restart: true, purge: !active,
  };
  for (const button of $("actions").querySelectorAll("[data-action]")) {
    button.disabled = !enabled[button.dataset.action];
  }
}

async function loadDetail() {
  const id = detail.id;
  const signal = detail.abort.signal;
  try {
    const reply = await call("GET", `instances/${encodeURIComponent(id)}`,
      { query: { showHistory: "true", showHistoryOutput: "true" }, signal });
    if (id !== detail.id) return;
    if (reply.status === 404) {
      $("d-name").textContent = "No such instance";
      badge($("d-status"), "Not found");
      for (const button of $("actions").querySelectorAll("[data-action]")) button.disabled = true;
      $("timeline").replaceChildren();
      return;
    }
    if (reply.body && typeof reply.body === "object" && reply.body.instanceId) {
      renderDetail(reply.body);
    } else {
      alertText(`Reading the instance failed: ${describe(reply)}`);
    }
  } catch (error) {
    if (signal.aborted) return;
    if (!(error instanceof ApiError) || error.status !== 401) alertText(error.message);
  }
}

function scheduleDetail() {
  clearTimeout(detail.timer);
  if (route().view !== "detail") return;
  // Live while the instance runs; a finished one only changes through an action, which reloads it.
  const active = !detail.status || ACTIVE.has(detail.status.runtimeStatus);
  if (!active) return;
  detail.timer = setTimeout(async () => {
    if (!document.hidden) await loadDetail();
    scheduleDetail();
  }, DETAIL_REFRESH_MS);
}

const ACTIONS = {
  raise: {
    title: "Raise an event",
    fields: [{ name: "event", label: "Event name" }, { name: "body", label: "Event data (JSON)", type: "textarea", value: "null" }],
    validate: (v) => (!v.event.trim() ? "The event name is required." : parseJson(v.body)),
    run: (id, v) => call("POST", `instances/${id}/raiseEvent/${encodeURIComponent(v.event.trim())}`, { body: v.body }),
  },
  suspend: {
    title: "Suspend the instance", fields: [{ name: "reason", label: "Reason" }],
    run: (id, v) => call("POST", `instances/${id}/suspend`, { query: { reason: v.reason } }),
  },
  resume: {
    title: "Resume the instance", fields: [{ name: "reason", label: "Reason" }],
    run: (id, v) => call("POST", `instances/${id}/resume`, { query: { reason: v.reason } }),
  },
  terminate: {
    title: "Terminate the instance", fields: [{ name: "reason", label: "Reason" }],
    text: "A terminated instance cannot be resumed.",
    run: (id, v) => call("POST", `instances/${id}/terminate`, { query: { reason: v.reason } }),
  },
  rewind: {
    title: "Rewind the failed instance", fields: [{ name: "reason", label: "Reason" }],
    text: "The failed steps run again; what succeeded is kept.",
    run: (id, v) => call("POST", `instances/${id}/rewind`, { query: { reason: v.reason } }),
  },
  restart: {
    title: "Restart the instance",
    fields: [{ name: "newId", label: "With a new instance id", type: "checkbox", value: true }],
    text: "Starts the same orchestrator again with the same input.",
    run: (id, v) => call("POST", `instances/${id}/restart`, { query: { restartWithNewInstanceId: String(v.newId) } }),
  },
  purge: {
    title: "Purge the instance", text: "Deletes the instance and its history. This cannot be undone.",
    run: (id) => call("DELETE", `instances/${id}`),
  },
};

function showAnswer(action, reply) {
  const answer = $("answer");
  answer.replaceChildren();
  const line = document.createElement("p");
  line.dataset.part = "answer-status";
  line.textContent = `${ACTIONS[action].title}: ${describe(reply)}`;
  answer.dataset.ok = String(reply.status >= 200 && reply.status < 300);
  answer.append(line);
  if (reply.body && typeof reply.body === "object" && reply.body.id && reply.body.statusQueryGetUri) {
    const link = document.createElement("a");
    link.href = `#/instance/${encodeURIComponent(reply.body.id)}`;
    link.textContent = `Open the restarted instance ${reply.body.id}`;
    answer.append(link);
  }
  show(answer, true);
}

async function runAction(action) {
  const spec = ACTIONS[action];
  const id = detail.id;
  const values = await confirmDialog({
    title: `${spec.title}?`, text: `${spec.text ? `${spec.text} ` : ""}Instance ${id}.`, fields: spec.fields || [],
    confirm: spec.title.split(" ")[0], validate: spec.validate,
  });
  if (!values) return;
  try {
    const reply = await spec.run(encodeURIComponent(id), values);
    showAnswer(action, reply);
    if (action === "purge" && reply.status === 200) list.index.forget(id);
  } catch (error) {
    showAnswer(action, { status: error.status || 0, statusText: "", body: error.message });
  }
  await loadDetail();
  scheduleDetail();
}

function setupDetail() {
  for (const button of $("actions").querySelectorAll("[data-action]")) {
    button.addEventListener("click", () => runAction(button.dataset.action));
  }
}

// ---------------------------------------------------------------------------------------------
// Routing: #/ is the list, #/instance/{id} one instance.

function route() {
  const match = window.location.hash.match(/^#\/instance\/(.+)$/);
  return match ? { view: "detail", id: decodeURIComponent(match[1]) } : { view: "list" };
}

function onRoute() {
  const current = route();
  show($("list-view"), current.view === "list");
  show($("detail-view"), current.view === "detail");
  if (current.view === "detail") {
    clearTimeout(list.timer);
    if (current.id !== detail.id) resetDetail(current.id);
    document.title = `${current.id} · Durable monitor`;
    loadDetail().then(scheduleDetail);
  } else {
    detail.abort?.abort();
    clearTimeout(detail.timer);
    detail.id = null;
    document.title = "Durable monitor";
    refreshList().then(scheduleList);
  }
}

document.addEventListener("DOMContentLoaded", () => {
  applyTheme(localStorage.getItem("durable-monitor.theme") || "auto");
  $("theme").addEventListener("click", () => {
    const current = document.documentElement.dataset.theme || "auto";
    applyTheme(THEMES[(THEMES.indexOf(current) + 1) % THEMES.length]);
  });
  setupConnection();
  setupList();
  setupDetail();
  list.filters = readFilters();
  window.addEventListener("hashchange", onRoute);
  // Redraw the SVGs at the new width (text stays at its pixel size instead of being scaled).
  let resize = null;
  window.addEventListener("resize", () => {
    clearTimeout(resize);
    resize = setTimeout(() => {
      if (route().view === "list") renderCounts();
      else if (detail.status) renderDetail(detail.status);
    }, 150);
  });
  onRoute();
});
