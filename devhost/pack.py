"""``python -m devhost pack``: the deployment zip that ``func pack`` builds for a Python app, without Core Tools.

Which files go in follows Core Tools (``FileSystemHelpers.GetLocalFiles`` and its ``GitIgnoreParser``):
every file under the app root except ``.git``/``.vscode`` folders and ``.funcignore``, ``.gitignore``,
``local.settings.json`` and ``project.lock.json`` files at any depth, and except what ``.funcignore``
denies. ``.funcignore`` is matched the way Core Tools matches it, which is *not* git's matcher: each
pattern is anchored at the app root and matched against the start of the file's relative path up to a
word boundary; ``*`` stays within one path segment and ``**`` spans several; ``!pattern`` re-includes.
So ``__pycache__`` or ``*.pyc`` only match at the root (``**/__pycache__`` reaches deeper), and
``tests`` also matches a root file ``tests.py``.

``--build-local`` adds ``.python_packages/lib/site-packages``, installed with pip for Linux and the
target Python version from requirements.txt, where the Python worker looks for it in Azure.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from devhost.errors import DevhostError

FUNCIGNORE = ".funcignore"
ALWAYS_EXCLUDED_FOLDERS = frozenset({".git", ".vscode"})
ALWAYS_EXCLUDED_FILES = frozenset({".funcignore", ".gitignore", "local.settings.json", "project.lock.json"})
SITE_PACKAGES = ".python_packages/lib/site-packages"
DEFAULT_PYTHON_VERSION = "3.11"  # the template's Flex Consumption runtime version (infra/main.bicep)
LINUX_PLATFORM = "manylinux2014_x86_64"
_FILE_MODE = 0o100666  # what Core Tools writes for every non-executable entry


class PackError(DevhostError):
    """The app cannot be packed (missing files, or its requirements cannot be installed for Linux)."""


# ------------------------------------------------------------------------------------------ .funcignore

_SPECIAL = re.compile(r"[\-\[\]/{}()+?.\\^$|]")


def _pattern_regex(pattern: str) -> str:
    escaped = _SPECIAL.sub(lambda m: "\\" + m.group(0), pattern)
    return escaped.replace("**", "(.+)").replace("*", "([^/]+)")


def _anchored(patterns: list[str]) -> re.Pattern[str] | None:
    if not patterns:
        return None
    # re.ASCII: \b as in the ECMAScript regexes Core Tools builds (word characters are [A-Za-z0-9_]).
    return re.compile("^((" + ")|(".join(_pattern_regex(p) for p in patterns) + r"))\b", re.ASCII)


@dataclass(frozen=True)
class FuncIgnore:
    """The ``.funcignore`` rules of one app, as Core Tools applies them."""

    denied: re.Pattern[str] | None
    re_included: re.Pattern[str] | None

    @classmethod
    def parse(cls, text: str) -> FuncIgnore:
        positive: list[str] = []
        negative: list[str] = []
        for raw in text.split("\n"):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            target = positive
            if line.startswith("!"):
                line, target = line[1:], negative
            target.append(line[1:] if line.startswith("/") else line)
        return cls(_anchored(positive), _anchored(negative))

    @classmethod
    def of_app(cls, app_dir: Path) -> FuncIgnore:
        path = app_dir / FUNCIGNORE
        return cls.parse(path.read_text(encoding="utf-8-sig")) if path.is_file() else cls(None, None)

    def accepts(self, relative: str) -> bool:
        """Whether the file at ``relative`` (a path with ``/``, relative to the app root) is packed."""
        if self.re_included is not None and self.re_included.match(relative):
            return True
        return self.denied is None or not self.denied.match(relative)

    def denies_folder(self, relative: str) -> bool:
        """True when no file below ``relative`` can be packed (so the walk need not enter it)."""
        return self.re_included is None and self.denied is not None and bool(self.denied.match(relative + "/"))


def publishable_files(app_dir: Path, *, skip: tuple[Path, ...] = ()) -> list[str]:
    """The relative paths (``/``-separated, sorted) that ``func pack`` would put in the zip."""
    root = app_dir.resolve()
    rules = FuncIgnore.of_app(root)
    skipped = {p.resolve() for p in skip}
    found: list[str] = []
    for folder, subfolders, files in os.walk(root, followlinks=True):
        here = Path(folder)
        relative_folder = here.relative_to(root).as_posix()
        prefix = "" if relative_folder == "." else relative_folder + "/"
        subfolders[:] = sorted(
            d for d in subfolders
            if d.lower() not in ALWAYS_EXCLUDED_FOLDERS and not rules.denies_folder(prefix + d)
            and (here / d).resolve() not in skipped
        )
        for name in files:
            if name.lower() in ALWAYS_EXCLUDED_FILES or (here / name).resolve() in skipped:
                continue
            if rules.accepts(prefix + name):
                found.append(prefix + name)
    return sorted(found)


# ---------------------------------------------------------------------------------------------- build


def install_requirements(app_dir: Path, target: Path, python_version: str, platform: str = LINUX_PLATFORM) -> None:
    """pip-install requirements.txt into ``target`` for Linux and ``python_version``, wheels only."""
    command = [
        sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-input",
        "--target", str(target), "--platform", platform, "--only-binary=:all:",
        "--python-version", python_version, "--implementation", "cp", "-r", str(app_dir / "requirements.txt"),
    ]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise PackError(
            f"installing requirements.txt for Python {python_version} on Linux ({platform}) failed; a package "
            f"without a wheel for that platform needs a remote build (deploy without --build-local):\n"
            f"{(result.stderr or result.stdout).strip()[-3000:]}"
        )


def _walk_files(folder: Path) -> Iterator[Path]:
    for current, _, files in os.walk(folder):
        for name in sorted(files):
            yield Path(current) / name


def _add(archive: zipfile.ZipFile, source: Path, name: str) -> None:
    info = zipfile.ZipInfo.from_file(source, name)
    info.create_system = 3  # Unix, so the permissions below apply where Azure unpacks it
    info.external_attr = _FILE_MODE << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    with open(source, "rb") as data, archive.open(info, "w") as entry:
        while chunk := data.read(1 << 20):
            entry.write(chunk)


def default_output(app_dir: Path, output: str | None, cwd: Path) -> Path:
    """Core Tools' rule: ``<app folder name>.zip`` in the current folder, or in ``--output`` (a folder).

    A path ending in ``.zip`` is taken as the file itself.
    """
    name = f"{app_dir.resolve().name}.zip"
    if output is None:
        return cwd / name
    path = cwd / output
    return path if path.suffix.lower() == ".zip" else path / name


def build_package(
    app_dir: Path, output: Path, *, build_local: bool = False, python_version: str = DEFAULT_PYTHON_VERSION
) -> list[str]:
    """Write the deployment zip to ``output``; returns the entry names written."""
    root = app_dir.resolve()
    if not (root / "host.json").is_file():
        raise PackError(f"Can't find {root / 'host.json'}")
    if not (root / "requirements.txt").is_file():
        raise PackError(
            "requirements.txt is not found. requirements.txt is required for python function apps. "
            "Please make sure to generate one before publishing."
        )
    # With --build-local the packages are installed afresh (as Core Tools recreates .python_packages),
    # so whatever the folder already holds there is left out.
    skip = (output, root / ".python_packages") if build_local else (output,)
    files = publishable_files(root, skip=skip)
    output.parent.mkdir(parents=True, exist_ok=True)
    names: list[str] = []
    with tempfile.TemporaryDirectory(prefix="devhost-pack-") as scratch:
        packages = Path(scratch) / "site-packages"
        if build_local:
            install_requirements(root, packages, python_version)
        partial = output.with_name(output.name + ".partial")
        with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as archive:
            for relative in files:
                _add(archive, root / relative, relative)
                names.append(relative)
            if build_local:
                for path in _walk_files(packages):
                    name = f"{SITE_PACKAGES}/{path.relative_to(packages).as_posix()}"
                    if "/__pycache__/" in name:
                        continue  # compiled for this machine's Python, not the target's
                    _add(archive, path, name)
                    names.append(name)
        partial.replace(output)  # no half-written zip under the final name
    return names
