"""Identity-based storage end to end, with no network and no account key: devhost authenticates to Azurite
(OAuth over HTTPS) with tokens from a managed-identity endpoint, as a Flex Consumption app does in Azure,
for the task hub, the key store, and storage triggers and bindings. A durable app with no storage setting
at all stops before anything is written.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from azure.core.credentials import AccessToken
from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError

from devhost.azurite import AzuriteProcess, free_port
from devhost.pack import publishable_files
from devhost.secrets import SECRETS_CONTAINER
from tests.devhost.identity_stand_ins import (
    ManagedIdentityEndpoint,
    self_signed_certificate,
    service_uris,
    start_oauth_azurite,
    storage_token,
)
from tests.devhost.triggers.test_storage_app import APP as STORAGE_APP
from tests.devhost.triggers.test_storage_app import Names, eventually
from tests.e2e.flows import start, wait_for_custom, wait_until_finished
from tests.hosts import PROJECT_ROOT, RunningHost, stop_host, wait_until_ready
from tests.http_client import request

pytestmark = pytest.mark.e2e
CLIENT_ID = "11111111-2222-3333-4444-555555555555"  # the user-assigned identity's client id


@dataclass
class OAuthStorage:
    azurite: AzuriteProcess
    identity: ManagedIdentityEndpoint
    cert: Path


@pytest.fixture(scope="module")
def oauth_storage(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OAuthStorage]:
    """Azurite accepting bearer tokens over HTTPS, and the managed-identity endpoint that issues them."""
    folder = tmp_path_factory.mktemp("oauth")
    cert, key = self_signed_certificate(folder)
    azurite = start_oauth_azurite(folder / "azurite", cert, key, PROJECT_ROOT)
    identity = ManagedIdentityEndpoint(CLIENT_ID)
    identity.start()
    try:
        yield OAuthStorage(azurite, identity, cert)
    finally:
        identity.stop()
        azurite.stop()
        shutil.rmtree(folder, ignore_errors=True)


def app_copy(target: Path, values: dict[str, str]) -> Path:
    """The deployable app in ``target`` with its own local.settings.json ``Values``."""
    for relative in publishable_files(PROJECT_ROOT):
        (target / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(PROJECT_ROOT / relative, target / relative)
    (target / "local.settings.json").write_text(json.dumps({"IsEncrypted": False, "Values": values}))
    return target


def clean_environment(**extra: str) -> dict[str, str]:
    """This process's environment without any storage or Azure identity setting, plus ``extra``."""
    env = {k: v for k, v in os.environ.items()
           if not k.lower().startswith(("azurewebjobsstorage", "azure_", "identity_", "msi_", "imds_"))}
    return {**env, "PYTHONUNBUFFERED": "1", **extra}


def devhost_command(app_dir: Path, port: int) -> list[str]:
    return [sys.executable, "-m", "devhost", "start", "--port", str(port), "--app-dir", str(app_dir)]


class FixedToken:
    """A token credential for the test's own reads of the OAuth Azurite."""

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        return AccessToken(*storage_token(3600))


def read_host_secrets(storage: OAuthStorage) -> dict[str, Any]:
    """The host.json secrets document devhost keeps in the identity-based account, read with a bearer token."""
    from azure.storage.blob import BlobServiceClient

    service = BlobServiceClient(service_uris(storage.azurite)["blob"], credential=FixedToken(),
                                connection_verify=str(storage.cert))
    with service:
        container = service.get_container_client(SECRETS_CONTAINER)
        names = [b.name for b in container.list_blobs() if b.name.endswith("/host.json")]
        assert len(names) == 1, names
        return json.loads(container.download_blob(names[0]).readall())


def identity_settings(storage: OAuthStorage, connection: str = "AzureWebJobsStorage") -> dict[str, str]:
    """The identity-based form of ``connection`` for the OAuth Azurite, with the user-assigned identity."""
    uris = service_uris(storage.azurite)
    return {f"{connection}__blobServiceUri": uris["blob"], f"{connection}__queueServiceUri": uris["queue"],
            f"{connection}__tableServiceUri": uris["table"], f"{connection}__credential": "managedidentity",
            f"{connection}__clientId": CLIENT_ID}


