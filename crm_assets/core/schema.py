"""The warehouse's schema version and the ordered migrations that bring an older warehouse up to it.

Every layer creates its tables with ``CREATE TABLE IF NOT EXISTS`` in their
newest shape; a migration changes a table that an earlier release created
(a column added, a type widened). ``meta.schema_version`` records each
version applied. Opening a warehouse to write applies the missing
migrations in order, in one transaction; a warehouse written by a newer
release is refused in one line, before anything is read or written.

To change the shape of an existing table: change its ``CREATE`` in the
layer, append a migration here (idempotent SQL: ``IF EXISTS`` /
``IF NOT EXISTS``), and the upgrade test covers it.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb

from crm_assets.core.errors import CrmError

# Schemas whose tables an earlier release may have created (a warehouse with any of them but no version is
# an earlier release's: version 0).
LAYER_SCHEMAS = ("raw", "enriched", "features", "lifecycle", "rfmt", "reporting", "quality")


@dataclass(frozen=True)
class Migration:
    version: int
    description: str
    sql: str


MIGRATIONS = (
    Migration(
        1,
        "raw.file_loads records the version of each file read (file_digest)",
        "ALTER TABLE IF EXISTS raw.file_loads ADD COLUMN IF NOT EXISTS file_digest VARCHAR",
    ),
    Migration(
        2,
        "raw.file_profiles keeps the newest invoice date of each file and month",
        "ALTER TABLE IF EXISTS raw.file_profiles ADD COLUMN IF NOT EXISTS last_invoice_date DATE",
    ),
    Migration(
        3,
        "quality.check_results records what each count counts (unit); blank on the rows recorded before",
        "ALTER TABLE IF EXISTS quality.check_results ADD COLUMN IF NOT EXISTS unit VARCHAR",
    ),
)
SCHEMA_VERSION = MIGRATIONS[-1].version

DDL = """
CREATE SCHEMA IF NOT EXISTS meta;
CREATE TABLE IF NOT EXISTS meta.schema_version (
    version INTEGER NOT NULL, description VARCHAR NOT NULL, applied_at TIMESTAMP NOT NULL DEFAULT current_timestamp
);
"""


class NewerWarehouseError(CrmError):
    """The warehouse was written by a newer release of the project."""


def recorded_version(con: duckdb.DuckDBPyConnection) -> int | None:
    """The newest version applied; 0 for a warehouse of an earlier release; None for an empty file."""
    try:  # the common case, in a fraction of a millisecond (every connection asks)
        return con.execute("SELECT coalesce(max(version), 0) FROM meta.schema_version").fetchall()[0][0]
    except duckdb.CatalogException:
        pass
    tables = dict(
        con.execute(
            "SELECT table_schema || '.' || table_name, 1 FROM information_schema.tables "
            "WHERE table_schema IN (SELECT unnest(?::VARCHAR[])) OR (table_schema = 'meta' AND table_name = 'schema_version')",
            [list(LAYER_SCHEMAS)],
        ).fetchall()
    )
    if "meta.schema_version" in tables:
        return con.execute("SELECT coalesce(max(version), 0) FROM meta.schema_version").fetchall()[0][0]
    return 0 if tables else None


def _refuse_newer(version: int, path: str) -> None:
    if version > SCHEMA_VERSION:
        raise NewerWarehouseError(
            f"{path}: the warehouse was written by a newer release (schema version {version}; this one knows "
            f"{SCHEMA_VERSION}): upgrade crm_assets, or point CRM_WAREHOUSE at another file"
        )


def check_readable(con: duckdb.DuckDBPyConnection, path: str) -> None:
    """For a read-only connection: refuse a newer warehouse (an older one is read as it is)."""
    version = recorded_version(con)
    if version is not None:
        _refuse_newer(version, path)


def upgrade(con: duckdb.DuckDBPyConnection, path: str) -> list[Migration]:
    """Bring the warehouse open on ``con`` to ``SCHEMA_VERSION``; returns the migrations applied."""
    version = recorded_version(con)
    if version == SCHEMA_VERSION:
        return []
    if version is not None:
        _refuse_newer(version, path)
    pending = list(MIGRATIONS) if version is None else [m for m in MIGRATIONS if m.version > version]
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute(DDL)
        if version is None:  # a new warehouse: the layers create the newest shape, nothing to migrate
            con.execute(
                "INSERT INTO meta.schema_version (version, description) VALUES (?, 'new warehouse')", [SCHEMA_VERSION]
            )
            pending = []
        for migration in pending:
            con.execute(migration.sql)
            con.execute(
                "INSERT INTO meta.schema_version (version, description) VALUES (?, ?)",
                [migration.version, migration.description],
            )
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return pending
