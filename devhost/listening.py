"""Where devhost listens (``--address`` / ``Host.LocalHttpAddress``) and where its RPC calls go.

Core Tools binds the one IP address it is given (default 127.0.0.1) and refuses anything that is not an
IP address. The durable client's ``rpcBaseUrl`` must reach this process over loopback whatever the bind
address, as the extension's own RPC listener always sits on 127.0.0.1.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from devhost.errors import ConfigError


def parse_address(text: str) -> str:
    """A bind address as given, if it is an IP address (as Core Tools requires)."""
    try:
        ipaddress.ip_address(text.strip().strip("[]"))
    except ValueError:
        raise ConfigError(f"Invalid --address value '{text}'. Expected an IP address, for example 127.0.0.1 "
                          "or 0.0.0.0.") from None
    return text.strip().strip("[]")


def is_loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return address.lower() == "localhost"


def exposed(addresses: Sequence[str]) -> list[str]:
    """The addresses that others than this machine can reach."""
    return [a for a in addresses if not is_loopback(a)]


def exposure_warning(addresses: Sequence[str], *, keys_checked: bool) -> str | None:
    """The one warning for listening beyond this machine without keys, or None."""
    open_to = exposed(addresses)
    if not open_to or keys_checked:
        return None
    return (f"Listening on {', '.join(open_to)} without --enableAuth: anyone who can reach that address can "
            "start, read, raise events to, terminate and purge orchestrations and call every function. Add "
            "--enableAuth to require keys as Azure does, or listen on 127.0.0.1.")


def rpc_origin(addresses: Sequence[str], port: int) -> str:
    """The loopback origin the durable client calls: a loopback bind address, else loopback via a wildcard."""
    for address in addresses:
        if is_loopback(address):
            return f"http://[{address}]:{port}" if ":" in address else f"http://{address}:{port}"
    if any(a in ("0.0.0.0", "") for a in addresses):
        return f"http://127.0.0.1:{port}"
    if "::" in addresses:
        return f"http://[::1]:{port}"
    # Only non-loopback addresses: the calls go to the first, where the RPC path still answers only
    # callers on this machine when keys are checked.
    address = addresses[0]
    return f"http://[{address}]:{port}" if ":" in address else f"http://{address}:{port}"
