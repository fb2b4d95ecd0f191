"""`GET instances`: filters, `showInput`, `top` and continuation paging, and injection safety (spec §2.3)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import pytest

from tests.conformance.support import STATUS_FIELDS, STATUS_TIME, DurableApi, Reply
from tests.hosts import RunningHost

TOKEN = "x-ms-continuation-token"
INJECTION = "x' or PartitionKey ne '"


@dataclass
class Population:
    """Five instances sharing one prefix, in four runtime states, created between `before` and `after`."""

    prefix: str
    by_status: dict[str, list[str]]
    before: datetime
    after: datetime

    @property
    def all_ids(self) -> set[str]:
        return {iid for ids in self.by_status.values() for iid in ids}


@pytest.fixture(scope="module")
def population(host: RunningHost) -> Population:
    api = DurableApi(host, "webhook")
    prefix = f"q{uuid.uuid4().hex[:10]}-"
    before = datetime.now(UTC) - timedelta(seconds=1)
    completed = [api.start("SetStatusTest", {"stepDelaySeconds": 0}, f"{prefix}done-{n}") for n in range(2)]
    running = api.start("CityRecommender", 1, f"{prefix}running")
    failed = api.start("CityRecommender", 9, f"{prefix}failed")
    terminated = api.start("CityRecommender", 2, f"{prefix}terminated")
    assert api.post(f"instances/{terminated}/terminate", query={"reason": "stop"}).status == 202
    api.wait_all(completed, "Completed")
    api.wait_custom(running, "recommendedCities")
    api.wait_status(failed, "Failed")
    api.wait_status(terminated, "Terminated")
    after = datetime.now(UTC) + timedelta(seconds=1)
    return Population(prefix, {"Completed": completed, "Running": [running], "Failed": [failed],
                               "Terminated": [terminated]}, before, after)


def listing(api: DurableApi, query: Any, path: str = "instances", headers: dict[str, str] | None = None) -> Reply:
    reply = api.get(path, query, headers=headers)
    assert reply.status == 200, reply
    assert isinstance(reply.json, list)
    return reply


def ids(reply: Reply) -> set[str]:
    found = [item["instanceId"] for item in reply.json]
    assert len(found) == len(set(found)), found
    return set(found)


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")  # what the Python SDK sends


def test_prefix_lists_every_instance_with_status_fields(api: DurableApi, population: Population) -> None:
    """The prefix filter returns exactly the population; items are status objects without history."""
    reply = listing(api, {"instanceIdPrefix": population.prefix, "showHistory": "true"})
    assert ids(reply) == population.all_ids
    assert reply.header("Content-Type") == "application/json; charset=utf-8"
    assert not reply.header(TOKEN)  # one page: no token, or an empty one
    for item in reply.json:
        assert list(item) == STATUS_FIELDS
        assert STATUS_TIME.match(item["createdTime"]) and STATUS_TIME.match(item["lastUpdatedTime"])
    by_id = {item["instanceId"]: item for item in reply.json}
    assert by_id[f"{population.prefix}running"]["runtimeStatus"] == "Running"
    assert by_id[f"{population.prefix}running"]["customStatus"]["recommendedCities"] == ["Tokyo", "Seattle"]
    assert by_id[f"{population.prefix}terminated"]["output"] == "stop"
    assert by_id[f"{population.prefix}done-0"]["input"] == {"stepDelaySeconds": 0}


def test_trailing_slash_lists_too(webhook: DurableApi, population: Population) -> None:
    """`GET instances/` is the same listing as `GET instances`."""
    assert ids(listing(webhook, {"instanceIdPrefix": population.prefix}, "instances/")) == population.all_ids


@pytest.mark.parametrize(
    ("runtime_status", "expected"),
    [
        ([("runtimeStatus", "Running")], ["Running"]),
        ([("runtimeStatus", "Completed,Terminated")], ["Completed", "Terminated"]),
        ([("runtimeStatus", "Completed"), ("runtimeStatus", "Failed")], ["Completed", "Failed"]),
        ([("RUNTIMESTATUS", "Failed")], ["Failed"]),  # the parameter name ignores case
        ([("runtimeStatus", "1")], ["Completed"]),  # numeric enum values parse too
        ([("runtimeStatus", "Completed,bogus")], ["Completed"]),
        ([("runtimeStatus", "running")], ["Completed", "Running", "Failed", "Terminated"]),  # dropped: no filter
        ([("runtimeStatus", "Pending,Suspended")], []),
    ],
)
def test_runtime_status_filter(api: DurableApi, population: Population, runtime_status: list[tuple[str, str]],
                               expected: list[str]) -> None:
    """runtimeStatus takes a comma list or repeated parameters of case-sensitive names (unparsable ones drop)."""
    reply = listing(api, [("instanceIdPrefix", population.prefix), *runtime_status])
    want = {iid for status in expected for iid in population.by_status[status]}
    assert ids(reply) == want
    assert {item["runtimeStatus"] for item in reply.json} == set(expected)


def test_created_time_window(api: DurableApi, population: Population) -> None:
    """createdTimeFrom/createdTimeTo bound the creation time, in the SDK's and in seconds-only formats."""
    prefix = {"instanceIdPrefix": population.prefix}
    inside = {**prefix, "createdTimeFrom": iso(population.before), "createdTimeTo": iso(population.after)}
    assert ids(listing(api, inside)) == population.all_ids
    seconds = {**prefix, "createdTimeFrom": population.before.strftime("%Y-%m-%dT%H:%M:%SZ")}
    assert ids(listing(api, seconds)) == population.all_ids
    assert listing(api, {**prefix, "createdTimeFrom": iso(population.after)}).json == []
    assert listing(api, {**prefix, "createdTimeTo": iso(population.before)}).json == []
    garbage = {**prefix, "createdTimeFrom": "not a date"}  # unparsable values are ignored
    assert ids(listing(api, garbage)) == population.all_ids


