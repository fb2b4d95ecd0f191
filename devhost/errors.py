"""devhost's error hierarchy: every failure devhost reports on purpose is one of these."""

from __future__ import annotations


class DevhostError(Exception):
    """Base of every error devhost raises on purpose."""


class ConfigError(DevhostError):
    """host.json, local.settings.json or the command line is unusable."""


class AppLoadError(DevhostError):
    """The function app cannot be imported or indexed the way the Python worker would."""


class AzuriteError(DevhostError):
    """Azurite could not be found or started."""


class FunctionInvocationError(DevhostError):
    """A user function raised; ``message`` is the exception text the worker reports."""

    def __init__(self, function_name: str, message: str, details: str = "") -> None:
        super().__init__(message)
        self.function_name = function_name
        self.message = message
        self.details = details


class TaskHubError(DevhostError):
    """Storage refused or lost an operation on the task hub."""


class CheckpointConflict(TaskHubError):
    """Another writer moved the history sentinel: this episode's work must be dropped and retried."""


class FunctionNotFoundError(DevhostError, LookupError):
    """No loaded function answers to the requested (durable) name."""
