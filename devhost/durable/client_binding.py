"""The durableClient binding payload the extension hands to Python functions."""

from __future__ import annotations

import functools
import json
from urllib.parse import quote_plus

INSTANCE_PLACEHOLDER = "INSTANCEID"
DEFAULT_CONNECTION = "Storage"  # the extension's name for AzureWebJobsStorage


def management_urls(base_url: str, instance_id: str, task_hub: str, connection: str,
                    required_query: str = "") -> dict[str, str]:
    """The nine ``HttpManagementPayload`` fields; ``instance_id`` is form-encoded as the extension does."""
    prefix = f"{base_url}/instances/{instance_id if instance_id == INSTANCE_PLACEHOLDER else quote_plus(instance_id)}"
    suffix = f"taskHub={quote_plus(task_hub)}&connection={quote_plus(connection)}"
    if required_query:
        suffix += "&" + required_query
    return {
        "id": instance_id,
        "statusQueryGetUri": f"{prefix}?{suffix}",
        "sendEventPostUri": f"{prefix}/raiseEvent/{{eventName}}?{suffix}",
        "terminatePostUri": f"{prefix}/terminate?reason={{text}}&{suffix}",
        "rewindPostUri": f"{prefix}/rewind?reason={{text}}&{suffix}",
        "purgeHistoryDeleteUri": f"{prefix}?{suffix}",
        "restartPostUri": f"{prefix}/restart?{suffix}",
        "suspendPostUri": f"{prefix}/suspend?reason={{text}}&{suffix}",
        "resumePostUri": f"{prefix}/resume?reason={{text}}&{suffix}",
    }


@functools.lru_cache(maxsize=64)  # the same few payloads for every starter invocation
def client_binding_json(*, public_origin: str, rpc_origin: str, task_hub: str,
                        connection_name: str | None = None, required_query: str = "") -> str:
    """Compact JSON with nulls written, as ``BindingHelper.DurableOrchestrationClientToString`` makes it.

    ``public_origin`` is what users reach (``http://localhost:7071``); ``rpc_origin`` is where the
    Python SDK sends its management calls (``http://127.0.0.1:7071``).
    """
    base_url = f"{public_origin}/runtime/webhooks/durabletask"
    create = f"{base_url}/orchestrators/{{functionName}}[/{{instanceId}}]?"
    payload = {
        "taskHubName": task_hub,
        "connectionName": None,
        "creationUrls": {
            "createNewInstancePostUri": create + required_query,
            "createAndWaitOnNewInstancePostUri": create
            + "timeout={timeoutInSeconds}&pollingInterval={intervalInSeconds}"
            + (f"&{required_query}" if required_query else ""),
        },
        "managementUrls": management_urls(
            base_url, INSTANCE_PLACEHOLDER, task_hub, connection_name or DEFAULT_CONNECTION, required_query
        ),
        "baseUrl": base_url,
        "requiredQueryStringParameters": required_query,
        "rpcBaseUrl": f"{rpc_origin}/durabletask/",
        "httpBaseUrl": None,
        "maxGrpcMessageSizeInBytes": None,
    }
    return json.dumps(payload, separators=(",", ":"))
