"""ASP.NET Core route templates, as the Functions host matches HTTP trigger routes.

Supported: literal segments (case-insensitive), ``{name}``, ``{name?}``, ``{name=default}``, catch-alls
``{*rest}`` / ``{**rest}``, complex segments such as ``{file}.{ext}``, and inline constraints
``{id:int}``, ``{id:int:min(1)}``, ``{x:regex(^a+$)}`` … (see ``CONSTRAINTS``). aiohttp's router
cannot express these, so templates are compiled here into per-segment matchers.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from itertools import pairwise
from typing import Generic, TypeVar
from urllib.parse import unquote

T = TypeVar("T")
Check = Callable[[str], bool]


# -- constraints (Microsoft.AspNetCore.Routing.Constraints, culture-invariant) -----------------------

def _int_in(lo: int, hi: int) -> Check:
    def check(value: str) -> bool:
        text = value.strip()
        return bool(re.fullmatch(r"[+-]?\d+", text)) and lo <= int(text) <= hi
    return check


def _float_ok(value: str, *, exponent: bool = True) -> bool:
    text = value.strip().replace(",", "")  # NumberStyles.AllowThousands
    if text.lower() in ("nan", "infinity", "-infinity", "+infinity"):
        return exponent
    pattern = r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?" if exponent else r"[+-]?(\d+\.?\d*|\.\d+)"
    return bool(re.fullmatch(pattern, text))


def _bool_ok(value: str) -> bool:
    return value.strip().lower() in ("true", "false")


def _guid_ok(value: str) -> bool:
    text = value.strip()
    if len(text) == 38 and text[0] + text[-1] in ("{}", "()"):
        text = text[1:-1]
    if len(text) not in (32, 36):
        return False
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return len(text) == 32 or text.count("-") == 4


def _datetime_ok(value: str) -> bool:
    try:
        datetime.fromisoformat(value.strip())
    except ValueError:
        return False
    return True


def _decimal(arg: str) -> Decimal:
    try:
        return Decimal(arg)
    except InvalidOperation:
        raise ValueError(f"not a number: {arg!r}") from None


def _number_range(lo: Decimal | None, hi: Decimal | None) -> Check:
    def check(value: str) -> bool:
        if not re.fullmatch(r"[+-]?\d+", value.strip()):
            return False
        number = int(value.strip())
        return (lo is None or number >= lo) and (hi is None or number <= hi)
    return check


def _length(lo: int | None, hi: int | None) -> Check:
    return lambda value: (lo is None or len(value) >= lo) and (hi is None or len(value) <= hi)


def _args(text: str, count: int, name: str) -> list[str]:
    parts = [p.strip() for p in text.split(",")] if text else []
    if len(parts) != count:
        raise ValueError(f"constraint {name!r} takes {count} argument(s), got {text!r}")
    return parts


def _make_constraint(name: str, arg: str | None) -> Check:
    key = name.lower()
    simple: dict[str, Check] = {
        "int": _int_in(-(2**31), 2**31 - 1),
        "long": _int_in(-(2**63), 2**63 - 1),
        "bool": _bool_ok,
        "guid": _guid_ok,
        "double": _float_ok,
        "float": _float_ok,
        "decimal": lambda v: _float_ok(v, exponent=False),
        "datetime": _datetime_ok,
        "alpha": lambda v: bool(re.fullmatch(r"[a-zA-Z]*", v)),
        "required": lambda v: v != "",
        "file": lambda v: "." in v.rsplit("/", 1)[-1].strip(".") if v else False,
        "nonfile": lambda v: not ("." in v.rsplit("/", 1)[-1].strip(".") if v else False),
    }
    if key in simple:
        if arg is not None:
            raise ValueError(f"constraint {name!r} takes no arguments")
        return simple[key]
    if arg is None:
        raise ValueError(f"unknown route constraint {name!r}")
    if key == "regex":
        # ASP.NET: IgnoreCase | CultureInvariant, and *not* anchored unless the pattern says so.
        compiled = re.compile(arg, re.IGNORECASE)
        return lambda v: compiled.search(v) is not None
    if key in ("min", "max"):
        (bound,) = _args(arg, 1, name)
        return _number_range(_decimal(bound), None) if key == "min" else _number_range(None, _decimal(bound))
    if key == "range":
        lo, hi = _args(arg, 2, name)
        return _number_range(_decimal(lo), _decimal(hi))
    if key in ("minlength", "maxlength"):
        (bound,) = _args(arg, 1, name)
        return _length(int(bound), None) if key == "minlength" else _length(None, int(bound))
    if key == "length":
        parts = [p.strip() for p in arg.split(",")]
        if len(parts) == 1:
            return _length(int(parts[0]), int(parts[0]))
        if len(parts) == 2:
            return _length(int(parts[0]), int(parts[1]))
        raise ValueError(f"constraint 'length' takes 1 or 2 arguments, got {arg!r}")
    raise ValueError(f"unknown route constraint {name!r}")


CONSTRAINTS = ("int", "long", "bool", "guid", "double", "float", "decimal", "datetime", "alpha",
               "required", "file", "nonfile", "regex(p)", "min(n)", "max(n)", "range(a,b)",
               "minlength(n)", "maxlength(n)", "length(n)", "length(a,b)")


# -- template parsing -----------------------------------------------------------------------------

@dataclass(frozen=True)
class Parameter:
    name: str
    optional: bool = False
    catch_all: bool = False
    default: str | None = None
    constraints: tuple[Check, ...] = ()

    def accepts(self, value: str) -> bool:
        return all(check(value) for check in self.constraints)


@dataclass(frozen=True)
class Segment:
    """One ``/``-separated part of a template: literal text and parameters, in order."""

    parts: tuple[str | Parameter, ...]
    regex: re.Pattern[str] | None = None  # only for complex (multi-part) segments

    @property
    def parameter(self) -> Parameter | None:
        return self.parts[0] if len(self.parts) == 1 and isinstance(self.parts[0], Parameter) else None

    @property
    def literal(self) -> str | None:
        return self.parts[0] if len(self.parts) == 1 and isinstance(self.parts[0], str) else None

    @property
    def precedence_digit(self) -> int:
        # RoutePrecedence.ComputeInbound: literal 1, complex 2, constrained 3, parameter 4, catch-all 5.
        if self.literal is not None:
            return 1
        param = self.parameter
        if param is None:
            return 2
        if param.catch_all:
            return 5
        return 3 if param.constraints else 4


def _split_parameter(body: str) -> tuple[str, list[tuple[str, str | None]], str | None, bool]:
    """``name[:c1[(arg)]:c2…][=default][?]`` → name, constraints, default, optional."""
    match = re.match(r"[^:=?]*", body)
    name = match.group(0) if match else ""
    rest = body[len(name):]
    constraints: list[tuple[str, str | None]] = []
    default: str | None = None
    optional = False
    while rest.startswith(":"):
        m = re.match(r":([A-Za-z_][A-Za-z0-9_]*)", rest)
        if not m:
            raise ValueError(f"bad constraint in {{{body}}}")
        cname = m.group(1)
        rest = rest[m.end():]
        arg: str | None = None
        if rest.startswith("("):
            # The argument runs to the last ')' that ends the constraint (regexes may contain ')').
            end = _constraint_arg_end(rest)
            arg = rest[1:end]
            rest = rest[end + 1:]
        constraints.append((cname, arg))
    if rest.endswith("?"):
        optional = True
        rest = rest[:-1]
    if rest.startswith("="):
        default = rest[1:]
        rest = ""
    if rest:
        raise ValueError(f"cannot parse route parameter {{{body}}}")
    return name, constraints, default, optional


def _constraint_arg_end(text: str) -> int:
    candidates = [i for i, ch in enumerate(text) if ch == ")" and (
        i + 1 == len(text) or text[i + 1] in ":=?")]
    if not candidates:
        raise ValueError(f"unclosed constraint argument in {text!r}")
    return candidates[0]


def _parse_segment(text: str, seen: set[str]) -> Segment:
    parts: list[str | Parameter] = []
    literal: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "{" and text.startswith("{{", i):
            literal.append("{")
            i += 2
        elif ch == "}" and text.startswith("}}", i):
            literal.append("}")
            i += 2
        elif ch == "{":
            end = _param_end(text, i)
            if literal:
                parts.append("".join(literal))
                literal = []
            parts.append(_parse_parameter(text[i + 1:end], seen))
            i = end + 1
        elif ch == "}":
            raise ValueError(f"unmatched '}}' in route segment {text!r}")
        else:
            literal.append(ch)
            i += 1
    if literal:
        parts.append("".join(literal))
    if not parts:
        raise ValueError("route templates cannot contain empty segments")
    for a, b in pairwise(parts):
        if isinstance(a, Parameter) and isinstance(b, Parameter):
            raise ValueError(f"route segment {text!r} has two parameters without a literal between them")
    if len(parts) == 1:
        return Segment(tuple(parts))
    if any(isinstance(p, Parameter) and p.catch_all for p in parts):
        raise ValueError(f"a catch-all parameter must be a whole segment: {text!r}")
    # Complex segment: greedy parameters put each literal as far right as possible, which is how
    # ASP.NET matches complex segments (right to left).
    pattern = "".join(
        re.escape(p) if isinstance(p, str) else (f"(?P<p{n}>.+)?" if p.optional else f"(?P<p{n}>.+)")
        for n, p in enumerate(parts)
    )
    return Segment(tuple(parts), re.compile(pattern, re.IGNORECASE | re.DOTALL))


def _param_end(text: str, start: int) -> int:
    """Index of the ``}`` closing the parameter opened at ``start`` (``}}`` inside is an escaped brace)."""
    i = start + 1
    while i < len(text):
        if text[i] == "}":
            if text.startswith("}}", i):
                i += 2
                continue
            return i
        i += 1
    raise ValueError(f"unclosed '{{' in route segment {text!r}")


def _parse_parameter(body: str, seen: set[str]) -> Parameter:
    body = body.replace("}}", "}").replace("{{", "{")
    catch_all = body.startswith("*")
    body = body.lstrip("*")
    name, constraint_specs, default, optional = _split_parameter(body)
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_\-]*", name):
        raise ValueError(f"invalid route parameter name {name!r}")
    if name.lower() in seen:
        raise ValueError(f"the route parameter name {name!r} appears more than once")
    seen.add(name.lower())
    if optional and default is not None:
        raise ValueError(f"parameter {name!r} cannot be both optional and have a default value")
    checks = tuple(_make_constraint(c, a) for c, a in constraint_specs)
    return Parameter(name, optional=optional, catch_all=catch_all, default=default, constraints=checks)


@dataclass(frozen=True)
class RouteTemplate:
    """A compiled route template (prefix included)."""

    text: str
    segments: tuple[Segment, ...]

    @property
    def precedence(self) -> tuple[int, ...]:
        return tuple(s.precedence_digit for s in self.segments)

    def match(self, path_segments: Sequence[str]) -> dict[str, str] | None:
        """Route values for a decoded path split on ``/``, or None when it does not match."""
        values: dict[str, str] = {}
        for index, segment in enumerate(self.segments):
            param = segment.parameter
            if param is not None and param.catch_all:
                rest = "/".join(path_segments[index:])
                if rest:
                    if not param.accepts(rest):
                        return None
                    values[param.name] = rest
                elif param.default is not None:
                    values[param.name] = param.default
                return values
            if index >= len(path_segments):
                return self._fill_missing(index, values)
            if not _match_segment(segment, path_segments[index], values):
                return None
        return values if len(path_segments) == len(self.segments) else None

    def _fill_missing(self, index: int, values: dict[str, str]) -> dict[str, str] | None:
        # Only optional, defaulted or catch-all parameters may be missing from the end of the path.
        for segment in self.segments[index:]:
            param = segment.parameter
            if param is None or not (param.optional or param.default is not None or param.catch_all):
                return None
            if param.default is not None:
                values[param.name] = param.default
        return values


def _match_segment(segment: Segment, text: str, values: dict[str, str]) -> bool:
    literal = segment.literal
    if literal is not None:
        return text.lower() == literal.lower()
    param = segment.parameter
    if param is not None:
        if text == "" or not param.accepts(text):
            return False
        values[param.name] = text
        return True
    assert segment.regex is not None
    m = segment.regex.fullmatch(text)
    if not m:
        return False
    found: dict[str, str] = {}
    for n, part in enumerate(segment.parts):
        if isinstance(part, Parameter):
            value = m.group(f"p{n}")
            if value is None:
                if part.default is not None:
                    found[part.name] = part.default
                continue
            if not part.accepts(value):
                return False
            found[part.name] = value
    values.update(found)
    return True


def parse_template(template: str) -> RouteTemplate:
    """Compile a route template; raises ValueError like ASP.NET's RoutePatternParser would."""
    text = template.strip()
    if text.startswith("~/"):
        text = text[2:]
    text = text.strip("/")
    seen: set[str] = set()
    segments = tuple(_parse_segment(s, seen) for s in text.split("/")) if text else ()
    for segment in segments[:-1]:
        param = segment.parameter
        if param is not None and param.catch_all:
            raise ValueError(f"a catch-all parameter can only appear as the last segment: {template!r}")
    optional_seen = False
    for segment in segments:
        param = segment.parameter
        is_optional = param is not None and (param.optional or param.catch_all)
        if optional_seen and not is_optional:
            raise ValueError(f"an optional parameter must be at the end of the segment list: {template!r}")
        optional_seen = optional_seen or (param is not None and param.optional)
    return RouteTemplate(text, segments)


