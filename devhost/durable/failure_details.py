"""The ``Details`` of failure events, in the form the extension writes them.

The extension sets ``IncludeDetails`` on both DTFx dispatchers, so failures carry details to the
caller, and the Python SDK shows them to a parent as ``Exception(f"{Reason} \\n {Details}")``:

* an activity that raised: ``Utils.SerializeCause`` of the exception the worker reported, through the
  error data converter (Newtonsoft with ``TypeNameHandling.Objects``): a .NET ``System.Exception``
  carrying the friendly message, wrapping the worker's ``RpcException``;
* an orchestrator whose reply holds an ``error``: ``Message: {error}, StackTrace: {stack}``
  (``OutOfProcOrchestrationShim``); the stack is the Python one where the host shows its own;
* any other orchestration failure: ``Utils.SerializeCause`` of the ``OrchestrationFailureException``.
"""

from __future__ import annotations

import json
from typing import Any

RPC_EXCEPTION = "Microsoft.Azure.WebJobs.Script.Workers.Rpc.RpcException"
EXCEPTION_HRESULT = -2146233088  # COR_E_EXCEPTION, what every System.Exception reports


def _compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _serialized_exception(type_name: str, assembly: str, message: str, *, inner: dict[str, Any] | None = None,
                          stack: str | None = None, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """An exception as Newtonsoft serializes an ``ISerializable`` one with type names."""
    return {
        "$type": f"{type_name}, {assembly}", **(extra or {}),
        "ClassName": type_name, "Message": message, "Data": None, "InnerException": inner, "HelpURL": None,
        "StackTraceString": stack, "RemoteStackTraceString": None, "RemoteStackIndex": 0, "ExceptionMethod": None,
        "HResult": EXCEPTION_HRESULT, "Source": None, "WatsonBuckets": None,
    }


def activity_failure_details(message: str, stack: str) -> str:
    """What a failed activity's ``TaskFailed`` carries in ``Details``."""
    rpc_message = f"Result: Failure\nException: {message}\nStack: {stack}"
    rpc = _serialized_exception(RPC_EXCEPTION, "Microsoft.Azure.WebJobs.Script", rpc_message, extra={
        "IsUserException": False, "RemoteStackTrace": stack, "RemoteMessage": message, "RemoteTypeName": None,
    })
    return _compact(_serialized_exception("System.Exception", "System.Private.CoreLib", message, inner=rpc))


def orchestrator_error_details(error: str, stack: str) -> str:
    """What an orchestrator that replied with an ``error`` leaves as failure details."""
    return f"Message: {error}, StackTrace: {stack}"


def orchestration_failure_details(reason: str) -> str:
    """The serialized ``OrchestrationFailureException`` of any other orchestration failure."""
    return _compact(_serialized_exception(
        "DurableTask.Core.Exceptions.OrchestrationFailureException", "DurableTask.Core", reason,
        extra={"Details": None}))


def http_failure_details(message: str) -> str:
    """The serialized ``HttpRequestException`` of a built-in HTTP activity that got no response."""
    return _compact(_serialized_exception("System.Net.Http.HttpRequestException", "System.Net.Http", message))
