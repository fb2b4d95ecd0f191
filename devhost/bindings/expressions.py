"""Binding expressions in paths, queue/table names and keys: ``{name}``, ``%Setting%``, ``{rand-guid}``,
``{DateTime}`` and dotted JSON properties, resolved from the trigger's binding data as the host does."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from devhost import ids
from devhost.bindings.connection import BindingError

_EXPRESSION = re.compile(r"\{([^{}]+)\}")
_SETTING = re.compile(r"%([^%]+)%")


def resolve_settings(text: str, environ: Mapping[str, str]) -> str:
    """Replace ``%Name%`` with app settings (missing ones are an error, as in the host)."""
    def setting(match: re.Match[str]) -> str:
        value = environ.get(match.group(1))
        if value is None:
            raise BindingError(f"app setting '{match.group(1)}' (used as %{match.group(1)}%) is not set")
        return value
    return _SETTING.sub(setting, text)


def _lookup(data: Mapping[str, Any], path: str) -> Any:
    current: Any = data
    for part in path.split("."):
        if not isinstance(current, Mapping):
            raise KeyError(path)
        key = next((k for k in current if k.lower() == part.lower()), None)
        if key is None:
            raise KeyError(path)
        current = current[key]
    return current


def resolve(template: str, binding_data: Mapping[str, Any], environ: Mapping[str, str]) -> str:
    """Fill a binding template; an expression the trigger does not provide is a clear error."""
    text = resolve_settings(template, environ)

    def expression(match: re.Match[str]) -> str:
        name = match.group(1).strip()
        lowered = name.lower()
        if lowered == "rand-guid":
            return ids.uuid4_text()
        if lowered in ("datetime", "sys.utcnow"):
            return datetime.now(UTC).strftime("%Y-%m-%dT%H-%M-%SZ")
        if lowered == "sys.randguid":
            return ids.uuid4_text()
        try:
            value = _lookup(binding_data, name)
        except KeyError:
            raise BindingError(f"no value for the binding expression '{{{name}}}' in '{template}'") from None
        return value if isinstance(value, str) else json.dumps(value)
    return _EXPRESSION.sub(expression, text)


def json_properties(body: str | bytes) -> dict[str, Any]:
    """A JSON object trigger payload's properties become binding data (``{id}`` from ``{"id": ...}``)."""
    try:
        value = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return {}
    return value if isinstance(value, dict) else {}
