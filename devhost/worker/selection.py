"""Which of the app's functions run: host.json's ``functions`` allow list and ``AzureWebJobs.<name>.Disabled``.

A function left out of the allow list (``--functions``) is not loaded at all, as ``FunctionMetadataManager``
drops it. A disabled function stays listed (as disabled); its trigger does not run, so a disabled
orchestrator or activity is unknown to the durable extension, and a disabled HTTP function answers 404
to anyone but an admin (``FunctionInvocationMiddleware``).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping

from devhost.worker.invoker import Worker


def is_disabled(name: str, environ: Mapping[str, str] | None = None) -> bool:
    """``AzureWebJobs.<name>.Disabled`` (or ``AzureWebJobs__<name>__Disabled``) is ``true`` or ``1``."""
    env = os.environ if environ is None else environ
    wanted = {f"azurewebjobs.{name}.disabled".lower(), f"azurewebjobs__{name}__disabled".lower(),
              f"azurewebjobs:{name}:disabled".lower()}
    value = next((v for k, v in env.items() if k.lower() in wanted), None)
    return value is not None and value.strip().lower() in ("true", "1")


def apply_selection(worker: Worker, allowed: Iterable[str] | None,
                    environ: Mapping[str, str] | None = None) -> list[str]:
    """Drop functions outside ``allowed`` and stop disabled triggers; returns the disabled functions' names."""
    if allowed is not None:
        keep = {name.lower() for name in allowed}
        _keep_only(worker, lambda name: name.lower() in keep)
    disabled = [name for name in worker.functions if is_disabled(name, environ)]
    gone = {name.lower() for name in disabled}
    for registry in (worker.orchestrators, worker.activities, worker.entities):
        for key, fn in list(registry.items()):
            if fn.name.lower() in gone:
                del registry[key]
    return disabled


def _keep_only(worker: Worker, wanted: Callable[[str], bool]) -> None:
    worker.functions = {n: f for n, f in worker.functions.items() if wanted(n)}
    worker.http_functions = [f for f in worker.http_functions if wanted(f.name)]
    for registry in (worker.orchestrators, worker.activities, worker.entities):
        for key, fn in list(registry.items()):
            if not wanted(fn.name):
                del registry[key]
