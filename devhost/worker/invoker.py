"""The in-process stand-in for the Python language worker: load the app once, invoke its functions.

Async functions run on the worker's own event loop in its own thread (``UserCodeLoop``), sync functions
in a thread pool, so that user code that blocks never stalls the host's loop (the real worker is a
separate process). Code already on one of the pool's threads may invoke sync functions there directly
(``invoke_*_here``): the durable engine runs an episode, the activity it asks for and the episode that
activity's result leads to one after the other on one thread, without a trip back to the host's loop in
between. The Durable SDK caches one
aiohttp session globally, which is why the worker's loop lives as long as the worker.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import contextvars
import logging
import os
import sys
import time
import traceback
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Protocol, TypeVar, cast

from azure.functions import meta

from devhost import ids, spans
from devhost.bindings.expressions import json_properties
from devhost.bindings.support import STORAGE_OUTPUTS, unsupported_reason
from devhost.config import HostConfig
from devhost.errors import FunctionInvocationError, FunctionNotFoundError
from devhost.event_loop import settle
from devhost.worker import bindings, sdk_speedups
from devhost.worker.context import Context, Out, invocation_local
from devhost.worker.http_data import HttpRequestData, HttpResponseData
from devhost.worker.loader import LoadedFunction, import_app, index_app, load_function
from devhost.worker.user_loop import UserCodeLoop

T = TypeVar("T")

log = logging.getLogger("devhost.worker")

HTTP_REASON = "This function was programmatically called via the host APIs."
NULL_REASON = "(null)"  # what the host prints for durable triggers


class StorageBindingProvider(Protocol):
    """Reads storage inputs and writes storage outputs (devhost.bindings.storage.StorageBindings)."""

    async def read_input(self, raw: Mapping[str, Any], pytype: Any, data: Mapping[str, Any]) -> meta.Datum: ...

    async def write_output(self, raw: Mapping[str, Any], datum: meta.Datum, data: Mapping[str, Any]) -> None: ...


# The invocation id of the code running now, for log correlation in async code (sync code has the
# worker's thread-local, ``context.thread_local_storage.invocation_id``).
current_invocation_id: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "devhost_invocation_id", default=None
)

# Frames from these directories lead into user code; they are trimmed from reported stacks.
_INTERNAL_DIRS = (str(Path(__file__).resolve().parent.parent), str(Path(concurrent.futures.__file__).parent))

__all__ = ["HttpRequestData", "HttpResponseData", "LoadedFunction", "Worker", "current_invocation_id"]


class Worker:
    """Loads one function app and invokes its functions through the ``azure.functions`` converters."""

    def __init__(self, config: HostConfig) -> None:
        self.config = config
        # Set by the host: (taskHub, connectionName) -> the durableClient binding JSON.
        self.client_binding: Callable[[str | None, str | None], str] | None = None
        self.functions: dict[str, LoadedFunction] = {}
        self.orchestrators: dict[str, LoadedFunction] = {}
        self.activities: dict[str, LoadedFunction] = {}
        self.entities: dict[str, LoadedFunction] = {}
        self.http_functions: list[LoadedFunction] = []
        # Set by the host: storage inputs and outputs. Functions devhost cannot run, with the reason.
        self.storage_bindings: StorageBindingProvider | None = None
        self.refusals: dict[str, str] = {}
        self._executor: ThreadPoolExecutor | None = None
        self._user_loop: UserCodeLoop | None = None
        self._loggers: dict[str, logging.Logger] = {}  # Function.<name>, looked up once per function

    # -- loading -------------------------------------------------------------------------------------

    def load(self) -> None:
        """Import the app and index it; raises AppLoadError with the worker's wording."""
        app = import_app(self.config.app_dir, self.config.script_file)
        loaded = [load_function(f) for f in index_app(app)]
        sdk_speedups.install()
        self.functions = {f.name: f for f in loaded}
        self.http_functions = [f for f in loaded if f.is_http]
        self.orchestrators = _by_durable_name(loaded, "orchestrationTrigger")
        self.activities = _by_durable_name(loaded, "activityTrigger")
        self.entities = _by_durable_name(loaded, "entityTrigger")
        self.refusals = {}
        for fn in loaded:
            reason = unsupported_reason(fn.trigger_type, fn.raw_bindings)
            if reason is not None:
                self.refusals[fn.name] = reason
                log.warning("Function '%s' cannot run on devhost: %s. Invoking it fails.", fn.name, reason)
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=_thread_count(), thread_name_prefix="worker-sync")
        if self._user_loop is None:
            self._user_loop = UserCodeLoop()
        log.info("Indexed function app and found %d functions", len(loaded))

    async def call_on_user_loop(self, fn: Callable[[], T]) -> T:
        """Call ``fn`` on the loop the app's async functions run on (for state bound to that loop)."""
        if self._user_loop is None:
            raise RuntimeError("the worker is not loaded or already closed")

        async def call() -> T:
            return fn()

        return await self._user_loop.run(call())

    # -- invocation entry points ------------------------------------------------------------------

    async def invoke_http(self, fn: LoadedFunction, request: HttpRequestData) -> HttpResponseData:
        """Run an HTTP-triggered function; raises FunctionInvocationError when it fails."""
        # Binding expressions see a JSON body's properties, the query and the route values, as in the host;
        # the body is only parsed for functions with storage bindings.
        binding_data: dict[str, Any] = {}
        if fn.has_storage_bindings:
            binding_data = {**json_properties(request.body), **request.query, **request.route_params}
        result, outputs = await self._invoke(fn, request.datum(), reason=HTTP_REASON, binding_data=binding_data)
        if fn.return_type is not None and fn.return_type.binding_type == bindings.HTTP_OUTPUT:
            return HttpResponseData.from_datum(result)
        http_out = next((outputs[n] for n, i in fn.output_types.items()
                         if i.binding.type == bindings.HTTP_OUTPUT and n in outputs), None)
        return HttpResponseData.from_datum(http_out)

    async def invoke_orchestrator(self, name: str, context_json: str) -> str:
        """Run one orchestrator episode; returns the OrchestratorState JSON text."""
        fn = _find(self.orchestrators, name, "orchestrator")
        result, _ = await self._invoke(fn, meta.Datum(context_json, "string"), reason=NULL_REASON)
        return _json_text(result)

    async def invoke_entity(self, name: str, context_json: str) -> str:
        """Run one entity batch; returns the entity state JSON text the SDK produces."""
        fn = _find(self.entities, name, "entity")
        result, _ = await self._invoke(fn, meta.Datum(context_json, "string"), reason=NULL_REASON)
        return _json_text(result)

    async def invoke_activity(self, name: str, input_json: str | None) -> str | None:
        """Run an activity with the CallActivity action's input JSON; returns the result JSON text."""
        fn = _find(self.activities, name, "activity")
        result, _ = await self._invoke(fn, _activity_input(input_json), reason=NULL_REASON)
        return _activity_result(result)

    def can_invoke_here(self, kind: str, name: str) -> bool:
        """Whether ``invoke_*_here`` can run this orchestrator or activity: a sync one that reads and writes
        no storage binding (those are read and written on the host's loop) and that devhost runs."""
        fn = (self.orchestrators if kind == "orchestrator" else self.activities).get(name)
        return (fn is not None and not fn.is_async and not fn.has_storage_bindings and fn.name not in self.refusals
                and self._executor is not None)

    def on_worker_thread(self, job: Callable[[], T]) -> asyncio.Future[T]:
        """Run ``job`` on one of the threads sync functions run on (it may call ``invoke_*_here`` there)."""
        if self._executor is None:
            raise RuntimeError("the worker is not loaded or already closed")
        return run_in_thread(self._executor, contextvars.copy_context().run, job)

    def invoke_orchestrator_here(self, name: str, context_json: str) -> str:
        """``invoke_orchestrator`` on the calling thread, one of the pool's (see ``can_invoke_here``)."""
        fn = _find(self.orchestrators, name, "orchestrator")
        return _json_text(self._invoke_here(fn, meta.Datum(context_json, "string")))

    def invoke_activity_here(self, name: str, input_json: str | None) -> str | None:
        """``invoke_activity`` on the calling thread, one of the pool's (see ``can_invoke_here``)."""
        fn = _find(self.activities, name, "activity")
        return _activity_result(self._invoke_here(fn, _activity_input(input_json)))

    async def invoke_trigger(self, fn: LoadedFunction, trigger: meta.Datum, *, reason: str,
                             metadata: Mapping[str, meta.Datum] | None = None,
                             binding_data: Mapping[str, Any] | None = None) -> None:
        """Run a timer-, queue- or blob-triggered function; raises FunctionInvocationError when it fails."""
        await self._invoke(fn, trigger, reason=reason, trigger_metadata=metadata, binding_data=binding_data)

    async def close(self) -> None:
        """Shut down the sync thread pool and the Durable SDK's global aiohttp session."""
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None
        if self._user_loop is not None:
            # The SDK's session belongs to the worker's loop: close it there, then stop that loop.
            await self._user_loop.close(close_durable_client_session())
            self._user_loop = None
        await close_durable_client_session()

    # -- the invocation itself ------------------------------------------------------------------

    async def _invoke(self, fn: LoadedFunction, trigger: meta.Datum, *, reason: str,
                      trigger_metadata: Mapping[str, meta.Datum] | None = None,
                      binding_data: Mapping[str, Any] | None = None,
                      ) -> tuple[meta.Datum | None, dict[str, meta.Datum]]:
        with self._invocation(fn, reason) as invocation:
            return await self._call(fn, invocation.id, trigger, trigger_metadata or {}, binding_data or {})

    def _invoke_here(self, fn: LoadedFunction, trigger: meta.Datum) -> meta.Datum | None:
        """A sync durable function without storage bindings, run on the calling thread with the same log lines."""
        with self._invocation(fn, NULL_REASON) as invocation:
            inputs = {param: self._input_datum(fn, info.binding, trigger) for param, info in fn.input_types.items()}
            unread = [param for param, datum in inputs.items() if datum is None]
            if fn.is_async or unread:
                raise RuntimeError(f"function {fn.name!r} cannot run on a worker thread by itself")
            args, outs = self._arguments(fn, invocation.id, cast(dict[str, meta.Datum], inputs), {})
            ret, _ = self._results(fn, _run_sync(invocation.id, fn.func, args), outs)
            sys.stdout.flush()
            return ret

    @contextlib.contextmanager
    def _invocation(self, fn: LoadedFunction, reason: str) -> Iterator[_Invocation]:
        """The host's log lines and the span around one invocation; a failure becomes FunctionInvocationError."""
        invocation = _Invocation(self._logger(fn), fn.name, reason)
        try:
            refusal = self.refusals.get(fn.name)
            if refusal is not None:
                raise UnsupportedFunctionError(refusal)
            yield invocation
        except Exception as exc:
            raise invocation.failed(exc) from exc
        finally:
            invocation.end()
        invocation.succeeded()

    def _logger(self, fn: LoadedFunction) -> logging.Logger:
        flog = self._loggers.get(fn.name)
        if flog is None:
            flog = self._loggers[fn.name] = logging.getLogger(f"Function.{fn.name}")
        return flog

    async def _call(self, fn: LoadedFunction, invocation_id: str, trigger: meta.Datum,
                    trigger_metadata: Mapping[str, meta.Datum],
                    binding_data: Mapping[str, Any]) -> tuple[meta.Datum | None, dict[str, meta.Datum]]:
        raw_by_name = fn.raw_by_name
        inputs: dict[str, meta.Datum] = {}
        for param, info in fn.input_types.items():
            datum = self._input_datum(fn, info.binding, trigger)
            if datum is None:
                datum = await self._storage().read_input(raw_by_name[info.binding.name], info.pytype, binding_data)
            inputs[param] = datum
        args, outs = self._arguments(fn, invocation_id, inputs, trigger_metadata)

        if fn.is_async:
            if self._user_loop is None:
                raise RuntimeError("the worker is not loaded or already closed")
            result = await self._user_loop.run(fn.func(**args))
        else:
            if self._executor is None:
                raise RuntimeError("the worker is not loaded or already closed")
            ctx = contextvars.copy_context()
            result = await run_in_thread(self._executor, ctx.run, _run_sync, invocation_id, fn.func, args)

        ret, outputs = self._results(fn, result, outs)
        # Storage outputs are written once the function has succeeded, as the host flushes them.
        if fn.has_storage_outputs:
            storage_writes = [(raw_by_name[name], datum) for name, datum in outputs.items()
                              if raw_by_name[name].get("type") in STORAGE_OUTPUTS]
            if ret is not None and raw_by_name.get("$return", {}).get("type") in STORAGE_OUTPUTS:
                storage_writes.append((raw_by_name["$return"], ret))
            for raw, datum in storage_writes:
                await self._storage().write_output(raw, datum, binding_data)
        sys.stdout.flush()  # as the worker does, so print() output shows up promptly
        return ret, outputs

    def _arguments(self, fn: LoadedFunction, invocation_id: str, inputs: Mapping[str, meta.Datum],
                   trigger_metadata: Mapping[str, meta.Datum]) -> tuple[dict[str, Any], dict[str, Out[Any]]]:
        """The function's keyword arguments from its input data, and its output parameters."""
        args: dict[str, Any] = {}
        for param, info in fn.input_types.items():
            args[param] = bindings.decode(info.binding_type, inputs[param], trigger_metadata=trigger_metadata)
        if fn.requires_context:
            args["context"] = Context(fn.name, fn.directory, invocation_id)
        outs: dict[str, Out[Any]] = {name: Out() for name in fn.output_types}
        args.update(outs)
        return args, outs

    def _results(self, fn: LoadedFunction, result: Any,
                 outs: Mapping[str, Out[Any]]) -> tuple[meta.Datum | None, dict[str, meta.Datum]]:
        """The return value and the output parameters' values, encoded for their bindings."""
        if result is not None and fn.return_type is None:
            raise RuntimeError(f"function {fn.name!r} without a $return binding returned a non-None value")
        outputs: dict[str, meta.Datum] = {}
        for name, info in fn.output_types.items():
            value = outs[name].get()
            if value is not None:
                outputs[name] = bindings.encode(info.binding_type, value, pytype=info.pytype)
        ret = None
        if fn.return_type is not None:
            ret = bindings.encode(fn.return_type.binding_type, result, pytype=fn.return_type.pytype)
        return ret, outputs

    def _storage(self) -> StorageBindingProvider:
        if self.storage_bindings is None:
            raise RuntimeError("no storage binding provider is attached to the worker")
        return self.storage_bindings

    def _input_datum(self, fn: LoadedFunction, binding: Any, trigger: meta.Datum) -> meta.Datum | None:
        if binding is fn.trigger or binding.name == fn.trigger.name:
            return trigger
        if binding.type == "durableClient":
            if self.client_binding is None:
                raise RuntimeError("no durable extension is attached to provide the durableClient binding")
            payload = self.client_binding(getattr(binding, "task_hub", None),
                                          getattr(binding, "connection_name", None))
            return meta.Datum(payload, "string")
        return None


