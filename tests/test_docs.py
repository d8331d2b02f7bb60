"""The documentation: `playbook list --format`, the generated playbooks/README.md, and docs/authoring.md
(its playbooks validate, its file references exist, its commands exist, its custom step type runs)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from temporalio.testing import WorkflowEnvironment

from model import load_library, load_playbook, steps
from model.graph import mermaid
from runtime.worker import build_script_worker
from starter.cli import build_parser
from starter.docs import REGENERATE, readme
from starter.examples import Case, run_examples
from tests.fixtures_temporal import running_worker
from tests.test_library_examples import LIBRARY, LIBRARY_DIR

ROOT = Path(__file__).resolve().parent.parent
README = LIBRARY_DIR / "README.md"
GUIDE = ROOT / "docs" / "authoring.md"


def playbook(*args: str, library: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from starter.cli import main; main()", *args],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "PLAYBOOKS_DIR": str(library)},
    )  # fmt: skip


@pytest.fixture
def small_library(tmp_path: Path) -> Path:
    """Three playbooks of two modules, one of them with a description that needs escaping."""
    library = tmp_path / "library"
    for source in ("crm/customer.create.v1.yaml", "salon/appointment.book.v1.yaml"):
        (library / source).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(LIBRARY_DIR / source, library / source)
    (library / "crm" / "pipe.demo.v1.yaml").write_text(
        textwrap.dedent("""\
            id: pipe.demo.v1
            name: Pipes
            version: 1
            module: crm
            smart_code: HERA.CRM.PIPE.PLAYBOOK.v1
            description: |
              Splits A|B
              over <two> lines.
            steps:
              - {id: only, type: set, with: {vars: {x: 1}}}
            """)
    )
    return library


# ---------------------------------------------------------------------------- playbook list
def test_list_markdown_is_one_table_grouped_by_module(small_library: Path) -> None:
    done = playbook("list", "--format", "markdown", library=small_library)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "| id | module | category | steps | human steps | description |",
        "|---|---|---|--:|--:|---|",
        "| [customer.create.v1](crm/customer.create.v1.yaml) | crm | onboarding | 3 | 2 "
        "| Create a customer, set credit terms, approve large limits. |",
        "| [pipe.demo.v1](crm/pipe.demo.v1.yaml) | crm | — | 1 | 0 | Splits A\\|B over &lt;two> lines. |",
        "| [appointment.book.v1](salon/appointment.book.v1.yaml) | salon | booking | 10 | 1 "
        f"| {' '.join((load_playbook(small_library / 'salon/appointment.book.v1.yaml').description or '').split())} |",
    ]
    salon = playbook("list", "--format", "markdown", "--module", "salon", library=small_library).stdout
    assert [line.split(" | ")[1] for line in salon.splitlines()[2:]] == ["salon"]


def test_list_json_alias_and_text(small_library: Path) -> None:
    as_json = json.loads(playbook("list", "--json", library=small_library).stdout)
    assert as_json == json.loads(playbook("list", "--format", "json", library=small_library).stdout)
    assert [r["id"] for r in as_json] == ["customer.create.v1", "pipe.demo.v1", "appointment.book.v1"]
    assert as_json[0] == {
        "id": "customer.create.v1", "name": "Customer onboarding", "module": "crm", "category": "onboarding",
        "status": "published", "steps": 3, "human_steps": 2,
        "description": "Create a customer, set credit terms, approve large limits.",
    }  # fmt: skip
    text = playbook("list", library=small_library).stdout.splitlines()
    assert [line.split()[0] for line in text] == ["customer.create.v1", "pipe.demo.v1", "appointment.book.v1"]
    assert "   3 steps  2 human  Customer onboarding" in text[0]


# ---------------------------------------------------------------------------- playbooks/README.md
def test_committed_readme_is_up_to_date() -> None:
    if LIBRARY.problems:
        pytest.fail("the library has problems (see test_language_library): fix them, then regenerate the README")
    if not README.exists() or README.read_text() != readme(LIBRARY, LIBRARY_DIR):
        pytest.fail(f"playbooks/README.md is out of date; regenerate it: .venv/bin/{REGENERATE}", pytrace=False)


def test_readme_has_the_table_and_a_graph_per_playbook() -> None:
    text = readme(LIBRARY, LIBRARY_DIR)
    rows = re.findall(r"^\| \[([^\]]+)\]\(([^)#]+\.yaml)\) \|", text, flags=re.MULTILINE)
    assert sorted(playbook_id for playbook_id, _ in rows) == sorted(LIBRARY.playbooks)
    assert [target for _, target in rows if not (LIBRARY_DIR / target).is_file()] == []
    assert text.count("```mermaid\n") == len(LIBRARY.playbooks)
    for playbook_ in LIBRARY.playbooks.values():
        assert f"```mermaid\n{mermaid(playbook_)}```" in text


def test_docs_writes_the_readme_only_from_a_valid_library(small_library: Path, tmp_path: Path) -> None:
    target = small_library / "README.md"
    done = playbook("docs", "-o", str(target), library=small_library)
    assert done.returncode == 0, done.stderr
    assert target.read_text() == readme(load_library([small_library]), small_library)
    assert playbook("docs", library=small_library).stdout == target.read_text()

    (small_library / "crm" / "broken.v1.yaml").write_text("id: broken.v1\n")
    target.unlink()
    done = playbook("docs", "-o", str(target), library=small_library)
    assert done.returncode == 1
    assert re.fullmatch(r"playbook: \d+ problem\(s\) in \S+; run: playbook validate \S+\n", done.stderr)
    assert not target.exists()


# ---------------------------------------------------------------------------- docs/authoring.md
def _blocks(language: str) -> Iterator[str]:
    yield from re.findall(rf"^```{language}\n(.*?)^```$", GUIDE.read_text(), flags=re.DOTALL | re.MULTILINE)


def _guide_playbooks(folder: Path) -> list[Path]:
    """The guide's whole playbooks, written to `folder` as <id>.yaml; fragments must still be well-formed."""
    from model.loader import parse_yaml

    paths = []
    for block in _blocks("yaml"):
        data = parse_yaml(block, "authoring.md").data
        if isinstance(data, dict) and {"id", "steps"} <= set(data):
            paths.append(folder / f"{data['id']}.yaml")
            paths[-1].write_text(block)
    return paths


