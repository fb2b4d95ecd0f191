"""Instance operations: raise event, terminate, suspend/resume, rewind, restart, purge, entities (spec §2.4-§2.13)."""

from __future__ import annotations

import json
import re
import time
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

from azure.data.tables import TableServiceClient
from azure.storage.blob import BlobServiceClient

from tests.conformance.support import JSON_CONTENT_TYPE, DurableApi, assert_check_status, new_id, request
from tests.hosts import RunningHost

EVENT = "BookingConfirmed"


def still_for(api: DurableApi, instance_id: str, seconds: float, status: str) -> dict[str, Any]:
    """Check the instance keeps `status` for `seconds` (the one deliberate wait of this suite)."""
    deadline = time.monotonic() + seconds
    body = api.status(instance_id).json
    while time.monotonic() < deadline:
        time.sleep(0.1)
        body = api.status(instance_id).json
        assert body["runtimeStatus"] == status, body
    return body


# -- raise event -----------------------------------------------------------------------------------
def test_raise_event_codes_and_bodies(api: DurableApi) -> None:
    """raiseEvent: 202 empty; 400 for non-JSON, non-application/json and empty bodies; 404 unknown; 410 finished."""
    iid = api.waiting_ticket()
    path = f"instances/{iid}/raiseEvent/{EVENT}"
    not_json = api.post(path, raw=b"not json", content_type="application/json")
    assert not_json.status == 400 and not_json.json["Message"] == "Invalid JSON content"
    assert not_json.header("Content-Type") == JSON_CONTENT_TYPE
    wrong_type = api.post(path, raw=b"true", content_type="text/plain")
    assert wrong_type.status == 400
    assert wrong_type.json == {"Message": "Only application/json request content is supported"}
    empty = api.post(path, raw=b"", content_type="application/json")
    assert empty.status == 400 and empty.json["Message"] == "Invalid JSON content"
    assert api.status(iid).json["runtimeStatus"] == "Running"  # none of these reached the instance
    accepted = api.post(path, raw=b'{"confirmed": true}', content_type="Application/JSON; charset=utf-8")
    assert accepted.status == 202 and accepted.body == b""
    assert api.wait_status(iid, "Completed")["output"] is True
    gone = api.post(path, True)
    assert gone.status == 410 and gone.body == b""
    assert api.post(path, raw=b"not json", content_type="text/plain").status == 410  # state is checked first
    unknown = api.post(f"instances/{new_id('nobody')}/raiseEvent/{EVENT}", True)
    assert unknown.status == 404 and unknown.body == b""
    assert api.post(f"instances/{new_id('nobody')}/raiseEvent/{EVENT}", raw=b"", content_type=None).status == 404


def test_raise_event_delivers_the_json_value_and_names_are_case_sensitive(webhook: DurableApi) -> None:
    """The orchestrator gets the raw JSON value sent; an event name in another case is a different event."""
    iid = webhook.waiting_ticket()
    assert webhook.post(f"instances/{iid}/raiseEvent/bookingconfirmed", {"confirmed": False}).status == 202
    assert webhook.post(f"instances/{iid}/raiseEvent/{EVENT}", {"confirmed": True}).status == 202
    body = webhook.wait_status(iid, "Completed")
    assert body["output"] is True
    assert body["customStatus"]["message"] == "Thank you for confirming your booking."


def test_raise_event_without_a_name_or_with_get_is_404(webhook: DurableApi) -> None:
    """`raiseEvent` needs an event name and POST; other shapes of the route match nothing."""
    iid = webhook.waiting_ticket()
    assert webhook.post(f"instances/{iid}/raiseEvent", True).status == 404
    assert webhook.get(f"instances/{iid}/raiseEvent/{EVENT}").status == 404
    assert webhook.post(f"instances/{iid}/frobnicate").status == 404
    assert webhook.get(f"instances/{iid}/terminate").status == 404
    assert webhook.status(iid).json["runtimeStatus"] == "Running"
    assert webhook.post(f"instances/{iid}/terminate").status == 202


