"""The catalog's lifecycle in the universal tables: current definitions, version history, status, sharing.

No table of its own (SPEC §4, §8):
- the definition in force is a ``core_entities`` row, ``entity_type = 'playbook_definition'``,
  ``entity_code = <playbook id>``, ``status`` the catalog status, ``metadata`` {definition, sha256,
  superseded_by?, shared_with[] (organization uuids)};
- every distinct definition ever published is a ``playbook_version`` row coded ``<id>@<sha256>``
  (metadata {definition, sha256, published_by, published_at}), related to the current row by ``version_of``;
- every change (publish, rollback, deprecate, archive, share) is a ``playbook_catalog_change`` transaction
  whose source is the current row: metadata {action, by, sha256, status, ...}, its ``created_at`` is when.

Every function works on a connection already inside an organization's session (row-level security): an
organization writes only its own catalog; the platform library belongs to `PLATFORM_ORG_ID`. Migration 0004
lets an organization read a definition another one shares with it.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any, Literal
from uuid import UUID

import asyncpg
from pydantic import BaseModel

from .errors import MAX_LEN, InvalidWrite, StoreError

PLATFORM_ORG_ID = UUID("00000000-0000-0000-0000-000000000001")
"""The ``platform`` organization: owner of the playbook library every organization may read."""
RUNNABLE = ("published", "deprecated")
"""Catalog statuses that start by id (SPEC §8); drafts and archived ones are refused."""


class CatalogNotFound(StoreError):
    """No such playbook (or version) in the catalog an organization sees."""


class CatalogEntry(BaseModel):
    """The definition of a playbook in force for one organization, and where it comes from."""

    playbook_id: str
    owner: UUID
    source: Literal["own", "shared", "platform"]
    status: str
    sha256: str
    definition: dict[str, Any]
    superseded_by: str | None = None
    shared_with: list[UUID] = []
    updated_at: datetime


class Version(BaseModel):
    sha256: str
    published_by: str | None
    published_at: datetime
    current: bool


class Change(BaseModel):
    action: str
    by: str | None
    at: datetime
    sha256: str | None = None
    status: str | None = None
    detail: dict[str, Any] = {}


def _ordered(definition: dict[str, Any]) -> str:
    """The definition as JSON text: jsonb keeps object keys sorted by length, which would shuffle the
    author's order of `inputs` and form fields (the order forms show them in)."""
    return json.dumps(definition, separators=(",", ":"), ensure_ascii=False)


def stored_definition(metadata: dict[str, Any]) -> dict[str, Any]:
    """A stored definition in the author's order (rows published before the JSON text was kept: jsonb's)."""
    text = metadata.get("definition_json")
    found: dict[str, Any] = json.loads(text) if isinstance(text, str) else metadata["definition"]
    return found


