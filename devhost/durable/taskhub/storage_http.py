"""A lean HTTP client for the hot storage calls, Shared Key signed by hand.

Why: profiles put about a quarter of devhost's CPU in the azure-core pipeline for the per-message and
per-episode calls (retry, request-id, content validation, response hooks, redirect and signing
policies, plus the SDK transport's netrc/proxy lookups): about 1 ms of CPU per call. The calls
themselves are simple and fixed, so this module signs them with the account key (the same
StringToSign the SDK's ``SharedKeyCredentialPolicy`` builds; tests cross-check it) and sends them on
long-lived keep-alive connections: for plain-``http`` endpoints (Azurite) on ``plain_http``'s small
HTTP/1.1 client, which costs about half of what an aiohttp request does; for ``https`` on one aiohttp
session.

Accounts with a key get this path, and so do identity-based connections: then each request carries a
bearer token from ``devhost.storage_clients.BearerTokens`` instead of a signature. SAS credentials (and
anything this module does not recognise) keep going through the SDK clients' own pipelines
(``SdkPipeline``). The task hub picks one ``Transport`` per service when it is built and hands it, with
the URL it serves, to ``rest`` and ``table_batch`` as a ``QueueEndpoint`` or ``TableEndpoint``.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from email.utils import formatdate
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import unquote

import aiohttp
from azure.core.exceptions import ServiceRequestError, ServiceResponseError
from azure.core.rest import HttpRequest
from yarl import URL

from devhost.durable.taskhub.plain_http import PlainHttpClient

if TYPE_CHECKING:
    from devhost.storage_clients import BearerTokens
    from devhost.storage_settings import StorageConnection

# The well-known development storage account (public; the same in every Azurite and emulator install).
DEV_ACCOUNT_NAME = "devstoreaccount1"
DEV_ACCOUNT_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
_DEV_PORTS = {"blob": 10000, "queue": 10001, "table": 10002}

# Quick retries: a local emulator either answers at once or is down, so the SDK's minute-long backoff
# would only delay the error. 4xx are the caller's business and never retried.
RETRY_DELAYS = (0.05, 0.2, 0.5)
_RETRY_STATUSES = frozenset({500, 503})
CLIENT_ENV_VAR = "DEVHOST_STORAGE_CLIENT"
# Connections that failed or broke (plain_http raises ConnectionError, an OSError, for both). A request
# that got no answer in time is not retried: it may have been acted on.
_RETRY_ERRORS = (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError, OSError)



@dataclass(frozen=True)
class StorageAccount:
    """Account name, key and service endpoints (no trailing slash) from a connection string."""

    name: str
    key: str  # Base64, as in the connection string
    blob_endpoint: str
    queue_endpoint: str
    table_endpoint: str


def parse_connection_string(connection_string: str) -> StorageAccount | None:
    """The account of a Shared Key connection string; None for SAS/token-only or unparseable ones.

    Accepts ``UseDevelopmentStorage=true`` (devstoreaccount1 on 127.0.0.1:10000-10002) and explicit
    ``AccountName=...;AccountKey=...`` strings with or without ``*Endpoint=`` overrides (missing ones
    are derived from ``DefaultEndpointsProtocol`` and ``EndpointSuffix``, as the SDKs do). Setting
    names are case-insensitive, as in the SDKs.
    """
    settings: dict[str, str] = {}
    for part in connection_string.strip().strip(";").split(";"):
        if not part.strip():
            continue
        name, sep, value = part.partition("=")
        if not sep:
            return None
        settings[name.strip().upper()] = value.strip()
    if settings.get("USEDEVELOPMENTSTORAGE", "").lower() == "true":
        return StorageAccount(
            DEV_ACCOUNT_NAME,
            DEV_ACCOUNT_KEY,
            *(f"http://127.0.0.1:{_DEV_PORTS[s]}/{DEV_ACCOUNT_NAME}" for s in ("blob", "queue", "table")),
        )
    name = settings.get("ACCOUNTNAME")
    key = settings.get("ACCOUNTKEY")
    if not name or not key:
        return None
    try:
        base64.b64decode(key, validate=True)
    except ValueError:
        return None
    protocol = settings.get("DEFAULTENDPOINTSPROTOCOL", "https")
    suffix = settings.get("ENDPOINTSUFFIX", "core.windows.net")

    def endpoint(service: str) -> str:
        explicit = settings.get(f"{service.upper()}ENDPOINT")
        return (explicit or f"{protocol}://{name}.{service}.{suffix}").rstrip("/")

    return StorageAccount(name, key, endpoint("blob"), endpoint("queue"), endpoint("table"))


# ------------------------------------------------------------------------------------------- signing


def sign(key: bytes, string_to_sign: str) -> str:
    """Base64 HMAC-SHA256 of the UTF-8 StringToSign (the signature of every Shared Key scheme)."""
    # Not the one-shot ``hmac.digest``: it lets go of the GIL around OpenSSL's HMAC, and the host's loop
    # then waits for it again, up to the switch interval (5 ms), whenever a function runs in the
    # worker's thread pool. The HMAC object keeps the GIL for messages this short.
    return base64.b64encode(hmac.new(key, string_to_sign.encode("utf-8"), hashlib.sha256).digest()).decode()


def queue_string_to_sign(
    account: str, method: str, path: str, query: str, headers: Mapping[str, str]
) -> str:
    """The Shared Key StringToSign of the Blob/Queue/File services (versions 2009-09-19 and later).

    ``headers`` has lower-case names. Content-Length is empty when 0; Date is empty because x-ms-date
    is sent (and signed among the canonicalized headers). Query parameters are canonicalized as the
    SDK does: lower-case names, sorted, values percent-decoded, one ``\\nname:value`` line each.
    """
    length = headers.get("content-length", "")
    fixed = "\n".join(
        (
            method,
            headers.get("content-encoding", ""),
            headers.get("content-language", ""),
            "" if length == "0" else length,
            headers.get("content-md5", ""),
            headers.get("content-type", ""),
            headers.get("date", ""),
            headers.get("if-modified-since", ""),
            headers.get("if-match", ""),
            headers.get("if-none-match", ""),
            headers.get("if-unmodified-since", ""),
            headers.get("range", ""),
        )
    )
    canonical_headers = "".join(f"{name}:{headers[name]}\n" for name in sorted(headers) if name.startswith("x-ms-"))
    resource = f"/{account}{path}"
    if query:
        pairs = sorted(p.partition("=")[::2] for p in query.split("&"))
        resource += "".join(f"\n{name.lower()}:{unquote(value)}" for name, value in pairs)
    return f"{fixed}\n{canonical_headers}{resource}"


def table_string_to_sign(
    account: str, method: str, path: str, query: str, headers: Mapping[str, str]
) -> str:
    """The Shared Key StringToSign of the Table service: VERB, Content-MD5, Content-Type, Date, resource.

    Date is the x-ms-date value (never a Date header, as in the SDK). The canonicalized resource is
    ``/{account}{path}`` (with path-style emulator URLs the account therefore appears twice) plus
    ``?comp=`` only, exactly as the tables SDK's ``SharedKeyCredentialPolicy`` and Azurite build it.
    """
    resource = f"/{account}{path}"
    if query:
        for part in query.split("&"):
            name, _, value = part.partition("=")
            if name == "comp":
                resource += "?comp=" + value
                break
    return "\n".join(
        (
            method,
            headers.get("content-md5", ""),
            headers.get("content-type", ""),
            headers.get("x-ms-date", ""),
            resource,
        )
    )


# -------------------------------------------------------------------------------------------- client


@dataclass
class Reply:
    """Status, headers (case-insensitive) and the whole body of one storage response."""

    status: int
    headers: Mapping[str, str]
    content: bytes

    def text(self) -> str:
        return self.content.decode("utf-8", "replace")


class StorageHttp:
    """One keep-alive aiohttp session per task hub, signing each request with the account key, or with
    ``tokens`` (identity-based connections) sending a bearer token instead."""

    def __init__(
        self, account: StorageAccount, queue_version: str, table_version: str, tokens: BearerTokens | None = None
    ) -> None:
        self.account = account
        self.queue_version = queue_version
        self.table_version = table_version
        self._key = base64.b64decode(account.key)
        self._tokens = tokens  # identity-based: bearer tokens instead of Shared Key signatures
        self._session: aiohttp.ClientSession | None = None  # https endpoints
        self._plain = PlainHttpClient(limit=64, keepalive=4.0, connect_timeout=5.0, total_timeout=10.0)
        # DEVHOST_STORAGE_CLIENT=aiohttp sends plain-http calls on aiohttp too (to compare the two).
        self._plain_http = os.environ.get(CLIENT_ENV_VAR, "").strip().lower() != "aiohttp"
        self._date_second = -1
        self._date_text = ""

    def _http_date(self) -> str:
        # RFC 1123 date, formatted once per second: every request needs one and formatting costs more
        # than the comparison.
        now = int(time.time())
        if now != self._date_second:
            self._date_second = now
            self._date_text = formatdate(now, usegmt=True)
        return self._date_text

    def _session_for_loop(self) -> aiohttp.ClientSession:
        # Created on first use, inside the running loop the session will belong to (as the SDK's are).
        session = self._session
        if session is None or session.closed:
            connector = aiohttp.TCPConnector(
                limit=64,
                # Below Node's default 5 s server keep-alive, so an idle connection is dropped by us
                # rather than reused just as Azurite closes it.
                keepalive_timeout=4.0,
            )
            session = aiohttp.ClientSession(
                connector=connector,
                trust_env=False,  # no netrc/proxy lookups per request; a proxy must never see loopback
                # aiohttp would otherwise invent "application/octet-stream" for a bodiless PUT, and the
                # service signs the Content-Type it receives: only the one we signed may be sent.
                skip_auto_headers=("Content-Type",),
                # A local emulator answers in milliseconds; a request left unanswered must fail soon (and be
                # retried by its caller) rather than hold a queue poller or an episode for a minute.
                timeout=aiohttp.ClientTimeout(total=10, sock_connect=5),
            )
            self._session = session
        return session

    def signed_headers(
        self, method: str, url: str | URL, headers: Mapping[str, str], body: bytes, *, table: bool,
        bearer: str | None = None,
    ) -> dict[str, str]:
        """The request's headers plus x-ms-version, x-ms-date and Authorization (names lower-case)."""
        # The path and query as aiohttp puts them on the wire: yarl requotes them (``%27`` becomes
        # ``'``, for one), and the SDK signs that requoted form too.
        target = url if isinstance(url, URL) else URL(url)
        signed = {name.lower(): value for name, value in headers.items()}
        signed["x-ms-version"] = self.table_version if table else self.queue_version
        signed["x-ms-date"] = self._http_date()
        if body:
            signed["content-length"] = str(len(body))
        if bearer is not None:
            signed["authorization"] = f"Bearer {bearer}"
            return signed
        path, query = target.raw_path, target.raw_query_string
        if table:
            string_to_sign = table_string_to_sign(self.account.name, method, path, query, signed)
        else:
            string_to_sign = queue_string_to_sign(self.account.name, method, path, query, signed)
        signed["authorization"] = f"SharedKey {self.account.name}:{sign(self._key, string_to_sign)}"
        return signed

    async def send(
        self, method: str, url: str, headers: Mapping[str, str], body: bytes = b"", *, table: bool
    ) -> Reply:
        """One signed request with quick retries on connection errors and 500/503; never on 4xx.

        Connection failures surface as azure-core's ``ServiceRequestError``/``ServiceResponseError``,
        so callers' existing ``AzureError`` handling covers both paths alike.
        """
        # Parsed (and requoted) once; the same URL object is signed and sent, so they cannot differ.
        target = URL(url)
        plain = self._plain_http and target.scheme == "http"  # Azurite: the small client; https: aiohttp
        attempt = 0
        while True:
            # Signed per attempt: x-ms-date (and the token) must stay fresh across retries.
            bearer = await self._tokens.token() if self._tokens is not None else None
            signed = self.signed_headers(method, target, headers, body, table=table, bearer=bearer)
            try:
                if plain:
                    answer = await self._plain.request(
                        method, target.raw_host or "", target.port or 80, target.raw_path_qs, signed, body)
                    reply = Reply(answer.status, answer.headers, answer.body)
                else:
                    session = self._session_for_loop()
                    async with session.request(method, target, headers=signed, data=body or None) as response:
                        content = await response.read()
                        reply = Reply(response.status, response.headers, content)
            except aiohttp.ServerTimeoutError as exc:  # a TimeoutError, but about the connection: retried
                if attempt >= len(RETRY_DELAYS):
                    raise ServiceRequestError(f"{method} {url} failed: {exc!r}", error=exc) from exc
            except TimeoutError as exc:
                raise ServiceResponseError(f"{method} {url} timed out", error=exc) from exc
            except _RETRY_ERRORS as exc:
                if attempt >= len(RETRY_DELAYS):
                    raise ServiceRequestError(f"{method} {url} failed: {exc!r}", error=exc) from exc
            else:
                if reply.status not in _RETRY_STATUSES or attempt >= len(RETRY_DELAYS):
                    return reply
            await asyncio.sleep(RETRY_DELAYS[attempt])
            attempt += 1

    async def close(self) -> None:
        await self._plain.close()
        if self._session is not None:
            await self._session.close()
            self._session = None


