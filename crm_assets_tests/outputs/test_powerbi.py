"""The Power BI star schema: files, Parquet types, keys, row counts reconciled with the warehouse, atomic refresh.

Built on the small hand-made warehouse of test_views (5 evaluated customers x
3 months = 15 snapshot rows; the anonymous G1 is in no file).
"""

from __future__ import annotations

import os
import threading
import time
from datetime import date

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from dagster import AssetKey

from crm_assets.core.rules import EVENTS, STAGES, STATUSES, TIERS
from crm_assets.definitions import build_definitions
from crm_assets.layers.reporting import SNAPSHOT_COLUMNS
from crm_assets.outputs import pbip, powerbi, star

from ..conftest import query
from .test_views import JAN, MAR, small, warehouse_copy  # noqa: F401 - the module-scoped warehouse fixture

TABLES = {
    "fact_customer_month",
    "dim_customer",
    "dim_date",
    "dim_month",
    "dim_activity_status",
    "dim_value_tier",
    "dim_lifecycle_stage",
    "dim_lifecycle_event",
}
# the names in the folder: a Parquet file per dimension, the fact's folder and the Power BI project
FILES = {f"{t}.parquet" for t in TABLES - {"fact_customer_month"}} | {
    "fact_customer_month",
    "CRM.pbip",
    "CRM.SemanticModel",
    "CRM.Report",
}


def table(small, name, folder=None):  # noqa: F811
    folder = folder or small.output_dir / "powerbi"
    if name == "fact_customer_month":  # a folder of one file per month
        return pa.concat_tables(pq.read_table(p) for p in sorted((folder / name).glob("*.parquet")))
    return pq.read_table(folder / f"{name}.parquet")


def listing(folder):
    """Every file of a star schema folder, by path relative to it (the fact's month files, the project's files)."""
    return {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()}


def test_the_folder_holds_the_star_schema_and_nothing_else(small):  # noqa: F811
    folder = small.output_dir / "powerbi"
    assert {p.name for p in folder.iterdir()} == FILES
    assert {p.name for p in (folder / "fact_customer_month").iterdir()} == {
        "fact_customer_month_2024-01.parquet",
        "fact_customer_month_2024-02.parquet",
        "fact_customer_month_2024-03.parquet",
    }
    assert not [p for p in small.output_dir.iterdir() if p.name.startswith(".powerbi.new")]


def test_fact_is_the_snapshot_row_for_row_with_its_types(small):  # noqa: F811
    fact = table(small, "fact_customer_month")
    assert fact.column_names == list(star.FACT_TABLE.names())
    assert fact.column_names[-len(SNAPSHOT_COLUMNS) :] == list(SNAPSHOT_COLUMNS)  # the keys, then the snapshot
    assert fact.num_rows == query(small.warehouse, "SELECT count(*) FROM reporting.customer_snapshot")[0][0] == 15
    schema = fact.schema
    for name in (
        "report_month",
        "first_device_purchase_date",
        "first_consumable_purchase_date",
        "last_consumable_purchase_date",
    ):
        assert schema.field(name).type == pa.date32(), name  # DATE, not an integer timestamp
    assert schema.field("m_total").type == pa.float64() and schema.field("o6").type == pa.int64()
    assert schema.field("r_score").type == pa.int32() and schema.field("opt_email").type == pa.bool_()
    assert schema.field("customer_id").type == pa.string()
    path = str(small.output_dir / "powerbi" / "fact_customer_month" / "*.parquet")
    con = duckdb.connect(str(small.warehouse), read_only=True)
    try:
        for a, b in (
            (f"(SELECT {', '.join(SNAPSHOT_COLUMNS)} FROM read_parquet(?))", "reporting.customer_snapshot"),
            ("reporting.customer_snapshot", f"(SELECT {', '.join(SNAPSHOT_COLUMNS)} FROM read_parquet(?))"),
        ):
            diff = con.execute(
                f"SELECT count(*) FROM (SELECT * FROM {a} EXCEPT ALL SELECT * FROM {b})", [path]
            ).fetchone()
            assert diff == (0,)
    finally:
        con.close()


