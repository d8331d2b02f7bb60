"""What the catalog says about playbooks: `playbook list --org ORG` and the performance part of `playbook show`.

`playbook_metrics` is the one function behind both the CLI's figures and the gateway's
``GET /api/v1/playbooks?playbookId=``: per organization, runs, success rate, median and p95 durations, per
step, from the migration-0003 views (`starter.operations.playbook_stats`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path
from typing import Any

from config import Settings
from store import Store, StoreError, catalog

from .lifecycle import open_store
from .operations import ExecutionStats, database_url, playbook_stats, render_stats
from .plumbing import UserError, format_time


async def playbook_metrics(store: Store, playbook_id: str, organization: str | None = None) -> list[ExecutionStats]:
    """A playbook's figures in one organization (code or uuid), or in every organization that ran it."""
    organizations = (
        {organization: await store.resolve_organization(organization)} if organization else await store.organizations()
    )
    return await playbook_stats(store, organizations, playbook_id)


def performance(settings: Settings, playbook_id: str, state_dir: str) -> str:
    """The performance lines of `playbook show`; a note instead when there is no database to read."""
    try:
        dsn, stop = database_url(settings, Path(state_dir))
    except UserError:
        return "performance: no database (set DATABASE_URL, or run playbook dev)"

    async def read() -> list[ExecutionStats]:
        async with await Store.open(dsn) as store:
            return await playbook_metrics(store, playbook_id)

    try:
        report = asyncio.run(read())
    except StoreError as exc:
        return f"performance: {exc}"
    finally:
        stop()
    return "performance:\n" + render_stats(report) if report else "performance: no executions recorded yet"


async def catalog_list(args: argparse.Namespace, settings: Settings) -> int:
    """Every playbook ORG runs by id: status, where its definition comes from, its sha and replacement."""
    async with open_store(settings, args.state_dir) as store:
        reader = await store.resolve_organization(args.org)
        codes = {uuid: code for code, uuid in (await store.organizations()).items()}
        async with store.catalog(reader) as conn:
            found = await catalog.entries(conn, reader)
    entries = [e for e in found if args.status in (None, e.status)
               and (args.module is None or e.definition.get("module") == args.module)]  # fmt: skip
    rows: list[dict[str, Any]] = [
        {"id": e.playbook_id, "status": e.status, "source": e.source, "owner": codes.get(e.owner, str(e.owner)),
         "sha256": e.sha256, "deprecated": e.status == "deprecated", "superseded_by": e.superseded_by,
         "shared_with": [codes.get(u, str(u)) for u in e.shared_with], "updated_at": e.updated_at.isoformat(),
         "name": e.definition.get("name")}
        for e in entries
    ]  # fmt: skip
    if args.json or args.format == "json":
        print(json.dumps(rows, indent=2))
        return 0
    width = max([len(row["id"]) for row in rows] + [2])
    for row, entry in zip(rows, entries, strict=True):
        source = {"own": f"own ({args.org})", "platform": "platform"}.get(row["source"], f"shared by {row['owner']}")
        notes = [f"superseded by {row['superseded_by']}"] if row["superseded_by"] else []
        if row["shared_with"]:
            notes.append(f"shared with {', '.join(row['shared_with'])}")
        print(f"{row['id']:<{width}}  {row['status']:<10} {source:<24} {row['sha256'][:12]}  "
              f"{format_time(entry.updated_at)}  {'; '.join(notes)}".rstrip())  # fmt: skip
    return 0
