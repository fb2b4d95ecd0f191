"""``python -m bench``: run the benchmark workloads against devhost and its peers, write figures and docs."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import os
import platform
import shlex
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, replace
from importlib import metadata
from pathlib import Path
from typing import Any

from bench import charts, core_waits, launcher, report, user_code, workloads
from bench.peers.common import merge_phases
from bench.profile_summary import summarize
from bench.stats import log
from devhost import azurite_node
from devhost.azurite import find_azurite
from devhost.errors import AzuriteError

RESULTS = Path(__file__).resolve().parent / "results"
DOCS = launcher.PROJECT_ROOT / "docs" / "benchmarks.md"
WORKLOADS = ("W1", "W2", "W3", "W4", "USERCODE", "DBOS", "DURABLETASK")
PEERS = {"DBOS": ("dbos", "bench.peers.dbos_peer"), "DURABLETASK": ("durabletask", "bench.peers.durabletask_peer")}


class CpuMeter:
    """CPU seconds of devhost, Azurite and this process, and wall seconds, over the spans it runs: paused
    while the peers take their turns, so that devhost's figures cover devhost's flows only."""

    WHO = ("devhost", "azurite", "bench_client")

    def __init__(self, devhost_pid: int, azurite_pid: int) -> None:
        self.pids = (devhost_pid, azurite_pid)
        self.used = [0.0, 0.0, 0.0]
        self.wall = 0.0
        self._since: tuple[float, list[float]] | None = None

    def _now(self) -> list[float]:
        return [launcher.cpu_seconds(self.pids[0]), launcher.cpu_seconds(self.pids[1]), time.process_time()]

    def resume(self) -> None:
        self._since = (time.perf_counter(), self._now())

    def pause(self) -> None:
        if self._since is None:
            return
        began, before = self._since
        self._since = None
        self.wall += time.perf_counter() - began
        self.used = [used + now - then for used, now, then in zip(self.used, self._now(), before, strict=True)]

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        self.pause()
        try:
            yield
        finally:
            self.resume()

    def figures(self) -> dict[str, float]:
        """CPU seconds per wall second (1.0 = one core kept busy) and CPU seconds, per process."""
        return {
            "wall_s": round(self.wall, 1),
            **{f"{who}_cores": round(cpu / self.wall, 2) if self.wall > 0 else 0.0
               for who, cpu in zip(self.WHO, self.used, strict=True)},
            **{f"{who}_cpu_s": round(cpu, 3) for who, cpu in zip(self.WHO, self.used, strict=True)},
        }



@dataclass
class Config:
    w1_instances: int
    concurrency: int
    poll_ms: float
    w2_sequence: int
    w2_fan_out: int
    w2_events: int
    w3_clients: int
    w3_seconds: float
    w4_instances: int
    time_cap_s: float  # per phase: stop starting new work after this long, and report what was done
    w1_time_cap_s: float  # the same for each W1 phase
    w4_time_cap_s: float = 150.0  # W4's stages: reaching "all waiting", confirming, draining
    relaxed_poll_ms: float = 50.0  # a third W1 phase: 32 clients polling this slowly, for throughput
    w2_chain_steps: int = 10  # W2's short chain: this many activities in a row ...
    w2_chain_runs: int = 20  # ... started this many times, one after another
    # Untimed W1 flows before the timed ones, on devhost (its own phase, so Azurite's JIT has warmed up, as
    # in a session that has been running a while) and on each peer (before its first phase).
    w1_warmup: int = 200
    warmup_concurrency: int = 8
    # One at a time, W1's flows run in this many rounds, the systems taking turns (devhost's chunk, then each
    # peer's): this machine's speed drifts by up to half within minutes, and each system's figures should
    # come from the same minutes as the others'.
    w1_rounds: int = 5


FULL = Config(w1_instances=500, concurrency=32, poll_ms=2.0, w2_sequence=100, w2_fan_out=500, w2_events=200,
              w3_clients=16, w3_seconds=5.0, w4_instances=1000, time_cap_s=60.0,
              w1_time_cap_s=90.0, w4_time_cap_s=150.0)
QUICK = Config(w1_instances=30, concurrency=32, poll_ms=2.0, w2_sequence=20, w2_fan_out=100, w2_events=50,
               w3_clients=16, w3_seconds=2.0, w4_instances=100, time_cap_s=10.0,
               w1_time_cap_s=10.0, w4_time_cap_s=20.0, w2_chain_runs=5, w1_warmup=10, w1_rounds=2)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes for a sanity run (< 60 s)")
    parser.add_argument("--only", default="", metavar="W1,W2,...",
                        help=f"run only these of {','.join(WORKLOADS)} (case-insensitive)")
    parser.add_argument("--out", type=Path, default=None,
                        help="results JSON (default: bench/results/latest.json for a full run, quick.json with "
                             "--quick, profile-w1.json with --profile)")
    parser.add_argument("--profile", action="store_true",
                        help="run W1's devhost under py-spy and write bench/results/profile-w1.txt "
                             "(figures are then perturbed; docs/benchmarks.md is left alone)")
    parser.add_argument("--no-docs", action="store_true", help="do not regenerate docs/benchmarks.md")
    parser.add_argument("--flows", type=int, default=None, metavar="N",
                        help="W1 flows per phase (default 500, 30 with --quick); other sizes stay")
    return parser.parse_args(argv)


# -- machine info ------------------------------------------------------------------------------------
def _run(command: list[str]) -> str:
    try:
        return subprocess.run(command, cwd=launcher.PROJECT_ROOT, capture_output=True, text=True,
                              timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def _cpu_model() -> str | None:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return None


def _memory_gib() -> float | None:
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024 / 1024, 1)
    return None


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def machine_info(argv: Sequence[str]) -> dict[str, Any]:
    azurite_version = None
    with contextlib.suppress(OSError, ValueError):
        package = json.loads((launcher.PROJECT_ROOT / "node_modules" / "azurite" / "package.json").read_text())
        azurite_version = package.get("version")
    versions = {d: _version(d) for d in ("aiohttp", "azure-functions", "azure-functions-durable",
                                         "azure-data-tables", "azure-storage-queue", "dbos", "durabletask", "uvloop",
                                         "matplotlib")}
    versions["azurite"] = azurite_version or "unknown"
    with contextlib.suppress(AzuriteError):  # the Node.js that runs Azurite (the project's own, where installed)
        versions["node"] = _run([azurite_node.executable(find_azurite(launcher.PROJECT_ROOT)), "--version"])
    versions["node"] = versions.get("node") or "unknown"
    return {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S"),
        "command": "python -m bench" + (" " + shlex.join(argv) if argv else ""),
        "cpu_count": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "memory_gib": _memory_gib(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "git_commit": _run(["git", "rev-parse", "--short=12", "HEAD"]) or "unknown",
        # the bench's own outputs (and the baseline it reads) do not make the measured code dirty
        "git_dirty": bool(_run(["git", "status", "--porcelain", "--untracked-files=no", "--", ".",
                                ":!bench/results", ":!docs/benchmarks.md"])),
        "versions": versions,
        "loadavg_before": round(os.getloadavg()[0], 2),
    }


# -- the run -----------------------------------------------------------------------------------------
class Run:
    def __init__(self, config: Config, selected: set[str], profile: bool, workdir: Path) -> None:
        self.config = config
        self.selected = selected
        self.profile = profile
        self.workdir = workdir
        self.results: dict[str, Any] = {"devhost": {"ready_s": []}, "peers": {}, "errors": {}}
        self.azurite: Any = None
        self.profile_raw: list[Path] = []
        self.profile_seconds = 0.0
        self.meter: CpuMeter | None = None  # the running devhost's
        self.peers: dict[str, launcher.Peer] = {}  # W1's peers while they take turns, by results key
        self.peer_parts: dict[str, dict[str, list[dict[str, Any]]]] = {}  # their chunks' figures, by phase

    @contextlib.contextmanager
    def devhost(self, tag: str, *, app_dir: Path = launcher.PROJECT_ROOT, profile: bool = False
                ) -> Iterator[launcher.Devhost]:
        host = launcher.start_devhost(self.azurite.connection_string, self.workdir, app_dir=app_dir, tag=tag,
                                      profile=profile)
        self.results["devhost"]["ready_s"].append(round(host.ready_s, 3))
        log(f"devhost ({tag}) ready in {host.ready_s:.2f} s on port {host.port}, hub {host.hub}")
        meter = self.meter = CpuMeter(host.pid, self.azurite.process.pid)
        meter.resume()
        try:
            yield host
        finally:
            with contextlib.suppress(OSError):
                meter.pause()
                self.results.setdefault("cpu", {})[tag] = meter.figures()
            host.stop()
            with contextlib.suppress(OSError, ValueError):
                calls = host.storage_calls()
                if calls is not None:
                    self.results.setdefault("storage_calls", {})[tag] = calls
            if host.profiler is not None:
                self.profile_seconds += host.profiler.seconds
                if host.profiler.output.exists():
                    self.profile_raw.append(host.profiler.output)
            with contextlib.suppress(Exception):
                launcher.delete_task_hub(self.azurite.connection_string, host.hub)

    def attempt(self, name: str, body: Callable[[], None]) -> None:
        try:
            body()
        except (KeyboardInterrupt, SystemExit):
            raise
        except Exception as exc:
            message = f"{type(exc).__name__}: {exc}"
            log(f"{name} failed: {message[:2000]}")
            self.results["errors"][name] = message[:2000]

    def w1(self) -> None:
        """W1 on devhost and the selected peers, in the same minutes of the machine. One at a time, the
        systems take turns in rounds (devhost's chunk, then each peer's); with 32 clients, each runs its whole
        phase right after the other (chunks of 32 clients would be mostly ramp-up and drain). A system whose
        turn it is not is stopped (SIGSTOP), so none does work, idle polls included, in another's turn."""
        c = self.config
        on_devhost = "W1" in self.selected
        try:
            self._start_peers()
            out: dict[str, Any] = {}
            if on_devhost:
                self.results["devhost"]["w1"] = out
                self._w1_warmup()
            plan = workloads.chunks(c.w1_instances, c.w1_rounds)

            def peers_turn(r: int) -> None:
                first, count = plan[r]
                for key in list(self.peers):
                    self._peer_turn(key, "serial", "one at a time", count, 1, first)

            if not on_devhost:
                for r in range(len(plan)):
                    peers_turn(r)
                self._peers_concurrent()
                return
            with self.devhost("w1s", profile=self.profile) as host:
                meter = self.meter
                assert meter is not None

                def between(r: int) -> None:
                    with meter.paused(), launcher.held(host.pid):
                        peers_turn(r)

                turns = bool(self.peers)  # alone, devhost runs its flows in one go
                out["serial"] = asyncio.run(workloads.w1_reserve_ticket(
                    host.base_url, c.w1_instances, 1, c.poll_ms / 1000, c.w1_time_cap_s, 0,
                    len(plan) if turns else 1, between if turns else None))
            phases = [("concurrent", "w1c", c.concurrency, c.poll_ms, 1_000_000)]
            if not self.profile:
                phases.append(("concurrent_relaxed", "w1r", c.concurrency, c.relaxed_poll_ms, 2_000_000))
            for phase, tag, concurrency, poll_ms, offset in phases:
                with self.devhost(tag, profile=self.profile) as host:
                    out[phase] = asyncio.run(workloads.w1_reserve_ticket(
                        host.base_url, c.w1_instances, concurrency, poll_ms / 1000, c.w1_time_cap_s, offset))
                if phase == "concurrent":  # the peers' 32 clients right after devhost's
                    self._peers_concurrent()
        finally:
            self._stop_peers()

    def _w1_warmup(self) -> None:
        c = self.config
        if not c.w1_warmup:
            return
        # A fresh Azurite runs its first few thousand calls at up to twice the CPU per call (V8 has not
        # compiled its hot paths yet): measured from flow 1, W1's first phase would time a cold emulator.
        with self.devhost("warmup") as host:
            began = time.perf_counter()
            warmup = asyncio.run(workloads.w1_reserve_ticket(
                host.base_url, c.w1_warmup, c.warmup_concurrency, c.poll_ms / 1000, c.w1_time_cap_s, 3_000_000))
            self.results["devhost"]["warmup"] = {"flows": warmup["instances"],
                                                 "wall_s": round(time.perf_counter() - began, 1)}

    def _start_peers(self) -> None:
        """Start the selected peers; each sets up and runs its untimed warm-up flows before it answers."""
        c = self.config
        for name, (key, module) in PEERS.items():
            if name not in self.selected:
                continue
            peer_dir = self.workdir / key
            peer_dir.mkdir(exist_ok=True)
            args = ["--poll-ms", str(c.poll_ms), "--time-cap", str(c.w1_time_cap_s), "--workdir", str(peer_dir),
                    "--warmup", str(c.w1_warmup), "--warmup-concurrency", str(c.warmup_concurrency)]
            log(f"Starting the {name} peer (with {c.w1_warmup} untimed flows) ...")
            try:
                self.peers[key] = launcher.Peer(module, args, timeout=2 * c.w1_time_cap_s + 60)
            except Exception as exc:
                self._peer_failed(key, exc)
                continue
            self.peers[key].hold()  # until its first turn
            self.peer_parts[key] = {"serial": [], "concurrent": []}

    def _peer_turn(self, key: str, phase: str, label: str, instances: int, concurrency: int, offset: int) -> None:
        peer = self.peers[key]
        peer.release()
        try:
            part = peer.run(label, instances, concurrency, offset, timeout=self.config.w1_time_cap_s + 60)
            peer.hold()
        except Exception as exc:
            peer.kill()
            del self.peers[key]
            self._peer_failed(key, exc)
            return
        self.peer_parts[key][phase].append(part)

    def _peers_concurrent(self) -> None:
        c = self.config
        for key in list(self.peers):
            self._peer_turn(key, "concurrent", f"{c.concurrency} clients", c.w1_instances, c.concurrency, 1_000_000)

    def _peer_failed(self, key: str, exc: Exception) -> None:
        message = f"{type(exc).__name__}: {exc}"
        log(f"{key} failed: {message[:2000]}")
        self.results["errors"][key.upper()] = message[:2000]
        self.results["peers"][key] = {"error": "see errors"}

    def _stop_peers(self) -> None:
        """Stop every peer still running and pool the figures of its chunks, phase by phase."""
        for key, peer in self.peers.items():
            peer.close()
            parts = self.peer_parts[key]
            info = {k: v for k, v in peer.info.items() if k != "ready"}
            self.results["peers"][key] = {**info, **{phase: merge_phases(chunks)
                                                     for phase, chunks in parts.items() if chunks}}
        self.peers.clear()

    def w2(self) -> None:
        c = self.config
        out: dict[str, Any] = {}
        self.results["devhost"]["w2"] = out
        with self.devhost("w2", app_dir=launcher.BENCH_APP) as host:
            log(f"  devhost W2 Sequence100 ({c.w2_sequence} activities) ...")
            out["sequence"] = asyncio.run(workloads.w2_sequence(host.base_url, c.w2_sequence, 0.005, c.time_cap_s))
            log(f"  devhost W2 {c.w2_chain_runs} chains of {c.w2_chain_steps} activities ...")
            out["chains"] = asyncio.run(workloads.w2_chains(host.base_url, c.w2_chain_steps, c.w2_chain_runs, 0.002,
                                                            c.time_cap_s))
            log(f"  devhost W2 FanOutFanIn ({c.w2_fan_out} activities) ...")
            out["fan_out"] = asyncio.run(workloads.w2_fan_out(host.base_url, c.w2_fan_out, 0.005, c.time_cap_s))
            out["events"] = asyncio.run(workloads.w2_events(host.base_url, c.w2_events, 0.005, c.time_cap_s))

    def w3(self) -> None:
        c = self.config
        with self.devhost("w3") as host:
            self.results["devhost"]["w3"] = asyncio.run(
                workloads.w3_status_reads(host.base_url, c.w3_clients, c.w3_seconds))

    def w4(self) -> None:
        c = self.config
        with self.devhost("w4") as host:
            self.results["devhost"]["w4"] = asyncio.run(
                workloads.w4_memory_and_drain(host.base_url, host.pid, c.w4_instances, c.concurrency, c.w4_time_cap_s))

    def execute(self) -> None:
        needs_devhost = self.selected & {"W1", "W2", "W3", "W4"}
        if needs_devhost:
            log("Starting Azurite ...")
            began = time.perf_counter()
            self.azurite = launcher.start_azurite()
            log(f"Azurite ready in {time.perf_counter() - began:.1f} s")
        try:
            steps: list[tuple[str, Callable[[], None]]] = [
                ("W1", self.w1), ("W2", self.w2), ("W3", self.w3), ("W4", self.w4),
                ("USERCODE", lambda: self.results["devhost"].__setitem__("user_code", user_code.measure())),
            ]
            for name, step in steps:
                # the peers run within W1's step, taking turns with devhost
                if name in self.selected or (name == "W1" and self.selected & set(PEERS)):
                    load = round(os.getloadavg()[0], 2)
                    self.results.setdefault("loadavg_at_start", {})[name] = load
                    log(f"== {name} == (load average {load})")
                    ticks = core_waits.machine_times()
                    self.attempt(name, step)
                    steal = core_waits.steal_since(ticks)
                    if steal is not None:
                        self.results.setdefault("steal_pct", {})[name] = steal
        finally:
            if self.azurite is not None:
                launcher.stop_azurite(self.azurite)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    selected = {w.strip().upper() for w in args.only.split(",") if w.strip()} or set(WORKLOADS)
    if args.profile and not args.only:
        selected = {"W1"}
    unknown = selected - set(WORKLOADS)
    if unknown:
        log(f"unknown workloads: {', '.join(sorted(unknown))} (choose from {', '.join(WORKLOADS)})")
        return 2
    config = QUICK if args.quick else FULL
    if args.flows:
        config = replace(config, w1_instances=args.flows)
    mode = "quick" if args.quick else "full"
    out = args.out or RESULTS / ("profile-w1.json" if args.profile else f"{'quick' if args.quick else 'latest'}.json")
    signal.signal(signal.SIGTERM, launcher.raise_keyboard_interrupt)  # stop children the same way as on Ctrl-C
    signal.signal(signal.SIGINT, signal.default_int_handler)  # also when started with SIGINT ignored

    meta = machine_info(argv)
    meta["mode"] = mode
    meta["profiled"] = args.profile
    meta["workloads"] = sorted(selected)
    began = time.perf_counter()
    ticks = core_waits.machine_times()
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        run = Run(config, selected, args.profile, Path(tmp))
        try:
            run.execute()
        except KeyboardInterrupt:
            log("Interrupted: subprocesses stopped, nothing written.")
            return 130
        profile_summary = None
        if args.profile and run.profile_raw:
            profile_summary = summarize(run.profile_raw, seconds=run.profile_seconds, rate=launcher.Profiler.RATE)
            # the collapsed stacks themselves, for flamegraph tools (git-ignored: *.tmp)
            RESULTS.mkdir(parents=True, exist_ok=True)
            (RESULTS / "profile-w1.collapsed.tmp").write_text("".join(p.read_text() for p in run.profile_raw))
    meta["duration_s"] = round(time.perf_counter() - began, 1)
    meta["loadavg_after"] = round(os.getloadavg()[0], 2)
    meta["steal_pct"] = core_waits.steal_since(ticks)
    results: dict[str, Any] = {"meta": meta, "config": asdict(config), **run.results}
    results["ratios"] = report.compute_ratios(results)
    baseline = RESULTS / "baseline.json"
    if baseline.exists() and not (args.profile or args.quick or args.flows):  # like for like: full runs only
        with contextlib.suppress(OSError, ValueError):
            results["baseline"] = json.loads(baseline.read_text())
    results["goals"] = report.evaluate_goals(results)
    if not results["errors"]:
        del results["errors"]

    table = report.terminal_report(results)
    sys.stdout.write(table)
    if profile_summary is not None:
        target = RESULTS / "profile-w1.txt"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(
            f"# py-spy profile of devhost during W1 ({config.w1_instances} flows one at a time, then "
            f"{config.w1_instances} with {config.concurrency} clients, each on a fresh devhost; py-spy attached "
            f"after start-up)\n# {meta['date']} UTC, commit {meta['git_commit']}, load average "
            f"{meta['loadavg_before']} -> {meta['loadavg_after']}\n# command: {meta['command']}\n"
            f"# W1 figures while profiled:\n" + "".join(f"#   {line}\n" for line in table.splitlines()[1:13])
            + "\n" + profile_summary)
        log(f"Profile summary written to {target}")
    out.parent.mkdir(parents=True, exist_ok=True)
    if not args.profile:
        # Beside the results; paths as docs/benchmarks.md links them.
        drawn = charts.draw_all(results, out.parent, prefix="" if out.name == "latest.json" else f"{out.stem}-")
        results["charts"] = {name: os.path.relpath(path, DOCS.parent) for name, path in drawn.items()}
        log(f"Charts written: {', '.join(drawn.values()) or 'none'}")
    baseline_results = results.pop("baseline", None)
    out.write_text(json.dumps(results, indent=2) + "\n")
    if baseline_results is not None:
        results["baseline"] = baseline_results
    log(f"Figures written to {out}")
    if not (args.quick or args.profile or args.only or args.no_docs):
        DOCS.parent.mkdir(parents=True, exist_ok=True)
        DOCS.write_text(report.markdown(results))
        log(f"{DOCS.relative_to(launcher.PROJECT_ROOT)} regenerated")
    ready = results["devhost"].get("ready_s") or []
    if ready:
        log(f"devhost ready: median {statistics.median(ready):.2f} s over {len(ready)} starts")
    return 1 if results.get("errors") else 0
