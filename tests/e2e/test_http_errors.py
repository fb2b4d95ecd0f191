"""The 4xx answers of the app's routes and of the built-in Durable HTTP API."""

from __future__ import annotations

import pytest

from tests.e2e.flows import start, wait_for_custom, wait_until_finished
from tests.hosts import RunningHost
from tests.http_client import request


@pytest.mark.parametrize(
    ("name", "payload", "status"),
    [("NoSuchOrchestrator", 1, 404), ("CityRecommender", 7, 400), ("ReserveTicket", "", 400)],
)
def test_starter_rejects_bad_requests(host: RunningHost, name: str, payload: object, status: int) -> None:
    """Unknown orchestrators and inputs the orchestrator would reject get a JSON error, and nothing starts."""
    reply = request("POST", host.api(f"orchestrators/{name}"), payload)
    assert reply.status == status
    assert reply.json["error"]


def test_starter_rejects_malformed_json(host: RunningHost) -> None:
    """A body that is not JSON is a 400 that says so."""
    reply = request("POST", host.api("orchestrators/CityRecommender"), raw=b"{choice: 1")
    assert reply.status == 400
    assert "JSON" in reply.json["error"]


def test_unknown_instance_is_404(host: RunningHost) -> None:
    """The app's status route, raisers and the built-in API answer 404 for an unknown instance."""
    assert request("GET", host.api("instances/does-not-exist")).status == 404
    assert request("POST", host.api("reservations/does-not-exist/confirmation"), {"confirmed": True}).status == 404
    assert request("POST", host.api("recommendations/does-not-exist/selection"), {"city": "Tokyo"}).status == 404
    durable = request("GET", host.durable("instances/does-not-exist"))
    assert durable.status == 404 and durable.body == b""


def test_status_route_reads_through_client(host: RunningHost) -> None:
    """GET /api/instances/{id} reports the instance through the client SDK's get_status."""
    urls = start(host, "CityRecommender", 1)
    wait_for_custom(urls, "recommendedCities")
    reply = request("GET", host.api(f"instances/{urls['id']}"))
    assert reply.status == 200
    body = reply.json
    assert body["instanceId"] == urls["id"] and body["name"] == "CityRecommender"
    assert body["runtimeStatus"] == "Running"
    assert body["customStatus"]["recommendedCities"] == ["Tokyo", "Seattle"]


def test_bad_raiser_bodies_are_400(host: RunningHost) -> None:
    """Raisers refuse bodies of the wrong shape before touching the instance."""
    urls = start(host, "ReserveTicket", "user-bad")
    wait_for_custom(urls, "discount")
    assert request("POST", host.api(f"reservations/{urls['id']}/confirmation"), {"confirmed": "maybe"}).status == 400
    assert request("POST", host.api(f"reservations/{urls['id']}/confirmation"), raw=b"nope").status == 400
    request("POST", host.api(f"reservations/{urls['id']}/confirmation"), {"confirmed": True})
    wait_until_finished(urls)


def test_durable_api_raise_event_codes(host: RunningHost) -> None:
    """The built-in raiseEvent answers 400 for non-JSON, 202 while running and 410 once finished."""
    urls = start(host, "ReserveTicket", "user-api")
    wait_for_custom(urls, "discount")
    raise_url = urls["sendEventPostUri"].replace("{eventName}", "BookingConfirmed")
    assert request("POST", raise_url, raw=b"not json").status == 400
    assert request("POST", raise_url, raw=b"true", content_type="text/plain").status == 400
    assert request("POST", raise_url, raw=b"").status == 400
    assert request("POST", raise_url, True).status == 202
    wait_until_finished(urls)
    gone = request("POST", raise_url, True)
    assert gone.status == 410 and gone.body == b""


def test_durable_api_status_codes_and_headers(host: RunningHost) -> None:
    """Running answers 202 with Location and Retry-After; finished answers 200; terminate twice is 410."""
    urls = start(host, "CityRecommender", 2)
    running = wait_for_custom(urls, "recommendedCities")
    reply = request("GET", urls["statusQueryGetUri"])
    assert reply.status == 202 and reply.header("Retry-After") == "5"
    assert reply.header("Location") == urls["statusQueryGetUri"]
    assert list(reply.json)[:8] == ["name", "instanceId", "runtimeStatus", "input", "customStatus", "output",
                                    "createdTime", "lastUpdatedTime"]
    assert running["createdTime"].endswith("Z") and len(running["createdTime"]) == 20
    terminate = urls["terminatePostUri"].replace("{text}", "done")
    assert request("POST", terminate).status == 202
    final = wait_until_finished(urls)
    assert final["runtimeStatus"] == "Terminated" and final["output"] == "done"
    assert request("POST", terminate).status == 410


def test_durable_api_start_and_wait(host: RunningHost) -> None:
    """POST orchestrators/{name} on the built-in API starts an instance; wait mode returns its output."""
    reply = request("POST", host.durable("orchestrators/SetStatusTest?timeout=20&pollingInterval=1"),
                 {"stepDelaySeconds": 0})
    assert reply.status == 200, reply.body
    assert reply.json["completedActions"] == ["A", "B", "C"]
    started = request("POST", host.durable("orchestrators/CityRecommender"), raw=b"{bad")
    assert started.status == 400 and started.json["Message"] == "Invalid JSON content"
