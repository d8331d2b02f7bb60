"""Invalid playbooks: each is refused with one problem naming the field, the rule and the line.

Every case is a small playbook written to a library folder and loaded with `model.load_library`, as
`playbook validate` does. The expected line is marked in the YAML with a trailing ``#<`` comment (or
given explicitly where a comment cannot mark it), so the numbers stay right when a case is edited.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

import model
from model import Group, Problem

HEAD = """\
id: demo.check.v1
name: Demo check
version: 1
module: ops
smart_code: HERA.OPS.DEMO.PLAYBOOK.v1
"""
INPUTS = """\
inputs:
  amount: {type: integer, required: true}
"""
SET_A = """\
steps:
  - {id: a, type: set, with: {vars: {x: 1}}}
"""
FILE = "demo.check.v1.yaml"


def doc(*parts: str) -> str:
    return "".join(textwrap.dedent(p) for p in parts)


@dataclass
class Case:
    name: str
    text: str
    field: str
    message: tuple[str, ...]
    group: Group
    step: str | None = None
    line: int | None = None  # default: the line marked with "#<"
    file: str = FILE

    def expected_line(self) -> int:
        if self.line is not None:
            return self.line
        marked = [i for i, text in enumerate(self.text.splitlines(), 1) if text.rstrip().endswith("#<")]
        assert len(marked) == 1, f"case {self.name} must mark exactly one line with #<"
        return marked[0]


SYN, SCH, SEM, EXP = Group.syntax, Group.schema, Group.semantics, Group.expressions

CASES = [
    # ------------------------------------------------------------------ YAML
    Case(
        "yaml_mapping_values",
        doc(HEAD, "description: Run it: now  #<\n", SET_A),
        "",
        ("YAML syntax", "mapping values are not allowed here"),
        SYN,
    ),
    Case(
        "yaml_tab_indent",
        doc(HEAD, "steps:\n\t- {id: a, type: set, with: {vars: {x: 1}}}  #<\n"),
        "",
        ("YAML syntax", "'\\t'"),
        SYN,
    ),
    Case("yaml_empty_file", "", "", ("the file is empty",), SYN, line=1),
    Case("yaml_not_a_mapping", "- id: a  #<\n- id: b\n", "", ("a playbook is a mapping of fields",), SCH),
    Case(
        "yaml_key_not_scalar",
        doc(HEAD, "[a, b]: 1  #<\n", SET_A),
        "",
        ("a mapping key must be a string or a number",),
        SYN,
    ),
    Case(
        "duplicate_key_top_level",
        doc(HEAD, "name: Again  #<\n", SET_A),
        "name",
        ("duplicate key (first defined on line 2)",),
        SYN,
    ),
    Case(
        "duplicate_key_in_step",
        doc(
            HEAD,
            """\
            steps:
              - id: a
                type: set
                type: wait  #<
                with: {vars: {x: 1}}
            """,
        ),
        "steps[0].type",
        ("duplicate key (first defined on line 8)",),
        SYN,
    ),
    Case(
        "duplicate_key_in_nested_with",
        doc(
            HEAD,
            """\
            steps:
              - id: fan_out
                type: parallel
                with:
                  steps:
                    - id: tell_ops
                      type: notification
                      with:
                        channel: log
                        to: ops
                        channel: email  #<
                        body: hello
            """,
        ),
        "steps[0].with.steps[0].with.channel",
        ("duplicate key (first defined on line 14)",),
        SYN,
    ),
    Case(
        "yaml12_no_is_not_false",
        doc(HEAD, "inputs:\n  note: {type: string, required: no}  #<\n", SET_A),
        "inputs.note.required",
        ("boolean",),
        SCH,
    ),
    Case(
        "yaml12_on_is_not_true",
        doc(HEAD, "inputs:\n  secret: {type: string, sensitive: on}  #<\n", SET_A),
        "inputs.secret.sensitive",
        ("boolean",),
        SCH,
    ),
    Case(
        "yaml12_010_is_ten_not_octal",
        doc(HEAD, "inputs:\n  n: {type: integer, maximum: 010, default: 11}  #<\n", SET_A),
        "inputs.n",
        ("default: does not satisfy its own constraints", "must be <= 10", "(maximum)"),
        SCH,
    ),
    # ------------------------------------------------------------------ required fields
    Case(
        "missing_id",
        "name: Demo\nversion: 1\nmodule: ops\nsmart_code: HERA.OPS.DEMO.PLAYBOOK.v1\n" + SET_A,
        "id",
        ("is required",),
        SCH,
        line=1,
    ),
    Case(
        "missing_name",
        "id: demo.check.v1\nversion: 1\nmodule: ops\nsmart_code: HERA.OPS.DEMO.PLAYBOOK.v1\n" + SET_A,
        "name",
        ("is required",),
        SCH,
        line=1,
    ),
    Case("missing_steps", HEAD, "steps", ("is required",), SCH, line=1),
    Case("empty_steps", doc(HEAD, "steps: []  #<\n"), "steps", ("at least 1 item",), SCH),
    Case(
        "missing_playbook_smart_code",
        "id: demo.check.v1\nname: Demo\nversion: 1\nmodule: ops\n" + SET_A,
        "smart_code",
        ("is required",),
        SCH,
        line=1,
    ),
    Case(
        "missing_smart_code_entity",
        doc(HEAD, "steps:\n  - id: a  #<\n    type: entity\n    with: {entity_type: customer, entity_name: X}\n"),
        "smart_code",
        ("is required",),
        SCH,
        step="a",
    ),
    Case(
        "missing_smart_code_transaction",
        doc(HEAD, "steps:\n  - id: a  #<\n    type: transaction\n    with: {transaction_type: sale}\n"),
        "smart_code",
        ("is required",),
        SCH,
        step="a",
    ),
    Case(
        "missing_smart_code_relationship",
        doc(
            HEAD,
            "steps:\n  - id: a  #<\n    type: relationship\n"
            "    with: {from_entity_id: x, to_entity_id: y, relationship_type: owns}\n",
        ),
        "smart_code",
        ("is required",),
        SCH,
        step="a",
    ),
    Case(
        "missing_instructions_human",
        doc(HEAD, "steps:\n  - id: ask\n    type: human\n    with: {assignee_role: ops}  #<\n"),
        "with.instructions",
        ("is required",),
        SCH,
        step="ask",
    ),
    # ------------------------------------------------------------------ unknown fields
    Case(
        "unknown_top_level_field",
        doc(HEAD, "descripton: typo  #<\n", SET_A),
        "descripton",
        ("unknown field",),
        SCH,
    ),
    Case(
        "unknown_step_field",
        doc(HEAD, "steps:\n  - id: a\n    type: set\n    retries: 3  #<\n    with: {vars: {x: 1}}\n"),
        "retries",
        ("unknown field",),
        SCH,
        step="a",
    ),
    Case(
        "unknown_field_in_with",
        doc(
            HEAD,
            """\
            steps:
              - id: make
                type: entity
                smart_code: HERA.OPS.DEMO.ENT.ITEM.v1
                with:
                  entity_type: item
                  entity_name: Widget
                  feilds: {colour: red}  #<
            """,
        ),
        "with.feilds",
        ("unknown field",),
        SCH,
        step="make",
    ),
    Case(
        "unknown_field_in_nested_step_with",
        doc(
            HEAD,
            """\
            steps:
              - id: fan_out
                type: parallel
                with:
                  steps:
                    - id: tell_ops
                      type: notification
                      with:
                        channel: log
                        to: ops
                        body: hello
                        cc: boss  #<
            """,
        ),
        "with.cc",
        ("unknown field",),
        SCH,
        step="tell_ops",
    ),
    Case(
        "unknown_field_in_form_variable",
        doc(
            HEAD,
            """\
            steps:
              - id: ask
                type: human
                with:
                  instructions: Fill it in.
                  form:
                    reason: {type: string, requird: true}  #<
            """,
        ),
        "with.form.reason.requird",
        ("unknown field",),
        SCH,
        step="ask",
    ),
    Case(
        "unknown_field_in_retry",
        doc(
            HEAD,
            """\
            steps:
              - id: call
                type: http
                retry: {max_attempts: 3, backoff: 2}  #<
                with: {url: 'https://api.example.com/ping'}
            """,
        ),
        "retry.backoff",
        ("unknown field",),
        SCH,
        step="call",
    ),
    # ------------------------------------------------------------------ ids, version, file
    Case(
        "bad_playbook_id",
        "id: Demo-Check.v1  #<\nname: Demo\nversion: 1\nmodule: ops\nsmart_code: HERA.OPS.DEMO.PLAYBOOK.v1\n" + SET_A,
        "id",
        ("'Demo-Check.v1' does not match",),
        SCH,
    ),
    Case(
        "playbook_id_without_version",
        "id: demo.check  #<\nname: Demo\nversion: 1\nmodule: ops\nsmart_code: HERA.OPS.DEMO.PLAYBOOK.v1\n" + SET_A,
        "id",
        ("'demo.check' does not match", ".v[0-9]+$"),
        SCH,
        file="demo.check.yaml",
    ),
    Case(
        "bad_step_id",
        doc(HEAD, "steps:\n  - id: Create-Customer  #<\n    type: set\n    with: {vars: {x: 1}}\n"),
        "id",
        ("'Create-Customer' does not match", "^[a-z][a-z0-9_]*$"),
        SCH,
        step="Create-Customer",
    ),
    Case(
        "version_differs_from_id",
        "id: demo.check.v1\nname: Demo\nversion: 2  #<\nmodule: ops\nsmart_code: HERA.OPS.DEMO.PLAYBOOK.v1\n" + SET_A,
        "version",
        ("is 2 but the id 'demo.check.v1' ends in .v1",),
        SEM,
    ),
    Case(
        "file_name_differs_from_id",
        doc("id: demo.check.v1  #<\n", HEAD.split("\n", 1)[1], SET_A),
        "id",
        ("the file must be named demo.check.v1.yaml (found demo_check.yaml)",),
        SEM,
        file="demo_check.yaml",
    ),
    Case(
        "unknown_module",
        HEAD.replace("module: ops", "module: marketing  #<") + SET_A,
        "module",
        ("'marketing' is not one of",),
        SCH,
    ),
    # ------------------------------------------------------------------ steps and the DAG
    Case(
        "unknown_step_type",
        doc(HEAD, "steps:\n  - id: a\n    type: emial  #<\n    with: {to: ops}\n"),
        "type",
        ("unknown step type 'emial'", "known:", "notification"),
        SCH,
        step="a",
    ),
    Case(
        "duplicate_step_id",
        doc(
            HEAD,
            "steps:\n  - {id: a, type: set, with: {vars: {x: 1}}}\n  - {id: a, type: set, with: {vars: {y: 2}}}  #<\n",
        ),
        "id",
        ("duplicate step id 'a' (first on line 7)",),
        SEM,
        step="a",
    ),
    Case(
        "duplicate_step_id_nested",
        doc(
            HEAD,
            """\
            steps:
              - {id: a, type: set, with: {vars: {x: 1}}}
              - id: group
                type: sequential
                with:
                  steps:
                    - {id: b, type: set, with: {vars: {y: 1}}}
                    - {id: a, type: set, with: {vars: {z: 1}}}  #<
            """,
        ),
        "id",
        ("duplicate step id 'a' (first on line 7)",),
        SEM,
        step="a",
    ),
    Case(
        "depends_on_unknown_step",
        doc(
            HEAD,
            "steps:\n  - {id: a, type: set, with: {vars: {x: 1}}}\n  - id: b\n    type: set\n"
            "    depends_on: [a, zz]  #<\n    with: {vars: {y: 1}}\n",
        ),
        "depends_on[1]",
        ("unknown step 'zz'",),
        SEM,
        step="b",
    ),
    Case(
        "depends_on_itself",
        doc(HEAD, "steps:\n  - id: b\n    type: set\n    depends_on: [b]  #<\n    with: {vars: {y: 1}}\n"),
        "depends_on[0]",
        ("step 'b' cannot depend on itself",),
        SEM,
        step="b",
    ),
    Case(
        "depends_on_cycle",
        doc(
            HEAD,
            """\
            steps:
              - id: a
                type: set
                depends_on: [b]  #<
                with: {vars: {x: 1}}
              - id: b
                type: set
                depends_on: [a]
                with: {vars: {y: 1}}
            """,
        ),
        "depends_on",
        ("dependency cycle", "a -> b -> a"),
        SEM,
        step="a",
    ),
    Case(
        "depends_on_not_a_sibling",
        doc(
            HEAD,
            """\
            steps:
              - id: group
                type: sequential
                with:
                  steps:
                    - {id: inner, type: set, with: {vars: {x: 1}}}
              - id: after
                type: set
                depends_on: [inner]  #<
                with: {vars: {y: 1}}
            """,
        ),
        "depends_on[0]",
        ("step 'inner' is not in the same list",),
        SEM,
        step="after",
    ),
    Case(
        "bad_duration_wait",
        doc(HEAD, "steps:\n  - id: pause\n    type: wait\n    with: {duration: 10 minutes}  #<\n"),
        "with.duration",
        ("'10 minutes' is not a duration", "500ms, 30s, 5m, 48h, 2d"),
        SCH,
        step="pause",
    ),
    Case(
        "bad_duration_timeout",
        doc(HEAD, "steps:\n  - id: ask\n    type: human\n    timeout: 2w  #<\n    with: {instructions: Do it.}\n"),
        "timeout",
        ("'2w' is not a duration",),
        SCH,
        step="ask",
    ),
    Case(
        "zero_duration",
        doc(HEAD, "steps:\n  - id: pause\n    type: wait\n    with: {duration: 0s}  #<\n"),
        "with.duration",
        ("greater than zero",),
        SCH,
        step="pause",
    ),
    Case(
        "bad_smart_code_playbook",
        HEAD.replace("HERA.OPS.DEMO.PLAYBOOK.v1", "HERA.ops.demo.v1  #<") + SET_A,
        "smart_code",
        ("'HERA.ops.demo.v1' does not match", "^HERA"),
        SCH,
    ),
    Case(
        "bad_smart_code_step_too_short",
        doc(
            HEAD,
            "steps:\n  - id: a\n    type: entity\n    smart_code: HERA.CRM.v1  #<\n"
            "    with: {entity_type: c, entity_name: n}\n",
        ),
        "smart_code",
        ("'HERA.CRM.v1' does not match",),
        SCH,
        step="a",
    ),
    Case(
        "bad_smart_code_step_version",
        doc(
            HEAD,
            "steps:\n  - id: a\n    type: relationship\n    smart_code: HERA.CRM.CUST.REL.V1  #<\n"
            "    with: {from_entity_id: x, to_entity_id: y, relationship_type: owns}\n",
        ),
        "smart_code",
        ("'HERA.CRM.CUST.REL.V1' does not match",),
        SCH,
        step="a",
    ),
    Case(
        "bad_smart_code_on_line_reported_once",
        doc(
            HEAD,
            """\
            steps:
              - id: sell
                type: transaction
                smart_code: HERA.CRM.TXN.SALE.v1
                with:
                  transaction_type: sale
                  lines:
                    - {quantity: 1, unit_price: 2, smart_code: HERA.CRM.LINE.V1}  #<
            """,
        ),
        "with.lines[0].smart_code",
        ("'HERA.CRM.LINE.V1' does not match",),
        SCH,
        step="sell",
    ),
    # ------------------------------------------------------------------ variables
    Case(
        "invalid_regex",
        doc(HEAD, "inputs:\n  code: {type: string, pattern: '^[A-Z+$'}  #<\n", SET_A),
        "inputs.code",
        ("pattern: not a valid regular expression",),
        SCH,
    ),
    Case(
        "default_below_minimum",
        doc(HEAD, "inputs:\n  n: {type: integer, minimum: 1, default: 0}  #<\n", SET_A),
        "inputs.n",
        ("default: does not satisfy its own constraints", "(minimum)"),
        SCH,
    ),
    Case(
        "default_not_an_option",
        doc(HEAD, "inputs:\n  size: {type: select, options: [S, M, L], default: XL}  #<\n", SET_A),
        "inputs.size",
        ("default: does not satisfy its own constraints", "(options)"),
        SCH,
    ),
    Case(
        "default_against_pattern",
        doc(HEAD, "inputs:\n  code: {type: string, pattern: '^[A-Z]{3}$', default: abc}  #<\n", SET_A),
        "inputs.code",
        ("default: does not satisfy its own constraints", "(pattern)"),
        SCH,
    ),
    Case(
        "select_without_options",
        doc(HEAD, "inputs:\n  size: {type: select}  #<\n", SET_A),
        "inputs.size",
        ("options: a select field needs a non-empty list of options",),
        SCH,
    ),
    Case(
        "multi_select_with_empty_options_in_form",
        doc(
            HEAD,
            """\
            steps:
              - id: ask
                type: human
                with:
                  instructions: Tag it.
                  form:
                    tags: {type: multi_select, options: []}  #<
            """,
        ),
        "with.form.tags",
        ("options: a multi_select field needs a non-empty list of options",),
        SCH,
        step="ask",
    ),
    Case(
        "unknown_variable_type",
        doc(HEAD, "inputs:\n  price: {type: decimal}  #<\n", SET_A),
        "inputs.price.type",
        ("'decimal' is not one of",),
        SCH,
    ),
    Case(
        "minimum_above_maximum",
        doc(HEAD, "inputs:\n  n: {type: integer, minimum: 10, maximum: 1}  #<\n", SET_A),
        "inputs.n",
        ("minimum: greater than maximum",),
        SCH,
    ),
    # ------------------------------------------------------------------ step-type rules
    Case(
        "approvals_required_zero",
        doc(HEAD, "steps:\n  - id: ok\n    type: approval\n    with:\n      approvals_required: 0  #<\n"),
        "with.approvals_required",
        ("greater than or equal to 1",),
        SCH,
        step="ok",
    ),
    Case(
        "escalate_without_escalate_to",
        doc(
            HEAD,
            "steps:\n  - id: ask\n    type: human\n    timeout: 1h\n    with:  #<\n"
            "      instructions: Do it.\n      on_timeout: escalate\n",
        ),
        "with",
        ("escalate_to", "on_timeout escalate needs escalate_to"),
        SCH,
        step="ask",
    ),
    Case(
        "wait_with_duration_and_until",
        doc(
            HEAD, "steps:\n  - id: pause\n    type: wait\n    with: {duration: 5m, until: '2035-01-01T00:00:00Z'}  #<\n"
        ),
        "with",
        ("give exactly one of duration, until",),
        SCH,
        step="pause",
    ),
    Case(
        "wait_with_neither_duration_nor_until",
        doc(HEAD, "steps:\n  - id: pause\n    type: wait\n    with: {}  #<\n"),
        "with",
        ("give exactly one of duration, until",),
        SCH,
        step="pause",
    ),
    Case(
        "foreach_concurrency_501",
        doc(
            HEAD,
            """\
            steps:
              - id: each
                type: foreach
                with:
                  items: [1, 2]
                  concurrency: 501  #<
                  steps:
                    - {id: one, type: set, with: {vars: {x: '{{ item }}'}}}
            """,
        ),
        "with.concurrency",
        ("less than or equal to 500",),
        SCH,
        step="each",
    ),
    Case(
        "on_error_unknown_value",
        doc(HEAD, "steps:\n  - id: a\n    type: set\n    on_error: ignore  #<\n    with: {vars: {x: 1}}\n"),
        "on_error",
        ("'ignore' is not one of", "'fail'", "'continue'"),
        SCH,
        step="a",
    ),
    Case(
        "validation_without_rules",
        doc(HEAD, "steps:\n  - id: check\n    type: validation\n    with: {}  #<\n"),
        "with",
        ("needs at least one of rules, unique, exists",),
        SCH,
        step="check",
    ),
    Case(
        "set_bad_variable_name",
        doc(HEAD, "steps:\n  - id: a\n    type: set\n    with: {vars: {Total-Amount: 1}}  #<\n"),
        "with.vars",
        ("'Total-Amount' is not a variable name",),
        SCH,
        step="a",
    ),
    # ------------------------------------------------------------------ expressions
    Case(
        "unknown_input_name",
        doc(HEAD, INPUTS, "steps:\n  - id: a\n    type: set\n    with: {vars: {x: '{{ inputs.amont }}'}}  #<\n"),
        "with.vars.x",
        ("inputs.amont: no such input",),
        EXP,
        step="a",
    ),
    Case(
        "misspelled_root_name",
        doc(HEAD, INPUTS, "steps:\n  - id: a\n    type: set\n    with: {vars: {x: '{{ inpts.amount }}'}}  #<\n"),
        "with.vars.x",
        ("unknown name 'inpts'", "in scope: execution, inputs, steps, vars"),
        EXP,
        step="a",
    ),
    Case(
        "unknown_step_reference",
        doc(HEAD, "steps:\n  - id: a\n    type: set\n    with: {vars: {x: '{{ steps.nope.output }}'}}  #<\n"),
        "with.vars.x",
        ("steps.nope: no such step",),
        EXP,
        step="a",
    ),
    Case(
        "step_referenced_before_it_runs",
        doc(
            HEAD,
            "steps:\n  - id: a\n    type: set\n    with: {vars: {x: '{{ steps.b.output }}'}}  #<\n"
            "  - {id: b, type: set, with: {vars: {y: 1}}}\n",
        ),
        "with.vars.x",
        ("steps.b: cannot have run before this step",),
        EXP,
        step="a",
    ),
    Case(
        "step_referenced_from_concurrent_sibling",
        doc(
            HEAD,
            """\
            steps:
              - id: fan_out
                type: parallel
                with:
                  steps:
                    - {id: p1, type: set, with: {vars: {x: 1}}}
                    - {id: p2, type: set, with: {vars: {y: '{{ steps.p1.output }}'}}}  #<
            """,
        ),
        "with.vars.y",
        ("steps.p1: cannot have run before this step",),
        EXP,
        step="p2",
    ),
    Case(
        "step_referenced_with_empty_depends_on",
        doc(
            HEAD,
            """\
            steps:
              - {id: a, type: set, with: {vars: {x: 1}}}
              - id: b
                type: set
                depends_on: []
                with: {vars: {y: '{{ steps.a.output }}'}}  #<
            """,
        ),
        "with.vars.y",
        ("steps.a: cannot have run before this step",),
        EXP,
        step="b",
    ),
    Case(
        "bad_step_field",
        doc(
            HEAD,
            "steps:\n  - {id: a, type: set, with: {vars: {x: 1}}}\n  - id: b\n    type: set\n"
            "    with: {vars: {y: '{{ steps.a.outptu.x }}'}}  #<\n",
        ),
        "with.vars.y",
        ("steps.a.outptu: a step has status, output, data, completed_by, error",),
        EXP,
        step="b",
    ),
    Case(
        "undefined_var",
        doc(HEAD, "steps:\n  - id: a\n    type: set\n    with: {vars: {x: '{{ vars.totl }}'}}  #<\n"),
        "with.vars.x",
        ("vars.totl: no set step defines it",),
        EXP,
        step="a",
    ),
    Case(
        "bad_execution_field",
        doc(HEAD, "steps:\n  - id: a\n    type: set\n    with: {vars: {x: '{{ execution.user }}'}}  #<\n"),
        "with.vars.x",
        ("execution.user: not one of id, organization_id, playbook_id, requested_by, started_at",),
        EXP,
        step="a",
    ),
    Case(
        "condition_with_braces",
        doc(
            HEAD,
            INPUTS,
            "steps:\n  - id: a\n    type: set\n    when: '{{ inputs.amount > 5 }}'  #<\n    with: {vars: {x: 1}}\n",
        ),
        "when",
        ("a condition is a bare expression",),
        EXP,
        step="a",
    ),
    Case(
        "switch_case_condition_with_braces",
        doc(
            HEAD,
            INPUTS,
            """\
            steps:
              - id: route
                type: switch
                with:
                  cases:
                    - when: '{{ inputs.amount > 1 }}'  #<
                      steps: [{id: big, type: set, with: {vars: {x: 1}}}]
            """,
        ),
        "with.cases[0].when",
        ("a condition is a bare expression",),
        EXP,
        step="route",
    ),
    Case(
        "jinja_syntax_error_in_value",
        doc(HEAD, INPUTS, "steps:\n  - id: a\n    type: set\n    with: {vars: {x: '{{ inputs.amount + }}'}}  #<\n"),
        "with.vars.x",
        ("syntax error",),
        EXP,
        step="a",
    ),
    Case(
        "jinja_syntax_error_in_condition",
        doc(
            HEAD,
            INPUTS,
            "steps:\n  - id: a\n    type: set\n    when: inputs.amount >> 5  #<\n    with: {vars: {x: 1}}\n",
        ),
        "when",
        ("syntax error", "'>'"),
        EXP,
        step="a",
    ),
    Case(
        "jinja_unclosed_block",
        doc(
            HEAD,
            INPUTS,
            "steps:\n  - id: a\n    type: notification\n"
            "    with: {channel: log, to: ops, body: '{% if inputs.amount %}big'}  #<\n",
        ),
        "with.body",
        ("syntax error", "endif"),
        EXP,
        step="a",
    ),
    Case(
        "jinja_unknown_filter",
        doc(
            HEAD, INPUTS, "steps:\n  - id: a\n    type: set\n    with: {vars: {x: '{{ inputs.amount | money }}'}}  #<\n"
        ),
        "with.vars.x",
        ("No filter named 'money'",),
        EXP,
        step="a",
    ),
    Case(
        "validation_rule_assert_unknown_name",
        doc(
            HEAD,
            INPUTS,
            """\
            steps:
              - id: check
                type: validation
                with:
                  rules:
                    - {assert: input.amount > 0, message: Must be positive.}  #<
            """,
        ),
        "with.rules[0].assert",
        ("unknown name 'input'",),
        EXP,
        step="check",
    ),
    Case(
        "loop_variable_outside_foreach",
        doc(HEAD, "steps:\n  - id: a\n    type: set\n    with: {vars: {x: '{{ item.sku }}'}}  #<\n"),
        "with.vars.x",
        ("unknown name 'item'",),
        EXP,
        step="a",
    ),
    Case(
        "bad_reference_in_outputs",
        doc(HEAD, SET_A, "outputs:\n  total: '{{ steps.a.result }}'  #<\n"),
        "outputs.total",
        ("steps.a.result: a step has status, output, data, completed_by, error",),
        EXP,
    ),
    Case(
        "unknown_step_in_success_criteria",
        doc(HEAD, SET_A, "success_criteria:\n  - steps.b.status == 'completed'  #<\n"),
        "success_criteria[0]",
        ("steps.b: no such step",),
        EXP,
    ),
    Case(
        "bad_reference_in_compensation",
        doc(
            HEAD,
            """\
            steps:
              - id: a
                type: set
                with: {vars: {x: 1}}
                compensate:
                  - {id: undo, type: set, with: {vars: {y: '{{ steps.nope.output }}'}}}  #<
            """,
        ),
        "with.vars.y",
        ("steps.nope: no such step",),
        EXP,
        step="undo",
    ),
    # ------------------------------------------------------------------ examples
    Case(
        "example_completes_a_non_human_step",
        doc(
            HEAD,
            INPUTS,
            SET_A,
            """\
            examples:
              - name: e
                initial_data: {amount: 1}
                complete:
                  - {step_id: a, data: {}}  #<
            """,
        ),
        "examples[0].complete[0].step_id",
        ("'a' is not a human or approval step",),
        SEM,
    ),
    Case(
        "example_completes_an_unknown_step",
        doc(
            HEAD,
            INPUTS,
            SET_A,
            "examples:\n  - name: e\n    initial_data: {amount: 1}\n    complete: [{step_id: nope}]  #<\n",
        ),
        "examples[0].complete[0].step_id",
        ("'nope'",),
        SEM,
    ),
    Case(
        "example_initial_data_wrong_type",
        doc(HEAD, INPUTS, SET_A, "examples:\n  - name: e\n    initial_data: {amount: lots}  #<\n"),
        "examples[0].initial_data.amount",
        ("valid integer", "(type)"),
        SEM,
    ),
    Case(
        "example_initial_data_missing_required",
        doc(HEAD, INPUTS, SET_A, "examples:\n  - name: e\n    initial_data: {}  #<\n"),
        "examples[0].initial_data.amount",
        ("is required",),
        SEM,
    ),
    Case(
        "example_initial_data_unknown_field",
        doc(HEAD, INPUTS, SET_A, "examples:\n  - name: e\n    initial_data: {amount: 1, amout: 2}  #<\n"),
        "examples[0].initial_data.amout",
        ("is not a field of this form",),
        SEM,
    ),
    Case(
        "example_expect_unknown_status",
        doc(
            HEAD,
            INPUTS,
            SET_A,
            "examples:\n  - name: e\n    initial_data: {amount: 1}\n    expect: {status: done}  #<\n",
        ),
        "examples[0].expect.status",
        ("'done' does not match",),
        SCH,
    ),
    Case(
        "example_completion_data_invalid_for_form",
        doc(
            HEAD,
            INPUTS,
            """\
            steps:
              - id: ask
                type: human
                with:
                  instructions: Count them.
                  form: {count: {type: integer, required: true}}
            examples:
              - name: e
                initial_data: {amount: 1}
                complete:
                  - {step_id: ask, data: {count: many}}  #<
            """,
        ),
        "examples[0].complete[0].data.count",
        ("valid integer",),
        SEM,
    ),
]


def load(directory: Path, text: str, file: str = FILE) -> list[Problem]:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / file).write_text(text, encoding="utf-8")
    return model.load_library([directory]).problems


def _params() -> list[object]:
    params = []
    for case in CASES:
        params.append(pytest.param(case, id=case.name))
    return params


def test_there_are_enough_cases() -> None:
    assert len({c.name for c in CASES}) == len(CASES)
    assert len(CASES) >= 35


@pytest.mark.parametrize("case", _params())
def test_invalid_playbook(tmp_path: Path, case: Case) -> None:
    problems = load(tmp_path / "lib", case.text, case.file)
    assert len(problems) == 1, "\n".join(map(str, problems))
    problem = problems[0]
    line = case.expected_line()
    assert (problem.group, problem.field, problem.step, problem.line) == (case.group, case.field, case.step, line), str(
        problem
    )
    for part in case.message:
        assert part in problem.message, str(problem)
    # the one-line form `playbook validate` prints
    where = f"{tmp_path / 'lib' / case.file}:{line}: "
    step = f"step {case.step}: " if case.step else ""
    field = f"{case.field}: " if case.field else ""
    assert str(problem) == f"{where}{step}{field}{problem.message}"


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    text = doc(
        HEAD,
        INPUTS,
        """\
        steps:
          - id: a
            type: set
            when: inpts.amount > 1
            with: {vars: {x: '{{ steps.zz.output }}'}}
          - id: b
            type: set
            depends_on: [a, b]
            with: {vars: {y: '{{ vars.nope }}'}}
        """,
    )
    problems = load(tmp_path / "lib", text)
    found = {(p.step, p.field, p.line) for p in problems}
    assert found == {
        ("b", "depends_on[1]", 15),
        ("a", "when", 11),
        ("a", "with.vars.x", 12),
        ("b", "with.vars.y", 16),
    }, "\n".join(map(str, problems))
    # grouped: semantics before expressions
    assert [p.group for p in problems] == [SEM, EXP, EXP, EXP]


def test_schema_problems_are_all_reported(tmp_path: Path) -> None:
    text = doc(
        HEAD,
        """\
        colour: blue
        steps:
          - id: a
            type: wait
            with: {duration: soon}
          - id: b
            type: approval
            with: {approvals_required: 0}
        """,
    )
    problems = load(tmp_path / "lib", text)
    assert {(p.field, p.line) for p in problems} == {
        ("colour", 6),
        ("with.duration", 10),
        ("with.approvals_required", 13),
    }


def test_two_files_with_one_id(tmp_path: Path) -> None:
    library = tmp_path / "lib"
    (library / "crm").mkdir(parents=True)
    (library / "sales").mkdir()
    body = doc(HEAD, SET_A)
    (library / "crm" / FILE).write_text(body)
    (library / "sales" / FILE).write_text(body)
    result = model.load_library([library])
    assert len(result.problems) == 1, result.problems
    problem = result.problems[0]
    assert problem.file == str(library / "sales" / FILE)
    assert (problem.field, problem.line, problem.group) == ("id", 1, SEM)
    assert f"playbook id 'demo.check.v1' is also defined in {library / 'crm' / FILE}" in problem.message
    assert list(result.playbooks) == ["demo.check.v1"]
    assert result.checked == 2


def test_a_bad_file_does_not_hide_the_good_ones(tmp_path: Path) -> None:
    library = tmp_path / "lib"
    library.mkdir()
    (library / FILE).write_text(doc(HEAD, SET_A))
    (library / "broken.v1.yaml").write_text("id: broken.v1\nname: [\n")
    result = model.load_library([library])
    assert list(result.playbooks) == ["demo.check.v1"]
    assert [p.file for p in result.problems] == [str(library / "broken.v1.yaml")]
    assert result.problems[0].group == SYN


def test_yaml12_scalars_keep_their_meaning(tmp_path: Path) -> None:
    """`NO`, `on`, `off`, `yes` stay strings; `010` is ten, `0o10` is eight; dates stay strings."""
    text = doc(
        HEAD,
        """\
        tags: [on, off, yes, no, 2024-01-31]
        inputs:
          country: {type: select, options: [NO, SE, DK], default: NO}
          switch: {type: select, options: [on, off]}
          ten: {type: integer, default: 010}
          eight: {type: integer, default: 0o10}
          size: {type: integer, default: 0x1F}
          ratio: {type: float, default: 1e3}
        """,
        SET_A,
    )
    (tmp_path / FILE).write_text(text)
    playbook = model.load_playbook(tmp_path / FILE)
    assert playbook.tags == ["on", "off", "yes", "no", "2024-01-31"]
    assert playbook.inputs["country"].options == ["NO", "SE", "DK"]
    assert playbook.inputs["country"].default == "NO"
    assert playbook.inputs["switch"].options == ["on", "off"]
    assert playbook.inputs["ten"].default == 10
    assert playbook.inputs["eight"].default == 8
    assert playbook.inputs["size"].default == 31
    assert playbook.inputs["ratio"].default == 1000.0


def test_one_mistake_in_a_line_quantity_is_one_problem(tmp_path: Path) -> None:
    text = doc(
        HEAD,
        """\
        steps:
          - id: sell
            type: transaction
            smart_code: HERA.CRM.TXN.SALE.v1
            with:
              transaction_type: sale
              lines:
                - {quantity: two, unit_price: 1}
        """,
    )
    problems = load(tmp_path / "lib", text)
    quantity = [p for p in problems if p.field == "with.lines[0].quantity"]
    assert quantity, "a quantity of 'two' must be refused: " + "; ".join(map(str, problems))
    assert all(p.line == 13 and p.step == "sell" and p.group == SCH for p in quantity)


def test_one_mistake_in_a_line_quantity_is_reported_once(tmp_path: Path) -> None:
    text = doc(
        HEAD,
        """\
        steps:
          - id: sell
            type: transaction
            smart_code: HERA.CRM.TXN.SALE.v1
            with:
              transaction_type: sale
              lines:
                - {quantity: two, unit_price: 1}
        """,
    )
    problems = load(tmp_path / "lib", text)
    assert len(problems) == 1, "\n".join(map(str, problems))


def test_valid_control_playbook_has_no_problems(tmp_path: Path) -> None:
    """The scaffolding the cases are built from is itself valid: each case fails for its own reason."""
    text = doc(
        HEAD,
        INPUTS,
        """\
        steps:
          - {id: a, type: set, with: {vars: {x: '{{ inputs.amount }}'}}}
          - id: each
            type: foreach
            with:
              items: [1, 2]
              as: row
              steps:
                - {id: one, type: set, with: {vars: {y: '{{ row + loop.index + vars.x }}'}}}
                - {id: two, type: set, with: {vars: {z: '{{ steps.one.output }}'}}}
          - id: ask
            type: human
            when: steps.a.status == 'completed' and inputs.amount > 5
            timeout: 1h
            with:
              instructions: 'Check {{ steps.each.output | length }} rows for {{ execution.organization_id }}.'
              on_timeout: escalate
              escalate_to: [lead, manager]
              form: {count: {type: integer, required: true}}
        outputs:
          count: '{{ steps.ask.data.count }}'
        success_criteria:
          - steps.ask.status in ['completed', 'skipped']
        examples:
          - name: e
            initial_data: {amount: '7'}
            complete: [{step_id: ask, data: {count: 3}}]
        """,
    )
    assert load(tmp_path / "lib", text) == []
