"""The entity routes of the Durable HTTP API: ``entities/{name?}/{key?}``, as the extension's HttpApiHandler.

GET with a key reads the state (404 without a body when the entity does not exist); GET without one
lists entities (of the name, when given) with ``lastOperationTimeFrom``/``To``, ``top``,
``fetchState`` and the ``x-ms-continuation-token`` header; POST signals ``?op=``, DELETE signals
``delete``; both answer 202 once the operation is stored. A key of ``$`` means the empty key.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from aiohttp import web

from devhost.durable.entities.client import list_entities, read_entity_state, signal_entity
from devhost.durable.entities.ids import EMPTY_KEY_SYMBOL, EntityId
from devhost.durable.history import format_timestamp, parse_token

if TYPE_CHECKING:
    from devhost.durable.api import Call

CONTINUATION_HEADER = "x-ms-continuation-token"
DEFAULT_PAGE_SIZE = 100  # EntityQuery.PageSize
# .NET's texts: EntityId's ArgumentNullException, and the client's ArgumentException built with its
# message and parameter name swapped.
EMPTY_NAME = "Invalid entity id: entity name must not be a null or empty string. (Parameter 'entityName')"
BAD_KEY = "entityKey (Parameter 'Entity keys must not contain /, \\, #, ?, or control characters.')"


def _bad_key(key: str) -> bool:
    return any(c in "/\\#?" or ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in key)


async def handle_entities(call: Call) -> web.StreamResponse:
    """Serve ``entities/...``; ``call.segments`` starts with ``entities``."""
    from devhost.durable.api import empty, error, json_response  # here: devhost.durable.api imports this module

    segments = call.segments[1:]
    name = segments[0] if segments else ""
    key = segments[1] if len(segments) > 1 else ""
    method = call.request.method
    if method == "GET" and key:
        if not name:
            return json_response({"Message": EMPTY_NAME}, 400)
        entity = EntityId(name, "" if key == EMPTY_KEY_SYMBOL else key)
        exists, state = await read_entity_state(call.client, entity)
        if not exists:
            return empty(404)
        return json_response(parse_token(state), 200)
    if method == "GET":
        page_size = call.number("top")
        found, token = await list_entities(
            call.client, name or None, fetch_state=call.flag("fetchState", False),
            page_size=int(page_size) if page_size and page_size > 0 else DEFAULT_PAGE_SIZE,
            continuation=call.request.headers.get(CONTINUATION_HEADER),
            last_from=call.time("lastOperationTimeFrom"), last_to=call.time("lastOperationTimeTo"))
        body = [{"entityId": s.entity_id.to_json(),
                 "lastOperationTime": format_timestamp(s.last_operation_time) if s.last_operation_time else None,
                 "state": parse_token(s.state)} for s in found]
        return json_response(body, 200, {CONTINUATION_HEADER: token or ""})
    if method not in ("POST", "DELETE"):
        return empty(404)
    if not name:
        return json_response({"Message": EMPTY_NAME}, 400)
    if _bad_key(key):
        return json_response({"Message": BAD_KEY}, 400)
    operation = "delete" if method == "DELETE" else (call.text("op") or "")
    raw = await call.request.read()
    input_text: str | None = None
    if raw:
        text = raw.decode("utf-8-sig", errors="replace")
        if call.request.content_type.lower() == "application/json":
            try:
                input_text = json.dumps(json.loads(text), separators=(",", ":"), ensure_ascii=False)
            except json.JSONDecodeError as exc:
                return error(400, f"Could not parse JSON content: {exc}")
        else:
            input_text = json.dumps(text, ensure_ascii=False)  # the text as a JSON string
    # The app's own client checks that the entity function exists (ThrowIfFunctionDoesNotExist): 400.
    runner = getattr(call.client.engine, "entities", None)
    missing = runner.missing_function_message(name) if runner is not None else None
    if missing is not None:
        return json_response({"Message": missing}, 400)
    await signal_entity(call.client, EntityId(name, key), operation, input_text)
    return empty(202)
