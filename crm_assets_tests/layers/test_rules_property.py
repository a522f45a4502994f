"""Property tests: the warehouse agrees with the independent Python implementation
(reference.py) on random small data sets, is point-in-time correct, and
rebuilding any months gives the same rows.
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, timedelta
from pathlib import Path
from unittest import mock

import duckdb
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crm_assets.core.partitioned import MonthWindow
from crm_assets.engines.duckdb import DuckDBEngine
from crm_assets.layers.pipeline import build_all
from crm_assets.layers.reporting import SNAPSHOT_COLUMNS

from .. import reference
from ..pipeline import write_inputs

FIRST_PARTITION = date(2020, 1, 1)
LAST_PARTITION = date(2026, 10, 1)
REPORT_START, REPORT_END = date(2022, 1, 1), date(2024, 12, 1)  # lines run 2022-01 .. 2025-03

PRODUCTS = [
    {"product_id": "P1", "category": "consumable", "unit_size": 10},
    {"product_id": "P2", "category": " Refill ", "unit_size": 2.5},
    {"product_id": "P3", "category": "CONSUMABLE", "unit_size": 1},
    {"product_id": "D1", "category": "device", "unit_size": None},
    {"product_id": "A1", "category": "accessories", "unit_size": None},
    {"product_id": "X1", "category": "gift_card", "unit_size": 5},
]
CUSTOMER_IDS = ["C1", "C2", "007", "7", "C5", "C6"]
CONSENTS = ["1", "0", "true", "FALSE", "Yes", "no", "y", "N", "", "maybe"]


def months(start: date, end: date) -> list[date]:
    out, m = [], start
    while m <= end:
        out.append(m)
        m = date(m.year + (m.month == 12), m.month % 12 + 1, 1)
    return out


def window(start: date, end: date) -> MonthWindow:
    ms = months(start, end)
    return MonthWindow(ms[0], ms[-1], tuple(m.strftime("%Y-%m-%d") for m in ms))


def day(offset: int) -> date:
    return date(2022, 1, 1) + timedelta(days=offset)


customer_st = st.fixed_dictionaries(
    {
        "customer_group": st.sampled_from(["Loyalty", "Retail", "General", " general "]),
        "created_date": st.one_of(st.none(), st.integers(0, 1185).map(day)),
        "opt_email": st.sampled_from(CONSENTS),
        "opt_sms": st.sampled_from(CONSENTS),
        "opt_phone": st.sampled_from(CONSENTS),
    }
)
line_st = st.fixed_dictionaries(
    {
        "invoice_id": st.sampled_from([f"I{i}" for i in range(1, 9)]),
        "customer_id": st.sampled_from(CUSTOMER_IDS + ["C404"]),
        "product_id": st.sampled_from([p["product_id"] for p in PRODUCTS] + ["P404"]),
        "date": st.integers(0, 1185).map(day),  # 2022-01-01 .. 2025-03-31
        "quantity": st.sampled_from([-2, -1, 0, 1, 2, 3, 5, 40, 120, 700]),
    }
)
dataset_st = st.tuples(
    st.lists(customer_st, min_size=1, max_size=len(CUSTOMER_IDS)),
    st.lists(line_st, min_size=0, max_size=45),
)


def to_files(folder: Path, customers: list[dict], lines: list[dict]) -> None:
    products = [
        f"{p['product_id']},name,brand,{p['category']},{'' if p['unit_size'] is None else p['unit_size']}"
        for p in PRODUCTS
    ]
    cust_rows = [
        f"{c['customer_id']},name,{c['customer_group']},City,{c['created_date'] or ''},e@x.org,+1,{c['opt_email']},{c['opt_sms']},{c['opt_phone']}"
        for c in customers
    ]
    by_year: dict[str, list[str]] = {}
    for ln in sorted(lines, key=lambda x: x["date"]):
        by_year.setdefault(str(ln["date"].year), []).append(
            f"{ln['invoice_id']},{ln['customer_id']},{ln['date']},{ln['product_id']},{ln['quantity']},1,S1"
        )
    write_inputs(folder, products, cust_rows, by_year or {"2023": []})


def warehouse_rows(con: duckdb.DuckDBPyConnection, where: str = "true") -> dict[tuple[date, str], dict]:
    cur = con.execute(f"SELECT * FROM reporting.customer_snapshot WHERE {where}")
    names = [d[0] for d in cur.description]
    return {(r[0], r[1]): dict(zip(names, r)) for r in cur.fetchall()}


def same(a, b) -> bool:
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, float) or isinstance(b, float):
        return math.isclose(float(a), float(b), rel_tol=1e-12, abs_tol=1e-9)
    return a == b


def build(folder: Path, start: date, end: date, con: duckdb.DuckDBPyConnection) -> None:
    build_all(con, folder, window(start, end), FIRST_PARTITION, LAST_PARTITION)


def with_ids(dataset) -> tuple[list[dict], list[dict]]:
    """The drawn customers (given their ids) and lines."""
    customers, lines = dataset
    for c, cid in zip(customers, CUSTOMER_IDS):
        c["customer_id"] = cid
    return customers, lines


@contextmanager
def landed(dataset) -> Iterator[tuple[Path, list[dict], list[dict]]]:
    """The dataset written as input files in a temporary folder: (folder, customers, lines)."""
    customers, lines = with_ids(dataset)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        to_files(folder, customers, lines)
        yield folder, customers, lines


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(dataset_st)
def test_warehouse_matches_reference_implementation(dataset):
    with landed(dataset) as (folder, customers, lines):
        con = duckdb.connect()
        build(folder, REPORT_START, REPORT_END, con)
        got = warehouse_rows(con)
        con.close()
    expected = reference.snapshot(PRODUCTS, customers, lines, months(REPORT_START, REPORT_END))
    assert set(got) == set(expected)
    for key, exp in expected.items():
        row = got[key]
        for column in SNAPSHOT_COLUMNS:
            if column in ("customer_group", "city"):
                continue
            assert same(row[column], exp[column]), (key, column, row[column], exp[column])


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(dataset_st, st.sampled_from(months(REPORT_START, REPORT_END)))
def test_point_in_time_rows_of_m_do_not_depend_on_later_lines(dataset, cut):
    customers, lines = with_ids(dataset)
    end_of_cut = date(cut.year + (cut.month == 12), cut.month % 12 + 1, 1) - timedelta(days=1)
    with tempfile.TemporaryDirectory() as tmp:
        full, cut_dir = Path(tmp) / "full", Path(tmp) / "cut"
        to_files(full, customers, lines)
        to_files(cut_dir, customers, [ln for ln in lines if ln["date"] <= end_of_cut])
        con_full, con_cut = duckdb.connect(), duckdb.connect()
        build(full, REPORT_START, REPORT_END, con_full)
        build(cut_dir, REPORT_START, cut, con_cut)
        where = f"report_month = DATE '{cut}'"
        assert warehouse_rows(con_full, where) == warehouse_rows(con_cut, where)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(dataset_st, st.sampled_from(months(REPORT_START, REPORT_END)), st.integers(0, 5))
def test_rebuilding_some_months_gives_the_same_warehouse(dataset, start, length):
    end = min(months(start, REPORT_END)[: length + 1][-1], REPORT_END)
    with landed(dataset) as (folder, _, _):
        con = duckdb.connect()
        build(folder, REPORT_START, REPORT_END, con)
        before = warehouse_rows(con)
        build(folder, start, end, con)
        assert warehouse_rows(con) == before


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(dataset_st)
def test_layers_computed_in_parts_equal_one_pass(dataset):
    """A long backfill computes the features in buckets of customers (the DuckDB engine's grid_rows_per_bucket)
    and lifecycle, RFMT and the snapshot in ranges of months (its rows_per_part)."""
    with landed(dataset) as (folder, _, _):
        one, bucketed = duckdb.connect(), duckdb.connect()
        build(folder, REPORT_START, REPORT_END, one)
        # a few customers per bucket, a few months per part
        with (
            mock.patch.object(DuckDBEngine, "grid_rows_per_bucket", 40),
            mock.patch.object(DuckDBEngine, "rows_per_part", 7),
        ):
            build(folder, REPORT_START, REPORT_END, bucketed)
        assert warehouse_rows(bucketed) == warehouse_rows(one)
        for table in (
            "features.customer_features",
            "lifecycle.customer_lifecycle",
            "rfmt.customer_rfmt",
            "reporting.customer_snapshot",
        ):
            dump = f"SELECT * FROM {table} ORDER BY report_month, customer_id"
            assert bucketed.execute(dump).fetchall() == one.execute(dump).fetchall(), table
