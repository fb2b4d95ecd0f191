"""Storage connections read from app settings the way the Functions host and its extensions read them.

A connection named ``X`` is the configuration section ``AzureWebJobsX`` if it exists, else ``X``
(``ConnectionStrings:<name>`` first in each case). A section with a value is a connection string; a
section with children is an identity-based connection: ``accountName`` (which wins), or
``blobServiceUri``/``serviceUri``, ``queueServiceUri`` and ``tableServiceUri``, authenticated by
``credential=managedidentity`` (+ ``clientId``), ``tenantId``+``clientId``+``clientSecret``, or else
``DefaultAzureCredential``. A binding (which uses one service) also takes ``serviceUri`` for that service
(``binding_endpoint``), as the storage extensions' client factory binds it to the client's constructor.
Environment variables spell the section separator ``__``; names are case-insensitive, as in .NET
configuration.

The Durable extension's connection is ``extensions.durableTask.storageProvider.connectionName``
(default ``Storage``, so ``AzureWebJobsStorage``). Bindings and triggers resolve their ``connection``
through ``resolve_connection`` too (``devhost.bindings.connection``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

from devhost.errors import ConfigError

WEBJOBS_PREFIX = "AzureWebJobs"
DEFAULT_DURABLE_CONNECTION = "Storage"  # the extension's default; resolves to AzureWebJobsStorage
DEVELOPMENT_STORAGE = "UseDevelopmentStorage=true"
STORAGE_SCOPE = "https://storage.azure.com/.default"
SERVICES = ("blob", "queue", "table")

# Core Tools' own check for a missing AzureWebJobsStorage (StartHostAction.CheckNonOptionalSettings):
# it applies when a function has a trigger outside this list.
TRIGGERS_WITHOUT_STORAGE = (
    "httptrigger", "kafkatrigger", "rabbitmqtrigger", "orchestrationTrigger", "activityTrigger", "entityTrigger",
)
CORE_TOOLS_MISSING_STORAGE = (
    "Missing value for AzureWebJobsStorage in local.settings.json. This is required for all triggers other than "
    f"{', '.join(TRIGGERS_WITHOUT_STORAGE)}. You can run 'func azure functionapp fetch-app-settings "
    "<functionAppName>', specify a connection string in local.settings.json, or use managed identity to authenticate."
)

# storageProvider.type values of the Durable extension, and what devhost says about each it cannot run.
AZURE_STORAGE_PROVIDER = "azurestorage"
_OTHER_PROVIDERS = {
    "azuremanaged": "the Durable Task Scheduler",
    "mssql": "the Microsoft SQL Server provider",
    "netherite": "the Netherite provider",
}


class CredentialKind(Enum):
    """Which azure-identity credential an identity-based connection asks for."""

    DEFAULT = "default"  # DefaultAzureCredential (no ``credential`` setting)
    MANAGED_IDENTITY = "managedidentity"  # ManagedIdentityCredential
    CLIENT_SECRET = "clientsecret"  # ClientSecretCredential (tenantId + clientId + clientSecret)


@dataclass(frozen=True)
class CredentialSettings:
    """The credential part of an identity-based connection."""

    kind: CredentialKind = CredentialKind.DEFAULT
    client_id: str | None = None
    tenant_id: str | None = None
    client_secret: str | None = None
    resource_id: str | None = None  # managedIdentityResourceId


@dataclass(frozen=True)
class StorageConnection:
    """One resolved storage connection: a connection string, or service URIs plus a credential."""

    setting: str  # the section it came from, e.g. "AzureWebJobsStorage"
    connection_string: str | None = None
    blob_uri: str | None = None
    queue_uri: str | None = None
    table_uri: str | None = None
    account_name: str | None = None
    credential: CredentialSettings | None = None
    service_uri_alias: str | None = None  # ``serviceUri``: the endpoint of whichever one service a binding uses

    @property
    def is_identity_based(self) -> bool:
        return self.connection_string is None

    @property
    def uses_development_storage(self) -> bool:
        text = (self.connection_string or "").replace(" ", "").lower()
        return text.rstrip(";") == DEVELOPMENT_STORAGE.lower()

    def service_uri(self, service: str) -> str | None:
        """The endpoint of ``blob``, ``queue`` or ``table`` (no trailing slash), when known."""
        return {"blob": self.blob_uri, "queue": self.queue_uri, "table": self.table_uri}[service]

    def binding_endpoint(self, service: str) -> str | None:
        """The endpoint a binding's client of ``service`` uses: ``accountName``, ``<service>ServiceUri``, else
        ``serviceUri`` (the storage extensions' StorageClientProvider order)."""
        return self.service_uri(service) or self.service_uri_alias

    def describe(self) -> str:
        """A log line naming where the connection points, never a secret."""
        if not self.is_identity_based:
            return f"{self.setting} (connection string)"
        credential = self.credential or CredentialSettings()
        return f"{self.setting} (identity-based, {credential.kind.value} credential, blob {self.blob_uri})"


# ------------------------------------------------------------------------------------- configuration


def _split(key: str) -> list[str]:
    return [part for part in re.split(r"__|:", key) if part]


class _Sections:
    """Environment variables seen as .NET configuration sections (case-insensitive, ``__`` or ``:``)."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self._items = [([p.lower() for p in _split(k)], v) for k, v in environ.items()]

    def value(self, *path: str) -> str | None:
        wanted = [p.lower() for p in path]
        for parts, value in self._items:
            if parts == wanted:
                return value
        return None

    def children(self, *path: str) -> dict[str, str]:
        """Direct children of a section, by lower-case name (deeper keys are not needed here)."""
        wanted = [p.lower() for p in path]
        return {
            parts[len(wanted)]: value
            for parts, value in self._items
            if len(parts) == len(wanted) + 1 and parts[: len(wanted)] == wanted
        }

    def exists(self, *path: str) -> bool:
        return bool((self.value(*path) or "").strip()) or bool(self.children(*path))


def _section_path(sections: _Sections, name: str) -> tuple[str, ...] | None:
    """Where connection ``name`` lives: ``AzureWebJobs{name}`` first, then ``name``; ConnectionStrings first."""
    for candidate in (WEBJOBS_PREFIX + name, name):
        for path in (("ConnectionStrings", candidate), (candidate,)):
            if sections.exists(*path):
                return path
    return None


def resolve_connection(name: str, environ: Mapping[str, str]) -> StorageConnection | None:
    """The storage connection named ``name`` (a binding's ``connection``), or None if no setting holds it."""
    sections = _Sections(environ)
    path = _section_path(sections, name)
    if path is None:
        return None
    setting = path[-1] if path[0] != "ConnectionStrings" else f"ConnectionStrings:{path[-1]}"
    value = sections.value(*path)
    if value and value.strip():
        return StorageConnection(setting=setting, connection_string=value.strip())
    return _identity_connection(setting, sections.children(*path))


def _identity_connection(setting: str, children: Mapping[str, str]) -> StorageConnection:
    def get(key: str) -> str | None:
        value = children.get(key.lower())
        return value.strip() if value and value.strip() else None

    account = get("accountName")
    uris: dict[str, str | None]
    if account:
        uris = {s: f"https://{account}.{s}.core.windows.net" for s in SERVICES}
    else:
        uris = {
            "blob": get("blobServiceUri") or get("serviceUri"),
            "queue": get("queueServiceUri"),
            "table": get("tableServiceUri"),
        }
    alias = None if account else get("serviceUri")
    for key, uri in [*((f"{s}ServiceUri", u) for s, u in uris.items()), ("serviceUri", alias)]:
        if uri and not re.match(r"^https?://[^/]+", uri):
            raise ConfigError(f"{setting}__{key} is not an absolute URL: {uri!r}")
    credential = _credential_settings(setting, get)
    return StorageConnection(
        setting=setting,
        blob_uri=uris["blob"] and uris["blob"].rstrip("/"),
        queue_uri=uris["queue"] and uris["queue"].rstrip("/"),
        table_uri=uris["table"] and uris["table"].rstrip("/"),
        account_name=account,
        credential=credential,
        service_uri_alias=alias and alias.rstrip("/"),
    )


def _credential_settings(setting: str, get: Any) -> CredentialSettings:
    kind_text = (get("credential") or "").lower()
    client_id, tenant_id, secret = get("clientId"), get("tenantId"), get("clientSecret")
    if kind_text == "managedidentity":
        kind = CredentialKind.MANAGED_IDENTITY
    elif kind_text:
        raise ConfigError(
            f"{setting}__credential is {get('credential')!r}; devhost understands 'managedidentity', or no "
            "credential setting (DefaultAzureCredential, or a client secret with tenantId and clientId)"
        )
    elif tenant_id and client_id and secret:
        kind = CredentialKind.CLIENT_SECRET
    else:
        kind = CredentialKind.DEFAULT
    return CredentialSettings(kind, client_id, tenant_id, secret, get("managedIdentityResourceId"))


# --------------------------------------------------------------------------------- durable storage


def _get_ci(obj: Any, key: str) -> Any:
    if not isinstance(obj, Mapping):
        return None
    return next((v for k, v in obj.items() if k.lower() == key.lower()), None)


def durable_provider(host_json: Mapping[str, Any]) -> Mapping[str, Any]:
    provider = _get_ci(_get_ci(_get_ci(host_json, "extensions"), "durableTask"), "storageProvider")
    return provider if isinstance(provider, Mapping) else {}


def check_provider_type(host_json: Mapping[str, Any]) -> None:
    """Refuse a storage provider devhost cannot run, saying what to use instead."""
    provider_type = _get_ci(durable_provider(host_json), "type")
    if provider_type is None or str(provider_type).strip().lower() in ("", AZURE_STORAGE_PROVIDER):
        return
    what = _OTHER_PROVIDERS.get(str(provider_type).strip().lower(), f"the '{provider_type}' provider")
    raise ConfigError(
        f"host.json sets extensions.durableTask.storageProvider.type to '{provider_type}' ({what}); devhost "
        "runs only the Azure Storage provider. To run this app on devhost with Azurite, override the provider "
        "for local runs (environment or local.settings.json): "
        "AzureFunctionsJobHost__extensions__durableTask__storageProvider__type=AzureStorage and "
        "AzureFunctionsJobHost__extensions__durableTask__storageProvider__connectionStringName=Storage, with "
        f"AzureWebJobsStorage set; to run against {what} itself, use Core Tools (`func start`)."
    )


def durable_connection_name(host_json: Mapping[str, Any]) -> str:
    provider = durable_provider(host_json)
    name = _get_ci(provider, "connectionName") or _get_ci(provider, "connectionStringName")
    return str(name).strip() if name and str(name).strip() else DEFAULT_DURABLE_CONNECTION


def require_durable_storage(
    host_json: Mapping[str, Any], connection: StorageConnection | None, trigger_types: list[str]
) -> StorageConnection:
    """The task hub's storage connection, or a ConfigError that says what is missing (nothing is written).

    ``connection`` is what ``resolve_connection(durable_connection_name(host_json), ...)`` found.
    """
    check_provider_type(host_json)
    name = durable_connection_name(host_json)
    if connection is None:
        without = {t.lower() for t in TRIGGERS_WITHOUT_STORAGE}
        if name == DEFAULT_DURABLE_CONNECTION and any(
            t.lower().endswith("trigger") and t.lower() not in without for t in trigger_types
        ):
            raise ConfigError(CORE_TOOLS_MISSING_STORAGE)
        # Core Tools lets durable and HTTP triggers start without the setting; the Durable extension then
        # stops the host with this message, which devhost gives before anything starts.
        raise ConfigError(
            f"Unable to resolve the Azure Storage connection named '{name}'. Set {WEBJOBS_PREFIX}{name} (a "
            f"connection string, e.g. {DEVELOPMENT_STORAGE} for Azurite) or the identity-based "
            f"{WEBJOBS_PREFIX}{name}__accountName (or __blobServiceUri, __queueServiceUri and __tableServiceUri) "
            "in local.settings.json or the environment."
        )
    if connection.is_identity_based:
        missing = [s for s in SERVICES if connection.service_uri(s) is None]
        if missing:
            raise ConfigError(
                f"{connection.setting}: an identity-based connection for Durable Functions needs the blob, queue "
                f"and table endpoints; set {connection.setting}__accountName, or "
                + ", ".join(f"{connection.setting}__{s}ServiceUri" for s in missing)
            )
    return connection


# ------------------------------------------------------------------------------------------ credentials


def create_credential(settings: CredentialSettings) -> Any:
    """The synchronous azure-identity credential the settings ask for (imported only when needed)."""
    from azure import identity

    if settings.kind is CredentialKind.MANAGED_IDENTITY:
        if settings.resource_id:
            return identity.ManagedIdentityCredential(identity_config={"resource_id": settings.resource_id})
        return identity.ManagedIdentityCredential(client_id=settings.client_id)
    if settings.kind is CredentialKind.CLIENT_SECRET:
        assert settings.tenant_id and settings.client_id and settings.client_secret
        return identity.ClientSecretCredential(settings.tenant_id, settings.client_id, settings.client_secret)
    return identity.DefaultAzureCredential(
        managed_identity_client_id=settings.client_id, **({"tenant_id": settings.tenant_id} if settings.tenant_id
                                                          else {})
    )
