"""The indexed functions: names, triggers, routes, and the worker's rules for parameter annotations."""

import inspect
import json
import typing
from typing import Any

import azure.functions as func
import pytest

from tests.app.expected_functions import ACTIVITIES, ALL_FUNCTIONS, HTTP_FUNCTIONS, ORCHESTRATORS


def bindings_of(function: func.Function) -> list[dict[str, Any]]:
    """The function.json bindings the host receives for `function`."""
    return json.loads(function.get_function_json())["bindings"]


def test_every_expected_function_is_indexed(indexed_functions: dict[str, func.Function]) -> None:
    """All ten app functions are indexed, and no other function is a durable orchestrator or activity."""
    assert ALL_FUNCTIONS <= set(indexed_functions)
    durable = {
        name
        for name, function in indexed_functions.items()
        if function.get_trigger().get_binding_name() in {"orchestrationTrigger", "activityTrigger"}
    }
    assert durable == {*ORCHESTRATORS, *ACTIVITIES}


def test_other_http_functions_do_not_shadow_the_api(indexed_functions: dict[str, func.Function]) -> None:
    """HTTP functions registered by other blueprints (e.g. the UI) use routes of their own."""
    ours = {route.split("/")[0] for route, _ in HTTP_FUNCTIONS.values()}
    for name, function in indexed_functions.items():
        if name in HTTP_FUNCTIONS:
            continue
        for binding in bindings_of(function):
            if binding["type"] == "httpTrigger":
                assert str(binding.get("route") or name).split("/")[0] not in ours, name


@pytest.mark.parametrize("name", ORCHESTRATORS)
def test_orchestrators(indexed_functions: dict[str, func.Function], name: str) -> None:
    """Orchestrators bind their context parameter as `context`, like the samples."""
    assert bindings_of(indexed_functions[name]) == [
        {"direction": "IN", "type": "orchestrationTrigger", "name": "context"}
    ]


@pytest.mark.parametrize(("name", "parameter"), ACTIVITIES.items())
def test_activities(indexed_functions: dict[str, func.Function], name: str, parameter: str) -> None:
    """Activities are activity-triggered under their durable names."""
    assert bindings_of(indexed_functions[name]) == [{"direction": "IN", "type": "activityTrigger", "name": parameter}]


@pytest.mark.parametrize(("name", "expected"), HTTP_FUNCTIONS.items())
def test_http_functions(
    indexed_functions: dict[str, func.Function], name: str, expected: tuple[str, list[str]]
) -> None:
    """HTTP functions are async, method-restricted, function-key protected and get a durable client."""
    function = indexed_functions[name]
    route, methods = expected
    by_type = {binding["type"]: binding for binding in bindings_of(function)}
    assert by_type["httpTrigger"] == {
        "direction": "IN",
        "type": "httpTrigger",
        "name": "req",
        "methods": methods,
        "authLevel": "FUNCTION",
        "route": route,
    }
    assert by_type["durableClient"]["name"] == "client"
    assert by_type["http"] == {"direction": "OUT", "type": "http", "name": "$return"}
    assert inspect.iscoroutinefunction(function.get_user_function())


def test_annotations_satisfy_the_worker(indexed_functions: dict[str, func.Function]) -> None:
    """Binding parameters and returns are annotated with real types (the worker rejects e.g. `dict[str, Any]`)."""
    for name, function in indexed_functions.items():
        user_function = function.get_user_function()
        hints = typing.get_type_hints(user_function)
        parameters = set(inspect.signature(user_function).parameters)
        bound = {binding["name"] for binding in bindings_of(function) if binding["name"] != "$return"}
        assert parameters == bound, name
        for key, annotation in hints.items():
            assert isinstance(annotation, type), f"{name}: {key} is annotated {annotation!r}"
