"""`GET instances/{id}`: status codes, headers, the status object and `historyEvents` (spec §2.2, §3.1, §3.2)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from urllib.parse import quote

import pytest

from tests.conformance.support import (
    HISTORY_TIME,
    JSON_CONTENT_TYPE,
    STATUS_FIELDS,
    STATUS_TIME,
    DurableApi,
    new_id,
    request,
)
from tests.hosts import RunningHost


@dataclass
class Instances:
    """Instances this module only reads, started together so their waits overlap."""

    completed: str  # SetStatusTest, three activities, Completed
    expired: str  # ReserveTicket whose 1-s offer timed out: activity, timer, Completed with output false
    confirmed: str  # ReserveTicket confirmed by a raised event
    failed: str  # CityRecommender with an invalid choice: Failed
    running: str  # ReserveTicket waiting for BookingConfirmed


@pytest.fixture(scope="module")
def instances(host: RunningHost) -> Instances:
    api = DurableApi(host, "webhook")
    made = Instances(
        completed=api.start("SetStatusTest", {"stepDelaySeconds": 0}, new_id()),
        expired=api.start("ReserveTicket", {"userId": "history-user", "discountTimeout": 1}, new_id()),
        confirmed=api.start("ReserveTicket", {"userId": "event-user", "discountTimeout": 600}, new_id()),
        failed=api.start("CityRecommender", 7, new_id()),
        running=api.start("ReserveTicket", {"userId": "waiting-user", "discountTimeout": 600}, new_id()),
    )
    api.wait_custom(made.confirmed, "discount")
    assert api.post(f"instances/{made.confirmed}/raiseEvent/BookingConfirmed", {"confirmed": True}).status == 202
    api.wait_custom(made.running, "discount")
    api.wait_all([made.completed, made.expired, made.confirmed], "Completed")
    api.wait_status(made.failed, "Failed")
    return made


def test_completed_status_object_fields_order_and_values(api: DurableApi, instances: Instances) -> None:
    """A Completed instance answers 200 with the eight fields in the extension's order and JSON values."""
    reply = api.status(instances.completed)
    assert reply.status == 200
    assert reply.header("Content-Type") == JSON_CONTENT_TYPE
    assert reply.header("Location") is None and reply.header("Retry-After") is None
    body = reply.json
    assert list(body) == STATUS_FIELDS
    assert body["name"] == "SetStatusTest" and body["instanceId"] == instances.completed
    assert body["runtimeStatus"] == "Completed"
    assert body["input"] == {"stepDelaySeconds": 0}
    assert body["customStatus"]["completedActions"] == ["A", "B", "C"] and body["customStatus"]["progress"] == 1.0
    assert body["output"]["completedActions"] == ["A", "B", "C"]
    assert STATUS_TIME.match(body["createdTime"]) and STATUS_TIME.match(body["lastUpdatedTime"])
    assert body["createdTime"] <= body["lastUpdatedTime"]


def test_status_body_is_compact_json(webhook: DurableApi, instances: Instances) -> None:
    """Bodies are Newtonsoft-style compact JSON: no blanks after separators, nulls written out."""
    reply = webhook.status(instances.running)
    assert reply.body == json.dumps(reply.json, separators=(",", ":"), ensure_ascii=False).encode()
    assert b'"output":null' in reply.body


def test_running_is_202_with_location_and_retry_after(api: DurableApi, instances: Instances) -> None:
    """A Running instance answers 202, `Location` = the request URL as received, and `Retry-After: 5`."""
    url = api.url(f"instances/{instances.running}") + "?showInput=true&note=a%2Bb%20c+d&&x"  # kept verbatim
    reply = request("GET", url)
    assert reply.status == 202
    assert reply.header("Location") == url
    assert reply.header("Retry-After") == "5"
    body = reply.json
    assert list(body) == STATUS_FIELDS
    assert body["runtimeStatus"] == "Running" and body["output"] is None
    assert body["input"] == {"userId": "waiting-user", "discountTimeout": 600}
    assert body["customStatus"]["bookingUrl"] == "https://www.myawesomebookingweb.com"


def test_unknown_instance_is_404_with_empty_body(api: DurableApi) -> None:
    """An instance id nobody started answers 404 with no body at all."""
    reply = api.status(new_id("nobody"), showHistory="true")
    assert reply.status == 404
    assert reply.body == b""


