"""`playbook org add CODE --name N` and `playbook org list`: organizations without SQL by hand."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from config import Settings
from store import Store, StoreError

from .operations import database_url
from .plumbing import Add, UserError, run_async


async def cmd_org_add(args: argparse.Namespace, settings: Settings) -> int:
    dsn, stop = database_url(settings, Path(args.state_dir))
    try:
        async with await Store.open(dsn) as store:
            uid = await store.register_organization(args.code, name=args.name)
    except StoreError as exc:
        raise UserError(str(exc)) from None
    finally:
        stop()
    print(f"{args.code}  {uid}")
    return 0


async def cmd_org_list(args: argparse.Namespace, settings: Settings) -> int:
    dsn, stop = database_url(settings, Path(args.state_dir))
    try:
        async with await Store.open(dsn) as store:
            found = await store.organizations()
    except StoreError as exc:
        raise UserError(str(exc)) from None
    finally:
        stop()
    rows = sorted(found.items())
    if args.json:
        print(json.dumps([{"code": code, "id": str(uid)} for code, uid in rows], indent=2))
    else:
        for code, uid in rows:
            print(f"{code:<30} {uid}")
    return 0


def register(add: Add) -> None:
    p = add("org", run_async(cmd_org_list), "register and list organizations (`org add`, `org list`)")
    sub = p.add_subparsers(dest="org_command", required=True, metavar="ACTION")
    added = sub.add_parser("add", help="register an organization (idempotent)")
    added.set_defaults(handler=run_async(cmd_org_add))
    added.add_argument("code", metavar="CODE", help="its code, e.g. org_acme")
    added.add_argument("--name", required=True, help="its display name")
    listed = sub.add_parser("list", help="every organization's code and id")
    listed.set_defaults(handler=run_async(cmd_org_list))
    listed.add_argument("--json", action="store_true", help="JSON output")
    for each in (added, listed):
        each.add_argument("--state-dir", default=".local", help="without DATABASE_URL: the `playbook dev` state folder")
