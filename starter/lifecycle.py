"""Catalog commands of the `playbook` CLI (SPEC §8): publish, versions, rollback, deprecate, archive, share.

They work on Postgres directly (DATABASE_URL, else the `playbook dev` database), through `store.catalog`
under the acting organization's row-level security. Without `--org` they act on the platform library.
Every change is kept in the catalog's history with who (`--user`, default $USER) and when.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from uuid import UUID

from config import Settings
from model import load_library
from store import PLATFORM_ORG_ID, Store, StoreError, catalog

from .operations import database_url
from .plumbing import Add, UserError, format_time, run_async


@asynccontextmanager
async def open_store(settings: Settings, state_dir: str = ".local") -> AsyncIterator[Store]:
    """The catalog's database; store errors become one line."""
    dsn, stop = database_url(settings, Path(state_dir))
    try:
        async with await Store.open(dsn) as store:
            yield store
    except StoreError as exc:
        raise UserError(str(exc)) from None
    finally:
        stop()


async def _owner(store: Store, org: str | None) -> UUID:
    return PLATFORM_ORG_ID if org in (None, "platform") else await store.resolve_organization(org)


def _catalog_name(org: str | None) -> str:
    return "the platform library" if org in (None, "platform") else f"the catalog of {org}"


def _user(args: argparse.Namespace) -> str | None:
    return args.user or os.environ.get("USER")


async def cmd_publish(args: argparse.Namespace, settings: Settings) -> int:
    library = load_library([Path(p) for p in args.paths])
    if library.problems:
        raise UserError(f"{library.problems[0]} ({len(library.problems)} problem(s); nothing published)")
    if library.templates:
        raise UserError(f"{next(iter(library.templates))} is a template: make a playbook of it with playbook new")
    if not library.playbooks:
        raise UserError("no playbook files in " + " ".join(args.paths))
    async with open_store(settings, args.state_dir) as store:
        owner = await _owner(store, args.org)
        for playbook in library.playbooks.values():
            # publishing is the act that makes a draft runnable: the published definition says so itself
            definition = playbook.model_dump(mode="json", by_alias=True, exclude_none=True) | {"status": "published"}
            async with store.catalog(owner) as conn:
                before = await catalog.resolve(conn, owner, playbook.id)
                sha = await catalog.publish(conn, owner, playbook_id=playbook.id, definition=definition,
                                            smart_code=playbook.smart_code, by=_user(args))
            same = before is not None and (before.owner, before.sha256, before.status) == (owner, sha, "published")
            state = "unchanged" if same else "published"
            print(f"{playbook.id}  {sha[:12]}  {state} in {_catalog_name(args.org)}")
    return 0


async def cmd_versions(args: argparse.Namespace, settings: Settings) -> int:
    async with open_store(settings, args.state_dir) as store:
        owner = await _owner(store, args.org)
        async with store.catalog(owner) as conn:
            versions, changes = await catalog.versions(conn, owner, args.id)
    if args.json:
        print(json.dumps({"versions": [v.model_dump(mode="json") for v in versions],
                          "changes": [c.model_dump(mode="json") for c in changes]}, indent=2))  # fmt: skip
        return 0
    print(f"{args.id} in {_catalog_name(args.org)}: {len(versions)} version(s)")
    for version in versions:
        mark = "*" if version.current else " "
        print(f" {mark} {version.sha256[:12]}  {format_time(version.published_at)}  {version.published_by or '-'}")
    print("changes:")
    for change in changes:
        what = " ".join(
            part for part in (
                change.sha256[:12] if change.sha256 else "", change.status or "",
                " ".join(f"{k}={v}" for k, v in change.detail.items()),
            ) if part
        )  # fmt: skip
        print(f"  {format_time(change.at)}  {change.action:<10} {change.by or '-':<16} {what}")
    return 0


async def cmd_rollback(args: argparse.Namespace, settings: Settings) -> int:
    async with open_store(settings, args.state_dir) as store:
        owner = await _owner(store, args.org)
        async with store.catalog(owner) as conn:
            sha = await catalog.rollback(conn, owner, args.id, args.sha, by=_user(args))
    print(f"{args.id}  {sha[:12]}  back in force in {_catalog_name(args.org)} (running executions keep theirs)")
    return 0


def _set_status(status: str) -> Callable[[argparse.Namespace, Settings], object]:
    async def command(args: argparse.Namespace, settings: Settings) -> int:
        replacement = getattr(args, "by", None)
        async with open_store(settings, args.state_dir) as store:
            owner = await _owner(store, args.org)
            async with store.catalog(owner) as conn:
                await catalog.set_status(conn, owner, args.id, status, by=_user(args), superseded_by=replacement)
        print(f"{args.id}  {status}{f' (superseded by {replacement})' if replacement else ''}"
              f" in {_catalog_name(args.org)}")  # fmt: skip
        return 0

    return command


async def cmd_share(args: argparse.Namespace, settings: Settings) -> int:
    if args.org in (None, "platform"):
        raise UserError("--org: name the organization that shares (the platform library is shared with everyone)")
    async with open_store(settings, args.state_dir) as store:
        owner = await store.resolve_organization(args.org)
        targets = [await store.resolve_organization(code) for code in args.with_]
        async with store.catalog(owner) as conn:
            shared = await catalog.share(conn, owner, args.id, targets, by=_user(args), revoke=args.revoke)
        codes = {uuid: code for code, uuid in (await store.organizations()).items()}
    names = ", ".join(codes.get(u, str(u)) for u in shared) or "no one"
    print(f"{args.id} of {args.org} is shared with {names}")
    return 0


def register(add: Add) -> None:
    """Add the catalog lifecycle commands to the CLI."""

    def common(p: argparse.ArgumentParser, *, org_help: str = "an organization's catalog (default: platform)",
               ) -> argparse.ArgumentParser:
        p.add_argument("--org", help=org_help)
        p.add_argument("--user", help="who makes the change, for the history (default: $USER)")
        p.add_argument("--state-dir", default=".local", help="without DATABASE_URL: the `playbook dev` state dir")
        return p

    p = common(add("publish", run_async(cmd_publish), "validate and publish playbooks to the catalog"))
    p.add_argument("paths", nargs="+", metavar="PATH")
    p = common(add("versions", run_async(cmd_versions), "a playbook's published versions and catalog changes"))
    p.add_argument("id", metavar="ID")
    p.add_argument("--json", action="store_true", help="JSON output")
    p = common(add("rollback", run_async(cmd_rollback), "put an earlier published version back in force"))
    p.add_argument("id", metavar="ID")
    p.add_argument("sha", metavar="SHA", help="the version's sha256, or a prefix of it (see: playbook versions)")
    p = common(add("deprecate", run_async(_set_status("deprecated")), "deprecate a playbook (it still starts)"))
    p.add_argument("id", metavar="ID")
    p.add_argument("--by", metavar="NEW_ID", help="the playbook that replaces it")
    p = common(add("archive", run_async(_set_status("archived")), "archive a playbook (it no longer starts)"))
    p.add_argument("id", metavar="ID")
    p = common(add("share", run_async(cmd_share), "let named organizations run an organization's playbook"),
               org_help="the organization whose playbook it is")  # fmt: skip
    p.add_argument("id", metavar="ID")
    p.add_argument("--with", dest="with_", nargs="+", required=True, metavar="ORG", help="organizations to share with")
    p.add_argument("--revoke", action="store_true", help="stop sharing with them instead")
