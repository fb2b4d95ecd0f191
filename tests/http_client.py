"""The test suites' one blocking HTTP client, and their one poller with a deadline (standard library only).

What is asserted is exactly what went over the wire: status codes, raw header values and body bytes.
Requests never follow redirects and add no headers of their own beyond `Content-Type` (when a body is
sent and `content_type` is not None) and the ones a test passes; the one exception is remote mode: a
request to `E2E_BASE_URL` carries the key the remote host wants (`remote_key`) in `x-functions-key`.
Error statuses are returned, not raised.
"""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from email.message import Message
from typing import Any, TypeVar

T = TypeVar("T")
NO_BODY: Any = object()


@dataclass
class Reply:
    """One HTTP answer; `headers` are case-insensitive and keep repeated names (`get_all`)."""

    status: int
    headers: Message
    body: bytes
    url: str = ""

    @property
    def json(self) -> Any:
        return json.loads(self.body) if self.body else None

    def header(self, name: str) -> str | None:
        return self.headers.get(name)

    def __repr__(self) -> str:
        return f"<{self.status} {self.url} {self.body[:300]!r}>"


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirect())


def remote_key(url: str) -> str | None:
    """The key a remote host (`E2E_BASE_URL`) wants for `url`: `E2E_SYSTEM_KEY` for the Durable extension's
    webhooks, `E2E_FUNCTION_KEY` for the app's routes; none for other hosts, for URLs that already carry
    `code=` (check-status links do) or when the key is not set."""
    base = os.environ.get("E2E_BASE_URL", "").strip().rstrip("/")
    if not base or not url.startswith(base + "/") or "code=" in url:
        return None
    name = "E2E_SYSTEM_KEY" if "/runtime/webhooks/" in url else "E2E_FUNCTION_KEY"
    return os.environ.get(name) or None


def request(method: str, url: str, body: Any = NO_BODY, *, raw: bytes | None = None,
            content_type: str | None = "application/json", headers: dict[str, str] | None = None,
            timeout: float = 30.0) -> Reply:
    """One HTTP request; `body` is JSON-encoded, `raw` is sent as is (b"" sends Content-Length: 0)."""
    data = raw if raw is not None else (None if body is NO_BODY else json.dumps(body).encode())
    req = urllib.request.Request(url, data=data, method=method)
    if data is not None and content_type is not None:
        req.add_header("Content-Type", content_type)
    key = remote_key(url)
    if key is not None:
        req.add_header("x-functions-key", key)  # the host reads keys from this header or ?code=
    for name, value in (headers or {}).items():
        req.add_header(name, value)
    try:
        with _OPENER.open(req, timeout=timeout) as response:
            return Reply(response.status, response.headers, response.read(), url)
    except urllib.error.HTTPError as err:
        return Reply(err.code, err.headers, err.read(), url)


def poll(fetch: Callable[[], T], until: Callable[[T], bool], *, timeout: float = 20.0, interval: float = 0.02,
         what: str = "condition") -> T:
    """Call `fetch` until `until(result)` holds; fail with the last result once `timeout` has passed."""
    deadline = time.monotonic() + timeout
    while True:
        result = fetch()
        if until(result):
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not met within {timeout} s; last: {result!r}")
        time.sleep(interval)
