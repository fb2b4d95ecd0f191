"""The host side of HTTP marshalling: request datum shape and response mapping."""

from __future__ import annotations

from http.cookies import SimpleCookie

import azure.functions as func
from azure.functions import meta

from devhost.worker.http_data import HttpRequestData, HttpResponseData, set_cookie_header


def test_request_datum_has_the_worker_shape() -> None:
    """The datum decodes through HttpRequestConverter into the func.HttpRequest a function sees."""
    data = HttpRequestData.build(
        method="get", url="http://localhost:7071/api/x?q=1", headers=[("Accept", "a"), ("ACCEPT", "b")],
        query=[("q", "1"), ("empty", "")], route_params={"id": "7"},
    )
    datum = data.datum()
    assert datum.type == "http" and datum.value["body"] == meta.Datum(b"", "bytes")
    req = func.get_binding_registry().get("httpTrigger").decode(datum, trigger_metadata={})
    assert req.method == "GET" and req.url == "http://localhost:7071/api/x?q=1"
    assert req.headers["accept"] == "a,b"
    assert dict(req.params) == {"q": "1"} and req.route_params == {"id": "7"}
    assert req.get_body() == b""


def test_set_cookie_matches_asp_net_formatting() -> None:
    """Cookies are written the way ASP.NET's SetCookieHeaderValue does, values escaped."""
    cookie = SimpleCookie()
    cookie.load('sid="a b"; Domain=example.com; Path=/app; Expires=Wed, 21 Oct 2026 07:28:00 GMT; '
                "SameSite=Strict; Secure; HttpOnly")
    assert set_cookie_header(cookie["sid"]) == (
        "sid=a%20b; expires=Wed, 21 Oct 2026 07:28:00 GMT; domain=example.com; path=/app; secure; "
        "samesite=strict; httponly"
    )


def test_response_from_each_datum_kind() -> None:
    """http, string and missing return datums map to the responses the host would write."""
    http_datum = func.get_binding_registry().get("http").encode(
        func.HttpResponse(b"\x00\x01", status_code=418, mimetype="application/octet-stream"), expected_type=None)
    teapot = HttpResponseData.from_datum(http_datum)
    assert (teapot.status, teapot.body, teapot.header("content-type")) == (
        418, b"\x00\x01", "application/octet-stream")
    text = HttpResponseData.from_datum(meta.Datum("hi", "string"))
    assert (text.status, text.body) == (200, b"hi")
    assert HttpResponseData.from_datum(None).status == 204
