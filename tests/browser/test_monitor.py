"""The monitor page (`/runtime/monitor/`) in a real (headless) Chromium, against the session's devhost.

Each test starts its own instances through the Durable HTTP API with ids under a fresh prefix, and
narrows the page to that prefix, so tests never see each other's instances. Every wait is one of
Playwright's auto-waiting `expect(...)` calls or a deadline poll of the API; nothing sleeps.
"""

from __future__ import annotations

import json
import os
import re
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

pytest.importorskip("playwright.sync_api", reason="Playwright for Python is not installed")

from playwright.sync_api import Locator, Page, Request, Route, expect

from orchestrators.reserve_ticket import CONFIRMED_MESSAGE
from tests.browser.conftest import save_screenshot
from tests.hosts import RunningHost
from tests.http_client import NO_BODY, poll
from tests.http_client import request as call

# The monitor is devhost's own page; `func start` (E2E_HOST=func) does not serve it.
pytestmark = pytest.mark.skipif(os.environ.get("E2E_HOST", "devhost") != "devhost", reason="served by devhost only")

MONITOR = "/runtime/monitor/"
PHONE = {"width": 390, "height": 844}
DARK_BACKGROUND = "rgb(17, 21, 27)"
LIGHT_BACKGROUND = "rgb(244, 246, 249)"


# -- instances, through the Durable HTTP API ---------------------------------------------------------

def fresh_prefix() -> str:
    return f"mon{uuid.uuid4().hex[:8]}-"


def start(host: RunningHost, name: str, instance_id: str, payload: Any = None) -> str:
    reply = call("POST", host.durable(f"orchestrators/{name}/{instance_id}"), NO_BODY if payload is None else payload)
    assert reply.status == 202, reply
    return instance_id


def status_of(host: RunningHost, instance_id: str, **query: str) -> dict[str, Any]:
    suffix = "?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else ""
    reply = call("GET", host.durable(f"instances/{instance_id}{suffix}"))
    assert reply.status in (200, 202), reply
    return reply.json


def wait_until(host: RunningHost, instance_id: str, predicate: Any, timeout: float = 30.0) -> dict[str, Any]:
    """Poll the status API until `predicate(status)` holds."""
    reply = poll(lambda: call("GET", host.durable(f"instances/{instance_id}")),
                 lambda r: r.status in (200, 202) and bool(predicate(r.json)), timeout=timeout, interval=0.05)
    return reply.json


def wait_status(host: RunningHost, instance_id: str, runtime_status: str) -> dict[str, Any]:
    return wait_until(host, instance_id, lambda body: body["runtimeStatus"] == runtime_status)


def waiting_ticket(host: RunningHost, instance_id: str) -> str:
    """A ReserveTicket that shows its discount and waits for BookingConfirmed (10 minutes)."""
    start(host, "ReserveTicket", instance_id, {"userId": "monitor-user", "discountTimeout": 600})
    wait_until(host, instance_id, lambda body: "discount" in (body.get("customStatus") or {}))
    return instance_id


def failed_city(host: RunningHost, instance_id: str) -> str:
    """A CityRecommender started with an invalid choice: the orchestrator raises and the instance fails."""
    start(host, "CityRecommender", instance_id, 7)
    wait_status(host, instance_id, "Failed")
    return instance_id


def completed_steps(host: RunningHost, instance_id: str) -> str:
    start(host, "SetStatusTest", instance_id, {"stepDelaySeconds": 0})
    wait_status(host, instance_id, "Completed")
    return instance_id


# -- the page ------------------------------------------------------------------------------------------

def part(scope: Page | Locator, name: str) -> Locator:
    return scope.get_by_test_id(name)


def open_list(page: Page, prefix: str, *, size: int | None = None, origin: str = "") -> None:
    """The monitor's list (of the session host, or of the host at `origin`), narrowed to one id prefix."""
    page.goto(f"{origin}{MONITOR}")
    page.get_by_label("Instance id prefix").fill(prefix)
    if size:
        page.get_by_label("Page size").select_option(str(size))
    apply(page)


