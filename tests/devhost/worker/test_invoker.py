"""Invoking functions through the azure.functions converters, as the Python worker does."""

from __future__ import annotations

import asyncio
import json
import logging
import textwrap
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest

from devhost.config import HostConfig
from devhost.errors import FunctionInvocationError, FunctionNotFoundError
from devhost.worker.http_data import HttpRequestData
from devhost.worker.invoker import Worker

APPS = Path(__file__).resolve().parents[1] / "apps"
T = TypeVar("T")


def with_worker(app: str | Path, scenario: Callable[[Worker], Awaitable[T]]) -> T:
    """Run ``scenario`` on one event loop with a loaded worker, closing it afterwards."""
    worker = Worker(HostConfig(app_dir=APPS / app if isinstance(app, str) else app))
    worker.load()

    async def main() -> T:
        try:
            return await scenario(worker)
        finally:
            await worker.close()

    return asyncio.run(main())


def app_with(tmp_path: Path, source: str) -> Path:
    """A one-file app in a fresh folder."""
    app = tmp_path / "app"
    app.mkdir()
    (app / "host.json").write_text('{"version": "2.0"}')
    (app / "function_app.py").write_text(textwrap.dedent(source))
    return app


def request(path: str, *, method: str = "GET", params: dict[str, str] | None = None,
            body: bytes = b"", headers: list[tuple[str, str]] | None = None) -> HttpRequestData:
    return HttpRequestData.build(method=method, url=f"http://localhost:7071{path}", headers=headers or [],
                                 query=[], route_params=params or {}, body=body)


def history(name: str, input_text: str | None, *events: dict[str, Any]) -> str:
    """A context JSON as the extension sends it (spec A.2.1): OrchestratorStarted, ExecutionStarted, …."""
    stamp = "2026-01-01T12:00:00Z"
    started = [
        {"EventType": 12, "EventId": -1, "IsPlayed": False, "Timestamp": stamp},
        {"EventType": 0, "EventId": -1, "IsPlayed": False, "Timestamp": stamp,
         "OrchestrationInstance": {"InstanceId": "inst-1", "ExecutionId": "exec-1"}, "ParentInstance": None,
         "Name": name, "Version": "", "Input": input_text, "Tags": None},
    ]
    return json.dumps({
        "history": [*started, *events], "input": input_text, "instanceId": "inst-1", "isReplaying": False,
        "parentInstanceId": None, "upperSchemaVersion": 1, "upperSchemaVersionNew": 2,
        "longRunningTimerIntervalDuration": "3.00:00:00", "maximumShortTimerDuration": "6.00:00:00",
        "defaultHttpAsyncRequestSleepTimeMillseconds": 30000,
    })


def test_sync_http_function_gets_context_and_fresh_invocation_ids() -> None:
    """A sync function runs with an injected func.Context whose invocation id differs per call."""
    async def scenario(worker: Worker) -> list[bytes]:
        fn = worker.functions["hello"]
        return [(await worker.invoke_http(fn, request("/api/hello/ann", params={"name": "ann"}))).body
                for _ in range(2)]

    first, second = with_worker("http_app", scenario)
    assert first.startswith(b"hello ann from hello (") and second.startswith(b"hello ann from hello (")
    assert first != second


def test_async_http_function_sees_the_worker_shaped_request() -> None:
    """An async function receives a func.HttpRequest built from the host-shaped request datum."""
    data = HttpRequestData.build(
        method="post", url="http://localhost:7071/api/echo/x?a=1&a=2&b=",
        headers=[("X-Multi", "1"), ("x-multi", "2"), ("Empty", "")], query=[("a", "1"), ("a", "2"), ("b", "")],
        route_params={"rest": "x"}, body=b'{"k": 1}',
    )

    async def scenario(worker: Worker) -> Any:
        return await worker.invoke_http(worker.functions["echo"], data)

    response = with_worker("http_app", scenario)
    assert response.status == 201 and response.header("content-type") == "application/json"
    echoed = json.loads(response.body)
    assert echoed["method"] == "POST"
    assert echoed["headers"] == {"x-multi": "1,2"}
    assert echoed["query"] == {"a": "1,2"}
    assert echoed["route"] == {"rest": "x"}
    assert echoed["body"] == '{"k": 1}'


