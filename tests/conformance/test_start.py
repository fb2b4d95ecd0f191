"""`POST orchestrators/{name}[/{instanceId}]`: check-status response, id reuse, unknown names, wait mode (§2.1)."""

from __future__ import annotations

import re
import time

from tests.conformance.support import JSON_CONTENT_TYPE, STATUS_FIELDS, DurableApi, assert_check_status, new_id, request

# The orchestrator shim wraps the existence check's message like any orchestrator failure.
UNKNOWN_FUNCTION = ("Orchestrator function 'NoSuchOrchestrator' failed: "
                    "The function 'NoSuchOrchestrator' doesn't exist, is disabled, or is not an orchestrator function. "
                    "Additional info: The following are the known orchestrator functions: ")


def test_start_answers_the_check_status_response(api: DurableApi) -> None:
    """202 with the API's 8-field check-status body whose links work, `Location` and `Retry-After: 10`."""
    iid = new_id()
    reply = api.post(f"orchestrators/SetStatusTest/{iid}", {"stepDelaySeconds": 0})
    body = assert_check_status(api, reply, iid)
    api.wait_status(iid, "Completed")
    status = request("GET", body["statusQueryGetUri"])
    assert status.status == 200 and status.json["instanceId"] == iid


def test_start_without_id_generates_a_guid_n(api: DurableApi) -> None:
    """Without an instance id in the path the new id is 32 lower-case hex digits."""
    reply = api.post("orchestrators/CityRecommender", 3)
    iid = reply.json["id"]
    assert re.fullmatch(r"[0-9a-f]{32}", iid), iid
    assert_check_status(api, reply, iid)
    assert api.wait_custom(iid, "recommendedCities")["input"] == 3
    assert api.post(f"instances/{iid}/terminate").status == 202


def test_empty_body_means_null_input(webhook: DurableApi) -> None:
    """With Content-Length 0 the input is null (CityRecommender then fails for want of an input)."""
    iid = new_id()
    assert webhook.post(f"orchestrators/CityRecommender/{iid}").status == 202
    body = webhook.wait_status(iid, "Failed")
    assert body["input"] is None
    assert body["output"].startswith("Orchestrator function 'CityRecommender' failed: CityRecommender needs an input")


def test_content_type_is_not_checked(webhook: DurableApi) -> None:
    """A JSON body sent as text/plain is still the input."""
    iid = new_id()
    reply = webhook.post(f"orchestrators/CityRecommender/{iid}", raw=b"2", content_type="text/plain")
    assert reply.status == 202
    assert webhook.wait_custom(iid, "recommendedCities")["input"] == 2
    assert webhook.post(f"instances/{iid}/terminate").status == 202


def test_invalid_json_body_is_400(api: DurableApi) -> None:
    """A body that is not JSON answers 400 `{"Message":"Invalid JSON content",...}` and starts nothing."""
    iid = new_id()
    reply = api.post(f"orchestrators/CityRecommender/{iid}", raw=b"{choice: 1", content_type="application/json")
    assert reply.status == 400
    assert reply.header("Content-Type") == JSON_CONTENT_TYPE
    assert reply.json["Message"] == "Invalid JSON content"
    assert reply.json["ExceptionMessage"]
    assert api.status(iid).status == 404


def test_active_instance_id_is_409(api: DurableApi) -> None:
    """Starting with the id of an active instance answers 409 `{"Message": ...}` and leaves it alone (current)."""
    iid = new_id()
    api.start("CityRecommender", 1, iid)
    reply = api.post(f"orchestrators/CityRecommender/{iid}", 2)
    assert reply.status == 409
    assert re.fullmatch(r"An Orchestration instance with the status (Pending|Running) already exists\.",
                        reply.json["Message"]), reply
    body = api.wait_custom(iid, "recommendedCities")
    assert body["input"] == 1 and body["customStatus"]["recommendedCities"] == ["Tokyo", "Seattle"]
    assert api.post(f"instances/{iid}/terminate").status == 202


def test_terminal_instance_id_is_overwritten(api: DurableApi) -> None:
    """Starting with the id of a finished instance replaces it with a new run (202)."""
    iid = api.completed_steps()
    reply = api.post(f"orchestrators/CityRecommender/{iid}", 2)
    assert_check_status(api, reply, iid)
    body = api.wait_custom(iid, "recommendedCities")
    assert body["name"] == "CityRecommender" and body["input"] == 2 and body["output"] is None
    assert body["runtimeStatus"] == "Running"
    history = api.status(iid, showHistory="true").json["historyEvents"]
    assert [e["EventType"] for e in history] == ["ExecutionStarted", "TimerCreated"]  # the old run is gone
    assert api.post(f"instances/{iid}/terminate").status == 202


