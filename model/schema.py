"""The JSON Schema of the playbook language, for editors: the built-in steps and every registered type.

A registered type gets its own step definition (``type`` fixed, ``with:`` its model's schema) beside
the built-in ones, so an editor completes and checks its fields; an unregistered type matches no step.
"""

from __future__ import annotations

import copy
from typing import Any

from .playbook import Playbook
from .steps import registered_step_types

DRAFT = "https://json-schema.org/draft/2020-12/schema"
CUSTOM_REF = {"$ref": "#/$defs/CustomStep"}


def _definition_name(type_name: str) -> str:
    return "".join(part.capitalize() for part in type_name.split("_")) + "Step"


def playbook_schema() -> dict[str, Any]:
    schema = Playbook.model_json_schema(by_alias=True)
    defs: dict[str, Any] = schema["$defs"]
    custom = defs["CustomStep"]
    refs = []
    for name, with_model in sorted(registered_step_types().items()):
        with_schema = with_model.model_json_schema(by_alias=True, ref_template="#/$defs/{model}")
        defs.update(with_schema.pop("$defs", {}))
        defs[with_model.__name__] = with_schema
        step = copy.deepcopy(custom)
        step["title"] = _definition_name(name)
        step["description"] = with_schema.get("description") or f"A `{name}` step."
        step["properties"]["type"] = {"const": name, "title": "Type", "type": "string"}
        step["properties"]["with"] = {"$ref": f"#/$defs/{with_model.__name__}"}
        defs[_definition_name(name)] = step
        refs.append({"$ref": f"#/$defs/{_definition_name(name)}"})
    custom["properties"]["type"]["not"]["enum"].extend(sorted(registered_step_types()))
    _insert_refs(schema, refs)
    return {"$schema": DRAFT, **schema, "title": "Playbook"}


def _insert_refs(node: Any, refs: list[dict[str, str]]) -> None:
    """Add the registered steps to every step union (each `oneOf` that lists CustomStep)."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "oneOf" and isinstance(value, list) and CUSTOM_REF in value:
                value[value.index(CUSTOM_REF) : value.index(CUSTOM_REF)] = refs
            else:
                _insert_refs(value, refs)
    elif isinstance(node, list):
        for item in node:
            _insert_refs(item, refs)
