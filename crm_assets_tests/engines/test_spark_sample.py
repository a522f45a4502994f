"""A generated sample (2 years, a few hundred customers, the generator's defects) built on DuckDB and on Spark.

- every table the Spark run writes (the raw copies and every later layer) equals the DuckDB warehouse's,
  row for row (a multiset) and column by column (by name, same types modulo Parquet), write times aside;
- every statement the Spark run executes is one the DuckDB run executes too (no rule of its own);
- a month re-run on Spark rewrites that month's partition folders only, and gives the DuckDB rows;
- a failing blocking check on Spark rolls back: the table's files and rows unchanged, no staging left.
"""

from __future__ import annotations

import dataclasses
import re
from datetime import date

import duckdb
import pytest

from crm_assets.cli import generate
from crm_assets.core import quality
from crm_assets.core.partitioned import MonthWindow
from crm_assets.core.quality import BlockingCheckError
from crm_assets.core.rules import CrmRules
from crm_assets.engines.spark import SparkEngine, parquet_tables, reader_connection
from crm_assets.layers import rfmt
from crm_assets.layers.pipeline import build_all
from crm_assets.layers.tables import LAYER_TABLES, RAW_DATA_TABLES

from .conftest import columns_of, duckdb_tables, partition_files, rows_of

pytestmark = pytest.mark.slow

FIRST, LAST = date(2024, 1, 1), date(2025, 12, 1)
RERUN = date(2025, 3, 1)
# tables the sample fills (others, e.g. features.repeated_orders, may rightly be empty on it)
MUST_HAVE_ROWS = {
    "raw.sales_transactions",
    "raw.rejected_rows",
    "enriched.customers",
    "enriched.transactions",
    "features.customer_month_activity",
    "features.customer_features",
    "lifecycle.customer_lifecycle",
    "rfmt.customer_rfmt",
    "reporting.customer_snapshot",
    "quality.check_results",
}


def month_window(start: date, end: date) -> MonthWindow:
    keys, m = [], start
    while m <= end:
        keys.append(m.isoformat())
        m = date(m.year + (m.month == 12), m.month % 12 + 1, 1)
    return MonthWindow(start, end, tuple(keys))


class Recording:
    """A DuckDB connection that notes every statement it is given (the DuckDB run's statements)."""

    def __init__(self, con):
        self._con = con
        self.statements: list[str] = []

    def execute(self, sql, *args, **kwargs):
        self.statements.append(sql)
        return self._con.execute(sql, *args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._con, name)


@pytest.fixture(scope="module")
def sample(tmp_path_factory, spark):
    root = tmp_path_factory.mktemp("spark-sample")
    summary = generate.generate(root / "input", customers=250, start="2024-01", end="2025-12")
    assert summary["planted"]["malformed_rows"] and summary["planted"]["returns"]  # the defects are in it
    window = month_window(FIRST, LAST)
    duck = Recording(duckdb.connect(str(root / "duckdb.duckdb")))
    build_all(duck, root / "input", window, FIRST, LAST)
    landing = duckdb.connect(str(root / "landing.duckdb"))
    engine = SparkEngine(spark, root / "spark")
    executed: list[str] = []
    run_execute, run_sql = engine.execute, engine.sql
    engine.execute = lambda sql, params=None: (executed.append(sql), run_execute(sql, params))[1]
    engine.sql = lambda sql, params=None: (executed.append(sql), run_sql(sql, params))[1]
    try:
        build_all(landing, root / "input", window, FIRST, LAST, engine=engine)
    finally:
        engine.execute, engine.sql = run_execute, run_sql
        landing.close()
    yield {
        "root": root,
        "duck": duck._con,
        "duck_statements": duck.statements,
        "spark_statements": executed,
        "engine": engine,
    }
    duck._con.close()


def spark_reader(sample):
    return reader_connection(sample["root"] / "spark", sample["root"] / "landing.duckdb")


def test_every_table_equals_the_duckdb_build(sample):
    duck = sample["duck"]
    written = set(parquet_tables(sample["root"] / "spark"))
    expected = {t.name for t in LAYER_TABLES if not t.name.startswith("raw.")} | {t.name for t in RAW_DATA_TABLES}
    expected &= duckdb_tables(duck)
    assert expected - written == set(), "tables the Spark run did not write"
    assert {t.name for t in RAW_DATA_TABLES} <= written
    reader = spark_reader(sample)
    try:
        differences = {}
        for table in sorted(written):
            want, got = columns_of(duck, table), columns_of(reader, table)
            assert got == want, f"{table}: columns or types differ"
            names = sorted(want)
            a, b = rows_of(duck, table, names), rows_of(reader, table, names)
            assert sum(a.values()) > 0 or table not in MUST_HAVE_ROWS, f"{table}: no rows to compare"
            if a != b:
                differences[table] = {"only_duckdb": list((a - b).items())[:3], "only_spark": list((b - a).items())[:3]}
        assert not differences, differences
    finally:
        reader.close()


def normalized(sql: str) -> str:
    return re.sub(r"\s+", " ", sql).strip()


def checks_of(statement: str) -> list[str]:
    """The checks a Spark run evaluates as one query (quality.evaluate: ``SELECT i AS check_index, * FROM
    (<check>) UNION ALL ...``), each as DuckDB runs it; any other statement as it is."""
    found = re.fullmatch(r"SELECT 0 AS check_index, \* FROM \((.*)\)", statement)
    if not found:
        return [statement]
    parts = re.split(r"\) UNION ALL SELECT \d+ AS check_index, \* FROM \(", found.group(1))
    return [normalized(part) for part in parts]


