"""A binding's ``connection`` setting, resolved the way the Functions host resolves it.

Every storage binding and trigger goes through ``resolve_storage_connection``: it is the one place
where identity-based settings (``<name>__serviceUri`` and friends) are recognised, so a resolver for
them (shared with the durable storage settings) plugs in here.
"""

from __future__ import annotations

from collections.abc import Mapping

from devhost.errors import DevhostError

DEFAULT_CONNECTION = "Storage"  # an empty `connection` means AzureWebJobsStorage
_IDENTITY_SUFFIXES = ("serviceUri", "blobServiceUri", "queueServiceUri", "tableServiceUri", "accountName")


class BindingError(DevhostError):
    """A binding cannot be used as configured (missing setting, bad path, unsupported form)."""


def _setting(environ: Mapping[str, str], name: str) -> str | None:
    # App settings are environment variables; ConnectionStrings:<name> may be spelled with `__`.
    for key in (f"ConnectionStrings:{name}", f"ConnectionStrings__{name}", name):
        value = environ.get(key)
        if value:
            return value
    lowered = {k.lower(): v for k, v in environ.items()}
    for key in (f"connectionstrings:{name}", f"connectionstrings__{name}", name):
        value = lowered.get(key.lower())
        if value:
            return value
    return None


def resolve_storage_connection(name: str | None, environ: Mapping[str, str]) -> str:
    """The connection string for a binding's ``connection``: ``AzureWebJobs<name>`` first, then ``<name>``."""
    name = (name or "").strip() or DEFAULT_CONNECTION
    for candidate in (f"AzureWebJobs{name}", name):
        value = _setting(environ, candidate)
        if value:
            return value
    for candidate in (f"AzureWebJobs{name}", name):
        if any(_setting(environ, f"{candidate}__{suffix}") for suffix in _IDENTITY_SUFFIXES):
            raise BindingError(
                f"connection '{name}' is identity-based ({candidate}__serviceUri ...); devhost's storage "
                "bindings only take connection strings so far"
            )
    raise BindingError(
        f"connection '{name}' is not set: define the app setting 'AzureWebJobs{name}' or '{name}' "
        "(in local.settings.json Values) with a storage connection string"
    )
