"""One typed configuration for devhost, read the way Core Tools reads it.

Sources, later ones winning: host.json, then ``AzureFunctionsJobHost__`` environment overrides of
host.json; local.settings.json ``Values`` become environment variables unless already set.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devhost.durable.taskhub import keys
from devhost.errors import ConfigError
from devhost.storage_settings import (
    DEFAULT_DURABLE_CONNECTION,
    DEVELOPMENT_STORAGE,
    StorageConnection,
    durable_connection_name,
    resolve_connection,
)

HOST_OVERRIDE_PREFIX = "AzureFunctionsJobHost__"
DEFAULT_HUB_NAME = "TestHubName"  # what the extension uses locally when hubName is not set


@dataclass(frozen=True)
class DurableSettings:
    """The durableTask section of host.json, with the Azure Storage provider's defaults."""

    hub_name: str = DEFAULT_HUB_NAME
    partition_count: int = 4
    # The provider's default is 5 minutes. devhost renews visibility while it works on a message, so a
    # shorter timeout only matters after a crash: it is how long a restarted devhost waits for the
    # messages the dead one had taken. 30 s keeps restarts quick without risking early redelivery.
    control_queue_visibility_timeout: float = 30.0
    work_item_visibility_timeout: float = 30.0
    control_queue_batch_size: int = 32
    # devhost wakes itself in-process for work it produces; this bounds how long a message written by
    # another process (or a timer coming due) can wait.
    max_queue_polling_interval: float = 0.5
    max_concurrent_activities: int = 20
    max_concurrent_orchestrations: int = 20
    store_inputs_in_history: bool = False
    extended_sessions: bool = True
    # overridableExistingInstanceStates: NonRunningStates (the default) refuses a start that names an
    # active instance; AnyState lets it replace that instance.
    override_active_instances: bool = False
    # devhost's own (DEVHOST_RUN_AHEAD_MS): how long an episode that scheduled activities may wait for
    # them to finish in memory, so that the episodes they lead to share one checkpoint; 0 turns it off.
    run_ahead_window: float = 0.025
    # devhost's own (DEVHOST_RUN_AHEAD_CHAIN=0 turns it off): an episode, the lone sync activity it runs
    # ahead and the episode its result leads to run one after the other on one worker thread.
    run_ahead_chained: bool = True


@dataclass(frozen=True)
class HttpSettings:
    """How the front end listens and who may call it: Core Tools' ``Host`` section and start flags."""

    address: str | None = None  # Host.LocalHttpAddress; None = loopback
    cors_origins: tuple[str, ...] | None = None  # Host.CORS; None = no CORS middleware at all
    cors_credentials: bool = False  # Host.CORSCredentials
    enable_auth: bool = False  # --enableAuth: keys are checked as in Azure
    functions: tuple[str, ...] | None = None  # host.json "functions" (--functions): the only ones loaded


@dataclass(frozen=True)
class HostConfig:
    """Everything devhost needs to run one app."""

    app_dir: Path
    port: int = 7071
    route_prefix: str = "api"
    storage_connection: str = DEVELOPMENT_STORAGE  # the task hub's connection string; "" if none or identity-based
    storage: StorageConnection | None = None  # the task hub's connection as resolved; None if no setting holds it
    webjobs_storage: StorageConnection | None = None  # AzureWebJobsStorage (where --enableAuth keeps keys)
    durable: DurableSettings = field(default_factory=DurableSettings)
    log_level: str = "Information"
    script_file: str = "function_app.py"
    host_json: Mapping[str, Any] = field(default_factory=dict)
    http: HttpSettings = field(default_factory=HttpSettings)

    @property
    def uses_development_storage(self) -> bool:
        if self.webjobs_storage is not None and self.webjobs_storage.uses_development_storage:
            return True
        return self.storage_connection.replace(" ", "").lower() == DEVELOPMENT_STORAGE.lower()


