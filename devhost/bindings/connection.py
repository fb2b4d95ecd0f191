"""A binding's ``connection`` setting, resolved the way the Functions host's storage extensions resolve it.

The lookup itself is ``storage_settings.resolve_connection`` (shared with the durable storage settings):
``AzureWebJobs<name>`` before ``<name>``, ``ConnectionStrings:`` first in each, a value is a connection
string and children are an identity-based connection. What is binding-specific lives here: an empty name
means ``Storage``, and each service the binding uses needs an endpoint (``accountName``,
``<service>ServiceUri`` or ``serviceUri``), as the extensions' StorageClientProvider needs one to build
its client.
"""

from __future__ import annotations

from collections.abc import Mapping

from devhost.errors import ConfigError, DevhostError
from devhost.storage_settings import WEBJOBS_PREFIX, StorageConnection, resolve_connection

DEFAULT_CONNECTION = "Storage"  # an empty `connection` means AzureWebJobsStorage


class BindingError(DevhostError):
    """A binding cannot be used as configured (missing setting, bad path, unsupported form)."""


def resolve_storage_connection(name: str | None, environ: Mapping[str, str],
                               services: tuple[str, ...] = ()) -> StorageConnection:
    """The storage connection a binding's ``connection`` names, with an endpoint for each of ``services``."""
    name = (name or "").strip() or DEFAULT_CONNECTION
    try:
        connection = resolve_connection(name, environ)
    except ConfigError as exc:
        raise BindingError(f"connection '{name}': {exc}") from None
    if connection is None:
        raise BindingError(
            f"connection '{name}' is not set: define the app setting '{WEBJOBS_PREFIX}{name}' or '{name}' (in "
            f"local.settings.json Values) with a storage connection string, or the identity-based "
            f"'{name}__serviceUri' (or __accountName, __blobServiceUri, __queueServiceUri, __tableServiceUri)"
        )
    if connection.is_identity_based:
        missing = [s for s in services if connection.binding_endpoint(s) is None]
        if missing:
            raise BindingError(
                f"connection '{name}' is identity-based ({connection.setting}) but has no {' or '.join(missing)} "
                f"endpoint: set {connection.setting}__accountName, or "
                + " and ".join(f"{connection.setting}__{s}ServiceUri" for s in missing)
                + (f" (or {connection.setting}__serviceUri)" if len(missing) == 1 else "")
            )
    return connection
