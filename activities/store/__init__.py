"""Postgres store of the playbook engine: the universal tables, their migrations, a dev/test server.

Pure database code (asyncpg, pydantic): the activities layer wraps it for Temporal.
"""

from .migrate import MigrationError, migrate
from .pgserver import PgServer, start_postgres
from .store import (
    ENGINE_ROLE,
    PLATFORM_ORG_ID,
    EntityRecord,
    EntityResult,
    EntityWrite,
    ExecutionNotFound,
    InvalidWrite,
    RelationshipResult,
    RelationshipWrite,
    StepAudit,
    StepKey,
    Store,
    StoreError,
    StoreUnavailable,
    TransactionLineWrite,
    TransactionResult,
    TransactionWrite,
    UnknownOrganization,
)

__all__ = [
    "ENGINE_ROLE",
    "PLATFORM_ORG_ID",
    "EntityRecord",
    "EntityResult",
    "EntityWrite",
    "ExecutionNotFound",
    "InvalidWrite",
    "MigrationError",
    "PgServer",
    "RelationshipResult",
    "RelationshipWrite",
    "StepAudit",
    "StepKey",
    "Store",
    "StoreError",
    "StoreUnavailable",
    "TransactionLineWrite",
    "TransactionResult",
    "TransactionWrite",
    "UnknownOrganization",
    "migrate",
    "start_postgres",
]