# -- terminate -------------------------------------------------------------------------------------
def test_terminate_with_reason(api: DurableApi) -> None:
    """terminate: 202 empty; the instance ends Terminated with the reason as output; then 410; unknown 404."""
    iid = api.waiting_ticket()
    reply = api.post(f"instances/{iid}/terminate", query={"reason": "user left the site"})
    assert reply.status == 202 and reply.body == b""
    body = api.wait_status(iid, "Terminated")
    assert body["output"] == "user left the site" and api.status(iid).status == 200
    assert "discount" in body["customStatus"]  # the last custom status stays
    events = api.status(iid, showHistory="true").json["historyEvents"]
    assert events[-1]["EventType"] == "ExecutionCompleted" and events[-1]["OrchestrationStatus"] == "Terminated"
    terminated = [e for e in events if e["EventType"] == "ExecutionTerminated"]
    assert len(terminated) == 1 and terminated[0]["Input"] == "user left the site"
    again = api.post(f"instances/{iid}/terminate", query={"reason": "again"})
    assert again.status == 410 and again.body == b""
    unknown = api.post(f"instances/{new_id('nobody')}/terminate", query={"reason": "x"})
    assert unknown.status == 404 and unknown.body == b""


def test_terminate_reason_plus_is_a_space(webhook: DurableApi) -> None:
    """Query values are form-decoded: `reason=a+b%2Bc` is `a b+c`."""
    iid = webhook.waiting_ticket()
    url = webhook.url(f"instances/{iid}/terminate") + "?reason=a+b%2Bc"
    assert request("POST", url, raw=b"", content_type=None).status == 202
    assert webhook.wait_status(iid, "Terminated")["output"] == "a b+c"


# -- suspend / resume ------------------------------------------------------------------------------
def test_suspend_and_resume_codes(api: DurableApi) -> None:
    """suspend/resume: 202 each; suspending a Suspended or resuming a Running instance is 500; 404; 410."""
    iid = api.waiting_ticket()
    resume_running = api.post(f"instances/{iid}/resume", query={"reason": "not suspended"})
    assert resume_running.status == 500
    assert resume_running.json["Message"] == "Something went wrong while processing your request"
    suspended = api.post(f"instances/{iid}/suspend", query={"reason": "hold on"})
    assert suspended.status == 202 and suspended.body == b""
    api.wait_status(iid, "Suspended")
    reply = api.status(iid)
    assert reply.status == 202 and reply.header("Retry-After") == "5"
    # The Azure Storage provider writes the suspend/resume reason into the Output column
    # (AzureTableTrackingStore: ExecutionSuspended/ExecutionResumed -> OutputProperty).
    assert reply.json["output"] == "hold on"
    twice = api.post(f"instances/{iid}/suspend")
    assert twice.status == 500 and twice.json["Message"] == "Something went wrong while processing your request"
    resumed = api.post(f"instances/{iid}/resume", query={"reason": "go on"})
    assert resumed.status == 202 and resumed.body == b""
    assert api.wait_status(iid, "Running")["output"] == "go on"
    events = api.status(iid, showHistory="true").json["historyEvents"]
    assert [e.get("Reason") for e in events if e["EventType"] == "ExecutionSuspended"] == ["hold on"]
    assert [e.get("Reason") for e in events if e["EventType"] == "ExecutionResumed"] == ["go on"]
    assert api.post(f"instances/{iid}/terminate").status == 202
    api.wait_status(iid, "Terminated")
    for operation in ("suspend", "resume"):
        gone = api.post(f"instances/{iid}/{operation}")
        assert gone.status == 410 and gone.body == b""
        unknown = api.post(f"instances/{new_id('nobody')}/{operation}")
        assert unknown.status == 404 and unknown.body == b""


