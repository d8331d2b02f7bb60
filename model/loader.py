"""YAML → typed playbook, with the line of every problem.

YAML is read with YAML 1.2 core-schema meaning (only true/false are booleans; ``010`` is ten; no
timestamps) and duplicate keys are errors. Parsing keeps a map from each value's path to its line,
so schema and semantic problems point at the line to fix.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from .playbook import Playbook
from .problems import Group, PlaybookError, Problem
from .steps import step_tag

Path_ = tuple[str | int, ...]


class _CoreLoader(yaml.SafeLoader):
    """SafeLoader with the YAML 1.2 core schema's implicit types instead of YAML 1.1's."""


class _FastCoreLoader(getattr(yaml, "CSafeLoader", _CoreLoader)):  # type: ignore[misc]
    """The same on libyaml, when PyYAML has it: several times faster; its error texts are vaguer."""


_CoreLoader.yaml_implicit_resolvers = {}
_CORE_TYPES = [
    ("tag:yaml.org,2002:bool", r"^(?:true|True|TRUE|false|False|FALSE)$", "tTfF"),
    ("tag:yaml.org,2002:null", r"^(?:~|null|Null|NULL|)$", ["~", "n", "N", ""]),
    ("tag:yaml.org,2002:int", r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$", "-+0123456789"),
    (
        "tag:yaml.org,2002:float",
        r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$",
        "-+0123456789.",
    ),
]
_FastCoreLoader.yaml_implicit_resolvers = {}
for _tag, _regex, _first in _CORE_TYPES:
    for _loader in (_CoreLoader, _FastCoreLoader):
        _loader.add_implicit_resolver(_tag, re.compile(_regex), list(_first))


def _core_int(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> int:
    text = str(loader.construct_scalar(node))
    if text.startswith("0o"):
        return int(text[2:], 8)
    return int(text, 16) if text.startswith("0x") else int(text, 10)


_CoreLoader.add_constructor("tag:yaml.org,2002:int", _core_int)
_FastCoreLoader.add_constructor("tag:yaml.org,2002:int", _core_int)


@dataclass
class Document:
    """Parsed YAML data and the line (1-based) of each path in it."""

    data: Any
    file: str
    lines: dict[Path_, int] = field(default_factory=dict)

    def line(self, path: Iterable[str | int]) -> int:
        """The line of a path, or of its nearest ancestor that has one."""
        parts = tuple(path)
        while parts and parts not in self.lines:
            parts = parts[:-1]
        return self.lines.get(parts, 1)

    def step_at(self, path: Iterable[str | int]) -> str | None:
        """The id of the innermost step containing a path."""
        found, node = None, self.data
        parts = list(path)
        for i, part in enumerate(parts):
            try:
                node = node[part]
            except (KeyError, IndexError, TypeError):
                break
            in_list = isinstance(part, int) and i > 0 and parts[i - 1] in ("steps", "compensate", "default")
            if in_list and isinstance(node, dict) and isinstance(node.get("id"), str):
                found = node["id"]
        return found


def parse_yaml(text: str, file: str = "<playbook>") -> Document:
    """Parse one YAML document into plain data plus a line map; raise PlaybookError on syntax."""
    try:
        return _parse_with(_FastCoreLoader, text, file)
    except PlaybookError as fast:
        if fast.problems[0].group != Group.syntax or _FastCoreLoader is _CoreLoader:
            raise
    return _parse_with(_CoreLoader, text, file)  # the pure-Python parser explains syntax errors better


def _parse_with(loader_type: type[yaml.SafeLoader], text: str, file: str) -> Document:
    loader = loader_type(text)
    try:
        root = loader.get_single_node()
        if root is None:
            raise PlaybookError([Problem(Group.syntax, "", "the file is empty", file, 1)])
        doc = Document(data=None, file=file)
        doc.data = _build(loader, root, (), doc)
        return doc
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        message = f"YAML syntax: {exc.problem or exc.context}"
        raise PlaybookError([Problem(Group.syntax, "", message, file, line)]) from None
    finally:
        loader.dispose()


def _build(loader: yaml.SafeLoader, node: yaml.Node, path: Path_, doc: Document) -> Any:
    doc.lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        loader.flatten_mapping(node)
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            if not isinstance(key, str | int):
                line = key_node.start_mark.line + 1
                message = "a mapping key must be a string or a number"
                raise PlaybookError([Problem(Group.syntax, "", message, doc.file, line)])
            if key in result:
                first = doc.lines.get((*path, key))
                raise PlaybookError(
                    [
                        Problem(
                            Group.syntax,
                            _dotted((*path, key)),
                            f"duplicate key (first defined on line {first})",
                            doc.file,
                            key_node.start_mark.line + 1,
                        )
                    ]
                )
            doc.lines[(*path, key)] = key_node.start_mark.line + 1
            result[key] = _build(loader, value_node, (*path, key), doc)
        return result
    if isinstance(node, yaml.SequenceNode):
        return [_build(loader, item, (*path, i), doc) for i, item in enumerate(node.value)]
    return loader.construct_object(node, deep=True)


def _dotted(path: Iterable[str | int]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def field_name(doc: Document, path: Path_) -> str:
    """The field a problem is about: relative to its innermost step, else to the playbook."""
    step_start = 0
    for i in range(1, len(path)):
        if isinstance(path[i], int) and path[i - 1] in ("steps", "compensate", "default"):
            step_start = i + 1
    return _dotted(path[step_start:]) if doc.step_at(path) else _dotted(path)


def problem_at(doc: Document, group: Group, path: Path_, message: str) -> Problem:
    return Problem(group, field_name(doc, path), message, doc.file, doc.line(path), doc.step_at(path))


_UNION_PARTS = frozenset({"int", "float", "str", "bool", "list", "dict", "none", "constrained-str", "custom"})


def _data_path(data: Any, loc: tuple[Any, ...]) -> Path_:
    """A pydantic error location as a path in the data (dropping union tags and validator names)."""
    path: list[str | int] = []
    node = data
    for part in loc:
        if isinstance(part, str) and ("[" in part or part in _UNION_PARTS):
            continue
        if (isinstance(node, dict) and part in node) or (
            isinstance(node, list) and isinstance(part, int) and part < len(node)
        ):
            node = node[part]
        elif isinstance(node, dict) and "type" in node and part == step_tag(node):
            continue
        else:
            node = None  # a missing or unknown field: keep its name for the message
        path.append(part)
    return tuple(path)


def schema_message(err: Any) -> str:
    ctx = err.get("ctx") or {}
    kind = err["type"]
    if kind == "missing":
        return "is required"
    if kind == "extra_forbidden":
        return "unknown field (not part of the playbook language here)"
    if kind == "string_pattern_mismatch":
        return f"{err['input']!r} does not match {ctx.get('pattern')!r}"
    if kind in ("literal_error", "enum"):
        return f"{err['input']!r} is not one of {ctx.get('expected')}"
    if kind == "union_tag_invalid":
        return f"unknown step type {ctx.get('tag')!r}"
    message = str(err["msg"]).removeprefix("Value error, ")
    return message[0].lower() + message[1:] if message else kind


_KINDS = {"int": "an integer", "float": "a number", "constrained-str": "a {{ template }}", "str": "a string",
          "bool": "a boolean", "list": "a list", "dict": "a mapping", "none": "null"}  # fmt: skip


def _union_member(loc: tuple[Any, ...]) -> str | None:
    """The union member an error comes from (pydantic names it in the location), if any."""
    for part in loc:
        if isinstance(part, str) and (part in _KINDS or part.startswith(("list[", "dict["))):
            return part.split("[")[0]
    return None


def _schema_problems(doc: Document, exc: ValidationError) -> list[Problem]:
    """One problem per mistake: a value no member of a union accepts is reported once, with what fits."""
    errors = [(err, _data_path(doc.data, tuple(err["loc"]))) for err in exc.errors()]
    paths = [path for _, path in errors]
    problems: dict[Path_, Problem] = {}
    alternatives: dict[Path_, list[str]] = {}
    for err, path in errors:
        member = _union_member(tuple(err["loc"]))
        if member is not None:
            # a member that got further into the value explains the mistake better than a type mismatch here
            if any(len(other) > len(path) and other[: len(path)] == path for other in paths):
                continue
            alternatives.setdefault(path, []).append(_KINDS.get(member, member))
        problems.setdefault(path, problem_at(doc, Group.schema, path, schema_message(err)))
    for path, kinds in alternatives.items():
        if len(kinds) > 1:
            value = _raw_value(doc.data, path)
            problems[path] = problem_at(
                doc, Group.schema, path, f"{value!r} is not {' or '.join(dict.fromkeys(kinds))}"
            )
    return list(problems.values())


def _raw_value(data: Any, path: Path_) -> Any:
    for part in path:
        try:
            data = data[part]
        except (KeyError, IndexError, TypeError):
            return None
    return data


def parse_playbook(doc: Document) -> Playbook:
    """Validate parsed data against the language's schema; raise PlaybookError with every problem."""
    if not isinstance(doc.data, dict):
        raise PlaybookError([Problem(Group.schema, "", "a playbook is a mapping of fields", doc.file, 1)])
    try:
        return Playbook.model_validate(doc.data)
    except ValidationError as exc:
        raise PlaybookError(_schema_problems(doc, exc)) from None


def read_document(path: Path) -> Document:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PlaybookError([Problem(Group.syntax, "", "no such file or folder", str(path))]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise PlaybookError([Problem(Group.syntax, "", f"cannot read: {exc}", str(path))]) from None
    return parse_yaml(text, str(path))


def playbook_files(paths: Iterable[Path]) -> list[Path]:
    """The playbook files named by paths: files as given, folders searched recursively."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files.extend(sorted(p for p in path.rglob("*.y*ml") if p.suffix in (".yaml", ".yml")))
        else:
            files.append(path)
    return files
