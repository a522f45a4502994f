"""Every check twice: passing on good data, failing on data broken on purpose.

ERROR checks pass on the generated sample and fail after a targeted UPDATE
or INSERT; WARN checks pass on a clean hand-made data set and fail on the
generated sample, whose planted edge cases are what they warn about.
"""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

import duckdb
import pytest

from crm_assets.cli import generate
from crm_assets.core.partitioned import MonthWindow
from crm_assets.core.quality import ERROR, WARN, evaluate
from crm_assets.engines.duckdb import DuckDBEngine
from crm_assets.layers.checks import all_checks
from crm_assets.layers.pipeline import build_all

from ..pipeline import write_inputs

FIRST, LAST = date(2020, 1, 1), date(2026, 10, 1)


def window(start: date, end: date) -> MonthWindow:
    keys, m = [], start
    while m <= end:
        keys.append(m.strftime("%Y-%m-%d"))
        m = date(m.year + (m.month == 12), m.month % 12 + 1, 1)
    return MonthWindow(start, end, tuple(keys))


SAMPLE_WINDOW = window(date(2021, 1, 1), date(2025, 12, 1))
CLEAN_WINDOW = window(date(2023, 1, 1), date(2024, 7, 1))


@pytest.fixture(scope="module")
def sample_db(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("quality_sample")
    generate.generate(root / "input")
    path = root / "sample.duckdb"
    con = duckdb.connect(str(path))
    build_all(con, root / "input", SAMPLE_WINDOW, FIRST, LAST)
    con.close()
    return path


@pytest.fixture(scope="module")
def clean_db(tmp_path_factory) -> Path:
    """The worked example of the business rules plus a second, ordinary customer: nothing to warn about."""
    root = tmp_path_factory.mktemp("quality_clean")
    write_inputs(
        root / "input",
        ["P1,Pods,B,consumable,10", "D1,Machine,B,device,"],
        ["C1,Ann,Loyalty,Paris,2023-01-10,a@x.org,+331,1,0,", "C2,Bob,Retail,Lyon,2023-01-02,,,0,1,1"],
        {
            "2023": [
                "A,C1,2023-01-15,D1,1,100,S1",
                "A,C1,2023-01-15,P1,3,10,S1",
                "B,C1,2023-02-20,P1,2,5,S1",
                "B,C1,2023-02-27,P1,-1,-2,S1",
                "C,C1,2023-06-30,P1,5,5,S1",
                "E,C2,2023-03-03,P1,4,4,S2",
            ],
            "2024": ["D,C1,2024-07-01,P1,1,1,S1", "F,C2,2024-02-03,P1,4,4,S2"],
        },
    )
    path = root / "clean.duckdb"
    con = duckdb.connect(str(path))
    build_all(con, root / "input", CLEAN_WINDOW, FIRST, LAST)
    con.close()
    return path


def copy_of(path: Path, tmp_path: Path) -> duckdb.DuckDBPyConnection:
    target = tmp_path / "copy.duckdb"
    shutil.copy(path, target)
    return duckdb.connect(str(target))


def outcome(con, check, w: MonthWindow):
    return evaluate(DuckDBEngine(con), [check], w.start, w.end, w.keys)[0]


# Each ERROR check with a statement that breaks exactly what it guards.
M = "DATE '2024-06-01'"
BREAKS = {
    (
        "features/customer_features",
        "unique_customer_month",
    ): f"INSERT INTO features.customer_features SELECT * FROM features.customer_features WHERE report_month = {M} LIMIT 1",
    (
        "features/customer_features",
        "row_count_matches_entered_customers",
    ): f"DELETE FROM features.customer_features WHERE report_month = {M} AND customer_id IN (SELECT customer_id FROM features.customer_features WHERE report_month = {M} LIMIT 1)",
    (
        "features/customer_features",
        "windows_monotonic",
    ): f"UPDATE features.customer_features SET m6 = m12 + 1 WHERE report_month = {M} AND customer_id IN (SELECT customer_id FROM features.customer_features WHERE report_month = {M} AND m12 > 0 LIMIT 1)",
    (
        "features/customer_features",
        "null_rules",
    ): f"UPDATE features.customer_features SET tenure_months = NULL WHERE report_month = {M} AND lines_total > 0",
    (
        "features/customer_features",
        "m1_reconciles_with_lines",
    ): f"UPDATE features.customer_features SET m1 = m1 + 1 WHERE report_month = {M} AND m1 > 0",
    (
        "features/customer_features",
        "m_total_never_decreases",
    ): f"UPDATE features.customer_features SET m_total = 0 WHERE report_month = {M} AND m_total > 0",
}


def _broken_value(table: str, column: str, value: str) -> str:
    return f"UPDATE {table} SET {column} = {value} WHERE report_month = {M} AND customer_id IN (SELECT customer_id FROM {table} WHERE report_month = {M} LIMIT 1)"


for table, asset in (
    ("lifecycle.customer_lifecycle", "lifecycle/customer_lifecycle"),
    ("reporting.customer_snapshot", "reporting/customer_snapshot"),
):
    BREAKS[(asset, "unique_customer_month")] = (
        f"INSERT INTO {table} SELECT * FROM {table} WHERE report_month = {M} LIMIT 1"
    )
    BREAKS[(asset, "row_count_matches")] = (
        f"DELETE FROM {table} WHERE report_month = {M} AND customer_id IN (SELECT customer_id FROM {table} WHERE report_month = {M} LIMIT 3)"
    )
    BREAKS[(asset, "accepted_values_activity_status")] = _broken_value(table, "activity_status", "'Sleeping'")
    BREAKS[(asset, "accepted_values_lifecycle_stage")] = _broken_value(table, "lifecycle_stage", "'at risk'")
    BREAKS[(asset, "accepted_values_lifecycle_event")] = _broken_value(table, "lifecycle_event", "'Churned'")
    BREAKS[(asset, "lost_follows_active")] = (
        f"UPDATE {table} SET lifecycle_event = 'Lost' WHERE report_month = {M} AND activity_status = 'Active'"
    )
    BREAKS[(asset, "reactivated_follows_not_active")] = (
        f"UPDATE {table} SET lifecycle_event = 'Reactivated' WHERE report_month = {M} AND activity_status = 'Not Active'"
    )
    BREAKS[(asset, "new_follows_prospect")] = (
        f"UPDATE {table} SET lifecycle_event = 'New' WHERE report_month = {M} AND customer_id IN "
        f"(SELECT customer_id FROM {table} WHERE report_month = {M} - INTERVAL 1 MONTH AND lifecycle_stage = 'Active')"
    )
for table, asset in (
    ("rfmt.customer_rfmt", "rfmt/customer_rfmt"),
    ("reporting.customer_snapshot", "reporting/customer_snapshot"),
):
    BREAKS.setdefault(
        (asset, "unique_customer_month"), f"INSERT INTO {table} SELECT * FROM {table} WHERE report_month = {M} LIMIT 1"
    )
    BREAKS.setdefault(
        (asset, "row_count_matches"),
        f"DELETE FROM {table} WHERE report_month = {M} AND customer_id IN (SELECT customer_id FROM {table} WHERE report_month = {M} LIMIT 3)",
    )
    BREAKS[(asset, "accepted_values_value_tier")] = _broken_value(table, "value_tier", "'Titanium'")
    BREAKS[(asset, "accepted_values_prev_value_tier")] = _broken_value(table, "prev_value_tier", "'gold'")
    for score in ("r_score", "f_score", "m_score", "t_score"):
        BREAKS[(asset, f"accepted_values_{score}")] = _broken_value(table, score, "6")
    BREAKS[(asset, "value_tier_null_exactly_when_not_active")] = (
        f"UPDATE {table} SET value_tier = NULL WHERE report_month = {M} AND value_tier = 'Gold'"
    )
    BREAKS[(asset, "scores_null_exactly_when_not_active")] = (
        f"UPDATE {table} SET m_score = NULL WHERE report_month = {M} AND m_score = 5"
    )
SNAP = "reporting.customer_snapshot"
BREAKS[("reporting/customer_snapshot", "tenure_null_exactly_when_never_bought")] = (
    f"UPDATE {SNAP} SET tenure_months = 3 WHERE report_month = {M} AND m_total = 0"
)
BREAKS[("reporting/customer_snapshot", "consent_never_null")] = (
    f"ALTER TABLE {SNAP} ALTER opt_sms DROP NOT NULL; " + _broken_value(SNAP, "opt_sms", "NULL")
)
BREAKS[("reporting/customer_snapshot", "windows_monotonic")] = (
    f"UPDATE {SNAP} SET m25 = m_total + 1 WHERE report_month = {M} AND m_total > 0"
)
BREAKS[("reporting/customer_snapshot", "m1_reconciles_with_lines")] = (
    f"UPDATE {SNAP} SET m1 = m1 * 2 WHERE report_month = {M}"
)
BREAKS[("reporting/customer_snapshot", "m_total_never_decreases")] = (
    f"UPDATE {SNAP} SET m_total = m_total - 1 WHERE report_month = {M} AND m_total > 0"
)

ERROR_CHECKS = [c for c in all_checks() if c.severity == ERROR and c.sql is not None]
WARN_CHECKS = [c for c in all_checks() if c.severity == WARN]


def test_every_sql_error_check_has_a_breaking_case():
    assert {(c.asset, c.name) for c in ERROR_CHECKS} == set(BREAKS)


@pytest.mark.parametrize("check", ERROR_CHECKS, ids=lambda c: f"{c.asset}:{c.name}")
def test_error_check_passes_on_good_data_and_fails_when_broken(check, sample_db, tmp_path):
    con = copy_of(sample_db, tmp_path)
    good = outcome(con, check, SAMPLE_WINDOW)
    assert good.passed, good.summary()
    con.execute(BREAKS[(check.asset, check.name)])
    bad = outcome(con, check, SAMPLE_WINDOW)
    assert not bad.passed and bad.violations > 0
    assert "2024-06-01" in bad.failing_months or check.name.startswith("m_total")
    con.close()


# Problems the generator does not plant are planted here.
WARN_PLANTS = {
    (
        "raw/sales_transactions",
        "future_dated_lines",
    ): "INSERT INTO raw.sales_transactions SELECT * REPLACE (DATE '2099-01-01' AS invoice_date) FROM raw.sales_transactions LIMIT 1",
    ("raw/sales_transactions", "no_month_past_the_data"):  # the window's last month loses its lines
    "DELETE FROM raw.sales_transactions WHERE partition_month = (SELECT max(partition_month) FROM raw.sales_transactions)",
    (
        "raw/products",
        "rejected_rows",
    ): "INSERT INTO raw.rejected_rows VALUES ('products', 'products_master.csv', 9, 'P9,x', 'expected 5 fields, found 2')",
    (
        "raw/customers",
        "rejected_rows",
    ): "INSERT INTO raw.rejected_rows VALUES ('customers', 'customers_master.csv', 9, ',x', 'missing customer_id')",
    (
        "raw/customers",
        "invalid_created_date",
    ): "UPDATE raw.customers SET created_date = NULL, created_date_text = '2023-02-30' WHERE line_number = 2",
}


@pytest.mark.parametrize("check", WARN_CHECKS, ids=lambda c: f"{c.asset}:{c.name}")
def test_warning_check_passes_on_clean_data_and_fails_on_planted_problems(check, clean_db, sample_db, tmp_path):
    con = duckdb.connect(str(clean_db), read_only=True)
    good = outcome(con, check, CLEAN_WINDOW)
    con.close()
    assert good.passed, good.summary()
    con = copy_of(sample_db, tmp_path)
    if (check.asset, check.name) in WARN_PLANTS:
        con.execute(WARN_PLANTS[(check.asset, check.name)])
    bad = outcome(con, check, SAMPLE_WINDOW)
    con.close()
    assert not bad.passed and bad.violations > 0 and bad.sample()


def test_warnings_count_exactly_what_the_generator_planted(sample_db):
    con = duckdb.connect(str(sample_db), read_only=True)
    by_name = {
        o.check.name: o
        for o in evaluate(DuckDBEngine(con), WARN_CHECKS, SAMPLE_WINDOW.start, SAMPLE_WINDOW.end, SAMPLE_WINDOW.keys)
    }
    planted = generate.generate  # the counts below are the generator's documented plantings
    assert planted
    assert by_name["exact_duplicate_lines"].violations == 8
    rejected = [
        o
        for o in evaluate(DuckDBEngine(con), WARN_CHECKS, SAMPLE_WINDOW.start, SAMPLE_WINDOW.end, SAMPLE_WINDOW.keys)
        if o.check.name == "rejected_rows" and o.check.asset == "raw/sales_transactions"
    ]
    assert rejected[0].violations == 7
    assert by_name["orphan_customer_lines"].violations == 6
    assert by_name["orphan_product_lines"].violations == 4
    con.close()


def test_quality_record_has_a_row_per_check_and_month(sample_db):
    con = duckdb.connect(str(sample_db), read_only=True)
    rows = con.execute(
        "SELECT asset_key, check_name, count(*) FILTER (partition_key IS NOT NULL), count(*) FROM quality.check_results GROUP BY ALL"
    ).fetchall()
    con.close()
    by_check = {(a, c): (partitioned, total) for a, c, partitioned, total in rows}
    for check in all_checks():
        if check.asset.startswith("raw/"):
            continue  # the raw checks run in the Dagster assets: see test_quality_dagster.py
        partitioned, total = by_check[(check.asset, check.name)]
        assert total == (60 if check.partitioned else 1)
