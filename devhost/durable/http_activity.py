"""The built-in HTTP activity (``BuiltIn::HttpActivity``): one HTTP request, answered as a DurableHttpResponse.

As the extension's ``TaskHttpActivityShim``: the ``Content-Type`` header types the body (``text/plain``
when absent, multipart refused), a managed-identity token source adds ``Authorization: Bearer``, and
the answer keeps the status code, the response headers (not the content headers, which .NET keeps
apart) and the body as text. A request that gets no answer fails the task.

Tokens: the extension asks ``DefaultAzureCredential`` for the resource's scope; devhost does the same
with azure-identity's ``DefaultAzureCredential``, which on a developer machine finds environment
credentials, a workload identity, the Azure CLI, azd or Azure PowerShell login, but no managed identity
(there is none off Azure).
"""

from __future__ import annotations

from typing import Any

import aiohttp

from devhost.errors import DevhostError

# Headers aiohttp (like .NET) keeps for the content, not the response.
CONTENT_HEADERS = {"content-type", "content-length", "content-encoding", "content-language", "content-location",
                   "content-md5", "content-range", "content-disposition", "expires", "last-modified", "allow"}


class HttpActivityError(DevhostError):
    """The HTTP call failed before any response (the task fails with this message)."""


def _first_content_type(headers: dict[str, Any]) -> tuple[str, dict[str, str]]:
    content_type = ""
    others: dict[str, str] = {}
    for key, value in headers.items():
        values = value if isinstance(value, list) else [value]
        if key.lower() == "content-type":
            for item in values:
                if "multipart" in str(item):
                    raise HttpActivityError("Multipart content is not supported with CallHttpAsync.")
                content_type = str(item)
        else:
            others[key] = ", ".join(str(v) for v in values)
    return content_type, others


async def bearer_token(token_source: dict[str, Any]) -> str:
    """A token for the source's resource from azure-identity's DefaultAzureCredential."""
    try:
        from azure.identity.aio import DefaultAzureCredential
    except ImportError as exc:  # pragma: no cover - azure-identity is a requirement
        raise HttpActivityError("call_http with a token source needs the azure-identity package") from exc
    options = token_source.get("options") or {}
    kwargs: dict[str, Any] = {}
    if options.get("authorityhost") or options.get("authorityHost"):
        kwargs["authority"] = options.get("authorityhost") or options.get("authorityHost")
    async with DefaultAzureCredential(**kwargs) as credential:
        try:
            token = await credential.get_token(str(token_source["resource"]))
        except Exception as exc:
            raise HttpActivityError(f"No token for '{token_source['resource']}': {exc}") from exc
    return token.token


async def run_http_activity(request: dict[str, Any], session: aiohttp.ClientSession) -> dict[str, Any]:
    """Send ``request`` (a DurableHttpRequest) and return its DurableHttpResponse."""
    content_type, headers = _first_content_type(request.get("headers") or {})
    body = request.get("content")
    if body is not None:
        headers["Content-Type"] = content_type or "text/plain"
    token_source = request.get("tokenSource")
    if token_source:
        headers["Authorization"] = f"Bearer {await bearer_token(token_source)}"
    timeout = aiohttp.ClientTimeout(total=None)
    try:
        async with session.request(request.get("method") or "GET", request["uri"], headers=headers,
                                   data=None if body is None else str(body).encode("utf-8"),
                                   timeout=timeout, allow_redirects=True) as response:
            text = await response.text(errors="replace")
            answer_headers: dict[str, Any] = {}
            for key in response.headers:
                if key.lower() in CONTENT_HEADERS or key in answer_headers:
                    continue
                values = response.headers.getall(key)
                answer_headers[key] = values[0] if len(values) == 1 else values
    except (TimeoutError, aiohttp.ClientError, ValueError) as exc:
        raise HttpActivityError(str(exc) or type(exc).__name__) from exc
    return {"statusCode": response.status, "headers": answer_headers, "content": text}
