"""Static checks on a typed playbook: the DAG, ids, versions, registered types and every expression.

All problems are reported at once, each with its path and line, grouped (syntax, schema,
semantics, expressions) — a playbook that passes runs without surprises from its own text.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from graphlib import CycleError, TopologicalSorter
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from . import expressions, secrets
from .loader import Document, parse_playbook, playbook_files, problem_at, read_document, schema_message
from .messages import StepCompletion
from .playbook import Playbook
from .problems import Group, PlaybookError, Problem
from .steps import PEOPLE_TYPES, CustomStep, Step, registered_step_types
from .variables import validate_values

Path_ = tuple[str | int, ...]
STEP_FIELDS = ("status", "output", "data", "completed_by", "error")
EXECUTION_FIELDS = ("id", "organization_id", "playbook_id", "requested_by", "started_at")
ROOT_NAMES = frozenset({"inputs", "steps", "vars", "execution"}) | frozenset(expressions.ENV.globals)


def default_dependencies(steps: list[Step], *, parallel: bool = False) -> dict[str, list[str]]:
    """Each step's dependencies within its list: as written, else the step before it (none in parallel)."""
    deps: dict[str, list[str]] = {}
    for index, step in enumerate(steps):
        if step.depends_on is not None:
            deps[step.id] = list(step.depends_on)
        else:
            deps[step.id] = [] if parallel or index == 0 else [steps[index - 1].id]
    return deps


@dataclass
class _Placed:
    """Where a step sits: its path, the group that holds it and its dependencies among siblings."""

    step: Step
    path: Path_
    parent: str | None
    deps: list[str]
    siblings: set[str]
    loop_names: tuple[str, ...] = ()
    free: bool = False  # compensation steps run after the fact and may read any step


