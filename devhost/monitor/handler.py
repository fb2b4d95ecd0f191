"""Serves the monitor's static files at ``/runtime/monitor/`` with a strict Content-Security-Policy.

Why ``/runtime/monitor/``: app routes always start with the route prefix (``api`` by default), and
``/runtime/`` is the Functions host's own namespace (``/runtime/webhooks/…``), so the page never
shadows an app route. Only names in ``ASSETS`` are served; a request path is looked up in that table
and never joined to a file-system path, so ``..`` cannot reach other files.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from aiohttp import web

MONITOR_PATH = "/runtime/monitor"
STATIC_DIR = Path(__file__).resolve().parent / "static"
INDEX = "index.html"

# Served name -> Content-Type. Everything else under the monitor path is a 404.
ASSETS: dict[str, str] = {
    INDEX: "text/html",
    "monitor.css": "text/css",
    "api.js": "text/javascript",
    "counts.js": "text/javascript",
    "timeline.js": "text/javascript",
    "main.js": "text/javascript",
}

_POLICY = ("default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'{remote}; "
           "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")


def is_monitor_path(lowered_path: str) -> bool:
    return lowered_path == MONITOR_PATH or lowered_path.startswith(MONITOR_PATH + "/")


def remote_origin(base: str | None) -> str | None:
    """The origin of a ``?base=`` app URL (``https://app.azurewebsites.net``), or None when absent or not http(s)."""
    if not base:
        return None
    try:
        parts = urlsplit(base.strip())
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    if any(c in parts.netloc for c in " ;'\"\\,"):
        return None  # nothing that could break out of the policy's source list
    return f"{parts.scheme}://{parts.netloc}"


def content_security_policy(base: str | None) -> str:
    """Only this origin, plus exactly the one app the page was opened for with ``?base=``."""
    origin = remote_origin(base)
    return _POLICY.format(remote=f" {origin}" if origin else "")


async def serve_monitor(request: web.Request, path: str) -> web.StreamResponse:
    """One GET (or HEAD) under the monitor path; ``path`` is the decoded request path."""
    if request.method not in ("GET", "HEAD"):
        return web.json_response({"error": "The monitor page answers GET only."}, status=405,
                                 headers={"Allow": "GET, HEAD"})
    name = path[len(MONITOR_PATH):].lstrip("/")
    if path.rstrip("/").lower() == MONITOR_PATH and not path.endswith("/"):
        # The page loads its assets by relative URL, which resolves only under the trailing slash.
        query = request.rel_url.raw_query_string
        raise web.HTTPFound(MONITOR_PATH + "/" + (f"?{query}" if query else ""))
    name = name or INDEX
    content_type = ASSETS.get(name)
    if content_type is None:
        return web.json_response({"error": f"No monitor asset named '{name[:100]}'."}, status=404)
    return web.Response(
        body=(STATIC_DIR / name).read_bytes(),
        content_type=content_type,
        charset="utf-8",
        headers={
            "Cache-Control": "no-cache",
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": content_security_policy(request.query.get("base")),
            # The page URL may carry a system key (?code=); it must not travel in a Referer.
            "Referrer-Policy": "no-referrer",
        },
    )
