"""Start, signal and query playbook executions: the `playbook` CLI and a typed client for services."""
