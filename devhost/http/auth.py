"""Who may call what, decided as the Functions host decides it.

With ``--enableAuth`` a key comes from the ``x-functions-key`` header or, failing that, the ``code`` query
parameter (``AuthenticationLevelHandler``) and is matched by ``SecretManager``. An HTTP function needs its
``authLevel`` exactly (a function key, a host function key, or the master key); a function that refuses
answers 401 with no body (``FunctionInvocationMiddleware``); a system key is not a function key there,
as levels must match exactly (``AuthUtility.PrincipalHasAuthLevelClaim``). Controller routes (the ``/admin``
routes, the Durable webhooks) answer 401 when no key matched (a function's own keys match nothing there:
those routes have no function) and 403 when a key matched but grants too little (ASP.NET's challenge vs
forbid). Without ``--enableAuth`` every caller is an admin, which is what Core
Tools' ``CliAuthenticationHandler`` does locally.
"""

from __future__ import annotations

from aiohttp import web

from devhost.secrets import ANONYMOUS, AuthLevel, Grant, SecretManager
from devhost.worker.loader import LoadedFunction

KEY_HEADER = "x-functions-key"
KEY_QUERY = "code"
DURABLE_SYSTEM_KEY = "durabletask_extension"  # DefaultScriptWebHookProvider.GetKeyName("durabletask")
ADMIN = Grant(AuthLevel.ADMIN)


def presented_key(request: web.Request) -> str | None:
    """The key a request carries: the header wins over ``?code=``; names are case-insensitive."""
    value = request.headers.get(KEY_HEADER)
    if value is None:
        value = next((v for k, v in request.query.items() if k.lower() == KEY_QUERY), None)
    return value or None


def _empty(status: int) -> web.Response:
    return web.Response(status=status)


class Authorizer:
    """Grants for requests; ``secrets`` is None when keys are not checked (no ``--enableAuth``)."""

    def __init__(self, secrets: SecretManager | None, *, disabled: frozenset[str] = frozenset()) -> None:
        self.secrets = secrets
        self.disabled = frozenset(name.lower() for name in disabled)

    @property
    def enabled(self) -> bool:
        return self.secrets is not None

    async def grant(self, request: web.Request, function_name: str | None = None) -> Grant:
        if self.secrets is None:
            return ADMIN
        key = presented_key(request)
        if key is None:
            return ANONYMOUS
        return await self.secrets.grant(key, function_name)

    async def function_gate(self, request: web.Request, fn: LoadedFunction) -> web.Response | None:
        """401 unless the key meets the function's level; 404 for a disabled function unless admin."""
        assert fn.http is not None
        grant = await self.grant(request, fn.name)
        if not grant.allows(AuthLevel.parse(fn.http.auth_level)):
            return _empty(401)
        if fn.name.lower() in self.disabled and grant.level != AuthLevel.ADMIN:
            return _empty(404)
        return None

    async def route_gate(self, request: web.Request, required: AuthLevel,
                         key_name: str | None = None) -> web.Response | None:
        """A controller route's policy: None when allowed, else 401 (no match) or 403 (too little)."""
        grant = await self.grant(request)
        if grant.allows(required, key_name):
            return None
        return _empty(401 if grant.level == AuthLevel.ANONYMOUS else 403)

    async def durable_query(self) -> str:
        """``requiredQueryStringParameters`` of the durable client binding: ``code=<system key>`` or ``""``."""
        if self.secrets is None:
            return ""
        return f"{KEY_QUERY}={await self.secrets.system_key(DURABLE_SYSTEM_KEY)}"
