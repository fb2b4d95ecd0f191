"""Each sample clicked through to its end on the progress page, in a real (headless) Chromium.

The assertions read what a person sees: the panel's texts, buttons and progress bar, at the
intermediate stages as well as at the end. Every wait is one of Playwright's auto-waiting
`expect(...)` calls; nothing sleeps for a fixed time.
"""

from __future__ import annotations

import re

import pytest

pytest.importorskip("playwright.sync_api", reason="Playwright for Python is not installed")

from playwright.sync_api import Locator, Page, expect

from activities.calculate_discount import discount_for
from orchestrators.reserve_ticket import (
    BOOKING_URL,
    CONFIRMED_MESSAGE,
    DECLINED_MESSAGE,
    EXPIRED_MESSAGE,
)
from tests.browser.conftest import save_screenshot
from tests.hosts import RunningHost
from tests.http_client import request

PHONE = {"width": 390, "height": 844}
STATUS_LINK = re.compile(r"/runtime/webhooks/durabletask/instances/[^/?]+")


def panel(page: Page, title: str) -> Locator:
    """The panel (a labelled region) of one sample."""
    return page.get_by_role("region", name=title)


def expect_instance(host: RunningHost, section: Locator, runtime_status: str) -> str:
    """The panel shows an instance id, a link to its status URL and `runtime_status`; returns the id."""
    expect(section.get_by_test_id("runtime-status")).to_have_text(runtime_status)
    instance_id = section.get_by_test_id("instance-id").inner_text()
    assert instance_id
    link = section.get_by_role("link", name="Status URL")
    expect(link).to_have_attribute("href", STATUS_LINK)
    assert instance_id in (link.get_attribute("href") or "")
    return instance_id


def durable_status(host: RunningHost, instance_id: str) -> dict:
    """The instance's status from the built-in API, to check the page against the backend."""
    reply = request("GET", host.durable(f"instances/{instance_id}"))
    assert reply.status in (200, 202), reply.body
    return reply.json


def test_city_recommendation_flow(page: Page, host: RunningHost) -> None:
    """Profile 2 shows Seattle and London while Running; clicking London shows the refined trip."""
    city = panel(page, "City recommendations")
    city.get_by_role("radio", name="2").check()
    city.get_by_role("button", name="Get recommendations").click()

    # Intermediate stage: the recommendations come from the custom status of a running instance.
    buttons = city.get_by_role("group", name="Recommended cities").get_by_role("button")
    expect(buttons).to_have_text(["Seattle", "London"])
    expect(city.get_by_test_id("seasons")).to_have_text("Summer")
    instance_id = expect_instance(host, city, "Running")
    assert durable_status(host, instance_id)["customStatus"]["recommendedCities"] == ["Seattle", "London"]
    save_screenshot(page, "city-recommendations")

    city.get_by_role("button", name="London").click()

    expect(city.get_by_test_id("refined-title")).to_have_text("London in Summer")
    expect(city.get_by_test_id("refined-tip")).to_have_text("Buy theatre tickets in advance for West End shows.")
    expect(city.get_by_test_id("refined-sights").get_by_role("listitem")).to_have_text(
        ["British Museum", "Tower of London", "Hyde Park"]
    )
    expect_instance(host, city, "Completed")
    # The city buttons belong to the waiting stage only.
    expect(buttons).to_have_count(0)
    expect(city.get_by_test_id("error")).to_be_empty()
    assert durable_status(host, instance_id)["customStatus"]["stage"] == "refined"
    save_screenshot(page, "city-refined")


def start_reservation(page: Page, user_id: str, offer_seconds: int | None = None) -> Locator:
    """Fill in the reservation form and press Reserve; returns the panel."""
    reservation = panel(page, "Ticket reservation")
    reservation.get_by_label("User id").fill(user_id)
    if offer_seconds is not None:
        reservation.get_by_label("Offer seconds").fill(str(offer_seconds))
    reservation.get_by_role("button", name="Reserve").click()
    return reservation


def expect_offer(host: RunningHost, reservation: Locator, user_id: str, countdown: re.Pattern[str]) -> None:
    """The discount, a countdown within `countdown` and the booking link are shown while Running."""
    expect(reservation.get_by_test_id("discount")).to_have_text(f"{discount_for(user_id)} %")
    expect(reservation.get_by_role("timer")).to_have_text(countdown)
    expect(reservation.get_by_role("link", name=BOOKING_URL)).to_have_attribute("href", BOOKING_URL)
    expect(reservation.get_by_role("button", name="Confirm booking")).to_be_enabled()
    expect(reservation.get_by_role("button", name="Decline")).to_be_enabled()
    expect_instance(host, reservation, "Running")


def test_reservation_confirmed(page: Page, host: RunningHost) -> None:
    """With the default 60 s offer, Confirm booking ends the orchestration with the thank-you message."""
    reservation = start_reservation(page, "ui-confirm")
    # Loose bounds: the first status may be seen a little after the offer started on a busy machine.
    expect_offer(host, reservation, "ui-confirm", re.compile(r"^(0:[3-5]\d|1:00)$"))
    # The countdown is live: it ticks between two polls of the status, not only when the status changes.
    timer = reservation.get_by_role("timer")
    expect(timer).not_to_have_text(timer.inner_text())
    save_screenshot(page, "reservation-offer")

    reservation.get_by_role("button", name="Confirm booking").click()

    expect(reservation.get_by_test_id("message")).to_have_text(CONFIRMED_MESSAGE)
    instance_id = expect_instance(host, reservation, "Completed")
    # The offer (and its buttons) disappears once the status carries the outcome.
    expect(reservation.get_by_role("button", name="Confirm booking")).to_be_hidden()
    assert durable_status(host, instance_id)["output"] is True
    save_screenshot(page, "reservation-confirmed")


