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
import functools
import logging
import os
import re
import sys
from collections.abc import Callable
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


@functools.lru_cache(maxsize=8)
def _ignore_matcher(patterns: tuple[str, ...]) -> Callable[[str], re.Match[str] | None]:
    """One compiled regex for all patterns, matched as ``fnmatch.fnmatch`` matches each of them."""
    if not patterns:
        return lambda _: None
    joined = "|".join(f"(?:{fnmatch.translate(os.path.normcase(p))})" for p in patterns)
    return re.compile(joined).match


def _skipped(relative: str, name: str, ignored: Callable[[str], re.Match[str] | None]) -> bool:
    if name == "host.json" and relative == name:
        return False  # the host's own configuration is always watched
    if name.startswith(".") or name in SKIPPED_DIRS:  # .venv, .git, .devhost (Azurite's files) and the like
        return True
    return ignored(os.path.normcase(name)) is not None or ignored(os.path.normcase(relative)) is not None


def snapshot(root: Path) -> Snapshot:
    """(mtime in ns, size) of every watched file under ``root``.

    It runs every half second for the life of the host, so the .funcignore patterns are compiled once
    (per content of the file) and the tree is read with one ``scandir`` per folder, as ``os.walk`` does.
    """
    ignored = _ignore_matcher(tuple(ignore_patterns(root)))
    files: Snapshot = {}
    _scan(os.fspath(root), "", ignored, files)
    return files


def _scan(folder: str, here: str, ignored: Callable[[str], re.Match[str] | None], files: Snapshot) -> None:
    """One folder of ``snapshot`` (``here`` is its path relative to the root, "" for the root itself)."""
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return  # gone or unreadable: os.walk skips such a folder too
    subfolders: list[tuple[str, str]] = []
    for entry in entries:
        name = entry.name
        relative = os.path.join(here, name) if here else name
        try:
            is_dir = entry.is_dir()
        except OSError:
            is_dir = False
        if is_dir:
            # Like os.walk without followlinks: a link to a folder is neither walked into nor a file.
            if not _skipped(relative, name, ignored):
                try:
                    is_link = entry.is_symlink()
                except OSError:
                    is_link = False
                if not is_link:
                    subfolders.append((entry.path, relative))
        elif name.endswith(WATCHED_SUFFIXES) and not _skipped(relative, name, ignored):
            try:
                stat = os.stat(entry.path)
            except OSError:
                continue  # removed while walking: the next snapshot sees it gone
            files[relative] = (stat.st_mtime_ns, stat.st_size)
    for path, relative in subfolders:
        _scan(path, relative, ignored, files)


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