def test_dim_customer_has_contact_data_only_where_consented(small):  # noqa: F811
    rows = {r["customer_id"]: r for r in table(small, "dim_customer").to_pylist()}
    assert sorted(rows) == ["007", "7", "C3", "C4", "C5"]  # the evaluated customers; G1 (anonymous) is not
    contact = {k: (r["email"], r["mobile_number"]) for k, r in rows.items()}
    assert contact == {
        "007": ("ann@x.org", None),  # e-mail consent only
        "7": (None, "+332"),  # SMS consent only
        "C3": ("cid@x.org", "+333"),  # e-mail and phone
        "C4": (None, "+334"),  # consents to e-mail but has no address
        "C5": (None, None),  # no consent: its e-mail stays out
    }
    assert rows["C5"]["city"] == "Saint-Étienne" and rows["C3"]["customer_group"] == "Retail"
    assert rows["007"]["first_report_month"] == JAN and rows["007"]["last_report_month"] == MAR
    assert rows["007"]["created_date"] == date(2024, 1, 5)


def test_dim_month(small):  # noqa: F811
    months = table(small, "dim_month").to_pylist()
    assert [m["report_month"] for m in months] == [JAN, date(2024, 2, 1), MAR]
    assert [m["is_latest"] for m in months] == [False, False, True]
    assert [m["months_from_latest"] for m in months] == [-2, -1, 0]
    march = months[-1]
    assert (march["year"], march["quarter"], march["quarter_label"], march["month_number"]) == (2024, 1, "Q1", 3)
    assert (march["month_name"], march["month_short"], march["year_month"], march["year_month_sort"]) == (
        "March",
        "Mar",
        "2024-03",
        202403,
    )
    assert march["month_label"] == "Mar 2024" and march["year_quarter"] == "2024-Q1"


def test_is_latest_is_the_newest_month_with_data(small, tmp_path):  # noqa: F811
    # March built, but without a transaction (as after an explicit crm run --to past the data): February is latest
    copy = warehouse_copy(
        small, tmp_path, "DELETE FROM raw.sales_transactions WHERE partition_month = DATE '2024-03-01'"
    )
    con = duckdb.connect(str(copy), read_only=True)
    try:
        rows = con.execute(
            f"SELECT report_month, is_latest, months_from_latest FROM ({powerbi.DIM_MONTH_SQL})"
        ).fetchall()
    finally:
        con.close()
    assert rows == [(JAN, False, -1), (date(2024, 2, 1), True, 0), (MAR, False, 1)]


@pytest.mark.parametrize(
    "name, column, values",
    [
        ("dim_activity_status", "activity_status", STATUSES),
        ("dim_value_tier", "value_tier", TIERS),
        ("dim_lifecycle_stage", "lifecycle_stage", STAGES),
        ("dim_lifecycle_event", "lifecycle_event", EVENTS),
    ],
)
def test_small_dimensions_have_a_sort_order_and_cover_the_fact(small, name, column, values):  # noqa: F811
    dim = table(small, name).to_pylist()
    assert [(d[column], d[f"{column}_key"]) for d in dim] == [(v, i) for i, v in enumerate(values, 1)]
    assert all(d[f"{column}_definition"] for d in dim)
    fact = table(small, "fact_customer_month")
    used = {v for v in fact.column(column).to_pylist() if v is not None}
    assert used <= set(values)
    # the fact's key of each row is the key of its value in the dimension
    keys = {d[column]: d[f"{column}_key"] for d in dim}
    pairs = zip(fact.column(column).to_pylist(), fact.column(f"{column}_key").to_pylist())
    assert all(key == keys.get(value) for value, key in pairs)


