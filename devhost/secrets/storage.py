"""Where keys are kept: the host id and the repositories the host's ``DefaultSecretManagerProvider`` picks.

``AzureWebJobsSecretStorageType=files`` selects files (``host.json`` and ``{function}.json`` under
``FUNCTIONS_SECRETS_PATH``, else Core Tools' ``<temp>/secrets/functions/secrets``); otherwise, as the host
does whenever ``AzureWebJobsStorage`` is set, blobs in the ``azure-webjobs-secrets`` container of that
account, named ``{host id}/host.json`` and ``{host id}/{function, lower case}.json``. Documents are the
host's JSON (``ScriptSecretSerializerV1``: Newtonsoft, indented).
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

from devhost.errors import ConfigError
from devhost.storage_settings import StorageConnection

SECRETS_CONTAINER = "azure-webjobs-secrets"
MAX_HOST_ID_LENGTH = 32


def stable_hash(text: str) -> int:
    """``Utility.GetStableHash``: 23, then ``h * 31 + c`` over UTF-16 code units, in 32-bit arithmetic."""
    value = 23
    units = text.encode("utf-16-le")
    for i in range(0, len(units), 2):
        value = (value * 31 + int.from_bytes(units[i:i + 2], "little")) & 0xFFFFFFFF
    return value - (1 << 32) if value >= 1 << 31 else value


def host_id(script_path: Path, environ: Mapping[str, str] | None = None) -> str:
    """The host id the Functions host uses locally: machine name and a hash of the app's path."""
    env = os.environ if environ is None else environ
    configured = env.get("AzureFunctionsWebHost__hostid") or env.get("AzureFunctionsWebHost:hostid")
    if configured:
        return configured
    machine = "".join(c for c in socket.gethostname().split(".")[0] if c.isalnum())
    text = f"{machine}-{abs(stable_hash(str(script_path)))}"
    return text[:MAX_HOST_ID_LENGTH].lower().rstrip("-")


class SecretsRepository(Protocol):
    """Reads and writes one secrets document: ``host.json`` or ``{function}.json``."""

    description: str

    async def read(self, document: str) -> dict[str, Any] | None: ...

    async def write(self, document: str, content: dict[str, Any], *, create_only: bool) -> bool:
        """Store ``content``; with ``create_only`` nothing is written if it exists (then False)."""
        ...

    async def close(self) -> None: ...


def _serialize(content: dict[str, Any]) -> bytes:
    return json.dumps(content, indent=2).encode()


def _parse(raw: bytes, where: str) -> dict[str, Any]:
    try:
        data = json.loads(raw.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"the secrets in {where} are not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"the secrets in {where} are not a JSON object")
    return data


class FileSecretsRepository:
    """``FileSystemSecretsRepository``: one JSON file per document in a folder."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.description = f"files in {folder}"

    async def read(self, document: str) -> dict[str, Any] | None:
        path = self.folder / document
        try:
            raw = await asyncio.to_thread(path.read_bytes)
        except FileNotFoundError:
            return None
        return _parse(raw, str(path))

    async def write(self, document: str, content: dict[str, Any], *, create_only: bool) -> bool:
        def write() -> bool:
            self.folder.mkdir(parents=True, exist_ok=True)
            path = self.folder / document
            if create_only:
                try:
                    with open(path, "xb") as file:
                        file.write(_serialize(content))
                except FileExistsError:
                    return False
                return True
            partial = path.with_suffix(".tmp")
            partial.write_bytes(_serialize(content))
            partial.replace(path)
            return True

        return await asyncio.to_thread(write)

    async def close(self) -> None:
        return None


class BlobSecretsRepository:
    """``BlobStorageSecretsRepository``: blobs ``{host id}/{document}`` in ``azure-webjobs-secrets``."""

    def __init__(self, connection: str | StorageConnection, host_id: str) -> None:
        from devhost.storage_clients import open_blob_service

        self.prefix = host_id.lower()
        # A connection string, or identity-based settings (the blob endpoint and a token credential).
        self._service = open_blob_service(connection)
        self._container = self._service.get_container_client(SECRETS_CONTAINER)
        self._container_ready = False
        self.description = f"blob container '{SECRETS_CONTAINER}', folder '{self.prefix}/'"

    async def read(self, document: str) -> dict[str, Any] | None:
        from azure.core.exceptions import ResourceNotFoundError

        name = f"{self.prefix}/{document}"
        try:
            stream = await self._container.download_blob(name)
            raw = await stream.readall()
        except ResourceNotFoundError:
            return None
        return _parse(raw, f"{SECRETS_CONTAINER}/{name}")

    async def write(self, document: str, content: dict[str, Any], *, create_only: bool) -> bool:
        from azure.core.exceptions import ResourceExistsError

        if not self._container_ready:
            try:
                await self._container.create_container()
            except ResourceExistsError:
                pass
            self._container_ready = True
        try:
            await self._container.upload_blob(f"{self.prefix}/{document}", _serialize(content),
                                              overwrite=not create_only)
        except ResourceExistsError:
            return False
        return True

    async def close(self) -> None:
        await self._service.close()


def secrets_repository(storage: StorageConnection | None, script_path: Path,
                       environ: Mapping[str, str] | None = None) -> SecretsRepository:
    """The repository the host's ``DefaultSecretManagerProvider`` picks for these settings."""
    env = os.environ if environ is None else environ
    kind = (env.get("AzureWebJobsSecretStorageType") or "").strip().lower()
    if kind == "files":
        folder = env.get("FUNCTIONS_SECRETS_PATH") or str(Path(tempfile.gettempdir(), "secrets", "functions",
                                                                    "secrets"))
        return FileSecretsRepository(Path(folder))
    if kind not in ("", "blob"):
        raise ConfigError(f"AzureWebJobsSecretStorageType={kind!r} is not supported by devhost "
                          "(use 'files' or 'blob')")
    if storage is None:
        raise ConfigError("--enableAuth keeps keys in the AzureWebJobsStorage account; set it, or set "
                          "AzureWebJobsSecretStorageType=files")
    if storage.is_identity_based and storage.blob_uri is None:
        raise ConfigError(f"--enableAuth keeps keys in blobs of the {storage.setting} account; set "
                          f"{storage.setting}__accountName or {storage.setting}__blobServiceUri, or set "
                          "AzureWebJobsSecretStorageType=files")
    return BlobSecretsRepository(storage, host_id(script_path, env))
