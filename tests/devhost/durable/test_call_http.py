"""call_http on the engine against a local aiohttp server: the built-in HTTP activity and 202 polling."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from aiohttp import web

from devhost.durable.history import EventType, OrchestrationStatus
from tests.devhost.durable.conftest import run, running_engine


@asynccontextmanager
async def endpoint_server() -> AsyncIterator[tuple[str, list[tuple[str, str, dict[str, str], str]]]]:
    """A loopback server recording (method, path, headers, body) of every request it gets."""
    seen: list[tuple[str, str, dict[str, str], str]] = []

    async def record(request: web.Request) -> None:
        seen.append((request.method, request.path, dict(request.headers), await request.text()))

    async def ok(request: web.Request) -> web.Response:
        await record(request)
        return web.json_response({"hello": "world"}, headers={"X-Test": "yes"})

    async def echo(request: web.Request) -> web.Response:
        await record(request)
        return web.Response(text=await request.text(), status=201)

    async def job(request: web.Request) -> web.Response:
        await record(request)
        return web.Response(status=202, headers={"Location": f"{base}/job/status", "Retry-After": "1"})

    async def job_status(request: web.Request) -> web.Response:
        await record(request)
        return web.Response(text="done")

    app = web.Application()
    app.add_routes([web.get("/ok", ok), web.post("/echo", echo), web.post("/job", job),
                    web.get("/job/status", job_status)])
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    base = f"http://127.0.0.1:{port}"
    try:
        yield base, seen
    finally:
        await runner.cleanup()


def history_kinds(events: list[dict[str, Any]]) -> list[tuple[str, Any]]:
    return [(EventType(e["EventType"]).name, e.get("Name") or e.get("TaskScheduledId", e.get("TimerId")))
            for e in events if e["EventType"] not in (EventType.OrchestratorStarted, EventType.OrchestratorCompleted)]


def test_call_http_returns_the_durable_http_response() -> None:
    """A GET comes back as {statusCode, headers, content}; the request ran as BuiltIn::HttpActivity."""
    async def scenario() -> None:
        async with endpoint_server() as (base, seen), running_engine() as h:
            instance = await h.start("HttpCaller", {"method": "GET", "uri": f"{base}/ok"})
            done = await h.wait(instance)
            assert done.runtime_status == OrchestrationStatus.Completed, done.output
            response = json.loads(done.output)
            assert response["statusCode"] == 200
            assert json.loads(response["content"]) == {"hello": "world"}
            assert response["headers"]["X-Test"] == "yes"
            assert "Content-Type" not in response["headers"]  # .NET keeps content headers apart
            assert [(m, p) for m, p, _, _ in seen] == [("GET", "/ok")]
            history = (await h.hub.load_history(instance)).events
            scheduled = next(e for e in history if e["EventType"] == EventType.TaskScheduled)
            assert scheduled["Name"] == "BuiltIn::HttpActivity"
    run(scenario())


def test_call_http_sends_json_content_with_its_headers() -> None:
    """Content is the SDK's JSON text; a Content-Type header types it (text/plain when absent)."""
    async def scenario() -> None:
        async with endpoint_server() as (base, seen), running_engine() as h:
            instance = await h.start("HttpCaller", {"method": "POST", "uri": f"{base}/echo", "content": {"a": 1},
                                                    "headers": {"Content-Type": "application/json", "X-Key": "k"}})
            done = await h.wait(instance)
            response = json.loads(done.output)
            assert response["statusCode"] == 201 and json.loads(response["content"]) == {"a": 1}
            method, _, headers, body = seen[0]
            assert method == "POST" and json.loads(body) == {"a": 1}
            assert headers["Content-Type"] == "application/json" and headers["X-Key"] == "k"
    run(scenario())


def test_202_is_polled_at_location_after_retry_after() -> None:
    """A 202 makes the extension wait Retry-After on a durable timer, then GET Location until it is not 202.

    The SDK resolves its call_http task with the first activity result (the 202), as with the real
    extension; the instance completes only once the polling has ended.
    """
    async def scenario() -> None:
        async with endpoint_server() as (base, seen), running_engine() as h:
            instance = await h.start("HttpCaller", {"method": "POST", "uri": f"{base}/job",
                                                    "headers": {"x-functions-key": "secret", "X-Keep": "1"}})
            done = await h.wait(instance, within=15)
            assert done.runtime_status == OrchestrationStatus.Completed, done.output
            assert [(m, p) for m, p, _, _ in seen] == [("POST", "/job"), ("GET", "/job/status")]
            poll_headers = seen[1][2]
            assert "x-functions-key" not in {k.lower() for k in poll_headers} and poll_headers["X-Keep"] == "1"
            history = (await h.hub.load_history(instance)).events
            assert history_kinds(history) == [
                ("ExecutionStarted", "HttpCaller"), ("TaskScheduled", "BuiltIn::HttpActivity"), ("TaskCompleted", 0),
                ("TimerCreated", None), ("TimerFired", 1), ("TaskScheduled", "BuiltIn::HttpActivity"),
                ("TaskCompleted", 2), ("ExecutionCompleted", None),
            ]
            created = next(e for e in history if e["EventType"] == EventType.TimerCreated)
            first_done = next(e for e in history if e["EventType"] == EventType.TaskCompleted)
            assert json.loads(first_done["Result"])["statusCode"] == 202
            assert created["FireAt"] > first_done["Timestamp"]
            last = [e for e in history if e["EventType"] == EventType.TaskCompleted][-1]
            assert json.loads(last["Result"])["content"] == "done"
    run(scenario())


def test_unreachable_endpoint_fails_the_call() -> None:
    """No answer at all fails the HTTP task (an HttpRequestException in the extension)."""
    async def scenario() -> None:
        async with endpoint_server() as (base, _):
            dead = base  # closed below, so nothing listens there any more
        async with running_engine() as h:
            instance = await h.start("HttpCaller", {"method": "GET", "uri": f"{dead}/ok"})
            done = await h.wait(instance)
            assert done.runtime_status == OrchestrationStatus.Failed
            history = (await h.hub.load_history(instance)).events
            failed = next(e for e in history if e["EventType"] == EventType.TaskFailed)
            assert "127.0.0.1" in failed["Reason"]
            assert json.loads(failed["Details"])["ClassName"] == "System.Net.Http.HttpRequestException"
    run(scenario())
