"""Keys checked as in Azure (--enableAuth): every route of the app and of the Durable API, per key kind.

A request that passes the check is one the app or the API answers itself (404 for an unknown instance or
orchestrator), so the matrix starts nothing but instances of an unknown orchestrator, which fail at once.
A refusal is the host's: 401 with no body when no key matched, 403 when a key matched but grants too
little for a host route.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.e2e.flows import wait_until_finished
from tests.host_keys import ALLOWED_ORIGIN, HostKeys, read_secrets
from tests.hosts import RunningHost, launch_host, stop_host
from tests.http_client import NO_BODY, Reply, poll, request

KINDS = ["none", "wrong", "function", "other function", "host", "system", "master"]


def key_for(keys: HostKeys, kind: str, function: str | None) -> str | None:
    return {
        "none": None,
        "wrong": "not-a-key-" + uuid.uuid4().hex,
        "function": keys.functions.get(function or "", keys.host_default),
        "other function": keys.functions["get_instance_status" if function != "get_instance_status"
                                         else "select_city"],
        "host": keys.host_default,
        "system": keys.system,
        "master": keys.master,
    }[kind]


def with_code(url: str, key: str | None) -> str:
    if key is None:
        return url
    return f"{url}{'&' if '?' in url else '?'}code={key}"


def route_refusal(kind: str) -> int:
    """A host route has no function, so a function's own key matches nothing there (401); a host key or a
    system key of another purpose matches but grants too little (403)."""
    return 401 if kind in ("none", "wrong", "other function") else 403


def assert_refused(reply: Reply, status: int) -> None:
    assert reply.status == status, reply
    assert reply.body == b"", reply


# (function, method, path, body, status when allowed): each reaches the app without starting anything.
APP_ROUTES = [
    ("start_orchestration", "POST", "orchestrators/NoSuchOrchestrator", {}, 404),
    ("confirm_reservation", "POST", "reservations/{missing}/confirmation", {"confirmed": True}, 404),
    ("select_city", "POST", "recommendations/{missing}/selection", {"city": "Tokyo"}, 404),
    ("get_instance_status", "GET", "instances/{missing}", None, 404),
]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(("function", "method", "path", "body", "allowed"), APP_ROUTES,
                         ids=[r[0] for r in APP_ROUTES])
def test_function_level_routes(auth_host: RunningHost, auth_keys: HostKeys, kind: str, function: str,
                               method: str, path: str, body: Any, allowed: int) -> None:
    """A function-level route takes its own key, a host function key or the master key; else 401."""
    url = auth_host.api(path.format(missing=f"missing-{uuid.uuid4().hex}"))
    reply = request(method, with_code(url, key_for(auth_keys, kind, function)), NO_BODY if body is None else body)
    if kind in ("function", "host", "master"):
        assert reply.status == allowed, reply
        assert "error" in reply.json
    else:
        assert_refused(reply, 401)


def test_key_in_header_wins_over_query(auth_host: RunningHost, auth_keys: HostKeys) -> None:
    """x-functions-key works alone, and when it is present the ?code= is not looked at."""
    url = auth_host.api(f"instances/missing-{uuid.uuid4().hex}")
    own = auth_keys.functions["get_instance_status"]
    assert request("GET", url, headers={"x-functions-key": own}).status == 404
    assert_refused(request("GET", with_code(url, own), headers={"x-functions-key": "wrong"}), 401)
    assert request("GET", with_code(url, "wrong"), headers={"x-functions-key": own}).status == 404


@pytest.mark.parametrize("kind", ["none", "wrong", "system"])
def test_anonymous_page_needs_no_key(auth_host: RunningHost, auth_keys: HostKeys, kind: str) -> None:
    """The progress page is anonymous: any caller gets it."""
    reply = request("GET", with_code(auth_host.api("ui/"), key_for(auth_keys, kind, None)))
    assert reply.status == 200 and b"<html" in reply.body.lower()


# (method, path, body, status when allowed) on /runtime/webhooks/durabletask/
DURABLE_ROUTES = [
    ("GET", "instances/{missing}", None, 404),
    ("GET", "instances?top=1", None, 200),
    ("GET", "instances/{missing}?taskHub=SomeOtherHub", None, 404),
    ("DELETE", "instances?createdTimeFrom=2100-01-01T00:00:00Z", None, 404),
    ("POST", "orchestrators/NoSuchOrchestrator", None, 202),  # accepted, then Failed (as the current extension)
    ("POST", "instances/{missing}/raiseEvent/BookingConfirmed", True, 404),
    ("POST", "instances/{missing}/terminate?reason=x", None, 404),
    ("DELETE", "instances/{missing}", None, 404),
    ("POST", "instances/{missing}/suspend?reason=x", None, 404),
    ("POST", "instances/{missing}/resume?reason=x", None, 404),
    ("POST", "instances/{missing}/rewind?reason=x", None, 404),
    ("POST", "instances/{missing}/restart", None, 400),
]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(("method", "path", "body", "allowed"), DURABLE_ROUTES,
                         ids=[f"{r[0]} {r[1].split('?')[0]}" for r in DURABLE_ROUTES])
def test_durable_webhooks(auth_host: RunningHost, auth_keys: HostKeys, kind: str, method: str, path: str,
                          body: Any, allowed: int) -> None:
    """The webhooks take the durabletask_extension system key or the master key, nothing else."""
    url = auth_host.durable(path.format(missing=f"missing-{uuid.uuid4().hex}"))
    reply = request(method, with_code(url, key_for(auth_keys, kind, None)), NO_BODY if body is None else body)
    if kind in ("system", "master"):
        assert reply.status == allowed, reply
    else:
        assert_refused(reply, route_refusal(kind))


@pytest.mark.parametrize("kind", KINDS)
def test_admin_status(auth_host: RunningHost, auth_keys: HostKeys, kind: str) -> None:
    """/admin/host/status is for the master key; ping stays open."""
    reply = request("GET", with_code(auth_host.url("admin/host/status"), key_for(auth_keys, kind, None)))
    if kind == "master":
        assert reply.status == 200 and reply.json["state"] == "Running"
    else:
        assert_refused(reply, route_refusal(kind))
    assert request("GET", auth_host.url("admin/host/ping")).status == 200


def test_rpc_path_needs_no_key_over_loopback(auth_host: RunningHost) -> None:
    """The SDK's RPC path, like the extension's local listener, takes loopback callers without a key."""
    reply = request("GET", f"http://127.0.0.1:{auth_host.port}/durabletask/instances/missing-{uuid.uuid4().hex}")
    assert reply.status == 404


def test_check_status_urls_carry_the_system_key(auth_host: RunningHost, auth_keys: HostKeys) -> None:
    """The starter's payload (built from the binding) has code=<system key> in every URL, and it works."""
    reply = request("POST", with_code(auth_host.api("orchestrators/ReserveTicket"), auth_keys.host_default),
                 "user-auth")
    assert reply.status == 202, reply
    urls = reply.json
    for name, url in urls.items():
        if name != "id":
            assert url.endswith(f"&code={auth_keys.system}"), (name, url)
    poll(lambda: request("GET", urls["statusQueryGetUri"]),
         lambda r: r.status == 202 and isinstance((r.json or {}).get("customStatus"), dict))
    event_url = urls["sendEventPostUri"].replace("{eventName}", "BookingConfirmed")
    assert_refused(request("POST", event_url.replace(auth_keys.system, "wrong"), True), 401)
    assert request("POST", event_url, True).status == 202
    assert wait_until_finished(urls)["output"] is True