def test_reservation_declined(page: Page, host: RunningHost) -> None:
    """Decline ends the orchestration with the declined message from the custom status."""
    reservation = start_reservation(page, "ui-decline", offer_seconds=120)
    expect_offer(host, reservation, "ui-decline", re.compile(r"^(1:[3-5]\d|2:00)$"))

    reservation.get_by_role("button", name="Decline").click()

    expect(reservation.get_by_test_id("message")).to_have_text(DECLINED_MESSAGE)
    instance_id = expect_instance(host, reservation, "Completed")
    assert durable_status(host, instance_id)["customStatus"]["outcome"] == "declined"
    save_screenshot(page, "reservation-declined")


def test_reservation_times_out(page: Page, host: RunningHost) -> None:
    """Left alone, a 3 s offer counts down and the durable timer's message appears when it fires."""
    reservation = start_reservation(page, "ui-timeout", offer_seconds=3)
    expect_offer(host, reservation, "ui-timeout", re.compile(r"^0:0[1-3]$"))

    # The page only shows what the status says; the timer firing in the orchestration ends the offer.
    expect(reservation.get_by_test_id("message")).to_have_text(EXPIRED_MESSAGE)
    instance_id = expect_instance(host, reservation, "Completed")
    assert durable_status(host, instance_id)["customStatus"]["outcome"] == "expired"
    save_screenshot(page, "reservation-timed-out")


def expect_progress(section: Locator, percent: int, completed: list[str], remaining: list[str]) -> None:
    """The bar, its percentage and both action lists show one step of SetStatusTest."""
    expect(section.get_by_role("progressbar")).to_have_attribute("value", str(percent))
    expect(section.get_by_test_id("percent")).to_have_text(f"{percent} %")
    expect(section.get_by_test_id("completed").get_by_role("listitem")).to_have_text(completed)
    expect(section.get_by_test_id("remaining").get_by_role("listitem")).to_have_text(remaining)


@pytest.mark.parametrize("page", [PHONE], indirect=True, ids=["phone"])
def test_progress_to_the_end_by_keyboard_on_a_phone(page: Page, host: RunningHost) -> None:
    """On a phone-width screen, started from the keyboard, the bar follows every step to 100 %."""
    progress = panel(page, "Progress")
    delay = progress.get_by_label("Step delay seconds")
    delay.focus()
    page.keyboard.type("1")
    page.keyboard.press("Tab")
    start = progress.get_by_role("button", name="Start")
    expect(start).to_be_focused()
    # Keyboard focus must be visible: the page draws an outline on :focus-visible.
    assert start.evaluate("button => getComputedStyle(button).outlineStyle") == "solid"
    page.keyboard.press("Enter")

    # Each step is separated by a 1 s durable timer, so every intermediate state is on screen for ~1 s.
    expect_progress(progress, 33, ["A"], ["B", "C"])
    expect_instance(host, progress, "Running")
    expect(progress.get_by_test_id("last-result")).to_have_text("Last step: Action A completed.")
    expect_progress(progress, 67, ["A", "B"], ["C"])
    expect_progress(progress, 100, ["A", "B", "C"], [])
    expect(progress.get_by_test_id("message")).to_have_text("All 3 actions completed.")
    expect_instance(host, progress, "Completed")

    # Nothing may stick out sideways on a narrow screen.
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    save_screenshot(page, "progress-complete-phone")


@pytest.mark.allow_console_errors(r"status of 400")
def test_api_error_is_shown(page: Page) -> None:
    """A starter's 400 reaches the user as the `error` text in the panel's alert, and nothing starts."""
    reservation = start_reservation(page, "u" * 300)

    expect(reservation.get_by_role("alert")).to_have_text(
        "Invalid input for ReserveTicket: 'userId' must be at most 256 characters. (HTTP 400)"
    )
    expect(reservation.get_by_test_id("run")).to_be_hidden()
    # The form stays usable for the next attempt.
    expect(reservation.get_by_role("button", name="Reserve")).to_be_enabled()
    save_screenshot(page, "reservation-error")


def test_function_key_is_forwarded(page: Page) -> None:
    """A `?code=` on the page URL is sent with the starter call, as Azure's FUNCTION level requires."""
    page.goto("/api/ui/?code=test-key")
    progress = panel(page, "Progress")
    progress.get_by_label("Step delay seconds").fill("0")
    with page.expect_request(re.compile(r"/api/orchestrators/SetStatusTest\?code=test-key$")) as started:
        progress.get_by_role("button", name="Start").click()
    assert started.value.method == "POST"
    expect(progress.get_by_test_id("message")).to_have_text("All 3 actions completed.")
    expect(page.get_by_text("A function key from this page's address is sent with every API call.")).to_be_visible()
