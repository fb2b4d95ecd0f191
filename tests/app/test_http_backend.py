"""The HTTP functions against a stand-in for the extension's RPC endpoint.

This covers what validation alone cannot: 404/410/409 from the instance look-up, the exact bodies the
Python client sends (double-encoded), and that those bodies decode to what the orchestrators expect.
The same paths run against the real host in the end-to-end suite.
"""

import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import azure.functions as func
import pytest

from tests.app.conftest import Replay
from tests.app.http_support import (
    PUBLIC_BASE,
    FakeDurableBackend,
    FakeInstance,
    call,
    client_binding,
    http_request,
    running_backend,
)
from tests.history_builder import HistoryBuilder

AWAITING_SELECTION = {
    "stage": "awaiting-selection",
    "recommendedCities": ["Tokyo", "Seattle"],
    "recommendedSeasons": ["Spring", "Summer"],
    "selectionExpiresAt": "2024-05-01T13:00:00Z",
}


@pytest.fixture
def backend() -> Iterator[FakeDurableBackend]:
    """A fresh fake backend with a few instances in various states."""
    fake = FakeDurableBackend(
        instances={
            "rt-running": FakeInstance("ReserveTicket", custom_status={"discount": 15}),
            "rt-done": FakeInstance("ReserveTicket", "Completed", {"outcome": "confirmed"}, True),
            "rt-race": FakeInstance("ReserveTicket", raise_status=410),
            "cr-waiting": FakeInstance("CityRecommender", custom_status=AWAITING_SELECTION),
            "cr-pending": FakeInstance("CityRecommender", "Pending"),
            "cr-refining": FakeInstance(
                "CityRecommender", custom_status={"stage": "refining", "selectedCity": "Tokyo"}
            ),
            "cr-failed": FakeInstance("CityRecommender", "Failed", output="boom"),
            "sst-terminated": FakeInstance("SetStatusTest", "Terminated"),
        }
    )
    with running_backend(fake):
        yield fake


def invoke(
    functions: dict[str, func.Function],
    backend: FakeDurableBackend,
    function: str,
    method: str,
    route: str,
    route_params: dict[str, str],
    body: str | None = None,
) -> tuple[func.HttpResponse, Any]:
    """Call one HTTP function with a binding that points at the fake backend."""
    req = http_request(method, route, route_params=route_params, body=body)
    return call(functions[function], req, client_binding(backend.base_url))


def confirm(
    functions: dict[str, func.Function], backend: FakeDurableBackend, instance_id: str, body: str
) -> tuple[func.HttpResponse, Any]:
    """POST a confirmation body for `instance_id`."""
    return invoke(
        functions,
        backend,
        "confirm_reservation",
        "POST",
        f"reservations/{instance_id}/confirmation",
        {"instanceId": instance_id},
        body,
    )


def select(
    functions: dict[str, func.Function], backend: FakeDurableBackend, instance_id: str, body: str
) -> tuple[func.HttpResponse, Any]:
    """POST a selection body for `instance_id`."""
    return invoke(
        functions,
        backend,
        "select_city",
        "POST",
        f"recommendations/{instance_id}/selection",
        {"instanceId": instance_id},
        body,
    )


def test_start_passes_the_normalised_input(
    indexed_functions: dict[str, func.Function], backend: FakeDurableBackend
) -> None:
    """The starter answers with the check-status response and starts with the normalised input."""
    response, payload = invoke(
        indexed_functions,
        backend,
        "start_orchestration",
        "POST",
        "orchestrators/cityrecommender",
        {"functionName": "cityrecommender"},
        "2",
    )
    assert response.status_code == 202
    assert payload["id"] == "abc123"
    assert payload["statusQueryGetUri"].startswith(f"{PUBLIC_BASE}/runtime/webhooks/durabletask/instances/abc123?")
    assert response.headers["Location"] == payload["statusQueryGetUri"]
    ((method, path, body),) = backend.requests
    assert (method, path) == ("POST", "/durabletask/orchestrators/CityRecommender")
    # start_new POSTs df_dumps(input) as a JSON string: the input is double-encoded on the wire.
    assert json.loads(json.loads(body)) == {"choice": 2, "selectionTimeoutSeconds": 3600}


def test_start_without_body_uses_defaults(
    indexed_functions: dict[str, func.Function], backend: FakeDurableBackend
) -> None:
    """SetStatusTest may be started with an empty body; it gets its default input."""
    response, _ = invoke(
        indexed_functions,
        backend,
        "start_orchestration",
        "POST",
        "orchestrators/SetStatusTest",
        {"functionName": "SetStatusTest"},
    )
    assert response.status_code == 202
    assert json.loads(json.loads(backend.requests[0][2])) == {"stepDelaySeconds": 2}


@pytest.mark.parametrize("confirmed", [True, False])
def test_confirmation_raises_the_event_the_orchestrator_understands(
    indexed_functions: dict[str, func.Function], backend: FakeDurableBackend, replay: Replay, confirmed: bool
) -> None:
    """The raised BookingConfirmed body, stored as the extension stores it, replays to the right outcome."""
    response, payload = confirm(indexed_functions, backend, "rt-running", json.dumps({"confirmed": confirmed}))
    assert response.status_code == 202
    assert payload == {"instanceId": "rt-running", "event": "BookingConfirmed", "confirmed": confirmed}
    ((name, body),) = backend.raised_bodies()
    assert name == "BookingConfirmed"
    assert body == json.dumps(json.dumps(confirmed))

    builder = HistoryBuilder(input="u-1", name="ReserveTicket").started().scheduled("CalculateDiscount")
    builder.episode(after=timedelta(seconds=1)).completed(0, 10)
    builder.timer_created(replay(builder).last_timer()["fireAt"])
    # The extension parses the body as JSON and stores it re-serialised: the same text here.
    builder.episode(after=timedelta(seconds=1)).raised_text("BookingConfirmed", body)
    assert replay(builder).output is confirmed