@dataclass
class _Checker:
    playbook: Playbook
    doc: Document
    problems: list[Problem] = field(default_factory=list)
    placed: dict[str, _Placed] = field(default_factory=dict)

    def report(self, group: Group, path: Path_, message: str) -> None:
        self.problems.append(problem_at(self.doc, group, path, message))

    # ------------------------------------------------------------ structure
    def place(
        self,
        steps: list[Step],
        path: Path_,
        parent: str | None,
        *,
        parallel: bool = False,
        loop_names: tuple[str, ...] = (),
        free: bool = False,
    ) -> None:
        deps = default_dependencies(steps, parallel=parallel)
        ids = {s.id for s in steps}
        for index, step in enumerate(steps):
            here = (*path, index)
            if step.id in self.placed:
                first = self.doc.line(self.placed[step.id].path)
                self.report(Group.semantics, (*here, "id"), f"duplicate step id {step.id!r} (first on line {first})")
                continue
            self.placed[step.id] = _Placed(step, here, parent, deps[step.id], ids, loop_names, free)
            inner = (*loop_names, step.with_.as_) if step.type == "foreach" else loop_names  # type: ignore[union-attr]
            for sub, body in _bodies(step):
                self.place(
                    body,
                    (*here, *sub),
                    step.id,
                    parallel=step.type == "parallel",
                    loop_names=inner,
                    free=free,
                )
            if step.compensate:
                self.place(step.compensate, (*here, "compensate"), step.id, free=True, loop_names=loop_names)

    def check_dags(self, steps: list[Step], path: Path_) -> None:
        deps = {s.id: self.placed[s.id].deps for s in steps if s.id in self.placed}
        for index, step in enumerate(steps):
            for position, dep in enumerate(step.depends_on or []):
                where = (*path, index, "depends_on", position)
                if dep == step.id:
                    self.report(Group.semantics, where, f"step {dep!r} cannot depend on itself")
                elif dep not in deps and dep in self.placed:
                    self.report(
                        Group.semantics,
                        where,
                        f"step {dep!r} is not in the same list (depends_on names siblings)",
                    )
                elif dep not in deps:
                    self.report(Group.semantics, where, f"unknown step {dep!r}")
            for sub, body in _bodies(step):
                self.check_dags(body, (*path, index, *sub))
            if step.compensate:
                self.check_dags(step.compensate, (*path, index, "compensate"))
        graph = {k: [d for d in v if d in deps and d != k] for k, v in deps.items()}
        try:
            TopologicalSorter(graph).prepare()
        except CycleError as exc:
            cycle = exc.args[1]
            first = next(i for i, s in enumerate(steps) if s.id == cycle[0])
            self.report(Group.semantics, (*path, first, "depends_on"), f"dependency cycle: {' -> '.join(cycle)}")

    def ancestors(self, step_id: str) -> set[str]:
        """Steps certain to have finished before ``step_id`` starts, their nested steps included."""
        seen: set[str] = set()
        node: str | None = step_id
        while node is not None:
            stack = list(self.placed[node].deps)
            while stack:
                dep = stack.pop()
                if dep in seen or dep not in self.placed or dep not in self.placed[node].siblings:
                    continue
                seen.add(dep)
                seen |= self.descendants(dep)
                stack.extend(self.placed[dep].deps)
            node = self.placed[node].parent
        return seen

    def descendants(self, step_id: str) -> set[str]:
        return {sid for sid, p in self.placed.items() if self._inside(p, step_id)}

    def _inside(self, placed: _Placed, group_id: str) -> bool:
        parent = placed.parent
        while parent is not None:
            if parent == group_id:
                return True
            parent = self.placed[parent].parent
        return False

    # ------------------------------------------------------------ checks
    def check_header(self) -> None:
        pb = self.playbook
        suffix = int(pb.id.rsplit(".v", 1)[1])
        if pb.version != suffix:
            self.report(Group.semantics, ("version",), f"is {pb.version} but the id {pb.id!r} ends in .v{suffix}")
        if self.doc.file.endswith((".yaml", ".yml")) and Path(self.doc.file).name != f"{pb.id}.yaml":
            self.report(
                Group.semantics,
                ("id",),
                f"the file must be named {pb.id}.yaml (found {Path(self.doc.file).name})",
            )

    def check_custom(self) -> None:
        registry = registered_step_types()
        for path, step in self.playbook.walk():
            if isinstance(step, CustomStep) and step.type in registry:
                try:
                    registry[step.type].model_validate(step.with_)
                except ValidationError as exc:
                    for err in exc.errors():
                        if err["type"] != "extra_forbidden" and expressions.is_template(err["input"]):
                            continue  # a template's value is known when the step runs; its activity checks it
                        where = (*path, "with", *(p for p in err["loc"] if isinstance(p, str | int)))
                        self.report(Group.schema, where, schema_message(err))

    def check_examples(self) -> None:
        pb = self.playbook
        for index, example in enumerate(pb.examples):
            path: Path_ = ("examples", index)
            for err in validate_values(pb.inputs, example.initial_data).errors:
                self.report(Group.semantics, (*path, "initial_data", err.field), err.message)
            for position, completion in enumerate(example.complete):
                self.check_completion((*path, "complete", position), completion)

    def check_completion(self, where: Path_, completion: StepCompletion) -> None:
        """An example's completion must be one a person could really send: right step, role and data."""
        target = self.placed.get(completion.step_id)
        if target is None:
            self.report(Group.semantics, (*where, "step_id"), f"no step {completion.step_id!r}")
            return
        step = target.step
        if step.kind not in PEOPLE_TYPES:
            self.report(Group.semantics, (*where, "step_id"), f"{step.id!r} is not a human or approval step")
            return
        spec = step.with_
        roles = {spec.assignee_role, *spec.escalation_roles}  # type: ignore[union-attr]
        if spec.assignee_role and completion.role not in roles:  # type: ignore[union-attr]
            self.report(Group.semantics, (*where, "role"), f"step {step.id} needs role {' or '.join(sorted(roles))}")
        for err in validate_values(spec.form, completion.data).errors:  # type: ignore[union-attr]
            self.report(Group.semantics, (*where, "data", err.field), err.message)

    def check_expressions(self) -> None:
        for step_id, placed in self.placed.items():
            raw = _raw(self.doc.data, placed.path)
            scope = None if placed.free else self.ancestors(step_id)
            takes_secrets = secrets.allowed_in(placed.step.type)
            for rel, text, is_condition in _expressions_of(raw):
                allow = takes_secrets and rel[0] == "with" and not is_condition
                self.check_one((*placed.path, *rel), text, is_condition, scope, placed.loop_names, secrets_ok=allow)
        for name, value in self.playbook.outputs.items():
            for rel, text in expressions.templates_in(value):
                self.check_one(("outputs", name, *rel), text, False, None, ())
        for index, criterion in enumerate(self.playbook.success_criteria):
            if isinstance(criterion, str):
                self.check_one(("success_criteria", index), criterion, True, None, ())

    def check_one(
        self, path: Path_, text: str, is_condition: bool, scope: set[str] | None, loops: tuple[str, ...],
        *, secrets_ok: bool = False,
    ) -> None:  # fmt: skip
        if is_condition and "{{" in text:
            self.report(Group.expressions, path, "a condition is a bare expression: write x > 1, not {{ x > 1 }}")
            return
        try:
            refs = expressions.check(text, condition=is_condition)
        except expressions.ExpressionError as exc:
            self.report(Group.expressions, path, exc.message)
            return
        allowed = ROOT_NAMES | set(loops) | ({"loop"} if loops else set())
        if secrets.NAMESPACE in refs.names - allowed:
            if not secrets_ok:
                where = ", ".join(secrets.STEP_TYPES)
                message = f"secrets: allowed only in the with: of {where} and registered step types"
                self.report(Group.expressions, path, message)
            allowed |= {secrets.NAMESPACE}
        for name in sorted(refs.names - allowed):
            self.report(
                Group.expressions,
                path,
                f"unknown name {name!r} (in scope: {', '.join(sorted(allowed - set(expressions.ENV.globals)))})",
            )
        var_names = {v for _, s in self.playbook.walk() if s.type == "set" for v in s.with_.vars}  # type: ignore[union-attr]
        for namespace, key, sub in refs.attributes:
            if namespace == "inputs" and key not in self.playbook.inputs:
                self.report(Group.expressions, path, f"inputs.{key}: no such input")
            elif namespace == "vars" and key not in var_names:
                self.report(Group.expressions, path, f"vars.{key}: no set step defines it")
            elif namespace == "execution" and key not in EXECUTION_FIELDS:
                self.report(Group.expressions, path, f"execution.{key}: not one of {', '.join(EXECUTION_FIELDS)}")
            elif namespace == "steps":
                self.check_step_ref(path, key, sub, scope)

    def check_step_ref(self, path: Path_, key: str, sub: str | None, scope: set[str] | None) -> None:
        if key not in self.placed:
            self.report(Group.expressions, path, f"steps.{key}: no such step")
        elif sub is not None and sub not in STEP_FIELDS:
            self.report(Group.expressions, path, f"steps.{key}.{sub}: a step has {', '.join(STEP_FIELDS)}")
        elif scope is not None and key not in scope:
            self.report(
                Group.expressions,
                path,
                f"steps.{key}: cannot have run before this step "
                "(add it to depends_on, directly or through a step in between)",
            )