def test_str_return_is_plain_text_and_cookies_become_set_cookie() -> None:
    """A str return maps to 200 text/plain, and Set-Cookie headers come back as host-formatted cookies."""
    async def scenario(worker: Worker) -> Any:
        plain = await worker.invoke_http(worker.functions["plain"], request("/api/plain"))
        cookies = await worker.invoke_http(worker.functions["cookies"], request("/api/cookie"))
        return plain, cookies

    plain, cookies = with_worker("http_app", scenario)
    assert (plain.status, plain.body, plain.header("Content-Type")) == (200, b"just text",
                                                                         "text/plain; charset=utf-8")
    assert cookies.status == 204 and cookies.header("X-Custom") == "yes"
    assert [v for k, v in cookies.headers if k == "Set-Cookie"] == [
        "a=1; path=/; httponly", "b=two%20words; max-age=60; path=/; secure; samesite=lax",
    ]


def test_raising_function_reports_worker_message_and_traceback() -> None:
    """A user exception becomes FunctionInvocationError with ``Type: message`` and the user's frames."""
    async def scenario(worker: Worker) -> FunctionInvocationError:
        with pytest.raises(FunctionInvocationError) as caught:
            await worker.invoke_http(worker.functions["boom"], request("/api/boom"))
        return caught.value

    error = with_worker("http_app", scenario)
    assert error.function_name == "boom"
    assert error.message == "ValueError: secret internals"
    assert "function_app.py" in error.details and error.details.rstrip().endswith("ValueError: secret internals")
    assert isinstance(error.__cause__, ValueError)


def test_orchestrator_episode_returns_state_json() -> None:
    """A first episode returns the SDK's OrchestratorState with the CallActivity action and custom status."""
    async def scenario(worker: Worker) -> str:
        return await worker.invoke_orchestrator("greeter", history("greeter", json.dumps("Tokyo")))

    state = json.loads(with_worker("durable_app", scenario))
    assert state["isDone"] is False
    assert state["actions"] == [[{"actionType": 0, "functionName": "SayHello", "input": '"Tokyo"'}]]
    assert state["customStatus"] == {"stage": "greeting"}


def test_orchestrator_completes_after_task_completed() -> None:
    """Replaying TaskScheduled + TaskCompleted finishes the orchestration with its output."""
    stamp = "2026-01-01T12:00:01Z"
    events = [
        {"EventType": 4, "EventId": 0, "IsPlayed": False, "Timestamp": stamp, "Name": "SayHello", "Version": "",
         "Input": None},
        {"EventType": 13, "EventId": -1, "IsPlayed": False, "Timestamp": stamp},
        {"EventType": 12, "EventId": -1, "IsPlayed": False, "Timestamp": stamp},
        {"EventType": 5, "EventId": -1, "IsPlayed": False, "Timestamp": stamp, "TaskScheduledId": 0,
         "Result": '"Hello Tokyo!"'},
    ]

    async def scenario(worker: Worker) -> str:
        # Durable names match case-insensitively, as the extension's FunctionName does.
        return await worker.invoke_orchestrator("GREETER", history("greeter", json.dumps("Tokyo"), *events))

    state = json.loads(with_worker("durable_app", scenario))
    assert state["isDone"] is True and state["output"] == {"greeting": "Hello Tokyo!"}


def test_activity_result_is_json_text() -> None:
    """An activity gets the decoded action input and returns its result as JSON text."""
    async def scenario(worker: Worker) -> str | None:
        return await worker.invoke_activity("SayHello", json.dumps("Tokyo"))

    assert with_worker("durable_app", scenario) == '"Hello Tokyo!"'