def parse_timespan(value: Any) -> float:
    """Seconds from a .NET TimeSpan string (``[d.]hh:mm:ss[.fffffff]``) or a number of seconds."""
    if isinstance(value, int | float):
        return float(value)
    text = str(value).strip()
    m = re.fullmatch(r"(-)?(?:(\d+)\.)?(\d{1,2}):(\d{2}):(\d{2})(?:\.(\d{1,7}))?", text)
    if not m:
        try:
            return float(text)
        except ValueError:
            raise ConfigError(f"not a TimeSpan: {value!r} (expected hh:mm:ss)") from None
    sign, days, hours, minutes, seconds, fraction = m.groups()
    total = int(days or 0) * 86400 + int(hours) * 3600 + int(minutes) * 60 + int(seconds)
    total += float(f"0.{fraction}") if fraction else 0.0
    return -total if sign else float(total)


def strip_json_comments(text: str) -> str:
    """Drop ``//`` and ``/* */`` comments outside strings: the host's JSON reader (Newtonsoft) skips them."""
    out: list[str] = []
    i, n = 0, len(text)
    in_string = False
    while i < n:
        ch = text[i]
        if in_string:
            out.append(ch)
            if ch == "\\" and i + 1 < n:
                out.append(text[i + 1])
                i += 1
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
            out.append(ch)
        elif text.startswith("//", i):
            end = text.find("\n", i)
            i = n if end < 0 else end
            continue
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            i = n if end < 0 else end + 2
            out.append(" ")
            continue
        else:
            out.append(ch)
        i += 1
    return "".join(out)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(strip_json_comments(path.read_text(encoding="utf-8-sig")))
    except FileNotFoundError:
        return {}
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path.name} is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path.name} must hold a JSON object")
    return data


def apply_local_settings(app_dir: Path, environ: MutableMapping[str, str]) -> dict[str, Any]:
    """Export local.settings.json ``Values`` into ``environ``; a variable already set to a non-empty value wins."""
    settings = _read_json(app_dir / "local.settings.json")
    if settings.get("IsEncrypted"):
        raise ConfigError("local.settings.json is encrypted; devhost reads only plain settings")
    values = settings.get("Values") or {}
    if not isinstance(values, dict):
        raise ConfigError("local.settings.json: 'Values' must be an object")
    for key, value in values.items():
        # Core Tools skips a setting only when the variable holds a value: set but empty does not count.
        if value is None or environ.get(key):
            continue
        environ[key] = str(value)
    # Core Tools hands the ConnectionStrings section to the host as ``ConnectionStrings:<name>`` settings.
    connection_strings = settings.get("ConnectionStrings") or {}
    if not isinstance(connection_strings, dict):
        raise ConfigError("local.settings.json: 'ConnectionStrings' must be an object")
    for name, value in connection_strings.items():
        if value is not None and f"ConnectionStrings:{name}" not in environ:
            environ[f"ConnectionStrings:{name}"] = str(value)
    return settings


def _get_ci(obj: Mapping[str, Any], key: str) -> Any:
    """host.json keys are case-insensitive for the host."""
    for k, v in obj.items():
        if k.lower() == key.lower():
            return v
    return None


def _path(obj: Mapping[str, Any], *keys: str) -> Any:
    cur: Any = obj
    for key in keys:
        if not isinstance(cur, Mapping):
            return None
        cur = _get_ci(cur, key)
    return cur


def apply_host_overrides(host_json: dict[str, Any], environ: Mapping[str, str]) -> dict[str, Any]:
    """Apply ``AzureFunctionsJobHost__a__b`` variables onto host.json, as the host does."""
    merged = json.loads(json.dumps(host_json))
    for name, value in environ.items():
        if not name.lower().startswith(HOST_OVERRIDE_PREFIX.lower()):
            continue
        keys = [k for k in name[len(HOST_OVERRIDE_PREFIX):].split("__") if k]
        if not keys:
            continue
        cur = merged
        for key in keys[:-1]:
            existing = next((k for k in cur if k.lower() == key.lower()), None)
            if existing is None or not isinstance(cur[existing], dict):
                cur[existing or key] = {}
            cur = cur[existing or key]
        last = next((k for k in cur if k.lower() == keys[-1].lower()), keys[-1])
        cur[last] = value
    return merged