def apply(page: Page) -> None:
    """Press Apply and wait until the table shows the rows for the new filters."""
    page.get_by_role("button", name="Apply").click()
    settled(page)


def settled(page: Page) -> None:
    """The table is aria-busy from a change of filters or page until its rows are shown."""
    expect(part(page, "instances")).to_have_attribute("aria-busy", "false")


def rows(page: Page) -> Locator:
    return part(page, "rows").get_by_role("row")


def open_instance(page: Page, instance_id: str) -> None:
    page.goto(f"{MONITOR}#/instance/{instance_id}")
    expect(part(page, "d-id")).to_have_text(instance_id)


def run_action(page: Page, button: str, fields: dict[str, str] | None = None) -> Locator:
    """Click an action, fill its dialog, confirm; returns the answer area."""
    page.get_by_role("group", name="Actions").get_by_role("button", name=button).click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_be_visible()
    for label, value in (fields or {}).items():
        dialog.get_by_label(label).fill(value)
    dialog.locator("[data-part=dialog-confirm]").click()
    expect(dialog).to_be_hidden()
    return part(page, "answer")


def timeline_bars(page: Page, kind: str) -> Locator:
    return part(page, "timeline").locator(f"[data-kind={kind}]")


# -- tests -------------------------------------------------------------------------------------------

def test_list_shows_several_statuses_and_filters_narrow_it(page: Page, host: RunningHost) -> None:
    """Completed, Running, Failed and Terminated instances are listed and counted; each filter narrows the rows."""
    prefix = fresh_prefix()
    with ThreadPoolExecutor(4) as pool:
        done = [pool.submit(completed_steps, host, f"{prefix}done-{i}") for i in range(2)]
        waiting = pool.submit(waiting_ticket, host, f"{prefix}wait")
        failed = pool.submit(failed_city, host, f"{prefix}fail")
        ended = pool.submit(waiting_ticket, host, f"{prefix}end")
        for future in [*done, waiting, failed, ended]:
            future.result()
    assert call("POST", host.durable(f"instances/{prefix}end/terminate?reason=enough")).status == 202
    wait_status(host, f"{prefix}end", "Terminated")

    open_list(page, prefix)
    expect(rows(page)).to_have_count(5)
    statuses = part(page, "rows").locator(".badge")
    expect(statuses).to_have_text(["Completed", "Completed", "Terminated", "Failed", "Running"])
    # Custom status in short form, straight from the list API.
    expect(part(page, "rows").get_by_role("row").filter(has_text=f"{prefix}wait")).to_contain_text('"discount"')
    # Counts per status (the prefix applies, the status filter does not).
    for name, count in {"Completed": 2, "Running": 1, "Failed": 1, "Terminated": 1, "Pending": 0}.items():
        expect(part(page, f"count-{name}")).to_have_text(str(count))
    expect(part(page, "histogram").locator("rect.bar")).not_to_have_count(0)
    save_screenshot(page, "monitor-list")

    # Picking the histogram's bar (from the keyboard) narrows the created range to its time span.
    bucket = part(page, "histogram").locator("[data-part=histogram-bucket]")
    expect(bucket).to_have_count(1)
    expect(bucket).to_have_attribute("aria-label", re.compile(r"^1 Running, 2 Completed, 1 Failed, 1 Terminated "))
    bucket.focus()
    page.keyboard.press("Enter")
    settled(page)
    expect(page.get_by_label("Created", exact=True)).to_have_value("custom")
    expect(page.get_by_label("Created from")).not_to_have_value("")
    expect(rows(page)).to_have_count(5)
    page.get_by_label("Created", exact=True).select_option("86400")

    # Several statuses at once.
    page.get_by_role("checkbox", name=re.compile(r"^Failed")).check()
    page.get_by_role("checkbox", name=re.compile(r"^Running")).check()
    apply(page)
    expect(statuses).to_have_text(["Failed", "Running"])

    # Name (matched by the page) together with status (matched by the API).
    page.get_by_role("checkbox", name=re.compile(r"^Failed")).uncheck()
    page.get_by_role("checkbox", name=re.compile(r"^Running")).uncheck()
    page.get_by_label("Name").fill("setstatus")
    apply(page)
    expect(rows(page)).to_have_count(2)
    expect(part(page, "count-Completed")).to_have_text("2")
    expect(part(page, "count-Running")).to_have_text("0")

    # A created range that ends before these instances began.
    page.get_by_label("Name").fill("")
    page.get_by_label("Created", exact=True).select_option("custom")
    page.get_by_label("Created from").fill("2020-01-01T00:00:00")
    page.get_by_label("Created to").fill("2020-01-02T00:00:00")
    apply(page)
    expect(part(page, "no-rows")).to_be_visible()
    expect(rows(page)).to_have_count(0)


