"""A real devhost serving a toy app on a free port, driven from a background event loop."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace

import pytest

from devhost.azurite import free_port
from devhost.config import HttpSettings, load_config
from devhost.host import Host
from tests.devhost.http.support import APPS, LoopThread


@pytest.fixture(scope="module")
def loop_thread() -> Iterator[LoopThread]:
    thread = LoopThread()
    yield thread
    thread.close()


@pytest.fixture(scope="module")
def start_host(loop_thread: LoopThread) -> Iterator[Callable[..., Host]]:
    """Start a Host for an app in tests/devhost/apps on a free port; all are stopped at module end."""
    hosts: list[Host] = []

    def start(app: str, environ: dict[str, str] | None = None, http: HttpSettings | None = None) -> Host:
        config = load_config(APPS / app, port=free_port(), environ=dict(environ or {}))
        host = Host(config if http is None else replace(config, http=http))
        loop_thread.run(host.start())
        hosts.append(host)
        return host

    yield start
    for host in hosts:
        loop_thread.run(host.stop())
