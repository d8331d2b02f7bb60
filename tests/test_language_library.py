"""The playbook library: every file is valid, its examples make sense, the JSON Schema accepts it, and a
registered step type is checked like a built-in one."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from pydantic import BaseModel, ConfigDict, Field

import model
from model import Playbook, validate_values
from model.loader import read_document
from model.schema import playbook_schema
from model.steps import APPROVAL_FORM, SMART_CODE, registered_step_types

ROOT = Path(__file__).resolve().parent.parent
LIBRARY = ROOT / "playbooks"
FILES = sorted(p for p in LIBRARY.rglob("*") if p.suffix in (".yaml", ".yml"))
SEEDS = ("customer.create.v1", "appointment.book.v1", "workorder.create.v1")
WRITERS = ("entity", "transaction", "relationship")
GENERATED = ("entity_id", "transaction_id", "relationship_id")


@pytest.fixture(scope="module")
def library() -> model.Library:
    return model.load_library([LIBRARY])


def _examples(lib: model.Library) -> Iterator[tuple[Playbook, model.Example]]:
    for playbook in lib.playbooks.values():
        for example in playbook.examples:
            yield playbook, example


def test_library_has_no_problems(library: model.Library) -> None:
    assert library.problems == [], "\n".join(map(str, library.problems))
    assert library.checked == len(FILES) >= 3
    assert set(SEEDS) <= set(library.playbooks)
    for playbook_id, path in library.files.items():
        assert path.name == f"{playbook_id}.yaml"
        assert path.parent.name == library.playbooks[playbook_id].module


@pytest.mark.parametrize("playbook_id", SEEDS)
def test_seed_playbooks_are_documented_by_examples(library: model.Library, playbook_id: str) -> None:
    playbook = library.playbooks[playbook_id]
    assert playbook.status == "published"
    assert playbook.examples, f"{playbook_id} needs at least one example"
    assert any(e.expect.status == "completed" for e in playbook.examples)
    people = [step for _, step in playbook.walk() if step.type in ("human", "approval")]
    assert people, f"{playbook_id} has no human step"


def test_smart_codes_everywhere_data_is_written(library: model.Library) -> None:
    import re

    for playbook in library.playbooks.values():
        assert re.match(SMART_CODE, playbook.smart_code)
        for _, step in playbook.walk():
            if step.type in WRITERS:
                assert step.smart_code and re.match(SMART_CODE, step.smart_code), f"{playbook.id}: {step.id}"


def test_examples_initial_data_is_valid(library: model.Library) -> None:
    checked = 0
    for playbook, example in _examples(library):
        result = validate_values(playbook.inputs, example.initial_data)
        assert result.ok, f"{playbook.id} / {example.name}: {result.errors}"
        checked += 1
    assert checked >= len(SEEDS)


def test_examples_complete_people_steps_with_valid_data_and_role(library: model.Library) -> None:
    for playbook, example in _examples(library):
        seen: set[str] = set()
        for completion in example.complete:
            where = f"{playbook.id} / {example.name} / {completion.step_id}"
            step = playbook.step(completion.step_id)
            assert step.type in ("human", "approval"), where
            form = step.with_.form if step.type == "human" else APPROVAL_FORM  # type: ignore[union-attr]
            result = validate_values(form, completion.data)
            assert result.ok, f"{where}: {result.errors}"
            role = step.with_.assignee_role  # type: ignore[union-attr]
            if role:
                assert completion.role == role, f"{where}: role {completion.role!r}, step wants {role!r}"
            assert completion.step_id not in seen or step.type == "approval", f"{where}: completed twice"
            seen.add(completion.step_id)


def test_examples_expect_declared_deterministic_outputs(library: model.Library) -> None:
    for playbook, example in _examples(library):
        where = f"{playbook.id} / {example.name}"
        assert set(example.expect.outputs) <= set(playbook.outputs), where
        for name in example.expect.outputs:
            template = json.dumps(playbook.outputs[name])
            assert not any(g in template for g in GENERATED), f"{where}: output {name} is generated, not expected"
        if example.expect.status == "failed":
            assert example.expect.error, f"{where}: a failing example says why"


# ---------------------------------------------------------------- the JSON Schema of the language
def _schema() -> dict[str, Any]:
    return playbook_schema()


def _errors(schema: dict[str, Any], data: Any) -> list[str]:
    validator = jsonschema.Draft202012Validator(schema)
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message[:200]}" for e in validator.iter_errors(data)]


def test_schema_is_a_valid_draft_2020_12_schema() -> None:
    jsonschema.Draft202012Validator.check_schema(_schema())


def test_schema_refuses_obvious_mistakes() -> None:
    schema = _schema()
    good = read_document(LIBRARY / "crm" / "customer.create.v1.yaml").data
    assert _errors(schema, {**good, "stpes": []})
    assert _errors(schema, {k: v for k, v in good.items() if k != "id"})
    assert _errors(schema, {**good, "smart_code": "HERA.crm.x.v1"})
    assert _errors(schema, {**good, "steps": [{**good["steps"][0], "timeout": "2 weeks"}]})


@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_schema_validates_every_library_file(path: Path) -> None:
    assert _errors(_schema(), read_document(path).data) == []


def test_schema_refuses_unknown_field_in_with() -> None:
    data = read_document(LIBRARY / "crm" / "customer.create.v1.yaml").data
    step = data["steps"][0]
    assert step["type"] == "entity"
    data["steps"] = [{**step, "with": {**step["with"], "feilds": {}}}]
    data["outputs"], data["success_criteria"], data["examples"] = {}, [], []
    assert _errors(_schema(), data)


def _cli_schema() -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-c", "from starter.cli import main; main()", "schema"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    return json.loads(done.stdout)


@pytest.fixture(scope="module")
def cli_schema() -> dict[str, Any]:
    if not (ROOT / "starter" / "cli.py").exists():
        pytest.skip("starter/cli.py is not written yet")
    return _cli_schema()


def test_cli_schema_is_the_language_schema(cli_schema: dict[str, Any]) -> None:
    assert cli_schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(cli_schema)
    assert cli_schema["$defs"] == _schema()["$defs"]
    assert cli_schema["properties"] == _schema()["properties"]


def test_cli_schema_validates_every_library_file(cli_schema: dict[str, Any]) -> None:
    for path in FILES:
        assert _errors(cli_schema, read_document(path).data) == [], path


# ---------------------------------------------------------------- registered step types
class UploadWith(BaseModel):
    model_config = ConfigDict(extra="forbid")

    host: str = Field(min_length=1)
    port: int = Field(default=21, ge=1, le=65535)
    path: str


@pytest.fixture
def sftp_upload() -> Iterator[str]:
    name = "sftp_upload"
    model.register_step_type(name, UploadWith)
    assert name in registered_step_types()
    yield name
    from model import steps

    steps._REGISTRY.pop(name, None)  # no public unregister: keep other tests independent


HEAD = """\
id: demo.custom.v1
name: Custom step
version: 1
module: ops
smart_code: HERA.OPS.DEMO.PLAYBOOK.v1
inputs:
  file_name: {type: string, required: true}
