"""The hot storage calls, as plain REST requests built and read here.

The azure SDK clients spend about as much CPU in their per-operation layer (generated request
builders, XML/JSON model (de)serialization, tracing decorators) as in the HTTP pipeline itself. For the
calls the engine makes per message or per episode (queue put/get/delete/update, a table row's
point read and upsert, the history partition query) this module builds the REST request and reads the
reply directly, on the endpoint's transport: the hub's lean aiohttp session (Shared Key accounts) or,
for SAS/token credentials, the SDK client's own pipeline (``storage_http``). Rare calls (creating
resources, blobs, instance listings, purges) keep using the SDK's public methods.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Awaitable
from dataclasses import dataclass
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar
from urllib.parse import quote
from xml.etree import ElementTree
from xml.sax.saxutils import escape

from azure.core.exceptions import AzureError
from azure.data.tables import EdmType

from devhost.durable.taskhub.storage_http import QueueEndpoint, Reply, TableEndpoint
from devhost.durable.taskhub.table_batch import entity_json, entity_url
from devhost.errors import TaskHubError

T = TypeVar("T")


class StorageCallError(Exception):
    """A storage REST call answered with an error status."""

    def __init__(self, status: int, code: str, message: str = "") -> None:
        super().__init__(f"HTTP {status} {code} {message}".strip())
        self.status = status
        self.code = code


async def guard(what: str, call: Awaitable[T]) -> T:
    """Await a storage call, turning SDK and REST errors into ``TaskHubError``."""
    try:
        return await call
    except (AzureError, StorageCallError) as exc:
        raise TaskHubError(f"{what} failed: {exc}") from exc


def _error(response: Reply) -> StorageCallError:
    code = response.headers.get("x-ms-error-code", "")
    text = response.text()
    if not code and text:
        try:
            code = json.loads(text)["odata.error"]["code"]
        except (ValueError, KeyError, TypeError):
            code = ""
    return StorageCallError(response.status, code, text[:300])


# ------------------------------------------------------------------------------------------------ queues

_NO_HEADERS: dict[str, str] = {}


@dataclass
class QueueItem:
    message_id: str
    pop_receipt: str
    dequeue_count: int
    inserted_on: datetime
    text: str


# Queue replies are a flat list of <QueueMessage> elements of text-only fields (no attributes, no
# nesting). Reading the fields with two regular expressions costs a tenth of ElementTree. Whatever an
# XML parser would read differently (CDATA, comments, character references, a CR that XML turns into
# LF, entities beyond the five XML defines) goes to ElementTree as before.
_MESSAGE = re.compile(r"<QueueMessage>(.*?)</QueueMessage>", re.S)
_FIELD = re.compile(r"<(\w+)>([^<]*)</\1>")
_NAMED = re.compile(r"&(lt|gt|amp|quot|apos);")
_ENTITIES = {"lt": "<", "gt": ">", "amp": "&", "quot": '"', "apos": "'"}


def _fields_by_regex(text: str) -> list[dict[str, str]] | None:
    if "<![CDATA[" in text or "<!--" in text or "&#" in text or "\r" in text:
        return None
    messages: list[dict[str, str]] = []
    for block in _MESSAGE.findall(text):
        if "<" in _FIELD.sub("", block):
            return None  # something besides text fields
        fields = dict(_FIELD.findall(block))
        for name, value in fields.items():
            if "&" in value:
                unescaped = _NAMED.sub(lambda m: _ENTITIES[m.group(1)], value)
                if "&" in _NAMED.sub("", value):
                    return None  # an entity XML does not define: let the parser refuse it
                fields[name] = unescaped
        messages.append(fields)
    if text.count("<QueueMessage>") != len(messages):
        return None
    return messages


def _fields_by_elementtree(content: bytes) -> list[dict[str, str]]:
    return [{child.tag: child.text or "" for child in node} for node in ElementTree.fromstring(content)]


def queue_messages(content: bytes) -> list[dict[str, str]]:
    """The fields of each ``<QueueMessage>`` of a Put/Get Messages reply, unescaped, in order."""
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError:
        return _fields_by_elementtree(content)
    fields = _fields_by_regex(text)
    return fields if fields is not None else _fields_by_elementtree(content)


@functools.lru_cache(maxsize=64)
def http_date(text: str) -> datetime:
    """An RFC 1123 date (InsertionTime): messages written in the same second share the text."""
    return parsedate_to_datetime(text)


async def put_message(queue: QueueEndpoint, text: str, visibility_seconds: int) -> QueueItem:
    """Put Message with infinite time-to-live (``messagettl=-1``); returns its id and pop receipt."""
    url = f"{queue.url}/messages?messagettl=-1"
    if visibility_seconds:
        url += f"&visibilitytimeout={visibility_seconds}"
    body = (
        "<?xml version='1.0' encoding='utf-8'?>\n"
        f"<QueueMessage><MessageText>{escape(text)}</MessageText></QueueMessage>"
    )
    response = await queue.transport.send(
        "POST",
        url,
        {"Content-Type": "application/xml; charset=utf-8"},
        body.encode("utf-8", "surrogatepass"),
        table=False,
    )
    if response.status != 201:
        raise _error(response)
    messages = queue_messages(response.content)
    if not messages:
        raise StorageCallError(response.status, "NoMessageInReply", "Put Message answered without the message")
    fields = messages[0]
    return QueueItem(
        message_id=fields.get("MessageId", ""),
        pop_receipt=fields.get("PopReceipt", ""),
        dequeue_count=0,
        inserted_on=http_date(fields.get("InsertionTime", "")),
        text=text,
    )


async def get_messages(queue: QueueEndpoint, count: int, visibility_seconds: int) -> list[QueueItem]:
    """Get Messages: up to ``count`` (1-32) messages, hidden for ``visibility_seconds`` (≥ 1)."""
    url = f"{queue.url}/messages?numofmessages={count}&visibilitytimeout={visibility_seconds}"
    response = await queue.transport.send("GET", url, _NO_HEADERS, table=False)
    if response.status != 200:
        raise _error(response)
    return [
        QueueItem(
            message_id=fields.get("MessageId", ""),
            pop_receipt=fields.get("PopReceipt", ""),
            dequeue_count=int(fields.get("DequeueCount") or 0),
            inserted_on=http_date(fields.get("InsertionTime", "")),
            text=fields.get("MessageText", ""),
        )
        for fields in queue_messages(response.content)
    ]


async def delete_message(queue: QueueEndpoint, message_id: str, pop_receipt: str) -> None:
    url = f"{queue.url}/messages/{quote(message_id, safe='')}?popreceipt={quote(pop_receipt, safe='')}"
    response = await queue.transport.send("DELETE", url, _NO_HEADERS, table=False)
    if response.status != 204:
        raise _error(response)


async def update_visibility(
    queue: QueueEndpoint, message_id: str, pop_receipt: str, visibility_seconds: int
) -> str:
    """Update Message (visibility only); returns the new pop receipt."""
    url = (
        f"{queue.url}/messages/{quote(message_id, safe='')}?popreceipt={quote(pop_receipt, safe='')}"
        f"&visibilitytimeout={visibility_seconds}"
    )
    response = await queue.transport.send("PUT", url, _NO_HEADERS, table=False)
    if response.status != 204:
        raise _error(response)
    return response.headers["x-ms-popreceipt"]


# ------------------------------------------------------------------------------------------------ tables

_TABLE_HEADERS = {"Accept": "application/json;odata=minimalmetadata", "DataServiceVersion": "3.0"}
_TABLE_WRITE_HEADERS = {**_TABLE_HEADERS, "Content-Type": "application/json"}


def odata_string(value: str) -> str:
    """An OData string literal: quotes doubled, so a value can never end the literal early."""
    return "'" + value.replace("'", "''") + "'"


class Row(dict[str, Any]):
    """A decoded entity; ``etag`` is the service's concurrency token (not a column)."""

    etag: str | None = None


