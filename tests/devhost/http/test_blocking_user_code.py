"""User code apart from the host: a function that blocks, sync or async, never stalls the HTTP server."""

from __future__ import annotations

import textwrap
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from devhost.host import Host
from tests.http_client import request

BLOCKING_APP = '''
import os
import time

import azure.functions as func

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)
FLAGS = os.environ["BLOCK_FLAGS"]


def block(name: str) -> None:
    open(os.path.join(FLAGS, name + ".started"), "w").close()
    while not os.path.exists(os.path.join(FLAGS, name + ".release")):
        time.sleep(0.01)  # blocks whatever runs it, on purpose


@app.route(route="block-async")
async def block_async(req: func.HttpRequest) -> func.HttpResponse:
    block("async")
    return func.HttpResponse("async done")


@app.route(route="block-sync")
def block_sync(req: func.HttpRequest) -> func.HttpResponse:
    block("sync")
    return func.HttpResponse("sync done")


@app.route(route="quick")
async def quick(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse("quick")
'''


def wait_for_file(path: Path, within: float = 20.0) -> None:
    deadline = time.monotonic() + within
    while not path.exists():
        assert time.monotonic() < deadline, f"{path.name} did not appear"
        time.sleep(0.01)


@pytest.mark.parametrize("kind", ["async", "sync"])
def test_blocked_function_leaves_the_host_answering(kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                    start_host: Callable[..., Host]) -> None:
    """While a function blocks its thread, /admin/host/status and other requests are still answered."""
    app_dir = tmp_path / "app"
    app_dir.mkdir()
    (app_dir / "host.json").write_text('{"version": "2.0"}')
    (app_dir / "function_app.py").write_text(textwrap.dedent(BLOCKING_APP))
    monkeypatch.setenv("BLOCK_FLAGS", str(tmp_path))
    host = start_host(app_dir)
    base = f"http://127.0.0.1:{host.config.port}"
    replies: list[bytes] = []
    blocked = threading.Thread(target=lambda: replies.append(request("GET", f"{base}/api/block-{kind}").body))
    blocked.start()
    try:
        wait_for_file(tmp_path / f"{kind}.started")
        assert request("GET", f"{base}/admin/host/status").status == 200
        assert not (tmp_path / f"{kind}.release").exists() and blocked.is_alive()  # still blocked meanwhile
        if kind == "sync":
            assert request("GET", f"{base}/api/quick").body == b"quick"  # and async user code still runs
    finally:
        (tmp_path / f"{kind}.release").touch()
        blocked.join(20)
    assert replies == [f"{kind} done".encode()]
