"""Where devhost listens and how its start flags and local.settings.json's Host section combine."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from devhost.cli import apply_start_flags, build_parser
from devhost.config import load_config
from devhost.errors import ConfigError
from devhost.listening import exposure_warning, parse_address, rpc_origin


def test_addresses_must_be_ip_addresses() -> None:
    """Core Tools refuses anything but an IP address for --address."""
    assert parse_address("127.0.0.2") == "127.0.0.2"
    assert parse_address("[::1]") == "::1"
    with pytest.raises(ConfigError, match=r"Invalid --address value 'example\.com'"):
        parse_address("example.com")


def test_rpc_origin_stays_on_loopback() -> None:
    """The durable client calls a loopback address that devhost listens on, whatever the bind address."""
    assert rpc_origin(["127.0.0.2"], 7071) == "http://127.0.0.2:7071"
    assert rpc_origin(["0.0.0.0"], 7071) == "http://127.0.0.1:7071"
    assert rpc_origin(["::"], 7071) == "http://[::1]:7071"
    assert rpc_origin(["192.0.2.5", "::1"], 7071) == "http://[::1]:7071"


def test_one_warning_when_exposed_without_keys() -> None:
    """Binding beyond loopback without --enableAuth warns once; loopback or keys do not."""
    warning = exposure_warning(["0.0.0.0"], keys_checked=False)
    assert warning is not None and "0.0.0.0" in warning and "--enableAuth" in warning and "purge" in warning
    assert exposure_warning(["0.0.0.0"], keys_checked=True) is None
    assert exposure_warning(["127.0.0.1", "::1"], keys_checked=False) is None


def write_app(root: Path, host_section: dict[str, object]) -> Path:
    (root / "host.json").write_text(json.dumps({"version": "2.0"}))
    (root / "local.settings.json").write_text(json.dumps({"Values": {}, "Host": host_section}))
    return root


def test_host_section_and_flags(tmp_path: Path) -> None:
    """Host.LocalHttpAddress, Host.CORS and Host.CORSCredentials are read; flags win over them."""
    app = write_app(tmp_path, {"LocalHttpAddress": "127.0.0.3", "CORS": "http://a.test,http://b.test",
                               "CORSCredentials": True})
    config = load_config(app, environ={})
    assert config.http.address == "127.0.0.3"
    assert config.http.cors_origins == ("http://a.test", "http://b.test")
    assert config.http.cors_credentials is True and config.http.enable_auth is False

    args = build_parser().parse_args(["start", "--cors", "http://c.test", "--cors-credentials", "false",
                                      "--enableAuth", "--functions", "a", "b"])
    flagged = apply_start_flags(args, config)
    assert flagged.http.cors_origins == ("http://c.test",)
    assert flagged.http.cors_credentials is False and flagged.http.enable_auth is True
    assert args.functions == ["a", "b"]


def test_functions_allow_list_from_overrides(tmp_path: Path) -> None:
    """AzureFunctionsJobHost__functions__N (what --functions sets) becomes the allow list, in order."""
    app = write_app(tmp_path, {})
    env = {"AzureFunctionsJobHost__functions__1": "second", "AzureFunctionsJobHost__functions__0": "first"}
    assert load_config(app, environ=env).http.functions == ("first", "second")
    assert load_config(app, environ={}).http.functions is None