def decode_entity(raw: dict[str, Any]) -> Row:
    """Service JSON → entity dict: DateTimes as ``(text, EdmType.DATETIME)``, Int64 as int.

    The same typed shape the codec writes, so one decoder serves writes, reads and the memory hub.
    """
    entity = Row()
    for key, value in raw.items():
        if key.startswith("odata.") or key.endswith("@odata.type"):
            continue
        edm = raw.get(key + "@odata.type")
        if edm is None:
            entity[key] = value
        elif edm == "Edm.DateTime":
            entity[key] = (value, EdmType.DATETIME)
        elif edm == "Edm.Int64":
            entity[key] = int(value)
        elif edm == "Edm.Double":
            entity[key] = float(value)
        else:
            entity[key] = value
    entity.etag = raw.get("odata.etag")
    return entity


async def get_entity(
    table: TableEndpoint, partition_key: str, row_key: str, select: list[str] | None = None
) -> Row | None:
    """Point read of one row; None when it does not exist."""
    url = entity_url(table.base_url, table.name, partition_key, row_key)
    if select:
        url += "?$select=" + quote(",".join(select), safe=",")
    response = await table.transport.send("GET", url, _TABLE_HEADERS, table=True)
    if response.status == 404:
        return None
    if response.status != 200:
        raise _error(response)
    return decode_entity(json.loads(response.content))


