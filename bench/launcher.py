"""Start and stop what the benchmark measures: Azurite, devhost (optionally under py-spy), peer processes.

Every child is started in its own session, so a Ctrl-C in the terminal reaches only the bench, which then
stops its children in order (devhost first, then Azurite) from ``finally`` blocks.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devhost.azurite import AzuriteProcess, free_port, start_temporary_azurite

PROJECT_ROOT = Path(__file__).resolve().parent.parent
BENCH_APP = Path(__file__).resolve().parent / "app"


@contextlib.contextmanager
def environment(settings: dict[str, str]) -> Iterator[None]:
    """``os.environ`` with ``settings`` applied for the block (children started in it inherit them)."""
    saved = {key: os.environ.get(key) for key in settings}
    os.environ.update(settings)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def start_azurite() -> AzuriteProcess:
    """Azurite on free ports in its disk mode (see the toolchain notes), its location a temporary folder on tmpfs
    where there is one (``devhost.azurite.start_temporary_azurite``)."""
    return start_temporary_azurite(search_from=PROJECT_ROOT)


def stop_azurite(azurite: AzuriteProcess) -> None:
    azurite.stop()
    shutil.rmtree(azurite.location, ignore_errors=True)


def new_hub_name(tag: str) -> str:
    return f"bench{tag}{uuid.uuid4().hex[:8]}"


@contextlib.contextmanager
def held(pid: int, *, group: bool = False) -> Iterator[None]:
    """``pid`` (or its process group) stopped for the block and continued after it: a system whose turn it is
    not does no work at all, not even its idle polls, and uses no CPU in another system's minutes."""
    hold(pid, group=group)
    try:
        yield
    finally:
        release(pid, group=group)


def hold(pid: int, *, group: bool = False) -> None:
    (os.killpg if group else os.kill)(pid, signal.SIGSTOP)


def release(pid: int, *, group: bool = False) -> None:
    with contextlib.suppress(ProcessLookupError):
        (os.killpg if group else os.kill)(pid, signal.SIGCONT)


@dataclass
class Devhost:
    """One devhost process serving one app on one task hub."""

    process: subprocess.Popen[bytes]
    port: int
    hub: str
    log_path: Path
    ready_s: float
    calls_path: Path | None = None  # where devhost writes its storage call counts when it exits
    profiler: Profiler | None = None
    stopped: bool = field(default=False)

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def storage_calls(self) -> dict[str, dict[str, int]] | None:
        """The storage calls devhost made after start-up, by kind (once it has stopped), or None."""
        if self.calls_path is None or not self.calls_path.exists():
            return None
        data = json.loads(self.calls_path.read_text())
        startup, total = data.get("startup") or {}, data.get("total") or {}
        workload = {kind: n - startup.get(kind, 0) for kind, n in sorted(total.items())}
        return {"startup": startup, "workload": {kind: n for kind, n in workload.items() if n}}

    def log_tail(self, chars: int = 3000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:]

    def stop(self, timeout: float = 20.0) -> None:
        """Stop the profiler (it writes its file), then SIGTERM devhost (a clean stop), then kill if needed."""
        if self.stopped:
            return
        self.stopped = True
        if self.profiler is not None:
            self.profiler.stop()
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)


