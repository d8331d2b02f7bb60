"""A worker process: PlaybookWorkflow and every step activity on one task queue."""

from .worker import PASSTHROUGH, build_worker, run_worker, workflow_runner

__all__ = ["PASSTHROUGH", "build_worker", "run_worker", "workflow_runner"]