def _as_int(value: Any, default: int, what: str) -> int:
    if value is None:
        return default
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ConfigError(f"host.json: {what} must be an integer, got {value!r}") from None


def switched_on(name: str, environ: Mapping[str, str] | None = None) -> bool:
    """A switch for one of devhost's own speed-ups: on unless the variable says 0, false, no or off."""
    value = (environ if environ is not None else os.environ).get(name, "").strip().lower()
    return value not in ("0", "false", "no", "off")


def _as_bool(value: Any, default: bool) -> bool:
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() == "true"


OVERRIDABLE_STATES = ("AnyState", "NonRunningStates")  # the extension's enum, in its order


def _overridable_states(value: Any) -> bool:
    """True for ``AnyState``; names are case-insensitive and numbers allowed, as Newtonsoft reads enums."""
    if value is None:
        return False
    text = str(value).strip()
    for number, name in enumerate(OVERRIDABLE_STATES):
        if text.lower() == name.lower() or text == str(number):
            return name == "AnyState"
    raise ConfigError(f"host.json: overridableExistingInstanceStates must be one of {', '.join(OVERRIDABLE_STATES)},"
                      f" got {value!r}")


def durable_settings(host_json: Mapping[str, Any], environ: Mapping[str, str]) -> DurableSettings:
    section = _path(host_json, "extensions", "durableTask") or {}
    provider = _get_ci(section, "storageProvider") or {}
    hub = _get_ci(section, "hubName")
    if hub is None:
        hub = DEFAULT_HUB_NAME
    hub = str(hub)
    # Core Tools resolves %AppSetting% references in hubName.
    m = re.fullmatch(r"%([^%]+)%", hub)
    if m:
        hub = environ.get(m.group(1), "")
    if not keys.is_valid_hub_name(hub):
        raise ConfigError(
            f"task hub name {hub!r} is invalid: it must start with a letter, hold only letters and digits, "
            "and be 3 to 50 characters long"
        )
    defaults = DurableSettings()

    def seconds(key: str, default: float) -> float:
        value = _get_ci(provider, key)
        return default if value is None else parse_timespan(value)

    partitions = _as_int(_get_ci(provider, "partitionCount"), defaults.partition_count, "partitionCount")
    if not keys.is_valid_partition_count(partitions):
        raise ConfigError(
            f"host.json: partitionCount must be between 1 and {keys.MAX_PARTITION_COUNT}, got {partitions}"
        )
    return DurableSettings(
        hub_name=hub,
        partition_count=partitions,
        control_queue_visibility_timeout=seconds(
            "controlQueueVisibilityTimeout", defaults.control_queue_visibility_timeout
        ),
        work_item_visibility_timeout=seconds(
            "workItemQueueVisibilityTimeout", defaults.work_item_visibility_timeout
        ),
        control_queue_batch_size=min(
            32, _as_int(_get_ci(provider, "controlQueueBatchSize"), 32, "controlQueueBatchSize")
        ),
        max_queue_polling_interval=min(
            seconds("maxQueuePollingInterval", defaults.max_queue_polling_interval),
            defaults.max_queue_polling_interval,
        ),
        max_concurrent_activities=_as_int(
            _get_ci(section, "maxConcurrentActivityFunctions"),
            defaults.max_concurrent_activities,
            "maxConcurrentActivityFunctions",
        ),
        max_concurrent_orchestrations=_as_int(
            _get_ci(section, "maxConcurrentOrchestratorFunctions"),
            defaults.max_concurrent_orchestrations,
            "maxConcurrentOrchestratorFunctions",
        ),
        store_inputs_in_history=_as_bool(_get_ci(section, "storeInputsInOrchestrationHistory"), False),
        extended_sessions=_as_bool(_get_ci(section, "extendedSessionsEnabled"), True),
        override_active_instances=_overridable_states(_get_ci(section, "overridableExistingInstanceStates")),
        run_ahead_window=_run_ahead_window(environ.get(RUN_AHEAD_ENV), defaults.run_ahead_window),
        run_ahead_chained=environ.get(RUN_AHEAD_CHAIN_ENV, "").strip() != "0",
    )


