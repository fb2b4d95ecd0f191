"""``python -m devhost pack``: the zip ``func pack`` would make, with Core Tools' .funcignore matching.

The --build-local package is checked by importing it in an empty interpreter in tests/app/test_deploy.py.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from devhost.cli import main
from devhost.pack import FuncIgnore, PackError, build_package, default_output, publishable_files
from tests.hosts import PROJECT_ROOT

FUNCIGNORE = """
# comments and blank lines are skipped

.venv
/secrets
*.log
**/__pycache__
build/**
docs
!docs/keep.md
tests
"""

TREE = {
    "host.json": "{}",
    "requirements.txt": "azure-functions\n",
    "function_app.py": "",
    "local.settings.json": "{}",  # never packed, whatever .funcignore says
    ".gitignore": "",
    ".git/config": "",
    "pkg/.vscode/settings.json": "",
    "pkg/module.py": "",
    "pkg/__pycache__/module.cpython-311.pyc": "",
    "__pycache__/top.pyc": "",  # `**/__pycache__` needs a folder in front: the root one stays
    "app.log": "",
    "pkg/deep.log": "",  # `*` stays in one segment, anchored at the root
    "secrets/key.txt": "",
    "build/out/a.bin": "",
    "docs/guide.md": "",
    "docs/keep.md": "",
    "tests.py": "",  # `tests` matches up to a word boundary, so it also takes tests.py
    "tests_data.py": "",  # ...but not a longer word
    ".venv/lib/x.py": "",
}
EXPECTED = {
    "host.json", "requirements.txt", "function_app.py", "pkg/module.py", "__pycache__/top.pyc", "pkg/deep.log",
    "docs/keep.md", "tests_data.py",
}


def make_tree(root: Path) -> Path:
    for relative, text in TREE.items():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_text(text)
    (root / ".funcignore").write_text(FUNCIGNORE)
    return root


def test_funcignore_matching_follows_core_tools(tmp_path: Path) -> None:
    """Anchored patterns, one-segment ``*``, ``**``, word-boundary ends and ``!`` re-includes."""
    assert set(publishable_files(make_tree(tmp_path / "app"))) == EXPECTED


def test_funcignore_rules_directly() -> None:
    """The rule object answers for single paths the same way."""
    rules = FuncIgnore.parse("node_modules/\n*.pyc\n!keep.pyc\n")
    assert not rules.accepts("node_modules/a/b.js")
    assert not rules.accepts("x.pyc") and rules.accepts("keep.pyc") and rules.accepts("sub/x.pyc")
    assert FuncIgnore.parse("").accepts("anything")


def test_zip_holds_exactly_the_publishable_files(tmp_path: Path) -> None:
    """The zip's entries are the publishable files, byte for byte, with Unix file modes."""
    app = make_tree(tmp_path / "app")
    (app / "pkg" / "module.py").write_text("VALUE = 42\n")
    output = tmp_path / "out" / "app.zip"
    names = build_package(app, output)
    with zipfile.ZipFile(output) as archive:
        assert sorted(archive.namelist()) == sorted(names) == sorted(EXPECTED)
        assert archive.read("pkg/module.py") == b"VALUE = 42\n"
        info = archive.getinfo("host.json")
        assert info.create_system == 3 and info.external_attr >> 16 == 0o100666
    assert not output.with_name("app.zip.partial").exists()


def test_output_naming_and_a_zip_inside_the_app_is_not_packed(tmp_path: Path) -> None:
    """Default ``<folder>.zip`` in the current folder, ``--output`` folder or file; the zip never packs itself."""
    app = make_tree(tmp_path / "app")
    assert default_output(app, None, tmp_path) == tmp_path / "app.zip"
    assert default_output(app, "dist", tmp_path) == tmp_path / "dist" / "app.zip"
    assert default_output(app, "dist/x.zip", tmp_path) == tmp_path / "dist" / "x.zip"
    names = build_package(app, app / "self.zip")
    assert "self.zip" not in names
    assert "self.zip" not in build_package(app, app / "self.zip")


def test_missing_requirements_is_refused(tmp_path: Path) -> None:
    """A Python app without requirements.txt cannot be packed (Core Tools' rule), and nothing is written."""
    app = make_tree(tmp_path / "app")
    (app / "requirements.txt").unlink()
    with pytest.raises(PackError, match=r"requirements\.txt is required for python function apps"):
        build_package(app, tmp_path / "app.zip")
    assert not (tmp_path / "app.zip").exists()


def test_project_package_through_the_command_line(tmp_path: Path) -> None:
    """`python -m devhost pack` on this project: the app's modules, none of devhost, tests or infra."""
    output = tmp_path / "project.zip"
    assert main(["pack", "--app-dir", str(PROJECT_ROOT), "--output", str(output)]) == 0
    with zipfile.ZipFile(output) as archive:
        names = set(archive.namelist())
    assert names == set(publishable_files(PROJECT_ROOT, skip=(output,)))
    assert {"function_app.py", "host.json", "requirements.txt", "orchestrators/reserve_ticket.py"} <= names
    assert not any(n.split("/")[0] in {"devhost", "tests", "infra", ".github", "bench", "docs", ".git"} for n in names)
    assert not any("__pycache__" in n or n.endswith(".pyc") for n in names)
    assert "local.settings.json" not in names
