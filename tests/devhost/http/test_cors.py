"""CORS on devhost's front end, as Core Tools' ASP.NET Core CORS middleware answers (--cors, --cors-credentials)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from devhost.config import HttpSettings
from devhost.errors import ConfigError
from devhost.host import Host
from devhost.http.cors import CorsPolicy
from tests.http_client import request

ALLOWED = "http://app.localhost:3000"
OTHER = "http://other.localhost:4000"


@pytest.fixture(scope="module")
def cors_host(start_host: Callable[..., Host]) -> Callable[..., str]:
    """Start the HTTP toy app with a CORS policy; returns its origin."""
    def start(origins: tuple[str, ...], credentials: bool = False) -> str:
        host = start_host("http_app", http=HttpSettings(cors_origins=origins, cors_credentials=credentials))
        return f"http://127.0.0.1:{host.config.port}"

    return start


def preflight(base: str, origin: str, method: str = "POST", headers: str = "content-type,x-functions-key") -> dict:
    reply = request("OPTIONS", f"{base}/api/echo/x", headers={
        "Origin": origin, "Access-Control-Request-Method": method, "Access-Control-Request-Headers": headers})
    assert reply.status == 204 and reply.body == b""
    return {k.lower(): v for k, v in reply.headers.items() if k.lower().startswith("access-control") or k == "Vary"}


def test_preflight_allowed_and_refused_without_credentials(cors_host: Callable[..., str]) -> None:
    """An allowed origin gets its origin, the requested method and headers echoed; a refused one a bare 204."""
    base = cors_host((ALLOWED, "http://second.localhost"))
    assert preflight(base, ALLOWED, "PUT") == {
        "access-control-allow-origin": ALLOWED,
        "access-control-allow-methods": "PUT",
        "access-control-allow-headers": "content-type,x-functions-key",
        "vary": "Origin",
    }
    assert preflight(base, OTHER) == {}


def test_simple_requests(cors_host: Callable[..., str]) -> None:
    """The function runs for every origin; only an allowed origin's response carries the CORS header."""
    base = cors_host((ALLOWED,))
    allowed = request("GET", f"{base}/api/hello", headers={"Origin": ALLOWED})
    assert allowed.status == 200 and allowed.headers["Access-Control-Allow-Origin"] == ALLOWED
    assert "Access-Control-Allow-Credentials" not in allowed.headers and "Vary" not in allowed.headers
    refused = request("GET", f"{base}/api/hello", headers={"Origin": OTHER})
    assert refused.status == 200 and "Access-Control-Allow-Origin" not in refused.headers
    plain = request("GET", f"{base}/api/hello")
    assert "Access-Control-Allow-Origin" not in plain.headers
    missing = request("GET", f"{base}/api/nothing-here", headers={"Origin": ALLOWED})
    assert missing.status == 404 and missing.headers["Access-Control-Allow-Origin"] == ALLOWED


def test_credentials(cors_host: Callable[..., str]) -> None:
    """With credentials, preflights and responses say Access-Control-Allow-Credentials: true."""
    base = cors_host((ALLOWED,), credentials=True)
    assert preflight(base, ALLOWED)["access-control-allow-credentials"] == "true"
    reply = request("POST", f"{base}/api/echo/x", raw=b"{}", content_type=None, headers={"Origin": ALLOWED})
    assert reply.status == 201
    assert reply.headers["Access-Control-Allow-Origin"] == ALLOWED
    assert reply.headers["Access-Control-Allow-Credentials"] == "true"
    assert preflight(base, OTHER) == {}


def test_any_origin(cors_host: Callable[..., str]) -> None:
    """`*` alone allows every origin and is answered as `*`."""
    base = cors_host(("*",))
    assert preflight(base, OTHER, "DELETE")["access-control-allow-origin"] == "*"
    assert request("GET", f"{base}/api/hello", headers={"Origin": OTHER}).headers["Access-Control-Allow-Origin"] == "*"


def test_any_origin_with_credentials_is_refused_at_start() -> None:
    """The CORS protocol forbids `*` with credentials; the policy is refused as ASP.NET Core refuses it."""
    with pytest.raises(ConfigError, match="wildcard"):
        CorsPolicy.build(["*"], credentials=True)
    assert CorsPolicy.build(["HTTP://App.Localhost:3000"], credentials=True).origins == ("http://app.localhost:3000",)
