"""The one generic interpreter of playbooks on Temporal."""

from .dispatch import HANDLERS, handles
from .playbook import PlaybookWorkflow

__all__ = ["HANDLERS", "PlaybookWorkflow", "handles"]
