// Progress page of the custom-status samples. Plain JavaScript, no dependencies.
//
// Every panel starts an orchestration through the app's starter (POST /api/orchestrators/{name}),
// then polls the statusQueryGetUri of the check-status payload (202 while running, 200 when done)
// and draws what the custom status says. The page never decides an outcome itself.
"use strict";

const POLL_INTERVAL_MS = 300;
const COUNTDOWN_TICK_MS = 250;
// After this many failed status reads in a row the panel gives up and says so.
const MAX_POLL_FAILURES = 10;
const FINISHED = new Set(["Completed", "Failed", "Terminated", "Canceled"]);

// In Azure the starters and raisers need a function key; open the page as /api/ui/?code=<key> and the
// key is forwarded to every API call. The status URLs carry the host's own key already.
const functionKey = new URLSearchParams(window.location.search).get("code");
// The page lives at {routePrefix}/ui/, so the API is one level up, whatever the prefix is.
const apiBase = new URL("../", window.location.href);

// ---------------------------------------------------------------------------------------------
// HTTP helpers

class ApiError extends Error {}

function apiUrl(path) {
  const url = new URL(path, apiBase);
  if (functionKey && !url.searchParams.has("code")) {
    url.searchParams.set("code", functionKey);
  }
  return url.toString();
}

// A host behind a proxy or TLS terminator may build the status URL with another host name or with
// http://, which the browser would block (CORS, mixed content). The status API is served by the same
// app as this page, so the same path on this page's origin reaches it.
function statusUrlOnThisOrigin(uri) {
  const url = new URL(uri, window.location.href);
  if (url.origin === window.location.origin) {
    return url.toString();
  }
  return new URL(url.pathname + url.search, window.location.origin).toString();
}

async function errorText(response) {
  const text = await response.text().catch(() => "");
  try {
    const body = JSON.parse(text);
    if (body && typeof body.error === "string") return body.error;
    if (body && typeof body.message === "string") return body.message;
  } catch {
    // Not JSON: show the text itself below.
  }
  return text.trim().slice(0, 300) || response.statusText || "No details.";
}

async function postJson(path, body) {
  let response;
  try {
    response = await fetch(apiUrl(path), {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify(body),
    });
  } catch (error) {
    throw new ApiError(`The app could not be reached: ${error.message}`);
  }
  if (response.status === 401) {
    // The host refused the key (or its absence); the body is empty, so say what the user can do.
    throw new ApiError(
      functionKey
        ? "The function key in this page's address was refused. (HTTP 401)"
        : "This app needs a function key: open the page as /api/ui/?code=<function key>. (HTTP 401)",
    );
  }
  if (!response.ok) {
    throw new ApiError(`${await errorText(response)} (HTTP ${response.status})`);
  }
  return response.json();
}

function sleep(ms, signal) {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener("abort", () => { clearTimeout(timer); resolve(); }, { once: true });
  });
}

// ---------------------------------------------------------------------------------------------
// DOM helpers

function part(root, name) {
  return root.querySelector(`[data-part="${name}"]`);
}

function show(element, visible) {
  element.hidden = !visible;
}

function replaceList(list, items) {
  list.replaceChildren(...items.map((item) => {
    const li = document.createElement("li");
    li.textContent = item;
    return li;
  }));
}

