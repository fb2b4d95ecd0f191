"""Entity instance ids: ``@{name}@{key}``, the name lower-cased, as EntityId does."""

from __future__ import annotations

from dataclasses import dataclass

EMPTY_KEY_SYMBOL = "$"  # the HTTP API's way to name the empty key


@dataclass(frozen=True)
class EntityId:
    name: str
    key: str

    @property
    def instance_id(self) -> str:
        return f"@{self.name.lower()}@{self.key}"

    def to_json(self) -> dict[str, str]:
        return {"name": self.name.lower(), "key": self.key}


def is_entity(instance_id: str) -> bool:
    return instance_id.startswith("@")


def parse_entity_id(instance_id: str) -> EntityId:
    """The id of ``@name@key``; ValueError for anything else."""
    if not is_entity(instance_id) or "@" not in instance_id[1:]:
        raise ValueError(f"'{instance_id}' is not an entity instance id (expected @name@key)")
    name, key = instance_id[1:].split("@", 1)
    return EntityId(name, key)