def test_paging_walks_250_instances_each_exactly_once(page: Page, host: RunningHost) -> None:
    """With pages of 50, Next walks 250 instances through the API's continuation tokens, each exactly once."""
    prefix = fresh_prefix()
    expected = [f"{prefix}{i:03d}" for i in range(250)]
    # Invalid input: each instance fails in its first episode, which keeps the host's work small.
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda iid: start(host, "CityRecommender", iid, 7), expected))

    open_list(page, prefix, size=50)
    seen: list[str] = []
    for number in range(1, 6):
        expect(part(page, "page-label")).to_have_text(f"Page {number}")
        expect(rows(page)).to_have_count(50)
        seen += [row.get_attribute("data-instance-id") or "" for row in rows(page).all()]
        if number < 5:
            page.get_by_role("button", name="Next page").click()
            settled(page)
    expect(page.get_by_role("button", name="Next page")).to_be_disabled()
    assert len(seen) == 250
    assert sorted(seen) == expected
    page.get_by_role("button", name="Previous page").click()
    settled(page)
    expect(part(page, "page-label")).to_have_text("Page 4")
    expect(rows(page).first).to_have_attribute("data-instance-id", seen[150])


def test_raising_booking_confirmed_completes_and_the_detail_shows_the_timeline(page: Page, host: RunningHost) -> None:
    """BookingConfirmed raised from the page completes a ReserveTicket; its timeline shows the discount
    activity, the wait for the event and the final custom status."""
    instance_id = waiting_ticket(host, f"{fresh_prefix()}ticket")
    open_instance(page, instance_id)
    expect(part(page, "d-status")).to_have_text("Running")
    expect(part(page, "d-custom")).to_contain_text('"discount"')

    # Data that is not JSON is refused in the dialog, before anything is sent.
    page.get_by_role("group", name="Actions").get_by_role("button", name="Raise event…").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_label("Event name").fill("BookingConfirmed")
    dialog.get_by_label("Event data (JSON)").fill("{confirmed: yes}")
    dialog.get_by_role("button", name="Raise").click()
    expect(dialog.get_by_role("alert")).to_contain_text("The body is not valid JSON")
    dialog.get_by_role("button", name="Cancel").click()
    expect(dialog).to_be_hidden()
    assert status_of(host, instance_id)["runtimeStatus"] == "Running"

    answer = run_action(page, "Raise event…",
                        {"Event name": "BookingConfirmed", "Event data (JSON)": '{"confirmed": true}'})
    expect(part(answer, "answer-status")).to_have_text("Raise an event: HTTP 202 Accepted")
    expect(part(page, "d-status")).to_have_text("Completed")
    assert status_of(host, instance_id)["output"] is True

    expect(part(page, "d-custom")).to_contain_text(CONFIRMED_MESSAGE)
    activity = timeline_bars(page, "activity")
    expect(activity).to_have_count(1)
    expect(activity).to_have_attribute("aria-label", re.compile(r"^Activity CalculateDiscount: .*, ok$"))
    wait = timeline_bars(page, "event")
    expect(wait).to_have_attribute("aria-label", re.compile(r"^Event wait Wait for BookingConfirmed: "))
    # The final custom status is marked on the timeline.
    marks = part(page, "timeline").locator("[data-part=custom-mark]")
    expect(marks.last).to_have_attribute("aria-label", re.compile(re.escape(json.dumps(CONFIRMED_MESSAGE))))
    # Its offer timer never fired: the booking won the race.
    expect(timeline_bars(page, "timer")).to_have_attribute("data-outcome", "cancelled")
    save_screenshot(page, "monitor-detail")


