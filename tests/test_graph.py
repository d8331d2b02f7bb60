"""`playbook graph`: the Mermaid flowchart draws groups, switch branches, foreach bodies and conditions."""

from __future__ import annotations

from model import load_playbook
from model.graph import mermaid

FLOW = {
    "id": "graph.demo.v1", "name": "Graph demo", "version": 1, "module": "ops", "smart_code": "HERA.OPS.GRAPH.DEMO.v1",
    "inputs": {"n": {"type": "integer", "default": 1}},
    "steps": [
        {"id": "start", "type": "set", "with": {"vars": {"x": 1}}},
        {"id": "both", "type": "parallel", "with": {"steps": [
            {"id": "left", "type": "set", "with": {"vars": {"l": 1}}},
            {"id": "right", "type": "human", "with": {"assignee_role": "ops", "instructions": "Check"}}]}},
        {"id": "route", "type": "switch", "with": {
            "cases": [{"when": "inputs.n > 1", "steps": [{"id": "many", "type": "set", "with": {"vars": {"m": 1}}}]}],
            "default": [{"id": "one", "type": "set", "with": {"vars": {"o": 1}}}]}},
        {"id": "each", "type": "foreach", "with": {"items": [1, 2], "as": "row", "steps": [
            {"id": "body", "type": "set", "with": {"vars": {"b": "{{ row }}"}}}]}},
        {"id": "gate", "type": "approval", "when": "vars.x == 1", "with": {"assignee_role": "lead"}},
    ],
}  # fmt: skip


def test_graph_draws_every_kind_of_structure() -> None:
    graph = mermaid(load_playbook(FLOW))
    lines = graph.splitlines()
    assert lines[0] == "flowchart TD"
    assert '  subgraph both["Both (parallel)"]' in lines
    assert '  subgraph route["Route (switch)"]' in lines
    assert '    route__0(("when inputs.n > 1"))' in lines and '    route__1(("default"))' in lines
    assert "  route__0 --> many" in lines and "  route__1 --> one" in lines
    assert '  subgraph each["Each (foreach)"]' in lines and '    each__0(("each row"))' in lines
    assert "  each__0 --> body" in lines
    assert any(line.startswith('  right[/"Right<br/><small>human</small><br/>👤 ops"/]') for line in lines)
    assert "  each -->|if vars.x == 1| gate" in lines
    assert "  start --> both" in lines and "  both --> route" in lines
