"""Names and keys of the Durable Task Azure Storage provider (spec Part B.1-B.4.1).

Everything here is pure string arithmetic so the memory hub and the Azure hub agree byte for byte:
``KeySanitation`` escaping of PartitionKeys, FNV-1a 32 partitioning of instances onto control queues,
``X16`` history RowKeys and the table/queue/container names derived from the task hub name.
"""

from __future__ import annotations

import re

SENTINEL_ROW_KEY = "sentinel"
MAX_PARTITION_COUNT = 16  # the provider's limit on control queues
# Table names allow only these; the extension enforces the same rule on hub names.
_HUB_NAME = re.compile(r"[A-Za-z][A-Za-z0-9]{2,49}")
TASKHUB_INFO_BLOB = "taskhub.json"

_ESCAPE = "^"
_OFFSET = 0xC0  # 'À': control characters are shifted up by this much after the escape char
_ESCAPES = {"^": "^^", "/": "^0", "\\": "^1", "#": "^2", "?": "^3"}
_UNESCAPES = {"^": "^", "0": "/", "1": "\\", "2": "#", "3": "?"}

_FNV_OFFSET_BASIS = 2166136261
_FNV_PRIME = 16777619


def _needs_escape(key: str) -> bool:
    for ch in key:
        code = ord(ch)
        if ch in _ESCAPES or code <= 0x1F or 0x7F <= code <= 0x9F:
            return True
    return False


def escape_partition_key(key: str) -> str:
    """``KeySanitation.EscapePartitionKey``: make an instance id usable as a table PartitionKey.

    ``^ / \\ # ?`` become ``^^ ^0 ^1 ^2 ^3``; control characters U+0000-001F and U+007F-009F become
    ``^`` followed by the character shifted up by U+00C0.
    """
    if not _needs_escape(key):  # the common case: plain ids pass through without building a new string
        return key
    out: list[str] = []
    for ch in key:
        sub = _ESCAPES.get(ch)
        if sub is not None:
            out.append(sub)
            continue
        code = ord(ch)
        if code <= 0x1F or 0x7F <= code <= 0x9F:
            out.append(_ESCAPE + chr(_OFFSET + code))
        else:
            out.append(ch)
    return "".join(out)


def unescape_partition_key(key: str) -> str:
    """``KeySanitation.UnescapePartitionKey``: the instance id behind a PartitionKey."""
    if _ESCAPE not in key:
        return key
    out: list[str] = []
    i = 0
    while i < len(key):
        ch = key[i]
        if ch != _ESCAPE or i + 1 >= len(key):
            out.append(ch)
            i += 1
            continue
        nxt = key[i + 1]
        plain = _UNESCAPES.get(nxt)
        if plain is not None:
            out.append(plain)
        else:
            code = ord(nxt)
            # Same rule as .NET: only characters at or above the offset were shifted.
            out.append(chr(code - _OFFSET) if code >= _OFFSET else nxt)
        i += 2
    return "".join(out)


def fnv1a_32(data: bytes) -> int:
    """FNV-1a 32-bit hash (``Fnv1aHashHelper``), offset basis 2166136261, prime 16777619."""
    value = _FNV_OFFSET_BASIS
    for byte in data:
        value = ((value ^ byte) * _FNV_PRIME) & 0xFFFFFFFF
    return value


def partition_index(instance_id: str, partition_count: int) -> int:
    """Index of the control queue that owns ``instance_id``: FNV-1a over its UTF-8 bytes, mod count."""
    return fnv1a_32(instance_id.encode("utf-8")) % partition_count


def row_key(index: int) -> str:
    """History RowKey of the event at ``index``: 16 upper-case hex digits (.NET ``ToString("X16")``)."""
    return f"{index:016X}"


def history_table_name(hub: str) -> str:
    return f"{hub}History"


def instances_table_name(hub: str) -> str:
    return f"{hub}Instances"


def control_queue_name(hub: str, index: int) -> str:
    return f"{hub.lower()}-control-{index:02d}"


def work_item_queue_name(hub: str) -> str:
    return f"{hub.lower()}-workitems"


def large_messages_container_name(hub: str) -> str:
    return f"{hub.lower()}-largemessages"


def leases_container_name(hub: str) -> str:
    return f"{hub.lower()}-leases"


def is_valid_hub_name(name: str) -> bool:
    """3-50 letters or digits, starting with a letter."""
    return _HUB_NAME.fullmatch(name) is not None


def is_valid_partition_count(count: int) -> bool:
    return 1 <= count <= MAX_PARTITION_COUNT


def check_hub(name: str, partition_count: int) -> None:
    """Raise ``ValueError`` for a hub name or partition count the provider would refuse."""
    if not is_valid_partition_count(partition_count):
        raise ValueError(f"partition_count must be between 1 and {MAX_PARTITION_COUNT}")
    if not is_valid_hub_name(name):
        raise ValueError(f"task hub name {name!r} must be 3-50 letters or digits, starting with a letter")