def test_running_timeline_grows_while_the_page_is_open(page: Page, host: RunningHost) -> None:
    """A SetStatusTest with 1 s between steps gains activity and timer bars, and custom-status marks, live."""
    instance_id = start(host, "SetStatusTest", f"{fresh_prefix()}steps", {"stepDelaySeconds": 1})
    open_instance(page, instance_id)
    activities = timeline_bars(page, "activity")
    expect(part(page, "d-status")).to_have_text("Running")
    first = activities.count()
    assert first < 3, "the instance finished before the page showed it running"
    expect(activities).to_have_count(3)
    timers = timeline_bars(page, "timer")
    expect(timers).to_have_count(3)  # one before each step: the first status is kept visible too
    # Drawn to scale: each timer bar spans the 1 s from its creation to its FireAt.
    for timer in timers.all():
        expect(timer).to_have_attribute("aria-label", re.compile(r", (9\d\d ms|1(\.\d+)? s), ok$"))
    expect(part(page, "d-status")).to_have_text("Completed")
    # Every change of the custom status the page saw is a mark; it saw more than the final one.
    assert part(page, "timeline").locator("[data-part=custom-mark]").count() >= 2
    save_screenshot(page, "monitor-timeline-live")


@pytest.mark.allow_console_errors(r"status of 404")
def test_suspend_resume_terminate_restart_and_purge_from_the_page(page: Page, host: RunningHost) -> None:
    """Each action is confirmed, answered with the API's status line, and its effect shows on the page."""
    instance_id = waiting_ticket(host, f"{fresh_prefix()}ops")
    open_instance(page, instance_id)

    answer = run_action(page, "Suspend…", {"Reason": "a pause"})
    expect(part(answer, "answer-status")).to_have_text("Suspend the instance: HTTP 202 Accepted")
    expect(part(page, "d-status")).to_have_text("Suspended")
    expect(timeline_bars(page, "suspended")).to_have_attribute("data-outcome", "open")
    answer = run_action(page, "Resume…")
    expect(part(answer, "answer-status")).to_have_text("Resume the instance: HTTP 202 Accepted")
    expect(part(page, "d-status")).to_have_text("Running")
    expect(timeline_bars(page, "suspended")).to_have_attribute("data-outcome", "ok")

    answer = run_action(page, "Terminate…", {"Reason": "from the monitor"})
    expect(part(answer, "answer-status")).to_have_text("Terminate the instance: HTTP 202 Accepted")
    expect(part(page, "d-status")).to_have_text("Terminated")
    expect(part(page, "d-output")).to_have_text('"from the monitor"')

    # Restart with a new id: the answer links to the new instance, which runs with the same input.
    answer = run_action(page, "Restart…")
    expect(part(answer, "answer-status")).to_have_text(re.compile(r"^Restart the instance: HTTP 202 Accepted: "))
    restarted = answer.get_by_role("link", name=re.compile(r"^Open the restarted instance "))
    new_id = (restarted.inner_text()).rsplit(" ", 1)[1]
    assert new_id != instance_id
    assert status_of(host, new_id)["input"] == status_of(host, instance_id)["input"]
    restarted.click()
    expect(part(page, "d-id")).to_have_text(new_id)
    expect(part(page, "d-status")).to_have_text("Running")
    assert call("POST", host.durable(f"instances/{new_id}/terminate?reason=done")).status == 202
    page.go_back()
    expect(part(page, "d-id")).to_have_text(instance_id)

    answer = run_action(page, "Purge…")
    expect(part(answer, "answer-status")).to_have_text('Purge the instance: HTTP 200 OK: {"instancesDeleted":1}')
    expect(part(page, "d-status")).to_have_text("Not found")
    assert call("GET", host.durable(f"instances/{instance_id}")).status == 404


