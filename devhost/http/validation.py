"""Input checks at the edge of the Durable HTTP API, run before anything reads storage or writes to it.

The rules are the extension's where it has them (``DurableClient.StartNewAsync`` for instance ids,
Newtonsoft's ``MaxDepth`` of 64 for JSON), and devhost's own where the extension would fail later with
a 500 (text that is not valid UTF-16, a continuation token devhost never issued, a page size that is
not a 32-bit integer). Each failure is a 400 JSON error in the extension's error shape that says what
was wrong.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from typing import Any

from aiohttp import web

from devhost.durable.api import api_segments
from devhost.errors import DevhostError

MAX_JSON_DEPTH = 64  # Newtonsoft.Json's default JsonReader.MaxDepth (13.x), which the extension parses with
MAX_INSTANCE_ID_LENGTH = 256  # DurableClient.MaxInstanceIdLength, counted in UTF-16 code units
INT32_MAX = 2**31 - 1
CONTINUATION_HEADER = "x-ms-continuation-token"
# Strings (escapes included) and the brackets outside them: enough to measure nesting without recursion.
_JSON_TOKENS = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]', re.DOTALL)
_SURROGATE = re.compile("[\ud800-\udfff]")
# What check_instance_id refuses (char.IsControl: U+0000..U+001F and U+007F..U+009F), and what counts
# twice in a UTF-16 length: compiled once, as every status read and raise checks an id.
_ID_REFUSED = re.compile(r"[/\\#?\x00-\x1f\x7f-\x9f]")
_ASTRAL = re.compile("[\U00010000-\U0010ffff]")
_ARGUMENTS = "One or more of the arguments submitted is incorrect"


class InvalidInput(DevhostError):
    """A request value devhost refuses; ``message`` says which and why."""

    def __init__(self, message: str, *, title: str = _ARGUMENTS, exception_type: str = "System.ArgumentException",
                 status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.title = title
        self.exception_type = exception_type
        self.status = status

    def response(self) -> web.Response:
        """The extension's ``CreateErrorResponse`` shape, without a stack trace."""
        body = {"Message": self.title, "ExceptionMessage": self.message, "ExceptionType": self.exception_type,
                "StackTrace": None}
        return web.json_response(body, status=self.status, dumps=lambda v: json.dumps(v, ensure_ascii=True))


def _json_error(message: str) -> InvalidInput:
    return InvalidInput(message, title="Invalid JSON content", exception_type="Newtonsoft.Json.JsonReaderException")


def json_depth(text: str) -> int:
    """How deeply arrays and objects nest in ``text`` (brackets inside strings do not count)."""
    depth = deepest = 0
    for match in _JSON_TOKENS.finditer(text):
        token = match.group()
        if token in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif token in "]}":
            depth -= 1
    return deepest


def check_text(value: str, what: str) -> None:
    """Text must be valid Unicode: a lone UTF-16 surrogate cannot be stored or sent as UTF-8."""
    found = _SURROGATE.search(value)
    if found is not None:
        raise InvalidInput(f"{what} contains a lone UTF-16 surrogate (U+{ord(found.group()):04X} at index "
                           f"{found.start()}), which is not valid Unicode text")


def parse_json(text: str, what: str = "The request body", max_depth: int = MAX_JSON_DEPTH) -> Any:
    """Parse JSON that nests at most ``max_depth`` deep and holds only valid Unicode text."""
    check_json_carriable(text, what, max_depth)
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise _json_error(f"{what} is not valid JSON: {exc}") from None


def check_json_carriable(text: str, what: str = "The request body", max_depth: int = MAX_JSON_DEPTH) -> None:
    """Refuse JSON nested past ``max_depth`` or holding a lone surrogate; malformed JSON is left to the caller."""
    if json_depth(text) > max_depth:
        raise _json_error(f"{what} nests arrays or objects more than {max_depth} deep")
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        return
    # Lone surrogates only exist once \u escapes are decoded, so look at the parsed value.
    if _SURROGATE.search(json.dumps(value, ensure_ascii=False)):
        raise _json_error(f"{what} holds a lone UTF-16 surrogate (such as \\ud800), which is not valid "
                          "Unicode text and cannot be stored")


def utf16_length(text: str) -> int:
    """``string.Length`` in .NET: characters outside the BMP take two code units."""
    if text.isascii():
        return len(text)
    return len(text) + len(_ASTRAL.findall(text))


def check_instance_id(instance_id: str) -> None:
    """The rules ``DurableClient.StartNewAsync`` applies to a caller-chosen instance id."""
    if instance_id.startswith("@"):
        raise InvalidInput("Orchestration instance ids must not start with @.")
    if _ID_REFUSED.search(instance_id) is not None:
        raise InvalidInput("Orchestration instance ids must not contain /, \\, #, ?, or control characters.")
    if utf16_length(instance_id) > MAX_INSTANCE_ID_LENGTH:
        raise InvalidInput(f"Instance ID lengths must not exceed {MAX_INSTANCE_ID_LENGTH} characters.")
    check_text(instance_id, "The instance id")


def check_continuation_token(token: str) -> None:
    """A token devhost issued: URL-safe base64 of a JSON object of strings (the table's next keys)."""
    try:
        value = json.loads(base64.urlsafe_b64decode(token.encode("ascii")))
    except (ValueError, binascii.Error, UnicodeError, RecursionError):
        value = None
    if not isinstance(value, dict) or not all(isinstance(v, str | None) for v in value.values()):
        raise InvalidInput(f"The {CONTINUATION_HEADER} header is not a continuation token this API returned; "
                           "send back the value of the previous response's header unchanged.")


def check_top(value: str) -> None:
    """``top`` is a page size: a whole number a 32-bit integer holds (what ``int.TryParse`` accepts)."""
    text = value.strip()
    if not re.fullmatch(r"[+-]?\d{1,12}", text) or not -(2**31) <= int(text) <= INT32_MAX:
        raise InvalidInput(f"'top' must be a whole number of at most {INT32_MAX}, got {value[:40]!r}.")


async def check_durable_request(request: web.Request, raw_tail: str) -> None:
    """Every value a Durable HTTP API request carries, checked before the API acts on any of it."""
    segments = api_segments(raw_tail)
    for segment in segments:
        check_text(segment, "The request path")
    for name, value in request.query.items():
        check_text(value, f"The query value {name!r}")
        if name.lower() == "top":
            check_top(value)
    token = request.headers.get(CONTINUATION_HEADER)
    if token:
        check_continuation_token(token)
    first = segments[0].lower() if segments else ""
    if first == "orchestrators" and len(segments) == 3:
        check_instance_id(segments[2])
    elif first == "instances" and len(segments) >= 2:
        try:
            check_instance_id(segments[1])
        except InvalidInput as exc:
            # No instance can have such an id: nothing to find, and nothing to send to storage.
            raise InvalidInput(f"No orchestration instance can have the id given: {exc.message}",
                               title="Not found", status=404) from None
    takes_json = first == "orchestrators" or (len(segments) == 4 and segments[2].lower() == "raiseevent")
    if request.method == "POST" and takes_json and request.body_exists:
        body = await request.read()
        if body.strip():
            # Malformed JSON is the API's to report, after the checks the extension makes first.
            check_json_carriable(body.decode("utf-8-sig", errors="replace"))
