"""Storage connections read from settings the way the Functions host and the Durable extension read them."""

from __future__ import annotations

import asyncio
import json
import re
import time
from typing import Any

import pytest
from azure.core.credentials import AccessTokenInfo

from devhost.errors import ConfigError
from devhost.storage_clients import REFRESH_MARGIN_SECONDS, BearerTokens, ThreadedAsyncCredential
from devhost.storage_settings import (
    CORE_TOOLS_MISSING_STORAGE,
    CredentialKind,
    check_provider_type,
    create_credential,
    durable_connection_name,
    require_durable_storage,
    resolve_connection,
)

DURABLE_TRIGGERS = ["httpTrigger", "durableClient", "orchestrationTrigger", "activityTrigger"]


def durable_host(**provider: Any) -> dict[str, Any]:
    return {"version": "2.0", "extensions": {"durableTask": {"storageProvider": provider}}}


def test_connection_string_wins_over_identity_children() -> None:
    """A section with a value is a connection string, whatever children it also has (as in .NET config)."""
    env = {"AzureWebJobsStorage": "UseDevelopmentStorage=true", "AzureWebJobsStorage__accountName": "acct"}
    connection = resolve_connection("Storage", env)
    assert connection is not None and not connection.is_identity_based
    assert connection.uses_development_storage and connection.setting == "AzureWebJobsStorage"


def test_account_name_gives_all_three_endpoints_and_wins_over_uris() -> None:
    """``__accountName`` derives the public-cloud endpoints and takes precedence over service URIs."""
    env = {"AzureWebJobsStorage__accountName": "acct", "AzureWebJobsStorage__blobServiceUri": "https://other"}
    connection = resolve_connection("Storage", env)
    assert connection is not None and connection.is_identity_based
    assert connection.blob_uri == "https://acct.blob.core.windows.net"
    assert connection.queue_uri == "https://acct.queue.core.windows.net"
    assert connection.table_uri == "https://acct.table.core.windows.net"
    assert connection.credential is not None and connection.credential.kind is CredentialKind.DEFAULT


def test_service_uris_managed_identity_and_case_insensitive_names() -> None:
    """Explicit service URIs (trailing slash dropped) with a user-assigned managed identity."""
    env = {
        "AZUREWEBJOBSSTORAGE__BLOBSERVICEURI": "https://127.0.0.1:1/devstoreaccount1/",
        "AzureWebJobsStorage__queueServiceUri": "https://127.0.0.1:2/devstoreaccount1",
        "AzureWebJobsStorage__tableServiceUri": "https://127.0.0.1:3/devstoreaccount1",
        "AzureWebJobsStorage__credential": "managedidentity",
        "AzureWebJobsStorage__clientId": "client-1",
    }
    connection = resolve_connection("Storage", env)
    assert connection is not None
    assert connection.blob_uri == "https://127.0.0.1:1/devstoreaccount1"
    assert connection.credential is not None
    assert (connection.credential.kind, connection.credential.client_id) == (CredentialKind.MANAGED_IDENTITY,
                                                                             "client-1")
    assert "secret" not in connection.describe()


def test_prefixed_name_first_then_plain_and_connection_strings_section() -> None:
    """Connection ``X`` is ``AzureWebJobsX`` if set, else ``X``; ``ConnectionStrings:`` comes first in each."""
    env = {"MyStorage": "AccountName=b;AccountKey=a2V5", "AzureWebJobsMyStorage": "AccountName=a;AccountKey=a2V5"}
    assert resolve_connection("MyStorage", env).connection_string.startswith("AccountName=a")  # type: ignore[union-attr]
    assert resolve_connection("MyStorage", {"MyStorage": "x=1"}).setting == "MyStorage"  # type: ignore[union-attr]
    env = {"ConnectionStrings__Other": "UseDevelopmentStorage=true", "Other": "ignored"}
    assert resolve_connection("Other", env).setting == "ConnectionStrings:Other"  # type: ignore[union-attr]
    assert resolve_connection("Other", {"Other": "  "}) is None


def test_connection_name_from_host_json() -> None:
    """storageProvider.connectionName (or the older connectionStringName) picks the setting."""
    assert durable_connection_name({"version": "2.0"}) == "Storage"
    assert durable_connection_name(durable_host(connectionName="HubStorage")) == "HubStorage"
    assert durable_connection_name(durable_host(connectionStringName="Legacy")) == "Legacy"