def test_show_input_false_nulls_inputs(api: DurableApi, population: Population) -> None:
    """showInput=false lists every item with `"input": null`; the default shows inputs."""
    hidden = listing(api, {"instanceIdPrefix": population.prefix, "showInput": "false"})
    assert ids(hidden) == population.all_ids
    assert all(item["input"] is None and list(item) == STATUS_FIELDS for item in hidden.json)
    shown = listing(api, {"instanceIdPrefix": population.prefix})
    assert all(item["input"] is not None for item in shown.json)


def test_top_and_continuation_token(api: DurableApi, population: Population) -> None:
    """`top` bounds each page; the response token, sent back as a request header, walks every item once."""
    seen: list[str] = []
    token: str | None = None
    pages = 0
    while True:
        reply = listing(api, {"instanceIdPrefix": population.prefix, "top": "2"},
                        headers={TOKEN: token} if token else None)
        pages += 1
        assert len(reply.json) <= 2
        seen += [item["instanceId"] for item in reply.json]
        token = reply.header(TOKEN)
        if not token:
            break
        assert pages < 10
    assert sorted(seen) == sorted(population.all_ids)
    assert pages >= 3


def test_unknown_prefix_is_an_empty_list(api: DurableApi) -> None:
    """A prefix nothing starts with gives 200 and `[]`."""
    assert listing(api, {"instanceIdPrefix": f"none-{uuid.uuid4().hex}"}).json == []


def test_quotes_in_ids_and_prefixes_are_not_injected(api: DurableApi, population: Population) -> None:
    """An id or prefix holding an OData fragment matches nothing: 404 / `[]`, never an error or extra rows."""
    assert api.status(INJECTION).status == 404
    assert api.status(f"{population.prefix}running' or RowKey eq '").status == 404
    assert listing(api, {"instanceIdPrefix": INJECTION}).json == []
    assert listing(api, {"instanceIdPrefix": "'"}).json == []
    assert listing(api, {"instanceIdPrefix": f"{population.prefix}' or PartitionKey ne '"}).json == []
    assert api.post(f"instances/{quote(INJECTION, safe='')}/terminate").status == 404
    assert api.delete(f"instances/{quote(INJECTION, safe='')}").status == 404
    status_injection = listing(api, {"instanceIdPrefix": population.prefix, "runtimeStatus": "Running' or '1' eq '1"})
    assert ids(status_injection) == population.all_ids  # an unparsable status is dropped, not spliced in
    assert api.status(f"{population.prefix}running").status == 202  # the population is untouched
