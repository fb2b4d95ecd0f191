"""Function keys kept where and how the Functions host keeps them (its ``SecretManager``).

Where: ``AzureWebJobsSecretStorageType=files`` selects files (``host.json`` and ``{function}.json`` under
``FUNCTIONS_SECRETS_PATH``, else Core Tools' ``<temp>/secrets/functions/secrets``); otherwise, as the host
does whenever ``AzureWebJobsStorage`` is set, blobs in the ``azure-webjobs-secrets`` container of that
account, named ``{host id}/host.json`` and ``{host id}/{function, lower case}.json``.

What: the host's secrets JSON (``ScriptSecretSerializerV1``, Newtonsoft indented), keys unencrypted as the
host writes them when no encryption key is configured. Documents are created on first use: the host
document with a ``master`` key, a ``default`` host function key and no system keys; a function document
with a ``default`` key. System keys such as ``durabletask_extension`` are added when first asked for.
"""

from __future__ import annotations

import asyncio
import base64
import hmac
import json
import logging
import os
import secrets
import socket
import tempfile
import time
from dataclasses import dataclass
from enum import IntEnum
from pathlib import Path
from typing import Any, Protocol

from devhost.errors import ConfigError

log = logging.getLogger("devhost.secrets")

SECRETS_CONTAINER = "azure-webjobs-secrets"
HOST_DOCUMENT = "host.json"
MASTER_KEY_NAME = "master"  # the name stored in host.json
MASTER_KEY_ROUTE_NAME = "_master"  # the name the key-management routes use for it
DEFAULT_KEY_NAME = "default"
FUNCTION_KEYS = "functionkeys"  # host key scopes, as the /admin/host/{scope} routes spell them
SYSTEM_KEYS = "systemkeys"
MAX_HOST_ID_LENGTH = 32
# On a key that matches nothing the host re-reads its secrets, at most once a minute, so keys added by
# another process are found without letting bad requests hammer storage.
RELOAD_INTERVAL = 60.0


class AuthLevel(IntEnum):
    """``Microsoft.Azure.WebJobs.Extensions.Http.AuthorizationLevel``."""

    ANONYMOUS = 0
    USER = 1
    FUNCTION = 2
    SYSTEM = 3
    ADMIN = 4

    @classmethod
    def parse(cls, text: str) -> AuthLevel:
        try:
            return cls[text.strip().upper()]
        except KeyError:
            raise ConfigError(f"unknown authLevel {text!r}") from None


# SecretGenerator's Marvin seeds, one per kind of key, and the signature every Functions key carries.
MASTER_KEY_SEED = 0x4D61737465723030
SYSTEM_KEY_SEED = 0x53797374656D3030
FUNCTION_KEY_SEED = 0x46756E6374693030
KEY_SIGNATURE = "AzFu"
_MASK32 = 0xFFFFFFFF


def _rotl(value: int, shift: int) -> int:
    return ((value << shift) | (value >> (32 - shift))) & _MASK32


def _marvin_block(p0: int, p1: int) -> tuple[int, int]:
    p1 ^= p0
    p0 = _rotl(p0, 20)
    p0 = (p0 + p1) & _MASK32
    p1 = _rotl(p1, 9)
    p1 ^= p0
    p0 = _rotl(p0, 27)
    p0 = (p0 + p1) & _MASK32
    p1 = _rotl(p1, 19)
    return p0, p1


def marvin64(data: bytes, seed: int) -> int:
    """The Marvin32 hash (SymCrypt's) of ``data`` as its 64-bit value ``p1 << 32 | p0``."""
    p0, p1 = seed & _MASK32, (seed >> 32) & _MASK32
    whole = len(data) - len(data) % 4
    for offset in range(0, whole, 4):
        p0, p1 = _marvin_block((p0 + int.from_bytes(data[offset:offset + 4], "little")) & _MASK32, p1)
    tail = data[whole:]
    final = int.from_bytes(tail, "little") | (0x80 << (8 * len(tail)))
    p0, p1 = _marvin_block((p0 + final) & _MASK32, p1)
    p0, p1 = _marvin_block(p0, p1)
    return (p1 << 32) | p0


