"""External events: names, and how their data is read whatever encoding it arrived in.

Data raised through Microsoft's Python client arrives JSON-encoded twice: `raise_event` POSTs
`json.dumps(data)` as a JSON string, the extension stores that string, and the SDK decodes it only once,
so the orchestrator sees the JSON *text* of the data (`'"Tokyo"'`, `'{"city": "Tokyo"}'`, `'false'`).
Raw HTTP callers of the built-in webhook send real JSON and the orchestrator sees real values. Every
reader here first passes the data through `normalize_event_data`, which undoes that one extra layer.
"""

import json
from collections.abc import Iterable, Mapping
from enum import Enum
from typing import Any

USER_SELECTION = "UserSelection"
BOOKING_CONFIRMED = "BookingConfirmed"


def normalize_event_data(data: Any) -> Any:
    """Return the parsed value when `data` is a str holding JSON text, otherwise `data` unchanged."""
    if isinstance(data, str):
        try:
            return json.loads(data)
        except ValueError:
            # Plain text that is not JSON (a raw caller's bare city name) is meant literally.
            return data
    return data


class Confirmation(Enum):
    """How a `BookingConfirmed` event is read."""

    CONFIRMED = "confirmed"
    DECLINED = "declined"


def _confirmation_flag(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    # The str "true" is what a double-encoded True looks like after one decode too few; any other str,
    # and "false" in particular, must never count as a confirmation.
    return isinstance(value, str) and value.strip().lower() == "true"


def read_confirmation(data: Any) -> Confirmation:
    """Read `true`, `"true"` or `{"confirmed": ...}` as confirmed; everything else as declined."""
    value = normalize_event_data(data)
    if isinstance(value, Mapping):
        value = normalize_event_data(value.get("confirmed"))
    return Confirmation.CONFIRMED if _confirmation_flag(value) else Confirmation.DECLINED


def match_city(candidate: Any, allowed: Iterable[str]) -> str | None:
    """Return the canonical spelling of `candidate` among `allowed` (case-insensitive), else None."""
    if not isinstance(candidate, str):
        return None
    wanted = candidate.strip().casefold()
    for city in allowed:
        if isinstance(city, str) and city.casefold() == wanted:
            return city
    return None


def read_selected_city(data: Any, allowed: Iterable[str]) -> str | None:
    """Read a `UserSelection` event (a city name or `{"city": ...}`) against the recommended cities."""
    value = normalize_event_data(data)
    if isinstance(value, Mapping):
        value = normalize_event_data(value.get("city"))
    return match_city(value, allowed)