function isObject(value) {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

function formatSeconds(totalSeconds) {
  const seconds = Math.max(0, totalSeconds);
  const minutes = Math.floor(seconds / 60);
  const rest = String(seconds % 60).padStart(2, "0");
  return `${minutes}:${rest}`;
}

function numberField(form, name) {
  // An empty (or, for type=number, unparseable) field means "use the orchestration's default".
  const raw = form.elements[name].value.trim();
  return raw === "" ? undefined : Number(raw);
}

// ---------------------------------------------------------------------------------------------
// One panel: a start form, an error area, and the instance it follows.

class Panel {
  constructor(section, { buildInput, reset, render, finish }) {
    this.section = section;
    this.form = section.querySelector("form");
    this.startButton = this.form.querySelector("button[type=submit]");
    this.errorArea = part(section, "error");
    this.hooks = { buildInput, reset, render, finish };
    this.run = null;
    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.start();
    });
  }

  showError(message) {
    this.errorArea.textContent = message;
  }

  clearError() {
    this.errorArea.textContent = "";
  }

  async start() {
    this.stop();
    this.clearError();
    this.startButton.disabled = true;
    try {
      const orchestrator = this.section.dataset.orchestrator;
      const payload = await postJson(`orchestrators/${orchestrator}`, this.hooks.buildInput(this.form));
      this.follow(payload);
    } catch (error) {
      this.showError(error.message);
    } finally {
      this.startButton.disabled = false;
    }
  }

  stop() {
    if (this.run) {
      this.run.abort.abort();
      this.run = null;
    }
    this.hooks.finish?.(this);
  }

  follow(payload) {
    const run = {
      id: payload.id,
      statusUrl: statusUrlOnThisOrigin(payload.statusQueryGetUri),
      abort: new AbortController(),
      finished: false,
      // Server clock minus ours, from the Date header; used for countdowns to server timestamps.
      clockOffsetMs: 0,
    };
    this.run = run;
    part(this.section, "instance-id").textContent = run.id;
    const link = part(this.section, "status-link");
    link.href = payload.statusQueryGetUri;
    this.setRuntimeStatus("Pending");
    this.hooks.reset(this);
    show(part(this.section, "run"), true);
    this.poll(run);
  }

  setRuntimeStatus(status) {
    const badge = part(this.section, "runtime-status");
    badge.textContent = status;
    badge.dataset.status = status;
  }

  async poll(run) {
    let failures = 0;
    while (!run.abort.signal.aborted) {
      let response;
      let body = null;
      try {
        response = await fetch(run.statusUrl, {
          cache: "no-store",
          headers: { Accept: "application/json" },
          signal: run.abort.signal,
        });
        body = await response.clone().json().catch(() => null);
      } catch (error) {
        if (run.abort.signal.aborted) return;
        failures += 1;
        this.showError(`Could not read the instance status: ${error.message}`);
        if (failures >= MAX_POLL_FAILURES) return;
        await sleep(POLL_INTERVAL_MS * failures, run.abort.signal);
        continue;
      }
      if (run.abort.signal.aborted) return;
      // 202 while running, 200 when done; a Failed instance may also come back as 500 with its status.
      if (isObject(body) && typeof body.runtimeStatus === "string" && [200, 202, 500].includes(response.status)) {
        if (failures > 0) this.clearError();
        failures = 0;
        this.noteServerClock(run, response);
        this.setRuntimeStatus(body.runtimeStatus);
        run.finished = FINISHED.has(body.runtimeStatus);
        this.hooks.render(this, body, run);
        if (run.finished) {
          this.hooks.finish?.(this);
          return;
        }
      } else {
        this.showError(`Could not read the instance status: ${await errorText(response)} (HTTP ${response.status})`);
        if (response.status >= 400 && response.status < 500) return;
        failures += 1;
        if (failures >= MAX_POLL_FAILURES) return;
      }
      await sleep(POLL_INTERVAL_MS, run.abort.signal);
    }
  }

  noteServerClock(run, response) {
    const serverTime = Date.parse(response.headers.get("Date") || "");
    if (Number.isNaN(serverTime)) return;
    const offset = serverTime - Date.now();
    // The Date header has whole seconds only: correct a clearly wrong client clock, not rounding.
    run.clockOffsetMs = Math.abs(offset) > 2000 ? offset : 0;
  }

  // Send an event to the running instance; errors go to the panel's alert area.
  async send(path, body) {
    this.clearError();
    try {
      await postJson(path, body);
      return true;
    } catch (error) {
      this.showError(error.message);
      return false;
    }
  }
}

function showFailure(panel, body) {
  if (body.runtimeStatus === "Failed" || body.runtimeStatus === "Terminated") {
    const message = part(panel.section, "message");
    const detail = typeof body.output === "string" ? body.output : JSON.stringify(body.output);
    message.textContent = `The orchestration ${body.runtimeStatus.toLowerCase()}: ${detail}`;
    message.dataset.outcome = "failed";
    show(message, true);
  }
}

function showInvalidInput(panel, custom) {
  if (isObject(custom) && custom.stage === "invalid-input") {
    panel.showError(custom.error || "The orchestration rejected its input.");
  }
}

// ---------------------------------------------------------------------------------------------
// City recommendations (CityRecommender)