def test_unknown_orchestrator_is_accepted_then_fails(api: DurableApi) -> None:
    """current: an unknown orchestrator is accepted with 202 and the instance then fails with the extension's text."""
    iid = new_id()
    reply = api.post(f"orchestrators/NoSuchOrchestrator/{iid}", {"a": 1})
    assert_check_status(api, reply, iid)
    body = api.wait_status(iid, "Failed")
    assert body["name"] == "NoSuchOrchestrator" and body["input"] == {"a": 1}
    assert body["output"].startswith(UNKNOWN_FUNCTION), body["output"]
    for name in ("'CityRecommender'", "'ReserveTicket'", "'SetStatusTest'"):
        assert name in body["output"]


def test_wait_mode_returns_the_output_when_done_in_time(api: DurableApi) -> None:
    """With timeout and pollingInterval, a run that completes in time answers 200 with just its output."""
    iid = new_id()
    reply = api.post(f"orchestrators/SetStatusTest/{iid}", {"stepDelaySeconds": 0},
                     query={"timeout": 15, "pollingInterval": 1})
    assert reply.status == 200, reply
    assert reply.header("Content-Type") == JSON_CONTENT_TYPE
    assert reply.json["completedActions"] == ["A", "B", "C"]
    assert set(reply.json) == {"completedActions", "results"}


def test_wait_mode_times_out_with_the_check_status_response(webhook: DurableApi) -> None:
    """A run still going when the timeout passes answers the 202 check-status response, after the timeout."""
    iid = new_id()
    began = time.monotonic()
    reply = webhook.post(f"orchestrators/CityRecommender/{iid}", 1, query={"timeout": "1", "pollingInterval": "0.5"})
    assert time.monotonic() - began >= 0.9
    assert_check_status(webhook, reply, iid)
    assert webhook.post(f"instances/{iid}/terminate").status == 202


def test_wait_mode_reports_a_failure_like_get_status(webhook: DurableApi) -> None:
    """A run that fails in time answers its status object: 200, or 500 with returnInternalServerErrorOnFailure."""
    reply = webhook.post(f"orchestrators/CityRecommender/{new_id()}", 8, query={"timeout": 15, "pollingInterval": 1})
    assert reply.status == 200 and list(reply.json) == STATUS_FIELDS and reply.json["runtimeStatus"] == "Failed"
    flagged = webhook.post(f"orchestrators/CityRecommender/{new_id()}", 8,
                           query={"timeout": 15, "pollingInterval": 1, "returnInternalServerErrorOnFailure": "true"})
    assert flagged.status == 500 and flagged.json["runtimeStatus"] == "Failed"


def test_wait_mode_rejects_polling_interval_above_timeout(api: DurableApi) -> None:
    """pollingInterval greater than timeout is an ArgumentException: 400 with the catch-all message."""
    reply = api.post(f"orchestrators/CityRecommender/{new_id()}", 1, query={"timeout": 1, "pollingInterval": 5})
    assert reply.status == 400
    assert reply.json["Message"] == "One or more of the arguments submitted is incorrect"
    assert reply.json["ExceptionMessage"]


def test_timeout_alone_does_not_wait(webhook: DurableApi) -> None:
    """Wait mode needs both values on Azure Storage; `timeout` alone gives the immediate 202."""
    iid = new_id()
    reply = webhook.post(f"orchestrators/CityRecommender/{iid}", 1, query={"timeout": 30})
    assert_check_status(webhook, reply, iid)
    assert webhook.post(f"instances/{iid}/terminate").status == 202


def test_other_methods_on_orchestrators_are_404(webhook: DurableApi) -> None:
    """Only POST starts; GET and DELETE on the start route answer 404."""
    assert webhook.get("orchestrators/CityRecommender").status == 404
    assert webhook.delete(f"orchestrators/CityRecommender/{new_id()}").status == 404


def test_links_form_encode_the_instance_id(webhook: DurableApi) -> None:
    """Generated links `WebUtility.UrlEncode` the id (a space becomes `+`) and still reach the instance."""
    iid = new_id("link id")
    reply = webhook.post(f"orchestrators/CityRecommender/{iid.replace(' ', '%20')}", 1)
    assert reply.status == 202 and reply.json["id"] == iid
    encoded = iid.replace(" ", "+")
    assert f"/instances/{encoded}?taskHub=" in reply.json["statusQueryGetUri"]
    assert f"/instances/{encoded}/terminate?reason={{text}}&" in reply.json["terminatePostUri"]
    webhook.wait_custom(iid, "recommendedCities")
    assert request("GET", reply.json["statusQueryGetUri"]).json["instanceId"] == iid
    assert request("POST", reply.json["terminatePostUri"].replace("{text}", "bye")).status == 202
    assert webhook.wait_status(iid, "Terminated")["output"] == "bye"
