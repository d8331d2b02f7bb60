"""The one generic interpreter of playbooks on Temporal."""

from .playbook import HANDLERS, PlaybookWorkflow, RunState, handles

__all__ = ["HANDLERS", "PlaybookWorkflow", "RunState", "handles"]