class Profiler:
    """``py-spy record --pid`` attached to a running process; SIGINT makes it write its samples and exit."""

    RATE = 250

    def __init__(self, pid: int, output: Path) -> None:
        py_spy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")
        if py_spy is None:
            raise RuntimeError("--profile needs py-spy: pip install -r bench/requirements.txt")
        self.output = output
        self.log_path = output.with_suffix(".log")
        # raw = collapsed stacks; --function aggregates by function; --nonblocking does not pause devhost.
        command = [py_spy, "record", "--pid", str(pid), "--format", "raw", "--function", "--nonblocking",
                   "--full-filenames", "--rate", str(self.RATE), "--output", str(output)]
        with open(self.log_path, "ab") as log_file:
            self.process = subprocess.Popen(command, stdout=log_file, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, start_new_session=True)
        self.started = time.perf_counter()
        self.seconds = 0.0
        time.sleep(0.3)  # let it attach before the workload starts
        if self.process.poll() is not None:
            raise RuntimeError(f"py-spy could not attach to {pid}: {self.log_path.read_text(errors='replace')}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.seconds = time.perf_counter() - self.started
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def _wait_ready(host: Devhost, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    url = f"{host.base_url}/admin/host/status"
    while time.monotonic() < deadline:
        if host.process.poll() is not None:
            raise RuntimeError(f"devhost exited with {host.process.returncode}:\n{host.log_tail()}")
        try:
            with urllib.request.urlopen(url, timeout=2) as reply:
                if json.loads(reply.read()).get("state") == "Running":
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError, ValueError):
            pass
        time.sleep(0.01)
    raise RuntimeError(f"devhost not ready within {timeout} s:\n{host.log_tail()}")


def raise_keyboard_interrupt(signum: int, frame: object) -> None:
    """A SIGTERM handler: stop as on Ctrl-C, so that ``finally`` blocks stop devhost and Azurite."""
    raise KeyboardInterrupt


def start_devhost(storage_connection: str, workdir: Path, *, app_dir: Path | None = None, tag: str = "",
                  profile: bool = False, timeout: float = 60.0, root: Path = PROJECT_ROOT) -> Devhost:
    """``python -m devhost start`` on a free port and a fresh task hub; returns once it reports Running.

    ``ready_s`` is the time from spawning the process to the first ``Running`` from /admin/host/status.
    With ``profile``, py-spy attaches once devhost is ready, so start-up imports stay out of the profile.
    ``root`` is the checkout whose devhost (and, unless ``app_dir`` says otherwise, whose app) runs:
    another commit's, checked out beside this one, to compare the two.
    """
    app_dir = app_dir or root
    port = free_port()
    hub = new_hub_name(tag)
    calls_path = workdir / f"storage-calls-{hub}.json"
    env = {
        **os.environ,
        "AzureWebJobsStorage": storage_connection,
        "AzureFunctionsJobHost__extensions__durableTask__hubName": hub,
        "PYTHONUNBUFFERED": "1",
        "DEVHOST_STORAGE_CALLS_FILE": str(calls_path),  # devhost counts its storage calls by kind
    }
    command = [sys.executable, "-m", "devhost", "start", "--port", str(port), "--app-dir", str(app_dir)]
    log_path = workdir / f"devhost-{hub}.log"
    began = time.perf_counter()
    with open(log_path, "ab") as log_file:
        process = subprocess.Popen(command, cwd=root, env=env, stdout=log_file, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, start_new_session=True)
    host = Devhost(process, port, hub, log_path, 0.0, calls_path)
    try:
        _wait_ready(host, timeout)
        host.ready_s = time.perf_counter() - began
        if profile:
            host.profiler = Profiler(process.pid, workdir / f"profile-{hub}.raw.txt")
    except BaseException:
        host.stop()
        raise
    return host


def memory_kib(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (peak RSS) of ``pid`` in KiB, from /proc/<pid>/status."""
    values: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0])
    return values


def cpu_seconds(pid: int) -> float:
    """User + system CPU time ``pid`` has used so far, from /proc/<pid>/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime (fields 14, 15)


def delete_task_hub(storage_connection: str, hub: str) -> None:
    """Drop what a benchmark hub left in Azurite (tables, queues, containers), so later phases stay fast."""
    from azure.data.tables import TableServiceClient
    from azure.storage.blob import BlobServiceClient
    from azure.storage.queue import QueueServiceClient

    lowered = hub.lower()
    with TableServiceClient.from_connection_string(storage_connection) as tables:
        for table in list(tables.list_tables()):
            if table.name.lower().startswith(lowered):
                tables.delete_table(table.name)
    with QueueServiceClient.from_connection_string(storage_connection) as queues:
        for queue in list(queues.list_queues(name_starts_with=lowered)):
            queues.delete_queue(queue.name)
    with BlobServiceClient.from_connection_string(storage_connection) as blobs:
        for container in list(blobs.list_containers(name_starts_with=lowered)):
            blobs.delete_container(container.name)


class Peer:
    """A peer runner (``python -m module args``) kept alive across W1's phases: it sets up and warms up once,
    then runs each phase it is asked for (``bench.peers.common.serve``). stderr passes through (progress)."""

    def __init__(self, module: str, args: list[str], timeout: float) -> None:
        self.module = module
        self.process = subprocess.Popen([sys.executable, "-m", module, *args], cwd=PROJECT_ROOT,
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, start_new_session=True)
        self._pending = b""
        try:
            self.info = self._answer(timeout)
        except BaseException:
            self.kill()
            raise

    def hold(self) -> None:
        """Stop the peer until ``release`` (see ``held``): outside its turns, it does nothing."""
        hold(self.process.pid, group=True)

    def release(self) -> None:
        release(self.process.pid, group=True)

    def run(self, label: str, instances: int, concurrency: int, offset: int, timeout: float) -> dict[str, Any]:
        """One phase (or one chunk of it) on the peer; its ``phase_result``."""
        assert self.process.stdin is not None
        request = {"label": label, "instances": instances, "concurrency": concurrency, "offset": offset}
        self.process.stdin.write((json.dumps(request) + "\n").encode())
        self.process.stdin.flush()
        return self._answer(timeout)

    def _answer(self, timeout: float) -> dict[str, Any]:
        """The next JSON line on the peer's stdout (other lines are skipped), within ``timeout`` seconds."""
        assert self.process.stdout is not None
        fd = self.process.stdout.fileno()
        deadline = time.monotonic() + timeout
        while True:
            line, newline, rest = self._pending.partition(b"\n")
            if newline:
                self._pending = rest
                if line.startswith(b"{"):
                    answer: dict[str, Any] = json.loads(line)
                    return answer
                continue
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"{self.module} gave no answer within {timeout:.0f} s")
            readable, _, _ = select.select([fd], [], [], remaining)
            if readable:
                chunk = os.read(fd, 65536)
                if not chunk:
                    code = self.process.wait()
                    raise RuntimeError(f"{self.module} exited with code {code}")
                self._pending += chunk

    def close(self, timeout: float = 30.0) -> None:
        """Close its stdin (it shuts down and exits), or kill it after ``timeout``."""
        self.release()  # a held process cannot exit
        with contextlib.suppress(OSError):
            if self.process.stdin is not None:
                self.process.stdin.close()
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()
