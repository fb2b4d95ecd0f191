"""Azure Storage SDK clients and bearer tokens for a resolved storage connection.

azure-identity's credentials are synchronous here on purpose: one credential per connection serves
the whole process (every task hub and event loop), and a token is fetched about once an hour, so
the thread hop of ``ThreadedAsyncCredential`` costs nothing that matters. Async credentials would be
bound to the event loop that first used them.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Callable
from typing import Any

from azure.core.credentials import AccessToken, AccessTokenInfo, TokenRequestOptions

from devhost.storage_settings import STORAGE_SCOPE, CredentialSettings, StorageConnection, create_credential

# A token is replaced this long before it expires (or at the refresh time the identity endpoint gives),
# so a request never carries a token that runs out on its way.
REFRESH_MARGIN_SECONDS = 300.0


class ThreadedAsyncCredential:
    """An ``AsyncTokenCredential`` over a synchronous azure-identity credential."""

    def __init__(self, credential: Any) -> None:
        self.credential = credential

    async def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        return await asyncio.to_thread(functools.partial(self.credential.get_token, *scopes, **kwargs))

    async def get_token_info(self, *scopes: str, options: TokenRequestOptions | None = None) -> AccessTokenInfo:
        if hasattr(self.credential, "get_token_info"):
            return await asyncio.to_thread(self.credential.get_token_info, *scopes, options=options)
        token = await self.get_token(*scopes)
        return AccessTokenInfo(token.token, token.expires_on)

    async def close(self) -> None:
        """Shared by the process: never closed by one client."""

    async def __aenter__(self) -> ThreadedAsyncCredential:
        return self

    async def __aexit__(self, *args: object) -> None:
        return None


@functools.cache
def credential_for(settings: CredentialSettings) -> ThreadedAsyncCredential:
    """One credential per distinct credential setting (settings come from configuration, so few)."""
    return ThreadedAsyncCredential(create_credential(settings))


class BearerTokens:
    """Storage bearer tokens from a credential, cached and refreshed before they expire."""

    def __init__(self, credential: ThreadedAsyncCredential, clock: Callable[[], float] = time.time) -> None:
        self._credential = credential
        self._clock = clock
        self._token: AccessTokenInfo | None = None
        self._lock: asyncio.Lock | None = None

    def _fresh(self) -> bool:
        token = self._token
        if token is None:
            return False
        now = self._clock()
        if token.refresh_on is not None and now >= token.refresh_on:
            return False
        return now < token.expires_on - REFRESH_MARGIN_SECONDS

    async def token(self) -> str:
        if self._fresh():
            assert self._token is not None
            return self._token.token
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:  # one fetch for every request that found the token stale
            if not self._fresh():
                self._token = await self._credential.get_token_info(STORAGE_SCOPE)
        assert self._token is not None
        return self._token.token


def open_service_clients(
    connection: str | StorageConnection,
    transport: Callable[[], Any],
    table_options: dict[str, Any],
    storage_options: dict[str, Any],
) -> tuple[Any, Any, Any]:
    """Async table, queue and blob service clients for ``connection`` (a connection string or settings)."""
    return (
        open_service_client("table", connection, transport=transport(), **table_options),
        open_service_client("queue", connection, transport=transport(), **storage_options),
        open_service_client("blob", connection, transport=transport(), **storage_options),
    )


def open_blob_service(connection: str | StorageConnection, **options: Any) -> Any:
    """An async blob service client for ``connection`` (a connection string or settings with a blob URI)."""
    return open_service_client("blob", connection, **options)


def open_service_client(service: str, connection: str | StorageConnection, endpoint: str | None = None,
                        **options: Any) -> Any:
    """An async ``blob``, ``queue`` or ``table`` service client for ``connection``: from its connection
    string, else at ``endpoint`` (default: the connection's own URI for the service) with its credential."""
    if service == "blob":
        from azure.storage.blob.aio import BlobServiceClient as client_type
    elif service == "queue":
        from azure.storage.queue.aio import QueueServiceClient as client_type
    else:
        from azure.data.tables.aio import TableServiceClient as client_type

    text = connection if isinstance(connection, str) else connection.connection_string
    if text is not None:
        return client_type.from_connection_string(text, **options)
    uri = endpoint or connection.service_uri(service)
    assert uri is not None and connection.credential is not None
    return client_type(uri, credential=credential_for(connection.credential), **options)