class _Invocation:
    """One invocation's log lines, as the host writes them, and its span."""

    def __init__(self, flog: logging.Logger, name: str, reason: str) -> None:
        self.flog = flog
        self.name = name
        self.id = ids.uuid4_text()  # as the host gives each invocation
        flog.info("Executing 'Functions.%s' (Reason='%s', Id=%s)", name, reason, self.id)
        self.started = time.monotonic()
        self.token = current_invocation_id.set(self.id)

    def failed(self, exc: Exception) -> FunctionInvocationError:
        elapsed = round((time.monotonic() - self.started) * 1000)
        message = _exception_message(exc)
        self.flog.error("Executed 'Functions.%s' (Failed, Id=%s, Duration=%dms)", self.name, self.id, elapsed)
        stack, details = _user_traceback(exc)
        self.flog.error("Exception while executing function: Functions.%s. Result: Failure\nException: %s\n"
                        "Stack: %s", self.name, message, stack.rstrip())
        return FunctionInvocationError(self.name, message=message, details=details)

    def end(self) -> None:
        current_invocation_id.reset(self.token)
        if spans.on:
            spans.record("invocation", self.name, self.started)

    def succeeded(self) -> None:
        elapsed = round((time.monotonic() - self.started) * 1000)
        self.flog.info("Executed 'Functions.%s' (Succeeded, Id=%s, Duration=%dms)", self.name, self.id, elapsed)


