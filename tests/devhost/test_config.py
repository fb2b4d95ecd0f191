"""Reading host.json, local.settings.json and environment overrides into one HostConfig."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from devhost.config import load_config, parse_timespan, switched_on
from devhost.errors import ConfigError


def make_app(root: Path, host: dict[str, Any] | str | None = None,
             settings: dict[str, Any] | str | None = None) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    host_doc = {"version": "2.0"} if host is None else host
    (root / "host.json").write_text(host_doc if isinstance(host_doc, str) else json.dumps(host_doc))
    if settings is not None:
        (root / "local.settings.json").write_text(settings if isinstance(settings, str) else json.dumps(settings))
    return root


def test_defaults_for_a_minimal_app(tmp_path: Path) -> None:
    """A bare host.json gives Core Tools' defaults."""
    config = load_config(make_app(tmp_path / "app"), environ={})
    assert (config.port, config.route_prefix, config.script_file) == (7071, "api", "function_app.py")
    # No storage setting: nothing falls back to Azurite (the host refuses to start a durable app).
    assert config.storage is None and config.storage_connection == "" and not config.uses_development_storage
    assert config.durable.hub_name == "TestHubName" and config.log_level == "Information"


def test_local_settings_are_exported_but_environment_wins(tmp_path: Path) -> None:
    """Values become environment variables unless already set; null values are skipped."""
    app = make_app(tmp_path / "app", settings={"Values": {"A": "from-file", "B": "from-file", "C": None, "D": 5}})
    environ = {"B": "from-env"}
    load_config(app, environ=environ)
    assert environ == {"A": "from-file", "B": "from-env", "D": "5"}


def test_connection_strings_section_holds_the_storage_connection(tmp_path: Path) -> None:
    """local.settings.json ``ConnectionStrings`` become ``ConnectionStrings:<name>``, where the host looks first."""
    settings = {"Values": {}, "ConnectionStrings": {"AzureWebJobsStorage": "UseDevelopmentStorage=true"}}
    app = make_app(tmp_path / "app", settings=settings)
    environ: dict[str, str] = {}
    config = load_config(app, environ=environ)
    assert environ == {"ConnectionStrings:AzureWebJobsStorage": "UseDevelopmentStorage=true"}
    assert config.storage is not None and config.storage.setting == "ConnectionStrings:AzureWebJobsStorage"
    assert config.uses_development_storage


def test_a_set_but_empty_variable_does_not_override_local_settings(tmp_path: Path) -> None:
    """Core Tools skips a setting only when the environment holds a non-empty value for it."""
    app = make_app(tmp_path / "app", settings={"Values": {"AzureWebJobsStorage": "UseDevelopmentStorage=true",
                                                          "E": "from-file"}})
    environ = {"AzureWebJobsStorage": "", "E": ""}
    config = load_config(app, environ=environ)
    assert environ == {"AzureWebJobsStorage": "UseDevelopmentStorage=true", "E": "from-file"}
    assert config.storage_connection == "UseDevelopmentStorage=true"


@pytest.mark.parametrize(("value", "override"), [(None, False), ("NonRunningStates", False), ("anystate", True),
                                                 (0, True), ("1", False)])
def test_overridable_existing_instance_states(tmp_path: Path, value: Any, override: bool) -> None:
    """extensions.durableTask.overridableExistingInstanceStates is read as the extension's enum."""
    durable = {} if value is None else {"overridableExistingInstanceStates": value}
    app = make_app(tmp_path / "app", {"version": "2.0", "extensions": {"durableTask": durable}})
    assert load_config(app, environ={}).durable.override_active_instances is override


def test_unknown_overridable_state_is_refused(tmp_path: Path) -> None:
    """A value the extension's enum does not have stops the host with a clear message."""
    app = make_app(tmp_path / "app", {"version": "2.0", "extensions": {
        "durableTask": {"overridableExistingInstanceStates": "Sometimes"}}})
    with pytest.raises(ConfigError, match="overridableExistingInstanceStates must be one of AnyState"):
        load_config(app, environ={})


def test_host_json_overrides_from_environment_and_settings(tmp_path: Path) -> None:
    """``AzureFunctionsJobHost__`` variables (also from local.settings.json) override host.json keys."""
    host = {"version": "2.0", "extensions": {"http": {"routePrefix": "api"},
                                             "durableTask": {"hubName": "FileHub"}}}
    settings = {"Values": {"AzureFunctionsJobHost__Extensions__DurableTask__HubName": "SettingsHub"}}
    app = make_app(tmp_path / "app", host, settings)
    config = load_config(app, environ={"AzureFunctionsJobHost__extensions__http__routePrefix": ""})
    assert config.route_prefix == ""
    assert config.durable.hub_name == "SettingsHub"


