"""Converter lookup and marshalling, the way the Python worker's ``bindings`` package does it.

The converters themselves come from ``azure.functions.get_binding_registry()``; what lives here is the
worker's glue around them: the ``generic`` fallback (not part of azure-functions), implicit outputs and
the type-annotation checks.
"""

from __future__ import annotations

from typing import Any

import azure.functions as func
from azure.functions import meta

HTTP_TRIGGER = "httpTrigger"
HTTP_OUTPUT = "http"
GENERIC = "generic"


class GenericBinding:
    """The worker's ``bindings/generic.py``: str/bytes parameters of bindings without a converter."""

    @classmethod
    def has_trigger_support(cls) -> bool:
        return False

    @classmethod
    def check_input_type_annotation(cls, pytype: type) -> bool:
        return issubclass(pytype, (str, bytes))

    @classmethod
    def check_output_type_annotation(cls, pytype: type) -> bool:
        return issubclass(pytype, (str, bytes, bytearray))

    @classmethod
    def encode(cls, obj: Any, *, expected_type: type | None) -> meta.Datum:
        if isinstance(obj, str):
            return meta.Datum(type="string", value=obj)
        if isinstance(obj, bytes | bytearray):
            return meta.Datum(type="bytes", value=bytes(obj))
        if obj is None:
            return meta.Datum(type=None, value=obj)
        if isinstance(obj, dict):
            return meta.Datum(type="dict", value=obj)
        if isinstance(obj, list):
            return meta.Datum(type="list", value=obj)
        if isinstance(obj, int):
            return meta.Datum(type="int", value=obj)
        if isinstance(obj, float):
            return meta.Datum(type="double", value=obj)
        raise NotImplementedError

    @classmethod
    def decode(cls, data: meta.Datum | None, *, trigger_metadata: Any) -> Any:
        if data is None or data.type is None:
            return None
        if data.type in ("string", "bytes", "json"):
            return data.value
        raise ValueError(f'unexpected type of data received for the "generic" binding : {data.type!r}')

    @classmethod
    def has_implicit_output(cls, bind_name: str | None = None) -> bool:
        # The worker exempts durableClient by name; every other unknown binding type counts as implicit
        # output there too, which only matters for bindings devhost does not run anyway.
        return bind_name != "durableClient"


def get_binding(binding_type: str) -> Any:
    """The converter class for a binding type, or the generic binding when azure-functions has none."""
    converter = func.get_binding_registry().get(binding_type)
    return converter if converter is not None else GenericBinding


def is_trigger_binding(binding_type: str) -> bool:
    return bool(get_binding(binding_type).has_trigger_support())


def has_implicit_output(binding_type: str) -> bool:
    converter = get_binding(binding_type)
    if converter is GenericBinding:
        return GenericBinding.has_implicit_output(binding_type)
    return bool(getattr(converter, "has_implicit_output", lambda: False)())


def check_input_type_annotation(binding_type: str, pytype: Any) -> bool:
    return bool(get_binding(binding_type).check_input_type_annotation(pytype))


def check_output_type_annotation(binding_type: str, pytype: Any) -> bool:
    return bool(get_binding(binding_type).check_output_type_annotation(pytype))


def decode(binding_type: str, datum: meta.Datum, *, trigger_metadata: dict[str, Any] | None) -> Any:
    """``from_incoming_proto``: decode one input; trigger metadata only reaches trigger converters."""
    converter = get_binding(binding_type)
    metadata = (trigger_metadata or {}) if is_trigger_binding(binding_type) else {}
    try:
        return converter.decode(datum, trigger_metadata=metadata)
    except NotImplementedError:
        raise TypeError(
            f"unable to decode incoming TypedData: unsupported combination of TypedData field "
            f"{datum.type!r} and expected binding type {converter}"
        ) from None


def encode(binding_type: str, obj: Any, *, pytype: Any) -> meta.Datum:
    """``get_datum``: encode an output or return value with its binding's converter."""
    converter = get_binding(binding_type)
    try:
        return converter.encode(obj, expected_type=pytype)
    except NotImplementedError:
        raise TypeError(
            f'unable to encode outgoing TypedData: unsupported type "{converter}" '
            f'for Python type "{type(obj).__name__}"'
        ) from None
