// Counts per status and the histogram, from a small index of the instances in the chosen scope.
//
// The Durable HTTP API has no count: the only way to count is to list. Listing every instance on
// every refresh would move megabytes each few seconds with 10,000 instances, so the index lists the
// scope once (without inputs, 1,000 per page) and then, on each refresh, lists only what can have
// changed: the active instances (Pending, Running, Suspended, ContinuedAsNew) and those created since
// the newest one it has seen. An instance that left the active set is read by id (or, when many left,
// the scope is listed again). A full listing also runs every FULL_SCAN_MS and after a purge, which
// catches instances purged by someone else. Finished instances never change status, which is what
// makes this exact between full listings, apart from purges made elsewhere.
"use strict";

import { call, listPage } from "./api.js";

export const STATUSES = ["Running", "Pending", "Suspended", "ContinuedAsNew", "Completed", "Failed", "Terminated",
  "Canceled"];
export const ACTIVE = new Set(["Running", "Pending", "Suspended", "ContinuedAsNew"]);
const PAGE = 1000;
const FULL_SCAN_MS = 120_000;
const MAX_READS_BY_ID = 40;
const MAX_INDEXED = 200_000;
// createdTime has whole seconds; new instances are looked for from a little before the newest seen.
const NEW_SLACK_MS = 10_000;

function slim(row) {
  return { id: row.instanceId, name: row.name, status: row.runtimeStatus, created: Date.parse(row.createdTime) };
}

export class InstanceIndex {
  constructor() {
    this.scope = null;
    this.items = new Map();
    this.lastFull = 0;
    this.truncated = false;
    this.busy = null;
  }

  // scope: {prefix, from (ms or null), to (ms or null)}; a new scope means a new full listing.
  async refresh(scope, { full = false } = {}) {
    while (this.busy) await this.busy.catch(() => {});
    const key = JSON.stringify(scope);
    const changed = key !== JSON.stringify(this.scope);
    const needFull = full || changed || Date.now() - this.lastFull > FULL_SCAN_MS;
    this.busy = (needFull ? this.fullScan(scope) : this.incremental(scope)).finally(() => { this.busy = null; });
    return this.busy;
  }

  baseQuery(scope) {
    return {
      instanceIdPrefix: scope.prefix || undefined,
      createdTimeFrom: scope.from !== null ? new Date(scope.from).toISOString() : undefined,
      createdTimeTo: scope.to !== null ? new Date(scope.to).toISOString() : undefined,
      top: PAGE,
    };
  }

  async listAll(query, visit) {
    let token = "";
    do {
      const page = await listPage(query, token);
      for (const row of page.rows) visit(row);
      token = page.next;
      if (this.items.size > MAX_INDEXED) {
        this.truncated = true;
        return;
      }
    } while (token);
  }

  async fullScan(scope) {
    const items = new Map();
    this.truncated = false;
    const previous = this.items;
    this.items = items;
    try {
      await this.listAll(this.baseQuery(scope), (row) => items.set(row.instanceId, slim(row)));
    } catch (error) {
      this.items = previous;
      throw error;
    }
    this.scope = scope;
    this.lastFull = Date.now();
  }

  async incremental(scope) {
    const before = new Set([...this.items.values()].filter((item) => ACTIVE.has(item.status)).map((item) => item.id));
    const seen = new Set();
    const keep = (row) => {
      seen.add(row.instanceId);
      this.items.set(row.instanceId, slim(row));
    };
    const base = this.baseQuery(scope);
    await this.listAll({ ...base, runtimeStatus: [...ACTIVE].join(",") }, keep);
    let newest = scope.from ?? 0;
    for (const item of this.items.values()) newest = Math.max(newest, item.created);
    const since = Math.max(scope.from ?? 0, newest - NEW_SLACK_MS);
    await this.listAll({ ...base, createdTimeFrom: new Date(since).toISOString() }, keep);
    const left = [...before].filter((id) => !seen.has(id));
    if (left.length > MAX_READS_BY_ID) {
      await this.fullScan(scope);
      return;
    }
    await Promise.all(left.map(async (id) => {
      const reply = await call("GET", `instances/${encodeURIComponent(id)}`, { query: { showInput: "false" } });
      if (reply.status === 404) this.items.delete(id);
      else if (reply.body && typeof reply.body === "object") this.items.set(id, slim(reply.body));
    }));
  }

  forget(id) {
    this.items.delete(id);
  }

  // Items that pass the name filter (the API cannot filter by name; the index can).
  matching(name) {
    const wanted = (name || "").trim().toLowerCase();
    const all = [...this.items.values()];
    return wanted ? all.filter((item) => (item.name || "").toLowerCase().includes(wanted)) : all;
  }

  counts(name) {
    const counts = Object.fromEntries(STATUSES.map((status) => [status, 0]));
    for (const item of this.matching(name)) counts[item.status] = (counts[item.status] || 0) + 1;
    return counts;
  }
}