def test_port_precedence(tmp_path: Path) -> None:
    """An explicit port beats Host.LocalHttpPort, which beats 7071."""
    app = make_app(tmp_path / "app", settings={"Host": {"LocalHttpPort": 7200}})
    assert load_config(app, environ={}).port == 7200
    assert load_config(app, port=7300, environ={}).port == 7300


def test_hub_name_setting_reference_and_validation(tmp_path: Path) -> None:
    """``%Setting%`` hub names are resolved, and invalid hub names are refused."""
    app = make_app(tmp_path / "app", {"version": "2.0", "extensions": {"durableTask": {"hubName": "%MyHub%"}}})
    assert load_config(app, environ={"MyHub": "ResolvedHub"}).durable.hub_name == "ResolvedHub"
    with pytest.raises(ConfigError, match="task hub name 'bad-hub' is invalid"):
        load_config(app, environ={"MyHub": "bad-hub"})


def test_storage_provider_settings_are_parsed(tmp_path: Path) -> None:
    """TimeSpan and integer settings of the storage provider are read."""
    provider = {"partitionCount": 2, "controlQueueVisibilityTimeout": "00:01:00"}
    app = make_app(tmp_path / "app", {"version": "2.0",
                                      "extensions": {"durableTask": {"storageProvider": provider}}})
    durable = load_config(app, environ={}).durable
    assert durable.partition_count == 2 and durable.control_queue_visibility_timeout == 60.0
    assert parse_timespan("1.02:03:04.5") == 93784.5 and parse_timespan(3) == 3.0


def test_script_file_and_storage_come_from_settings(tmp_path: Path) -> None:
    """PYTHON_SCRIPT_FILE_NAME and AzureWebJobsStorage are taken from the (exported) settings."""
    settings = {"Values": {"PYTHON_SCRIPT_FILE_NAME": "main.py", "AzureWebJobsStorage": "UseDevelopmentStorage=true"}}
    config = load_config(make_app(tmp_path / "app", settings=settings), environ={})
    assert config.script_file == "main.py" and config.uses_development_storage


@pytest.mark.parametrize(
    ("host", "settings", "message"),
    [
        ("{not json", None, "host.json is not valid JSON"),
        ({"version": "1.0"}, None, 'host.json: "version" must be "2.0"'),
        (None, "[1, 2]", "local.settings.json must hold a JSON object"),
        (None, {"IsEncrypted": True, "Values": {}}, "local.settings.json is encrypted"),
        ({"version": "2.0", "extensions": {"durableTask": {"storageProvider": {"partitionCount": 99}}}}, None,
         "partitionCount must be between 1 and 16"),
    ],
)
def test_unusable_files_raise_config_error(tmp_path: Path, host: Any, settings: Any, message: str) -> None:
    """Malformed or unsupported settings files are reported as ConfigError with the file's name."""
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        load_config(make_app(tmp_path / "app", host, settings), environ={})


def test_missing_host_json(tmp_path: Path) -> None:
    """An app directory without host.json is a ConfigError that says what to do."""
    with pytest.raises(ConfigError, match=r"no host\.json"):
        load_config(tmp_path, environ={})


def test_comments_in_json_files_are_ignored(tmp_path: Path) -> None:
    """host.json and local.settings.json may hold comments, as the host's JSON reader allows."""
    host = '{\n  // the prefix\n  "version": "2.0", /* block */ "extensions": {"http": {"routePrefix": "x//y"}}\n}'
    settings = '{"Values": {"A": "1"} // trailing comment\n}'
    environ: dict[str, str] = {}
    config = load_config(make_app(tmp_path / "app", host, settings), environ=environ)
    assert config.route_prefix == "x//y" and environ == {"A": "1"}


@pytest.mark.parametrize(("value", "on"), [(None, True), ("", True), ("1", True), ("yes", True),
                                           ("0", False), (" False ", False), ("no", False), ("OFF", False)])
def test_a_speed_up_switch_is_on_unless_turned_off(value: str | None, on: bool) -> None:
    """devhost's own speed-up switches are on by default and off for 0, false, no or off."""
    environ = {} if value is None else {"DEVHOST_SOMETHING": value}
    assert switched_on("DEVHOST_SOMETHING", environ) is on