@pytest.mark.parametrize(
    ("instance_id", "status"),
    [("nobody", 404), ("rt-done", 410), ("rt-race", 410), ("cr-waiting", 409), ("sst-terminated", 410)],
)
def test_confirmation_status_errors(
    indexed_functions: dict[str, func.Function], backend: FakeDurableBackend, instance_id: str, status: int
) -> None:
    """Unknown instance 404, finished (also when it finishes between look-up and raise) 410, wrong kind 409."""
    response, payload = confirm(indexed_functions, backend, instance_id, '{"confirmed": true}')
    assert response.status_code == status
    assert instance_id in payload["error"]
    if instance_id != "rt-race":
        assert backend.raised_bodies() == []


def test_selection_raises_the_canonical_city(
    indexed_functions: dict[str, func.Function], backend: FakeDurableBackend, replay: Replay
) -> None:
    """A recommended city (any case) is raised with its canonical spelling and replays to a refinement."""
    response, payload = select(indexed_functions, backend, "cr-waiting", '{"city": "seattle"}')
    assert response.status_code == 202
    assert payload == {"instanceId": "cr-waiting", "event": "UserSelection", "city": "Seattle"}
    ((name, body),) = backend.raised_bodies()
    assert (name, body) == ("UserSelection", json.dumps(json.dumps("Seattle")))

    builder = HistoryBuilder(input=1, name="CityRecommender").started()
    builder.timer_created(replay(builder).last_timer()["fireAt"])
    builder.episode(after=timedelta(seconds=1)).raised_text("UserSelection", body)
    assert replay(builder).custom_status == {"stage": "refining", "selectedCity": "Seattle"}


def test_selection_of_a_city_not_recommended(
    indexed_functions: dict[str, func.Function], backend: FakeDurableBackend
) -> None:
    """A city the instance does not currently recommend is a 400 that names the allowed cities."""
    response, payload = select(indexed_functions, backend, "cr-waiting", '{"city": "London"}')
    assert response.status_code == 400
    assert payload["allowedCities"] == ["Tokyo", "Seattle"]
    assert "Tokyo, Seattle" in payload["error"]
    assert backend.raised_bodies() == []


@pytest.mark.parametrize(
    ("instance_id", "status"),
    [("nobody", 404), ("cr-failed", 410), ("rt-running", 409), ("cr-refining", 409), ("cr-pending", 409)],
)
def test_selection_status_errors(
    indexed_functions: dict[str, func.Function], backend: FakeDurableBackend, instance_id: str, status: int
) -> None:
    """Unknown 404, finished 410, wrong kind or not (yet/any longer) awaiting a selection 409."""
    response, payload = select(indexed_functions, backend, instance_id, '{"city": "Tokyo"}')
    assert response.status_code == status
    assert instance_id in payload["error"]
    assert backend.raised_bodies() == []


def test_status_route_reports_the_instance(
    indexed_functions: dict[str, func.Function], backend: FakeDurableBackend
) -> None:
    """The status route returns the custom status and times of an instance, finished ones included."""
    response, payload = invoke(
        indexed_functions, backend, "get_instance_status", "GET", "instances/rt-done", {"instanceId": "rt-done"}
    )
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    assert payload == {
        "instanceId": "rt-done",
        "name": "ReserveTicket",
        "runtimeStatus": "Completed",
        "customStatus": {"outcome": "confirmed"},
        "output": True,
        "createdTime": "2024-05-01T12:00:00Z",
        "lastUpdatedTime": "2024-05-01T12:00:05Z",
    }


def test_status_route_unknown_instance(
    indexed_functions: dict[str, func.Function], backend: FakeDurableBackend
) -> None:
    """An instance the backend does not know is a JSON 404."""
    response, payload = invoke(
        indexed_functions, backend, "get_instance_status", "GET", "instances/nobody", {"instanceId": "nobody"}
    )
    assert response.status_code == 404
    assert "nobody" in payload["error"]


@pytest.mark.parametrize(
    ("function", "method", "route", "params", "body"),
    [
        ("start_orchestration", "POST", "orchestrators/SetStatusTest", {"functionName": "SetStatusTest"}, None),
        ("confirm_reservation", "POST", "reservations/rt-running/confirmation", {"instanceId": "rt-running"},
         '{"confirmed": true}'),
        ("select_city", "POST", "recommendations/cr-waiting/selection", {"instanceId": "cr-waiting"},
         '{"city": "Tokyo"}'),
        ("get_instance_status", "GET", "instances/rt-running", {"instanceId": "rt-running"}, None),
    ],
)
def test_storage_outage_is_a_503_with_retry_after(
    indexed_functions: dict[str, func.Function], backend: FakeDurableBackend, function: str, method: str,
    route: str, params: dict[str, str], body: str | None,
) -> None:
    """Row 6: while the backend's storage is down, every route answers 503 JSON with Retry-After, never 'None'."""
    backend.storage_down = True
    response, payload = invoke(indexed_functions, backend, function, method, route, params, body)
    assert response.status_code == 503, payload
    assert "unavailable" in payload["error"] and "None" not in payload["error"]
    assert response.headers["Retry-After"] == "5"
