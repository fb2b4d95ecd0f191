"""Which Node.js runs the Azurite devhost starts: the project's own where ``npm ci`` installed one, as ``npx`` would.

Azurite 3.37 asks for Node.js 22 or later (its ``engines``), and on these machines the system's Node.js is
20. ``package.json`` therefore pins Node.js 24 (an LTS) as an optional dependency, its builds for Linux on
x64 and arm64; ``npm ci`` puts the one for the machine in ``node_modules/.bin/node`` beside the ``azurite``
launcher and skips the other (and both on other platforms). The launcher finds ``node`` on ``PATH`` (its
``#!/usr/bin/env node`` line), so devhost puts that folder first on Azurite's ``PATH``, which is what
``npx azurite`` and npm scripts do. Where the project has no Node.js of its own, Azurite runs on the
machine's, as before.

Besides meeting Azurite's ``engines``, Node.js 24 runs Azurite with about a quarter less CPU per W1 flow
than Node.js 20 (``docs/benchmarks.md``). ``DEVHOST_AZURITE_NODE`` names another ``node`` executable to run
it with, e.g. the system's to compare; its folder goes first on ``PATH`` the same way, so the file must be
called ``node``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from devhost.errors import AzuriteError

ENV_VAR = "DEVHOST_AZURITE_NODE"


def node_folder(launcher: Path, environ: Mapping[str, str] = os.environ) -> Path | None:
    """The folder whose ``node`` should run ``launcher`` (Azurite's), or None for the ``node`` on ``PATH``."""
    chosen = environ.get(ENV_VAR, "").strip()
    if chosen:
        node = Path(chosen).expanduser()
        if node.name != "node" or not (node.is_file() and os.access(node, os.X_OK)):
            raise AzuriteError(f"{ENV_VAR}={chosen!r} is not an executable file called node (the one to run Azurite)")
        return node.parent
    return launcher.parent if (launcher.parent / "node").exists() else None


def executable(launcher: Path, environ: Mapping[str, str] = os.environ) -> str:
    """The ``node`` that runs ``launcher``: a path, or ``"node"`` for the one on ``PATH``."""
    folder = node_folder(launcher, environ)
    return str(folder / "node") if folder is not None else "node"


def environment(launcher: Path, env: dict[str, str], environ: Mapping[str, str] = os.environ) -> dict[str, str]:
    """``env`` (Azurite's environment) with the folder of the ``node`` to run ``launcher`` first on ``PATH``."""
    folder = node_folder(launcher, environ)
    if folder is None:
        return env
    rest = env.get("PATH", "")
    return {**env, "PATH": f"{folder}{os.pathsep}{rest}" if rest else str(folder)}
