"""The DuckDB engine: the layers' statements on a DuckDB connection, as they are written."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import duckdb

from crm_assets.core.columns import Table

# A window whose months hold more rows than this is written in parts of whole months (core/partitioned.py:
# month_parts), so that the joins and sorts of a long backfill over many customers stay within memory. (Parts
# sized to a larger memory limit were measured slower at XL: 1,030 s against 974 s with 10 GB.)
ROWS_PER_PART = 4_000_000

# Customers are processed in buckets (hash of the id) of about this many grid rows (customers x months) by the
# feature pass (layers/features.py), so that its window passes over many customers stay within memory.
GRID_ROWS_PER_BUCKET = 4_000_000


def one_row(con: duckdb.DuckDBPyConnection, sql: str, params: Any = None) -> tuple[Any, ...]:
    """The first row of ``sql`` on ``con``: a count, a max, a lookup that finds its row (none is an error)."""
    row = con.execute(sql, params).fetchone()
    if row is None:
        raise LookupError(f"no row: {' '.join(sql.split())[:120]}")
    return row


class DuckDBEngine:
    """A DuckDB connection as an ``Engine``: ``execute`` is the connection's own, the capabilities DuckDB's."""

    name = "duckdb"
    kind = "duckdb"
    rows_per_part: int | None = ROWS_PER_PART
    grid_rows_per_bucket: int | None = GRID_ROWS_PER_BUCKET
    # an unordered row number: the cheapest integer to sort the window passes on
    customer_number = "row_number() OVER ()"
    # a query costs little: each check is its own
    checks_in_one_query = False

    def __init__(self, con: duckdb.DuckDBPyConnection):
        self.con = con

    def execute(self, sql: str, params: Any = None) -> duckdb.DuckDBPyConnection:
        return self.con.execute(sql, params)

    def insert_rows(self, table: str, columns: Sequence[str], rows: Sequence[tuple]) -> None:
        """One statement over parallel lists, one per column, typed as the table's columns (a few thousand rows
        of check results for a long backfill): no row-by-row insert."""
        if not rows:
            return
        types = {row[0]: row[1] for row in self.con.execute(f"DESCRIBE {table}").fetchall()}
        values = ", ".join(f"unnest(${i}::{types[c]}[])" for i, c in enumerate(columns, 1))
        self.con.execute(f"INSERT INTO {table} ({', '.join(columns)}) SELECT {values}", [list(v) for v in zip(*rows)])

    def take_raw(self, landing: duckdb.DuckDBPyConnection, tables: Sequence[Table]) -> None:
        """Nothing: the engine computes on the landing's own file, where the raw tables are."""
