"""``python -m devhost start``: what ``func start`` does for a Python v2 app, without .NET."""

from __future__ import annotations

import argparse
import logging
import os
import platform
import sys
from collections.abc import Mapping, Sequence
from dataclasses import replace
from importlib import metadata
from typing import TextIO

from devhost import spans
from devhost.config import HostConfig, load_config
from devhost.errors import DevhostError
from devhost.http.routes import join_prefix
from devhost.listening import exposure_warning, parse_address
from devhost.monitor.handler import MONITOR_PATH
from devhost.worker.invoker import Worker

log = logging.getLogger("devhost")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        # `devhost` when run as the installed console script, `python -m devhost` otherwise.
        prog="devhost" if os.path.basename(sys.argv[0]) == "devhost" else "python -m devhost",
        description="Run an Azure Functions Python v2 app (HTTP, Durable Functions, timer, queue and blob "
                    "triggers) locally, without .NET.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    start = commands.add_parser("start", help="start the local Functions host (like `func start`)",
                                description="Start the local Functions host for the app in --app-dir.")
    start.add_argument("--port", "-p", type=int, default=None,
                       help="HTTP port (default: Host.LocalHttpPort in local.settings.json, else 7071)")
    start.add_argument("--app-dir", default=".", help="the function app's root, holding host.json (default: .)")
    start.add_argument("--address", "--host", action="append", dest="hosts", metavar="ADDRESS",
                       help="IP address to listen on (repeatable; default: Host.LocalHttpAddress in "
                            "local.settings.json, else loopback only)")
    start.add_argument("--cors", default=None, metavar="ORIGINS",
                       help="comma-separated CORS origins with no spaces (default: Host.CORS in local.settings.json)")
    start.add_argument("--cors-credentials", nargs="?", const=True, default=None, type=_flag,
                       help="allow cross-origin authenticated requests (default: Host.CORSCredentials)")
    start.add_argument("--enableAuth", action="store_true", dest="enable_auth",
                       help="check function keys as Azure does (keys kept as the Functions host keeps them)")
    start.add_argument("--functions", nargs="+", metavar="NAME", help="load only these functions")
    start.add_argument("--verbose", action="store_true", help="show debug logs from devhost and libraries")
    add_pack_command(commands)
    return parser


def add_pack_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from devhost.pack import DEFAULT_PYTHON_VERSION

    pack = commands.add_parser(
        "pack", help="build the deployment zip (like `func pack`)",
        description="Build the zip that `func pack` would make for the app in --app-dir, honouring .funcignore.")
    pack.add_argument("--app-dir", default=".", help="the function app's root, holding host.json (default: .)")
    pack.add_argument("--output", "-o", default=None, metavar="PATH",
                      help="a folder for <app folder>.zip, or a path ending in .zip (default: ./<app folder>.zip)")
    pack.add_argument("--build-local", action="store_true",
                      help="install requirements.txt into .python_packages/lib/site-packages for Linux")
    pack.add_argument("--python-version", default=DEFAULT_PYTHON_VERSION,
                      help=f"target Python version for --build-local (default: {DEFAULT_PYTHON_VERSION})")


def pack(args: argparse.Namespace, out: TextIO) -> int:
    from pathlib import Path

    from devhost.pack import build_package, default_output

    app_dir = Path(args.app_dir)
    output = default_output(app_dir, args.output, Path.cwd())
    names = build_package(app_dir, output, build_local=args.build_local, python_version=args.python_version)
    print(f"Created {output} ({len(names)} files)", file=out, flush=True)
    return 0


def _flag(text: str) -> bool:
    return text.strip().lower() in ("true", "1", "yes")