def test_missing_storage_for_a_durable_app() -> None:
    """No setting at all: the Durable extension's message for durable/HTTP apps, Core Tools' for others."""
    with pytest.raises(ConfigError, match="Unable to resolve the Azure Storage connection named 'Storage'"):
        require_durable_storage({"version": "2.0"}, None, DURABLE_TRIGGERS)
    with pytest.raises(ConfigError) as caught:
        require_durable_storage({"version": "2.0"}, None, [*DURABLE_TRIGGERS, "timerTrigger"])
    assert str(caught.value) == CORE_TOOLS_MISSING_STORAGE
    assert str(caught.value).startswith("Missing value for AzureWebJobsStorage in local.settings.json.")


def test_identity_connection_needs_all_three_services() -> None:
    """Durable Functions needs blob, queue and table: a partial set of URIs is refused by name."""
    connection = resolve_connection("Storage", {"AzureWebJobsStorage__blobServiceUri": "https://a.blob.x"})
    with pytest.raises(ConfigError, match="queueServiceUri, AzureWebJobsStorage__tableServiceUri"):
        require_durable_storage({"version": "2.0"}, connection, DURABLE_TRIGGERS)


@pytest.mark.parametrize("provider_type", ["azureManaged", "mssql", "Netherite"])
def test_other_storage_providers_are_refused(provider_type: str) -> None:
    """A provider devhost cannot run stops it, naming the provider and what to do instead."""
    with pytest.raises(ConfigError, match=f"'{provider_type}'.*only the Azure Storage provider.*func start"):
        check_provider_type(durable_host(type=provider_type))
    check_provider_type(durable_host(type="AzureStorage"))


def test_scheduler_app_runs_locally_with_the_documented_overrides(tmp_path: Any) -> None:
    """The overrides the refusal names turn a Durable Task Scheduler app into an Azure Storage one locally."""
    from devhost.config import load_config

    host = {"version": "2.0", "extensions": {"durableTask": {"hubName": "%TASKHUB_NAME%", "storageProvider": {
        "type": "azureManaged", "connectionStringName": "DURABLE_TASK_SCHEDULER_CONNECTION_STRING"}}}}
    (tmp_path / "host.json").write_text(json.dumps(host))
    environ = {
        "TASKHUB_NAME": "SchedulerHub",
        "DURABLE_TASK_SCHEDULER_CONNECTION_STRING": "Endpoint=http://localhost:8080;Authentication=None",
        "AzureWebJobsStorage": "UseDevelopmentStorage=true",
    }
    with pytest.raises(ConfigError) as refused:
        require_durable_storage(host, resolve_connection(durable_connection_name(host), environ), DURABLE_TRIGGERS)
    overrides = dict(re.findall(r"(AzureFunctionsJobHost__\w+)=(\w+)", str(refused.value)))
    assert len(overrides) == 2
    config = load_config(tmp_path, environ={**environ, **overrides})
    assert config.durable.hub_name == "SchedulerHub"
    storage = require_durable_storage(config.host_json, config.storage, DURABLE_TRIGGERS)
    assert storage.uses_development_storage


def test_unknown_credential_value_is_refused() -> None:
    """An unsupported ``__credential`` is a clear error, not a silent DefaultAzureCredential."""
    with pytest.raises(ConfigError, match="managedidentity"):
        resolve_connection("Storage", {"AzureWebJobsStorage__accountName": "a", "AzureWebJobsStorage__credential": "x"})


def test_credential_types() -> None:
    """managedidentity → ManagedIdentityCredential; tenant+client+secret → ClientSecretCredential; else Default."""
    from azure.identity import ClientSecretCredential, DefaultAzureCredential, ManagedIdentityCredential

    def credential(**settings: str) -> Any:
        env = {"AzureWebJobsStorage__accountName": "a", **{f"AzureWebJobsStorage__{k}": v for k, v in settings.items()}}
        connection = resolve_connection("Storage", env)
        assert connection is not None and connection.credential is not None
        return create_credential(connection.credential)

    assert isinstance(credential(credential="managedidentity", clientId="c"), ManagedIdentityCredential)
    assert isinstance(credential(tenantId="t", clientId="c", clientSecret="s"), ClientSecretCredential)
    assert isinstance(credential(), DefaultAzureCredential)


class CountingCredential:
    """A synchronous credential handing out numbered tokens that live ``lifetime`` seconds."""

    def __init__(self, clock: list[float], lifetime: float) -> None:
        self.clock, self.lifetime, self.calls = clock, lifetime, 0

    def get_token_info(self, *scopes: str, options: Any = None) -> AccessTokenInfo:
        assert scopes == ("https://storage.azure.com/.default",)
        self.calls += 1
        return AccessTokenInfo(f"token-{self.calls}", int(self.clock[0] + self.lifetime))