def test_show_input_false_hides_input_everywhere(api: DurableApi, instances: Instances) -> None:
    """`showInput=false` gives `"input": null` and drops every `Input` member from the history."""
    hidden = api.status(instances.expired, showInput="false", showHistory="true", showHistoryOutput="true").json
    assert list(hidden) == [*STATUS_FIELDS, "historyEvents"] and hidden["input"] is None
    assert hidden["historyEvents"] and all("Input" not in event for event in hidden["historyEvents"])
    shown = api.status(instances.expired, showHistory="true").json
    assert shown["input"] == {"userId": "history-user", "discountTimeout": 1}
    assert all("Input" in event for event in shown["historyEvents"]
               if event["EventType"] in ("ExecutionStarted", "TaskCompleted"))


def test_boolean_flags_parse_like_dotnet(webhook: DurableApi, instances: Instances) -> None:
    """Flags take `true`/`True`/`FALSE` in any case; anything else falls back to the default."""
    iid = instances.completed
    assert webhook.status(iid, showInput="FALSE").json["input"] is None
    assert webhook.status(iid, showInput="False").json["input"] is None
    assert webhook.status(iid, showInput="no").json["input"] == {"stepDelaySeconds": 0}
    assert "historyEvents" in webhook.status(iid, showHistory="True").json
    assert "historyEvents" in webhook.status(iid, SHOWHISTORY="TRUE").json  # query names ignore case
    assert "historyEvents" not in webhook.status(iid, showHistory="1").json
    assert "historyEvents" not in webhook.status(iid).json


def test_history_events_in_extension_shape(api: DurableApi, instances: Instances) -> None:
    """`historyEvents` has the extension's renaming and pruning; `Result` appears only with showHistoryOutput."""
    plain = api.status(instances.expired, showHistory="true").json
    with_output = api.status(instances.expired, showHistory="true", showHistoryOutput="true").json
    for body in (plain, with_output):
        events = body["historyEvents"]
        assert list(body) == [*STATUS_FIELDS, "historyEvents"]
        kinds = [event["EventType"] for event in events]
        assert kinds == ["ExecutionStarted", "TaskCompleted", "TimerCreated", "TimerFired", "ExecutionCompleted"]
        for event in events:
            assert "EventId" not in event and "IsPlayed" not in event
            assert HISTORY_TIME.match(event["Timestamp"]), event
        started, completed, created, fired, finished = events
        assert started["FunctionName"] == "ReserveTicket"
        for dropped in ("Name", "OrchestrationInstance", "ParentInstance", "Version", "Tags"):
            assert dropped not in started
        assert isinstance(started["Input"], str)  # raw JSON text, not re-parsed
        assert json.loads(started["Input"]) == {"userId": "history-user", "discountTimeout": 1}
        assert completed["FunctionName"] == "CalculateDiscount"
        assert HISTORY_TIME.match(completed["ScheduledTime"])
        assert completed["ScheduledTime"] <= completed["Timestamp"]
        assert "Input" in completed and "TaskScheduledId" not in completed
        assert HISTORY_TIME.match(created["FireAt"]) and fired["FireAt"] == created["FireAt"]
        assert "TimerId" not in fired
        assert finished["OrchestrationStatus"] == "Completed"
    assert "Result" not in plain["historyEvents"][1] and "Result" not in plain["historyEvents"][-1]
    discount = with_output["historyEvents"][1]["Result"]
    assert isinstance(discount, int) and 5 <= discount <= 30  # parsed JSON, not JSON text
    assert with_output["historyEvents"][-1]["Result"] is False


def test_history_keeps_events_raised(webhook: DurableApi, instances: Instances) -> None:
    """A raised event shows as `EventRaised` with its name and raw JSON input text; matched TaskScheduled go."""
    events = webhook.status(instances.confirmed, showHistory="true").json["historyEvents"]
    raised = [event for event in events if event["EventType"] == "EventRaised"]
    assert len(raised) == 1 and raised[0]["Name"] == "BookingConfirmed"
    assert isinstance(raised[0]["Input"], str) and json.loads(raised[0]["Input"]) == {"confirmed": True}
    kinds = [event["EventType"] for event in events]
    assert "TaskScheduled" not in kinds and "OrchestratorStarted" not in kinds and "OrchestratorCompleted" not in kinds
    assert webhook.status(instances.confirmed).json["output"] is True


def test_history_is_never_shown_for_running_without_asking(webhook: DurableApi, instances: Instances) -> None:
    """A Running instance's history lists what happened so far, and nothing is added without showHistory."""
    assert "historyEvents" not in webhook.status(instances.running).json
    reply = webhook.status(instances.running, showHistory="true")
    assert reply.status == 202
    kinds = [event["EventType"] for event in reply.json["historyEvents"]]
    assert kinds == ["ExecutionStarted", "TaskCompleted", "TimerCreated"]


