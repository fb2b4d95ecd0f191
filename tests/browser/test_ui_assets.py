"""How the app serves the progress page: routes, content types, the asset whitelist (no browser needed)."""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.hosts import RunningHost
from tests.http_client import request
from ui import ASSETS, STATIC_DIR


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("ui/", "text/html; charset=utf-8"),
        ("ui/index.html", "text/html; charset=utf-8"),
        ("ui/app.js", "text/javascript; charset=utf-8"),
        ("ui/style.css", "text/css; charset=utf-8"),
    ],
)
def test_assets_are_served_with_their_content_type(host: RunningHost, path: str, content_type: str) -> None:
    """The page and its two assets answer 200 with the right Content-Type and no-sniff."""
    reply = request("GET", host.api(path))
    assert reply.status == 200, reply.body
    assert reply.header("Content-Type") == content_type
    assert reply.header("X-Content-Type-Options") == "nosniff"
    assert reply.header("Content-Security-Policy")


class NoRedirect(urllib.request.HTTPRedirectHandler):
    """Hand redirects back to the caller (as HTTPError) instead of following them."""

    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


@pytest.mark.parametrize(("query", "location"), [("", "ui/"), ("?code=abc", "ui/?code=abc")])
def test_page_without_trailing_slash_redirects(host: RunningHost, query: str, location: str) -> None:
    """`/api/ui` redirects to `/api/ui/` (keeping the query), where the page's relative asset URLs resolve."""

    opener = urllib.request.build_opener(NoRedirect)
    with pytest.raises(urllib.error.HTTPError) as caught:
        opener.open(host.api(f"ui{query}"), timeout=10)
    assert caught.value.code == 302
    assert caught.value.headers["Location"] == location


@pytest.mark.parametrize(
    "path",
    [
        "ui/missing.js",
        "ui/static/app.js",
        "ui/__init__.py",
        "ui/..%2F__init__.py",
        "ui/..%2F..%2Ffunction_app.py",
        "ui/%2e%2e/function_app.py",
        "ui/APP.JS",
    ],
)
def test_unknown_assets_are_a_json_404(host: RunningHost, path: str) -> None:
    """Anything outside the whitelist, traversal attempts included, is a 404 and never a file's content."""
    reply = request("GET", host.api(path))
    assert reply.status == 404, reply.body
    assert b"import " not in reply.body
    if reply.body:
        # The UI function's own 404 is JSON; a path that matches no route at all is the host's 404.
        assert "error" in json.loads(reply.body)


def test_page_uses_no_outside_resources() -> None:
    """No CDN: every script, stylesheet and import of the page is one of the app's own assets."""
    html = (STATIC_DIR / "index.html").read_text(encoding="utf-8")
    css = (STATIC_DIR / "style.css").read_text(encoding="utf-8")
    referenced = set(re.findall(r'(?:src|href)="([^"#]+)"', html)) - {"data:,"}
    assert referenced <= set(ASSETS)
    assert "@import" not in css and "url(" not in css


def test_whitelist_matches_the_static_folder() -> None:
    """Every file in ui/static is served and every served name exists, so nothing is missed or stale."""
    on_disk = {path.name for path in Path(STATIC_DIR).iterdir() if path.is_file()}
    assert on_disk == set(ASSETS)


def test_ui_route_is_anonymous(indexed_functions: dict[str, Any]) -> None:
    """The page loads in Azure without a key: its trigger is ANONYMOUS, GET only, on `ui/{*path}`."""
    bindings = json.loads(indexed_functions["serve_ui"].get_function_json())["bindings"]
    trigger = next(binding for binding in bindings if binding["type"] == "httpTrigger")
    assert trigger["authLevel"] == "ANONYMOUS"
    assert trigger["methods"] == ["GET"]
    assert trigger["route"] == "ui/{*path}"
