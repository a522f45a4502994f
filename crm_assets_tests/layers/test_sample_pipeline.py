"""The whole pipeline on the default generated sample, run as `crm run` runs it, and its printed workbook.

One Dagster run backfills all 60 months; the result covers every value of
the rules, keeps the cross-month facts of business_rules.md section 6, and
agrees row by row with the independent pandas implementation of the rules
in test_generate.py.
"""

from __future__ import annotations

import math
import os
import re
import shutil
import subprocess
from datetime import date
from pathlib import Path

import duckdb
import pytest
from dagster import AssetKey, DagsterInstance

from crm_assets.cli import generate
from crm_assets.cli.main import main
from crm_assets.core.resources import Warehouse
from crm_assets.core.rules import EVENTS, STAGES, TIERS
from crm_assets.outputs import workbook
from crm_assets.outputs.explain import EXPLAINED, EXPLAINED_KEYS, explain_sql, recorded_rules

from ..cli.test_generate import snapshots as oracle_snapshots
from ..conftest import query

pytestmark = pytest.mark.slow
DOC_IMAGES = Path(__file__).resolve().parents[2] / "docs" / "images"


@pytest.fixture(scope="module")
def sample_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("sample")
    input_dir, warehouse, home = root / "input", root / "warehouse" / "crm.duckdb", root / "dagster_home"
    generate.generate(input_dir)
    mp = pytest.MonkeyPatch()
    mp.setenv("DAGSTER_HOME", str(home))
    mp.setenv("CRM_WAREHOUSE", str(warehouse))
    mp.setenv("CRM_INPUT_DIR", str(input_dir))
    mp.setenv("CRM_OUTPUT_DIR", str(root / "output"))
    home.mkdir()
    code = main(["run", "--input", str(input_dir), "--warehouse", str(warehouse)])
    yield input_dir, warehouse, home, code
    mp.undo()


def test_sixty_month_backfill_is_one_successful_run(sample_run):
    _, warehouse, home, code = sample_run
    assert code == 0

    os.environ["DAGSTER_HOME"] = str(home)
    with DagsterInstance.get() as instance:
        runs = instance.get_run_records()
        assert len(runs) == 1 and runs[0].dagster_run.is_success
        for key in (
            ["raw", "sales_transactions"],
            ["features", "customer_features"],
            ["reporting", "customer_snapshot"],
        ):
            materialized = instance.get_materialized_partitions(AssetKey(key))
            assert len(materialized) == 60, key
    assert query(warehouse, "SELECT count(DISTINCT report_month) FROM reporting.customer_snapshot") == [(60,)]


def test_every_value_occurs(sample_run):
    warehouse = sample_run[1]

    def values(column):
        return {
            v
            for (v,) in query(
                warehouse, f"SELECT DISTINCT {column} FROM reporting.customer_snapshot WHERE {column} IS NOT NULL"
            )
        }

    assert values("value_tier") == set(TIERS)
    assert values("prev_value_tier") == set(TIERS)
    assert values("lifecycle_stage") == set(STAGES)
    assert values("lifecycle_event") == set(EVENTS)
    assert values("activity_status") == {"Active", "Not Active"}
    for score in ("r_score", "f_score", "m_score", "t_score"):
        assert values(score) == {1, 2, 3, 4, 5}, score


def test_rows_read_equal_loaded_plus_rejected(sample_run):
    warehouse = sample_run[1]
    rows = query(
        warehouse,
        """
        SELECT f.source_file, f.rows_read,
            (SELECT count(*) FROM raw.sales_transactions t WHERE t.source_file = f.source_file)
            + (SELECT count(*) FROM raw.rejected_rows r WHERE r.source_file = f.source_file)
        FROM raw.file_loads f WHERE f.file_kind = 'sales_transactions'
        """,
    )
    assert len(rows) == 5 and all(read == accounted for _, read, accounted in rows)
    assert query(warehouse, "SELECT count(*) FROM raw.rejected_rows") == [(7,)]


