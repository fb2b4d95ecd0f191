"""Validation of the HTTP functions: bad requests are refused before any call to the durable backend.

The client binding points at a loopback port that is bound but not listening, so a request that got as
far as the backend would end in 503 instead of the expected 4xx.
"""

from collections.abc import Iterator
from typing import Any

import azure.functions as func
import pytest

from tests.app.http_support import call, client_binding, http_request, unused_port


@pytest.fixture(scope="module")
def dead_binding() -> Iterator[str]:
    """A client binding whose rpcBaseUrl refuses connections."""
    sock = unused_port()
    try:
        yield client_binding(f"http://127.0.0.1:{sock.getsockname()[1]}/durabletask/")
    finally:
        sock.close()


def start(
    functions: dict[str, func.Function], binding: str, name: str, body: bytes | str | None
) -> tuple[func.HttpResponse, Any]:
    """POST /api/orchestrators/{name} with `body`."""
    req = http_request("POST", f"orchestrators/{name}", route_params={"functionName": name}, body=body)
    return call(functions["start_orchestration"], req, binding)


@pytest.mark.parametrize(
    ("name", "body", "status", "fragment"),
    [
        ("Nope", "1", 404, "Unknown orchestrator 'Nope'"),
        ("PerformAction", "{}", 404, "Known orchestrators: CityRecommender, ReserveTicket, SetStatusTest"),
        ("CityRecommender", "7", 400, "'choice' must be one of 1, 2, 3, got 7"),
        ("CityRecommender", "", 400, "needs an input"),
        ("CityRecommender", "{choice: 1}", 400, "not valid JSON"),
        ("CityRecommender", '{"choice": 1, "selectionTimeoutSeconds": -10}', 400, "between 1 and"),
        ("CityRecommender", b"\xff\xfe\x00", 400, "not UTF-8"),
        ("ReserveTicket", '""', 400, "'userId' must not be empty"),
        ("ReserveTicket", "12345", 400, "'userId' must be a string"),
        ("ReserveTicket", "", 400, "needs an input"),
        ("ReserveTicket", '{"userId": "u-1", "discountTimeout": -1}', 400, "between 1 and"),
        ("SetStatusTest", '{"stepDelaySeconds": -1}', 400, "between 0 and"),
        ("SetStatusTest", '"fast"', 400, "takes no input"),
        # Text no orchestration can carry, and JSON nested past what the extension's parser reads.
        ("ReserveTicket", '"\\ud800"', 400, "lone UTF-16 surrogate"),
        ("ReserveTicket", '{"userId": "a\\udfffb"}', 400, "lone UTF-16 surrogate"),
        ("SetStatusTest", "[" * 2000 + "]" * 2000, 400, "more than 64 deep"),
        ("CityRecommender", '{"a": "[[[[' + "[" * 100 + '"}', 400, "Unknown field"),
    ],
)
def test_starter_rejects_bad_requests(
    indexed_functions: dict[str, func.Function],
    dead_binding: str,
    name: str,
    body: str | bytes,
    status: int,
    fragment: str,
) -> None:
    """Unknown orchestrators are 404 and inputs the orchestrator would reject are 400, with a JSON error."""
    response, payload = start(indexed_functions, dead_binding, name, body)
    assert response.status_code == status
    assert response.mimetype == "application/json"
    assert set(payload) == {"error"}
    assert fragment in payload["error"]


def test_unreachable_backend_is_a_json_503(indexed_functions: dict[str, func.Function], dead_binding: str) -> None:
    """A valid start against a backend that is down answers 503 with a JSON error, not a traceback."""
    response, payload = start(indexed_functions, dead_binding, "SetStatusTest", "")
    assert response.status_code == 503
    assert "unavailable" in payload["error"]
    assert response.headers["Retry-After"] == "5"


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ("", "must be a JSON object"),
        ("true", "must be a JSON object"),
        ("[true]", "must be a JSON object"),
        ("{", "not valid JSON"),
        ("{}", "'confirmed' must be the JSON boolean"),
        ('{"confirmed": "false"}', "'confirmed' must be the JSON boolean"),
        ('{"confirmed": "true"}', "'confirmed' must be the JSON boolean"),
        ('{"confirmed": 1}', "'confirmed' must be the JSON boolean"),
        ('{"confirmed": true, "note": "\\udc00"}', "lone UTF-16 surrogate"),
        ("[" * 3000 + "]" * 3000, "more than 64 deep"),
    ],
)
def test_confirmation_rejects_bad_bodies(
    indexed_functions: dict[str, func.Function], dead_binding: str, body: str, fragment: str
) -> None:
    """Only {"confirmed": true|false} is accepted; strings such as "false" are refused outright."""
    req = http_request("POST", "reservations/i-1/confirmation", route_params={"instanceId": "i-1"}, body=body)
    response, payload = call(indexed_functions["confirm_reservation"], req, dead_binding)
    assert response.status_code == 400
    assert fragment in payload["error"]


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ("", "must be a JSON object"),
        ('"Tokyo"', "must be a JSON object"),
        ("{}", "'city' must be a non-empty string"),
        ('{"city": "  "}', "'city' must be a non-empty string"),
        ('{"city": 3}', "'city' must be a non-empty string"),
        ("not json", "not valid JSON"),
        ('{"city": "\\ud800"}', "lone UTF-16 surrogate"),
        ('{"city": ' + "[" * 1500 + "]" * 1500 + "}", "more than 64 deep"),
    ],
)
def test_selection_rejects_bad_bodies(
    indexed_functions: dict[str, func.Function], dead_binding: str, body: str, fragment: str
) -> None:
    """The selection body must be {"city": "<name>"}."""
    req = http_request("POST", "recommendations/i-1/selection", route_params={"instanceId": "i-1"}, body=body)
    response, payload = call(indexed_functions["select_city"], req, dead_binding)
    assert response.status_code == 400
    assert fragment in payload["error"]


@pytest.mark.parametrize(
    ("function", "route"),
    [
        ("get_instance_status", "instances/{id}"),
        ("confirm_reservation", "reservations/{id}/confirmation"),
        ("select_city", "recommendations/{id}/selection"),
    ],
)
@pytest.mark.parametrize("instance_id", ["@counter@c1", "a\x01b", "x" * 257, " ", "%2F", "a+b"])
def test_malformed_instance_ids_are_rejected(
    indexed_functions: dict[str, func.Function], dead_binding: str, function: str, route: str, instance_id: str
) -> None:
    """Instance ids that no orchestration can have are a 400 before any look-up."""
    method = "GET" if function == "get_instance_status" else "POST"
    body = '{"confirmed": true}' if function == "confirm_reservation" else '{"city": "Tokyo"}'
    req = http_request(method, route.format(id="x"), route_params={"instanceId": instance_id}, body=body)
    response, payload = call(indexed_functions[function], req, dead_binding)
    assert response.status_code == 400
    assert "instance id" in payload["error"]