def test_activity_failure_keeps_the_exception_text() -> None:
    """A failing activity raises FunctionInvocationError with the worker's ``Type: message`` text."""
    async def scenario(worker: Worker) -> FunctionInvocationError:
        with pytest.raises(FunctionInvocationError) as caught:
            await worker.invoke_activity("explode", '"boom"')
        return caught.value

    error = with_worker("durable_app", scenario)
    assert error.function_name == "explode" and error.message == "KeyError: 'boom'"
    assert "raise KeyError(value)" in error.details


def test_orchestrator_failure_preserves_out_of_proc_data() -> None:
    """An orchestrator failing on a TaskFailed keeps the ``$OutOfProcData$`` state JSON intact."""
    stamp = "2026-01-01T12:00:01Z"
    events = [
        {"EventType": 4, "EventId": 0, "IsPlayed": False, "Timestamp": stamp, "Name": "explode", "Version": "",
         "Input": None},
        {"EventType": 13, "EventId": -1, "IsPlayed": False, "Timestamp": stamp},
        {"EventType": 12, "EventId": -1, "IsPlayed": False, "Timestamp": stamp},
        {"EventType": 6, "EventId": -1, "IsPlayed": False, "Timestamp": stamp, "TaskScheduledId": 0,
         "Reason": "Activity function 'explode' failed: KeyError: 'x'", "Details": "{}"},
    ]

    async def scenario(worker: Worker) -> FunctionInvocationError:
        with pytest.raises(FunctionInvocationError) as caught:
            await worker.invoke_orchestrator("Failer", history("Failer", '"x"', *events))
        return caught.value

    error = with_worker("durable_app", scenario)
    head, _, state_text = error.message.partition("\n\n$OutOfProcData$:")
    assert "Activity function 'explode' failed: KeyError: 'x'" in head
    state = json.loads(state_text)
    assert state["actions"] == [[{"actionType": 0, "functionName": "explode", "input": '"x"'}]]
    assert state["error"].startswith("Activity function 'explode' failed")


def test_unknown_durable_name_is_function_not_found() -> None:
    """Asking for a durable function the app lacks raises FunctionNotFoundError."""
    async def scenario(worker: Worker) -> None:
        with pytest.raises(FunctionNotFoundError, match="'Nope' doesn't exist"):
            await worker.invoke_activity("Nope", None)

    with_worker("durable_app", scenario)