CROSS_MONTH_VIOLATIONS = {
    "Lost in M implies Active in M-1 and Not Active in M": """
        SELECT count(*) FROM s cur LEFT JOIN s prev ON prev.customer_id = cur.customer_id
            AND prev.report_month = cur.report_month - INTERVAL 1 MONTH
        WHERE cur.lifecycle_event = 'Lost'
          AND (cur.activity_status <> 'Not Active' OR prev.activity_status IS DISTINCT FROM 'Active')""",
    "Reactivated in M implies Not Active in M-1, Active in M, not New": """
        SELECT count(*) FROM s cur LEFT JOIN s prev ON prev.customer_id = cur.customer_id
            AND prev.report_month = cur.report_month - INTERVAL 1 MONTH
        WHERE cur.lifecycle_event = 'Reactivated'
          AND (cur.activity_status <> 'Active' OR prev.activity_status IS DISTINCT FROM 'Not Active')""",
    "New in M implies Prospect in M-1 or not yet entered": """
        SELECT count(*) FROM s cur LEFT JOIN s prev ON prev.customer_id = cur.customer_id
            AND prev.report_month = cur.report_month - INTERVAL 1 MONTH
        WHERE cur.lifecycle_event = 'New' AND cur.report_month > (SELECT min(report_month) FROM s)
          AND prev.customer_id IS NOT NULL AND prev.lifecycle_stage <> 'Prospect'""",
    "m_total never decreases": """
        SELECT count(*) FROM s cur JOIN s prev ON prev.customer_id = cur.customer_id
            AND prev.report_month = cur.report_month - INTERVAL 1 MONTH
        WHERE cur.m_total < prev.m_total""",
    "value_tier NULL exactly when Not Active": """
        SELECT count(*) FROM s WHERE (value_tier IS NULL) <> (activity_status = 'Not Active')""",
    "tenure_months NULL exactly when m_total = 0": """
        SELECT count(*) FROM s WHERE (tenure_months IS NULL) <> (m_total = 0)""",
    "scores NULL exactly when Not Active": """
        SELECT count(*) FROM s WHERE (r_score IS NULL OR f_score IS NULL OR m_score IS NULL OR t_score IS NULL)
            <> (activity_status = 'Not Active')""",
    "m1 <= m6 <= m12 <= m13 <= m24 <= m25 <= m_total": """
        SELECT count(*) FROM s WHERE NOT (m1 <= m6 AND m6 <= m12 AND m12 <= m13 AND m13 <= m24 AND m24 <= m25 AND m25 <= m_total)""",
    "a customer once entered stays in every later month": """
        SELECT count(*) FROM s cur LEFT JOIN s nxt ON nxt.customer_id = cur.customer_id
            AND nxt.report_month = cur.report_month + INTERVAL 1 MONTH
        WHERE cur.report_month < (SELECT max(report_month) FROM s) AND nxt.customer_id IS NULL""",
}


@pytest.mark.parametrize("fact", sorted(CROSS_MONTH_VIOLATIONS))
def test_cross_month_facts_hold_on_the_whole_sample(sample_run, fact):
    warehouse = sample_run[1]
    sql = "WITH s AS (SELECT * FROM reporting.customer_snapshot) " + CROSS_MONTH_VIOLATIONS[fact]
    assert query(warehouse, sql) == [(0,)]
    # the facts are not vacuous: each event occurs
    assert query(warehouse, "SELECT count(DISTINCT lifecycle_event) FROM reporting.customer_snapshot") == [(3,)]


def test_sum_of_m1_reconciles_with_qualifying_units_of_the_month(sample_run):
    warehouse = sample_run[1]
    rows = query(
        warehouse,
        """
        WITH lines AS (
            SELECT t.invoice_month AS m, sum(t.quantity * p.unit_size) AS units
            FROM raw.sales_transactions t
            JOIN raw.products p ON trim(p.product_id) = trim(t.product_id)
            JOIN raw.customers c ON trim(c.customer_id) = trim(t.customer_id)
            WHERE lower(trim(p.category)) IN ('consumable', 'refill') AND t.quantity > 0
              AND lower(trim(c.customer_group)) <> 'general'
            GROUP BY 1
        ),
        snap AS (SELECT report_month AS m, sum(m1) AS units FROM reporting.customer_snapshot GROUP BY 1)
        SELECT snap.m, snap.units, coalesce(lines.units, 0) FROM snap LEFT JOIN lines USING (m)
        """,
    )
    assert len(rows) == 60
    for month, got, expected in rows:
        assert math.isclose(got, expected, rel_tol=1e-9), month


def test_warehouse_matches_independent_pandas_rules_on_every_row(sample_run):
    input_dir, warehouse = sample_run[0], sample_run[1]
    expected = oracle_snapshots(input_dir, "2021-01", "2025-12")
    got = query(
        warehouse,
        """
        SELECT (year(report_month) * 12 + month(report_month) - 1) AS month, customer_id, m_total, m1, m6, m12, m13,
            m24, m25, o6, o12, activity_status, value_tier, lifecycle_stage, lifecycle_event,
            r_score, f_score, m_score, t_score, tenure_months
        FROM reporting.customer_snapshot
        """,
    )
    assert len(got) == len(expected)
    exp = {(int(r.month), r.customer_id): r for r in expected.itertuples()}
    for month, cid, m_total, m1, m6, m12, m13, m24, m25, o6, o12, status, tier, stage, event, r, f, m, t, tenure in got:
        e = exp[(month, cid)]
        assert math.isclose(m_total, e.m_total) and math.isclose(m1, e.m1) and math.isclose(m6, e.m6)
        assert math.isclose(m12, e.m12) and math.isclose(m13, e.m13) and math.isclose(m24, e.m24)
        assert math.isclose(m25, e.m25) and (o6, o12) == (e.o6, e.o12)
        assert (status, tier, stage, event) == tuple(_none(x) for x in (e.status, e.tier, e.stage, e.event)), (
            month,
            cid,
        )
        exp_scores = tuple(None if _none(x) is None else int(x) for x in (e.r, e.f, e.m, e.t))
        assert (r, f, m, t) == exp_scores, (month, cid)