def join_prefix(prefix: str, route: str) -> str:
    """``routePrefix`` + route, as the host composes them (an empty prefix means none)."""
    prefix = prefix.strip("/")
    route = route.strip().removeprefix("~").strip("/")
    return f"{prefix}/{route}" if prefix and route else prefix or route


def decode_path(raw_path: str) -> str:
    """Percent-decode a request path but keep ``%2F`` encoded, as ASP.NET's PathString does."""
    if "%" not in raw_path:
        return raw_path  # nothing to decode (most requests)
    return unquote(re.sub(r"%2[fF]", "%252F", raw_path))


def split_path(decoded_path: str) -> list[str]:
    """Path segments; a single trailing slash is ignored, as ASP.NET routing does."""
    path = decoded_path.lstrip("/")
    if path.endswith("/"):
        path = path[:-1]
    return path.split("/") if path else []


@dataclass(frozen=True)
class Route(Generic[T]):
    template: RouteTemplate
    methods: frozenset[str] | None  # None = every method
    target: T
    order: int = 0


@dataclass(frozen=True)
class RouteMatch(Generic[T]):
    target: T
    values: dict[str, str]


@dataclass
class RouteTable(Generic[T]):
    """Function routes ordered by ASP.NET inbound precedence (literals beat parameters)."""

    routes: list[Route[T]] = field(default_factory=list)

    def add(self, template: str, methods: Iterable[str] | None, target: T) -> None:
        compiled = parse_template(template)
        allowed = frozenset(m.upper() for m in methods) if methods else None
        self.routes.append(Route(compiled, allowed, target, len(self.routes)))
        self.routes.sort(key=lambda r: (r.template.precedence, r.order))

    def match(self, method: str, decoded_path: str) -> RouteMatch[T] | None:
        """The first route whose template and method filter accept the request."""
        segments = split_path(decoded_path)
        for route in self.routes:
            if route.methods is not None and method.upper() not in route.methods:
                continue
            values = route.template.match(segments)
            if values is not None:
                return RouteMatch(route.target, values)
        return None