def _bodies(step: Step) -> Iterator[tuple[Path_, list[Step]]]:
    if step.kind == "switch":
        for index, case in enumerate(step.with_.cases):  # type: ignore[union-attr]
            yield ("with", "cases", index, "steps"), case.steps
        yield ("with", "default"), step.with_.default  # type: ignore[union-attr, misc]
    elif step.children():
        yield ("with", "steps"), step.children()[0]


def _raw(data: Any, path: Path_) -> Any:
    for part in path:
        data = data[part]
    return data


_NESTED = {("with", "steps"), ("with", "default"), ("compensate",)}
_CONDITIONS = {("when",)}


def _expressions_of(raw: dict[str, Any]) -> Iterator[tuple[Path_, str, bool]]:
    """Templates and conditions written on a step itself (nested step lists are checked on their own)."""
    for key, value in raw.items():
        if key in ("id", "type", "depends_on", "compensate"):
            continue
        if key == "when":
            if isinstance(value, str):
                yield ("when",), value, True
            continue
        if key != "with" or not isinstance(value, dict):
            for rel, text in expressions.templates_in(value):
                yield (key, *rel), text, False
            continue
        for wkey, wvalue in value.items():
            if wkey in ("steps", "default") and isinstance(wvalue, list) and raw.get("type") not in ("human", "manual"):
                continue
            if wkey == "cases" and isinstance(wvalue, list):
                for index, case in enumerate(wvalue):
                    if isinstance(case, dict) and isinstance(case.get("when"), str):
                        yield ("with", "cases", index, "when"), case["when"], True
                continue
            if wkey == "rules" and isinstance(wvalue, list):
                for index, rule in enumerate(wvalue):
                    if isinstance(rule, dict) and isinstance(rule.get("assert"), str):
                        yield ("with", "rules", index, "assert"), rule["assert"], True
                    if isinstance(rule, dict):
                        for rel, text in expressions.templates_in(rule.get("message")):
                            yield ("with", "rules", index, "message", *rel), text, False
                continue
            if wkey == "form":
                continue  # form specs are data, not templates
            for rel, text in expressions.templates_in(wvalue):
                yield ("with", wkey, *rel), text, False


