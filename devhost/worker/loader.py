"""Import a v2 app and index it the way the Python worker does (``loader.index_function_app`` and
``functions.Registry.add_indexed_function``), turning each ``azure.functions`` Function into a
``LoadedFunction`` that says how to call it.
"""

from __future__ import annotations

import importlib
import inspect
import json
import logging
import operator
import re
import sys
import traceback
import typing
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import azure.functions as func
from azure.functions._thirdparty import typing_inspect
from azure.functions.decorators.core import BindingDirection

from devhost.bindings.support import STORAGE_BINDINGS, STORAGE_OUTPUTS
from devhost.errors import AppLoadError
from devhost.worker import bindings

log = logging.getLogger("devhost.worker")

_SCRIPT_NAME_RE = re.compile(r"^[a-zA-Z0-9_][a-zA-Z0-9_\-]*\.py$")  # the worker's validate_script_file_name
DURABLE_TRIGGERS = {
    "orchestrationTrigger": "orchestration",
    "activityTrigger": "activity",
    "entityTrigger": "entity_name",
}


@dataclass(frozen=True)
class ParamInfo:
    """How one parameter (or the return value) is marshalled: converter key, annotation, binding."""

    binding_type: str  # the converter key: the binding type, or "generic" for str/bytes fallbacks
    pytype: Any
    binding: Any  # the azure.functions Binding object (None for the return of an implicit output)


@dataclass(frozen=True)
class HttpRoute:
    """What the httpTrigger binding says about routing (from its raw binding JSON)."""

    route: str
    methods: tuple[str, ...] | None  # None = every method
    auth_level: str


@dataclass(frozen=True)
class LoadedFunction:
    """One indexed function, with everything the invoker needs."""

    name: str
    function_id: str
    directory: str
    func: Callable[..., Any]
    is_async: bool
    requires_context: bool
    trigger_type: str
    trigger: Any
    input_types: Mapping[str, ParamInfo]
    output_types: Mapping[str, ParamInfo]
    return_type: ParamInfo | None
    raw_bindings: tuple[dict[str, Any], ...]
    durable_name: str | None = None
    http: HttpRoute | None = None

    @property
    def is_http(self) -> bool:
        return self.http is not None

    # Worked out from the raw bindings once, not on every invocation.
    @cached_property
    def raw_by_name(self) -> dict[str, dict[str, Any]]:
        return {str(raw.get("name")): raw for raw in self.raw_bindings}

    @cached_property
    def has_storage_bindings(self) -> bool:
        return any(raw.get("type") in STORAGE_BINDINGS for raw in self.raw_bindings)

    @cached_property
    def has_storage_outputs(self) -> bool:
        return any(raw.get("type") in STORAGE_OUTPUTS for raw in self.raw_bindings)


class FunctionLoadError(AppLoadError):
    """One function breaks the worker's load rules; the text is the worker's."""

    def __init__(self, function_name: str, message: str) -> None:
        super().__init__(f"cannot load the {function_name} function: {message}")


def import_app(app_dir: Path, script_file: str) -> func.FunctionRegister:
    """Import the script fresh from ``app_dir`` and return its one ``FunctionRegister``."""
    if not _SCRIPT_NAME_RE.match(script_file):
        raise AppLoadError(f"invalid script file name {script_file!r} (PYTHON_SCRIPT_FILE_NAME)")
    path = app_dir / script_file
    if not path.is_file():
        raise AppLoadError(f"{script_file} not found in {app_dir}")
    module_name = path.stem
    _forget_app_modules(app_dir, module_name)
    before = set(sys.modules)
    # The worker runs with the app directory first on sys.path (and as cwd, which the CLI sets).
    app_path = str(app_dir)
    if app_path in sys.path:
        sys.path.remove(app_path)
    sys.path.insert(0, app_path)
    importlib.invalidate_caches()
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:
        raise AppLoadError(f"importing {script_file} failed: {_describe(exc, app_dir)}") from exc
    finally:
        _app_modules[app_dir] = {n for n in set(sys.modules) - before if _module_under(n, app_dir)}

    app: func.FunctionRegister | None = None
    for attr in module.__dir__():
        candidate = getattr(module, attr, None)
        if isinstance(candidate, func.FunctionRegister):
            if app is not None:
                raise AppLoadError(
                    f"More than one {app.__class__.__name__} or other top level function app instances "
                    f"are defined in {script_file}."
                )
            app = candidate
    if app is None:
        raise AppLoadError(f"Could not find top level function app instances in {script_file}.")
    return app


