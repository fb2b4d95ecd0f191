"""The host's keys as ``SecretManager`` handles them: created on first use, cached, matched to a level.

Documents are created on first use: the host document with a ``master`` key, a ``default`` host function
key and no system keys; a function document with a ``default`` key. System keys such as
``durabletask_extension`` are added when first asked for. Keys are written unencrypted, as the host
writes them when no encryption key is configured.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from devhost.errors import ConfigError
from devhost.secrets.storage import SecretsRepository
from devhost.secrets.values import FUNCTION_KEY_SEED, MASTER_KEY_SEED, SYSTEM_KEY_SEED, generate_key

log = logging.getLogger("devhost.secrets")

HOST_DOCUMENT = "host.json"
MASTER_KEY_NAME = "master"  # the name stored in host.json
MASTER_KEY_ROUTE_NAME = "_master"  # the name the key-management routes use for it
DEFAULT_KEY_NAME = "default"
FUNCTION_KEYS = "functionkeys"  # host key scopes, as the /admin/host/{scope} routes spell them
SYSTEM_KEYS = "systemkeys"
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
            document, content, keys = await self._scope(scope)
            if master:
                content["masterKey"] = _key(MASTER_KEY_NAME, new_value)
                await self.repository.write(document, self._stamp(content), create_only=False)
                return new_value, value is None
            existing = next((k for k in keys if str(k.get("name", "")).lower() == name.lower()), None)
            if existing is not None:
                keys.remove(existing)
            keys.append(_key(name, new_value))
            await self.repository.write(document, self._stamp(content), create_only=False)
            return new_value, existing is None

    async def delete_key(self, scope: str, name: str) -> bool:
        async with self._lock:
            document, content, keys = await self._scope(scope)
            existing = next((k for k in keys if str(k.get("name", "")).lower() == name.lower()), None)
            if existing is None:
                return False
            keys.remove(existing)
            await self.repository.write(document, self._stamp(content), create_only=False)
            return True

    async def _scope(self, scope: str) -> tuple[str, dict[str, Any], list[dict[str, Any]]]:
        """The document, its content and its key list for a host scope or a function name."""
        if scope in (FUNCTION_KEYS, SYSTEM_KEYS):
            content = await self.host_secrets()
            return HOST_DOCUMENT, content, content["systemKeys" if scope == SYSTEM_KEYS else "functionKeys"]
        content = await self.function_secrets(scope)
        return f"{scope.lower()}.json", content, content["keys"]

    async def close(self) -> None:
        await self.repository.close()
