"""The Spark engine's tests: one local SparkSession per test process (a JVM), shared by every test of it."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import duckdb
import pyspark  # noqa: E402,F401  (the dev extra installs it: a missing PySpark fails here, never skips)
import pytest

from crm_assets.engines.spark import session

# Timestamps of when a row was written: the only columns the engines may disagree on.
WRITE_TIMES = {"loaded_at", "computed_at", "checked_at", "applied_at"}
# Types as they come back through Parquet (DuckDB reading Spark's files)
PARQUET_TYPES = {"JSON": "VARCHAR"}


@pytest.fixture(scope="session")
def spark():
    spark = session("local[2]", driver_memory="1g")
    # tiny tables: one shuffle partition (not spark.sql.codegen.wholeStage=false: Spark 3.5's interpreted
    # filters then fail on dynamic partition pruning, "dynamicpruning#... has not finished", in a month re-run)
    spark.conf.set("spark.sql.shuffle.partitions", "1")
    return spark


def columns_of(con: duckdb.DuckDBPyConnection, table: str) -> dict[str, str]:
    """Column -> type of ``table``, the write times left out, the types as Parquet keeps them."""
    described = con.execute(f"DESCRIBE {table}").fetchall()
    return {name: PARQUET_TYPES.get(kind, kind) for name, kind, *_ in described if name not in WRITE_TIMES}


def rows_of(con: duckdb.DuckDBPyConnection, table: str, columns, where: str = "true") -> Counter:
    """The multiset of ``table``'s rows, as tuples of ``columns`` (by name, in the given order)."""
    listed = ", ".join(f'"{c}"' for c in columns)
    return Counter(con.execute(f"SELECT {listed} FROM {table} WHERE {where}").fetchall())


def duckdb_tables(con: duckdb.DuckDBPyConnection) -> set[str]:
    return {
        f"{s}.{t}"
        for s, t in con.execute(
            "SELECT table_schema, table_name FROM information_schema.tables WHERE table_catalog = current_database()"
        ).fetchall()
    }


def partition_files(table_dir: Path) -> dict[str, dict[str, int]]:
    """month folder -> {file name: mtime_ns} of a Parquet table."""
    return {
        month.name: {f.name: f.stat().st_mtime_ns for f in sorted(month.iterdir())}
        for month in sorted(table_dir.iterdir())
        if month.is_dir() and "=" in month.name
    }
