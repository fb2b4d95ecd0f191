"""The Node.js that runs Azurite: the project's own beside the launcher (as ``npx`` would), a named one, or PATH's."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from devhost import azurite_node
from devhost.azurite import AzuriteProcess, find_azurite
from devhost.errors import AzuriteError
from tests.conftest import PROJECT_ROOT


def _bin_folder(tmp_path: Path, *, with_node: bool) -> Path:
    folder = tmp_path / "node_modules" / ".bin"
    folder.mkdir(parents=True)
    (folder / "azurite").write_text("#!/usr/bin/env node\n")
    if with_node:
        node = folder / "node"
        node.write_text("#!/bin/sh\n")
        node.chmod(0o755)
    return folder


def test_the_projects_node_beside_the_launcher_comes_first_on_path(tmp_path: Path) -> None:
    """With ``node_modules/.bin/node`` installed, that folder leads Azurite's PATH and the rest follows unchanged."""
    folder = _bin_folder(tmp_path, with_node=True)
    env = azurite_node.environment(folder / "azurite", {"PATH": "/usr/bin:/bin", "HOME": "/root"}, environ={})
    assert env == {"PATH": f"{folder}{os.pathsep}/usr/bin:/bin", "HOME": "/root"}


def test_without_a_node_of_its_own_azurite_keeps_the_machines(tmp_path: Path) -> None:
    """No ``node`` beside the launcher (another platform, or a global install): the environment is left alone."""
    folder = _bin_folder(tmp_path, with_node=False)
    env = {"PATH": "/usr/bin:/bin"}
    assert azurite_node.environment(folder / "azurite", env, environ={}) is env


def test_a_named_node_wins(tmp_path: Path) -> None:
    """``DEVHOST_AZURITE_NODE`` puts the named executable's folder first, even where the project has its own."""
    folder = _bin_folder(tmp_path, with_node=True)
    other = tmp_path / "other"
    other.mkdir()
    node = other / "node"
    node.write_text("#!/bin/sh\n")
    node.chmod(0o755)
    env = azurite_node.environment(folder / "azurite", {"PATH": "/bin"}, environ={azurite_node.ENV_VAR: str(node)})
    assert env["PATH"] == f"{other}{os.pathsep}/bin"


def test_a_named_node_that_is_not_there_is_refused(tmp_path: Path) -> None:
    """A wrong ``DEVHOST_AZURITE_NODE`` stops the start with a message that names the variable."""
    folder = _bin_folder(tmp_path, with_node=True)
    with pytest.raises(AzuriteError, match=azurite_node.ENV_VAR):
        azurite_node.environment(folder / "azurite", {}, environ={azurite_node.ENV_VAR: str(tmp_path / "missing")})


def test_a_named_executable_not_called_node_is_refused(tmp_path: Path) -> None:
    """The launcher finds ``node`` by name on PATH, so an executable called anything else could not be the one."""
    folder = _bin_folder(tmp_path, with_node=True)
    other = tmp_path / "node24"
    other.write_text("#!/bin/sh\n")
    other.chmod(0o755)
    with pytest.raises(AzuriteError, match="called node"):
        azurite_node.environment(folder / "azurite", {}, environ={azurite_node.ENV_VAR: str(other)})


def test_the_bench_reports_the_node_that_runs_azurite(tmp_path: Path) -> None:
    """``executable`` names the project's node where it is installed, else the one on PATH."""
    with_node = _bin_folder(tmp_path / "a", with_node=True)
    without = _bin_folder(tmp_path / "b", with_node=False)
    assert azurite_node.executable(with_node / "azurite", environ={}) == str(with_node / "node")
    assert azurite_node.executable(without / "azurite", environ={}) == "node"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_the_session_azurite_runs_on_the_projects_node_where_npm_installed_it(azurite: AzuriteProcess) -> None:
    """Where ``npm ci`` installed the pinned Node.js, the Azurite the tests use is that executable."""
    pinned = find_azurite(PROJECT_ROOT).parent / "node"
    if not pinned.exists() or os.environ.get(azurite_node.ENV_VAR):
        pytest.skip("no Node.js of the project's own on this platform, or another one named")
    assert Path(f"/proc/{azurite.process.pid}/exe").resolve() == pinned.resolve()
