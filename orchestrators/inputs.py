"""Start inputs of the orchestrations: validation and normalisation shared by orchestrators and starters.

The HTTP starter runs exactly these parsers before it starts anything, and the orchestrators run them
again on whatever input they were given, because an instance can also be started through the built-in
webhook API, which does no validation of its own.
"""

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import azure.durable_functions as df

CITY_RECOMMENDER = "CityRecommender"
RESERVE_TICKET = "ReserveTicket"
SET_STATUS_TEST = "SetStatusTest"

# One durable timer can wait at most this long on Azure Storage (`maximumShortTimerDuration`); staying
# within it keeps every wait a single timer action instead of the SDK's chained long-timer segments.
MAX_TIMEOUT_SECONDS = 6 * 24 * 3600
MAX_STEP_DELAY_SECONDS = 3600
MAX_USER_ID_LENGTH = 256

DEFAULT_SELECTION_TIMEOUT_SECONDS = 3600
DEFAULT_DISCOUNT_TIMEOUT_SECONDS = 60
DEFAULT_STEP_DELAY_SECONDS = 2

# The article's three audience segments; each entry is (recommended cities, recommended seasons).
RECOMMENDATIONS: dict[int, tuple[tuple[str, ...], tuple[str, ...]]] = {
    1: (("Tokyo", "Seattle"), ("Spring", "Summer")),
    2: (("Seattle", "London"), ("Summer",)),
    3: (("Tokyo", "London"), ("Spring", "Summer")),
}


class InputError(ValueError):
    """The input cannot start (or drive) the orchestration; the message says what is wrong."""


@dataclass(frozen=True)
class CityRecommenderInput:
    """Validated input of `CityRecommender`."""

    choice: int
    selection_timeout_seconds: int = DEFAULT_SELECTION_TIMEOUT_SECONDS

    @property
    def cities(self) -> list[str]:
        return list(RECOMMENDATIONS[self.choice][0])

    @property
    def seasons(self) -> list[str]:
        return list(RECOMMENDATIONS[self.choice][1])

    def to_json(self) -> dict[str, Any]:
        return {"choice": self.choice, "selectionTimeoutSeconds": self.selection_timeout_seconds}


@dataclass(frozen=True)
class ReserveTicketInput:
    """Validated input of `ReserveTicket`; the user id is kept exactly as given (never made an int)."""

    user_id: str
    discount_timeout_seconds: int = DEFAULT_DISCOUNT_TIMEOUT_SECONDS

    def to_json(self) -> dict[str, Any]:
        return {"userId": self.user_id, "discountTimeout": self.discount_timeout_seconds}


@dataclass(frozen=True)
class SetStatusTestInput:
    """Validated input of `SetStatusTest`."""

    step_delay_seconds: int = DEFAULT_STEP_DELAY_SECONDS

    def to_json(self) -> dict[str, Any]:
        return {"stepDelaySeconds": self.step_delay_seconds}


def read_input(context: df.DurableOrchestrationContext) -> Any:
    """The orchestration input, also when it was started with a raw JSON scalar or list.

    The Python client double-encodes inputs, so the SDK gets JSON text and `get_input()` decodes it.
    An instance started through the built-in webhook with a raw body such as `2` or `"u-1"` hands the
    SDK the value itself, which `get_input()` then fails to decode; the value is the input then.
    """
    try:
        return context.get_input()
    except (TypeError, ValueError):
        return getattr(context, "_input", None)


def _is_integer(value: Any) -> bool:
    # bool is an int subclass, but `true` is never a sensible count of seconds or a menu choice.
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return True
    return isinstance(value, float) and math.isfinite(value) and value.is_integer()


def _whole_number(value: Any, field: str, minimum: int, maximum: int) -> int:
    if not _is_integer(value):
        raise InputError(f"'{field}' must be a whole number of seconds, got {value!r}.")
    number = int(value)
    if not minimum <= number <= maximum:
        raise InputError(f"'{field}' must be between {minimum} and {maximum} seconds, got {number}.")
    return number


def _object_fields(raw: Mapping[str, Any], allowed: tuple[str, ...]) -> None:
    unknown = sorted(str(key) for key in raw if key not in allowed)
    if unknown:
        raise InputError(f"Unknown field(s) {', '.join(unknown)}; expected only {', '.join(allowed)}.")


