"""Problems found in a playbook: where (file, line, step, field), what, and which group."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Group(StrEnum):
    syntax = "syntax"
    schema = "schema"
    semantics = "semantics"
    expressions = "expressions"


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a playbook, printed ``path:line: step <id>: <field>: <message>``."""

    group: Group
    field: str
    message: str
    file: str | None = None
    line: int | None = None
    step: str | None = None

    def __str__(self) -> str:
        where = f"{self.file or '<playbook>'}:{self.line or 0}: "
        step = f"step {self.step}: " if self.step else ""
        field = f"{self.field}: " if self.field else ""
        return f"{where}{step}{field}{self.message}"


class PlaybookError(Exception):
    """A playbook that cannot be used; carries every problem found."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))