def test_every_fact_key_has_its_dimension_row(small):  # noqa: F811
    fact = table(small, "fact_customer_month")
    customers = table(small, "dim_customer")
    assert set(fact.column("customer_id").to_pylist()) == set(customers.column("customer_id").to_pylist())
    key_of = dict(zip(customers.column("customer_id").to_pylist(), customers.column("customer_key").to_pylist()))
    assert [key_of[c] for c in fact.column("customer_id").to_pylist()] == fact.column("customer_key").to_pylist()
    assert set(fact.column("report_month").to_pylist()) == set(
        table(small, "dim_month").column("report_month").to_pylist()
    )
    assert set(fact.column("report_month").to_pylist()) <= set(table(small, "dim_date").column("date").to_pylist())


def _write(small, output_dir, warehouse=None):  # noqa: F811
    con = duckdb.connect(str(warehouse or small.warehouse), read_only=True)
    try:
        return powerbi.write_star_schema(con, output_dir)
    finally:
        con.close()


@pytest.mark.parametrize("exchange", [True, False], ids=["atomic-exchange", "two-renames"])
def test_refresh_replaces_the_whole_folder(small, tmp_path, monkeypatch, exchange):  # noqa: F811
    if not exchange:
        monkeypatch.setattr(powerbi, "_exchange", lambda a, b: False)
    out = tmp_path / "out"
    first = _write(small, out)
    (first.folder / "stale.parquet").write_bytes(b"from an older layout")
    second = _write(small, out)
    assert {p.name for p in second.folder.iterdir()} == FILES  # nothing of the old set is left
    assert second.rows["fact_customer_month"] == 15 and second.rows["dim_customer"] == 5
    # the previous set stays aside (hidden) for readers still reading it; no staging folder is left
    aside = sorted(p.name for p in out.iterdir() if p.name != "powerbi")
    assert len(aside) == 1 and aside[0].startswith(".powerbi.old-")
    assert listing(out / aside[0]) == listing(second.folder) | {"stale.parquet"}
    # the project of a set reads the set's final place, never the staging folder it was written in
    expressions = second.folder / "CRM.SemanticModel" / "definition" / "expressions.tmdl"
    assert pbip.m_string(str(second.folder.resolve())) in expressions.read_text()
    # ... until its grace period is over
    monkeypatch.setattr(powerbi, "RETIRED_GRACE_SECONDS", 0.0)
    _write(small, out)
    assert [p.name for p in out.iterdir()] == ["powerbi"]


def test_a_failed_refresh_keeps_the_previous_files(small, tmp_path, monkeypatch):  # noqa: F811
    out = tmp_path / "out"
    _write(small, out)
    before = {p: (out / "powerbi" / p).read_bytes() for p in listing(out / "powerbi")}
    broken = dict(powerbi.table_sql(), dim_month="SELECT * FROM no_such_table")
    monkeypatch.setattr(powerbi, "table_sql", lambda: broken)
    with pytest.raises(duckdb.Error):
        _write(small, out)
    assert {p: (out / "powerbi" / p).read_bytes() for p in listing(out / "powerbi")} == before
    assert [p.name for p in out.iterdir()] == ["powerbi"]  # the staging folder is gone


def test_a_reader_never_sees_a_partial_set(small, tmp_path, monkeypatch):  # noqa: F811
    """A listing of the folder during refreshes always shows the complete set (the old or the new one)."""
    exchanged = []
    real_exchange = powerbi._exchange
    monkeypatch.setattr(powerbi, "_exchange", lambda a, b: exchanged.append(real_exchange(a, b)) or exchanged[-1])
    _write(small, tmp_path)
    seen: list[set[str]] = []
    stop = threading.Event()

    def watch():
        while not stop.is_set():
            try:
                seen.append({p.name for p in (tmp_path / "powerbi").iterdir()})
            except FileNotFoundError:
                seen.append(set())

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        for _ in range(5):
            _write(small, tmp_path)
    finally:
        stop.set()
        watcher.join()
    assert seen and all(s == FILES for s in seen if s)
    if exchanged and all(exchanged):
        assert all(seen)  # with an atomic exchange the folder never even disappears