def _parse_choice(value: Any) -> int:
    # The article's own Python sample does int(input), so a numeric string such as "2" is accepted too.
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if not _is_integer(value) or int(value) not in RECOMMENDATIONS:
        allowed = ", ".join(str(choice) for choice in RECOMMENDATIONS)
        raise InputError(f"'choice' must be one of {allowed}, got {value!r}.")
    return int(value)


def parse_city_recommender_input(raw: Any) -> CityRecommenderInput:
    """Validate `1`/`2`/`3` or `{"choice": n, "selectionTimeoutSeconds": s}`."""
    if raw is None:
        raise InputError('CityRecommender needs an input: 1, 2 or 3, or {"choice": n, "selectionTimeoutSeconds": s}.')
    if isinstance(raw, Mapping):
        _object_fields(raw, ("choice", "selectionTimeoutSeconds"))
        if "choice" not in raw:
            raise InputError("'choice' is required.")
        timeout = raw.get("selectionTimeoutSeconds", DEFAULT_SELECTION_TIMEOUT_SECONDS)
        return CityRecommenderInput(
            choice=_parse_choice(raw["choice"]),
            selection_timeout_seconds=_whole_number(timeout, "selectionTimeoutSeconds", 1, MAX_TIMEOUT_SECONDS),
        )
    return CityRecommenderInput(choice=_parse_choice(raw))


def _parse_user_id(value: Any) -> str:
    if not isinstance(value, str):
        raise InputError(f"'userId' must be a string, got {type(value).__name__}.")
    if not value.strip():
        raise InputError("'userId' must not be empty.")
    if len(value) > MAX_USER_ID_LENGTH:
        raise InputError(f"'userId' must be at most {MAX_USER_ID_LENGTH} characters.")
    if any("\ud800" <= c <= "\udfff" for c in value):
        # A lone surrogate (JSON "\ud800") is not Unicode text: it cannot be written as UTF-8 to storage.
        raise InputError("'userId' must be valid Unicode text; it holds a lone UTF-16 surrogate.")
    return value


def parse_reserve_ticket_input(raw: Any) -> ReserveTicketInput:
    """Validate a user id string or `{"userId": s, "discountTimeout": seconds}`."""
    if raw is None:
        raise InputError('ReserveTicket needs an input: a user id string, or {"userId": s}.')
    if isinstance(raw, Mapping):
        _object_fields(raw, ("userId", "discountTimeout"))
        if "userId" not in raw:
            raise InputError("'userId' is required.")
        timeout = raw.get("discountTimeout", DEFAULT_DISCOUNT_TIMEOUT_SECONDS)
        return ReserveTicketInput(
            user_id=_parse_user_id(raw["userId"]),
            discount_timeout_seconds=_whole_number(timeout, "discountTimeout", 1, MAX_TIMEOUT_SECONDS),
        )
    return ReserveTicketInput(user_id=_parse_user_id(raw))


def parse_set_status_test_input(raw: Any) -> SetStatusTestInput:
    """Validate nothing (defaults) or `{"stepDelaySeconds": n}`; 0 means no timer between steps."""
    if raw is None:
        return SetStatusTestInput()
    if not isinstance(raw, Mapping):
        raise InputError('SetStatusTest takes no input or {"stepDelaySeconds": n}.')
    _object_fields(raw, ("stepDelaySeconds",))
    delay = raw.get("stepDelaySeconds", DEFAULT_STEP_DELAY_SECONDS)
    return SetStatusTestInput(step_delay_seconds=_whole_number(delay, "stepDelaySeconds", 0, MAX_STEP_DELAY_SECONDS))


# The starter's catalogue: orchestrator name -> parser returning an object with `to_json()`.
STARTABLE: dict[str, Callable[[Any], CityRecommenderInput | ReserveTicketInput | SetStatusTestInput]] = {
    CITY_RECOMMENDER: parse_city_recommender_input,
    RESERVE_TICKET: parse_reserve_ticket_input,
    SET_STATUS_TEST: parse_set_status_test_input,
}
