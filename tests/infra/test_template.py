"""The azd template declares what the app needs in Azure, and sets every setting the app and devhost read.

No Bicep compiler runs here (it is a .NET tool these machines cannot download), so these are static
checks of the source: resource types, the properties that make the deployment identity-only, the role
assignments, and the app settings, which devhost's own settings reader must accept.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from devhost.config import apply_host_overrides
from devhost.pack import DEFAULT_PYTHON_VERSION, publishable_files
from devhost.storage_settings import (
    CredentialKind,
    durable_connection_name,
    require_durable_storage,
    resolve_connection,
)
from tests.infra.bicep import BicepFile, object_keys

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"
MAIN = BicepFile(INFRA / "main.bicep")
RESOURCES = BicepFile(INFRA / "resources.bicep")

STORAGE_ROLES = {
    "b7e6dc6d-f1e8-4753-8033-0f276bb0955b": "Storage Blob Data Owner",
    "974c5e8b-45b9-4653-ba55-5f855dd0fb88": "Storage Queue Data Contributor",
    "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3": "Storage Table Data Contributor",
}
MONITORING_METRICS_PUBLISHER = "3913510d-42f4-4e42-8a64-420c390055eb"


def app_settings() -> dict[str, str]:
    body = next(r.body for r in RESOURCES.resources()
                if r.type == "Microsoft.Web/sites/config" and "name: 'appsettings'" in r.body)
    properties = body[body.index("properties:"):]
    return object_keys(properties[properties.index("{") + 1:properties.index("\n  }")])


def test_azure_yaml_deploys_the_app_folder_as_a_python_function() -> None:
    """azure.yaml: one Python function service from the repository root, tagged on the function app."""
    document = yaml.safe_load((ROOT / "azure.yaml").read_text())
    assert document["infra"] == {"provider": "bicep", "path": "infra", "module": "main"}
    (name, service), = document["services"].items()
    assert (service["project"], service["language"], service["host"]) == ("./", "python", "function")
    assert f"'azd-service-name': '{name}'" in RESOURCES.resource("Microsoft.Web/sites").body


def test_every_parameter_is_described_and_provided() -> None:
    """Each parameter has a description; each one without a default comes from main.parameters.json."""
    for bicep in (MAIN, RESOURCES):
        for param in bicep.params():
            assert "@description(" in param.decorators, f"{bicep.path.name}: param {param.name} has no description"
    provided = json.loads((INFRA / "main.parameters.json").read_text())["parameters"]
    required = {p.name for p in MAIN.params() if p.default is None}
    assert required <= set(provided), required - set(provided)
    assert set(provided) <= {p.name for p in MAIN.params()}


def test_flex_consumption_plan_and_python_runtime() -> None:
    """An FC1 Flex Consumption Linux plan; the site runs Python at the version devhost packs for."""
    plan = RESOURCES.resource("Microsoft.Web/serverfarms").body
    assert "name: 'FC1'" in plan and "tier: 'FlexConsumption'" in plan and "reserved: true" in plan
    site = RESOURCES.resource("Microsoft.Web/sites").body
    assert "kind: 'functionapp,linux'" in site and "serverFarmId: plan.id" in site and "httpsOnly: true" in site
    runtime = re.search(r"runtime: \{\s*name: '(\w+)'\s*version: (\w+)", site)
    assert runtime and runtime.group(1) == "python" and runtime.group(2) == "pythonVersion"
    version = next(p for p in MAIN.params() if p.name == "pythonVersion")
    assert version.default == f"'{DEFAULT_PYTHON_VERSION}'"


def test_user_assigned_identity_everywhere() -> None:
    """The site runs as the user-assigned identity, which also pulls its deployment package."""
    assert RESOURCES.resource("Microsoft.ManagedIdentity/userAssignedIdentities")
    site = RESOURCES.resource("Microsoft.Web/sites").body
    assert "type: 'UserAssigned'" in site and "'${identity.id}': {}" in site
    assert "type: 'UserAssignedIdentity'" in site and "userAssignedIdentityResourceId: identity.id" in site
    assert "type: 'blobContainer'" in site


def test_storage_accepts_no_shared_key() -> None:
    """Shared Key (and so every account key and connection string) is off; public blob access too."""
    storage = object_keys(RESOURCES.resource("Microsoft.Storage/storageAccounts").body)
    properties = RESOURCES.resource("Microsoft.Storage/storageAccounts").body.split("properties:", 1)[1]
    flags = object_keys(properties[properties.index("{") + 1:])
    assert storage["kind"] == "'StorageV2'"
    assert flags["allowSharedKeyAccess"] == "false" and flags["allowBlobPublicAccess"] == "false"
    assert flags["minimumTlsVersion"] == "'TLS1_2'"


def test_role_assignments_for_blobs_queues_tables_and_metrics() -> None:
    """The identity holds the three storage data roles Durable Functions needs and may publish metrics."""
    roles = object_keys(RESOURCES.variable_block("roles"))
    assert {value.strip("'") for value in roles.values()} == {*STORAGE_ROLES, MONITORING_METRICS_PUBLISHER}
    listed = RESOURCES.variable_block("storageRoles")
    assert {roles[name.strip().removeprefix("roles.")].strip("'") for name in listed.split()} == set(STORAGE_ROLES)
    assignments = [r for r in RESOURCES.resources() if r.type == "Microsoft.Authorization/roleAssignments"]
    for_identity = [r.body for r in assignments if "principalId: identity.properties.principalId" in r.body]
    assert any("for role in storageRoles" in body and "scope: storage\n" in body for body in for_identity)
    assert any("roles.monitoringMetricsPublisher" in body and "scope: applicationInsights" in body
               for body in for_identity)


def test_application_insights_takes_entra_tokens_only() -> None:
    """Local auth is off; the app authenticates its telemetry with the identity."""
    insights = RESOURCES.resource("Microsoft.Insights/components").body
    assert "DisableLocalAuth: true" in insights and "WorkspaceResourceId: logAnalytics.id" in insights
    settings = app_settings()
    assert settings["APPLICATIONINSIGHTS_AUTHENTICATION_STRING"] == \
        "'ClientId=${identity.properties.clientId};Authorization=AAD'"
    assert settings["APPLICATIONINSIGHTS_CONNECTION_STRING"] == "applicationInsights.properties.ConnectionString"


def test_app_settings_satisfy_devhost_and_the_durable_extension() -> None:
    """The template's settings, read by devhost's reader, give an identity-based task hub connection."""
    settings = app_settings()
    as_environment = {name: f"https://example.invalid/{name}" for name in settings}
    as_environment["AzureWebJobsStorage__credential"] = settings["AzureWebJobsStorage__credential"].strip("'")
    host_json = json.loads((ROOT / "host.json").read_text())
    connection = resolve_connection(durable_connection_name(host_json), as_environment)
    storage = require_durable_storage(host_json, connection, ["httpTrigger", "orchestrationTrigger"])
    assert storage.is_identity_based and storage.credential is not None
    assert storage.credential.kind is CredentialKind.MANAGED_IDENTITY and storage.credential.client_id
    assert settings["AzureWebJobsStorage__clientId"] == "identity.properties.clientId"
    for service in ("blob", "queue", "table"):
        assert settings[f"AzureWebJobsStorage__{service}ServiceUri"] == f"storage.properties.primaryEndpoints.{service}"


def test_every_setting_the_app_reads_is_set() -> None:
    """local.settings.json's settings and host.json's %references% are all set in Azure by the template."""
    settings = app_settings()
    site = RESOURCES.resource("Microsoft.Web/sites").body
    local = json.loads((ROOT / "local.settings.json").read_text())["Values"]
    host_json = apply_host_overrides(json.loads((ROOT / "host.json").read_text()), {})
    references = set(re.findall(r"%(\w+)%", json.dumps(host_json)))
    for name in {*local, *references}:
        if name == "FUNCTIONS_WORKER_RUNTIME":
            assert f"name: '{local[name]}'" in site  # Flex Consumption: functionAppConfig.runtime, not a setting
        elif name == "AzureWebJobsStorage":
            assert any(key.startswith("AzureWebJobsStorage__") for key in settings)
        else:
            assert name in settings, f"{name} is read by the app but not set by the template"
    app_code = "\n".join((ROOT / path).read_text() for path in publishable_files(ROOT) if path.endswith(".py"))
    for name in re.findall(r"(?:environ(?:\.get)?\(|environ\[|getenv\()[\"'](\w+)", app_code):
        assert name in settings, f"the app reads {name} but the template does not set it"


@pytest.mark.parametrize("output", ["AZURE_FUNCTION_APP_NAME", "AZURE_FUNCTION_APP_URL", "AZURE_RESOURCE_GROUP",
                                    "AZURE_STORAGE_ACCOUNT_NAME"])
def test_outputs_the_guide_and_workflow_use(output: str) -> None:
    """azd keeps these outputs in its environment; docs/deploy.md and the deploy workflow read them."""
    assert output in MAIN.outputs()
