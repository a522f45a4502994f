"""A few random data sets of layers/test_rules_property.py (its strategies) built on Spark: the snapshot equals
the independent Python implementation of the rules (reference.py)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings

from crm_assets.engines.spark import SparkEngine, reader_connection
from crm_assets.layers.pipeline import build_all
from crm_assets.layers.reporting import SNAPSHOT_COLUMNS

from .. import reference
from ..layers.test_rules_property import (
    FIRST_PARTITION,
    LAST_PARTITION,
    PRODUCTS,
    REPORT_END,
    REPORT_START,
    dataset_st,
    months,
    same,
    to_files,
    window,
    with_ids,
)

pytestmark = pytest.mark.slow

# the DuckDB property tests' range: the build starts at the lines' first month, so that every line is history
# of the report months (a build of later months alone on an empty warehouse would not load the earlier ones)


@settings(
    max_examples=3, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
)
@given(dataset=dataset_st)
def test_spark_snapshot_matches_reference_implementation(spark, dataset):
    customers, lines = with_ids(dataset)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "input"
        to_files(folder, customers, lines)
        landing = Path(tmp) / "landing.duckdb"
        con = duckdb.connect(str(landing))
        engine = SparkEngine(spark, Path(tmp) / "spark")
        build_all(con, folder, window(REPORT_START, REPORT_END), FIRST_PARTITION, LAST_PARTITION, engine=engine)
        con.close()
        reader = reader_connection(engine.root, landing)
        # by name: the reader's views put a table's month column (its folder names) last
        cur = reader.execute("SELECT * FROM reporting.customer_snapshot")
        names = [d[0] for d in cur.description]
        got = {(r["report_month"], r["customer_id"]): r for r in (dict(zip(names, row)) for row in cur.fetchall())}
        reader.close()
    expected = reference.snapshot(PRODUCTS, customers, lines, months(REPORT_START, REPORT_END))
    assert set(got) == set(expected)
    for key, exp in expected.items():
        for column in SNAPSHOT_COLUMNS:
            if column in ("customer_group", "city"):
                continue
            assert same(got[key][column], exp[column]), (key, column, got[key][column], exp[column])