// ---------------------------------------------------------------------------------------------
// The histogram: instances started per time bucket, stacked by status, drawn as SVG by hand.

const SVG = "http://www.w3.org/2000/svg";

function svg(name, attributes = {}, text) {
  const element = document.createElementNS(SVG, name);
  for (const [key, value] of Object.entries(attributes)) element.setAttribute(key, String(value));
  if (text !== undefined) element.textContent = text;
  return element;
}

const STEPS = [1, 5, 15, 60, 300, 900, 3600, 3 * 3600, 6 * 3600, 86400, 7 * 86400].map((s) => s * 1000);

function bucketSize(spanMs, wanted) {
  return STEPS.find((step) => spanMs / step <= wanted) || STEPS[STEPS.length - 1];
}

// `onPick(from, to)` is called when a person picks a bar (click, or Enter on the focused bar).
export function drawHistogram(container, items, { from, to, statuses, onPick }) {
  const width = Math.max(280, container.clientWidth || 600);
  const height = 150;
  const pad = { left: 36, right: 8, top: 8, bottom: 22 };
  let start = from;
  const end = to ?? Date.now();
  if (start === null) start = items.reduce((min, item) => Math.min(min, item.created), end - 3600_000);
  const wanted = Math.max(12, Math.min(60, Math.floor(width / 14)));
  const size = bucketSize(Math.max(1, end - start), wanted);
  const first = Math.floor(start / size) * size;
  const count = Math.max(1, Math.ceil((end - first) / size));
  const buckets = Array.from({ length: count }, () => ({}));
  for (const item of items) {
    const index = Math.floor((item.created - first) / size);
    if (index < 0 || index >= count) continue;
    buckets[index][item.status] = (buckets[index][item.status] || 0) + 1;
  }
  const totals = buckets.map((bucket) => Object.values(bucket).reduce((a, b) => a + b, 0));
  const max = Math.max(1, ...totals);
  const plotW = width - pad.left - pad.right;
  const plotH = height - pad.top - pad.bottom;
  const barW = plotW / count;
  const root = svg("svg", {
    width, height, viewBox: `0 0 ${width} ${height}`, role: "group",
    "aria-label": `${items.length} instances started between ${new Date(first).toLocaleString()} and `
      + `${new Date(end).toLocaleString()}, at most ${max} per ${formatSpan(size)}`,
  });
  root.append(svg("line", { x1: pad.left, x2: width - pad.right, y1: pad.top + plotH, y2: pad.top + plotH,
    class: "axis" }));
  root.append(svg("text", { x: pad.left - 4, y: pad.top + 10, class: "tick", "text-anchor": "end" }, String(max)));
  root.append(svg("text", { x: pad.left - 4, y: pad.top + plotH, class: "tick", "text-anchor": "end" }, "0"));
  buckets.forEach((bucket, index) => {
    let y = pad.top + plotH;
    const x = pad.left + index * barW;
    const bucketStart = first + index * size;
    const parts = [];
    for (const status of statuses) {
      const n = bucket[status] || 0;
      if (!n) continue;
      const h = (n / max) * plotH;
      y -= h;
      const rect = svg("rect", { x: x + 0.5, y, width: Math.max(1, barW - 1), height: h, class: `bar s-${status}`,
        "data-status": status });
      parts.push(`${n} ${status}`);
      root.append(rect);
    }
    if (totals[index] && onPick) {
      // A focusable hit area over the whole column, on top: narrows the created range to this bucket.
      const hit = svg("a", { href: "#", class: "pick", "data-part": "histogram-bucket",
        "aria-label": `${parts.join(", ")} started from ${new Date(bucketStart).toLocaleString()} in `
          + `${formatSpan(size)}; show only these` });
      hit.append(svg("title", {}, `${new Date(bucketStart).toLocaleString()}: ${parts.join(", ")}`));
      hit.append(svg("rect", { x, y: pad.top, width: barW, height: plotH, class: "hit" }));
      hit.addEventListener("click", (event) => {
        event.preventDefault();
        onPick(bucketStart, bucketStart + size);
      });
      root.append(hit);
    }
  });
  root.append(svg("text", { x: pad.left, y: height - 6, class: "tick" }, new Date(first).toLocaleString()));
  root.append(svg("text", { x: width - pad.right, y: height - 6, class: "tick", "text-anchor": "end" },
    to === null ? "now" : new Date(end).toLocaleString()));
  container.replaceChildren(root);
}

export function formatSpan(ms) {
  if (ms < 60_000) return `${ms / 1000} s`;
  if (ms < 3600_000) return `${ms / 60_000} min`;
  if (ms < 86400_000) return `${ms / 3600_000} h`;
  return `${ms / 86400_000} d`;
}
