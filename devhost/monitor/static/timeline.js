// An instance's history as a timeline drawn to scale: one bar per activity, sub-orchestration, timer
// and wait for an event, from when it began to when it ended (or to now while it is still open).
//
// What the history (as the Durable HTTP API renders it) allows:
// - activities and sub-orchestrations: ScheduledTime to the completion's Timestamp; an unmatched
//   TaskScheduled / SubOrchestrationInstanceCreated is still running;
// - timers: TimerCreated to the FireAt of the TimerFired with the same FireAt (TimerId is not in the
//   API's history, and a TimerFired's Timestamp is when the timer was created, not when it fired);
// - waits for an event: the history records when an event arrived, not when the orchestrator began to
//   wait, so the bar starts at the last thing the orchestration recorded before the event (the end of
//   the episode that was waiting) — exact for the usual "do something, then wait" shape;
// - custom status: the history does not record it. The orchestrator sets it during an episode and it is
//   saved with that episode's checkpoint, so a value is marked at the newest history event of the
//   reading that first showed it: the final one at the end, and every change the page sees while open.
"use strict";

const SVG = "http://www.w3.org/2000/svg";
const ROW = 34;
const AXIS = 26;

function svg(name, attributes = {}, text) {
  const element = document.createElementNS(SVG, name);
  for (const [key, value] of Object.entries(attributes)) element.setAttribute(key, String(value));
  if (text !== undefined) element.textContent = text;
  return element;
}

function time(value) {
  const parsed = Date.parse(value || "");
  return Number.isNaN(parsed) ? null : parsed;
}

// The bars and marks of one status object (with historyEvents); `now` closes what is still open.
export function buildTimeline(status, now) {
  const events = Array.isArray(status.historyEvents) ? status.historyEvents : [];
  const bars = [];
  const marks = [];
  const started = events.find((e) => e.EventType === "ExecutionStarted");
  const start = time(started?.Timestamp) ?? time(status.createdTime) ?? now;
  const completed = events.find((e) => e.EventType === "ExecutionCompleted" || e.EventType === "ExecutionTerminated");
  const finished = ["Completed", "Failed", "Terminated", "Canceled"].includes(status.runtimeStatus);
  const end = finished ? (time(completed?.Timestamp) ?? time(status.lastUpdatedTime) ?? now) : now;
  const timers = [];
  let lastRecorded = start;
  let suspendedAt = null;
  for (const event of events) {
    const at = time(event.Timestamp) ?? start;
    switch (event.EventType) {
      case "TaskCompleted":
      case "TaskFailed":
        bars.push({ kind: "activity", label: event.FunctionName || "activity", start: time(event.ScheduledTime) ?? at,
          end: at, outcome: event.EventType === "TaskFailed" ? "failed" : "ok" });
        break;
      case "TaskScheduled":
        bars.push({ kind: "activity", label: event.Name || "activity", start: at, end, outcome: "open" });
        break;
      case "SubOrchestrationInstanceCompleted":
      case "SubOrchestrationInstanceFailed":
        bars.push({ kind: "suborchestration", label: event.FunctionName || "sub-orchestration",
          start: time(event.ScheduledTime) ?? at, end: at,
          outcome: event.EventType.endsWith("Failed") ? "failed" : "ok" });
        break;
      case "SubOrchestrationInstanceCreated":
        bars.push({ kind: "suborchestration", label: event.Name || "sub-orchestration", start: at, end,
          outcome: "open", detail: event.InstanceId });
        break;
      case "TimerCreated": {
        const bar = { kind: "timer", label: `Timer to ${new Date(time(event.FireAt) ?? at).toLocaleTimeString()}`,
          start: at, end, outcome: finished ? "cancelled" : "open", fireAt: event.FireAt };
        timers.push(bar);
        bars.push(bar);
        break;
      }
      case "TimerFired": {
        const bar = timers.find((t) => t.outcome !== "ok" && t.fireAt === event.FireAt);
        if (bar) {
          // A TimerFired event is made when the timer is created (its Timestamp says so); it fires at FireAt.
          bar.end = Math.max(at, time(event.FireAt) ?? at);
          bar.outcome = "ok";
        }
        break;
      }
      case "EventRaised":
        bars.push({ kind: "event", label: `Wait for ${event.Name}`, start: Math.min(lastRecorded, at), end: at,
          outcome: "ok" });
        break;
      case "ExecutionSuspended":
        suspendedAt = at;
        break;
      case "ExecutionResumed":
        bars.push({ kind: "suspended", label: "Suspended", start: suspendedAt ?? at, end: at, outcome: "ok" });
        suspendedAt = null;
        break;
      default:
        break;
    }
    if (event.EventType !== "EventRaised") lastRecorded = Math.max(lastRecorded, at);
  }
  if (suspendedAt !== null) bars.push({ kind: "suspended", label: "Suspended", start: suspendedAt, end, outcome: "open" });
  if (completed) {
    marks.push({ kind: "end", at: time(completed.Timestamp) ?? end,
      label: completed.EventType === "ExecutionTerminated" ? "Terminated"
        : `${completed.OrchestrationStatus || status.runtimeStatus}` });
  }
  return { start, end: Math.max(end, start + 1), bars, marks };
}

