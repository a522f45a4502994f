"""The ``Engine`` protocol: what the layers need from the connection they compute on."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import duckdb

from crm_assets.core.columns import Table


class Result(Protocol):
    """The rows of a statement, read as a DuckDB result is read."""

    def fetchall(self) -> list[Any]: ...

    def fetchone(self) -> Any: ...


@runtime_checkable
class Engine(Protocol):
    """Where the layers after raw run their statements (``Warehouse.engine()`` opens the one of the setting).

    An engine runs the layers' statements, written once in DuckDB's dialect, and declares as plain attributes
    how it wants them cut, how it numbers customers and how it evaluates checks: the layers read them and never
    ask which engine they are on."""

    name: str  # the setting's value: CRM_ENGINE=duckdb or spark
    kind: str  # the Dagster asset kind of the assets computed on it
    # rows of a table per part of a window's months (core/partitioned.py: month_parts); None: the whole window in
    # one statement (an engine that spills by itself)
    rows_per_part: int | None
    # customers x months of the feature grid per bucket of customers (layers/features.py); None: one bucket
    grid_rows_per_bucket: int | None
    # the SQL that numbers a customer for the feature pass's windows (the alias ``c`` is enriched.customers)
    customer_number: str
    # the checks of a write as one query (an engine whose every query has a fixed cost), else one query each
    checks_in_one_query: bool

    def execute(self, sql: str, params: Any = None) -> Result:
        """Run ``sql`` (statements in DuckDB's dialect; ``?`` or ``$name`` parameters) and return its rows."""
        ...

    def insert_rows(self, table: str, columns: Sequence[str], rows: Sequence[tuple]) -> None:
        """Append ``rows`` (a value for each of ``columns``, by name) to ``table``: small bookkeeping tables."""
        ...

    def take_raw(self, landing: duckdb.DuckDBPyConnection, tables: Sequence[Table]) -> None:
        """Take the raw layer's ``tables`` the DuckDB ``landing`` just loaded (the raw layer always loads into
        DuckDB): an engine that keeps its tables elsewhere copies them."""
        ...
