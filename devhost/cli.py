"""``python -m devhost start``: what ``func start`` does for a Python v2 app, without .NET."""

from __future__ import annotations

import argparse
import logging
import os
import platform
import sys
from collections.abc import Sequence
from importlib import metadata
from typing import TextIO

from devhost.config import load_config
from devhost.errors import DevhostError
from devhost.http.routes import join_prefix
from devhost.worker.invoker import Worker

log = logging.getLogger("devhost")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m devhost",
        description="Run an Azure Functions Python v2 app (HTTP + Durable Functions) locally, without .NET.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    start = commands.add_parser("start", help="start the local Functions host (like `func start`)",
                                description="Start the local Functions host for the app in --app-dir.")
    start.add_argument("--port", "-p", type=int, default=None,
                       help="HTTP port (default: Host.LocalHttpPort in local.settings.json, else 7071)")
    start.add_argument("--app-dir", default=".", help="the function app's root, holding host.json (default: .)")
    start.add_argument("--host", action="append", dest="hosts", metavar="ADDRESS",
                       help="address to listen on (repeatable; default: loopback only)")
    start.add_argument("--verbose", action="store_true", help="show debug logs from devhost and libraries")
    return parser


def format_function_list(worker: Worker, base_url: str, route_prefix: str) -> str:
    """The ``Functions:`` block of ``func start``: HTTP functions first, a blank line after each."""
    lines = ["", "Functions:", ""]
    functions = list(worker.functions.values())
    for fn in (f for f in functions if f.http is not None):
        assert fn.http is not None
        methods = f"[{','.join(fn.http.methods)}]" if fn.http.methods else ""
        lines += [f"\t{fn.name}: {methods} {base_url}/{join_prefix(route_prefix, fn.http.route)}", ""]
    for fn in (f for f in functions if f.http is None):
        trigger = next((b.get("type") for b in fn.raw_bindings
                        if str(b.get("type", "")).endswith("Trigger")), fn.trigger_type)
        lines += [f"\t{fn.name}: {trigger}", ""]
    return "\n".join(lines)


def _banner() -> str:
    def version(dist: str) -> str:
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            return "not installed"

    return (
        "\nAzure Functions devhost (pure-Python local host)\n"
        f"Python {platform.python_version()}, azure-functions {version('azure-functions')}, "
        f"azure-functions-durable {version('azure-functions-durable')}\n"
    )


def start(args: argparse.Namespace, out: TextIO) -> int:
    from devhost.host import Host, run  # imported here so --help stays fast
    from devhost.logs import setup_logging

    # What a restart on file change re-executes with: the command line and environment as given, so that
    # local.settings.json is applied afresh.
    cwd, environ = os.getcwd(), dict(os.environ)
    config = load_config(args.app_dir, port=args.port)
    setup_logging(config.host_json, verbose=args.verbose, stream=out)
    print(_banner(), file=out, flush=True)
    runtime = os.environ.get("FUNCTIONS_WORKER_RUNTIME")
    if runtime and runtime.lower() != "python":
        log.warning("FUNCTIONS_WORKER_RUNTIME is '%s'; devhost only runs Python apps.", runtime)

    def announce(host: Host) -> None:
        if not host.worker.functions:
            log.warning("No job functions found.")
        listing = format_function_list(host.worker, host.base_url, config.route_prefix)
        tail = "" if args.verbose else "For detailed output, run devhost with --verbose flag.\n"
        print(listing + "\n" + tail, file=out, flush=True)

    def restart() -> None:
        from devhost.file_watcher import reexec

        reexec(cwd, environ)

    return run(config, hosts=args.hosts, on_started=announce, restart=restart)


def main(argv: Sequence[str] | None = None, *, out: TextIO | None = None) -> int:
    stream = out or sys.stdout
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command != "start":
        parser.print_help(stream)
        return 2
    try:
        return start(args, stream)
    except DevhostError as exc:
        # Expected failures get one clear line, no traceback.
        print(f"devhost: error: {exc}", file=sys.stderr, flush=True)
        return 1
    except KeyboardInterrupt:
        return 0