def test_rewind_of_a_failed_instance_from_the_page(page: Page, host: RunningHost) -> None:
    """Rewind of a Failed instance answers 202 and the instance runs again (its history records the rewind)."""
    instance_id = failed_city(host, f"{fresh_prefix()}rewind")
    open_instance(page, instance_id)
    expect(part(page, "d-failure")).to_contain_text("Orchestrator function 'CityRecommender' failed")

    answer = run_action(page, "Rewind…", {"Reason": "try again"})
    expect(part(answer, "answer-status")).to_have_text("Rewind the failed instance: HTTP 202 Accepted")
    # The input is still invalid, so the rerun fails again; the history shows it was rewound.
    wait_until(host, instance_id, lambda body: body["runtimeStatus"] == "Failed"
               and "Rewound" in json.dumps(status_of(host, instance_id, showHistory="true")["historyEvents"]))
    page.reload()
    expect(part(page, "d-history")).to_contain_text("Rewound")


def test_purge_by_filter_from_the_list(page: Page, host: RunningHost) -> None:
    """Purge… on the list, narrowed to a prefix, deletes exactly the finished instances it shows."""
    prefix = fresh_prefix()
    with ThreadPoolExecutor(3) as pool:
        finished = list(pool.map(lambda i: completed_steps(host, f"{prefix}{i}"), range(2)))
        running = pool.submit(waiting_ticket, host, f"{prefix}live").result()
    open_list(page, prefix)
    expect(rows(page)).to_have_count(3)

    page.get_by_role("button", name="Purge…").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text("Purge the history of 2 instance(s)")
    dialog.get_by_role("button", name="Purge").click()

    expect(part(page, "alert")).to_have_text("Purged 2 of 2 instance(s).")
    expect(rows(page)).to_have_count(1)
    for instance_id in finished:
        assert call("GET", host.durable(f"instances/{instance_id}")).status == 404
    assert status_of(host, running)["runtimeStatus"] == "Running"


def test_system_key_is_sent_with_every_call(page: Page, host: RunningHost) -> None:
    """A `?code=` key leaves the address bar, stays in sessionStorage and goes with every API call
    as x-functions-key."""
    instance_id = completed_steps(host, f"{fresh_prefix()}key")
    calls: list[Request] = []
    page.on("request", lambda request: calls.append(request) if "/runtime/webhooks/" in request.url else None)

    page.goto(f"{MONITOR}?code=secret-key-1#/instance/{instance_id}")
    expect(part(page, "d-status")).to_have_text("Completed")
    assert "code=" not in page.url
    assert page.evaluate("sessionStorage.getItem('durable-monitor.key')") == "secret-key-1"
    page.get_by_role("link", name="← All instances").click()
    expect(rows(page).first).to_be_visible()

    assert calls
    assert all(request.headers.get("x-functions-key") == "secret-key-1" for request in calls), [
        (request.url, request.headers.get("x-functions-key")) for request in calls]
    page.evaluate("sessionStorage.clear()")


@pytest.mark.allow_console_errors(r"status of 401")
def test_a_401_is_shown_plainly(page: Page) -> None:
    """When the API answers 401 (keys on, no key), the page says a system key is needed and opens Connection."""

    def unauthorized(route: Route) -> None:
        route.fulfill(status=401, body="")

    page.route(re.compile(r"/runtime/webhooks/durabletask/"), unauthorized)
    page.goto(MONITOR)
    expect(part(page, "alert")).to_contain_text("HTTP 401 Unauthorized: this app needs its system key")
    expect(page.get_by_label("System key")).to_be_visible()
    expect(page.get_by_label("System key")).to_be_focused()
    save_screenshot(page, "monitor-401")
    # An app URL that is not http(s) is refused in the form, before the page reloads for it.
    page.get_by_label("App URL").fill("javascript:alert(1)")
    page.get_by_role("button", name="Use", exact=True).click()
    expect(part(page, "alert")).to_have_text(re.compile(r"^The app URL must be an https:// \(or http://\) address"))
    expect(page.get_by_label("App URL")).to_be_focused()


