"""Keys and names of the provider layout (spec B.1-B.4.1)."""

from __future__ import annotations

import pytest

from devhost.durable.taskhub import keys


@pytest.mark.parametrize(
    ("instance_id", "escaped"),
    [
        ("inst-001", "inst-001"),
        ("a^b", "a^^b"),
        ("a/b", "a^0b"),
        ("a\\b", "a^1b"),
        ("a#b", "a^2b"),
        ("a?b", "a^3b"),
        ("\x00", "^\u00c0"),
        ("x\x1fy", "x^\u00dfy"),
        ("\x7f", "^\u013f"),
        ("\x9f", "^\u015f"),
        ("\xa0é日本", "\xa0é日本"),
        ("^/\\#?", "^^^0^1^2^3"),
    ],
)
def test_escape_partition_key_matches_key_sanitation(instance_id: str, escaped: str) -> None:
    """Escaping follows KeySanitation.EscapePartitionKey and unescaping restores the id."""
    assert keys.escape_partition_key(instance_id) == escaped
    assert keys.unescape_partition_key(escaped) == instance_id


def test_fnv1a_worked_value_routes_inst_001_to_control_03() -> None:
    """FNV-1a 32 of 'inst-001' is 0x99717357, i.e. control queue 03 of 4 and 07 of 16."""
    assert keys.fnv1a_32(b"inst-001") == 0x99717357
    assert keys.partition_index("inst-001", 4) == 3
    assert keys.partition_index("inst-001", 16) == 7
    assert keys.control_queue_name("MyHub", 3) == "myhub-control-03"
    assert keys.fnv1a_32(b"") == 2166136261


def test_row_keys_are_x16_and_sort_before_the_sentinel() -> None:
    """RowKeys are 16 upper-case hex digits, sort numerically, and all sort before 'sentinel'."""
    assert keys.row_key(0) == "0000000000000000"
    assert keys.row_key(10) == "000000000000000A"
    assert keys.row_key(255) == "00000000000000FF"
    row_keys = [keys.row_key(i) for i in (0, 9, 10, 15, 16, 255, 4096)]
    assert sorted(row_keys) == row_keys
    assert max(row_keys) < keys.SENTINEL_ROW_KEY


def test_resource_names_follow_the_provider() -> None:
    """Tables keep the hub's case; queues and containers use it lower-cased."""
    assert keys.history_table_name("MyHub") == "MyHubHistory"
    assert keys.instances_table_name("MyHub") == "MyHubInstances"
    assert keys.work_item_queue_name("MyHub") == "myhub-workitems"
    assert keys.large_messages_container_name("MyHub") == "myhub-largemessages"
    assert keys.leases_container_name("MyHub") == "myhub-leases"
