"""Fixtures of the browser tests: the e2e session host, one Chromium per session, a page per test.

The host comes from the e2e suite (Azurite + devhost on free ports, a unique task hub). Chromium is
Debian's (/usr/bin/chromium) driven by Playwright for Python; `playwright install` is never needed.
When either is missing the browser tests skip with the reason, and the asset tests still run.
"""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.hosts import RunningHost

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, Page, Playwright, ViewportSize

PROJECT_ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = PROJECT_ROOT / "test-artifacts" / "screenshots"
# Flags for a container without a GPU, a sandbox or network access beyond the test host.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# Every Playwright wait (actions and expect) gives up after this; the slowest step needs a few seconds.
DEFAULT_TIMEOUT_MS = 15_000




def browser_missing() -> str | None:
    """Why the browser tests cannot run here, or None when they can."""
    if importlib.util.find_spec("playwright") is None:
        return "Playwright for Python is not installed (pip install -r requirements-dev.txt)"
    if not CHROMIUM.exists():
        return f"{CHROMIUM} is missing (apt-get install -y chromium)"
    return None


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "allow_console_errors(*patterns): console errors matching a pattern do not fail the test"
    )


@pytest.fixture(scope="package")
def playwright_instance() -> Iterator[Playwright]:
    """Playwright's driver, started once for the session."""
    reason = browser_missing()
    if reason:
        pytest.skip(reason)
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=DEFAULT_TIMEOUT_MS)

    with sync_playwright() as instance:
        # The page marks the parts tests read with data-part; get_by_test_id() then finds them.
        instance.selectors.set_test_id_attribute("data-part")
        yield instance


@pytest.fixture(scope="package")
def browser(playwright_instance: Playwright) -> Iterator[Browser]:
    """One headless Debian Chromium for the whole session; each test gets its own tab."""
    chromium = playwright_instance.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
    try:
        yield chromium
    finally:
        chromium.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    # Remember each phase's report on the item, so the page fixture can tell whether the test failed.
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


@contextmanager
def open_context(browser: Browser, base_url: str) -> Iterator[BrowserContext]:
    """A browser context on ``base_url`` with the suite's timeouts, closed on exit."""
    context = browser.new_context(base_url=base_url)
    context.set_default_timeout(DEFAULT_TIMEOUT_MS)
    try:
        yield context
    finally:
        context.close()


@pytest.fixture(scope="package")
def browser_context(browser: Browser, host: RunningHost) -> Iterator[BrowserContext]:
    """One context for the session (a new one per test costs ~0.4 s); the page keeps no state in it."""
    with open_context(browser, host.base_url) as context:
        yield context


@pytest.fixture
def page(browser_context: BrowserContext, request: pytest.FixtureRequest) -> Iterator[Page]:
    """A fresh tab on the progress page (desktop size unless parametrized); console errors fail the test."""
    viewport: ViewportSize = getattr(request, "param", None) or {"width": 1280, "height": 900}
    tab = browser_context.new_page()
    tab.set_viewport_size(viewport)
    errors: list[str] = []
    # A script error or a CSP violation would leave the page silently broken; both reach the console.
    tab.on("pageerror", lambda error: errors.append(f"page error: {error}"))
    tab.on(
        "console",
        lambda message: errors.append(f"console {message.type}: {message.text}") if message.type == "error" else None,
    )
    tab.goto("/api/ui/")
    try:
        yield tab
        report = getattr(request.node, "report_call", None)
        if report is not None and report.failed:
            save_screenshot(tab, f"FAILED-{request.node.name}")
        # Tests that provoke an API error allow the console line the browser logs for it.
        marker = request.node.get_closest_marker("allow_console_errors")
        allowed = marker.args if marker else ()
        unexpected = [e for e in errors if not any(re.search(pattern, e) for pattern in allowed)]
        assert not unexpected, unexpected
    finally:
        # Closing the tab also ends its polling loops, so no test sees another test's requests.
        tab.close()


def save_screenshot(page: Page, name: str) -> Path:
    """Save a full-page screenshot under test-artifacts/screenshots/ (git-ignored) and return its path."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{re.sub(r'[^A-Za-z0-9_.-]+', '_', name)}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
