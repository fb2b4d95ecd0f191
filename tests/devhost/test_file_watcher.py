"""What the file watcher sees: the app's code and JSON, less what .funcignore and tooling folders leave out."""

from __future__ import annotations

import os
from pathlib import Path

from devhost.file_watcher import changed_files, snapshot


def _write(path: Path, text: str = "") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_snapshot_watches_code_and_json_but_not_what_is_ignored(tmp_path: Path) -> None:
    _write(tmp_path / "host.json", "{}")
    _write(tmp_path / "function_app.py")
    _write(tmp_path / "pkg" / "deep" / "module.py")
    _write(tmp_path / "pkg" / "notes.txt")
    _write(tmp_path / "pkg" / "__pycache__" / "module.cpython-311.py")
    _write(tmp_path / ".venv" / "lib.py")
    _write(tmp_path / "node_modules" / "x.json")
    _write(tmp_path / "tests" / "test_app.py")
    _write(tmp_path / "pkg" / "generated" / "out.json")
    _write(tmp_path / "local.settings.json", "{}")
    _write(tmp_path / ".funcignore", "# comment\ntests/\n**/generated\nlocal.settings.json\nhost.json\n")
    os.symlink(tmp_path / "pkg", tmp_path / "linked")  # a link to a folder is not walked into

    assert sorted(snapshot(tmp_path)) == ["function_app.py", "host.json", os.path.join("pkg", "deep", "module.py")]


def test_an_edit_an_addition_and_a_removal_are_changes(tmp_path: Path) -> None:
    _write(tmp_path / "host.json", "{}")
    _write(tmp_path / "a.py", "1")
    _write(tmp_path / "b.py", "1")
    before = snapshot(tmp_path)
    _write(tmp_path / "a.py", "22")
    (tmp_path / "b.py").unlink()
    _write(tmp_path / "sub" / "c.json", "{}")
    assert changed_files(before, snapshot(tmp_path)) == ["a.py", "b.py", os.path.join("sub", "c.json")]


def test_funcignore_edits_apply_at_the_next_snapshot(tmp_path: Path) -> None:
    _write(tmp_path / "host.json", "{}")
    _write(tmp_path / "tools" / "gen.py")
    assert "tools/gen.py" in snapshot(tmp_path)
    _write(tmp_path / ".funcignore", "tools\n")
    assert "tools/gen.py" not in snapshot(tmp_path)
