"""Templates (SPEC §8): `playbook new NEW_ID --from TEMPLATE_OR_PLAYBOOK_ID` and `playbook list --templates`.

A template is a playbook file with ``template: true`` under ``playbooks/templates/``: validated like any
playbook, never run or published. `playbook new` copies a template (or any library playbook) into a new
draft file with the id, version, module and smart codes adjusted and ``derived_from`` naming its origin, so
the list of templates can say how many playbooks were made from each.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import Any

import yaml

from config import Settings
from model import MODULES, Library, PlaybookError, load_library, load_playbook
from model.loader import read_document
from model.playbook import PLAYBOOK_ID

from .plumbing import Add, UserError, me

_SMART_MODULE = re.compile(r"^HERA\.[A-Z0-9]+\.")


def playbook_smart_code(playbook_id: str, module: str) -> str:
    """``HERA.<MODULE>.<NAME PARTS>.PLAYBOOK.v<N>`` for a playbook id such as ``expense.approve.v2``."""
    name, version = playbook_id.rsplit(".v", 1)
    parts = [re.sub(r"[^A-Z0-9]", "", part.upper()) or "X" for part in name.split(".")][-4:]
    return f"HERA.{module.upper()}.{'.'.join(parts)}.PLAYBOOK.v{version}"


def _retarget(value: Any, module: str) -> Any:
    """Every smart code in a definition moved to `module` (HERA.<MODULE>.<rest> keeps its rest)."""
    if isinstance(value, dict):
        return {k: (_SMART_MODULE.sub(f"HERA.{module.upper()}.", v) if k == "smart_code" and isinstance(v, str)
                    else _retarget(v, module)) for k, v in value.items()}  # fmt: skip
    if isinstance(value, list):
        return [_retarget(item, module) for item in value]
    return value


def derive(source: dict[str, Any], new_id: str, *, module: str | None = None) -> dict[str, Any]:
    """A new draft definition made from `source` (a template's or a playbook's data)."""
    if not re.fullmatch(PLAYBOOK_ID, new_id):
        raise UserError(f"NEW_ID: {new_id!r} is not <name>.v<major> (lower case, e.g. expense.approve.v1)")
    if module is not None and module not in MODULES:
        raise UserError(f"--module: {module!r} is not one of {', '.join(MODULES)}")
    module = module or str(source.get("module"))
    data = _retarget({k: v for k, v in source.items() if k not in ("template", "derived_from")}, module)
    data.update(id=new_id, version=int(new_id.rsplit(".v", 1)[1]), module=module, status="draft",
                smart_code=playbook_smart_code(new_id, module), derived_from=source["id"])  # fmt: skip
    order = ["id", "name", "version", "module", "category", "status", "smart_code", "derived_from"]
    return {k: data[k] for k in order if k in data} | {k: v for k, v in data.items() if k not in order}


def cmd_new(args: argparse.Namespace, settings: Settings) -> int:
    library = load_library([settings.playbooks_dir])
    files = library.template_files | library.files
    if args.source not in files:
        known = ", ".join(sorted(library.template_files)) or "none"
        raise UserError(f"--from: no template or playbook {args.source!r} in {settings.playbooks_dir} "
                        f"(templates: {known})")  # fmt: skip
    data = derive(read_document(files[args.source]).data, args.new_id, module=args.module)
    target = Path(args.output) if args.output else settings.playbooks_dir / data["module"] / f"{args.new_id}.yaml"
    if target.exists():
        raise UserError(f"{target} exists already (choose another NEW_ID or --output)")
    text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=110)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(f"# Made from {args.source} by `playbook new`: a draft until you publish it.\n{text}")
    try:
        load_playbook(target)
    except PlaybookError as exc:
        target.unlink()
        raise UserError(f"the new playbook would not validate: {exc.problems[0]}") from None
    print(f"wrote {target} (draft, from {args.source}); next: {me()} test {target}, then {me()} publish {target}")
    return 0


def template_rows(library: Library) -> list[dict[str, Any]]:
    """Each template with how many library playbooks were made from it."""
    made = [pb.derived_from for pb in library.playbooks.values()]
    return [
        {"id": t.id, "name": t.name, "module": t.module.value, "made_from_it": made.count(t.id),
         "steps": sum(1 for _ in t.walk()), "description": t.description}
        for t in sorted(library.templates.values(), key=lambda t: t.id)
    ]  # fmt: skip


def register(add: Add) -> None:
    """Add `new` to the CLI (`list --templates` is in the list command)."""
    p = add("new", cmd_new, "write a new draft playbook from a template or a playbook")
    p.add_argument("new_id", metavar="NEW_ID")
    p.add_argument("--from", dest="source", required=True, metavar="TEMPLATE_OR_PLAYBOOK_ID")
    p.add_argument("--module", help="the new playbook's module (default: the source's)")
    p.add_argument("-o", "--output", help="the file to write (default: PLAYBOOKS_DIR/<module>/<NEW_ID>.yaml)")
