"""The host's key-management routes (``KeysController``), for the master key only.

``/admin/functions/{name}/keys[/{keyName}]`` and ``/admin/host/{keys|functionkeys|systemkeys}[/{keyName}]``:
GET lists or reads, POST generates, PUT sets ``{"value": ...}`` (201 when new, 200 when replaced), DELETE
removes (204). Bodies are the host's API models: camel-case, with a ``links`` list holding the request URL
as ``self``. ``_master`` names the master key under ``/admin/host/keys`` and ``systemkeys``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from aiohttp import web

from devhost.http.auth import Authorizer
from devhost.secrets import (
    FUNCTION_KEYS,
    MASTER_KEY_ROUTE_NAME,
    SYSTEM_KEYS,
    AuthLevel,
    SecretManager,
)

_FUNCTION_ROUTE = re.compile(r"^/admin/functions/([^/]+)/keys(?:/([^/]+))?/?$", re.IGNORECASE)
_HOST_ROUTE = re.compile(r"^/admin/host/(keys|functionkeys|systemkeys)(?:/([^/]+))?/?$", re.IGNORECASE)


def is_key_route(path: str) -> bool:
    return bool(_FUNCTION_ROUTE.match(path) or _HOST_ROUTE.match(path))


def _model(request: web.Request, content: dict[str, Any], status: int = 200) -> web.Response:
    self_link = str(request.url.with_query(None))
    return web.json_response({**content, "links": [{"rel": "self", "href": self_link}]}, status=status)


def _message(status: int, text: str) -> web.Response:
    # MVC's BadRequest("...") writes the string as JSON.
    return web.json_response(text, status=status)


class KeysRoutes:
    """Serves the key routes; ``is_function`` says whether a name is one of the app's functions."""

    def __init__(self, secrets: SecretManager | None, authorizer: Authorizer,
                 is_function: Callable[[str], bool]) -> None:
        self.secrets = secrets
        self.authorizer = authorizer
        self.is_function = is_function

    async def handle(self, request: web.Request, path: str) -> web.StreamResponse:
        refused = await self.authorizer.route_gate(request, AuthLevel.ADMIN)
        if refused is not None:
            return refused
        if self.secrets is None:
            # Without --enableAuth there is no secret store to manage, as with Core Tools' local default.
            return _message(404, "Keys are kept only with --enableAuth.")
        function_match = _FUNCTION_ROUTE.match(path)
        if function_match:
            scope, key_name = function_match.group(1), function_match.group(2)
            if not self.is_function(scope):
                return web.Response(status=404)
        else:
            host_match = _HOST_ROUTE.match(path)
            assert host_match is not None
            scope = host_match.group(1).lower()
            scope = FUNCTION_KEYS if scope == "keys" else scope
            key_name = host_match.group(2)
        method = request.method
        if key_name is None:
            if method != "GET":
                return web.Response(status=405)
            return _model(request, {"keys": [{"name": n, "value": v} for n, v in (await self._keys(scope)).items()]})
        if method == "GET":
            keys = await self._keys(scope, include_master=scope == SYSTEM_KEYS)
            value = next((v for n, v in keys.items() if n.lower() == key_name.lower()), None)
            if value is None:
                return web.Response(status=404)
            return _model(request, {"name": key_name, "value": value})
        if method in ("POST", "PUT"):
            value = None
            if method == "PUT":
                value = await _put_value(request)
                if value is None:
                    return _message(400, "Invalid key value")
            secret, created = await self.secrets.set_key(scope, key_name, value)
            return _model(request, {"name": key_name, "value": secret}, 201 if created else 200)
        if method == "DELETE":
            if key_name.lower() == MASTER_KEY_ROUTE_NAME:
                return _message(400, "Cannot delete System Key.")
            if not await self.secrets.delete_key(scope, key_name):
                return web.Response(status=404)
            return web.Response(status=204)
        return web.Response(status=405)

    async def _keys(self, scope: str, *, include_master: bool = False) -> dict[str, str]:
        assert self.secrets is not None
        if scope in (FUNCTION_KEYS, SYSTEM_KEYS):
            keys = await self.secrets.host_keys(scope)
            if include_master:
                keys = {**keys, MASTER_KEY_ROUTE_NAME: await self.secrets.master_key()}
            return keys
        return await self.secrets.function_keys(scope)


async def _put_value(request: web.Request) -> str | None:
    try:
        body = json.loads(await request.read() or b"null")
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    value = body.get("value") if isinstance(body, dict) else None
    return value if isinstance(value, str) and value else None