def format_function_list(worker: Worker, base_url: str, route_prefix: str, *,
                         disabled: Sequence[str] = (), invoke_keys: Mapping[str, str] | None = None) -> str:
    """The ``Functions:`` block of ``func start``: HTTP functions first, a blank line after each, then one
    line per disabled function. With keys checked, URLs carry the ``?code=`` to call them with."""
    off = {name.lower() for name in disabled}
    functions = [f for f in worker.functions.values() if f.name.lower() not in off]
    lines = ["", "Functions:", ""] if functions else []
    for fn in (f for f in functions if f.http is not None):
        assert fn.http is not None
        methods = f"[{','.join(fn.http.methods)}]" if fn.http.methods else ""
        code = (invoke_keys or {}).get(fn.name)
        query = f"?code={code}" if code else ""
        lines += [f"\t{fn.name}: {methods} {base_url}/{join_prefix(route_prefix, fn.http.route)}{query}", ""]
    for fn in (f for f in functions if f.http is None):
        trigger = next((b.get("type") for b in fn.raw_bindings
                        if str(b.get("type", "")).endswith("Trigger")), fn.trigger_type)
        lines += [f"\t{fn.name}: {trigger}", ""]
    if worker.refusals:
        # Loud, not silent: these are listed above too, but every invocation of them fails.
        lines += ["Functions devhost cannot run (invoking them fails):", ""]
        lines += [f"\t{name}: {reason}\n" for name, reason in worker.refusals.items()]
    lines += [f"Function {name} is disabled." for name in disabled]
    return "\n".join(lines)


def apply_start_flags(args: argparse.Namespace, config: HostConfig) -> HostConfig:
    """Start flags win over local.settings.json's ``Host`` section, as Core Tools' defaults come from it."""
    http = config.http
    http = replace(
        http,
        cors_origins=tuple(o for o in args.cors.split(",") if o) or None if args.cors is not None
        else http.cors_origins,
        cors_credentials=http.cors_credentials if args.cors_credentials is None else args.cors_credentials,
        enable_auth=bool(args.enable_auth),
        address=parse_address(http.address) if http.address else None,
    )
    return replace(config, http=http)


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

    for index, name in enumerate(args.functions or ()):
        # What Core Tools does with --functions: host.json's "functions" allow list, through the environment.
        os.environ[f"AzureFunctionsJobHost__functions__{index}"] = name
    hosts = [parse_address(h) for h in args.hosts] if args.hosts else None
    # What a restart on file change re-executes with: the command line and environment as given, so that
    # local.settings.json is applied afresh.
    cwd, environ = os.getcwd(), dict(os.environ)
    config = apply_start_flags(args, load_config(args.app_dir, port=args.port))
    setup_logging(config.host_json, verbose=args.verbose, stream=out)
    spans.start()  # the benchmark's critical-path spans, when DEVHOST_SPANS_FILE asks for them
    print(_banner(), file=out, flush=True)
    runtime = os.environ.get("FUNCTIONS_WORKER_RUNTIME")
    if runtime and runtime.lower() != "python":
        log.warning("FUNCTIONS_WORKER_RUNTIME is '%s'; devhost only runs Python apps.", runtime)

    def announce(host: Host) -> None:
        if not host.worker.functions:
            log.warning("No job functions found.")
        listing = format_function_list(host.worker, host.base_url, config.route_prefix, disabled=host.disabled,
                                       invoke_keys=host.access.invoke_keys if host.access else None)
        if host.needs_durable:
            listing += f"\n\tMonitor: {host.base_url}{MONITOR_PATH}/\n"
        tail = "" if args.verbose else "For detailed output, run devhost with --verbose flag.\n"
        print(listing + "\n" + tail, file=out, flush=True)
        warning = exposure_warning(host.hosts, keys_checked=config.http.enable_auth)
        if warning:
            log.warning(warning)

    def restart() -> None:
        from devhost.file_watcher import reexec

        reexec(cwd, environ)

    return run(config, hosts=hosts, on_started=announce, restart=restart)


def main(argv: Sequence[str] | None = None, *, out: TextIO | None = None) -> int:
    stream = out or sys.stdout
    parser = build_parser()
    args = parser.parse_args(argv)
    commands = {"start": start, "pack": pack}
    if args.command not in commands:
        parser.print_help(stream)
        return 2
    try:
        return commands[args.command](args, stream)
    except DevhostError as exc:
        # Expected failures get one clear line, no traceback.
        print(f"devhost: error: {exc}", file=sys.stderr, flush=True)
        return 1
    except KeyboardInterrupt:
        return 0
