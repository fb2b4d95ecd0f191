"""Deployability: the app imports and indexes in a fresh environment holding only requirements.txt.

Only the files Core Tools would publish (everything `.funcignore` does not exclude) are copied, so a
module that is missing from the package, or a dependency that only the dev environment has, fails here.
Select it alone with `pytest -m deploy`, or leave it out with `-m "not deploy"`; it needs PyPI.
"""

import fnmatch
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.app.expected_functions import ACTIVITIES, ALL_FUNCTIONS, HTTP_FUNCTIONS, ORCHESTRATORS

PROJECT_ROOT = Path(__file__).resolve().parents[2]

INDEX_SCRIPT = """
import json
import sys

import function_app

functions = []
for function in function_app.app.get_functions():
    functions.append({"name": function.get_function_name(), **json.loads(function.get_function_json())})
print(json.dumps({
    "functions": functions,
    "foreignModules": sorted(m for m in sys.modules if m.split(".")[0] in ("devhost", "tests")),
}))
"""


def funcignore_patterns() -> list[str]:
    """The `.funcignore` patterns (gitignore-like; matched here against each path component)."""
    lines = (PROJECT_ROOT / ".funcignore").read_text(encoding="utf-8").splitlines()
    return [line.strip().rstrip("/") for line in lines if line.strip() and not line.startswith("#")]


def copy_publishable_files(target: Path) -> list[str]:
    """Copy what `func azure functionapp publish` would upload; return the relative paths copied."""
    patterns = funcignore_patterns()
    copied: list[str] = []
    for directory, subdirs, files in os.walk(PROJECT_ROOT):
        relative_dir = Path(directory).relative_to(PROJECT_ROOT)
        subdirs[:] = [d for d in subdirs if not any(fnmatch.fnmatch(d, p) for p in patterns)]
        for name in files:
            if any(fnmatch.fnmatch(name, p) for p in patterns):
                continue
            relative = relative_dir / name
            (target / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(PROJECT_ROOT / relative, target / relative)
            copied.append(relative.as_posix())
    return copied


def run(command: list[str], cwd: Path, timeout: float) -> str:
    """Run `command` with no trace of the dev environment; fail the test with its output on error."""
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME"}}
    env["PYTHONNOUSERSITE"] = "1"
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    if result.returncode != 0:
        pytest.fail(f"{' '.join(command)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result.stdout


@pytest.mark.deploy
def test_app_indexes_from_a_clean_environment(tmp_path: Path) -> None:
    """A fresh venv with only requirements.txt imports function_app and indexes every expected function."""
    app_dir = tmp_path / "app"
    copied = copy_publishable_files(app_dir)
    assert "function_app.py" in copied and "host.json" in copied and "requirements.txt" in copied
    assert not any(path.startswith(("tests/", "devhost/", ".venv/")) for path in copied)

    venv = tmp_path / "venv"
    # No pip inside the venv: bootstrapping it (ensurepip) takes longer than the install itself. The
    # test environment's pip installs into the venv through --python, so the venv ends up holding only
    # the requirements and what they pull in.
    run([sys.executable, "-m", "venv", "--without-pip", str(venv)], tmp_path, timeout=60)
    python = venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    install = [sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet", "-r", "requirements.txt"]
    run(install, app_dir, timeout=240)
    report: dict[str, Any] = json.loads(run([str(python), "-c", INDEX_SCRIPT], app_dir, timeout=60))

    assert report["foreignModules"] == []
    functions = {entry["name"]: entry for entry in report["functions"]}
    assert ALL_FUNCTIONS <= set(functions)
    durable = {
        name
        for name, entry in functions.items()
        if entry["bindings"][0]["type"] in {"orchestrationTrigger", "activityTrigger"}
    }
    assert durable == {*ORCHESTRATORS, *ACTIVITIES}
    assert all(entry["scriptFile"] == "function_app.py" for entry in functions.values())
    for name in ORCHESTRATORS:
        assert functions[name]["bindings"] == [{"direction": "IN", "type": "orchestrationTrigger", "name": "context"}]
    for name, parameter in ACTIVITIES.items():
        assert functions[name]["bindings"] == [{"direction": "IN", "type": "activityTrigger", "name": parameter}]
    for name, (route, methods) in HTTP_FUNCTIONS.items():
        by_type = {binding["type"]: binding for binding in functions[name]["bindings"]}
        assert by_type["httpTrigger"]["route"] == route
        assert by_type["httpTrigger"]["methods"] == methods
        assert by_type["httpTrigger"]["authLevel"] == "FUNCTION"
        assert by_type["durableClient"] == {"direction": "IN", "type": "durableClient", "name": "client"}
