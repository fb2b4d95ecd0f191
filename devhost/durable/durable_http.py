"""``call_http`` as the extension runs it: the built-in HTTP activity and its JSON.

The Python SDK sends a ``CallHttp`` action whose ``httpRequest`` holds ``method``, ``uri``, ``content``,
``headers`` and ``tokenSource`` (``{"resource", "kind": "AzureManagedIdentity"}``). The extension turns
it into a ``DurableHttpRequest`` and schedules the reserved activity ``BuiltIn::HttpActivity`` with it;
the activity's result is a ``DurableHttpResponse``: ``{"statusCode": int, "headers": {...}, "content":
str}``, headers holding one string or a list of strings. With ``asynchronousPatternEnabled`` (the
default) a 202 is followed: a durable timer of ``Retry-After`` seconds (else the default 30 s), then a
GET of ``Location`` with the same headers minus ``x-functions-key``, until the answer is not 202.
"""

from __future__ import annotations

import json
from typing import Any

HTTP_ACTIVITY = "BuiltIn::HttpActivity"
DEFAULT_ASYNC_SLEEP_MS = 30000  # HttpOptions.DefaultAsyncRequestSleepTimeMilliseconds
# ManagedIdentityTokenSource turns these bare resources into scopes; others are used as given.
WELL_KNOWN_SCOPES = {
    "https://management.core.windows.net": "https://management.core.windows.net/.default",
    "https://management.core.windows.net/": "https://management.core.windows.net/.default",
    "https://graph.microsoft.com": "https://graph.microsoft.com/.default",
    "https://graph.microsoft.com/": "https://graph.microsoft.com/.default",
}


class DurableHttpError(ValueError):
    """The request cannot be made as given (the extension fails the call the same way)."""


def durable_http_request(action_request: Any) -> dict[str, Any]:
    """The extension's DurableHttpRequest (its JSON, in its property order) from the SDK's ``httpRequest``."""
    if not isinstance(action_request, dict):
        raise DurableHttpError("The CallHttp action has no httpRequest object.")
    method = action_request.get("method") or "GET"
    uri = action_request.get("uri")
    if not isinstance(uri, str) or not uri.lower().startswith(("http://", "https://")):
        raise DurableHttpError(f"Invalid URI for call_http: {uri!r}; an absolute http(s) URI is required.")
    headers = action_request.get("headers")
    token = action_request.get("tokenSource")
    if token is not None:
        if not isinstance(token, dict) or token.get("kind") != "AzureManagedIdentity":
            kind = token.get("kind") if isinstance(token, dict) else token
            raise DurableHttpError(f"The token source kind '{json.dumps(kind)}' is not supported.")
        resource = str(token.get("resource") or "")
        token = {"kind": "AzureManagedIdentity", "resource": WELL_KNOWN_SCOPES.get(resource, resource),
                 "options": token.get("options")}
    return {
        "method": str(method).upper(),
        "uri": uri,
        "headers": headers if isinstance(headers, dict) else None,
        "content": action_request.get("content"),
        "tokenSource": token,
        "asynchronousPatternEnabled": action_request.get("asynchronousPatternEnabled", True) is not False,
        "retryOptions": None,
        "timeout": action_request.get("timeout"),
    }


def header(headers: Any, name: str) -> str | None:
    """One header of a DurableHttpResponse, case-insensitively; the first value of a list."""
    if not isinstance(headers, dict):
        return None
    for key, value in headers.items():
        if key.lower() == name.lower():
            if isinstance(value, list):
                return str(value[0]) if value else None
            return None if value is None else str(value)
    return None


def location_poll_request(request: dict[str, Any], location: str) -> dict[str, Any]:
    """CreateLocationPollRequest: a GET of ``location`` with the headers, token and timeout kept."""
    headers = {k: v for k, v in (request.get("headers") or {}).items() if k.lower() != "x-functions-key"}
    return {**request, "method": "GET", "uri": location, "headers": headers, "content": None,
            "asynchronousPatternEnabled": True}
