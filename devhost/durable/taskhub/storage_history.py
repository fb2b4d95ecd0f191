"""The task hub's History table in Azure Storage: one partition per instance, a sentinel row per checkpoint.

Events are rows at ``X16`` RowKeys; the ``sentinel`` row names the current execution and its ETag guards
each checkpoint against a concurrent writer (spec B.3). A checkpoint is one entity-group transaction per
≤ 99 rows plus the sentinel; string columns too large for a table move to blobs first (B.5).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Sequence
from typing import Any

from azure.core.exceptions import AzureError
from azure.data.tables.aio import TableClient

from devhost.durable.history import Event, utcnow
from devhost.durable.taskhub import codec, keys, rest, table_batch
from devhost.durable.taskhub.base import HistoryPage
from devhost.durable.taskhub.large_payloads import (
    BLOB_NAME_SUFFIX,
    OFFLOADABLE_PROPERTIES,
    BlobPayloadStore,
    exceeds_table_property_limit,
    history_blob_name,
)
from devhost.durable.taskhub.storage_http import TableEndpoint
from devhost.durable.taskhub.table_batch import BatchError, BatchOperation
from devhost.errors import CheckpointConflict, TaskHubError

MAX_BATCH_ROWS = 99  # + the sentinel = the 100-operation limit of one table transaction
MAX_BATCH_BYTES = 3 * 1024 * 1024  # stay well below the 4 MB transaction payload limit


def _estimated_bytes(entity: dict[str, Any]) -> int:
    """Pessimistic request size of one row in ``table_batch.entity_json`` (ASCII-escaped JSON)."""
    size = 300
    for key, value in entity.items():
        size += len(key) + 40
        if isinstance(value, str):
            # Escaped quotes/backslashes double ASCII text; anything else becomes a 6-byte \uXXXX.
            size += len(value) * (2 if value.isascii() else 6)
    return size


class HistoryTable:
    """Load, checkpoint and delete instances' history rows."""

    def __init__(self, table: TableEndpoint, client: TableClient, payloads: BlobPayloadStore) -> None:
        self.table = table  # the hot calls
        self.client = client  # the rare ones (partition key listings, single deletes)
        self.payloads = payloads

    async def load_history(self, instance_id: str) -> HistoryPage:
        """The current execution's events (one partition query) and the sentinel's ETag."""
        pk = keys.escape_partition_key(instance_id)
        entities = await rest.guard(
            f"loading history of {instance_id!r}",
            rest.query_partition(self.table, pk),
        )
        if not entities:
            return HistoryPage(None, [], None)
        entities.sort(key=_row_key)  # the service returns RowKey order already; cheap insurance
        sentinel = entities[-1] if entities[-1]["RowKey"] == keys.SENTINEL_ROW_KEY else None
        execution_id = (sentinel or entities[0]).get("ExecutionId")
        rows: list[rest.Row] = []
        for entity in entities:
            if entity.get("ExecutionId") != execution_id:
                break  # older executions' tails carry their own ExecutionId
            if entity is not sentinel:
                rows.append(entity)
        await self._inline_blob_columns(rows)
        events = [codec.entity_to_event(entity) for entity in rows]
        return HistoryPage(execution_id, events, sentinel.etag if sentinel is not None else None)

    async def _inline_blob_columns(self, rows: list[rest.Row]) -> None:
        """Replace ``<Prop>BlobName`` columns by the blob's text in ``<Prop>`` (downloads concurrently)."""
        jobs: list[tuple[Any, str, str]] = []
        for entity in rows:
            for key in entity:
                if key.endswith(BLOB_NAME_SUFFIX) and entity[key]:
                    jobs.append((entity, key[: -len(BLOB_NAME_SUFFIX)], key))
        if not jobs:
            return
        texts = await rest.guard(
            "downloading large history properties",
            asyncio.gather(*(self.payloads.download(entity[key]) for entity, _, key in jobs)),
        )
        for (entity, prop, key), text in zip(jobs, texts, strict=True):
            entity[prop] = text
            del entity[key]

    async def append_history(
        self, instance_id: str, execution_id: str, start_index: int, events: Sequence[Event], etag: str | None,
        *, after: Awaitable[object] | None = None,
    ) -> str:
        """Write ``events`` at RowKeys ``start_index``.. plus the sentinel, one transaction per ≤ 99 rows.

        ``etag`` None: the sentinel is created; if one from an older execution exists, it is replaced
        under that row's own ETag (read only in that case). A sentinel already naming this execution,
        or any ETag mismatch, raises ``CheckpointConflict``. With ``after``, the rows and the first
        transaction's request are made while it runs, and the request is sent once it is done.
        """
        pk = keys.escape_partition_key(instance_id)
        entities = [
            codec.event_to_entity(event, pk, keys.row_key(start_index + i), execution_id)
            for i, event in enumerate(events)
        ]
        await self._offload_history_columns(entities)
        batches = _split_batches(entities)
        for number, batch in enumerate(batches):
            final = number == len(batches) - 1
            sentinel: dict[str, Any] = {
                "PartitionKey": pk,
                "RowKey": keys.SENTINEL_ROW_KEY,
                "ExecutionId": execution_id,
                "IsCheckpointComplete": final,
            }
            if final:
                sentinel["CheckpointCompletedTimestamp"] = codec.dt_column(utcnow())
            request = None
            if after is not None:
                request = table_batch.prepare(self.table, _checkpoint_operations(batch, sentinel, etag))
                await after
                after = None
            etag = await self._submit_checkpoint(instance_id, execution_id, batch, sentinel, etag, request)
        assert etag is not None
        return etag

    async def _submit_checkpoint(
        self,
        instance_id: str,
        execution_id: str,
        batch: list[dict[str, Any]],
        sentinel: dict[str, Any],
        etag: str | None,
        request: table_batch.PreparedBatch | None = None,
    ) -> str:
        try:
            result = await table_batch.submit(self.table, request or _checkpoint_operations(batch, sentinel, etag))
        except BatchError as exc:
            if exc.status == 409 and etag is None:
                # A sentinel exists: fine if it belongs to an older execution (continue-as-new or a
                # reused id), a split brain if it already names this one.
                current = await self._read_sentinel(instance_id)
                if current is None or current[0] == execution_id:
                    raise CheckpointConflict(
                        f"history of {instance_id!r} execution {execution_id} was written concurrently"
                    ) from exc
                return await self._submit_checkpoint(instance_id, execution_id, batch, sentinel, current[1])
            if exc.status in (404, 409, 412):
                raise CheckpointConflict(f"history sentinel of {instance_id!r} moved ({exc})") from exc
            raise TaskHubError(f"writing history of {instance_id!r} failed: {exc}") from exc
        except AzureError as exc:
            raise TaskHubError(f"writing history of {instance_id!r} failed: {exc}") from exc
        new_etag = result[-1] if result else None
        if new_etag:
            return str(new_etag)
        # Only if a service ever omitted per-operation ETags in the batch response.
        current = await self._read_sentinel(instance_id)
        if current is None:
            raise TaskHubError(f"history sentinel of {instance_id!r} vanished after a checkpoint")
        return current[1]

    async def _read_sentinel(self, instance_id: str) -> tuple[str | None, str] | None:
        entity = await rest.guard(
            f"reading the history sentinel of {instance_id!r}",
            rest.get_entity(
                self.table,
                keys.escape_partition_key(instance_id),
                keys.SENTINEL_ROW_KEY,
                ["ExecutionId"],
            ),
        )
        if entity is None or not entity.etag:
            return None
        return entity.get("ExecutionId"), entity.etag

    async def _offload_history_columns(self, entities: list[dict[str, Any]]) -> None:
        """Move oversized string columns to blobs before the transaction (B.5)."""
        uploads: list[Awaitable[None]] = []
        for entity in entities:
            for prop in OFFLOADABLE_PROPERTIES:
                value = entity.get(prop)
                if isinstance(value, str) and exceeds_table_property_limit(value):
                    name = history_blob_name(
                        entity["PartitionKey"], entity["RowKey"], entity.get("EventType", prop), prop
                    )
                    uploads.append(self.payloads.upload(name, value))
                    entity[prop + BLOB_NAME_SUFFIX] = name
                    entity[prop] = ""
        if uploads:
            await rest.guard("uploading large history properties", asyncio.gather(*uploads))

    async def row_keys(self, pk: str) -> list[str]:
        """RowKeys of every row of one partition (all executions, and the sentinel)."""
        return [
            e["RowKey"]
            async for e in self.client.query_entities("PartitionKey eq @pk", parameters={"pk": pk}, select=["RowKey"])
        ]

    async def delete_rows(self, pk: str, row_keys: list[str]) -> None:
        """Delete ``row_keys`` of one partition, 100 to a transaction."""
        await asyncio.gather(
            *(self._delete_history_rows(pk, row_keys[i : i + 100]) for i in range(0, len(row_keys), 100))
        )

    async def _delete_history_rows(self, pk: str, row_keys: list[str]) -> None:
        operations = [BatchOperation("delete", {"PartitionKey": pk, "RowKey": rk}) for rk in row_keys]
        try:
            await table_batch.submit(self.table, operations)
        except BatchError as exc:
            if exc.status != 404:
                raise TaskHubError(f"purging history rows of {pk!r} failed: {exc}") from exc
            # Someone deleted a row meanwhile; delete the rest one by one (delete_entity ignores 404).
            await asyncio.gather(*(self.client.delete_entity(pk, rk) for rk in row_keys))



def _checkpoint_operations(batch: list[dict[str, Any]], sentinel: dict[str, Any],
                           etag: str | None) -> list[BatchOperation]:
    """The rows, then the sentinel: created with the execution's first checkpoint, else merged under its ETag."""
    operations = [BatchOperation("upsert_replace", entity) for entity in batch]
    if etag is None:
        operations.append(BatchOperation("create", sentinel))
    else:
        operations.append(BatchOperation("update_merge", sentinel, etag))
    return operations


def _row_key(entity: Any) -> str:
    return str(entity["RowKey"])


def _split_batches(entities: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Chunks of ≤ 99 rows and ≤ ~3 MB; always at least one (possibly empty) chunk for the sentinel."""
    batches: list[list[dict[str, Any]]] = [[]]
    size = 0
    for entity in entities:
        entity_size = _estimated_bytes(entity)
        current = batches[-1]
        if current and (len(current) >= MAX_BATCH_ROWS or size + entity_size > MAX_BATCH_BYTES):
            batches.append([])
            size = 0
        batches[-1].append(entity)
        size += entity_size
    return batches

