"""HTTP requests and responses as they cross the host/worker boundary (the host's ``RpcHttp``).

The host side of the conversion (lower-cased headers, non-empty query values, cookies written as
``Set-Cookie``) follows the Functions host's ``RpcMessageConversionExtensions`` and
``HttpResponseExtensions`` so that user code sees exactly what it would see under ``func start``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime
from http.cookies import Morsel
from typing import Any
from urllib.parse import quote

from azure.functions import meta


@dataclass(frozen=True)
class HttpRequestData:
    """One HTTP request, already in the shape the host sends the worker."""

    method: str
    url: str  # scheme://host/path?query
    headers: Mapping[str, str] = field(default_factory=dict)  # lower-case names, repeated values joined
    query: Mapping[str, str] = field(default_factory=dict)  # non-empty values only
    route_params: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""

    @classmethod
    def build(cls, *, method: str, url: str, headers: Iterable[tuple[str, str]],
              query: Iterable[tuple[str, str]], route_params: Mapping[str, str] | None = None,
              body: bytes = b"") -> HttpRequestData:
        """Apply the host's rules: names lower-cased, repeats joined with ``,``, empty values dropped."""
        return cls(
            method=method.upper(),
            url=url,
            headers=_join_pairs(headers, lower=True),
            query=_join_pairs(query, lower=False),
            route_params=dict(route_params or {}),
            body=body,
        )

    def datum(self) -> meta.Datum:
        """The ``Datum('http')`` that the worker's ``Datum.from_typed_data(TypedData.http)`` produces."""
        return meta.Datum(
            type="http",
            value={
                "method": meta.Datum(self.method, "string"),
                "url": meta.Datum(self.url, "string"),
                "headers": {k: meta.Datum(v, "string") for k, v in self.headers.items()},
                "body": meta.Datum(self.body, "bytes"),
                "params": {k: meta.Datum(v, "string") for k, v in self.route_params.items()},
                "query": {k: meta.Datum(v, "string") for k, v in self.query.items()},
            },
        )


def _join_pairs(pairs: Iterable[tuple[str, str]], *, lower: bool) -> dict[str, str]:
    # ASP.NET keeps repeated headers/query keys as StringValues; ToString() joins them with ",".
    joined: dict[str, list[str]] = {}
    for name, value in pairs:
        key = name.lower() if lower else name
        joined.setdefault(key, []).append(value)
    return {k: ",".join(v) for k, v in joined.items() if ",".join(v)}


@dataclass(frozen=True)
class HttpResponseData:
    """The response the host writes back: status, headers (repeats allowed) and body."""

    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k.lower() == name.lower()), None)

    @classmethod
    def from_datum(cls, datum: meta.Datum | None) -> HttpResponseData:
        """Map the worker's return datum back to HTTP the way the host does."""
        if datum is None or datum.type is None:
            # No http output at all: the host answers with an empty success.
            return cls(status=204)
        if datum.type == "http":
            return _from_http_datum(datum.value)
        if datum.type == "string":
            # A str return is an ObjectResult; content negotiation gives text/plain.
            return cls(200, [("Content-Type", "text/plain; charset=utf-8")], str(datum.value).encode())
        if datum.type == "bytes":
            return cls(200, [("Content-Type", "application/octet-stream")], bytes(datum.value))
        if datum.type == "json":
            return cls(200, [("Content-Type", "application/json; charset=utf-8")], str(datum.value).encode())
        raise TypeError(f"unsupported HTTP response datum type {datum.type!r}")


def _from_http_datum(value: Mapping[str, Any]) -> HttpResponseData:
    status = int(value["status_code"].value)
    headers = [(name, str(d.value)) for name, d in value["headers"].items()]
    for cookie in value.get("cookies") or []:
        headers.extend(("Set-Cookie", set_cookie_header(morsel)) for morsel in cookie.values())
    body_datum = value.get("body")
    body = b"" if body_datum is None or body_datum.value is None else body_datum.value
    if isinstance(body, str):
        body = body.encode()
    return HttpResponseData(status, headers, bytes(body))


def set_cookie_header(morsel: Morsel[str]) -> str:
    """ASP.NET's ``SetCookieHeaderValue`` for an ``RpcHttpCookie`` (value escaped, path defaults to /)."""
    parts = [f"{morsel.key}={quote(morsel.value, safe='')}"]
    expires = _cookie_expires(morsel["expires"])
    if expires:
        parts.append(f"expires={expires}")
    if morsel["max-age"]:
        parts.append(f"max-age={int(float(morsel['max-age']))}")
    if morsel["domain"]:
        parts.append(f"domain={morsel['domain']}")
    parts.append(f"path={morsel['path'] or '/'}")
    if morsel["secure"]:
        parts.append("secure")
    same_site = str(morsel["samesite"] or "").lower()
    if same_site in ("lax", "strict", "none"):
        parts.append(f"samesite={same_site}")
    if morsel["httponly"]:
        parts.append("httponly")
    return "; ".join(parts)


def _cookie_expires(raw: str) -> str | None:
    if not raw:
        return None
    try:
        moment = parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        try:
            moment = datetime.fromisoformat(raw)
        except ValueError:
            return raw  # let the browser judge a format neither parser knows
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return format_datetime(moment.astimezone(UTC), usegmt=True)