class UnsupportedFunctionError(RuntimeError):
    """The function uses a trigger or binding devhost cannot run (listed at start)."""


def run_in_thread(executor: ThreadPoolExecutor, fn: Callable[..., T], *args: Any) -> asyncio.Future[T]:
    """``loop.run_in_executor`` with one thread-safe call back instead of a concurrent future chained to
    an asyncio one; cancelling the returned future before the call starts keeps it from running."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[T] = loop.create_future()

    def work() -> None:
        try:
            outcome: tuple[str, Any] = ("value", fn(*args))
        except BaseException as exc:  # as the executor's work item does: the caller sees every failure
            outcome = ("error", exc)
        if not loop.is_closed():
            try:
                loop.call_soon_threadsafe(settle, done, *outcome)
            except RuntimeError:
                pass  # the loop closed meanwhile: nobody waits for this any more

    submitted = executor.submit(work)
    done.add_done_callback(lambda f: submitted.cancel() if f.cancelled() else None)
    return done


def _run_sync(invocation_id: str, function: Callable[..., Any], args: Mapping[str, Any]) -> Any:
    # The worker exposes the invocation id to the user's thread through a thread-local.
    invocation_local.invocation_id = invocation_id
    try:
        return function(**args)
    finally:
        invocation_local.invocation_id = None


def _user_traceback(exc: BaseException) -> tuple[str, str]:
    """(stack, full traceback) without devhost's own leading frames: users need their code's frames."""
    te = traceback.TracebackException.from_exception(exc)
    frames = list(te.stack)
    while frames and (frames[0].filename.startswith(_INTERNAL_DIRS)):
        frames.pop(0)
    te.stack = traceback.StackSummary.from_list(frames)
    return "".join(te.stack.format()), "".join(te.format())


def _exception_message(exc: BaseException) -> str:
    """The worker's ``RpcException.message``: ``f'{type(exc).__name__}: {exc}'``."""
    try:
        return f"{type(exc).__name__}: {exc}"
    except Exception:
        return "Unhandled exception in function. Could not serialize original exception message."