def test_reserve_ticket_with_managed_identity(oauth_storage: OAuthStorage, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """ReserveTicket runs on a task hub reached with managed-identity tokens only; Azurite checks each one.
    With --enableAuth the keys are kept in the same account, and the flow is driven with them."""
    app_dir = app_copy(tmp_path / "app", {"FUNCTIONS_WORKER_RUNTIME": "python"})
    hub_name = f"mi{uuid.uuid4().hex[:12]}"
    env = clean_environment(
        **identity_settings(oauth_storage),
        AzureFunctionsJobHost__extensions__durableTask__hubName=hub_name,
        SSL_CERT_FILE=str(oauth_storage.cert),  # trust the test's own certificate authority, nothing else
        **oauth_storage.identity.environment(),
    )
    assert not any("accountkey" in value.lower() for value in env.values())
    assert "AccountKey" not in (app_dir / "local.settings.json").read_text()

    port = free_port()
    log_path = tmp_path / "devhost.log"
    with open(log_path, "ab") as log_file:
        process = subprocess.Popen([*devhost_command(app_dir, port), "--enableAuth"], cwd=PROJECT_ROOT, env=env,
                                   stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    host = RunningHost(f"http://localhost:{port}", port, hub_name, "", process, log_path, env)
    try:
        wait_until_ready(host, keys_checked=True)
        assert request("POST", host.api("orchestrators/ReserveTicket"), {"userId": "x"}).status == 401
        secrets = read_host_secrets(oauth_storage)
        # Remote mode's key headers: the app's routes get a host function key; status links carry ?code=.
        monkeypatch.setenv("E2E_BASE_URL", host.base_url)
        monkeypatch.setenv("E2E_FUNCTION_KEY", next(k["value"] for k in secrets["functionKeys"]
                                                    if k["name"] == "default"))
        urls = start(host, "ReserveTicket", {"userId": "mi-user", "discountTimeout": 120})
        wait_for_custom(urls, "discount")
        assert request("POST", host.api(f"reservations/{urls['id']}/confirmation"), {"confirmed": True}).status == 202
        final = wait_until_finished(urls)
        assert final["runtimeStatus"] == "Completed" and final["output"] is True, final
    finally:
        stop_host(host)

    identity = oauth_storage.identity
    assert identity.refused == []
    assert identity.requests, "devhost never asked the managed-identity endpoint for a token"
    assert {r["client_id"] for r in identity.requests} == {CLIENT_ID}
    # The tokens are cached: a handful of fetches (one per credential user), not one per storage call.
    assert len(identity.requests) <= 5, identity.requests
    debug = (oauth_storage.azurite.location / "debug.log").read_text(errors="replace")
    for service in ("Blob", "Queue", "Table"):
        assert f"{service}TokenAuthenticator:authenticateBasic() Validation against token authentication successfully" \
            in debug, f"no {service} request was authenticated with a bearer token"
    shared_key = [line for line in debug.splitlines() if "SharedKeyAuthenticator" in line and " matched." in line]
    assert shared_key == [], "\n".join(shared_key[:5])
    assert "Authentication scheme Bearer is not" not in debug


def test_queue_trigger_with_blob_output_on_managed_identity(oauth_storage: OAuthStorage, tmp_path: Path) -> None:
    """The storage test app's queue-triggered function writes its blob receipt with tokens only: its trigger
    and output connection (AzureWebJobsStorage) are identity-based, and nothing holds an account key."""
    from azure.storage.blob import BlobServiceClient
    from azure.storage.queue import QueueServiceClient

    names = Names()
    hub_name = f"mi{uuid.uuid4().hex[:12]}"
    env = clean_environment(
        **identity_settings(oauth_storage), **names.settings, FUNCTIONS_WORKER_RUNTIME="python",
        AzureFunctionsJobHost__extensions__durableTask__hubName=hub_name,
        SSL_CERT_FILE=str(oauth_storage.cert), **oauth_storage.identity.environment(),
    )
    assert not any("accountkey" in value.lower() for value in env.values())
    uris = service_uris(oauth_storage.azurite)
    verify = str(oauth_storage.cert)
    queues = QueueServiceClient(uris["queue"], credential=FixedToken(), connection_verify=verify)
    blobs = BlobServiceClient(uris["blob"], credential=FixedToken(), connection_verify=verify)
    fetched_before = len(oauth_storage.identity.requests)

    port = free_port()
    log_path = tmp_path / "devhost.log"
    with open(log_path, "ab") as log_file:
        process = subprocess.Popen(devhost_command(STORAGE_APP, port), cwd=PROJECT_ROOT, env=env, stdout=log_file,
                                   stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    host = RunningHost(f"http://localhost:{port}", port, hub_name, "", process, log_path, env)
    order_id = uuid.uuid4().hex[:8]
    try:
        wait_until_ready(host)
        assert "cannot run on devhost" not in host.log_text(), host.log_text()[-3000:]
        queue = queues.get_queue_client(names.settings["ORDERS_QUEUE"])
        try:
            queue.create_queue()
        except ResourceExistsError:
            pass
        queue.send_message(base64.b64encode(json.dumps({"id": order_id, "item": "book"}).encode()).decode())
        receipt = blobs.get_blob_client(names.settings["CONTAINER"], f"{order_id}.json")

        def written() -> dict[str, Any] | None:
            try:
                return json.loads(receipt.download_blob().readall())
            except ResourceNotFoundError:
                return None

        body = eventually(written, "the queue-triggered function wrote no receipt blob")
        assert body["id"] == order_id and body["item"] == "book" and body["dequeueCount"] == 1, body
    finally:
        stop_host(host)
        queues.close()
        blobs.close()

    identity = oauth_storage.identity
    assert identity.refused == []
    fetched = identity.requests[fetched_before:]
    assert fetched and {r["client_id"] for r in fetched} == {CLIENT_ID}
    assert len(fetched) <= 5, fetched  # one cached credential for the task hub, triggers and bindings
    debug = (oauth_storage.azurite.location / "debug.log").read_text(errors="replace")
    shared_key = [line for line in debug.splitlines() if "SharedKeyAuthenticator" in line and " matched." in line]
    assert shared_key == [], "\n".join(shared_key[:5])


def refused_start(app_dir: Path, tmp_path: Path) -> str:
    """Start devhost on ``app_dir`` expecting it to refuse; its stderr. It must not have started Azurite."""
    azurite_location = tmp_path / "azurite-that-must-not-exist"
    env = clean_environment(DEVHOST_AZURITE_LOCATION=str(azurite_location))
    result = subprocess.run(devhost_command(app_dir, free_port()), cwd=PROJECT_ROOT, env=env, capture_output=True,
                            text=True, timeout=60, check=False)
    assert result.returncode == 1, result.stdout + result.stderr
    assert not azurite_location.exists() and not (app_dir / ".devhost").exists()
    return result.stderr


def test_no_storage_setting_stops_before_anything_is_written(tmp_path: Path) -> None:
    """A durable app with no AzureWebJobsStorage stops with the extension's message and starts no Azurite."""
    stderr = refused_start(app_copy(tmp_path / "app", {"FUNCTIONS_WORKER_RUNTIME": "python"}), tmp_path)
    assert "devhost: error: Unable to resolve the Azure Storage connection named 'Storage'." in stderr
    assert "AzureWebJobsStorage__accountName" in stderr


def test_unsupported_storage_provider_is_refused(tmp_path: Path) -> None:
    """storageProvider.type azureManaged (Durable Task Scheduler) stops devhost and says what to use."""
    app_dir = app_copy(tmp_path / "app", {"FUNCTIONS_WORKER_RUNTIME": "python",
                                          "AzureWebJobsStorage": "UseDevelopmentStorage=true"})
    host_json = json.loads((app_dir / "host.json").read_text())
    host_json["extensions"]["durableTask"]["storageProvider"] = {"type": "azureManaged",
                                                                  "connectionStringName": "DTS_CONNECTION_STRING"}
    (app_dir / "host.json").write_text(json.dumps(host_json))
    stderr = refused_start(app_dir, tmp_path)
    assert "'azureManaged' (the Durable Task Scheduler)" in stderr
    assert "only the Azure Storage provider" in stderr and "storageProvider__type=AzureStorage" in stderr