def test_webhook_start_links_carry_the_system_key(auth_host: RunningHost, auth_keys: HostKeys) -> None:
    """The API's own check-status response (start through the webhook) carries code= as Azure's does."""
    reply = request("POST", with_code(auth_host.durable("orchestrators/SetStatusTest"), auth_keys.system),
                 {"stepDelaySeconds": 0})
    assert reply.status == 202, reply
    assert reply.json["statusQueryGetUri"].endswith(f"&code={auth_keys.system}")
    assert wait_until_finished(reply.json)["runtimeStatus"] == "Completed"


def test_key_management_routes(auth_host: RunningHost, auth_keys: HostKeys) -> None:
    """List, create, set and delete keys under /admin with the master key; new keys work at once."""
    master = auth_keys.master
    admin = auth_host.url("admin/functions/get_instance_status/keys")
    assert_refused(request("GET", with_code(admin, auth_keys.host_default)), 403)
    listed = request("GET", with_code(admin, master))
    assert listed.status == 200
    assert {"name": "default", "value": auth_keys.functions["get_instance_status"]} in listed.json["keys"]
    assert listed.json["links"] == [{"rel": "self", "href": admin}]

    name = f"k{uuid.uuid4().hex[:8]}"
    created = request("POST", with_code(f"{admin}/{name}", master))
    assert created.status == 201 and created.json["name"] == name
    new_key = created.json["value"]
    status_url = auth_host.api(f"instances/missing-{uuid.uuid4().hex}")
    assert request("GET", with_code(status_url, new_key)).status == 404  # reaches the function
    assert_refused(request("POST", with_code(auth_host.api("orchestrators/X"), new_key), {}), 401)

    replaced = request("PUT", with_code(f"{admin}/{name}", master), {"value": f"set-{uuid.uuid4().hex}"})
    assert replaced.status == 200
    assert_refused(request("GET", with_code(status_url, new_key)), 401)
    assert request("GET", with_code(status_url, replaced.json["value"])).status == 404
    stored = read_secrets(auth_host.storage_connection, "get_instance_status.json")
    assert {"name": name, "value": replaced.json["value"], "encrypted": False} in stored["keys"]

    assert request("DELETE", with_code(f"{admin}/{name}", master)).status == 204
    assert_refused(request("GET", with_code(status_url, replaced.json["value"])), 401)
    assert request("DELETE", with_code(f"{admin}/{name}", master)).status == 404
    assert request("GET", with_code(auth_host.url("admin/functions/nope/keys"), master)).status == 404

    system = request("GET", with_code(auth_host.url("admin/host/systemkeys"), master))
    assert {"name": "durabletask_extension", "value": auth_keys.system} in system.json["keys"]
    host_keys = request("GET", with_code(auth_host.url("admin/host/keys"), master))
    assert {"name": "default", "value": auth_keys.host_default} in host_keys.json["keys"]
    shown = request("GET", with_code(auth_host.url("admin/host/systemkeys/_master"), master))
    assert shown.json["value"] == master