# Modules each app's import brought in, so the next load of that app re-imports them instead of
# reusing stale copies (get_functions() is single-shot per app object, so a reload needs fresh ones).
_app_modules: dict[Path, set[str]] = {}


def _forget_app_modules(app_dir: Path, module_name: str) -> None:
    for name in {module_name, *_app_modules.pop(app_dir, set())}:
        sys.modules.pop(name, None)


def _module_under(name: str, root: Path) -> bool:
    file = getattr(sys.modules.get(name), "__file__", None)
    return bool(file) and _is_under(Path(file), root)


_DEVHOST_DIR = Path(__file__).resolve().parent.parent


def _is_under(path: Path, root: Path) -> bool:
    """Whether ``path`` is app code under ``root`` (not a venv package, not devhost itself)."""
    resolved = path.resolve()
    try:
        resolved.relative_to(root.resolve())
    except ValueError:
        return False
    if resolved.is_relative_to(_DEVHOST_DIR):
        return False
    return ".venv" not in path.parts and "site-packages" not in path.parts


def _describe(exc: BaseException, app_dir: Path) -> str:
    """``Type: message`` plus the innermost frame inside the app, which is what a user needs first."""
    text = f"{type(exc).__name__}: {exc}"
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if _is_under(Path(f.filename), app_dir)]
    if frames:
        last = frames[-1]
        where = Path(last.filename).resolve().relative_to(app_dir.resolve())
        text += f" (at {where.as_posix()}:{last.lineno})"
    return text


def index_app(app: func.FunctionRegister) -> list[Any]:
    """``app.get_functions()`` exactly once (a second call fails on duplicate names)."""
    try:
        return list(app.get_functions())
    except Exception as exc:
        raise AppLoadError(f"indexing the function app failed: {type(exc).__name__}: {exc}") from exc


def load_function(function: Any) -> LoadedFunction:
    """Apply the worker's load rules to one indexed function."""
    user_func = function.get_user_function()
    name = function.get_function_name()
    try:
        signature = inspect.signature(user_func)
        annotations = typing.get_type_hints(user_func)
    except Exception as exc:
        raise FunctionLoadError(name, f"cannot read its signature: {type(exc).__name__}: {exc}") from exc
    params = dict(signature.parameters)

    bound: dict[str, Any] = {}
    explicit_return = implicit_return = False
    return_binding_type: str | None = None
    for binding in function.get_bindings():
        if binding.direction == BindingDirection.INOUT.value:
            raise FunctionLoadError(name, '"inout" bindings are not supported')
        if binding.name == "$return":
            if binding.direction != BindingDirection.OUT.value:
                raise FunctionLoadError(name, '"$return" binding must have direction set to "out"')
            if not explicit_return:
                return_binding_type = binding.type
            explicit_return = True
            continue
        bound[binding.name] = binding
        if bindings.has_implicit_output(binding.type):
            implicit_return = True
            if not explicit_return:
                return_binding_type = binding.type

    requires_context = _context_required(name, params, bound, annotations)
    input_types, output_types = _param_types(name, params, bound, annotations)
    return_type = _return_type(name, annotations, explicit_return, implicit_return, return_binding_type)

    trigger = function.get_trigger()
    raw = tuple(json.loads(b) for b in function.get_raw_bindings())
    durable_attr = DURABLE_TRIGGERS.get(trigger.type)
    durable_name = (getattr(trigger, durable_attr, None) or name) if durable_attr else None
    return LoadedFunction(
        name=name,
        function_id=str(uuid.uuid5(uuid.NAMESPACE_OID, name)),
        directory=_directory_of(user_func),
        func=user_func,
        is_async=inspect.iscoroutinefunction(user_func),
        requires_context=requires_context,
        trigger_type=trigger.type,
        trigger=trigger,
        input_types=input_types,
        output_types=output_types,
        return_type=return_type,
        raw_bindings=raw,
        durable_name=durable_name,
        http=_http_route(name, raw) if trigger.type == bindings.HTTP_TRIGGER else None,
    )


def _directory_of(user_func: Callable[..., Any]) -> str:
    try:
        return str(Path(inspect.getfile(inspect.unwrap(user_func))).parent)
    except TypeError:
        return ""


def _context_required(name: str, params: dict[str, inspect.Parameter], bound: Mapping[str, Any],
                      annotations: Mapping[str, Any]) -> bool:
    if "context" not in params or "context" in bound:
        return False
    params.pop("context")
    anno = annotations.get("context")
    if "context" in annotations and (not isinstance(anno, type) or anno.__name__ != "Context"):
        raise FunctionLoadError(
            name, f'the "context" parameter is expected to be of type azure.functions.Context, got {anno!r}'
        )
    return True


