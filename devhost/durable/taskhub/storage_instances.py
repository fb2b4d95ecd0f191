"""The task hub's Instances table in Azure Storage: one row per instance, merged column by column (spec B.2).

Input and Output too large for a table column go to a blob; the column then holds the blob's URL (B.5).
Listings filter with OData parameters, never with values spliced into the text.
"""

from __future__ import annotations

import asyncio
from typing import Any

from azure.core.exceptions import AzureError
from azure.data.tables.aio import TableClient

from devhost.durable.taskhub import codec, keys, rest, table_batch
from devhost.durable.taskhub.base import InstanceQuery, InstanceRow, InstanceUpdate
from devhost.durable.taskhub.large_payloads import BlobPayloadStore, exceeds_table_property_limit, history_blob_name
from devhost.durable.taskhub.storage_http import TableEndpoint
from devhost.durable.taskhub.table_batch import BatchError, BatchOperation
from devhost.errors import TaskHubError

_INSTANCE_BLOB_COLUMNS = ("Input", "Output")


class InstancesTable:
    """Read, write, list and delete Instances rows."""

    def __init__(self, hub_name: str, table: TableEndpoint, client: TableClient, payloads: BlobPayloadStore) -> None:
        self.hub_name = hub_name
        self.table = table  # the hot calls
        self.client = client  # listings
        self.payloads = payloads

    async def get_instance(
        self, instance_id: str, *, fetch_input: bool = True, fetch_output: bool = True
    ) -> InstanceRow | None:
        """Point read of the Instances row; blob URLs in Input/Output are downloaded."""
        select: list[str] | None = None
        if not (fetch_input and fetch_output):
            select = [
                c
                for c in codec.INSTANCE_COLUMNS
                if (c != "Input" or fetch_input) and (c != "Output" or fetch_output)
            ]
        pk = keys.escape_partition_key(instance_id)
        entity = await rest.guard(
            f"reading instance {instance_id!r}",
            rest.get_entity(self.table, pk, "", select),
        )
        if entity is None:
            return None
        entity.setdefault("PartitionKey", pk)
        row = codec.entity_to_instance(entity, entity.etag)
        await self._resolve_instance_blobs([row])
        return row

    async def write_instance(self, row: InstanceRow, *, replace: bool = False) -> None:
        """Upsert the row: ``replace`` writes the whole row, otherwise its non-None columns are merged."""
        entity = codec.instance_to_entity(row, self.hub_name, full=replace)
        await self._upsert_instance(entity, replace=replace)

    async def update_instance(self, instance_id: str, update: InstanceUpdate) -> None:
        """Insert-or-merge the columns ``update`` sets."""
        entity = codec.instance_update_to_entity(instance_id, update, self.hub_name)
        await self._upsert_instance(entity, replace=False)

    async def create_instance(self, row: InstanceRow, etag: str | None) -> bool:
        """A new execution's row: inserted, or replacing the row read with ``etag``; False on a conflict."""
        entity = await self._with_blobs(codec.instance_to_entity(row, self.hub_name, full=True))
        return await rest.guard("writing an Instances row", rest.create_entity(self.table, entity, etag))

    async def _upsert_instance(self, entity: dict[str, Any], *, replace: bool) -> None:
        entity = await self._with_blobs(entity)
        await rest.guard(
            "writing an Instances row",
            rest.upsert_entity(self.table, entity, replace=replace),
        )

    async def _with_blobs(self, entity: dict[str, Any]) -> dict[str, Any]:
        for column in _INSTANCE_BLOB_COLUMNS:
            value = entity.get(column)
            if isinstance(value, str) and exceeds_table_property_limit(value):
                # Instances rows hold the blob's full URL in the column itself (B.5).
                name = history_blob_name(entity["PartitionKey"], "", column, column)
                await rest.guard(f"uploading large {column}", self.payloads.upload(name, value))
                entity[column] = self.payloads.url(name)
        return entity

    async def _resolve_instance_blobs(self, rows: list[InstanceRow]) -> None:
        jobs: list[tuple[InstanceRow, str, str]] = []
        for row in rows:
            if row.input and self.payloads.is_blob_url(row.input):
                jobs.append((row, "input", row.input))
            if row.output and self.payloads.is_blob_url(row.output):
                jobs.append((row, "output", row.output))
        if not jobs:
            return
        texts = await rest.guard(
            "downloading large instance data",
            asyncio.gather(*(self.payloads.resolve(url) for _, _, url in jobs)),
        )
        for (row, attr, _), text in zip(jobs, texts, strict=True):
            setattr(row, attr, text)

    async def query_instances(self, query: InstanceQuery) -> tuple[list[InstanceRow], str | None]:
        """Instances matching ``query`` (entities excluded); with ``top``, one page and its continuation."""
        query_filter, parameters = build_instance_filter(query)
        select = (
            None
            if query.fetch_input
            else ["PartitionKey", *(c for c in codec.INSTANCE_COLUMNS if c != "Input")]
        )
        token = codec.decode_continuation(query.continuation)
        pager = self.client.query_entities(
            query_filter, parameters=parameters, select=select, results_per_page=query.top
        )
        entities: list[Any] = []
        next_token: dict[str, Any] | None = None
        try:
            pages = pager.by_page(continuation_token=token)
            async for page in pages:
                entities.extend([entity async for entity in page])
                if query.top is not None:
                    next_token = pages.continuation_token
                    break
        except AzureError as exc:
            raise TaskHubError(f"querying instances failed: {exc}") from exc
        rows = [codec.entity_to_instance(entity, entity.metadata.get("etag")) for entity in entities]
        await self._resolve_instance_blobs(rows)
        return rows, codec.encode_continuation(next_token)

    async def delete_row(self, pk: str) -> bool:
        # A one-operation transaction reports 404, unlike delete_entity, so no read is needed first.
        try:
            await table_batch.submit(
                self.table,
                [BatchOperation("delete", {"PartitionKey": pk, "RowKey": ""})],
            )
        except BatchError as exc:
            if exc.status == 404:
                return False
            raise TaskHubError(f"deleting Instances row {pk!r} failed: {exc}") from exc
        return True



