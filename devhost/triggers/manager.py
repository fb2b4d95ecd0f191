"""Starts and stops the listeners of timer-, queue- and blob-triggered functions, and runs one of them
on request (``POST /admin/functions/{name}``)."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from azure.functions import meta

from devhost import ids
from devhost.bindings.accounts import StorageAccounts
from devhost.bindings.connection import BindingError
from devhost.bindings.support import STORAGE_TRIGGERS
from devhost.errors import DevhostError
from devhost.triggers.blob import (
    POISON_QUEUE,
    BlobFunction,
    BlobPathPattern,
    BlobTriggerExecutor,
    BlobTriggerScanner,
    trigger_queue_name,
)
from devhost.triggers.queue import QueueListener, QueueSettings, ReceivedMessage
from devhost.triggers.timer import StatusStore, TimerListener, parse_schedule
from devhost.worker.loader import LoadedFunction

log = logging.getLogger("devhost.triggers")

ADMIN_REASON = "This function was programmatically called via the host APIs."
# The storage services each binding type uses on its own connection.
_BINDING_SERVICES = {"queue": ("queue",), "queueTrigger": ("queue",), "blob": ("blob",),
                     "blobTrigger": ("blob", "queue"), "table": ("table",)}


class TriggerWorker(Protocol):
    functions: dict[str, LoadedFunction]
    refusals: dict[str, str]

    async def invoke_trigger(self, fn: LoadedFunction, trigger: meta.Datum, *, reason: str,
                             metadata: Mapping[str, meta.Datum] | None = None,
                             binding_data: Mapping[str, Any] | None = None) -> None: ...


class AdminInvocationError(DevhostError):
    """``POST /admin/functions/{name}`` cannot run the function; ``status`` is the HTTP answer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _raw_trigger(fn: LoadedFunction) -> Mapping[str, Any]:
    return next(raw for raw in fn.raw_bindings if raw.get("type") == fn.trigger_type)


def uses_storage_triggers(functions: Mapping[str, LoadedFunction]) -> bool:
    return any(fn.trigger_type in STORAGE_TRIGGERS for fn in functions.values())


