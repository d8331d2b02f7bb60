"""Postgres store of the playbook engine: the universal tables, their migrations, a dev/test server.

Pure database code (asyncpg, pydantic) on top of the model package: the activities wrap it for Temporal,
and the CLI and the benchmarks use it on their own.
"""

from model.audit import StepAudit

from . import catalog
from .catalog import RUNNABLE, CatalogEntry, CatalogNotFound
from .connection import ENGINE_ROLE
from .errors import ExecutionNotFound, InvalidWrite, StoreError, StoreUnavailable, UnknownOrganization
from .migrate import MigrationError, migrate
from .pgserver import PgServer, start_postgres
from .records import (
    EntityRecord,
    EntityResult,
    EntityWrite,
    ExecutionWrite,
    RelationshipResult,
    RelationshipWrite,
    StepKey,
    TransactionLineWrite,
    TransactionResult,
    TransactionWrite,
)
from .store import PLATFORM_ORG_ID, Store

__all__ = [
    "ENGINE_ROLE",
    "PLATFORM_ORG_ID",
    "RUNNABLE",
    "CatalogEntry",
    "CatalogNotFound",
    "EntityRecord",
    "EntityResult",
    "EntityWrite",
    "ExecutionNotFound",
    "ExecutionWrite",
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
    "catalog",
    "migrate",
    "start_postgres",
]