def test_bearer_tokens_are_cached_and_refreshed_before_expiry() -> None:
    """One fetch serves concurrent requests; a token is replaced once it is within the refresh margin."""
    now = [1_000_000.0]
    source = CountingCredential(now, lifetime=3600)
    tokens = BearerTokens(ThreadedAsyncCredential(source), clock=lambda: now[0])

    async def scenario() -> None:
        assert set(await asyncio.gather(*(tokens.token() for _ in range(5)))) == {"token-1"}
        now[0] += 3600 - REFRESH_MARGIN_SECONDS - 1
        assert await tokens.token() == "token-1"
        now[0] += 2
        assert await tokens.token() == "token-2"

    asyncio.run(scenario())
    assert source.calls == 2


def test_lean_transport_sends_bearer_tokens_for_identity_connections(monkeypatch: pytest.MonkeyPatch) -> None:
    """The hot-call transport of an identity-based hub sends ``Bearer`` tokens, fetched once, never Shared Key."""
    from aiohttp import web
    from azure.data.tables.aio import TableServiceClient
    from azure.storage.queue.aio import QueueServiceClient

    from devhost import storage_clients
    from devhost.durable.taskhub import storage_http
    from tests.local_server import local_server

    source = CountingCredential([time.time()], lifetime=3600)  # the transport's tokens follow the real clock
    monkeypatch.setattr(storage_clients, "credential_for", lambda settings: ThreadedAsyncCredential(source))
    seen: list[str] = []

    async def record(request: web.Request) -> web.Response:
        seen.append(request.headers.get("Authorization", ""))
        return web.Response(status=204)

    async def scenario() -> None:
        async with local_server("/{tail:.*}", record) as port:
            base = f"https://127.0.0.1:{port}/devstoreaccount1"  # the SDK clients take tokens only over HTTPS
            connection = resolve_connection("Storage", {
                "AzureWebJobsStorage__blobServiceUri": base, "AzureWebJobsStorage__queueServiceUri": base,
                "AzureWebJobsStorage__tableServiceUri": base, "AzureWebJobsStorage__credential": "managedidentity",
            })
            assert connection is not None
            credential = ThreadedAsyncCredential(source)
            tables = TableServiceClient(base, credential=credential)
            queues = QueueServiceClient(base, credential=credential)
            http = storage_http.for_clients(connection, tables, queues)
            assert http is not None
            try:
                for table in (False, True):
                    # Sent over plain HTTP to the recording server: the transport itself has no such rule.
                    url = f"http://127.0.0.1:{port}/devstoreaccount1/q/messages/1?popreceipt=r"
                    reply = await http.send("DELETE", url, {}, table=table)
                    assert reply.status == 204
            finally:
                await http.close()
                await tables.close()
                await queues.close()

    asyncio.run(scenario())
    assert seen == ["Bearer token-1", "Bearer token-1"] and source.calls == 1


def test_key_store_follows_azure_webjobs_storage_in_either_form(tmp_path: Any) -> None:
    """--enableAuth keeps keys in AzureWebJobsStorage, identity-based too; without a blob endpoint it says so."""
    from devhost.config import load_config
    from devhost.secrets import BlobSecretsRepository, secrets_repository

    (tmp_path / "host.json").write_text(json.dumps(durable_host(connectionName="Other")))
    env = {"AzureWebJobsStorage__accountName": "acct", "AzureWebJobsStorage__credential": "managedidentity",
           "AzureWebJobsOther": "UseDevelopmentStorage=true"}
    config = load_config(tmp_path, environ=env)
    assert config.storage is not None and config.storage.setting == "AzureWebJobsOther"
    assert config.webjobs_storage is not None and config.webjobs_storage.is_identity_based
    repository = secrets_repository(config.webjobs_storage, tmp_path, {})
    assert isinstance(repository, BlobSecretsRepository)
    asyncio.run(repository.close())

    queues_only = resolve_connection("Storage", {"AzureWebJobsStorage__queueServiceUri": "https://a.queue.x"})
    with pytest.raises(ConfigError, match="AzureWebJobsStorage__blobServiceUri, or set AzureWebJobsSecretStorageType"):
        secrets_repository(queues_only, tmp_path, {})
    with pytest.raises(ConfigError, match="keeps keys in the AzureWebJobsStorage account"):
        secrets_repository(None, tmp_path, {})
