"""The bare baseline's one activity: a single upsert statement, no audit line, no exactly-once record."""

from __future__ import annotations

from temporalio import activity

from bench.handwritten import BareUpsert
from store import Store


def bare_upsert_activity(store: Store) -> object:
    @activity.defn(name="bare_upsert")
    async def bare_upsert(req: BareUpsert) -> str:
        org = await store.resolve_organization(req.organization)
        async with store.transaction(org) as conn:
            entity_id = await conn.fetchval(
                """
                INSERT INTO core_entities (organization_id, entity_type, entity_name, entity_code, smart_code)
                VALUES ($1, 'bench', $2, $2, 'HERA.OPS.BENCH.ENT.v1')
                ON CONFLICT (organization_id, entity_type, entity_code) DO UPDATE SET entity_name = EXCLUDED.entity_name
                RETURNING id
                """,
                org, req.code,
            )  # fmt: skip
        return str(entity_id)

    return bare_upsert
