"""Function keys kept where and how the Functions host keeps them: ``values`` (generating them),
``storage`` (the host id and where the documents live), ``manager`` (creating, caching and matching them)."""

from devhost.secrets.manager import (
    ANONYMOUS,
    DEFAULT_KEY_NAME,
    FUNCTION_KEYS,
    MASTER_KEY_NAME,
    MASTER_KEY_ROUTE_NAME,
    SYSTEM_KEYS,
    AuthLevel,
    Grant,
    SecretManager,
)
from devhost.secrets.storage import (
    SECRETS_CONTAINER,
    BlobSecretsRepository,
    FileSecretsRepository,
    SecretsRepository,
    host_id,
    secrets_repository,
    stable_hash,
)
from devhost.secrets.values import FUNCTION_KEY_SEED, MASTER_KEY_SEED, SYSTEM_KEY_SEED, generate_key, marvin64

__all__ = [
    "ANONYMOUS", "DEFAULT_KEY_NAME", "FUNCTION_KEYS", "FUNCTION_KEY_SEED", "MASTER_KEY_NAME", "MASTER_KEY_ROUTE_NAME",
    "MASTER_KEY_SEED", "SECRETS_CONTAINER", "SYSTEM_KEYS", "SYSTEM_KEY_SEED", "AuthLevel", "BlobSecretsRepository",
    "FileSecretsRepository", "Grant", "SecretManager", "SecretsRepository", "generate_key", "host_id", "marvin64",
    "secrets_repository", "stable_hash",
]