def _none(value):
    """pandas spells a missing value NaN; the warehouse spells it NULL."""
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else value


# The printed December 2025 workbook of the sample (LibreOffice, A4): the nine summary sheets on 11 pages
# (KPIs 1, Tier mix 1, Trends 2, Lifecycle 1, Segments 1, Migration 1, Cohorts 1, Reach 1, Definitions 2),
# the list of 1,980 customers on 17 more: 28. Before the page setup: 380 pages.
SUMMARY_PAGES = 13
CUSTOMERS_PER_PAGE = 100


def _pdf_pages(xlsx: Path, out: Path) -> int:
    soffice = shutil.which("soffice") or shutil.which("libreoffice")
    assert soffice, "LibreOffice (Debian's libreoffice-calc-nogui) is required (installed by .ci/run)"
    profile = out / "lo_profile"  # a profile of its own: no clash with another LibreOffice of the machine
    subprocess.run(
        [
            soffice,
            f"-env:UserInstallation=file://{profile}",
            "--headless",
            "--convert-to",
            "pdf",
            "--outdir",
            str(out),
            str(xlsx),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    pdf = out / f"{xlsx.stem}.pdf"
    return len(re.findall(rb"/Type\s*/Page[^s]", pdf.read_bytes()))


def test_the_newest_workbook_prints_within_the_stated_pages(sample_run, tmp_path):
    _, warehouse = sample_run[0], sample_run[1]
    path = warehouse.parent.parent / "output" / "reports" / "crm_summary_2025-12.xlsx"
    summary_only = tmp_path / "summary_2025-12.xlsx"
    with Warehouse(database=str(warehouse)).connect(read_only=True) as con:
        customers = workbook.build_workbook(con, date(2025, 12, 1), summary_only, with_list=False).customers
    summary_pages = _pdf_pages(summary_only, tmp_path)
    # one page more for the Customers sheet that says how to get the list
    assert 9 <= summary_pages <= SUMMARY_PAGES + 1
    whole = _pdf_pages(path, tmp_path)
    list_pages = whole - (summary_pages - 1)
    assert 1 <= list_pages <= math.ceil(customers / CUSTOMERS_PER_PAGE), (whole, summary_pages)
    if os.environ.get("CRM_UPDATE_DOC_IMAGES") == "1":
        # docs/images/workbook_tier_mix.png: the Tier mix page (page 2) as printed, small
        subprocess.run(
            [
                "pdftoppm",
                "-f",
                "2",
                "-l",
                "2",
                "-r",
                "60",
                "-png",
                "-singlefile",
                str(tmp_path / f"{summary_only.stem}.pdf"),
                str(DOC_IMAGES / "workbook_tier_mix"),
            ],
            check=True,
        )


def test_explanations_agree_with_the_stored_values_on_every_row(sample_run):
    """crm explain's statement over every customer-month: its first matching branch is the stored value and its
    sentence names it, for every rule; and every branch of the tier, stage, event and status explains a row."""
    _, warehouse, _, _ = sample_run
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        first, last, versions = con.execute(
            "SELECT min(report_month), max(report_month), count(DISTINCT rules_version) FROM reporting.snapshot_manifest"
        ).fetchone()
        assert versions == 1
        rules = recorded_rules(con, last).rules
        wrong = " OR ".join(
            f"{k}_explained IS DISTINCT FROM {k}_stored "
            f"OR NOT starts_with({k}_words, coalesce(CAST({k}_stored AS VARCHAR), 'none') || ':')"
            for k in EXPLAINED_KEYS
        )
        labels = ", ".join(f"list(DISTINCT split_part({e.key}_words, ':', 1)) AS {e.key}" for e in EXPLAINED)
        rows, wrong_rows, *seen = con.execute(
            f"SELECT count(*), count(*) FILTER (WHERE {wrong}), {labels} FROM ({explain_sql(rules)})",
            {"start": first, "end": last, "customer": None},
        ).fetchone()
        snapshot_rows = con.execute("SELECT count(*) FROM reporting.customer_snapshot").fetchone()[0]
    finally:
        con.close()
    assert rows == snapshot_rows > 0
    assert wrong_rows == 0
    for e, labels_seen in zip(EXPLAINED, seen):
        if e.key in ("status", "tier", "stage", "event", "r_score", "f_score", "t_score"):
            assert sorted(labels_seen) == sorted(b.label for b in e.rule.branches), e.key