def test_suspended_instance_holds_events_until_resumed(webhook: DurableApi) -> None:
    """A suspended ReserveTicket takes a raised confirmation into effect only after it is resumed."""
    iid = webhook.waiting_ticket()
    assert webhook.post(f"instances/{iid}/suspend").status == 202
    webhook.wait_status(iid, "Suspended")
    assert webhook.post(f"instances/{iid}/raiseEvent/{EVENT}", True).status == 202  # Suspended accepts events
    body = still_for(webhook, iid, 1.0, "Suspended")
    assert "discount" in body["customStatus"] and body["output"] is None
    assert webhook.post(f"instances/{iid}/resume").status == 202
    done = webhook.wait_status(iid, "Completed")
    assert done["output"] is True
    assert done["customStatus"]["message"] == "Thank you for confirming your booking."


def test_suspended_instance_holds_its_timer_until_resumed(webhook: DurableApi) -> None:
    """A CityRecommender suspended past its selection deadline stays Suspended; resumed, it expires."""
    iid = webhook.start("CityRecommender", {"choice": 2, "selectionTimeoutSeconds": 2}, new_id())
    assert webhook.post(f"instances/{iid}/suspend").status == 202
    body = webhook.wait_status(iid, "Suspended")
    if not isinstance(body["customStatus"], dict):  # suspended before its first episode: let it set the deadline
        assert webhook.post(f"instances/{iid}/resume").status == 202
        webhook.wait_custom(iid, "selectionExpiresAt")
        assert webhook.post(f"instances/{iid}/suspend").status == 202
        webhook.wait_status(iid, "Suspended")
    expires = datetime.strptime(webhook.status(iid).json["customStatus"]["selectionExpiresAt"][:19],
                                "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC)
    wait = (expires - datetime.now(UTC)).total_seconds() + 1.0
    body = still_for(webhook, iid, max(wait, 1.0), "Suspended")
    assert body["customStatus"]["stage"] == "awaiting-selection"
    assert webhook.post(f"instances/{iid}/resume").status == 202
    done = webhook.wait_status(iid, "Completed")
    assert done["output"]["stage"] == "expired"


def test_terminate_a_suspended_instance(webhook: DurableApi) -> None:
    """A Suspended instance can be terminated (202) and ends Terminated with the reason."""
    iid = webhook.waiting_ticket()
    assert webhook.post(f"instances/{iid}/suspend").status == 202
    webhook.wait_status(iid, "Suspended")
    assert webhook.post(f"instances/{iid}/terminate", query={"reason": "while suspended"}).status == 202
    assert webhook.wait_status(iid, "Terminated")["output"] == "while suspended"


# -- rewind ----------------------------------------------------------------------------------------
def test_rewind_refuses_missing_and_non_failed_instances(api: DurableApi) -> None:
    """current: rewind of a missing instance is 404 and of a non-Failed one 412, each with a JSON string body."""
    missing = new_id("nobody")
    reply = api.post(f"instances/{missing}/rewind", query={"reason": "x"})
    assert reply.status == 404
    assert reply.header("Content-Type") == JSON_CONTENT_TYPE
    assert reply.json == f'No orchestration with instance ID "${missing}" found.'
    running = api.waiting_ticket()
    reply = api.post(f"instances/{running}/rewind", query={"reason": "x"})
    assert reply.status == 412
    assert reply.json == ('This orchestration has status Running, but only orchestrations in the "Failed" state '
                          "can be rewound.")
    assert api.post(f"instances/{running}/terminate").status == 202
    api.wait_status(running, "Terminated")
    reply = api.post(f"instances/{running}/rewind")
    assert reply.status == 412 and "has status Terminated" in reply.json


def test_rewind_of_a_failed_instance_runs_it_again(webhook: DurableApi) -> None:
    """Rewinding a Failed instance answers 202 and replays it (the provider rewrites the failure as GenericEvent)."""
    iid = webhook.failed_city()
    reply = webhook.post(f"instances/{iid}/rewind", query={"reason": "try again"})
    assert reply.status == 202 and reply.body == b""

    def replayed(body: dict[str, Any]) -> bool:
        kinds = [event["EventType"] for event in body.get("historyEvents", [])]
        return body["runtimeStatus"] == "Failed" and "GenericEvent" in kinds and kinds[-1] == "ExecutionCompleted"

    body = webhook.wait(iid, replayed, what="a rewound and replayed run", showHistory="true")
    generic = [event for event in body["historyEvents"] if event["EventType"] == "GenericEvent"]
    assert any(event.get("Reason") == "Rewound: ExecutionCompleted" for event in generic), generic
    assert any(event.get("Data") == "try again" for event in generic), generic
    assert body["output"].startswith("Orchestrator function 'CityRecommender' failed:")  # the input is still bad


# -- restart ---------------------------------------------------------------------------------------
def test_restart_with_a_new_id(api: DurableApi) -> None:
    """restart (default): 202 check-status for a new id; the new instance runs with the same input."""
    old = api.terminated_ticket()
    reply = api.post(f"instances/{old}/restart")
    new = reply.json["id"]
    assert new != old and re.fullmatch(r"[0-9a-f]{32}", new)
    assert_check_status(api, reply, new)
    body = api.wait_custom(new, "discount")
    assert body["name"] == "ReserveTicket" and body["input"] == {"userId": "conformance-user", "discountTimeout": 600}
    assert api.status(old).json["runtimeStatus"] == "Terminated"  # the old one is untouched
    active = api.post(f"instances/{new}/restart", query={"restartWithNewInstanceId": "true"})
    assert active.status == 202 and active.json["id"] not in (old, new)  # an active source is fine with a new id
    for iid in (new, active.json["id"]):
        assert api.post(f"instances/{iid}/terminate").status == 202


def test_restart_with_the_same_id(api: DurableApi) -> None:
    """restartWithNewInstanceId=false re-runs a terminal instance under its id; while it is active that is 409."""
    iid = api.terminated_ticket()
    reply = api.post(f"instances/{iid}/restart", query={"restartWithNewInstanceId": "false"})
    assert_check_status(api, reply, iid)
    body = api.wait_custom(iid, "discount")
    assert body["runtimeStatus"] == "Running" and body["output"] is None
    conflict = api.post(f"instances/{iid}/restart", query={"restartWithNewInstanceId": "false"})
    assert conflict.status == 409
    assert conflict.json["Message"] == "A non-terminal instance with this instance ID already exists."
    assert api.post(f"instances/{iid}/terminate").status == 202


def test_restart_unknown_instance_is_400(api: DurableApi) -> None:
    """Restarting an id nobody started is an ArgumentException: 400 with the extension's (misspelt) message."""
    missing = new_id("nobody")
    reply = api.post(f"instances/{missing}/restart")
    assert reply.status == 400
    assert reply.json["Message"] == "InstanceId does not match a valid orchestration instance."
    assert reply.json["ExceptionMessage"] == f"An orchestrastion with the instanceId {missing} was not found."


def test_restart_in_wait_mode(webhook: DurableApi) -> None:
    """restart takes timeout/pollingInterval like start: a quick run answers 200 with its output."""
    iid = webhook.completed_steps()
    reply = webhook.post(f"instances/{iid}/restart", query={"timeout": 15, "pollingInterval": 1})
    assert reply.status == 200 and reply.json["completedActions"] == ["A", "B", "C"]


# -- purge -----------------------------------------------------------------------------------------
def storage_rows(host: RunningHost, tables: TableServiceClient, instance_id: str) -> tuple[int, int]:
    """(History rows, Instances rows) of the instance, read from Azurite directly."""
    flt = "PartitionKey eq @pk"
    history = tables.get_table_client(f"{host.hub_name}History")
    instances = tables.get_table_client(f"{host.hub_name}Instances")
    return (len(list(history.query_entities(flt, parameters={"pk": instance_id}))),
            len(list(instances.query_entities(flt, parameters={"pk": instance_id}))))


def large_blobs(host: RunningHost, blobs: BlobServiceClient, instance_id: str) -> list[str]:
    container = blobs.get_container_client(f"{host.hub_name.lower()}-largemessages")
    return [blob.name for blob in container.list_blobs(name_starts_with=f"{instance_id}/")]


def test_purge_one_instance(api: DurableApi, table_service: TableServiceClient) -> None:
    """DELETE instances/{id}: 200 `{"instancesDeleted":1}`, then the status is 404 and its rows are gone."""
    iid = api.completed_steps()
    history_rows, instance_rows = storage_rows(api.host, table_service, iid)
    assert history_rows > 0 and instance_rows == 1
    reply = api.delete(f"instances/{iid}")
    assert reply.status == 200
    assert reply.header("Content-Type") == JSON_CONTENT_TYPE
    assert reply.body == b'{"instancesDeleted":1}'
    assert api.status(iid).status == 404
    assert storage_rows(api.host, table_service, iid) == (0, 0)
    again = api.delete(f"instances/{iid}")
    assert again.status == 404 and again.body == b""


def test_purge_refuses_active_instances(api: DurableApi) -> None:
    """current: purging a Running instance answers 412 with a JSON string and purges nothing."""
    iid = api.waiting_ticket()
    reply = api.delete(f"instances/{iid}")
    assert reply.status == 412
    assert reply.json == ("Only orchestrations in a terminal state can be purged, but the orchestration with "
                          f"instance ID {iid} has status Running")
    assert api.status(iid).status == 202
    assert api.post(f"instances/{iid}/terminate").status == 202


def test_large_input_round_trips_through_blobs_and_purge_removes_them(
        webhook: DurableApi, table_service: TableServiceClient, blob_service: BlobServiceClient) -> None:
    """A 100 KB input is kept as large-message blobs, comes back intact, and purge deletes the blobs too."""
    large = ("large input ü € 𝄞 \"quoted\" \\ " * 4000)[:100_000]
    payload = {"userId": large}
    iid = new_id("large")
    assert webhook.post(f"orchestrators/ReserveTicket/{iid}", payload).status == 202
    body = webhook.wait_status(iid, "Failed")  # a 100 KB user id is not a valid one
    assert body["input"] == payload
    assert large_blobs(webhook.host, blob_service, iid), "the large input was not stored as blobs"
    started = webhook.status(iid, showHistory="true").json["historyEvents"][0]
    assert started["EventType"] == "ExecutionStarted" and json.loads(started["Input"]) == payload
    listed = webhook.get("instances", {"instanceIdPrefix": iid}).json
    assert [item["input"] for item in listed] == [payload]
    reply = webhook.delete(f"instances/{iid}")
    assert reply.status == 200 and reply.json == {"instancesDeleted": 1}
    assert large_blobs(webhook.host, blob_service, iid) == []
    assert storage_rows(webhook.host, table_service, iid) == (0, 0)


def test_purge_by_filter(webhook: DurableApi) -> None:
    """DELETE instances?createdTimeFrom=..&runtimeStatus=Completed: 200 with the count, then 404; 400 without from."""
    began = datetime.now(UTC) - timedelta(milliseconds=50)
    done = [webhook.completed_steps(), webhook.completed_steps()]
    running = webhook.waiting_ticket()
    failed = webhook.failed_city()
    window = {"createdTimeFrom": began.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
              "createdTimeTo": (datetime.now(UTC) + timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")}
    reply = webhook.delete("instances", {**window, "runtimeStatus": "Completed"})
    assert reply.status == 200 and reply.body == b'{"instancesDeleted":2}'
    assert [webhook.status(iid).status for iid in done] == [404, 404]
    assert webhook.status(running).status == 202 and webhook.status(failed).status == 200
    nothing = webhook.delete("instances/", {**window, "runtimeStatus": "Completed"})
    assert nothing.status == 404 and nothing.body == b""
    missing_from = webhook.delete("instances", {"runtimeStatus": "Completed"})
    assert missing_from.status == 400
    assert missing_from.json == "Please provide value for 'createdTimeFrom' parameter."
    failed_only = webhook.delete("instances", {**window, "runtimeStatus": "Failed"})
    assert failed_only.status == 200 and failed_only.json == {"instancesDeleted": 1}
    assert webhook.status(failed).status == 404
    assert webhook.post(f"instances/{running}/terminate").status == 202


# -- entities and other routes ---------------------------------------------------------------------
def test_entity_routes_of_an_app_without_entities(api: DurableApi) -> None:
    """No entity exists: GET of one is 404 without a body, a listing is empty, a signal is refused with 400."""
    missing = request("GET", api.base + "entities/counter/k1")
    assert (missing.status, missing.body) == (404, b"")
    listing = request("GET", api.base + "entities/counter")
    assert listing.status == 200 and listing.json == [] and listing.header("x-ms-continuation-token") is not None
    for method in ("POST", "DELETE"):
        refused = request(method, api.base + "entities/counter/k1?op=add", raw=b"1" if method == "POST" else None)
        assert refused.status == 400 and refused.header("Content-Type") == JSON_CONTENT_TYPE
        assert refused.json["Message"].startswith("The function 'counter' doesn't exist, is disabled, or is not an "
                                                  "entity function. Additional info: ")


def test_unknown_routes_are_404_and_makeprimary_is_200(api: DurableApi) -> None:
    """Paths that match no template answer 404 with no body; `makeprimary` answers 200."""
    for path in ("nothing-here", "instances/a/b/c/d/e", f"orchestrators/{quote('x')}/y/z"):
        reply = api.post(path)
        assert reply.status == 404 and reply.body == b"", path
    assert api.get("makeprimary").status == 200


def test_literal_path_segments_ignore_case(host: RunningHost) -> None:
    """Routing ignores the case of literal segments and of the webhook prefix; ids keep theirs."""
    api = DurableApi(host, "webhook")
    iid = api.waiting_ticket(new_id("MixedCase"))
    upper = request("GET", f"{host.base_url}/runtime/webhooks/durableTask/INSTANCES/{iid}")
    assert upper.status == 202 and upper.json["instanceId"] == iid
    assert request("GET", f"http://127.0.0.1:{host.port}/durabletask/Instances/{iid.lower()}").status == 404
    reply = request("POST", f"{host.base_url}/runtime/webhooks/durabletask/Instances/{iid}/RaiseEvent/{EVENT}", True)
    assert reply.status == 202
    assert api.wait_status(iid, "Completed")["output"] is True


def test_links_of_the_check_status_response_drive_the_instance(webhook: DurableApi) -> None:
    """The placeholders `{eventName}` and `{text}` of the returned links, filled in, work as documented."""
    iid = new_id()
    links = assert_check_status(webhook, webhook.post(f"orchestrators/ReserveTicket/{iid}", "link-user"), iid)
    webhook.wait_custom(iid, "discount")
    assert request("POST", links["suspendPostUri"].replace("{text}", "pause")).status == 202
    webhook.wait_status(iid, "Suspended")
    assert request("POST", links["resumePostUri"].replace("{text}", "go")).status == 202
    webhook.wait_status(iid, "Running")
    assert request("POST", links["sendEventPostUri"].replace("{eventName}", EVENT), True).status == 202
    assert webhook.wait_status(iid, "Completed")["output"] is True
    assert request("DELETE", links["purgeHistoryDeleteUri"]).json == {"instancesDeleted": 1}