class TriggerManager:
    """All storage-backed trigger listeners of one app."""

    def __init__(self, worker: TriggerWorker, accounts: StorageAccounts, host_json: Mapping[str, Any],
                 host_id: str, *, disabled: Iterable[str] = ()) -> None:
        self.worker = worker
        # AzureWebJobs.<name>.Disabled: the host lists these but never starts their listeners.
        self.disabled = {name.lower() for name in disabled}
        self.accounts = accounts
        self.host_id = host_id
        self.settings = QueueSettings.from_host_json(host_json)
        self.timers: dict[str, TimerListener] = {}
        self.queues: list[QueueListener] = []
        self.blob_functions: dict[str, BlobFunction] = {}
        self.scanner: BlobTriggerScanner | None = None
        self.blob_executor: BlobTriggerExecutor | None = None
        self._background: set[asyncio.Task[None]] = set()

    def _candidates(self, kind: str) -> list[LoadedFunction]:
        return [fn for fn in self.worker.functions.values()
                if fn.trigger_type == kind and fn.name not in self.worker.refusals
                and fn.name.lower() not in self.disabled]

    def _refuse(self, fn: LoadedFunction, reason: str) -> None:
        self.worker.refusals[fn.name] = reason
        log.error("Function '%s' cannot run on devhost: %s. Invoking it fails.", fn.name, reason)

    def check_connections(self) -> None:
        """Refuse, before anything listens, each function with a storage binding whose connection does not
        resolve: the host fails such a function at indexing and runs the others."""
        for fn in self.worker.functions.values():
            if fn.name in self.worker.refusals or fn.name.lower() in self.disabled:
                continue
            for raw in fn.raw_bindings:
                services = _BINDING_SERVICES.get(str(raw.get("type")))
                if services is None:
                    continue
                try:
                    self.accounts.for_connection(raw.get("connection"), *services)
                except DevhostError as exc:
                    self._refuse(fn, f"binding '{raw.get('name')}': {exc}")
                    break

    async def start(self) -> None:
        self.check_connections()
        for fn in self._candidates("timerTrigger"):
            try:
                self.timers[fn.name] = self._timer(fn)
            except DevhostError as exc:
                self._refuse(fn, str(exc))
        for fn in self._candidates("queueTrigger"):
            try:
                self.queues.append(self._queue(fn))
            except DevhostError as exc:
                self._refuse(fn, str(exc))
        for fn in self._candidates("blobTrigger"):
            try:
                self.blob_functions[fn.name] = self._blob(fn)
            except DevhostError as exc:
                self._refuse(fn, str(exc))
        if self.blob_functions:
            self._start_blob_pipeline()
        for name, timer in list(self.timers.items()):
            try:
                await timer.start()  # reads and writes the schedule status: storage may be down
            except Exception as exc:
                del self.timers[name]
                self._refuse(self.worker.functions[name], f"the listener was unable to start: {exc}")
        for listener in self.queues:
            await listener.start()
        if self.scanner is not None:
            await self.scanner.start()

    async def stop(self) -> None:
        if self.scanner is not None:
            await self.scanner.stop()
        for listener in [*self.queues, *self.timers.values()]:
            await listener.stop()
        if self._background:
            await asyncio.wait(self._background, timeout=5)

    # -- building listeners ---------------------------------------------------------------------

    def _timer(self, fn: LoadedFunction) -> TimerListener:
        raw = _raw_trigger(fn)
        schedule_text = str(raw.get("schedule") or "")
        from devhost.bindings.expressions import resolve_settings

        schedule, frequent = parse_schedule(resolve_settings(schedule_text, self.accounts.environ))
        use_monitor = raw.get("useMonitor")
        monitor = (True if use_monitor is None else bool(use_monitor)) and not frequent
        store = StatusStore(self.accounts.for_connection(None, "blob").blobs, self.host_id) if monitor else None

        async def invoke(info: dict[str, Any]) -> None:
            await self.worker.invoke_trigger(fn, meta.Datum(json.dumps(info), "json"), reason=_timer_reason(info))

        return TimerListener(fn.name, schedule, run_on_startup=bool(raw.get("runOnStartup")), store=store,
                             invoke=invoke)

    def _queue(self, fn: LoadedFunction) -> QueueListener:
        raw = _raw_trigger(fn)
        from devhost.bindings.expressions import resolve_settings

        name = resolve_settings(str(raw.get("queueName") or ""), self.accounts.environ).lower()
        if not name:
            raise BindingError("the queue trigger has no queueName")
        account = self.accounts.for_connection(raw.get("connection"), "queue")

        async def handle(message: ReceivedMessage) -> None:
            await self.worker.invoke_trigger(
                fn, message.datum(), reason=f"New queue message detected on '{name}'.",
                metadata=message.metadata(), binding_data=message.binding_data())

        listener = QueueListener(account.queues.get_queue_client(name),
                                 account.queues.get_queue_client(f"{name}-poison"),
                                 self.settings, handle, label=name)
        self.accounts.watch_queue(account, name, listener.wake)
        return listener

    def _blob(self, fn: LoadedFunction) -> BlobFunction:
        raw = _raw_trigger(fn)
        from devhost.bindings.expressions import resolve_settings

        pattern = BlobPathPattern.parse(resolve_settings(str(raw.get("path") or ""), self.accounts.environ))
        # The host's blob trigger also opens a queue client on its connection (queueServiceUri is required).
        account = self.accounts.for_connection(raw.get("connection"), "blob", "queue")
        trigger_param = fn.input_types.get(fn.trigger.name)
        as_text = trigger_param is not None and trigger_param.pytype is str

        async def invoke(datum: meta.Datum, metadata: dict[str, meta.Datum], data: dict[str, Any]) -> None:
            await self.worker.invoke_trigger(
                fn, datum, reason=f"New blob detected({pattern.container}/...): {data.get('BlobTrigger')}",
                metadata=metadata, binding_data=data)

        return BlobFunction(fn.name, pattern, account.blobs, as_text, invoke)

    def _start_blob_pipeline(self) -> None:
        host_account = self.accounts.for_connection(None, "blob", "queue")
        functions = list(self.blob_functions.values())
        queue_name = trigger_queue_name(self.host_id)
        queue = host_account.queues.get_queue_client(queue_name)
        self.blob_executor = BlobTriggerExecutor(functions, host_account.blobs, self.host_id)
        executor = self.blob_executor

        async def handle(message: ReceivedMessage) -> None:
            await executor.handle(message.body)

        listener = QueueListener(queue, host_account.queues.get_queue_client(POISON_QUEUE), self.settings, handle,
                                 label=queue_name)
        self.accounts.watch_queue(host_account, queue_name, listener.wake)
        self.queues.append(listener)
        self.scanner = BlobTriggerScanner(functions, queue, max(self.settings.max_polling_interval, 0.2))
        self.scanner.hosts_blobs = host_account.blobs
        self.scanner.host_id = self.host_id
        self.scanner.on_queued = listener.wake

    # -- POST /admin/functions/{name} -----------------------------------------------------------

    def invoke_by_admin(self, name: str, body: Any) -> None:
        """Start the function in the background with ``input`` as its trigger value (202, as the host)."""
        fn = self.worker.functions.get(name) or next(
            (f for n, f in self.worker.functions.items() if n.lower() == name.lower()), None)
        if fn is None:
            raise AdminInvocationError(404, f"no function named '{name}'")
        refusal = self.worker.refusals.get(fn.name)
        if refusal is not None:
            raise AdminInvocationError(501, f"function '{fn.name}' cannot run on devhost: {refusal}")
        if not isinstance(body, dict):
            raise AdminInvocationError(400, 'the body must be a JSON object like {"input": "..."}')
        value = body.get("input")
        if value is not None and not isinstance(value, str):
            value = json.dumps(value)
        text = value or ""
        if fn.trigger_type == "timerTrigger":
            listener = self.timers.get(fn.name)
            info = listener.timer_info(past_due=False) if listener else {"IsPastDue": False}
            call = self.worker.invoke_trigger(fn, meta.Datum(json.dumps(info), "json"), reason=ADMIN_REASON)
        elif fn.trigger_type == "queueTrigger":
            now = datetime.now(UTC)
            message = ReceivedMessage(id=ids.uuid4_text(), body=text.encode(), dequeue_count=1, insertion_time=now,
                                      expiration_time=now + timedelta(days=7), next_visible_time=now,
                                      pop_receipt=base64.b64encode(ids.uuid4().bytes).decode())
            call = self.worker.invoke_trigger(fn, message.datum(), reason=ADMIN_REASON, metadata=message.metadata(),
                                              binding_data=message.binding_data())
        elif fn.trigger_type == "blobTrigger":
            call = self._invoke_blob_by_path(fn, text)
        else:
            raise AdminInvocationError(
                400, f"function '{fn.name}' has a {fn.trigger_type}; only timer, queue and blob triggered "
                "functions are run through this route (call HTTP functions on their route)")
        task = asyncio.create_task(_quietly(call), name=f"admin {fn.name}")
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _invoke_blob_by_path(self, fn: LoadedFunction, path: str) -> None:
        blob_fn = self.blob_functions.get(fn.name)
        if blob_fn is None:
            raise BindingError(f"function '{fn.name}' has no blob listener")
        container, _, blob_name = path.strip("/").partition("/")
        blob = blob_fn.blobs.get_blob_client(container, blob_name)
        content = await (await blob.download_blob()).readall()
        datum = meta.Datum(content.decode("utf-8"), "string") if blob_fn.as_text else meta.Datum(content, "bytes")
        data = {**(blob_fn.pattern.match(blob_name) or {}), "BlobTrigger": path, "Uri": blob.url}
        await blob_fn.invoke(datum, {"BlobTrigger": meta.Datum(path, "string"), "Uri": meta.Datum(blob.url, "string")},
                             data)


async def _quietly(call: Any) -> None:
    try:
        await call
    except Exception as exc:
        if type(exc).__name__ != "FunctionInvocationError":  # the worker has logged those already
            log.error("Running the function by hand failed: %s", exc)


def _timer_reason(info: Mapping[str, Any]) -> str:
    late = " (past due)" if info.get("IsPastDue") else ""
    return f"Timer fired at {datetime.now().astimezone().isoformat()}{late}"