def check_playbook(playbook: Playbook, doc: Document) -> list[Problem]:
    """Every semantic and expression problem of a parsed playbook."""
    checker = _Checker(playbook, doc)
    checker.check_header()
    checker.place(playbook.steps, ("steps",), None)
    checker.check_dags(playbook.steps, ("steps",))
    checker.check_custom()
    checker.check_examples()
    checker.check_expressions()
    order = list(Group)
    return sorted(checker.problems, key=lambda p: (order.index(p.group), p.line or 0))


def validate_document(doc: Document) -> tuple[Playbook | None, list[Problem]]:
    try:
        playbook = parse_playbook(doc)
    except PlaybookError as exc:
        return None, exc.problems + _beyond_the_header(doc, exc.problems)
    return playbook, check_playbook(playbook, doc)


_STAND_INS: dict[str, Any] = {"name": "stand-in", "module": "ops", "smart_code": "HERA.OPS.STAND.IN.v1"}
"""Valid values for header fields nothing else depends on: with them in place, the rest is still checked."""
_STRUCTURE = frozenset({"id", "steps", "inputs"})
"""Fields the other checks build on: a problem there leaves nothing meaningful to check beyond it."""


def _beyond_the_header(doc: Document, problems: list[Problem]) -> list[Problem]:
    """The semantic and expression problems a schema problem in an independent header field would hide
    (a missing smart_code, a mistyped field name): checked with a stand-in for each bad field, whose own
    problems are already reported."""
    if not isinstance(doc.data, dict) or any(p.step or p.group != Group.schema for p in problems):
        return []
    bad = {re.split(r"[.\[]", p.field)[0] for p in problems}
    if not bad or bad & _STRUCTURE:
        return []
    data = {k: v for k, v in doc.data.items() if k not in bad}
    data.update({k: v for k, v in _STAND_INS.items() if k in bad})
    if "version" in bad and isinstance(data.get("id"), str):
        data["version"] = int(data["id"].rsplit(".v", 1)[-1]) if re.search(r"\.v[0-9]+$", data["id"]) else 1
    try:
        stand_in = Playbook.model_validate(data)
    except ValidationError:
        return []
    return [p for p in check_playbook(stand_in, doc) if p.step or re.split(r"[.\[]", p.field)[0] not in bad]


def load_playbook(source: Path | dict[str, Any]) -> Playbook:
    """A valid playbook from a file or from data (an inline definition); raise PlaybookError with every problem."""
    doc = read_document(source) if isinstance(source, Path) else Document(data=source, file="<inline>")
    playbook, problems = validate_document(doc)
    if problems or playbook is None:
        raise PlaybookError(problems)
    return playbook


@dataclass
class Library:
    """The playbooks found under some paths, by id, with every problem found; templates kept apart."""

    playbooks: dict[str, Playbook] = field(default_factory=dict)
    files: dict[str, Path] = field(default_factory=dict)
    templates: dict[str, Playbook] = field(default_factory=dict)
    """Files with ``template: true``: validated like any playbook, never run or published."""
    template_files: dict[str, Path] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    checked: int = 0


def load_library(paths: list[Path]) -> Library:
    """Load every playbook file under paths (folders recursively); two files with one id is an error."""
    library = Library()
    for path in playbook_files(paths):
        library.checked += 1
        try:
            doc = read_document(path)
        except PlaybookError as exc:
            library.problems.extend(exc.problems)
            continue
        playbook, problems = validate_document(doc)
        library.problems.extend(problems)
        if playbook is None or problems:
            continue
        if playbook.template:
            library.templates[playbook.id] = playbook
            library.template_files[playbook.id] = path
            continue
        if playbook.id in library.playbooks:
            first = library.files[playbook.id]
            library.problems.append(
                Problem(
                    Group.semantics,
                    "id",
                    f"playbook id {playbook.id!r} is also defined in {first}",
                    str(path),
                    doc.line(("id",)),
                )
            )
            continue
        library.playbooks[playbook.id] = playbook
        library.files[playbook.id] = path
    return library
