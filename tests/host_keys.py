"""The keys of a host started with --enableAuth, read where the Functions host keeps them.

Reading them from storage (not from devhost) also checks the place and the format: blobs
``azure-webjobs-secrets/{host id}/host.json`` and ``{host id}/{function}.json`` in the app's storage account.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from devhost.secrets import host_id
from tests.hosts import PROJECT_ROOT

# The origin the auth host allows with credentials (a front-end dev server on another port).
ALLOWED_ORIGIN = "http://localhost:5173"


@dataclass(frozen=True)
class HostKeys:
    master: str
    host_default: str  # the host-level function key "default": any function-level function takes it
    system: str  # durabletask_extension
    functions: dict[str, str]  # function name -> its own "default" key
    host_document: dict[str, Any]


def read_secrets(storage_connection: str, document: str) -> dict[str, Any]:
    from azure.storage.blob import BlobServiceClient  # only sessions that check keys pay for the import

    with BlobServiceClient.from_connection_string(storage_connection) as service:
        blob = service.get_blob_client("azure-webjobs-secrets", f"{host_id(PROJECT_ROOT)}/{document}")
        return json.loads(blob.download_blob().readall())


def read_host_keys(storage_connection: str, function_names: list[str]) -> HostKeys:
    host = read_secrets(storage_connection, "host.json")
    functions = {}
    for name in function_names:
        keys = read_secrets(storage_connection, f"{name.lower()}.json")["keys"]
        functions[name] = next(k["value"] for k in keys if k["name"] == "default")
    return HostKeys(
        master=host["masterKey"]["value"],
        host_default=next(k["value"] for k in host["functionKeys"] if k["name"] == "default"),
        system=next(k["value"] for k in host["systemKeys"] if k["name"] == "durabletask_extension"),
        functions=functions,
        host_document=host,
    )
