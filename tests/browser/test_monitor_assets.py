"""How devhost serves the monitor page: path, content types, the policy, the asset whitelist (no browser needed)."""

from __future__ import annotations

import os
import re
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from devhost.monitor.handler import ASSETS, STATIC_DIR, content_security_policy
from tests.browser.test_ui_assets import NoRedirect
from tests.hosts import RunningHost
from tests.http_client import request as call

# The monitor is devhost's own page; `func start` (E2E_HOST=func) does not serve it.
pytestmark = pytest.mark.skipif(os.environ.get("E2E_HOST", "devhost") != "devhost", reason="served by devhost only")


@pytest.mark.parametrize("name", ["", *ASSETS])
def test_assets_are_served_with_type_policy_and_no_sniff(host: RunningHost, name: str) -> None:
    """The page and each asset answer 200 with their Content-Type, nosniff and the strict policy."""
    reply = call("GET", host.url(f"runtime/monitor/{name}"))
    assert reply.status == 200, reply
    expected = ASSETS.get(name or "index.html")
    assert reply.header("Content-Type") == f"{expected}; charset=utf-8"
    assert reply.header("X-Content-Type-Options") == "nosniff"
    assert reply.header("Content-Security-Policy") == content_security_policy(None)
    assert reply.header("Referrer-Policy") == "no-referrer"


def test_policy_names_the_app_given_by_base(host: RunningHost) -> None:
    """`?base=` adds exactly that app's origin to connect-src, so the page may call it and nothing else."""
    reply = call("GET", host.url("runtime/monitor/?base=https://myapp.azurewebsites.net/some/path"))
    policy = reply.header("Content-Security-Policy") or ""
    assert "connect-src 'self' https://myapp.azurewebsites.net;" in policy
    assert "script-src 'self';" in policy and "unsafe" not in policy


@pytest.mark.parametrize("base", ["javascript:alert(1)", "https://x.example; script-src *", "ftp://x.example", "",
                                  "https://", "https://a b.example"])
def test_policy_ignores_a_base_that_is_not_a_plain_http_origin(base: str) -> None:
    """Anything but an http(s) origin leaves the policy at 'self' only."""
    assert content_security_policy(base) == content_security_policy(None)


@pytest.mark.parametrize(("query", "location"), [("", "/runtime/monitor/"), ("?code=k", "/runtime/monitor/?code=k")])
def test_path_without_slash_redirects(host: RunningHost, query: str, location: str) -> None:
    """`/runtime/monitor` redirects to `/runtime/monitor/` (query kept), where the relative asset URLs resolve."""
    opener = urllib.request.build_opener(NoRedirect)
    with pytest.raises(urllib.error.HTTPError) as caught:
        opener.open(host.url(f"runtime/monitor{query}"), timeout=10)
    assert caught.value.code == 302
    assert caught.value.headers["Location"] == location


@pytest.mark.parametrize("path", ["missing.js", "static/main.js", "handler.py", "..%2Fhandler.py",
                                  "%2e%2e/%2e%2e/cli.py", "MAIN.JS"])
def test_unknown_assets_are_a_json_404(host: RunningHost, path: str) -> None:
    """Anything outside the whitelist, traversal attempts included, is a JSON 404 and never a file's content."""
    reply = call("GET", host.url(f"runtime/monitor/{path}"))
    assert reply.status == 404, reply
    assert b"import " not in reply.body
    assert "error" in reply.json


def test_other_methods_are_refused(host: RunningHost) -> None:
    """The page is read-only: a POST is a 405 with a JSON reason."""
    reply = call("POST", host.url("runtime/monitor/"), {})
    assert reply.status == 405
    assert reply.header("Allow") == "GET, HEAD"


def test_page_uses_no_outside_resources() -> None:
    """No CDN: every script, stylesheet and module import of the page is one of devhost's own assets."""
    html = (STATIC_DIR / "index.html").read_text(encoding="utf-8")
    referenced = set(re.findall(r'(?:src|href)="([^"#]+)"', html)) - {"data:,"}
    for name in (n for n in ASSETS if n.endswith(".js")):
        referenced |= set(re.findall(r'from "\./([^"]+)"', (STATIC_DIR / name).read_text(encoding="utf-8")))
    assert referenced <= set(ASSETS)
    css = (STATIC_DIR / "monitor.css").read_text(encoding="utf-8")
    assert "@import" not in css and "url(" not in css


def test_whitelist_matches_the_static_folder() -> None:
    """Every file in static/ is served and every served name exists."""
    assert {path.name for path in Path(STATIC_DIR).iterdir() if path.is_file()} == set(ASSETS)


def test_start_prints_the_monitor_url(host: RunningHost) -> None:
    """`devhost start` prints the monitor's URL after the function list, for an app with durable functions."""
    assert f"\n\tMonitor: {host.base_url}/runtime/monitor/\n" in host.log_text()
