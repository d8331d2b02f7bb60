"""The playbook language: typed model, YAML loader, sandboxed expressions and validator.

Used by workflows, activities and starter alike; imports neither Temporal worker code nor a database.
"""

from .playbook import MODULES, OPS_CATEGORIES, Example, Playbook
from .problems import Group, PlaybookError, Problem
from .steps import Step, register_step_type
from .validator import Library, load_library, load_playbook, validate_document
from .variables import FieldError, Variable, json_schema, validate_values

__all__ = [
    "MODULES",
    "OPS_CATEGORIES",
    "Example",
    "FieldError",
    "Group",
    "Library",
    "Playbook",
    "PlaybookError",
    "Problem",
    "Step",
    "Variable",
    "json_schema",
    "load_library",
    "load_playbook",
    "register_step_type",
    "validate_document",
    "validate_values",
]
