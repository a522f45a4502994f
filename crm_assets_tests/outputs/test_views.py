"""The reporting views on a small hand-made warehouse, every figure worked out by hand.

The warehouse built here (``small``) is also the fixture of test_workbook,
test_exports and test_powerbi. Products: ``P1`` consumable of 10 units,
``D1`` device. Every customer is created 2024-01-05; months 2024-01..2024-03.

| customer | group / city | consent (email, sms, phone) | contact on file | lines |
|---|---|---|---|---|
| ``007`` | Loyalty / Paris | 1, 0, 0 | email, mobile | P1 x100 Jan (S1), x50 Feb (S1), x10 Mar (S2) |
| ``7`` | Retail / Lyon | 0, 1, 0 | email, mobile | D1 + P1 x3 Jan (S2) |
| ``C3`` | Retail / Paris | yes, no, y | email, mobile | P1 x200 Feb (S3) |
| ``C4`` | Online / Lyon | 1, 1, 1 | mobile only | none |
| ``C5`` | Loyalty / Saint-Étienne | 0, 0, 0 | email only | D1 Jan (S1) |
| ``G1`` | General (anonymous) | 1, 1, 1 | both | P1 x5 Jan (S1): never evaluated |

Resulting snapshot (value tier by AMC = m6 / 6: 007 Silver 166.7 in Jan,
Gold 250 in Feb and 266.7 in Mar; 7 Bronze 5; C3 Gold 333.3 from Feb; C4
and C5 Prospects, Not Active):

| month | 007 | 7 | C3 | C4 | C5 |
|---|---|---|---|---|---|
| 2024-01 | Silver, New event | Bronze, New event | - | - | - |
| 2024-02 | Gold (prev Silver) | Bronze | Gold, New event | - | - |
| 2024-03 | Gold | Bronze | Gold | - | - |
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import duckdb
import pytest
from dagster import AssetKey

from crm_assets.core.partitioned import MonthWindow
from crm_assets.definitions import build_definitions
from crm_assets.engines.duckdb import DuckDBEngine
from crm_assets.outputs.views import VIEWS, build_views

from ..conftest import query
from ..pipeline import run_pipeline, write_inputs

PRODUCTS = ["P1,Pods,B,consumable,10", "D1,Machine,B,device,"]
CUSTOMERS = [
    "007,Ann,Loyalty,Paris,2024-01-05,ann@x.org,+331,1,0,0",
    "7,Bob,Retail,Lyon,2024-01-05,bob@x.org,+332,0,1,0",
    "C3,Cid,Retail,Paris,2024-01-05,cid@x.org,+333,yes,no,y",
    "C4,Dee,Online,Lyon,2024-01-05,,+334,1,1,1",
    "C5,Eve,Loyalty,Saint-Étienne,2024-01-05,eve@x.org,,0,0,0",
    "G1,Walk-in,General,Paris,2024-01-05,till@x.org,+339,1,1,1",
]
TRANSACTIONS = {
    "2024": [
        "A1,007,2024-01-10,P1,100,100,S1",
        "B1,7,2024-01-20,D1,1,300,S2",
        "B1,7,2024-01-20,P1,3,3,S2",
        "E1,C5,2024-01-25,D1,1,300,S1",
        "G,G1,2024-01-05,P1,5,5,S1",
        "A2,007,2024-02-10,P1,50,50,S1",
        "C1,C3,2024-02-15,P1,200,200,S3",
        "A3,007,2024-03-10,P1,10,10,S2",
    ]
}
MONTHS = ("2024-01", "2024-03")
JAN, FEB, MAR = date(2024, 1, 1), date(2024, 2, 1), date(2024, 3, 1)


@dataclass
class Small:
    input_dir: Path
    warehouse: Path
    output_dir: Path


def build_small(root: Path) -> Small:
    """Write the files above and run every asset for 2024-01..2024-03 (outputs under ``root/warehouse/output``)."""
    folder = write_inputs(root / "input", PRODUCTS, CUSTOMERS, TRANSACTIONS)
    warehouse = root / "warehouse" / "crm.duckdb"
    run_pipeline(folder, warehouse, *MONTHS, workbook_months=0)
    return Small(folder, warehouse, warehouse.parent / "output")


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> Small:
    return build_small(tmp_path_factory.mktemp("small"))


def warehouse_copy(small: Small, folder: Path, *statements: str) -> Path:
    """A writable copy of the small warehouse in ``folder``, with ``statements`` applied to it."""
    copy = folder / "copy.duckdb"
    shutil.copy(small.warehouse, copy)
    if statements:
        con = duckdb.connect(str(copy))
        try:
            for statement in statements:
                con.execute(statement)
        finally:
            con.close()
    return copy


def test_snapshot_is_as_worked_out(small):
    rows = query(
        small.warehouse,
        "SELECT strftime(report_month, '%Y-%m'), customer_id, value_tier, prev_value_tier, lifecycle_event "
        "FROM reporting.customer_snapshot ORDER BY 1, 2",
    )
    assert rows == [
        ("2024-01", "007", "Silver", None, "New"),
        ("2024-01", "7", "Bronze", None, "New"),
        ("2024-01", "C3", None, None, None),
        ("2024-01", "C4", None, None, None),
        ("2024-01", "C5", None, None, None),
        ("2024-02", "007", "Gold", "Silver", None),
        ("2024-02", "7", "Bronze", "Bronze", None),
        ("2024-02", "C3", "Gold", None, "New"),
        ("2024-02", "C4", None, None, None),
        ("2024-02", "C5", None, None, None),
        ("2024-03", "007", "Gold", "Gold", None),
        ("2024-03", "7", "Bronze", "Bronze", None),
        ("2024-03", "C3", "Gold", "Gold", None),
        ("2024-03", "C4", None, None, None),
        ("2024-03", "C5", None, None, None),
    ]


def test_segment_summary_reconciles_with_the_snapshot(small):
    per_month = query(
        small.warehouse,
        """
        SELECT s.report_month, s.n, v.customers, s.units_month, v.units_month, s.units_12m, v.units_12m
        FROM (SELECT report_month, count(*) n, sum(m1) units_month, sum(m12) units_12m
              FROM reporting.customer_snapshot GROUP BY 1) s
        JOIN (SELECT report_month, sum(customers) customers, sum(units_month) units_month, sum(units_12m) units_12m
              FROM reporting.segment_summary GROUP BY 1) v USING (report_month)
        ORDER BY 1
        """,
    )
    assert [r[0] for r in per_month] == [JAN, FEB, MAR]
    for _, n, customers, u1, v1, u12, v12 in per_month:
        assert (n, u1, u12) == (customers, v1, v12)
    by_group = query(
        small.warehouse,
        "SELECT customer_group, sum(customers), sum(units_month) FROM reporting.segment_summary "
        "WHERE report_month = ? GROUP BY 1 ORDER BY 1",
        [MAR],
    )
    assert by_group == [("Loyalty", 2, 100.0), ("Online", 1, 0.0), ("Retail", 2, 0.0)]
    by_city_tier = query(
        small.warehouse,
        "SELECT city, value_tier, sum(customers) FROM reporting.segment_summary WHERE report_month = ? "
        "AND activity_status = 'Active' GROUP BY 1, 2 ORDER BY 1, 2",
        [FEB],
    )
    assert by_city_tier == [("Lyon", "Bronze", 1), ("Paris", "Gold", 2)]


def test_tier_migration_matrix(small):
    def matrix(month):
        return query(
            small.warehouse,
            "SELECT from_tier, to_tier, customers FROM reporting.tier_migration WHERE report_month = ? "
            "ORDER BY from_order, to_order",
            [month],
        )

    assert matrix(JAN) == [("(no tier)", "Silver", 1), ("(no tier)", "Bronze", 1), ("(no tier)", "(no tier)", 3)]
    assert matrix(FEB) == [
        ("Silver", "Gold", 1),
        ("Bronze", "Bronze", 1),
        ("(no tier)", "Gold", 1),
        ("(no tier)", "(no tier)", 2),
    ]
    assert matrix(MAR) == [("Gold", "Gold", 2), ("Bronze", "Bronze", 1), ("(no tier)", "(no tier)", 2)]
    # sort orders follow the spec: Diamond 1 .. Passive 6, (no tier) 7
    assert query(small.warehouse, "SELECT DISTINCT to_tier, to_order FROM reporting.tier_migration ORDER BY 2") == [
        ("Gold", 3),
        ("Silver", 4),
        ("Bronze", 5),
        ("(no tier)", 7),
    ]


def test_cohort_retention(small):
    rows = query(
        small.warehouse,
        "SELECT report_month, cohort_month, months_since, cohort_size, active_customers, share_active "
        "FROM reporting.cohort_retention ORDER BY 1, 2",
    )
    assert rows == [
        (JAN, JAN, 0, 2, 2, 1.0),
        (FEB, JAN, 1, 2, 2, 1.0),
        (FEB, FEB, 0, 1, 1, 1.0),
        (MAR, JAN, 2, 2, 2, 1.0),
        (MAR, FEB, 1, 1, 1, 1.0),
    ]


def test_contactable_customers_per_channel(small):
    rows = query(
        small.warehouse,
        "SELECT channel, customers, consented, contactable, contactable_active FROM reporting.contactable_customers "
        "WHERE report_month = ? ORDER BY channel_order",
        [MAR],
    )
    assert rows == [
        ("email", 5, 3, 2, 2),  # 007, C3, C4 consent; C4 has no email; 007 and C3 Active
        ("sms", 5, 2, 2, 1),  # 7, C4; 7 Active
        ("phone", 5, 2, 2, 1),  # C3, C4; C3 Active
        ("any", 5, 4, 4, 3),
    ]
    # in January C3 is not Active yet
    assert query(
        small.warehouse,
        "SELECT contactable_active FROM reporting.contactable_customers WHERE report_month = ? AND channel = 'phone'",
        [JAN],
    ) == [(0,)]


def test_device_owners_who_never_bought_a_consumable(small):
    rows = query(
        small.warehouse,
        "SELECT customer_group, device_owners, owners_with_consumable, owners_without_consumable, attach_rate "
        "FROM reporting.device_attach WHERE report_month = ? ORDER BY 1",
        [MAR],
    )
    assert rows == [("Loyalty", 1, 0, 1, 0.0), ("Retail", 1, 1, 0, 1.0)]


def test_views_are_replaced_not_appended(small, tmp_path):
    """Re-running a month gives the same rows (delete + insert of the window)."""
    copy = warehouse_copy(small, tmp_path)
    before = {name: query(copy, f"SELECT * FROM reporting.{name} ORDER BY ALL") for name in VIEWS}
    con = duckdb.connect(str(copy))
    try:
        build_views(DuckDBEngine(con), MonthWindow(FEB, MAR, ("2024-02-01", "2024-03-01")))
    finally:
        con.close()
    assert {name: query(copy, f"SELECT * FROM reporting.{name} ORDER BY ALL") for name in VIEWS} == before


def test_view_assets_are_monthly_and_materialized(small):
    graph = build_definitions().resolve_asset_graph()
    for name in ("segment_summary", "tier_migration", "cohort_retention", "contactable_customers", "device_attach"):
        node = graph.get(AssetKey(["reporting", name]))
        assert node.partitions_def is not None
        assert AssetKey(["reporting", "customer_snapshot"]) in node.parent_keys
        months = query(small.warehouse, f"SELECT count(DISTINCT report_month) FROM reporting.{name}")
        assert months == [(3,)], name
