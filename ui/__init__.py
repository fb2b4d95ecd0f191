"""`GET /api/ui/`: a progress page for the three samples, served by the app itself.

The page is plain HTML, CSS and JavaScript from `ui/static` (no CDN, no build step). It starts
orchestrations through the app's starters and follows each instance through the `statusQueryGetUri`
of its check-status payload, as any client of the built-in Durable HTTP API would.

Only the files in `ASSETS` are served: the route's `{*path}` is looked up in that table and never
joined to a file-system path, so `..` and encoded slashes cannot reach other files.
"""

import json
from pathlib import Path
from urllib.parse import urlsplit

import azure.functions as func

bp = func.Blueprint()

STATIC_DIR = Path(__file__).resolve().parent / "static"
INDEX = "index.html"

# Served name -> MIME type. Everything else under /api/ui/ is a 404.
ASSETS: dict[str, str] = {
    INDEX: "text/html",
    "app.js": "text/javascript",
    "style.css": "text/css",
}

# Everything the page needs comes from this app; the policy also keeps any injected markup inert.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


def _not_found(path: str) -> func.HttpResponse:
    body = {"error": f"No UI asset named '{path[:100]}'. Known assets: {', '.join(ASSETS)}."}
    return func.HttpResponse(json.dumps(body), status_code=404, mimetype="application/json", charset="utf-8")


# ANONYMOUS on purpose: the app's default level is FUNCTION, and a key in the page URL should not be
# needed just to load HTML in Azure. The page itself calls the starters and raisers, which do need a
# key there: open it as /api/ui/?code=<function key> and the page forwards that `code` to every API
# call it makes (the status URLs from the check-status payload already carry their own system key).
@bp.route(route="ui/{*path}", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def serve_ui(req: func.HttpRequest) -> func.HttpResponse:
    path = req.route_params.get("path") or ""
    if not path:
        url = urlsplit(req.url)
        if not url.path.endswith("/"):
            # The page loads its assets by relative URL, which only resolves under /api/ui/ (with the
            # slash). A relative Location keeps the host name and route prefix the client used.
            location = "ui/" + (f"?{url.query}" if url.query else "")
            return func.HttpResponse(status_code=302, headers={"Location": location})
        path = INDEX
    mimetype = ASSETS.get(path)
    if mimetype is None:
        return _not_found(path)
    return func.HttpResponse(
        (STATIC_DIR / path).read_bytes(),
        status_code=200,
        mimetype=mimetype,
        charset="utf-8",
        headers={
            # Small files that change with each deployment: revalidate instead of caching stale code.
            "Cache-Control": "no-cache",
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": CONTENT_SECURITY_POLICY,
            # The page URL may carry a function key (?code=); never send it along with the booking link.
            "Referrer-Policy": "no-referrer",
        },
    )
