"""The per-invocation objects the Python worker hands to user code: ``func.Context`` and ``func.Out``."""

from __future__ import annotations

import threading
from typing import Any, Generic, TypeVar

import azure.functions as func
from azure.functions import _abc as func_abc

T = TypeVar("T")

# One thread-local shared by every Context, as in the worker: user threads read
# ``context.thread_local_storage.invocation_id`` to tie their logs to the invocation.
invocation_local = threading.local()


class TraceContext(func_abc.TraceContext):
    """W3C trace context; devhost starts no distributed trace, so it is empty like a local run."""

    def __init__(self, trace_parent: str = "", trace_state: str = "",
                 attributes: dict[str, str] | None = None) -> None:
        self._trace_parent = trace_parent
        self._trace_state = trace_state
        self._attributes = attributes or {}

    @property
    def trace_parent(self) -> str:
        return self._trace_parent

    @property
    def trace_state(self) -> str:
        return self._trace_state

    @property
    def attributes(self) -> dict[str, str]:
        return self._attributes


class RetryContext(func_abc.RetryContext):
    """Retry state; devhost runs no retry policies, so every invocation is the first attempt."""

    def __init__(self, retry_count: int = 0, max_retry_count: int = 0, exception: Any = None) -> None:
        self._retry_count = retry_count
        self._max_retry_count = max_retry_count
        self._exception = exception

    @property
    def retry_count(self) -> int:
        return self._retry_count

    @property
    def max_retry_count(self) -> int:
        return self._max_retry_count

    @property
    def exception(self) -> Any:
        return self._exception


class Context(func.Context):
    """The invocation context injected into a ``context`` parameter that is not a binding."""

    def __init__(self, function_name: str, function_directory: str, invocation_id: str) -> None:
        self._function_name = function_name
        self._function_directory = function_directory
        self._invocation_id = invocation_id
        self._trace_context = TraceContext()
        self._retry_context = RetryContext()

    @property
    def invocation_id(self) -> str:
        return self._invocation_id

    @property
    def thread_local_storage(self) -> Any:
        return invocation_local

    @property
    def function_name(self) -> str:
        return self._function_name

    @property
    def function_directory(self) -> str:
        return self._function_directory

    @property
    def trace_context(self) -> TraceContext:
        return self._trace_context

    @property
    def retry_context(self) -> RetryContext:
        return self._retry_context


class Out(func.Out[T], Generic[T]):
    """The value holder passed for each ``func.Out[T]`` parameter."""

    def __init__(self) -> None:
        self._value: T | None = None

    def set(self, val: T) -> None:
        self._value = val

    def get(self) -> T:
        return self._value  # type: ignore[return-value]