def test_keys_are_stored_as_the_host_stores_them(auth_host: RunningHost, auth_keys: HostKeys) -> None:
    """host.json in azure-webjobs-secrets/{host id}/ has the host's fields, in its order, unencrypted."""
    document = auth_keys.host_document
    assert list(document) == ["masterKey", "functionKeys", "systemKeys", "hostName", "instanceId", "source",
                              "decryptionKeyId"]
    assert document["masterKey"]["name"] == "master" and document["masterKey"]["encrypted"] is False
    assert document["source"] == "runtime"
    assert len(auth_keys.master) == 56 and auth_keys.master.endswith("=")


def test_keys_survive_a_restart(auth_host: RunningHost, auth_keys: HostKeys, storage_connection: str,
                                tmp_path_factory: pytest.TempPathFactory) -> None:
    """A host started later on the same storage takes the keys the first start created."""
    later = launch_host(storage_connection, tmp_path_factory.mktemp("auth-restart"), extra_args=["--enableAuth"])
    try:
        url = later.api(f"instances/missing-{uuid.uuid4().hex}")
        assert request("GET", with_code(url, auth_keys.functions["get_instance_status"])).status == 404
        assert request("GET", with_code(later.url("admin/host/status"), auth_keys.master)).status == 200
        assert_refused(request("GET", url), 401)
        assert f"?code={auth_keys.functions['start_orchestration']}" in later.log_text()
    finally:
        stop_host(later)


def test_cors_with_credentials_on_app_and_durable_api(auth_host: RunningHost, auth_keys: HostKeys) -> None:
    """Preflights need no key; responses to the allowed origin carry the CORS headers, 401s included."""
    def preflight(url: str, origin: str) -> Reply:
        return request("OPTIONS", url, headers={"Origin": origin, "Access-Control-Request-Method": "POST",
                                             "Access-Control-Request-Headers": "content-type"})

    starter = auth_host.api("orchestrators/ReserveTicket")
    allowed = preflight(starter, ALLOWED_ORIGIN)
    assert allowed.status == 204
    assert allowed.header("Access-Control-Allow-Origin") == ALLOWED_ORIGIN
    assert allowed.header("Access-Control-Allow-Credentials") == "true"
    assert allowed.header("Access-Control-Allow-Methods") == "POST"
    refused = preflight(starter, "http://elsewhere.localhost")
    assert refused.status == 204 and refused.header("Access-Control-Allow-Origin") is None

    unauthorized = request("POST", starter, "u", headers={"Origin": ALLOWED_ORIGIN})
    assert unauthorized.status == 401
    assert unauthorized.header("Access-Control-Allow-Origin") == ALLOWED_ORIGIN
    status = request("GET", with_code(auth_host.durable(f"instances/missing-{uuid.uuid4().hex}"), auth_keys.system),
                  headers={"Origin": ALLOWED_ORIGIN})
    assert status.status == 404 and status.header("Access-Control-Allow-Credentials") == "true"
    assert preflight(auth_host.durable("instances"), ALLOWED_ORIGIN).status == 204
