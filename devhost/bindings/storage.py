"""Blob and table inputs, queue/blob/table outputs: what the host's storage extensions do for a
function's non-trigger storage bindings, read before the call and written after it succeeds."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from azure.functions import meta

from devhost.bindings import expressions
from devhost.bindings.accounts import StorageAccounts, encode_message
from devhost.bindings.connection import BindingError

log = logging.getLogger("devhost.bindings")

_TABLE_RESERVED = {"PartitionKey", "RowKey", "Timestamp", "ETag", "odata.etag"}


def split_blob_path(path: str) -> tuple[str, str]:
    container, _, blob = path.strip("/").partition("/")
    if not container or not blob:
        raise BindingError(f"blob path '{path}' must be 'container/blob'")
    return container, blob


def datum_bytes(datum: meta.Datum) -> bytes:
    value = datum.value
    if datum.type in ("bytes",) or isinstance(value, bytes | bytearray):
        return bytes(value)
    if datum.type in ("dict", "list") or not isinstance(value, str):
        return json.dumps(value).encode()
    return str(value).encode()


def _queue_messages(datum: meta.Datum) -> list[str | bytes]:
    """Each message an output datum stands for: a str/bytes is one, a JSON array is one per item."""
    value = datum.value
    if datum.type == "bytes":
        return [bytes(value)]
    if datum.type == "string":
        return [str(value)]
    if datum.type in ("json", "dict", "list"):
        parsed = json.loads(value) if isinstance(value, str) else value
        items = parsed if isinstance(parsed, list) else [parsed]
        messages: list[str | bytes] = []
        for item in items:
            if isinstance(item, str):
                messages.append(item)
            elif isinstance(item, dict) and set(item) == {"id", "body"}:
                messages.append(str(item["body"]))  # a func.QueueMessage, as its converter encodes it
            else:
                messages.append(json.dumps(item))
        return messages
    if datum.type in ("int", "double"):
        return [json.dumps(value)]
    raise BindingError(f"cannot write a {datum.type} value to a queue")


def _table_entities(datum: meta.Datum, raw: Mapping[str, Any], partition: str | None,
                    row: str | None) -> list[dict[str, Any]]:
    value = datum.value
    if isinstance(value, bytes | bytearray):
        value = value.decode()
    parsed = json.loads(value) if isinstance(value, str) else value
    items = parsed if isinstance(parsed, list) else [parsed]
    entities: list[dict[str, Any]] = []
    for item in items:
        if not isinstance(item, dict):
            raise BindingError(f"table output '{raw.get('name')}' takes a JSON object or an array of them")
        entity = dict(item)
        if partition is not None:
            entity.setdefault("PartitionKey", partition)
        if row is not None:
            entity.setdefault("RowKey", row)
        if "PartitionKey" not in entity or "RowKey" not in entity:
            raise BindingError(f"table output '{raw.get('name')}': every entity needs PartitionKey and RowKey")
        for key in ("PartitionKey", "RowKey"):
            entity[key] = str(entity[key])
        entities.append({k: v for k, v in entity.items() if k not in ("Timestamp", "ETag", "odata.etag")})
    return entities


def entity_json(entity: Any) -> dict[str, Any]:
    """A stored entity as the table input binding hands it to non-.NET functions."""
    data: dict[str, Any] = {}
    for key, value in entity.items():
        data[key] = value.isoformat() if isinstance(value, datetime) else value
    metadata = getattr(entity, "metadata", {}) or {}
    stamp = metadata.get("timestamp")
    if stamp is not None:
        data["Timestamp"] = stamp.isoformat() if isinstance(stamp, datetime) else str(stamp)
    return data


class StorageBindings:
    """Reads storage inputs and writes storage outputs for one invocation's binding data."""

    def __init__(self, accounts: StorageAccounts) -> None:
        self.accounts = accounts

    @property
    def environ(self) -> Mapping[str, str]:
        return self.accounts.environ

    def _text(self, raw: Mapping[str, Any], key: str, data: Mapping[str, Any]) -> str | None:
        value = raw.get(key)
        if value is None or value == "":
            return None
        return expressions.resolve(str(value), data, self.environ)

    # -- inputs ---------------------------------------------------------------------------------

    async def read_input(self, raw: Mapping[str, Any], pytype: Any, data: Mapping[str, Any]) -> meta.Datum:
        kind = raw.get("type")
        if kind == "blob":
            return await self._read_blob(raw, pytype, data)
        if kind == "table":
            return await self._read_table(raw, data)
        raise BindingError(f"devhost cannot provide the {kind} input binding ('{raw.get('name')}')")

    async def _read_blob(self, raw: Mapping[str, Any], pytype: Any, data: Mapping[str, Any]) -> meta.Datum:
        from azure.core.exceptions import ResourceNotFoundError

        container, blob = split_blob_path(self._text(raw, "path", data) or "")
        account = self.accounts.for_connection(raw.get("connection"), "blob")
        try:
            downloader = await account.blobs.get_blob_client(container, blob).download_blob()
            content = await downloader.readall()
        except ResourceNotFoundError:
            return meta.Datum(None, None)  # a missing blob is None, as in the host
        if pytype is str:
            return meta.Datum(content.decode("utf-8"), "string")
        return meta.Datum(content, "bytes")

    async def _read_table(self, raw: Mapping[str, Any], data: Mapping[str, Any]) -> meta.Datum:
        from azure.core.exceptions import ResourceNotFoundError

        table_name = self._text(raw, "tableName", data)
        if not table_name:
            raise BindingError(f"table input '{raw.get('name')}' has no tableName")
        partition = self._text(raw, "partitionKey", data)
        row = self._text(raw, "rowKey", data)
        table = self.accounts.for_connection(raw.get("connection"), "table").tables.get_table_client(table_name)
        if partition is not None and row is not None:
            try:
                entity = await table.get_entity(partition, row)
            except ResourceNotFoundError:
                return meta.Datum(None, None)
            return meta.Datum(json.dumps(entity_json(entity)), "string")
        clauses = []
        if partition is not None:
            clauses.append("PartitionKey eq '" + partition.replace("'", "''") + "'")
        query_filter = self._text(raw, "filter", data)
        if query_filter:
            clauses.append(f"({query_filter})")
        take = int(raw.get("take") or 0) or None
        rows: list[dict[str, Any]] = []
        try:
            pager = (table.query_entities(" and ".join(clauses), results_per_page=take) if clauses
                     else table.list_entities(results_per_page=take))
            async for entity in pager:
                rows.append(entity_json(entity))
                if take is not None and len(rows) >= take:
                    break
        except ResourceNotFoundError:
            pass  # no table yet: no rows
        return meta.Datum(json.dumps(rows), "string")

    # -- outputs --------------------------------------------------------------------------------

    async def write_output(self, raw: Mapping[str, Any], datum: meta.Datum, data: Mapping[str, Any]) -> None:
        if datum.value is None:
            return
        kind = raw.get("type")
        if kind == "queue":
            await self._write_queue(raw, datum, data)
        elif kind == "blob":
            await self._write_blob(raw, datum, data)
        elif kind == "table":
            await self._write_table(raw, datum, data)
        else:
            raise BindingError(f"devhost has no {kind} output binding ('{raw.get('name')}')")

    async def _write_queue(self, raw: Mapping[str, Any], datum: meta.Datum, data: Mapping[str, Any]) -> None:
        from azure.core.exceptions import ResourceNotFoundError

        queue_name = (self._text(raw, "queueName", data) or "").lower()
        if not queue_name:
            raise BindingError(f"queue output '{raw.get('name')}' has no queueName")
        account = self.accounts.for_connection(raw.get("connection"), "queue")
        queue = account.queues.get_queue_client(queue_name)
        for message in _queue_messages(datum):
            encoded = encode_message(message)
            try:
                await queue.send_message(encoded)
            except ResourceNotFoundError:
                await _create_queue(queue)
                await queue.send_message(encoded)
        self.accounts.queue_written(account, queue_name)

    async def _write_blob(self, raw: Mapping[str, Any], datum: meta.Datum, data: Mapping[str, Any]) -> None:
        from azure.core.exceptions import ResourceNotFoundError

        container, blob = split_blob_path(self._text(raw, "path", data) or "")
        blobs = self.accounts.for_connection(raw.get("connection"), "blob").blobs
        client = blobs.get_blob_client(container, blob)
        content = datum_bytes(datum)
        try:
            await client.upload_blob(content, overwrite=True)
        except ResourceNotFoundError:
            await _create_container(blobs, container)
            await client.upload_blob(content, overwrite=True)

    async def _write_table(self, raw: Mapping[str, Any], datum: meta.Datum, data: Mapping[str, Any]) -> None:
        from azure.core.exceptions import ResourceNotFoundError
        from azure.data.tables import UpdateMode

        table_name = self._text(raw, "tableName", data)
        if not table_name:
            raise BindingError(f"table output '{raw.get('name')}' has no tableName")
        entities = _table_entities(datum, raw, self._text(raw, "partitionKey", data), self._text(raw, "rowKey", data))
        service = self.accounts.for_connection(raw.get("connection"), "table").tables
        table = service.get_table_client(table_name)
        for entity in entities:
            try:
                await table.upsert_entity(entity, mode=UpdateMode.REPLACE)
            except ResourceNotFoundError:
                await service.create_table_if_not_exists(table_name)
                await table.upsert_entity(entity, mode=UpdateMode.REPLACE)


async def _create_queue(queue: Any) -> None:
    from azure.core.exceptions import ResourceExistsError

    try:
        await queue.create_queue()
    except ResourceExistsError:
        pass


async def _create_container(service: Any, container: str) -> None:
    from azure.core.exceptions import ResourceExistsError

    try:
        await service.create_container(container)
    except ResourceExistsError:
        pass