function setupCity(section) {
  let shownCities = "";
  return new Panel(section, {
    buildInput(form) {
      return Number(form.elements.choice.value);
    },
    reset(panel) {
      shownCities = "";
      for (const name of ["recommendations", "refining", "refined", "message"]) {
        show(part(panel.section, name), false);
      }
      part(panel.section, "cities").replaceChildren();
    },
    render(panel, body, run) {
      const custom = body.customStatus;
      const cities = isObject(custom) && Array.isArray(custom.recommendedCities) ? custom.recommendedCities : null;
      show(part(panel.section, "recommendations"), Boolean(cities) && !run.finished);
      if (cities) {
        // Rebuild the buttons only when the list changes, so keyboard focus survives every poll.
        const key = JSON.stringify(cities);
        if (key !== shownCities) {
          shownCities = key;
          part(panel.section, "cities").replaceChildren(...cities.map((city) => cityButton(panel, run, city)));
        }
        const seasons = Array.isArray(custom.recommendedSeasons) ? custom.recommendedSeasons : [];
        part(panel.section, "seasons").textContent = seasons.join(", ") || "any";
        const rejected = part(panel.section, "rejected");
        rejected.textContent = custom.lastRejectedSelection
          ? `"${custom.lastRejectedSelection}" is not one of the recommended cities.` : "";
        show(rejected, Boolean(custom.lastRejectedSelection));
      }

      const refining = part(panel.section, "refining");
      show(refining, isObject(custom) && custom.stage === "refining");
      if (isObject(custom) && custom.stage === "refining") {
        refining.textContent = `Refining your trip to ${custom.selectedCity}…`;
      }

      const refined = part(panel.section, "refined");
      const recommendation = isObject(custom) && isObject(custom.recommendation) ? custom.recommendation : null;
      show(refined, Boolean(recommendation));
      if (recommendation) {
        part(panel.section, "refined-title").textContent =
          `${recommendation.city} in ${recommendation.bestSeason}`;
        part(panel.section, "refined-tip").textContent = recommendation.tip || "";
        replaceList(part(panel.section, "refined-sights"), recommendation.sights || []);
      }

      const message = part(panel.section, "message");
      show(message, false);
      if (isObject(custom) && custom.stage === "expired") {
        message.textContent = custom.message;
        message.dataset.outcome = "expired";
        show(message, true);
      }
      showInvalidInput(panel, custom);
      showFailure(panel, body);
    },
  });
}

function cityButton(panel, run, city) {
  const button = document.createElement("button");
  button.type = "button";
  button.textContent = city;
  button.addEventListener("click", async () => {
    const buttons = part(panel.section, "cities").querySelectorAll("button");
    for (const other of buttons) other.disabled = true;
    button.setAttribute("aria-pressed", "true");
    const sent = await panel.send(`recommendations/${encodeURIComponent(run.id)}/selection`, { city });
    if (!sent) {
      // The choice did not reach the orchestration: let the user pick again.
      for (const other of buttons) other.disabled = false;
      button.removeAttribute("aria-pressed");
    }
  });
  return button;
}

// ---------------------------------------------------------------------------------------------
// Ticket reservation (ReserveTicket)

