"""A toy app whose orchestrations exercise each part of the durable engine."""

import itertools
import time
from datetime import timedelta

import azure.durable_functions as df
import azure.functions as func

app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)
_replays = itertools.count()
_flaky_calls: dict[str, int] = {}
_slow_calls: dict[str, int] = {}


@app.orchestration_trigger(context_name="context")
def Greeter(context: df.DurableOrchestrationContext):
    settings = context.get_input()
    greeting = yield context.call_activity("Hello", settings["name"])
    context.set_custom_status({"greeting": greeting})
    deadline = context.current_utc_datetime + timedelta(seconds=settings.get("timeout", 60))
    timer = context.create_timer(deadline)
    go = context.wait_for_external_event("Go")
    winner = yield context.task_any([go, timer])
    if winner == go:
        timer.cancel()
        return {"greeting": greeting, "go": go.result}
    return {"greeting": greeting, "go": None}


@app.orchestration_trigger(context_name="context")
def Drifting(context: df.DurableOrchestrationContext):
    # Deliberately nondeterministic: the first run calls Hello, every replay calls Echo.
    name = "Hello" if next(_replays) == 0 else "Echo"
    yield context.call_activity(name, "x")
    yield context.wait_for_external_event("never")


@app.orchestration_trigger(context_name="context")
def Chatty(context: df.DurableOrchestrationContext):
    context.set_custom_status("x" * 9000)
    yield context.call_activity("Hello", "x")


@app.orchestration_trigger(context_name="context")
def Looper(context: df.DurableOrchestrationContext):
    n = context.get_input() or 0
    if n < 3:
        yield context.call_activity("Hello", str(n))
        context.continue_as_new(n + 1)
        return None
    return n


@app.orchestration_trigger(context_name="context")
def Parent(context: df.DurableOrchestrationContext):
    child = yield context.call_sub_orchestrator("Child", 21)
    return child * 2


@app.orchestration_trigger(context_name="context")
def Child(context: df.DurableOrchestrationContext):
    value = context.get_input()
    echoed = yield context.call_activity("Echo", value)
    return echoed


@app.orchestration_trigger(context_name="context")
def Retrier(context: df.DurableOrchestrationContext):
    options = df.RetryOptions(first_retry_interval_in_milliseconds=10, max_number_of_attempts=3)
    return (yield context.call_activity_with_retry("Flaky", options, context.get_input()))


@app.orchestration_trigger(context_name="context")
def CallsMissing(context: df.DurableOrchestrationContext):
    yield context.call_activity("NoSuchActivity", 1)


@app.orchestration_trigger(context_name="context")
def FanOut(context: df.DurableOrchestrationContext):
    tasks = [context.call_activity("Echo", i) for i in range(context.get_input())]
    results = yield context.task_all(tasks)
    return sum(results)


@app.activity_trigger(input_name="name")
def Hello(name: str) -> str:
    return f"Hello {name}!"


@app.activity_trigger(input_name="value")
def Echo(value: int) -> int:
    return value


@app.activity_trigger(input_name="key")
def Flaky(key: str) -> str:
    _flaky_calls[key] = _flaky_calls.get(key, 0) + 1
    if _flaky_calls[key] < 3:
        raise RuntimeError(f"attempt {_flaky_calls[key]} failed")
    return f"ok after {_flaky_calls[key]}"


@app.orchestration_trigger(context_name="context")
def FailsOnce(context: df.DurableOrchestrationContext):
    return (yield context.call_activity("Flaky", context.get_input()))


@app.orchestration_trigger(context_name="context")
def BrokenChild(context: df.DurableOrchestrationContext):
    yield context.call_activity("Echo", 1)
    raise ValueError("child broke")


@app.orchestration_trigger(context_name="context")
def ParentOfBroken(context: df.DurableOrchestrationContext):
    try:
        yield context.call_sub_orchestrator("BrokenChild")
    except Exception as error:  # the parent sees the child's reason and details
        return str(error)
    return "no failure"


@app.activity_trigger(input_name="value")
def Explode(value: str) -> str:
    raise KeyError(value)


@app.orchestration_trigger(context_name="context")
def CatchesActivityFailure(context: df.DurableOrchestrationContext):
    try:
        yield context.call_activity("Explode", "x")
    except Exception as error:
        return str(error)
    return "no failure"


@app.orchestration_trigger(context_name="context")
def HttpCaller(context: df.DurableOrchestrationContext):
    request = context.get_input()
    response = yield context.call_http(request["method"], request["uri"], request.get("content"),
                                       request.get("headers"))
    return response


@app.entity_trigger(context_name="context")
def Tally(context: df.DurableEntityContext) -> None:
    total = context.get_state(lambda: 0) + int(context.get_input() or 0)
    context.set_state(total)
    context.set_result(total)


@app.orchestration_trigger(context_name="context")
def Chain(context: df.DurableOrchestrationContext):
    total = 0
    for step in range(context.get_input()):
        total += yield context.call_activity("Echo", step)
    return total


@app.orchestration_trigger(context_name="context")
def SlowStep(context: df.DurableOrchestrationContext):
    return (yield context.call_activity("Slow", context.get_input()))


@app.activity_trigger(input_name="request")
def Slow(request: dict) -> int:
    """Sleeps, then says how many times it has run for this key."""
    _slow_calls[request["key"]] = _slow_calls.get(request["key"], 0) + 1
    time.sleep(request["seconds"])
    return _slow_calls[request["key"]]


@app.orchestration_trigger(context_name="context")
def Ticker(context: df.DurableOrchestrationContext):
    # An eternal orchestration in miniature: a timer, then a new generation, then a wait that never ends.
    ticks = context.get_input() or 0
    if ticks < 2:
        yield context.create_timer(context.current_utc_datetime + timedelta(seconds=1))
        context.continue_as_new(ticks + 1)
        return None
    yield context.wait_for_external_event("Stop")
    return ticks
