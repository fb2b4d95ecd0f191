"""Deployability: the deployment zip (``python -m devhost pack --build-local``), unpacked into an empty
folder, imports and indexes every function in a fresh interpreter with nothing else on its path.

The zip holds what `func pack` would upload (everything `.funcignore` lets through, by Core Tools'
rules) plus `.python_packages/lib/site-packages` installed for Linux from requirements.txt, where the
Python worker finds it in Azure. So a module missing from the package, or a dependency that only the
dev environment has, fails here. Select it alone with `pytest -m deploy`, or leave it out with
`-m "not deploy"`; it needs PyPI.
"""

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest

from devhost.cli import main
from devhost.pack import SITE_PACKAGES
from tests.app.expected_functions import ACTIVITIES, ALL_FUNCTIONS, HTTP_FUNCTIONS, ORCHESTRATORS

PROJECT_ROOT = Path(__file__).resolve().parents[2]

# The worker puts the app root and .python_packages/lib/site-packages on the path; nothing else is there.
INDEX_SCRIPT = """
import json
import sys

root = sys.argv[1]
sys.path[:0] = [root, root + "/.python_packages/lib/site-packages"]
import function_app

functions = []
for function in function_app.app.get_functions():
    functions.append({"name": function.get_function_name(), **json.loads(function.get_function_json())})
print(json.dumps({
    "functions": functions,
    "path": sys.path,
    "foreignModules": sorted(m for m in sys.modules if m.split(".")[0] in ("devhost", "tests")),
}))
"""


def run(command: list[str], cwd: Path, timeout: float) -> str:
    """Run ``command`` with an empty environment; fail the test with its output on error."""
    env = {"PATH": os.environ.get("PATH", "")}
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    if result.returncode != 0:
        pytest.fail(f"{' '.join(command)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result.stdout


@pytest.mark.deploy
def test_app_indexes_from_the_deployment_package(tmp_path: Path) -> None:
    """The --build-local zip, unpacked, indexes every expected function in an interpreter without site-packages."""
    package = tmp_path / "app.zip"
    version = f"{sys.version_info.major}.{sys.version_info.minor}"  # wheels this interpreter can import
    assert main(["pack", "--app-dir", str(PROJECT_ROOT), "--output", str(package), "--build-local",
                 "--python-version", version]) == 0
    app_dir = tmp_path / "wwwroot"
    with zipfile.ZipFile(package) as archive:
        names = archive.namelist()
        archive.extractall(app_dir)
    assert "function_app.py" in names and "host.json" in names and "requirements.txt" in names
    assert not any(name.startswith(("tests/", "devhost/", ".venv/", "infra/")) for name in names)
    assert any(name.startswith(f"{SITE_PACKAGES}/azure/durable_functions/") for name in names)

    # -I: no PYTHON* variables, no user site, no script folder; -S: not even this venv's site-packages.
    report: dict[str, Any] = json.loads(run([sys.executable, "-I", "-S", "-c", INDEX_SCRIPT, str(app_dir)],
                                            tmp_path, timeout=120))

    assert report["foreignModules"] == []
    assert [p for p in report["path"] if "site-packages" in p and not p.startswith(str(app_dir))] == []
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
