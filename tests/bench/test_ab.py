"""bench.ab's other-commit variant: a detached checkout of the revision, removed afterwards."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from bench import ab, launcher


def test_checkout_holds_the_revision_and_is_removed_after(tmp_path: Path) -> None:
    """The checkout is the revision's tree (its devhost and app), and git forgets it once the block ends."""
    inside = subprocess.run(["git", "-C", str(launcher.PROJECT_ROOT), "rev-parse", "--is-inside-work-tree"],
                            capture_output=True, text=True, check=False)
    if inside.stdout.strip() != "true":
        pytest.skip("not a git checkout")
    head = subprocess.run(["git", "-C", str(launcher.PROJECT_ROOT), "rev-parse", "HEAD"], capture_output=True,
                          text=True, check=True).stdout.strip()
    with ab.checkout(head, tmp_path) as path:
        assert (path / "devhost" / "__main__.py").is_file() and (path / "function_app.py").is_file()
        at = subprocess.run(["git", "-C", str(path), "rev-parse", "HEAD"], capture_output=True, text=True,
                            check=True).stdout.strip()
        assert at == head
    assert not path.exists()
    listed = subprocess.run(["git", "-C", str(launcher.PROJECT_ROOT), "worktree", "list"], capture_output=True,
                            text=True, check=True).stdout
    assert str(path) not in listed