async def upsert_entity(table: TableEndpoint, entity: dict[str, Any], *, replace: bool) -> str:
    """Insert-or-replace (PUT) or insert-or-merge (PATCH) one row; returns its new ETag."""
    url = entity_url(table.base_url, table.name, entity["PartitionKey"], entity["RowKey"])
    response = await table.transport.send(
        "PUT" if replace else "PATCH",
        url,
        _TABLE_WRITE_HEADERS,
        entity_json(entity).encode("utf-8", "surrogatepass"),
        table=True,
    )
    if response.status != 204:
        raise _error(response)
    return response.headers.get("ETag", "")


_TABLE_CREATE_HEADERS = {**_TABLE_WRITE_HEADERS, "Prefer": "return-no-content"}


async def create_entity(table: TableEndpoint, entity: dict[str, Any], etag: str | None) -> bool:
    """Insert one row (``etag`` None) or replace it while it still has ``etag``, as the provider writes a new
    execution's row; False when the row was there first (409) or had changed since it was read (412)."""
    body = entity_json(entity).encode("utf-8", "surrogatepass")
    if etag is None:
        response = await table.transport.send("POST", f"{table.base_url}{table.name}", _TABLE_CREATE_HEADERS, body,
                                               table=True)
    else:
        url = entity_url(table.base_url, table.name, entity["PartitionKey"], entity["RowKey"])
        response = await table.transport.send("PUT", url, {**_TABLE_WRITE_HEADERS, "If-Match": etag}, body,
                                               table=True)
    if response.status in (409, 412):
        return False
    if response.status not in (201, 204):
        raise _error(response)
    return True


async def query_partition(table: TableEndpoint, partition_key: str) -> list[Row]:
    """Every row of one partition (following continuation headers), decoded."""
    query = "$filter=" + quote(f"PartitionKey eq {odata_string(partition_key)}", safe="")
    url = f"{table.base_url}{table.name}()?{query}"
    rows: list[Row] = []
    next_url = url
    while True:
        response = await table.transport.send("GET", next_url, _TABLE_HEADERS, table=True)
        if response.status != 200:
            raise _error(response)
        rows.extend(decode_entity(raw) for raw in json.loads(response.content)["value"])
        next_pk = response.headers.get("x-ms-continuation-NextPartitionKey")
        next_rk = response.headers.get("x-ms-continuation-NextRowKey")
        if not next_pk and not next_rk:
            return rows
        next_url = f"{url}&NextPartitionKey={quote(next_pk or '', safe='')}"
        next_url += f"&NextRowKey={quote(next_rk or '', safe='')}"