def generate_key(seed: int = FUNCTION_KEY_SEED) -> str:
    """A new identifiable key, as ``SecretGenerator`` makes them: 40 random bytes whose bytes 32-35 spell
    the ``AzFu`` signature and whose last 4 are a Marvin checksum of the rest, in URL-safe base64 with
    padding (56 characters, ``…AzFu??????==``)."""
    key = bytearray(secrets.token_bytes(40))
    signature = base64.b64decode(KEY_SIGNATURE)
    # (40 - 7) bytes of random data fill whole base64 characters, so no bits need shifting.
    key[32:36] = bytes([key[32], *signature])
    hash64 = marvin64(bytes(key[:36]), seed)
    checksum = ((hash64 >> 32) ^ hash64) & _MASK32
    key[36:40] = checksum.to_bytes(4, "little")
    return base64.urlsafe_b64encode(bytes(key)).decode()


def stable_hash(text: str) -> int:
    """``Utility.GetStableHash``: 23, then ``h * 31 + c`` over UTF-16 code units, in 32-bit arithmetic."""
    value = 23
    units = text.encode("utf-16-le")
    for i in range(0, len(units), 2):
        value = (value * 31 + int.from_bytes(units[i:i + 2], "little")) & 0xFFFFFFFF
    return value - (1 << 32) if value >= 1 << 31 else value


def host_id(script_path: Path, environ: os._Environ[str] | dict[str, str] | None = None) -> str:
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

    def __init__(self, connection_string: str, host_id: str) -> None:
        from azure.storage.blob.aio import BlobServiceClient

        self.prefix = host_id.lower()
        self._service = BlobServiceClient.from_connection_string(connection_string)
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


def secrets_repository(storage_connection: str, script_path: Path,
                       environ: os._Environ[str] | dict[str, str] | None = None) -> SecretsRepository:
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
    if not storage_connection:
        raise ConfigError("--enableAuth keeps keys in the AzureWebJobsStorage account; set it, or set "
                          "AzureWebJobsSecretStorageType=files")
    return BlobSecretsRepository(storage_connection, host_id(script_path, env))


@dataclass(frozen=True)
class Grant:
    """What a presented key grants: a level and the key's name (None when nothing matched)."""

    level: AuthLevel
    key_name: str | None = None

    def allows(self, required: AuthLevel, key_name: str | None = None) -> bool:
        """``AuthUtility.PrincipalHasAuthLevelClaim``: admin passes; otherwise the exact level (and name)."""
        if required == AuthLevel.ANONYMOUS or self.level == AuthLevel.ADMIN:
            return True
        return self.level == required and (key_name is None or (self.key_name or "").lower() == key_name.lower())


ANONYMOUS = Grant(AuthLevel.ANONYMOUS)


def _key(name: str, value: str) -> dict[str, Any]:
    return {"name": name, "value": value, "encrypted": False}


def _same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