@pytest.mark.parametrize("page", [PHONE], indirect=True, ids=["phone"])
def test_phone_in_dark_mode_by_keyboard(page: Page, host: RunningHost) -> None:
    """On a phone in dark mode the list fits the width, and an instance opens from the keyboard."""
    instance_id = completed_steps(host, f"{fresh_prefix()}phone")
    page.emulate_media(color_scheme="dark")
    open_list(page, instance_id)
    link = page.get_by_role("link", name=instance_id)
    expect(link).to_be_visible()
    background = "getComputedStyle(document.body).backgroundColor"
    assert page.evaluate(background) == DARK_BACKGROUND
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    save_screenshot(page, "monitor-list-phone-dark")
    link.focus()
    page.keyboard.press("Enter")
    expect(part(page, "d-status")).to_have_text("Completed")
    expect(timeline_bars(page, "activity")).to_have_count(3)
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    save_screenshot(page, "monitor-detail-phone-dark")
    # The Theme button overrides the system: auto -> light -> dark -> auto (kept in localStorage).
    theme = page.get_by_role("button", name=re.compile(r"^Theme: "))
    theme.click()
    expect(theme).to_have_text("Theme: light")
    assert page.evaluate(background) == LIGHT_BACKGROUND
    theme.click()
    theme.click()
    expect(theme).to_have_text("Theme: auto")
    assert page.evaluate(background) == DARK_BACKGROUND


def test_another_app_by_base_url_and_key(page: Page, host: RunningHost) -> None:
    """With `?base=` the page calls that app's Durable HTTP API (allowed by its policy), with the key.

    The other app is this host under another origin (127.0.0.1 instead of localhost); the browser's
    CORS check is what the app's CORS settings answer in Azure, so here the route hands the calls
    through and adds the allowing header.
    """
    instance_id = completed_steps(host, f"{fresh_prefix()}remote")
    other = host.base_url.replace("localhost", "127.0.0.1")
    seen: list[Request] = []

    def through(route: Route) -> None:
        seen.append(route.request)
        reply = route.fetch()
        route.fulfill(response=reply, headers={**reply.headers, "access-control-allow-origin": host.base_url})

    page.route(f"{other}/runtime/webhooks/durabletask/**", through)
    page.goto(f"{MONITOR}?base={other}&code=remote-key#/instance/{instance_id}")
    expect(part(page, "api-base")).to_have_text(f"{other}/runtime/webhooks/durabletask")
    expect(part(page, "d-status")).to_have_text("Completed")
    assert seen and all(request.url.startswith(other) for request in seen)
    assert all(request.headers.get("x-functions-key") == "remote-key" for request in seen)
    page.evaluate("sessionStorage.clear()")


@pytest.mark.allow_console_errors(r"status of 401")
def test_with_keys_on_the_page_asks_for_and_uses_the_system_key(page: Page, request: pytest.FixtureRequest) -> None:
    """On a host started with --enableAuth the list answers 401 until the system key is given under
    Connection; then every call carries it and the instances show."""
    try:
        auth_host: RunningHost = request.getfixturevalue("auth_host")
        system_key: str = request.getfixturevalue("auth_keys").system
    except pytest.FixtureLookupError:
        pytest.skip("needs a host started with --enableAuth (the auth_host and auth_keys fixtures)")
    instance_id = f"{fresh_prefix()}auth"
    reply = call("POST", f"{auth_host.durable(f'orchestrators/SetStatusTest/{instance_id}')}?code={system_key}",
                 {"stepDelaySeconds": 0})
    assert reply.status == 202, reply

    page.goto(f"{auth_host.base_url}{MONITOR}")
    expect(part(page, "alert")).to_contain_text("HTTP 401 Unauthorized: this app needs its system key")
    page.get_by_label("System key").fill(system_key)
    page.get_by_role("button", name="Use", exact=True).click()
    open_list(page, instance_id, origin=auth_host.base_url)
    expect(page.get_by_role("link", name=instance_id)).to_be_visible()
    expect(part(page, "alert")).to_be_hidden()
