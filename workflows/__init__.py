"""The one generic interpreter of playbooks on Temporal."""

from .dispatch import HANDLERS, handles
from .notes import PlaybookNoteWorkflow
from .playbook import PlaybookWorkflow

__all__ = ["HANDLERS", "PlaybookNoteWorkflow", "PlaybookWorkflow", "handles"]