def definition_sha(definition: dict[str, Any]) -> str:
    """The sha256 of a definition's canonical JSON (sorted keys, no spaces)."""
    try:
        canonical = json.dumps(definition, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    except (TypeError, ValueError) as exc:
        raise InvalidWrite("definition", f"must be plain JSON ({exc})") from None
    return hashlib.sha256(canonical.encode()).hexdigest()


async def publish(conn: asyncpg.Connection, owner: UUID, *, playbook_id: str, definition: dict[str, Any],
                  smart_code: str, by: str | None, action: str = "publish", only_if_new: bool = False) -> str:
    """Make `definition` the one in force in `owner`'s catalog and keep it in the history; returns its sha256.

    The same content and status again changes nothing. With `only_if_new` (the worker's library sync) a
    definition already in the history is left alone, so a restart never undoes a rollback or a deprecation.
    """
    sha = definition_sha(definition)
    if only_if_new and await _version_id(conn, owner, playbook_id, sha) is not None:
        return sha
    name = str(definition.get("name") or playbook_id)[: MAX_LEN["entity_name"]]
    status = str(definition.get("status") or "draft")[: MAX_LEN["status"]]
    current = await conn.fetchval(
        """
        INSERT INTO core_entities (organization_id, entity_type, entity_name, entity_code, status, smart_code, metadata)
        VALUES ($1, 'playbook_definition', $2, $3, $4, $5, $6)
        ON CONFLICT (organization_id, entity_type, entity_code) DO UPDATE
        SET entity_name = EXCLUDED.entity_name, status = EXCLUDED.status, smart_code = EXCLUDED.smart_code,
            metadata = (core_entities.metadata - 'superseded_by') || EXCLUDED.metadata
        WHERE core_entities.metadata ->> 'sha256' IS DISTINCT FROM EXCLUDED.metadata ->> 'sha256'
           OR core_entities.status IS DISTINCT FROM EXCLUDED.status
        RETURNING id
        """,
        owner, name, playbook_id, status, smart_code,
        {"definition": definition, "definition_json": _ordered(definition), "sha256": sha},
    )
    if current is None:
        return sha  # already in force, as is
    version = await _version_id(conn, owner, playbook_id, sha)
    if version is None:
        version = await conn.fetchval(
            """
            INSERT INTO core_entities (organization_id, entity_type, entity_name, entity_code, status, smart_code,
                                       metadata)
            VALUES ($1, 'playbook_version', $2, $3, 'active', $4,
                    jsonb_build_object('playbook_id', $5::text, 'sha256', $6::text, 'definition', $7::jsonb,
                                       'definition_json', $9::text, 'published_by', $8::text, 'published_at', now()))
            RETURNING id
            """,
            owner, name, f"{playbook_id}@{sha}", smart_code, playbook_id, sha, definition, by, _ordered(definition),
        )
        await conn.execute(
            """
            INSERT INTO core_relationships
                (organization_id, from_entity_id, to_entity_id, relationship_type, smart_code)
            VALUES ($1, $2, $3, 'version_of', $4) ON CONFLICT DO NOTHING
            """,
            owner, version, current, smart_code,
        )
    await _record(conn, owner, current, playbook_id, action, by, sha256=sha, status=status)
    return sha


async def resolve(conn: asyncpg.Connection, reader: UUID, playbook_id: str) -> CatalogEntry | None:
    """The definition `reader` runs by id: its own, else one shared with it, else the platform library's."""
    rows = await _visible(conn, reader, playbook_id)
    return rows[0] if rows else None


async def entries(conn: asyncpg.Connection, reader: UUID) -> list[CatalogEntry]:
    """Every playbook `reader` can run by id, with the definition in force for it."""
    chosen: dict[str, CatalogEntry] = {}
    for entry in await _visible(conn, reader, None):
        chosen.setdefault(entry.playbook_id, entry)
    return sorted(chosen.values(), key=lambda e: e.playbook_id)


async def versions(conn: asyncpg.Connection, owner: UUID, playbook_id: str) -> tuple[list[Version], list[Change]]:
    """`owner`'s history of a playbook: each distinct definition published (oldest first), and each change."""
    current = await _current(conn, owner, playbook_id)
    rows = await conn.fetch(
        """
        SELECT metadata FROM core_entities
        WHERE organization_id = $1 AND entity_type = 'playbook_version' AND metadata ->> 'playbook_id' = $2
        ORDER BY (metadata ->> 'published_at')::timestamptz, created_at
        """,
        owner, playbook_id,
    )
    found = [
        Version(sha256=m["sha256"], published_by=m.get("published_by"), published_at=m["published_at"],
                current=m["sha256"] == current["metadata"]["sha256"])
        for m in (row["metadata"] for row in rows)
    ]  # fmt: skip
    changes = await conn.fetch(
        """
        SELECT metadata, created_at FROM universal_transactions
        WHERE organization_id = $1 AND transaction_type = 'playbook_catalog_change' AND source_entity_id = $2
        ORDER BY created_at, transaction_date
        """,
        owner, current["id"],
    )
    history = [
        Change(action=m.pop("action"), by=m.pop("by", None), at=row["created_at"], sha256=m.pop("sha256", None),
               status=m.pop("status", None), detail=m)
        for row in changes
        for m in [dict(row["metadata"])]
    ]  # fmt: skip
    return found, history


async def rollback(conn: asyncpg.Connection, owner: UUID, playbook_id: str, sha: str, *, by: str | None) -> str:
    """Put an earlier definition (named by its sha256 or an unambiguous prefix of it) back in force."""
    await _current(conn, owner, playbook_id)
    rows = await conn.fetch(
        """
        SELECT smart_code, metadata, metadata ->> 'sha256' AS sha256
        FROM core_entities
        WHERE organization_id = $1 AND entity_type = 'playbook_version' AND metadata ->> 'playbook_id' = $2
          AND metadata ->> 'sha256' LIKE $3 || '%'
        """,
        owner, playbook_id, sha.lower(),
    )
    if len(rows) != 1:
        problem = "no published version" if not rows else f"{len(rows)} versions"
        raise CatalogNotFound(f"sha: {problem} of {playbook_id} starts with {sha!r} (see: playbook versions)")
    row = rows[0]
    return await publish(conn, owner, playbook_id=playbook_id, definition=stored_definition(row["metadata"]),
                         smart_code=row["smart_code"], by=by, action="rollback")


async def set_status(conn: asyncpg.Connection, owner: UUID, playbook_id: str, status: str, *, by: str | None,
                     superseded_by: str | None = None) -> None:
    """Change a playbook's catalog status (deprecate, archive); the definition and its sha stay as they are."""
    current = await _current(conn, owner, playbook_id)
    if superseded_by is not None and not await _visible(conn, owner, superseded_by):
        raise CatalogNotFound(f"--by: no playbook {superseded_by!r} in this catalog")
    await conn.execute(
        """
        UPDATE core_entities SET status = $2,
               metadata = CASE WHEN $3::text IS NULL THEN metadata - 'superseded_by'
                               ELSE metadata || jsonb_build_object('superseded_by', $3::text) END
        WHERE id = $1
        """,
        current["id"], status, superseded_by,
    )
    detail = {"superseded_by": superseded_by} if superseded_by else {}
    action = {"deprecated": "deprecate", "archived": "archive"}.get(status, status)
    await _record(conn, owner, current["id"], playbook_id, action, by, sha256=current["metadata"]["sha256"],
                  status=status, **detail)


async def share(conn: asyncpg.Connection, owner: UUID, playbook_id: str, with_orgs: list[UUID], *,
                by: str | None, revoke: bool = False) -> list[UUID]:
    """Let the named organizations run `owner`'s definition by id (or stop letting them); returns who may."""
    current = await _current(conn, owner, playbook_id)
    listed = [UUID(u) for u in current["metadata"].get("shared_with", [])]
    named = set(with_orgs)
    shared = [u for u in listed if u not in named] if revoke else [*listed, *(u for u in with_orgs if u not in listed)]
    await conn.execute(
        "UPDATE core_entities SET metadata = metadata || jsonb_build_object('shared_with', $2::jsonb) WHERE id = $1",
        current["id"], [str(u) for u in shared],
    )
    await _record(conn, owner, current["id"], playbook_id, "unshare" if revoke else "share", by,
                  organizations=[str(u) for u in with_orgs])
    return shared


async def _visible(conn: asyncpg.Connection, reader: UUID, playbook_id: str | None) -> list[CatalogEntry]:
    # row-level security shows the reader its own rows, those shared with it and the platform library
    rows = await conn.fetch(
        """
        SELECT organization_id, entity_code, status, metadata, updated_at FROM core_entities
        WHERE entity_type = 'playbook_definition' AND ($1::text IS NULL OR entity_code = $1)
        ORDER BY entity_code, organization_id = $2 DESC, organization_id = $3, created_at
        """,
        playbook_id, reader, PLATFORM_ORG_ID,
    )
    return [
        CatalogEntry(
            playbook_id=row["entity_code"], owner=row["organization_id"], status=row["status"],
            source="own" if row["organization_id"] == reader
            else "platform" if row["organization_id"] == PLATFORM_ORG_ID else "shared",
            sha256=row["metadata"]["sha256"], definition=stored_definition(row["metadata"]),
            superseded_by=row["metadata"].get("superseded_by"), shared_with=row["metadata"].get("shared_with", []),
            updated_at=row["updated_at"],
        )
        for row in rows
    ]  # fmt: skip


async def _current(conn: asyncpg.Connection, owner: UUID, playbook_id: str) -> asyncpg.Record:
    row = await conn.fetchrow(
        """
        SELECT id, metadata FROM core_entities
        WHERE organization_id = $1 AND entity_type = 'playbook_definition' AND entity_code = $2
        """,
        owner, playbook_id,
    )
    if row is None:
        raise CatalogNotFound(f"no playbook {playbook_id!r} in this catalog (see: playbook list)")
    return row


async def _version_id(conn: asyncpg.Connection, owner: UUID, playbook_id: str, sha: str) -> UUID | None:
    found: UUID | None = await conn.fetchval(
        "SELECT id FROM core_entities WHERE organization_id = $1 AND entity_type = 'playbook_version'"
        " AND entity_code = $2",
        owner, f"{playbook_id}@{sha}",
    )
    return found


async def _record(conn: asyncpg.Connection, owner: UUID, current: UUID, playbook_id: str, action: str,
                  by: str | None, **detail: Any) -> None:
    """The audit line of a catalog change: who, what, and (created_at) when."""
    await conn.execute(
        """
        INSERT INTO universal_transactions
            (organization_id, transaction_type, transaction_code, source_entity_id, status, smart_code, metadata)
        SELECT $1, 'playbook_catalog_change', $2, $3, 'completed', smart_code, $4 FROM core_entities WHERE id = $3
        """,
        owner, playbook_id, current, {"action": action, "by": by, **{k: v for k, v in detail.items() if v}},
    )