function setupReservation(section) {
  let countdownTimer = null;
  let expiresAtMs = null;
  let offsetMs = 0;

  function stopCountdown() {
    clearInterval(countdownTimer);
    countdownTimer = null;
  }

  function tick() {
    const remainingMs = expiresAtMs - (Date.now() + offsetMs);
    part(section, "countdown").textContent = formatSeconds(Math.ceil(remainingMs / 1000));
  }

  function setButtonsDisabled(disabled) {
    for (const button of section.querySelectorAll("[data-action]")) button.disabled = disabled;
  }

  const panel = new Panel(section, {
    buildInput(form) {
      const input = { userId: form.elements.userId.value };
      const timeout = numberField(form, "discountTimeout");
      if (timeout !== undefined) input.discountTimeout = timeout;
      return input;
    },
    reset() {
      stopCountdown();
      expiresAtMs = null;
      show(part(section, "offer"), false);
      show(part(section, "message"), false);
      show(part(section, "sent"), false);
      setButtonsDisabled(false);
    },
    render(p, body, run) {
      const custom = body.customStatus;
      const offer = isObject(custom) && custom.discount !== undefined && !custom.message && !run.finished;
      show(part(section, "offer"), offer);
      if (offer) {
        part(section, "discount").textContent = `${custom.discount} %`;
        const link = part(section, "booking-link");
        link.href = custom.bookingUrl;
        link.textContent = custom.bookingUrl;
        if (expiresAtMs === null) {
          // expiresAt is the durable timer's due time; without it, count from when the offer appeared.
          const parsed = Date.parse(custom.expiresAt || "");
          expiresAtMs = Number.isNaN(parsed) ? Date.now() + run.clockOffsetMs + custom.discountTimeout * 1000 : parsed;
        }
        offsetMs = run.clockOffsetMs;
        if (countdownTimer === null) {
          tick();
          countdownTimer = setInterval(tick, COUNTDOWN_TICK_MS);
        }
      } else {
        // At 0:00 the offer stays up until the status says what happened; only then does it go.
        stopCountdown();
      }

      const message = part(section, "message");
      const final = isObject(custom) && typeof custom.message === "string";
      show(message, final);
      if (final) {
        message.textContent = custom.message;
        message.dataset.outcome = custom.outcome || "";
      }
      showInvalidInput(p, custom);
      showFailure(p, body);
    },
    finish() {
      stopCountdown();
    },
  });

  for (const button of section.querySelectorAll("[data-action]")) {
    button.addEventListener("click", async () => {
      const run = panel.run;
      if (!run) return;
      const confirmed = button.dataset.action === "confirm";
      setButtonsDisabled(true);
      const sent = await panel.send(`reservations/${encodeURIComponent(run.id)}/confirmation`, { confirmed });
      const note = part(section, "sent");
      note.textContent = sent ? `${confirmed ? "Confirmation" : "Decline"} sent; waiting for the orchestration…` : "";
      show(note, sent);
      if (!sent) setButtonsDisabled(false);
    });
  }
  return panel;
}

// ---------------------------------------------------------------------------------------------
// Progress (SetStatusTest)

function setupProgress(section) {
  return new Panel(section, {
    buildInput(form) {
      const delay = numberField(form, "stepDelaySeconds");
      return delay === undefined ? {} : { stepDelaySeconds: delay };
    },
    reset() {
      const bar = part(section, "bar");
      // No value attribute: an indeterminate bar until the first custom status arrives.
      bar.removeAttribute("value");
      part(section, "percent").textContent = "";
      replaceList(part(section, "completed"), []);
      replaceList(part(section, "remaining"), []);
      show(part(section, "last-result"), false);
      show(part(section, "message"), false);
    },
    render(panel, body) {
      const custom = body.customStatus;
      if (isObject(custom) && Array.isArray(custom.nextActions)) {
        const completed = Array.isArray(custom.completedActions) ? custom.completedActions : [];
        const fraction = typeof custom.progress === "number" ? custom.progress : 0;
        const percent = Math.round(Math.min(1, Math.max(0, fraction)) * 100);
        const bar = part(section, "bar");
        bar.value = percent;
        bar.setAttribute("aria-valuetext", `${completed.length} of ${completed.length + custom.nextActions.length} actions done`);
        part(section, "percent").textContent = `${percent} %`;
        replaceList(part(section, "completed"), completed);
        replaceList(part(section, "remaining"), custom.nextActions);
        const last = part(section, "last-result");
        const result = isObject(custom.lastResult) ? custom.lastResult.result : null;
        last.textContent = result ? `Last step: ${result}` : "";
        show(last, Boolean(result));
      }
      const message = part(section, "message");
      if (body.runtimeStatus === "Completed") {
        const done = isObject(body.output) && Array.isArray(body.output.completedActions)
          ? body.output.completedActions.length : 0;
        message.textContent = `All ${done} actions completed.`;
        message.dataset.outcome = "confirmed";
        show(message, true);
      }
      showInvalidInput(panel, custom);
      showFailure(panel, body);
    },
  });
}

// ---------------------------------------------------------------------------------------------

document.addEventListener("DOMContentLoaded", () => {
  if (functionKey) show(document.getElementById("key-note"), true);
  setupCity(document.getElementById("city"));
  setupReservation(document.getElementById("reservation"));
  setupProgress(document.getElementById("progress"));
});