function formatDuration(ms) {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 120_000) return `${Number((ms / 1000).toFixed(ms < 10_000 ? 2 : 1))} s`;
  if (ms < 7200_000) return `${Number((ms / 60_000).toFixed(1))} min`;
  return `${Number((ms / 3600_000).toFixed(1))} h`;
}

const KIND_NAMES = { activity: "Activity", suborchestration: "Sub-orchestration", timer: "Timer", event: "Event wait",
  suspended: "Suspended" };

// Draws the timeline into `container`; customMarks: [{at, value}] custom-status readings.
export function drawTimeline(container, model, customMarks) {
  const width = Math.max(300, container.clientWidth || 800);
  const labelW = Math.min(220, Math.floor(width * 0.35));
  const plotX = labelW + 8;
  const plotW = width - plotX - 12;
  const span = Math.max(1, model.end - model.start);
  const x = (t) => plotX + ((Math.min(Math.max(t, model.start), model.end) - model.start) / span) * plotW;
  const rows = model.bars.length + 1;
  const height = AXIS + rows * ROW + 8;
  const root = svg("svg", { width, height, viewBox: `0 0 ${width} ${height}`, role: "list",
    "aria-label": `History timeline, ${formatDuration(span)} from the start` });

  // Axis: time since the start, at round steps, about one label per 90 px.
  const step = niceStep(span, Math.max(1, Math.floor(plotW / 90)));
  for (let t = 0; t <= span; t += step) {
    const tx = plotX + (t / span) * plotW;
    root.append(svg("line", { x1: tx, x2: tx, y1: AXIS - 6, y2: height - 4, class: "grid" }));
    const anchor = t === 0 ? "start" : tx > plotX + plotW - 30 ? "end" : "middle";
    root.append(svg("text", { x: tx, y: AXIS - 10, class: "tick", "text-anchor": anchor }, `+${formatDuration(t)}`));
  }

  // The first row holds the custom-status marks and the end of the orchestration.
  const markRow = svg("g", { role: "listitem", "data-kind": "custom-status",
    "aria-label": `Custom status: ${customMarks.length} reading(s)` });
  const my = AXIS + ROW / 2 + 4;
  markRow.append(svg("text", { x: 4, y: my + 4, class: "label" }, "Custom status"));
  markRow.append(svg("line", { x1: plotX, x2: plotX + plotW, y1: my, y2: my, class: "track" }));
  for (const mark of customMarks) {
    const cx = x(mark.at);
    const text = JSON.stringify(mark.value);
    const diamond = svg("path", { d: `M ${cx} ${my - 7} l 7 7 l -7 7 l -7 -7 z`, class: "mark-custom",
      "data-part": "custom-mark", "aria-label": `Custom status at +${formatDuration(mark.at - model.start)}: ${text}` });
    diamond.append(svg("title", {}, `${new Date(mark.at).toLocaleTimeString()}: ${text}`));
    markRow.append(diamond);
  }
  for (const mark of model.marks) {
    const mx = x(mark.at);
    const end = svg("path", { d: `M ${mx} ${my - 8} v 16`, class: `mark-end o-${mark.label}` });
    end.append(svg("title", {}, `${mark.label} at ${new Date(mark.at).toLocaleTimeString()}`));
    markRow.append(end);
  }
  root.append(markRow);

  model.bars.forEach((bar, index) => {
    const y = AXIS + (index + 1) * ROW;
    const duration = bar.end - bar.start;
    const state = bar.outcome === "open" ? "still open" : bar.outcome === "cancelled" ? "did not fire" : bar.outcome;
    const description = `${KIND_NAMES[bar.kind]} ${bar.label}: +${formatDuration(bar.start - model.start)}, `
      + `${formatDuration(duration)}, ${state}`;
    const group = svg("g", { role: "listitem", "data-kind": bar.kind, "data-outcome": bar.outcome,
      "aria-label": description });
    group.append(svg("title", {}, `${description}\n${new Date(bar.start).toLocaleTimeString()} – `
      + `${new Date(bar.end).toLocaleTimeString()}`));
    group.append(svg("text", { x: 4, y: y + 21, class: "label" }, truncate(bar.label, Math.floor(labelW / 7.5))));
    const bx = x(bar.start);
    const bw = Math.max(3, x(bar.end) - bx);
    group.append(svg("rect", { x: bx, y: y + 9, width: bw, height: 16, rx: 3, class: `bar k-${bar.kind} o-${bar.outcome}` }));
    const inside = bw > 130;
    // Inside a wide bar; else after it, or before it when it ends near the right edge.
    const before = !inside && bx + bw + 130 > width;
    group.append(svg("text", { x: inside ? bx + 4 : before ? bx - 4 : bx + bw + 4, y: y + 21,
      "text-anchor": before ? "end" : "start", class: inside ? "bar-text inside" : "bar-text" },
    formatDuration(duration) + (bar.outcome === "ok" ? "" : `, ${state}`)));
    root.append(group);
  });
  container.replaceChildren(root);
}

// The smallest of 1, 2, 5 × 10^k ms that keeps the axis to at most `ticks` steps.
function niceStep(span, ticks) {
  const raw = span / ticks;
  const power = 10 ** Math.floor(Math.log10(raw));
  return [1, 2, 5, 10].map((m) => m * power).find((candidate) => candidate >= raw);
}

function truncate(text, length) {
  return text.length > length ? `${text.slice(0, Math.max(1, length - 1))}…` : text;
}