def _json_text(datum: meta.Datum | None) -> str:
    if datum is None or datum.value is None:
        return "null"
    value = datum.value
    return value.decode() if isinstance(value, bytes | bytearray) else str(value)


def _activity_input(input_json: str | None) -> meta.Datum:
    # A missing input is JSON null to the SDK (what call_activity(name) sends anyway).
    return meta.Datum("null" if input_json is None else input_json, "string")


def _activity_result(result: meta.Datum | None) -> str | None:
    return None if result is None or result.value is None else _json_text(result)


def _by_durable_name(loaded: list[LoadedFunction], trigger_type: str) -> dict[str, LoadedFunction]:
    return {f.durable_name: f for f in loaded if f.trigger_type == trigger_type and f.durable_name}


def _find(table: Mapping[str, LoadedFunction], name: str, kind: str) -> LoadedFunction:
    # The extension's FunctionName compares case-insensitively.
    found = table.get(name) or next((f for n, f in table.items() if n.lower() == name.lower()), None)
    if found is None:
        raise FunctionNotFoundError(
            f"The function '{name}' doesn't exist, is disabled, or is not an {kind} function."
        )
    return found


def _thread_count() -> int | None:
    """PYTHON_THREADPOOL_THREAD_COUNT, or None for the stdlib default min(32, cpu + 4)."""
    raw = os.environ.get("PYTHON_THREADPOOL_THREAD_COUNT")
    if not raw:
        return None
    try:
        count = int(raw)
    except ValueError:
        log.warning("PYTHON_THREADPOOL_THREAD_COUNT must be an integer")
        return None
    if count < 1:
        log.warning("PYTHON_THREADPOOL_THREAD_COUNT must be at least 1. Reverting to the default")
        return None
    return count


async def close_durable_client_session() -> None:
    """Close the Durable SDK's cached aiohttp session (private module state, only for a clean exit)."""
    http_utils = sys.modules.get("azure.durable_functions.models.utils.http_utils")
    if http_utils is None:
        return
    session = getattr(http_utils, "_client_session", None)
    if session is not None and not session.closed:
        await session.close()
    http_utils._client_session = None  # type: ignore[attr-defined]
    # The module-level lock binds to the loop it was first contended on; a fresh one keeps a later
    # loop (a restarted host, the next test) from tripping over it.
    http_utils._session_lock = asyncio.Lock()  # type: ignore[attr-defined]
