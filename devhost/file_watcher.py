"""Restart on change: what the Functions host's file monitoring does under ``func start``.

The host watches the app's root and restarts when host.json or the app's code changes. devhost
cannot unload a Python app it has imported (the SDK registers functions once per app object), so a
restart here is a clean stop followed by a re-exec of the same command line with the environment it
started with (so that edited local.settings.json values apply again). Durable state is in storage, so
a restart loses nothing: leased messages come back to the new process as after any restart.
"""

from __future__ import annotations

import asyncio
import fnmatch
import logging
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

log = logging.getLogger("devhost")

WATCHED_SUFFIXES = (".py", ".json")  # host.json, local.settings.json, function.json, the app's code
SKIPPED_DIRS = {"node_modules", "__pycache__", "__blobstorage__", "__queuestorage__"}
POLL_SECONDS = 0.5

Snapshot = dict[str, tuple[int, int]]


def ignore_patterns(root: Path) -> list[str]:
    """The app's .funcignore: what is not part of the deployed app (tests, tooling) is not watched either."""
    try:
        lines = (root / ".funcignore").read_text(encoding="utf-8").splitlines()
    except OSError:
        return []
    return [line.strip().rstrip("/") for line in lines if line.strip() and not line.startswith(("#", "!"))]


def _skipped(relative: str, name: str, patterns: Sequence[str]) -> bool:
    if name == "host.json" and relative == name:
        return False  # the host's own configuration is always watched
    if name.startswith(".") or name in SKIPPED_DIRS:  # .venv, .git, .devhost (Azurite's files) and the like
        return True
    return any(fnmatch.fnmatch(name, p) or fnmatch.fnmatch(relative, p) for p in patterns)


def snapshot(root: Path) -> Snapshot:
    """(mtime in ns, size) of every watched file under ``root``."""
    patterns = ignore_patterns(root)
    files: Snapshot = {}
    for folder, dirs, names in os.walk(root):
        here = os.path.relpath(folder, root)

        def relative(name: str, here: str = here) -> str:
            return name if here == "." else os.path.join(here, name)

        dirs[:] = [d for d in dirs if not _skipped(relative(d), d, patterns)]
        for name in names:
            if name.endswith(WATCHED_SUFFIXES) and not _skipped(relative(name), name, patterns):
                path = os.path.join(folder, name)
                try:
                    stat = os.stat(path)
                except OSError:
                    continue  # removed while walking: the next snapshot sees it gone
                files[os.path.relpath(path, root)] = (stat.st_mtime_ns, stat.st_size)
    return files


def changed_files(before: Snapshot, after: Snapshot) -> list[str]:
    return sorted(name for name in before.keys() | after.keys() if before.get(name) != after.get(name))


async def watch(root: Path, on_change: Callable[[list[str]], None], interval: float = POLL_SECONDS) -> None:
    """Call ``on_change`` once with the changed paths when a watched file is added, edited or removed."""
    before = await asyncio.to_thread(snapshot, root)
    while True:
        await asyncio.sleep(interval)
        after = await asyncio.to_thread(snapshot, root)
        changed = changed_files(before, after)
        if changed:
            log.info("File change detected: %s. Restarting the host.", ", ".join(changed[:5]))
            on_change(changed)
            return
        before = after


def reexec(cwd: str, environ: dict[str, str]) -> None:
    """Replace this process with a fresh run of the same command line."""
    os.chdir(cwd)
    os.execve(sys.executable, [sys.executable, *sys.orig_argv[1:]], environ)