def test_every_spark_statement_is_a_statement_of_the_duckdb_run(sample):
    """The Spark engine runs the layers' own statements: a rule written a second time for Spark (a .sql file,
    an f-string in spark.py) would be a statement the DuckDB run never executes."""
    # the engine's one parameter of the layers' text: how customers are numbered in the window passes
    duck = {
        normalized(s).replace("row_number() OVER ()", SparkEngine.customer_number) for s in sample["duck_statements"]
    }
    spark = [part for s in sample["spark_statements"] for part in checks_of(normalized(s))]
    assert len(spark) > 50
    foreign = sorted({s[:300] for s in spark if s not in duck})
    assert not foreign, foreign


def snapshot_of_tables(reader, tables) -> dict:
    return {t: rows_of(reader, t, sorted(columns_of(reader, t))) for t in tables}


def test_a_month_rerun_on_spark_rewrites_that_month_only(sample, spark, tmp_path):
    root = sample["root"]
    spark_root = root / "spark"
    # the later layers' partitioned tables (the raw copies are copied whole from the landing, by design)
    tables = {
        name: t for name, t in parquet_tables(spark_root).items() if t.partitioned and not name.startswith("raw.")
    }
    assert {"features.customer_features", "reporting.customer_snapshot", "rfmt.customer_rfmt"} <= set(tables)
    month_folder = lambda table: next(  # noqa: E731
        p.name.split("=")[0] for p in (spark_root / table.replace(".", "/")).iterdir() if "=" in p.name
    )
    files_before = {name: partition_files(spark_root / name.replace(".", "/")) for name in tables}
    reader = spark_reader(sample)
    others = {name: f"{month_folder(name)} <> DATE '{RERUN}'" for name in tables}
    before = {name: rows_of(reader, name, sorted(columns_of(reader, name)), others[name]) for name in tables}
    reader.close()

    # the month's input changes: its lines of one day are dropped (returns and all)
    day = RERUN.replace(day=10).isoformat()
    year_file = root / "input" / f"sales_transactions_{RERUN.year}.csv"
    kept = [ln for ln in year_file.read_text().splitlines(keepends=True) if f",{day}," not in ln]
    assert len(kept) < len(year_file.read_text().splitlines())
    year_file.write_text("".join(kept))

    landing = duckdb.connect(str(root / "landing.duckdb"))
    try:
        build_all(
            landing, root / "input", month_window(RERUN, RERUN), FIRST, LAST, engine=SparkEngine(spark, spark_root)
        )
    finally:
        landing.close()

    reader = spark_reader(sample)
    fresh = duckdb.connect()
    build_all(fresh, root / "input", month_window(FIRST, LAST), FIRST, LAST)
    try:
        changed = {}
        for name in tables:
            files_after = partition_files(spark_root / name.replace(".", "/"))
            month = f"{month_folder(name)}={RERUN.isoformat()}"
            others_before = {k: v for k, v in files_before[name].items() if k != month}
            others_after = {k: v for k, v in files_after.items() if k != month}
            assert others_after == others_before, f"{name}: another month's folder was rewritten"
            if files_before[name].get(month):
                assert files_after.get(month) != files_before[name][month], f"{name}: the month was not rewritten"
            columns = sorted(columns_of(reader, name))
            assert rows_of(reader, name, columns, others[name]) == before[name], name
            this_month = f"{month_folder(name)} = DATE '{RERUN}'"
            ignore = {"run_id", "previous_customers", "added", "removed"} | {
                c for c in columns if c.startswith("changed_")
            }
            compared = [c for c in columns if c not in ignore] if name == "reporting.snapshot_changes" else columns
            if name in ("reporting.snapshot_changes",):
                continue  # a re-run's own bookkeeping: a fresh build has no earlier month to compare with
            got, want = rows_of(reader, name, compared, this_month), rows_of(fresh, name, compared, this_month)
            if name == "reporting.snapshot_manifest":  # a row per run of a month: the re-run's is added
                got = got & want if not (want - got) else got
            if got != want:
                changed[name] = {
                    "only_spark": list((got - want).items())[:2],
                    "only_duckdb": list((want - got).items())[:2],
                }
        assert not changed, changed
    finally:
        reader.close()
        fresh.close()


def test_a_failing_blocking_check_on_spark_leaves_the_table_as_it_was(sample, spark, monkeypatch):
    spark_root = sample["root"] / "spark"
    table_dir = spark_root / "rfmt" / "customer_rfmt"
    files = partition_files(table_dir)
    reader = spark_reader(sample)
    columns = sorted(columns_of(reader, "rfmt.customer_rfmt"))
    rows = rows_of(reader, "rfmt.customer_rfmt", columns)
    reader.close()
    index, check = next((i, c) for i, c in enumerate(rfmt.CHECKS) if c.severity == quality.ERROR and c.sql)
    always = (
        "SELECT report_month, count(*), min(customer_id) FROM rfmt.customer_rfmt "
        "WHERE report_month BETWEEN $start AND $end GROUP BY report_month"
    )
    checks = list(rfmt.CHECKS)
    checks[index] = dataclasses.replace(check, sql=always)
    monkeypatch.setattr(rfmt, "CHECKS", checks)
    engine = SparkEngine(spark, spark_root)
    with pytest.raises(BlockingCheckError, match=check.name):
        rfmt.build_rfmt(engine, month_window(date(2025, 5, 1), date(2025, 6, 1)), CrmRules(), "blocked")
    assert partition_files(table_dir) == files
    reader = spark_reader(sample)
    try:
        assert rows_of(reader, "rfmt.customer_rfmt", columns) == rows
        recorded = reader.execute(
            "SELECT count(*) FROM quality.check_results WHERE run_id = 'blocked' AND NOT passed"
        ).fetchone()
        assert recorded == (2,)
    finally:
        reader.close()
    staging = spark_root / "_staging"
    assert not staging.exists() or not any(staging.iterdir())
