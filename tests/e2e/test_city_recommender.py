"""CityRecommender end to end: recommendations in the status, then a selection or a timeout."""

from __future__ import annotations

import pytest

from tests.e2e.flows import start, wait_for_custom, wait_until_finished
from tests.hosts import RunningHost
from tests.http_client import request

EXPECTED = {
    1: (["Tokyo", "Seattle"], ["Spring", "Summer"]),
    2: (["Seattle", "London"], ["Summer"]),
    3: (["Tokyo", "London"], ["Spring", "Summer"]),
}


@pytest.mark.parametrize("choice", [1, 2, 3])
def test_recommendations_then_selection(host: RunningHost, choice: int) -> None:
    """Each choice shows its cities and seasons; selecting a recommended city completes with a refinement."""
    urls = start(host, "CityRecommender", choice)
    running = wait_for_custom(urls, "recommendedCities")
    cities, seasons = EXPECTED[choice]
    assert running["customStatus"]["recommendedCities"] == cities
    assert running["customStatus"]["recommendedSeasons"] == seasons

    reply = request("POST", host.api(f"recommendations/{urls['id']}/selection"), {"city": cities[-1]})
    assert reply.status == 202, reply.body
    final = wait_until_finished(urls)
    assert final["runtimeStatus"] == "Completed"
    assert final["customStatus"]["selectedCity"] == cities[-1]
    assert final["output"]["selectedCity"] == cities[-1]


def test_selection_outside_recommendations_is_refused(host: RunningHost) -> None:
    """A city the status does not recommend is refused with 400 and the instance keeps waiting."""
    urls = start(host, "CityRecommender", 2)
    wait_for_custom(urls, "recommendedCities")
    refused = request("POST", host.api(f"recommendations/{urls['id']}/selection"), {"city": "Tokyo"})
    assert refused.status == 400
    assert "Tokyo" in refused.json["error"]
    assert request("GET", urls["statusQueryGetUri"]).json["runtimeStatus"] == "Running"
    assert request("POST", host.api(f"recommendations/{urls['id']}/selection"), {"city": "Seattle"}).status == 202
    assert wait_until_finished(urls)["output"]["selectedCity"] == "Seattle"


def test_selection_times_out(host: RunningHost) -> None:
    """Without a selection the status says the selection expired."""
    urls = start(host, "CityRecommender", {"choice": 1, "selectionTimeoutSeconds": 1})
    wait_for_custom(urls, "recommendedCities")
    final = wait_until_finished(urls, timeout=20)
    assert final["customStatus"]["stage"] == "expired"
