"""Everything ``--enableAuth`` brings to one host: its keys, the checks on requests and the key routes."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence

from devhost.config import HostConfig
from devhost.http.admin_keys import KeysRoutes
from devhost.http.auth import Authorizer
from devhost.secrets import (
    DEFAULT_KEY_NAME,
    AuthLevel,
    BlobSecretsRepository,
    SecretManager,
    secrets_repository,
)
from devhost.worker.loader import LoadedFunction


class AccessControl:
    """Built at start from the config; ``secrets`` is None without ``--enableAuth`` (nothing is checked)."""

    def __init__(self, config: HostConfig, *, instance_id: str, disabled: Iterable[str]) -> None:
        repository = (secrets_repository(config.webjobs_storage, config.app_dir)
                      if config.http.enable_auth else None)
        self.needs_storage = isinstance(repository, BlobSecretsRepository)
        self.secrets = (SecretManager(repository, host_name=f"localhost:{config.port}", instance_id=instance_id)
                        if repository is not None else None)
        self.authorizer = Authorizer(self.secrets, disabled=frozenset(disabled))
        self.invoke_keys: dict[str, str] = {}  # function name -> the key its URL is printed with

    async def prepare(self, http_functions: Sequence[LoadedFunction], *, durable: bool) -> str:
        """Create or read the host keys (there to read from the first start on) and the key each HTTP
        function's URL is printed with (its own default key for function level, the master key for admin
        level); returns the durable binding's ``code=<durabletask_extension key>`` (or ``""``)."""
        secrets = self.secrets
        if secrets is None:
            return ""
        await secrets.host_secrets()

        async def invoke_key(fn: LoadedFunction) -> None:
            assert fn.http is not None
            level = AuthLevel.parse(fn.http.auth_level)
            if level == AuthLevel.FUNCTION:
                keys = await secrets.function_keys(fn.name)
                key = keys.get(DEFAULT_KEY_NAME) or next(iter(keys.values()), None)
                if key is not None:
                    self.invoke_keys[fn.name] = key
            elif level == AuthLevel.ADMIN:
                self.invoke_keys[fn.name] = await secrets.master_key()

        await asyncio.gather(*(invoke_key(fn) for fn in http_functions))
        return await self.authorizer.durable_query() if durable else ""

    def key_routes(self, function_names: Iterable[str]) -> KeysRoutes:
        known = {name.lower() for name in function_names}
        return KeysRoutes(self.secrets, self.authorizer, lambda name: name.lower() in known)

    async def close(self) -> None:
        if self.secrets is not None:
            await self.secrets.close()