def test_failed_instance_status_and_server_error_flag(api: DurableApi, instances: Instances) -> None:
    """A Failed instance answers 200 (500 with returnInternalServerErrorOnFailure) and its output is the reason."""
    iid = instances.failed
    reply = api.status(iid)
    assert reply.status == 200
    body = reply.json
    assert list(body) == STATUS_FIELDS and body["runtimeStatus"] == "Failed"
    assert body["input"] == 7
    assert body["output"] == "Orchestrator function 'CityRecommender' failed: 'choice' must be one of 1, 2, 3, got 7."
    assert body["customStatus"] == {"stage": "invalid-input", "error": "'choice' must be one of 1, 2, 3, got 7."}
    flagged = api.status(iid, returnInternalServerErrorOnFailure="true")
    assert flagged.status == 500 and flagged.json == body
    assert flagged.header("Content-Type") == JSON_CONTENT_TYPE
    assert api.status(iid, returnInternalServerErrorOnFailure="false").status == 200
    finished = api.status(iid, showHistory="true", showHistoryOutput="true").json["historyEvents"][-1]
    assert finished["EventType"] == "ExecutionCompleted" and finished["OrchestrationStatus"] == "Failed"
    assert finished["Result"] == body["output"]


def test_server_error_flag_leaves_other_states_alone(webhook: DurableApi, instances: Instances) -> None:
    """returnInternalServerErrorOnFailure changes nothing for Completed (200) or Running (202) instances."""
    assert webhook.status(instances.completed, returnInternalServerErrorOnFailure="true").status == 200
    assert webhook.status(instances.running, returnInternalServerErrorOnFailure="true").status == 202


def test_values_render_as_json_and_plain_text_stays_a_string(webhook: DurableApi) -> None:
    """Output is `ParseToJToken`ed: JSON text becomes its value, text that is not JSON stays a string."""
    cases = {"user left": "user left", "123": 123, '{"a": [1, null]}': {"a": [1, None]}, "true": True,
             '"quoted"': "quoted", "   ": "", "{not json": "{not json"}
    started = {webhook.start("CityRecommender", 1, new_id()): reason for reason in cases}
    for iid, reason in started.items():
        assert webhook.post(f"instances/{iid}/terminate", query={"reason": reason}).status == 202
    for iid, reason in started.items():
        body = webhook.wait_status(iid, "Terminated")
        assert body["output"] == cases[reason], (reason, body)
    string_input = webhook.start("CityRecommender", "2", new_id())  # a JSON string input stays a string
    assert webhook.wait_custom(string_input, "recommendedCities")["input"] == "2"
    assert webhook.post(f"instances/{string_input}/terminate").status == 202
    assert webhook.wait_status(string_input, "Terminated")["output"] is None  # no reason: null


def test_ignores_list_filters_when_an_id_is_given(webhook: DurableApi, instances: Instances) -> None:
    """createdTimeFrom/To and runtimeStatus do not filter a single-instance status request."""
    reply = webhook.status(instances.completed, runtimeStatus="Running", createdTimeFrom="2100-01-01T00:00:00Z")
    assert reply.status == 200 and reply.json["instanceId"] == instances.completed


def test_percent_encoded_instance_ids_are_decoded_once(api: DurableApi) -> None:
    """Path segments are URL-decoded once (`%2B` is a plus, `%25` a percent sign), so such ids round-trip."""
    iid = new_id("a+b%41")  # sent as a%2Bb%2541-...
    assert api.start("CityRecommender", 1, iid) == iid
    body = api.wait_custom(iid, "recommendedCities")
    assert body["instanceId"] == iid
    assert api.post(f"instances/{quote(iid, safe='')}/terminate").status == 202


def test_encoded_slash_in_an_id_splits_the_path(webhook: DurableApi, instances: Instances) -> None:
    """The whole path is decoded before routing, so `%2F` in an id is a separator and the route is unknown."""
    reply = webhook.post(f"instances/{instances.completed}%2Fx/terminate")
    assert reply.status == 404 and not reply.body


def test_plus_in_a_path_segment_is_a_space(webhook: DurableApi) -> None:
    """As `WebUtility.UrlDecode` does, a literal `+` in the path means a space."""
    iid = new_id("plus sign")
    webhook.start("SetStatusTest", {"stepDelaySeconds": 0}, iid)
    reply = webhook.get(f"instances/{iid.replace(' ', '+')}")
    assert reply.status in (200, 202) and reply.json["instanceId"] == iid