def test_a_refresh_writes_only_the_months_computed_since_the_previous_set(small, tmp_path):  # noqa: F811
    warehouse = warehouse_copy(small, tmp_path)
    out = tmp_path / "out"
    first = _write(small, out, warehouse)
    assert (first.months_written, first.months_reused) == (3, 0)
    inode = {p.name: p.stat().st_ino for p in (out / "powerbi" / "fact_customer_month").glob("*.parquet")}
    second = _write(small, out, warehouse)
    assert (second.months_written, second.months_reused) == (0, 3)  # nothing recomputed: every file linked
    # February is computed again (a new manifest row) with a changed value: only its file is rewritten
    con = duckdb.connect(str(warehouse))
    try:
        con.execute("UPDATE reporting.customer_snapshot SET city = 'Lyon' WHERE report_month = '2024-02-01'")
        con.execute(
            "INSERT INTO reporting.snapshot_manifest SELECT report_month, 'run-2', current_timestamp::TIMESTAMP + "
            "INTERVAL 1 SECOND, rules_version, rules, customers FROM reporting.snapshot_manifest "
            "WHERE report_month = '2024-02-01' LIMIT 1"
        )
    finally:
        con.close()
    third = _write(small, out, warehouse)
    assert (third.months_written, third.months_reused) == (1, 2)
    now = {p.name: p.stat().st_ino for p in (out / "powerbi" / "fact_customer_month").glob("*.parquet")}
    changed = {name for name in now if now[name] != inode[name]}
    assert changed == {"fact_customer_month_2024-02.parquet"}
    fact = table(small, "fact_customer_month", out / "powerbi")
    cities = {(r["report_month"], r["city"]) for r in fact.to_pylist() if r["report_month"] == date(2024, 2, 1)}
    assert cities == {(date(2024, 2, 1), "Lyon")}
    assert fact.num_rows == 15


def test_star_schema_asset_is_unpartitioned_and_downstream_of_the_snapshot():
    node = build_definitions().resolve_asset_graph().get(AssetKey(["powerbi", "star_schema"]))
    assert node.partitions_def is None
    assert AssetKey(["reporting", "customer_snapshot"]) in node.parent_keys


def test_staging_folders_of_killed_refreshes_are_removed_later(small, tmp_path):  # noqa: F811
    out = tmp_path / "out"
    out.mkdir()
    killed = out / ".powerbi.new-deadbeef"
    killed.mkdir()
    (killed / "dim_month.parquet").write_bytes(b"half")
    hour_ago = time.time() - powerbi.STAGING_MAX_SECONDS - 5
    os.utime(killed, (hour_ago, hour_ago))
    recent = out / ".powerbi.new-cafebabe"  # a refresh running right now in another process
    recent.mkdir()
    _write(small, out)
    assert not killed.exists() and recent.exists()


def test_months_written_on_several_cursors_equal_the_months_written_one_after_another(small, tmp_path):  # noqa: F811
    sets = {}
    for threads in (1, 3):
        con = duckdb.connect(str(small.warehouse), read_only=True)
        try:
            con.execute(f"SET threads = {threads}")
            schema = powerbi.write_star_schema(con, tmp_path / str(threads))
        finally:
            con.close()
        assert schema.months_written == len(list((tmp_path / str(threads) / "powerbi" / powerbi.FACT).iterdir())) > 1
        folder = tmp_path / str(threads) / "powerbi"
        sets[threads] = {str(p.relative_to(folder)): pq.read_table(p).to_pylist() for p in folder.rglob("*.parquet")}
    assert sets[1] == sets[3]


def test_fact_files_of_another_layout_are_written_again(small, tmp_path, monkeypatch):  # noqa: F811
    out = tmp_path / "out"
    _write(small, out)
    monkeypatch.setattr(powerbi, "FACT_LAYOUT", "another")  # as after a release that adds a fact column
    again = _write(small, out)
    assert (again.months_written, again.months_reused) == (3, 0)
