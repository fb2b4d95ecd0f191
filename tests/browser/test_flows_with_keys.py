"""The progress page on a host that checks keys (--enableAuth), in headless Chromium.

Opened as /api/ui/?code=<host function key> it drives all three samples to completion: the key goes with
every starter and raiser call, and the status URLs carry the system key the host put in them. Without a
key the starters answer 401 and the page says what to do.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

pytest.importorskip("playwright.sync_api", reason="Playwright for Python is not installed")

from playwright.sync_api import Browser, BrowserContext, Page, expect

from orchestrators.reserve_ticket import CONFIRMED_MESSAGE
from tests.browser.conftest import open_context, save_screenshot
from tests.browser.test_flows import panel, start_reservation
from tests.host_keys import HostKeys
from tests.hosts import RunningHost


@pytest.fixture(scope="module")
def keyed_context(browser: Browser, auth_host: RunningHost) -> Iterator[BrowserContext]:
    with open_context(browser, auth_host.base_url) as context:
        yield context


@pytest.fixture
def keyed_page(keyed_context: BrowserContext) -> Iterator[tuple[Page, list[str]]]:
    """A fresh tab and the console errors it logs."""
    tab = keyed_context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda error: errors.append(f"page error: {error}"))
    tab.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    try:
        yield tab, errors
    finally:
        tab.close()


def test_all_samples_with_a_function_key(keyed_page: tuple[Page, list[str]], auth_keys: HostKeys) -> None:
    """With ?code= the three samples run to their end, and no call is refused."""
    page, errors = keyed_page
    page.goto(f"/api/ui/?code={auth_keys.host_default}")
    expect(page.get_by_text("A function key from this page's address is sent with every API call.")).to_be_visible()

    city = panel(page, "City recommendations")
    city.get_by_role("radio", name="1").check()
    city.get_by_role("button", name="Get recommendations").click()
    city.get_by_role("group", name="Recommended cities").get_by_role("button", name="Seattle").click()
    expect(city.get_by_test_id("refined-title")).to_have_text(re.compile(r"^Seattle in "))
    expect(city.get_by_test_id("runtime-status")).to_have_text("Completed")
    link = city.get_by_role("link", name="Status URL").get_attribute("href") or ""
    assert f"code={auth_keys.system}" in link

    reservation = start_reservation(page, "ui-keys")
    reservation.get_by_role("button", name="Confirm booking").click()
    expect(reservation.get_by_test_id("message")).to_have_text(CONFIRMED_MESSAGE)
    expect(reservation.get_by_test_id("runtime-status")).to_have_text("Completed")

    progress = panel(page, "Progress")
    progress.get_by_label("Step delay seconds").fill("0")
    progress.get_by_role("button", name="Start").click()
    expect(progress.get_by_test_id("message")).to_have_text("All 3 actions completed.")
    save_screenshot(page, "keys-all-samples")
    assert errors == []


def test_without_a_key_the_page_says_so(keyed_page: tuple[Page, list[str]]) -> None:
    """Without ?code= the starter answers 401 and the panel tells the user to add a function key."""
    page, errors = keyed_page
    page.goto("/api/ui/")
    reservation = start_reservation(page, "ui-nokey")
    expect(reservation.get_by_role("alert")).to_have_text(
        "This app needs a function key: open the page as /api/ui/?code=<function key>. (HTTP 401)")
    expect(reservation.get_by_test_id("run")).to_be_hidden()
    save_screenshot(page, "keys-missing")
    assert all("401" in e for e in errors), errors
