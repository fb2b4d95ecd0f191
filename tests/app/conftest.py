"""Fixtures of the app tests: the indexed functions and a runner for the SDK's replay entry point."""

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import azure.functions as func
import pytest

from tests.history_builder import HistoryBuilder

OUT_OF_PROC_MARKER = "\n\n$OutOfProcData$:"


@dataclass(frozen=True)
class Reply:
    """The orchestrator state the SDK returned for one episode, plus the exception text if it failed."""

    state: dict[str, Any]
    error: str | None = None

    @property
    def is_done(self) -> bool:
        return bool(self.state["isDone"])

    @property
    def actions(self) -> list[dict[str, Any]]:
        # V3 replies carry exactly one inner list of actions.
        (inner,) = self.state["actions"]
        return inner

    @property
    def custom_status(self) -> Any:
        return self.state.get("customStatus")

    @property
    def output(self) -> Any:
        return self.state.get("output")

    def last_timer(self) -> dict[str, Any]:
        """The CreateTimer action of the last WhenAny (or the last bare timer)."""
        for action in reversed(self.actions):
            if action["actionType"] == 11:
                return next(a for a in action["compoundActions"] if a["actionType"] == 5)
            if action["actionType"] == 5:
                return action
        raise AssertionError(f"no timer in {self.actions}")


Replay = Callable[[HistoryBuilder], Reply]


@pytest.fixture(scope="session")
def replay(indexed_functions: dict[str, func.Function]) -> Iterator[Replay]:
    """Run one episode through the real `Orchestrator.create` handle, as the worker would."""

    def run(builder: HistoryBuilder) -> Reply:
        handle = indexed_functions[builder.name].get_user_function()
        try:
            result = handle(func.OrchestrationContext(builder.to_json()))
        except Exception as error:
            # The SDK reports an orchestrator exception by raising; the state rides in the message.
            text = str(error)
            message, marker, state = text.partition(OUT_OF_PROC_MARKER)
            if not marker:
                raise
            return Reply(json.loads(state), message)
        return Reply(json.loads(result))

    yield run


def pytest_configure(config: pytest.Config) -> None:
    """Register this directory's marker here, so the shared pytest configuration stays untouched."""
    config.addinivalue_line("markers", "deploy: builds the deployment zip with its Linux packages (needs PyPI, ~30 s)")