def test_sync_functions_see_the_invocation_id_in_thread_local(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """A sync function runs in the pool sized by PYTHON_THREADPOOL_THREAD_COUNT with its id thread-local."""
    monkeypatch.setenv("PYTHON_THREADPOOL_THREAD_COUNT", "3")
    app = app_with(tmp_path, """
        import threading
        import azure.functions as func
        app = func.FunctionApp()

        @app.route(route="who")
        def who(req: func.HttpRequest, context: func.Context) -> str:
            same = context.thread_local_storage.invocation_id == context.invocation_id
            return f"{threading.current_thread().name} {same}"
    """)

    async def scenario(worker: Worker) -> bytes:
        assert worker._executor is not None and worker._executor._max_workers == 3
        return (await worker.invoke_http(worker.functions["who"], request("/api/who"))).body

    thread, same = with_worker(app, scenario).decode().split()
    assert thread.startswith("worker-sync") and same == "True"


def test_durable_client_binding_comes_from_the_host_callback(tmp_path: Path) -> None:
    """A durableClient parameter receives the JSON the host's client_binding callback builds."""
    app = app_with(tmp_path, """
        import azure.durable_functions as df
        import azure.functions as func
        app = df.DFApp()

        @app.route(route="hub")
        @app.durable_client_input(client_name="client", task_hub="OtherHub", connection_name="Conn")
        async def hub(req: func.HttpRequest, client) -> str:
            return client._orchestration_bindings.task_hub_name
    """)
    seen: list[tuple[str | None, str | None]] = []

    def binding(task_hub: str | None, connection: str | None) -> str:
        seen.append((task_hub, connection))
        return json.dumps({"taskHubName": task_hub, "creationUrls": {}, "managementUrls": {}, "baseUrl": "",
                           "requiredQueryStringParameters": "", "rpcBaseUrl": "http://127.0.0.1:1/durabletask/"})

    async def scenario(worker: Worker) -> bytes:
        worker.client_binding = binding
        return (await worker.invoke_http(worker.functions["hub"], request("/api/hub"))).body

    assert with_worker(app, scenario) == b"OtherHub"
    assert seen == [("OtherHub", "Conn")]


def test_invocations_on_a_worker_thread_answer_and_log_as_the_loop_ones_do(caplog: pytest.LogCaptureFixture) -> None:
    """``invoke_*_here`` on a pool thread gives the same replies, failures and log lines as ``invoke_*``."""
    caplog.set_level(logging.INFO)
    context = history("greeter", json.dumps("Tokyo"))

    def here(worker: Worker) -> tuple[str, str | None, FunctionInvocationError]:
        state = worker.invoke_orchestrator_here("greeter", context)
        greeting = worker.invoke_activity_here("SayHello", json.dumps("Tokyo"))
        with pytest.raises(FunctionInvocationError) as caught:
            worker.invoke_activity_here("explode", '"boom"')
        return state, greeting, caught.value

    async def scenario(worker: Worker) -> tuple[tuple[str, str | None, FunctionInvocationError], str]:
        return await worker.on_worker_thread(lambda: here(worker)), await worker.invoke_orchestrator("greeter",
                                                                                                    context)

    (state, greeting, error), on_loop = with_worker("durable_app", scenario)
    assert json.loads(state) == json.loads(on_loop)
    assert greeting == '"Hello Tokyo!"'
    assert error.function_name == "explode" and error.message == "KeyError: 'boom'"
    assert "raise KeyError(value)" in error.details
    lines = [(r.getMessage().split(" (")[0], r.threadName) for r in caplog.records if r.name.startswith("Function.")]
    assert lines[:6] == [
        ("Executing 'Functions.greeter'", lines[0][1]), ("Executed 'Functions.greeter'", lines[0][1]),
        ("Executing 'Functions.say_hello'", lines[0][1]), ("Executed 'Functions.say_hello'", lines[0][1]),
        ("Executing 'Functions.explode'", lines[0][1]), ("Executed 'Functions.explode'", lines[0][1]),
    ]
    assert lines[0][1].startswith("worker-sync")
    assert any(r.getMessage().startswith("Exception while executing function: Functions.explode")
               for r in caplog.records)


def test_only_sync_durable_functions_without_storage_bindings_run_on_a_worker_thread(tmp_path: Path) -> None:
    """An async activity, or one with a storage input, is read and run from the host's loop as before."""
    app = app_with(tmp_path, """
        import azure.durable_functions as df
        import azure.functions as func
        app = df.DFApp()

        @app.orchestration_trigger(context_name="context")
        def Flow(context):
            yield context.call_activity("Plain", 1)

        @app.activity_trigger(input_name="value")
        def Plain(value: int) -> int:
            return value

        @app.activity_trigger(input_name="value")
        async def Awaiting(value: int) -> int:
            return value

        @app.activity_trigger(input_name="value")
        @app.blob_input(arg_name="blob", path="box/item.txt", connection="AzureWebJobsStorage")
        def Reading(value: int, blob: str) -> int:
            return value
    """)

    async def scenario(worker: Worker) -> list[bool]:
        return [worker.can_invoke_here("orchestrator", "Flow"), worker.can_invoke_here("activity", "Plain"),
                worker.can_invoke_here("activity", "Awaiting"), worker.can_invoke_here("activity", "Reading"),
                worker.can_invoke_here("activity", "Missing")]

    assert with_worker(app, scenario) == [True, True, False, False, False]