steps:
"""


def _load(tmp_path: Path, steps: str) -> list[model.Problem]:
    (tmp_path / "demo.custom.v1.yaml").write_text(HEAD + textwrap.dedent(steps), encoding="utf-8")
    return model.load_library([tmp_path]).problems


def test_unregistered_type_is_refused(tmp_path: Path) -> None:
    problems = _load(tmp_path, "  - id: up\n    type: sftp_upload\n    with: {host: h, path: p}\n")
    assert [(p.field, p.line, p.step) for p in problems] == [("type", 10, "up")]
    assert "unknown step type 'sftp_upload'" in problems[0].message


def test_registered_type_is_accepted(tmp_path: Path, sftp_upload: str) -> None:
    problems = _load(
        tmp_path,
        """\
        - id: up
          type: sftp_upload
          timeout: 5m
          retry: {max_attempts: 4, initial_interval: 10s}
          with: {host: sftp.example.com, path: '/in/{{ inputs.file_name }}'}
        - id: after
          type: set
          with: {vars: {done: '{{ steps.up.status }}'}}
        """,
    )
    assert problems == []
    playbook = model.load_playbook(tmp_path / "demo.custom.v1.yaml")
    step = playbook.step("up")
    assert step.type == "sftp_upload"
    assert step.with_ == {"host": "sftp.example.com", "path": "/in/{{ inputs.file_name }}"}


def test_registered_type_with_is_checked_with_lines(tmp_path: Path, sftp_upload: str) -> None:
    problems = _load(
        tmp_path,
        """\
        - id: up
          type: sftp_upload
          with:
            host: sftp.example.com
            port: 70000
            pth: /in
        """,
    )
    found = {(p.field, p.line, p.step, p.group) for p in problems}
    assert found == {
        ("with.path", 11, "up", model.Group.schema),
        ("with.port", 13, "up", model.Group.schema),
        ("with.pth", 14, "up", model.Group.schema),
    }, "\n".join(map(str, problems))
    messages = {p.field: p.message for p in problems}
    assert messages["with.path"] == "is required"
    assert "less than or equal to 65535" in messages["with.port"]
    assert "unknown field" in messages["with.pth"]


def test_registered_type_nested_and_expressions_checked(tmp_path: Path, sftp_upload: str) -> None:
    problems = _load(
        tmp_path,
        """\
        - id: fan_out
          type: parallel
          with:
            steps:
              - id: up
                type: sftp_upload
                with: {host: '', path: '{{ inpts.file_name }}'}
        """,
    )
    found = {(p.field, p.line, p.step) for p in problems}
    assert found == {("with.host", 15, "up"), ("with.path", 15, "up")}, "\n".join(map(str, problems))
    by_field = {p.field: p.message for p in problems}
    assert "at least 1 character" in by_field["with.host"]
    assert "unknown name 'inpts'" in by_field["with.path"]


def test_registered_type_common_fields_are_still_strict(tmp_path: Path, sftp_upload: str) -> None:
    problems = _load(tmp_path, "  - id: up\n    type: sftp_upload\n    retires: 3\n    with: {host: h, path: p}\n")
    assert [(p.field, p.line) for p in problems] == [("retires", 11)]


def test_builtin_names_cannot_be_registered() -> None:
    for name in ("entity", "http", "webhook", "Not-A-Name"):
        with pytest.raises(ValueError):
            model.register_step_type(name, UploadWith)


def test_registered_type_accepts_templates_for_typed_fields(tmp_path: Path, sftp_upload: str) -> None:
    head_inputs = "  port: {type: integer, default: 22}\n"
    text = HEAD.replace("steps:\n", head_inputs + "steps:\n")
    text += "  - id: up\n    type: sftp_upload\n    with: {host: h, port: '{{ inputs.port }}', path: p}\n"
    (tmp_path / "demo.custom.v1.yaml").write_text(text, encoding="utf-8")
    assert model.load_library([tmp_path]).problems == []