def test_guide_playbooks_validate(guide_step_type: dict[str, Any], tmp_path: Path) -> None:
    paths = _guide_playbooks(tmp_path)
    assert len(paths) >= 3
    library = load_library(paths)
    assert library.problems == [], "\n".join(map(str, library.problems))


def test_guide_references_exist() -> None:
    text = GUIDE.read_text()
    files = set(re.findall(r"\b(playbooks/[a-z]+/[a-z0-9_.]+\.yaml)\b", text))
    assert files, "the guide quotes library playbooks"
    assert [f for f in sorted(files) if not (ROOT / f).is_file()] == []
    commands = set(re.findall(r"^\s*(?:\$ )?playbook ([a-z]+)", "\n".join(_blocks("sh")), flags=re.MULTILINE))
    known = set(build_parser()._subparsers._group_actions[0].choices)  # type: ignore[union-attr]
    assert commands and commands <= known, commands - known


@pytest.fixture
def guide_step_type() -> Iterator[dict[str, Any]]:
    """The guide's custom step type, registered by running its Python example; unregistered after."""
    from activities.steps import STEP_HANDLERS

    (code,) = _blocks("python")
    namespace: dict[str, Any] = {"__name__": "guide_example"}
    exec(compile(code, str(GUIDE), "exec"), namespace)
    yield namespace
    name = "sftp_upload"
    STEP_HANDLERS.pop(name, None)
    steps._REGISTRY.pop(name, None)  # no public unregister: keep other tests independent


async def test_guide_playbooks_run_their_examples(
    guide_step_type: dict[str, Any], temporal: WorkflowEnvironment, store: Any, tmp_path: Path, app_db: str
) -> None:
    """The guide's playbooks — its custom step type, `database` and `script` steps included — do what their
    examples say, with the `app` connection and a script worker as the guide describes."""
    playbooks = [load_playbook(path) for path in _guide_playbooks(tmp_path)]
    cases = [Case(playbook_, example, inline=True) for playbook_ in playbooks for example in playbook_.examples]
    assert {case.playbook.id for case in cases} >= {
        "contact.create.v1", "report.upload.v1", "report.archive.v1", "errors.summary.v1"
    }  # fmt: skip
    scripts = f"scripts-{uuid.uuid4()}"
    async with (
        build_script_worker(temporal.client, store, task_queue=scripts),
        running_worker(temporal.client, store, script_task_queue=scripts) as client,
    ):
        outcomes = await run_examples(client, cases, concurrency=8)
    failed = [line for outcome in outcomes if not outcome.passed for line in outcome.report()]
    assert failed == []
    upload = next(o for o in outcomes if o.playbook_id == "report.upload.v1")
    org = upload.execution_id.split("/")[0]  # type: ignore[union-attr]
    lines = await store.step_lines(await store.resolve_organization(org), upload.execution_id)
    assert [line["step_id"] for line in lines] == ["upload"]  # the custom step recorded its audit line


def test_documentation_names_only_what_a_user_can_open() -> None:
    """The design of record (SPEC) is not in the repository: the docs point at pages that are."""
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    assert [str(p.relative_to(ROOT)) for p in pages if re.search(r"\bSPEC\b", p.read_text())] == []