def _is_out_annotation(anno: Any) -> bool:
    origin = typing_inspect.get_origin(anno) if typing_inspect.is_generic_type(anno) else None
    target = origin if origin is not None else anno
    return isinstance(target, type) and target.__name__ == "Out"


def _param_types(name: str, params: Mapping[str, inspect.Parameter], bound: Mapping[str, Any],
                 annotations: Mapping[str, Any]) -> tuple[dict[str, ParamInfo], dict[str, ParamInfo]]:
    missing = set(params) - set(bound)
    if missing:
        raise FunctionLoadError(
            name, f"the following parameters are declared in Python but not in function.json: {missing!r}"
        )
    extra = set(bound) - set(params)
    if extra:
        raise FunctionLoadError(
            name, f"the following parameters are declared in function.json but not in Python: {extra!r}"
        )
    inputs: dict[str, ParamInfo] = {}
    outputs: dict[str, ParamInfo] = {}
    for param in params.values():
        binding = bound[param.name]
        has_anno = param.name in annotations
        anno = annotations.get(param.name)
        is_param_out = has_anno and _is_out_annotation(anno)
        is_binding_out = binding.direction == BindingDirection.OUT.value
        pytype = anno
        if is_param_out:
            args = typing_inspect.get_args(anno)
            if len(args) != 1:
                raise FunctionLoadError(name, f"binding {param.name} has invalid Out annotation {anno!r}")
            pytype = args[0]
            if isinstance(pytype, tuple) and typing_inspect.is_generic_type(pytype[0]):
                pytype = operator.getitem(pytype[0], *pytype[1:])
        if has_anno and not isinstance(pytype, type) and not typing_inspect.is_generic_type(pytype):
            raise FunctionLoadError(name, f"binding {param.name} has invalid non-type annotation {anno!r}")
        if is_binding_out and has_anno and not is_param_out:
            raise FunctionLoadError(
                name, f'binding {param.name} is declared to have the "out" direction, but its annotation '
                "in Python is not a subclass of azure.functions.Out"
            )
        if not is_binding_out and is_param_out:
            raise FunctionLoadError(
                name, f'binding {param.name} is declared to have the "in" direction in function.json, but '
                "its annotation is azure.functions.Out in Python"
            )
        # The worker's generic rule: str/bytes parameters of bindings without implicit output
        # (durableClient among them) are passed through as plain strings/bytes.
        if has_anno and pytype in (str, bytes) and not bindings.has_implicit_output(binding.type):
            bind_type = bindings.GENERIC
        else:
            bind_type = binding.type
        if has_anno:
            check = (bindings.check_output_type_annotation if is_param_out
                     else bindings.check_input_type_annotation)
            if not check(bind_type, pytype):
                raise FunctionLoadError(
                    name, f'type of {param.name} binding in function.json "{binding.type}" does not match '
                    f'its Python annotation "{getattr(pytype, "__name__", pytype)}"'
                )
        info = ParamInfo(bind_type, pytype, binding)
        (outputs if is_binding_out else inputs)[param.name] = info
    return inputs, outputs


def _return_type(name: str, annotations: Mapping[str, Any], explicit: bool, implicit: bool,
                 binding_type: str | None) -> ParamInfo | None:
    pytype = None
    if explicit and "return" in annotations:
        anno = annotations["return"]
        if typing_inspect.is_generic_type(anno) and _is_out_annotation(anno):
            raise FunctionLoadError(name, "return annotation should not be azure.functions.Out")
        if not isinstance(anno, type):
            raise FunctionLoadError(name, f"has invalid non-type return annotation {anno!r}")
        pytype = anno
        assert binding_type is not None
        if not bindings.check_output_type_annotation(binding_type, pytype):
            raise FunctionLoadError(
                name, f'Python return annotation "{pytype.__name__}" does not match binding type '
                f'"{binding_type}"'
            )
    if implicit and "return" in annotations:
        pytype = annotations["return"]
    if not (explicit or implicit) or binding_type is None:
        return None
    return ParamInfo(binding_type, pytype, None)


def _http_route(name: str, raw_bindings: tuple[dict[str, Any], ...]) -> HttpRoute:
    raw = next(b for b in raw_bindings if b.get("type") == bindings.HTTP_TRIGGER)
    methods = raw.get("methods")
    return HttpRoute(
        route=str(raw.get("route") or name),
        methods=tuple(str(m).upper() for m in methods) if methods else None,
        auth_level=str(raw.get("authLevel") or "FUNCTION"),
    )
