"""A small blocking HTTP client for black-box tests (standard library only)."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass
class Reply:
    """One HTTP answer, as the black-box suites inspect it."""

    status: int
    headers: dict[str, str]
    body: bytes
    url: str = ""

    @property
    def json(self) -> Any:
        return json.loads(self.body) if self.body else None

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers.items() if k.lower() == name.lower()), None)

    def __repr__(self) -> str:
        return f"<{self.status} {self.url} {self.body[:300]!r}>"


def call(method: str, url: str, body: Any = None, *, raw: bytes | None = None,
         content_type: str = "application/json", timeout: float = 30.0,
         headers: dict[str, str] | None = None) -> Reply:
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    request = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    if data is not None:
        request.add_header("Content-Type", content_type)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return Reply(response.status, dict(response.headers.items()), response.read(), url)
    except urllib.error.HTTPError as err:
        return Reply(err.code, dict(err.headers.items()), err.read(), url)


def poll(fetch: Callable[[], Reply], until: Callable[[Reply], bool], *, timeout: float = 20.0,
         interval: float = 0.02) -> Reply:
    """Call ``fetch`` until ``until`` holds or the deadline passes (then fail with the last reply)."""
    deadline = time.monotonic() + timeout
    while True:
        reply = fetch()
        if until(reply):
            return reply
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s; last reply {reply.status}: "
                                 f"{reply.body[:500]!r}")
        time.sleep(interval)
