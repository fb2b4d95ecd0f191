"""Shared plumbing of the HTTP functions: JSON responses, body parsing, instance look-ups.

Every failure is reported as `HttpError`, which the functions turn into a JSON `{"error": ...}`
response, so bad input never surfaces as a 500 with a traceback.
"""

import asyncio
import json
import logging
import re
from collections.abc import Mapping
from typing import Any

import aiohttp
import azure.durable_functions as df
import azure.functions as func
from azure.durable_functions.models.DurableOrchestrationStatus import DurableOrchestrationStatus

JSON_CONTENT_TYPE = "application/json"
MAX_INSTANCE_ID_LENGTH = 256
# The Durable extension parses inputs with Newtonsoft.Json, whose readers stop at 64 levels; deeper
# JSON would be refused there, and Python's own parser gives up with a RecursionError near 1,000.
MAX_JSON_DEPTH = 64
RETRY_AFTER_SECONDS = 5
# Strings (escapes included) and the brackets outside them: enough to measure nesting without recursion.
JSON_TOKENS = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]', re.DOTALL)

TERMINAL_STATES = frozenset(
    {
        df.OrchestrationRuntimeStatus.Completed,
        df.OrchestrationRuntimeStatus.Failed,
        df.OrchestrationRuntimeStatus.Terminated,
        df.OrchestrationRuntimeStatus.Canceled,
    }
)

logger = logging.getLogger(__name__)


class HttpError(Exception):
    """A request that ends in a JSON error response."""

    def __init__(self, status_code: int, message: str, *, headers: Mapping[str, str] | None = None,
                 **details: Any) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.message = message
        self.headers = dict(headers or {})
        self.details = details

    def response(self) -> func.HttpResponse:
        return json_response({"error": self.message, **self.details}, self.status_code, self.headers)


def json_response(body: Any, status_code: int = 200, headers: Mapping[str, str] | None = None) -> func.HttpResponse:
    """Serialise `body` as a JSON response."""
    return func.HttpResponse(
        body=json.dumps(body), status_code=status_code, mimetype=JSON_CONTENT_TYPE, charset="utf-8",
        headers=dict(headers or {}),
    )


def read_json_body(req: func.HttpRequest) -> Any:
    """The parsed JSON body, or None for an empty body."""
    raw = req.get_body() or b""
    if not raw.strip():
        return None
    try:
        # utf-8-sig: tolerate a BOM, which some Windows tools put in front of JSON files.
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise HttpError(400, f"The request body is not UTF-8 text: {error.reason}.") from error
    if json_depth(text) > MAX_JSON_DEPTH:
        raise HttpError(400, f"The request body nests arrays or objects more than {MAX_JSON_DEPTH} deep.")
    try:
        value = json.loads(text)
    except ValueError as error:
        raise HttpError(400, f"The request body is not valid JSON: {error}.") from error
    try:
        # A \ud800 escape decodes to a lone surrogate, which no orchestration input can carry (UTF-8).
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError as error:
        raise HttpError(400, "The request body holds a lone UTF-16 surrogate (such as \\ud800), "
                        "which is not valid Unicode text.") from error
    return value


def json_depth(text: str) -> int:
    """How deeply arrays and objects nest in JSON text, measured without recursion."""
    depth = deepest = 0
    for match in JSON_TOKENS.finditer(text):
        token = match.group()
        if token in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif token in "]}":
            depth -= 1
    return deepest


def read_json_object(req: func.HttpRequest, example: str) -> Mapping[str, Any]:
    """The body as a JSON object; `example` shows the expected shape in the error message."""
    body = read_json_body(req)
    if not isinstance(body, Mapping):
        raise HttpError(400, f"The request body must be a JSON object such as {example}.")
    return body


def route_instance_id(req: func.HttpRequest) -> str:
    """The `{instanceId}` route parameter, checked against the durable instance id rules."""
    instance_id = req.route_params.get("instanceId") or ""
    if not instance_id.strip():
        raise HttpError(400, "The instance id must not be empty.")
    if len(instance_id) > MAX_INSTANCE_ID_LENGTH:
        raise HttpError(400, f"The instance id must be at most {MAX_INSTANCE_ID_LENGTH} characters.")
    if instance_id.startswith("@") or any(c in "/\\?#" or ord(c) < 32 or ord(c) == 127 for c in instance_id):
        raise HttpError(400, "The instance id must not start with '@' or contain / \\ ? # or control characters.")
    if any(c in "%+" for c in instance_id):
        # The client SDK puts the id into its management URLs as it is, and the host decodes the whole path
        # (`%2F` becomes a separator, `+` a space): such an id would address another resource.
        raise HttpError(400, "The instance id must not contain % or + (the client SDK cannot address such ids).")
    return instance_id


def backend_unavailable(error: Exception) -> bool:
    """Whether the backend could not be reached, or answered that its storage is unavailable (503)."""
    if isinstance(error, aiohttp.ClientConnectionError | asyncio.TimeoutError):
        return True
    # The client SDK reports statuses only through its exception text, or the error body it was sent.
    detail = error.args[0] if error.args else None
    if isinstance(detail, Mapping):
        return "unavailable" in str(detail.get("Message", "")).lower()
    return "status code 503" in str(error)


def backend_error(action: str, error: Exception) -> HttpError:
    """503 (with Retry-After) when the backend cannot be reached or its storage is down, else 502."""
    if backend_unavailable(error):
        return HttpError(503, f"The Durable Functions backend is unavailable while trying to {action}; "
                         f"retry in {RETRY_AFTER_SECONDS} seconds.", headers={"Retry-After": str(RETRY_AFTER_SECONDS)})
    logger.warning("Durable client failed to %s: %s", action, error)
    return HttpError(502, f"The Durable Functions backend failed to {action}: {error}")


async def fetch_status(client: df.DurableOrchestrationClient, instance_id: str) -> DurableOrchestrationStatus:
    """The instance's status; 404 when there is no such instance."""
    try:
        status = await client.get_status(instance_id)
    except Exception as error:
        raise backend_error("read the instance status", error) from error
    # The SDK returns a falsy status object (no createdTime) when the backend answers 404.
    if not status:
        raise HttpError(404, f"No orchestration instance with id '{instance_id}' exists.")
    return status


def ensure_orchestration(status: DurableOrchestrationStatus, instance_id: str, expected_name: str) -> None:
    """410 when the instance has already finished, 409 when it runs another orchestrator."""
    if status.runtime_status in TERMINAL_STATES:
        raise HttpError(
            410,
            f"Instance '{instance_id}' has already finished ({status.runtime_status.name}).",
            runtimeStatus=status.runtime_status.name,
        )
    # Durable function names are case-insensitive, as in the extension.
    if (status.name or "").casefold() != expected_name.casefold():
        raise HttpError(
            409,
            f"Instance '{instance_id}' is a {status.name} orchestration, not {expected_name}.",
        )


async def raise_event(client: df.DurableOrchestrationClient, instance_id: str, event_name: str, data: Any) -> None:
    """Raise an event, mapping the backend's 404/410 (an instance that finished meanwhile) to ours."""
    try:
        await client.raise_event(instance_id, event_name, data)
    except Exception as error:
        # The SDK reports these statuses only through fixed exception messages.
        text = str(error)
        if "is gone" in text:
            raise HttpError(410, f"Instance '{instance_id}' has already finished.") from error
        if text.startswith("No instance with ID"):
            raise HttpError(404, f"No orchestration instance with id '{instance_id}' exists.") from error
        raise backend_error(f"raise {event_name}", error) from error
