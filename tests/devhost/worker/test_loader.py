"""Importing and indexing apps with the Python worker's load rules."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from devhost.config import HostConfig
from devhost.errors import AppLoadError
from devhost.worker.invoker import Worker

APPS = Path(__file__).resolve().parents[1] / "apps"


def write_app(folder: Path, source: str, script: str = "function_app.py") -> HostConfig:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "host.json").write_text('{"version": "2.0"}')
    (folder / script).write_text(textwrap.dedent(source))
    return HostConfig(app_dir=folder, script_file=script)


def load(config: HostConfig) -> Worker:
    worker = Worker(config)
    worker.load()
    return worker


def test_http_app_is_indexed_with_routes_and_methods() -> None:
    """Every function of the HTTP toy app is loaded with its route, methods and calling convention."""
    worker = load(HostConfig(app_dir=APPS / "http_app"))
    assert list(worker.functions) == ["hello", "echo", "item", "special", "cookies", "boom", "plain"]
    hello = worker.functions["hello"]
    assert hello.http is not None and hello.http.route == "hello/{name?}" and hello.http.methods == ("GET",)
    assert hello.requires_context and not hello.is_async
    assert worker.functions["echo"].is_async
    assert worker.functions["special"].http.methods is None  # type: ignore[union-attr]
    assert hello.return_type is not None and hello.return_type.binding_type == "http"
    assert len(worker.http_functions) == 7 and not worker.orchestrators


def test_durable_app_gets_durable_names_and_generic_client() -> None:
    """Durable triggers register under their attribute name, and durableClient falls back to generic."""
    worker = load(HostConfig(app_dir=APPS / "durable_app"))
    assert set(worker.orchestrators) == {"greeter", "Failer"}
    assert set(worker.activities) == {"SayHello", "explode"}
    assert worker.activities["SayHello"].name == "say_hello"
    starter = worker.functions["http_start"]
    assert starter.input_types["client"].binding_type == "generic"
    assert starter.is_async
    orchestrator = worker.orchestrators["greeter"]
    assert orchestrator.return_type is not None and orchestrator.return_type.binding_type == "orchestrationTrigger"


def test_second_load_reimports_the_app(tmp_path: Path) -> None:
    """Loading again imports the script afresh instead of reusing the single-shot app object."""
    config = write_app(tmp_path / "app", """
        import azure.functions as func
        app = func.FunctionApp()

        @app.route(route="one")
        def one(req: func.HttpRequest) -> func.HttpResponse:
            return func.HttpResponse("1")
    """)
    worker = load(config)
    worker.load()
    assert list(worker.functions) == ["one"]


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("import azure.functions as func\na = func.FunctionApp()\nb = func.FunctionApp()\n",
         "More than one FunctionApp"),
        ("x = 1\n", "Could not find top level function app instances in function_app.py"),
        ("import azure.functions as func\napp = func.FunctionApp()\nraise RuntimeError('broken')\n",
         "importing function_app.py failed: RuntimeError: broken (at function_app.py:3)"),
    ],
)
def test_unusable_scripts_raise_app_load_error(tmp_path: Path, source: str, message: str) -> None:
    """A script with zero or two function apps, or one that fails to import, is an AppLoadError."""
    with pytest.raises(AppLoadError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load(write_app(tmp_path / "app", source))


def test_missing_or_invalid_script_file(tmp_path: Path) -> None:
    """A missing script or an invalid PYTHON_SCRIPT_FILE_NAME is reported by name."""
    config = write_app(tmp_path / "app", "x = 1\n")
    with pytest.raises(AppLoadError, match=r"main\.py not found"):
        load(HostConfig(app_dir=config.app_dir, script_file="main.py"))
    with pytest.raises(AppLoadError, match="invalid script file name"):
        load(HostConfig(app_dir=config.app_dir, script_file="../evil.py"))


def test_custom_script_file_name(tmp_path: Path) -> None:
    """PYTHON_SCRIPT_FILE_NAME selects another script, as in the worker."""
    config = write_app(tmp_path / "app", """
        import azure.functions as func
        app = func.FunctionApp()

        @app.route(route="ping")
        def ping(req: func.HttpRequest) -> str:
            return "pong"
    """, script="main_app.py")
    assert list(load(config).functions) == ["ping"]


def test_orchestrator_context_name_must_be_context(tmp_path: Path) -> None:
    """An orchestrator whose context parameter is not named ``context`` fails like in the worker."""
    config = write_app(tmp_path / "app", """
        import azure.durable_functions as df
        app = df.DFApp()

        @app.orchestration_trigger(context_name="ctx")
        def orch(ctx):
            return None
    """)
    with pytest.raises(AppLoadError, match='cannot load the orch function: the "context" parameter is expected'):
        load(config)


def test_parameters_must_match_bindings(tmp_path: Path) -> None:
    """A Python parameter without a binding is rejected with the worker's message."""
    config = write_app(tmp_path / "app", """
        import azure.functions as func
        app = func.FunctionApp()

        @app.route(route="x")
        def x(req: func.HttpRequest, extra: str) -> func.HttpResponse:
            return func.HttpResponse("")
    """)
    with pytest.raises(AppLoadError, match=r"declared in Python but not in function\.json"):
        load(config)


def test_duplicate_function_names_fail_indexing(tmp_path: Path) -> None:
    """Two functions with one name make get_functions() fail, reported as an AppLoadError."""
    config = write_app(tmp_path / "app", """
        import azure.functions as func
        app = func.FunctionApp()

        @app.function_name("same")
        @app.route(route="a")
        def a(req: func.HttpRequest) -> str:
            return "a"

        @app.function_name("same")
        @app.route(route="b")
        def b(req: func.HttpRequest) -> str:
            return "b"
    """)
    with pytest.raises(AppLoadError, match="does not have a unique function name"):
        load(config)


def test_wrong_annotation_is_rejected(tmp_path: Path) -> None:
    """An httpTrigger parameter annotated with a non-request type fails its converter's check."""
    config = write_app(tmp_path / "app", """
        import azure.functions as func
        app = func.FunctionApp()

        @app.route(route="x")
        def x(req: int) -> func.HttpResponse:
            return func.HttpResponse("")
    """)
    with pytest.raises(AppLoadError, match='does not match its Python annotation "int"'):
        load(config)