def _increment_last_char(text: str) -> str:
    """The smallest string above every string starting with ``text`` (DTFx bumps the last char)."""
    code = ord(text[-1]) + 1
    if 0xD800 <= code <= 0xDFFF:
        code = 0xE000  # skip the surrogate block: it cannot be sent as UTF-8
    if code > 0x10FFFF:
        return text + "\U0010ffff"
    return text[:-1] + chr(code)


def build_instance_filter(query: InstanceQuery) -> tuple[str, dict[str, Any]]:
    """OData filter text with ``@name`` placeholders and their values; values are never spliced in.

    The SDK substitutes each whitespace-separated ``@name`` word and quotes/escapes the value, so
    every placeholder stands alone between spaces (hence ``( ... )`` with inner spaces).
    """
    clauses: list[str] = []
    parameters: dict[str, Any] = {}
    if query.runtime_status:
        alternatives = []
        for i, status in enumerate(query.runtime_status):
            parameters[f"rs{i}"] = getattr(status, "name", status) if not isinstance(status, str) else status
            alternatives.append(f"RuntimeStatus eq @rs{i}")
        clauses.append("( " + " or ".join(alternatives) + " )")
    if query.created_from is not None:
        parameters["createdFrom"] = codec.aware(query.created_from)
        clauses.append("CreatedTime ge @createdFrom")
    if query.created_to is not None:
        parameters["createdTo"] = codec.aware(query.created_to)
        clauses.append("CreatedTime le @createdTo")
    if query.instance_id_prefix:
        # PartitionKeys are escaped ids, so the range is over the escaped prefix (as DTFx does).
        low = keys.escape_partition_key(query.instance_id_prefix)
        high = _increment_last_char(low)
        parameters["pkLow"] = low
        parameters["pkHigh"] = high
        clauses.append("PartitionKey ge @pkLow and PartitionKey lt @pkHigh")
    # Entities share the table with ids "@name@key": keep them out of orchestration listings (a prefix
    # starting with "@" asks for entities).
    if not (query.instance_id_prefix or "").startswith("@"):
        parameters["entLow"] = "@"
        parameters["entHigh"] = "A"
        clauses.append("( PartitionKey lt @entLow or PartitionKey ge @entHigh )")
    return " and ".join(clauses), parameters

