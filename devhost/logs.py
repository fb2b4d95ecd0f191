"""Console logging the way ``func start`` shows it: ``[2026-11-28T01:02:03.456Z] message``.

host.json ``logging.logLevel`` categories map onto Python loggers of the same name: ``default`` is the
root logger, ``Function`` / ``Function.<name>`` are the loggers devhost writes invocation lines to,
and ``Host.*`` categories map to loggers of those names if anything uses them.
"""

from __future__ import annotations

import logging
import math
import os
import sys
import time
from collections.abc import Mapping
from typing import Any, TextIO

# .NET LogLevel names → Python levels. "None" silences a category entirely.
LEVELS = {
    "trace": 5,
    "debug": logging.DEBUG,
    "information": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "critical": logging.CRITICAL,
    "none": logging.CRITICAL + 10,
}
_COLORS = {logging.ERROR: "\x1b[31m", logging.CRITICAL: "\x1b[31m", logging.WARNING: "\x1b[33m"}
_RESET = "\x1b[0m"
_HANDLER_NAME = "devhost-console"
# Libraries that log every storage request at INFO; only --verbose lets them through.
_NOISY = ("azure", "azure.core.pipeline.policies.http_logging_policy", "urllib3", "asyncio")


def to_level(name: str | int | None, default: int = logging.INFO) -> int:
    """A .NET LogLevel name (or a number) as a Python logging level."""
    if name is None:
        return default
    if isinstance(name, int):
        return name
    return LEVELS.get(str(name).strip().lower(), default)


class HostFormatter(logging.Formatter):
    """``[UTC timestamp with milliseconds and Z] message``, red for errors when writing to a terminal."""

    def __init__(self, *, color: bool = False) -> None:
        super().__init__()
        self.color = color
        self._second: tuple[int, str] = (-1, "")  # the last whole second formatted, and its text

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        second = math.floor(record.created)
        cached = self._second
        if cached[0] == second:  # lines come in bursts: one strftime per second, not per line
            stamp = cached[1]
        else:
            stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
            self._second = (second, stamp)
        return f"{stamp}.{int(record.msecs):03d}Z"

    def format(self, record: logging.LogRecord) -> str:
        text = f"[{self.formatTime(record)}] {record.getMessage()}"
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        if self.color and record.levelno in _COLORS:
            text = f"{_COLORS[record.levelno]}{text}{_RESET}"
        return text


def log_levels(host_json: Mapping[str, Any]) -> dict[str, str]:
    """host.json ``logging.logLevel`` (keys matched case-insensitively), as category → level name."""
    logging_section = next((v for k, v in host_json.items() if k.lower() == "logging"), None) or {}
    levels = next((v for k, v in logging_section.items() if k.lower() == "loglevel"), None) or {}
    return {str(k): str(v) for k, v in levels.items()} if isinstance(levels, Mapping) else {}


def setup_logging(host_json: Mapping[str, Any], *, verbose: bool = False, stream: TextIO | None = None) -> None:
    """Install the console handler on the root logger and apply host.json levels (idempotent)."""
    out = stream or sys.stdout
    root = logging.getLogger()
    for handler in list(root.handlers):
        if handler.get_name() == _HANDLER_NAME:
            root.removeHandler(handler)
    handler = logging.StreamHandler(out)
    handler.set_name(_HANDLER_NAME)
    color = hasattr(out, "isatty") and out.isatty() and "NO_COLOR" not in os.environ
    handler.setFormatter(HostFormatter(color=color))
    root.addHandler(handler)

    levels = log_levels(host_json)
    default = to_level(next((v for k, v in levels.items() if k.lower() == "default"), None))
    root.setLevel(logging.DEBUG if verbose else default)
    for category, level in levels.items():
        if category.lower() != "default":
            logging.getLogger(category).setLevel(to_level(level))
    logging.getLogger("devhost").setLevel(logging.DEBUG if verbose else default)
    for name in _NOISY:
        logging.getLogger(name).setLevel(logging.DEBUG if verbose else logging.WARNING)
