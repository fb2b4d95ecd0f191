"""Client operations on entities, as the extension's durable client performs them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from devhost import ids
from devhost.durable.client import DurableClient
from devhost.durable.entities.ids import EntityId, parse_entity_id
from devhost.durable.entities.messages import operation_message, request_message
from devhost.durable.entities.runner import SchedulerState
from devhost.durable.history import utcnow
from devhost.durable.taskhub.base import InstanceQuery


@dataclass
class EntityStatus:
    """One entity of a listing (the extension's DurableEntityStatus)."""

    entity_id: EntityId
    last_operation_time: datetime | None
    state: str | None  # JSON text; None when not fetched or the entity holds none


async def signal_entity(client: DurableClient, entity: EntityId, operation: str, input_text: str | None) -> None:
    """Send one operation; it is stored when this returns (the entity applies it exactly once)."""
    now = utcnow()
    request = request_message(request_id=ids.uuid4_text(), operation=operation, input_text=input_text, signal=True,
                              parent=None, parent_execution=None, timestamp=now)
    message = operation_message(entity.instance_id, request, sender={"InstanceId": "", "ExecutionId": ""},
                                timestamp=now)
    await (client.engine or client.hub).send([message])


async def read_entity_state(client: DurableClient, entity: EntityId) -> tuple[bool, str | None]:
    """(exists, state JSON text) as the last checkpoint left them."""
    row = await client.hub.get_instance(entity.instance_id, fetch_input=True, fetch_output=False)
    if row is None:
        return False, None
    state = SchedulerState.from_json(row.input)
    return state.exists, state.state


async def list_entities(client: DurableClient, name: str | None, *, fetch_state: bool, page_size: int | None,
                        continuation: str | None, last_from: datetime | None = None,
                        last_to: datetime | None = None) -> tuple[list[EntityStatus], str | None]:
    """Existing entities (of ``name`` when given), one page."""
    prefix = f"@{name.lower()}@" if name else "@"
    rows, token = await client.hub.query_instances(InstanceQuery(
        instance_id_prefix=prefix, top=page_size, continuation=continuation, fetch_input=True))
    found: list[EntityStatus] = []
    for row in rows:
        try:
            entity = parse_entity_id(row.instance_id)
        except ValueError:
            continue
        state = SchedulerState.from_json(row.input)
        updated = row.last_updated_time
        if not state.exists or (last_from and updated and updated < last_from) or (
                last_to and updated and updated > last_to):
            continue
        found.append(EntityStatus(entity, updated, state.state if fetch_state else None))
    return found, token
