"""CORS as Core Tools answers it: ASP.NET Core's CORS middleware with ``WithOrigins(--cors).AllowAnyHeader()
.AllowAnyMethod()`` and ``AllowCredentials()`` for ``--cors-credentials``, in front of every route.

- A request without ``Origin`` is not a CORS request and passes untouched.
- A preflight (``OPTIONS`` with ``Access-Control-Request-Method``) is answered at once with 204; when the
  origin is allowed it carries ``Access-Control-Allow-Origin``, the requested method and headers echoed, and
  ``Access-Control-Allow-Credentials: true`` with credentials. A refused origin gets the bare 204, which the
  browser treats as a refusal.
- Any other request from an allowed origin runs as usual and its response (401s included) gets the
  ``Access-Control-Allow-Origin`` (and credentials) header; from a refused origin it runs without them.
- ``*`` alone allows any origin (answered as ``*``); ``*`` with credentials is refused at start, as
  ``CorsPolicyBuilder`` refuses it. Allowed origins are compared lower-cased and exactly.
- ``Vary: Origin`` is added when more than one origin is listed.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from aiohttp import web

from devhost.errors import ConfigError


@dataclass(frozen=True)
class CorsPolicy:
    origins: tuple[str, ...]
    credentials: bool = False

    @classmethod
    def build(cls, origins: Sequence[str], credentials: bool) -> CorsPolicy:
        policy = cls(tuple(o.strip().lower() for o in origins if o.strip()), credentials)
        if policy.any_origin and credentials:
            raise ConfigError("The CORS protocol does not allow specifying a wildcard (any) origin and credentials "
                              "at the same time. Configure the CORS policy by listing individual origins if "
                              "credentials needs to be supported.")
        return policy

    @property
    def any_origin(self) -> bool:
        return self.origins == ("*",)

    def headers_for(self, request: web.Request, *, preflight: bool) -> dict[str, str]:
        """The CORS response headers for this request; empty when its origin is not allowed."""
        origin = request.headers.get("Origin", "")
        if not origin or not (self.any_origin or origin in self.origins):
            return {}
        headers = {"Access-Control-Allow-Origin": "*" if self.any_origin else origin}
        if self.credentials:
            headers["Access-Control-Allow-Credentials"] = "true"
        if preflight:
            requested = [h.strip() for h in request.headers.get("Access-Control-Request-Headers", "").split(",")
                         if h.strip()]
            if requested:
                headers["Access-Control-Allow-Headers"] = ",".join(requested)
            headers["Access-Control-Allow-Methods"] = request.headers["Access-Control-Request-Method"]
        if not self.any_origin and len(self.origins) > 1:
            headers["Vary"] = "Origin"
        return headers


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def install(app: web.Application, policy: CorsPolicy) -> None:
    """Answer preflights before any route and add the headers to every other response."""

    @web.middleware
    async def cors(request: web.Request, handler: Handler) -> web.StreamResponse:
        if _is_preflight(request):
            return web.Response(status=204, headers=policy.headers_for(request, preflight=True))
        return await handler(request)

    async def on_prepare(request: web.Request, response: web.StreamResponse) -> None:
        if _is_preflight(request):
            return
        for name, value in policy.headers_for(request, preflight=False).items():
            if name == "Vary":
                response.headers.add(name, value)
            else:
                response.headers[name] = value

    app.middlewares.append(cors)
    app.on_response_prepare.append(on_prepare)


def _is_preflight(request: web.Request) -> bool:
    return (request.method == "OPTIONS" and "Origin" in request.headers
            and "Access-Control-Request-Method" in request.headers)