def for_clients(
    connection: str | StorageConnection, table_service: Any, queue_service: Any
) -> StorageHttp | None:
    """A lean client for the SDK service clients' account, or None to keep them on the SDK pipeline.

    None unless the connection string carries an account key, or the connection is identity-based, and
    its endpoints are the ones the SDK clients use (then the URLs built from the SDK clients are signed
    for the right account).
    """
    if not isinstance(connection, str) and connection.connection_string is None:
        from devhost.storage_clients import BearerTokens, credential_for

        assert connection.credential is not None and connection.blob_uri and connection.queue_uri
        assert connection.table_uri
        account = StorageAccount("", "", connection.blob_uri, connection.queue_uri, connection.table_uri)
        tokens = BearerTokens(credential_for(connection.credential))
    else:
        text = connection if isinstance(connection, str) else connection.connection_string or ""
        parsed = parse_connection_string(text)
        account, tokens = parsed, None
    if account is None:
        return None
    if (
        table_service.url.rstrip("/") != account.table_endpoint
        or queue_service.url.rstrip("/") != account.queue_endpoint
    ):
        return None
    return StorageHttp(account, queue_service.api_version, table_service.api_version, tokens)


class SdkPipeline:
    """A ``Transport`` on an SDK client's own pipeline (its auth, headers and retry policies)."""

    def __init__(self, client: Any) -> None:
        # The SDK exposes no public way to send a prepared request: ``client._client`` is its generated
        # service client, whose ``_client`` is the azure-core PipelineClient its public methods use.
        # This is the one place that knows.
        self._pipeline_client = client._client._client
        self._api_version: str = client.api_version

    async def send(
        self, method: str, url: str, headers: Mapping[str, str], body: bytes = b"", *, table: bool
    ) -> Reply:
        # stream=True keeps the pipeline from decoding the body itself.
        request = HttpRequest(
            method, url, headers={"x-ms-version": self._api_version, **headers}, content=body or None
        )
        response = await self._pipeline_client.send_request(request, stream=True)
        content = await response.read()
        return Reply(response.status_code, response.headers, content)


class Transport(Protocol):
    """Sends one prepared storage request: ``StorageHttp`` (Shared Key or bearer token) or ``SdkPipeline``."""

    async def send(
        self, method: str, url: str, headers: Mapping[str, str], body: bytes = b"", *, table: bool
    ) -> Reply: ...


@dataclass(frozen=True)
class QueueEndpoint:
    """One queue's URL and the transport its hot calls go on."""

    transport: Transport
    url: str


@dataclass(frozen=True)
class TableEndpoint:
    """One table: the account's table endpoint (ending in ``/``), its name, and the transport."""

    transport: Transport
    base_url: str
    name: str
