"""Just enough reading of Bicep source for static checks (no Bicep compiler exists on these machines)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Param:
    name: str
    type: str
    decorators: str  # the decorator lines above it
    default: str | None


@dataclass(frozen=True)
class Resource:
    symbol: str
    type: str  # e.g. Microsoft.Web/sites
    api_version: str
    body: str  # the text between the outer braces (or the loop/condition and its body)


_PARAM = re.compile(r"^param (\w+) (\w+)(?: = (.+))?$", re.MULTILINE)
_RESOURCE = re.compile(r"^resource (\w+) '([^@']+)@([^']+)' = ", re.MULTILINE)


def strip_comments(text: str) -> str:
    """Bicep ``//`` line comments out (no string in these templates holds ``//`` except URLs, kept)."""
    return re.sub(r"(?m)(^|\s)//(?!/).*$", r"\1", text)


def block_after(text: str, start: int) -> str:
    """The balanced ``{...}`` or ``[...]`` block starting at the first opening bracket from ``start``."""
    opening = min(i for i in (text.find("{", start), text.find("[", start)) if i >= 0)
    pairs = {"{": "}", "[": "]"}
    stack: list[str] = []
    for index in range(opening, len(text)):
        ch = text[index]
        if ch in pairs:
            stack.append(pairs[ch])
        elif stack and ch == stack[-1]:
            stack.pop()
            if not stack:
                return text[opening + 1 : index]
    raise ValueError("unbalanced Bicep block")


class BicepFile:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.text = strip_comments(path.read_text(encoding="utf-8"))

    def params(self) -> list[Param]:
        found = []
        for match in _PARAM.finditer(self.text):
            before = self.text[: match.start()].rstrip("\n").split("\n")
            decorators: list[str] = []
            while before and (before[-1].startswith(("@", " ", "'", "]", "}", ")")) or before[-1] == ""):
                line = before.pop()
                if line == "":
                    break
                decorators.insert(0, line)
            found.append(Param(match.group(1), match.group(2), "\n".join(decorators), match.group(3)))
        return found

    def resources(self) -> list[Resource]:
        return [Resource(m.group(1), m.group(2), m.group(3), block_after(self.text, m.end()))
                for m in _RESOURCE.finditer(self.text)]

    def resource(self, resource_type: str) -> Resource:
        matches = [r for r in self.resources() if r.type == resource_type]
        assert len(matches) == 1, f"{self.path.name}: expected one {resource_type}, found {len(matches)}"
        return matches[0]

    def variable_block(self, name: str) -> str:
        match = re.search(rf"^var {name} = ", self.text, re.MULTILINE)
        assert match, f"{self.path.name}: no var {name}"
        return block_after(self.text, match.end())

    def outputs(self) -> set[str]:
        return set(re.findall(r"^output (\w+) ", self.text, re.MULTILINE))


def object_keys(block: str) -> dict[str, str]:
    """Top-level ``key: value`` lines of an object body (nested objects are skipped over)."""
    keys: dict[str, str] = {}
    depth = 0
    for line in block.split("\n"):
        stripped = line.strip()
        if depth == 0:
            match = re.match(r"^'?([\w.-]+)'?: (.*)$", stripped)
            if match:
                keys[match.group(1)] = match.group(2).strip()
        depth += stripped.count("{") + stripped.count("[") - stripped.count("}") - stripped.count("]")
    return keys