class SecretManager:
    """The host's keys: cached, created on first use, checked in constant time."""

    def __init__(self, repository: SecretsRepository, *, host_name: str, instance_id: str) -> None:
        self.repository = repository
        self.host_name = host_name
        self.instance_id = instance_id
        self._host: dict[str, Any] | None = None
        self._functions: dict[str, dict[str, Any]] = {}
        self._lock = asyncio.Lock()
        self._last_reload = time.monotonic()

    # -- documents ----------------------------------------------------------------------------------

    def _stamp(self, content: dict[str, Any]) -> dict[str, Any]:
        content.update(hostName=self.host_name, instanceId=self.instance_id, source="runtime",
                       decryptionKeyId="")
        return content

    async def _load(self, document: str, fresh: dict[str, Any]) -> dict[str, Any]:
        content = await self.repository.read(document)
        if content is None:
            self._stamp(fresh)
            if await self.repository.write(document, fresh, create_only=True):
                log.info("Created the keys in %s (%s)", document, self.repository.description)
                return fresh
            content = await self.repository.read(document)  # another host created it meanwhile
            if content is None:
                raise ConfigError(f"the secrets document {document} vanished while it was being created")
        return content

    async def host_secrets(self) -> dict[str, Any]:
        if self._host is None:
            fresh = {"masterKey": _key(MASTER_KEY_NAME, generate_key(MASTER_KEY_SEED)),
                     "functionKeys": [_key(DEFAULT_KEY_NAME, generate_key())], "systemKeys": []}
            content = await self._load(HOST_DOCUMENT, fresh)
            if not isinstance(content.get("masterKey"), dict) or not isinstance(content.get("functionKeys"), list):
                raise ConfigError(f"{HOST_DOCUMENT} in {self.repository.description} is not host secrets")
            content.setdefault("systemKeys", [])
            self._host = content
        return self._host

    async def function_secrets(self, function_name: str) -> dict[str, Any]:
        document = f"{function_name.lower()}.json"
        cached = self._functions.get(document)
        if cached is None:
            cached = await self._load(document, {"keys": [_key(DEFAULT_KEY_NAME, generate_key())]})
            if not isinstance(cached.get("keys"), list):
                raise ConfigError(f"{document} in {self.repository.description} is not function secrets")
            self._functions[document] = cached
        return cached

    # -- reading keys --------------------------------------------------------------------------------

    async def master_key(self) -> str:
        return str((await self.host_secrets())["masterKey"]["value"])

    async def host_keys(self, scope: str) -> dict[str, str]:
        host = await self.host_secrets()
        field = "systemKeys" if scope == SYSTEM_KEYS else "functionKeys"
        return {str(k["name"]): str(k["value"]) for k in host[field]}

    async def function_keys(self, function_name: str) -> dict[str, str]:
        return {str(k["name"]): str(k["value"]) for k in (await self.function_secrets(function_name))["keys"]}

    async def system_key(self, name: str) -> str:
        """The named system key, created on demand (``DefaultScriptWebHookProvider.GetOrCreateExtensionKey``)."""
        existing = (await self.host_keys(SYSTEM_KEYS)).get(name)
        if existing is not None:
            return existing
        value, _ = await self.set_key(SYSTEM_KEYS, name, None)
        return value

    async def grant(self, key: str, function_name: str | None) -> Grant:
        """``SecretManager.GetAuthorizationLevelAsync``: master, system keys, host keys, then the function's."""
        found = await self._match(key, function_name)
        if found.level == AuthLevel.ANONYMOUS and time.monotonic() - self._last_reload > RELOAD_INTERVAL:
            self._last_reload = time.monotonic()
            self._host = None
            self._functions.clear()
            found = await self._match(key, function_name)
        return found

    async def _match(self, key: str, function_name: str | None) -> Grant:
        if _same(key, await self.master_key()):
            return Grant(AuthLevel.ADMIN, MASTER_KEY_NAME)
        for level, keys in ((AuthLevel.SYSTEM, await self.host_keys(SYSTEM_KEYS)),
                            (AuthLevel.FUNCTION, await self.host_keys(FUNCTION_KEYS))):
            for name, value in keys.items():
                if _same(key, value):
                    return Grant(level, name)
        if function_name is not None:
            for name, value in (await self.function_keys(function_name)).items():
                if _same(key, value):
                    return Grant(AuthLevel.FUNCTION, name)
        return ANONYMOUS

    # -- changing keys (the /admin key-management routes) -----------------------------------------------

    async def set_key(self, scope: str, name: str, value: str | None) -> tuple[str, bool]:
        """Add or replace a key (generated when ``value`` is None); returns the value and whether it is new.

        ``scope`` is ``functionkeys``, ``systemkeys`` or a function name.
        """
        master = scope in (FUNCTION_KEYS, SYSTEM_KEYS) and name.lower() == MASTER_KEY_ROUTE_NAME
        seed = MASTER_KEY_SEED if master else SYSTEM_KEY_SEED if scope == SYSTEM_KEYS else FUNCTION_KEY_SEED
        new_value = value if value is not None else generate_key(seed)
        async with self._lock:
            if scope in (FUNCTION_KEYS, SYSTEM_KEYS):
                content = await self.host_secrets()
                document = HOST_DOCUMENT
                if master:
                    content["masterKey"] = _key(MASTER_KEY_NAME, new_value)
                    await self.repository.write(document, self._stamp(content), create_only=False)
                    return new_value, value is None
                keys = content["systemKeys" if scope == SYSTEM_KEYS else "functionKeys"]
            else:
                content = await self.function_secrets(scope)
                document = f"{scope.lower()}.json"
                keys = content["keys"]
            existing = next((k for k in keys if str(k.get("name", "")).lower() == name.lower()), None)
            if existing is not None:
                keys.remove(existing)
            keys.append(_key(name, new_value))
            await self.repository.write(document, self._stamp(content), create_only=False)
            return new_value, existing is None

    async def delete_key(self, scope: str, name: str) -> bool:
        async with self._lock:
            if scope in (FUNCTION_KEYS, SYSTEM_KEYS):
                content = await self.host_secrets()
                document = HOST_DOCUMENT
                keys = content["systemKeys" if scope == SYSTEM_KEYS else "functionKeys"]
            else:
                content = await self.function_secrets(scope)
                document = f"{scope.lower()}.json"
                keys = content["keys"]
            existing = next((k for k in keys if str(k.get("name", "")).lower() == name.lower()), None)
            if existing is None:
                return False
            keys.remove(existing)
            await self.repository.write(document, self._stamp(content), create_only=False)
            return True

    async def close(self) -> None:
        await self.repository.close()
