"""Find or start Azurite for ``UseDevelopmentStorage=true``, wait until it answers, stop it."""

from __future__ import annotations

import logging
import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from devhost import azurite_node, azurite_tuning
from devhost.errors import AzuriteError

log = logging.getLogger("devhost.azurite")

ACCOUNT = "devstoreaccount1"
# The well-known development storage key (public; the same in every Azurite and emulator install).
ACCOUNT_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
DEFAULT_PORTS = (10000, 10001, 10002)  # blob, queue, table


def connection_string(blob_port: int, queue_port: int, table_port: int, host: str = "127.0.0.1") -> str:
    return (
        f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={ACCOUNT_KEY};"
        f"BlobEndpoint=http://{host}:{blob_port}/{ACCOUNT};"
        f"QueueEndpoint=http://{host}:{queue_port}/{ACCOUNT};"
        f"TableEndpoint=http://{host}:{table_port}/{ACCOUNT};"
    )


def is_listening(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.2)
        return sock.connect_ex((host, port)) == 0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def find_azurite(search_from: Path) -> Path:
    """The ``azurite`` launcher in the nearest ``node_modules/.bin`` above ``search_from``, or on PATH."""
    for folder in [search_from, *search_from.parents]:
        candidate = folder / "node_modules" / ".bin" / "azurite"
        if candidate.exists():
            return candidate
    on_path = shutil.which("azurite")
    if on_path:
        return Path(on_path)
    raise AzuriteError(
        "Azurite is not installed: run `npm ci` in the project root (package.json pins it), "
        "or start Azurite yourself and devhost will use it"
    )


@dataclass
class AzuriteProcess:
    """A running Azurite that this process started (and will stop, or start again on the same folder)."""

    process: subprocess.Popen[bytes]
    ports: tuple[int, int, int]
    location: Path
    log_path: Path
    args: list[str] = field(default_factory=list)  # the command line, for a restart
    env: dict[str, str] | None = None  # its environment (the tuning preload), for a restart

    @property
    def connection_string(self) -> str:
        return connection_string(*self.ports)

    def stop(self, timeout: float = 10.0) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=timeout)

    def restart(self, timeout: float = 30.0) -> None:
        """Start Azurite again with the same folder and ports (after it exited) and wait until it answers."""
        self.stop()
        self.process = _launch(self.args, self.log_path, self.env)
        _wait_until_listening(self, timeout)


def _launch(args: list[str], log_path: Path, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    log_file = open(log_path, "ab")  # owned by the child for its lifetime
    try:
        return subprocess.Popen(
            args, stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
            start_new_session=True,  # Ctrl-C in a terminal reaches devhost, which then stops Azurite itself
        )
    finally:
        log_file.close()


def _wait_until_listening(started: AzuriteProcess, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    process = started.process
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = started.log_path.read_text(errors="replace")[-2000:]
            raise AzuriteError(f"Azurite exited with code {process.returncode} while starting:\n{tail}")
        if all(is_listening(p) for p in started.ports):
            blob, queue, table = started.ports
            log.info("Azurite started (blob %s, queue %s, table %s) in %s", blob, queue, table, started.location)
            return
        time.sleep(0.05)
    started.stop()
    raise AzuriteError(f"Azurite did not answer on ports {started.ports} within {timeout:.0f} s")


def start_azurite(
    *,
    location: Path,
    ports: tuple[int, int, int] = DEFAULT_PORTS,
    search_from: Path | None = None,
    timeout: float = 30.0,
) -> AzuriteProcess:
    """Start Azurite with on-disk persistence in ``location`` and wait until all three services answer.

    Disk mode on purpose: in-memory Azurite freezes for seconds while it cleans up deleted queue
    messages, which stalls every queue and table call behind it. It runs on the project's own Node.js
    where ``npm ci`` installed one (``azurite_node``), with devhost's fixes for two costs that grow with
    the messages and rows it holds (``azurite_tuning``; off with ``DEVHOST_AZURITE_TUNING=0``).
    """
    binary = find_azurite(search_from or Path.cwd())
    location.mkdir(parents=True, exist_ok=True)
    log_path = location / "azurite.log"
    blob, queue, table = ports
    args = [
        str(binary),
        "--silent",
        "--skipApiVersionCheck",  # the Python storage SDKs send newer API versions than Azurite knows
        "--disableTelemetry",
        "--location", str(location),
        "--blobHost", "127.0.0.1", "--blobPort", str(blob),
        "--queueHost", "127.0.0.1", "--queuePort", str(queue),
        "--tableHost", "127.0.0.1", "--tablePort", str(table),
    ]
    env = azurite_node.environment(binary, azurite_tuning.environment(location))
    started = AzuriteProcess(_launch(args, log_path, env), ports, location, log_path, args, env)
    _wait_until_listening(started, timeout)
    return started


def start_temporary_azurite(search_from: Path | None = None) -> AzuriteProcess:
    """Azurite on free ports with a fresh temporary location, for tests and benchmarks.

    The location is on tmpfs (/dev/shm) where there is one: still Azurite's on-disk mode (no in-memory
    clean-up freezes), at about half the cost per storage call of a real disk.
    """
    shm = Path("/dev/shm")
    use_shm = shm.is_dir() and os.access(shm, os.W_OK)
    location = Path(tempfile.mkdtemp(prefix="azurite-", dir=shm if use_shm else None))
    ports = (free_port(), free_port(), free_port())
    return start_azurite(location=location, ports=ports, search_from=search_from)


def ensure_development_storage(app_dir: Path) -> AzuriteProcess | None:
    """For ``UseDevelopmentStorage=true``: start Azurite unless something already listens on 10000."""
    if is_listening(DEFAULT_PORTS[0]):
        log.info("Using the storage emulator already listening on port %s", DEFAULT_PORTS[0])
        return None
    location = Path(os.environ.get("DEVHOST_AZURITE_LOCATION", app_dir / ".devhost" / "azurite"))
    return start_azurite(location=location, search_from=app_dir)