RUN_AHEAD_ENV = "DEVHOST_RUN_AHEAD_MS"
RUN_AHEAD_CHAIN_ENV = "DEVHOST_RUN_AHEAD_CHAIN"


def _run_ahead_window(text: str | None, default: float) -> float:
    if text is None or not text.strip():
        return default
    try:
        value = float(text)
    except ValueError:
        raise ConfigError(f"{RUN_AHEAD_ENV} must be a number of milliseconds, got {text!r}") from None
    if not 0 <= value <= 10_000:
        raise ConfigError(f"{RUN_AHEAD_ENV} must be between 0 and 10000 milliseconds, got {text!r}")
    return value / 1000


def load_config(
    app_dir: Path | str = ".",
    *,
    port: int | None = None,
    environ: MutableMapping[str, str] | None = None,
) -> HostConfig:
    """Read host.json and local.settings.json from ``app_dir``, exporting settings into ``environ``."""
    env = os.environ if environ is None else environ
    root = Path(app_dir).resolve()
    if not (root / "host.json").is_file():
        raise ConfigError(f"no host.json in {root}: run devhost from the app's root or pass --app-dir")
    local = apply_local_settings(root, env)
    host_json = apply_host_overrides(_read_json(root / "host.json"), env)
    version = _get_ci(host_json, "version")
    if version != "2.0":
        raise ConfigError(f'host.json: "version" must be "2.0", got {version!r}')
    prefix = _path(host_json, "extensions", "http", "routePrefix")
    local_port = _get_ci(local.get("Host") or {}, "LocalHttpPort")
    chosen_port = port if port is not None else _as_int(local_port, 7071, "LocalHttpPort")
    log_level = _path(host_json, "logging", "logLevel", "default") or "Information"
    storage = resolve_connection(durable_connection_name(host_json), env)
    http = http_settings(local.get("Host") or {}, host_json)
    return HostConfig(
        app_dir=root,
        port=chosen_port,
        route_prefix="api" if prefix is None else str(prefix).strip("/"),
        # No fallback to Azurite: a missing setting is reported when the durable extension needs it.
        storage_connection=(storage.connection_string or "") if storage else "",
        storage=storage,
        webjobs_storage=resolve_connection(DEFAULT_DURABLE_CONNECTION, env),
        durable=durable_settings(host_json, env),
        log_level=str(log_level),
        script_file=env.get("PYTHON_SCRIPT_FILE_NAME", "function_app.py"),
        host_json=host_json,
        http=http,
    )


def http_settings(host_section: Mapping[str, Any], host_json: Mapping[str, Any]) -> HttpSettings:
    """``Host.LocalHttpAddress``, ``Host.CORS`` (comma list) and ``Host.CORSCredentials`` as Core Tools reads
    them, and host.json's ``functions`` allow list (an ``AzureFunctionsJobHost__functions__0`` override
    arrives as an object keyed by index)."""
    if not isinstance(host_section, Mapping):
        raise ConfigError("local.settings.json: 'Host' must be an object")
    address = _get_ci(host_section, "LocalHttpAddress")
    cors = _get_ci(host_section, "CORS")
    origins = tuple(o for o in str(cors).split(",") if o) if cors else None
    listed = _get_ci(host_json, "functions")
    if isinstance(listed, Mapping):
        listed = [v for _, v in sorted(listed.items(), key=lambda kv: int(kv[0]) if str(kv[0]).isdigit() else 0)]
    if listed is not None and not isinstance(listed, list):
        raise ConfigError("host.json: 'functions' must be an array of function names")
    return HttpSettings(
        address=str(address).strip() or None if address is not None else None,
        cors_origins=origins,
        cors_credentials=_as_bool(_get_ci(host_section, "CORSCredentials"), False),
        functions=tuple(str(f) for f in listed) if listed is not None else None,
    )
