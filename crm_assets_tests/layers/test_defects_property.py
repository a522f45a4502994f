"""Properties of defective and changing extracts, without Dagster (the same build functions the assets call).

1. Inserting any defective line anywhere into a valid file changes nothing but
   the rejected rows (and the line numbers of the lines after it).
2. Correcting, adding or removing lines of any month, then running any
   ``--from``/``--to`` range (widened as ``crm run`` widens it, removals
   allowed), leaves the warehouse equal to a clean build of the files.
"""

from __future__ import annotations

import tempfile
from datetime import date
from pathlib import Path

import duckdb
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crm_assets.cli.runner import resolve_months
from crm_assets.core.errors import CrmError
from crm_assets.core.partitioned import MonthWindow
from crm_assets.engines.duckdb import DuckDBEngine
from crm_assets.layers.pipeline import build_all
from crm_assets.outputs.views import build_views

from ..conftest import CUSTOMER_HEADER, PRODUCT_HEADER, TX_HEADER, lines, write

FIRST, LAST = date(2020, 1, 1), date(2026, 10, 1)
MONTHS = ["2023-10-01", "2023-11-01", "2023-12-01", "2024-01-01", "2024-02-01"]
BASE = {
    "2023": ["A,C1,2023-10-15,P1,3,10,S1", "B,C2,2023-11-20,P1,2,5,S1", "C,C1,2023-12-30,P1,5,1,S1"],
    "2024": ["D,C1,2024-01-05,P1,1,1,S1", "E,C2,2024-02-10,P1,2,1,S1", "F,C3,2024-02-11,P1,1,1,S2"],
}
# run history, timestamps and per-run bookkeeping differ between two builds of the same files by design
RUN_TABLES = {
    "reporting.snapshot_manifest",
    "reporting.snapshot_changes",
    "quality.check_results",
    "raw.file_months",
    "reporting.month_builds",
}


def landing(folder: Path, transactions: dict[str, list[str]]) -> Path:
    write(folder / "products_master.csv", lines(PRODUCT_HEADER, "P1,Pods,B,consumable,10", "D1,Machine,B,device,"))
    write(
        folder / "customers_master.csv",
        lines(
            CUSTOMER_HEADER,
            "C1,Ann,Loyalty,Paris,2023-01-10,,,1,0,",
            "C2,Bo,Loyalty,Lyon,,,,,,",
            "C3,Cy,General,Nice,,,,,,",
        ),
    )
    for year, rows in transactions.items():
        write(folder / f"sales_transactions_{year}.csv", lines(TX_HEADER, *rows))
    return folder


def window(first: str, last: str) -> MonthWindow:
    keys, (y, m) = [], (int(first[:4]), int(first[5:7]))
    while f"{y:04d}-{m:02d}-01" <= last:
        keys.append(f"{y:04d}-{m:02d}-01")
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return MonthWindow(date.fromisoformat(keys[0]), date.fromisoformat(keys[-1]), tuple(keys))


def build(folder: Path, warehouse: Path, first: str, last: str, allow_removals: bool = False) -> None:
    warehouse.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(warehouse))
    try:
        build_all(con, folder, window(first, last), FIRST, LAST, allow_removals=allow_removals)
        build_views(DuckDBEngine(con), window(first, last))  # a crm run builds the reporting views too
    finally:
        con.close()


def tables(warehouse: Path, drop: tuple[str, ...] = ("loaded_at",)) -> dict[str, list[tuple]]:
    """Every table decided by the files, rows sorted, without the columns in ``drop``."""
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        names = con.execute("SELECT table_schema, table_name FROM information_schema.tables ORDER BY 1, 2").fetchall()
        dump = {}
        for schema, table in names:
            if f"{schema}.{table}" in RUN_TABLES:
                continue
            columns = [
                c
                for (c,) in con.execute(
                    "SELECT column_name FROM information_schema.columns WHERE table_schema = ? AND table_name = ? "
                    "ORDER BY ordinal_position",
                    [schema, table],
                ).fetchall()
                if c not in drop
            ]
            cols = ", ".join(f'"{c}"' for c in columns)
            dump[f"{schema}.{table}"] = con.execute(f'SELECT {cols} FROM "{schema}"."{table}" ORDER BY ALL').fetchall()
        return dump
    finally:
        con.close()


# --- 1. a defective line changes nothing but the rejected rows -----------------------------------

text = st.text(alphabet="abcXYZ019 ;", min_size=1, max_size=6)
DEFECT = st.one_of(
    st.builds(lambda a, b: [f'{a},"C{b},2023-11-05,P1,1,1,S1'], text, text),  # a quote left open
    st.builds(lambda a, b: [f'{a},"C1{b}', f'{b}",2023-11-05,P1,1,1,S1'], text, text),  # a field holding a line break
    st.builds(lambda q: [f"Q,C1,2023-11-05,P1,{q},1,S1"], st.integers(100_001, 10**15)),  # a bar code as quantity
    st.builds(lambda q: [f"Q,C1,2023-11-05,P1,{q!r},1,S1"], st.floats(1e5 + 1, 1e300)),
    st.builds(
        lambda d: [f"Q,C1,{d.year:04d}-{d.month:02d}-{d.day:02d},P1,1,1,S1"], st.dates(max_value=date(1969, 12, 31))
    ),  # a date before the bound
    st.sampled_from(
        [
            ["Q,C1,2023-02-30,P1,1,1,S1"],
            ["Q,C1,15/11/2023,P1,1,1,S1"],
            ["Q,C1,2023-11-05,P1,two,1,S1"],
            ["Q,,2023-11-05,P1,1,1,S1"],
            ["Q,C1,2023-11-05"],
            ["Q,C1,2023-11-05,P1,1,1,S1,extra"],
            ["Q,C1,2023-11-05,P1,nan,1,S1"],
        ]
    ),
)


def without_line_numbers(dump: dict) -> dict:
    # a line's place is part of the digests of its file and month (a line moved is a line changed)
    placed = ("raw.rejected_rows", "raw.file_loads", "raw.file_profiles", "raw.month_sources")
    return {k: v for k, v in dump.items() if k not in placed}


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(defect=DEFECT, year=st.sampled_from(["2023", "2024"]), position=st.integers(0, 3))
def test_a_defective_line_anywhere_changes_nothing_but_the_rejected_rows(defect, year, position):
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        clean = landing(tmp / "clean", BASE)
        broken_rows = dict(BASE)
        broken_rows[year] = BASE[year][:position] + defect + BASE[year][position:]
        broken = landing(tmp / "broken", broken_rows)
        build(clean, tmp / "a" / "crm.duckdb", MONTHS[0], MONTHS[-1])
        build(broken, tmp / "b" / "crm.duckdb", MONTHS[0], MONTHS[-1])
        a = tables(tmp / "a" / "crm.duckdb", drop=("loaded_at", "line_number", "file_digest", "file_bytes"))
        b = tables(tmp / "b" / "crm.duckdb", drop=("loaded_at", "line_number", "file_digest", "file_bytes"))
        assert without_line_numbers(a) == without_line_numbers(b)
        assert a["raw.rejected_rows"] == []
        # exactly the inserted physical lines are rejected, each with a reason
        # columns without line_number: file_kind, source_file, raw_line, reason
        assert sorted(r[2] for r in b["raw.rejected_rows"]) == sorted(defect)
        assert all(r[3] for r in b["raw.rejected_rows"])
        read = {r[1]: r[2:5] for r in b["raw.file_loads"]}  # rows read, valid, rejected
        assert read[f"sales_transactions_{year}.csv"] == (3 + len(defect), 3, len(defect))


# --- 2. any edit, then any range: the warehouse equals a clean build -----------------------------

LINE = st.builds(
    lambda i, c, m, d, q: f"{i},C{c},{m[:8]}{d:02d},P1,{q},1,S1",
    st.sampled_from(["A", "G", "H"]),
    st.integers(1, 3),
    st.sampled_from(MONTHS),
    st.integers(1, 28),
    st.integers(-1, 9),
)
EDIT = st.one_of(
    st.tuples(st.just("correct"), st.sampled_from(["2023", "2024"]), st.integers(0, 10), LINE),
    st.tuples(st.just("add"), st.sampled_from(["2023", "2024"]), st.integers(0, 10), LINE),
    st.tuples(st.just("remove"), st.sampled_from(["2023", "2024"]), st.integers(0, 10), st.none()),
)
RANGE = st.tuples(st.sampled_from([None, *MONTHS]), st.sampled_from([None, *MONTHS]))


@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
@given(steps=st.lists(st.tuples(st.lists(EDIT, min_size=1, max_size=3), RANGE), min_size=1, max_size=3))
def test_any_edit_then_any_range_equals_a_clean_build(monkeypatch, steps):
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        rows = {year: list(r) for year, r in BASE.items()}
        folder = landing(tmp / "input", rows)
        warehouse = tmp / "w" / "crm.duckdb"
        monkeypatch.setenv("CRM_WAREHOUSE", str(warehouse))
        build(folder, warehouse, MONTHS[0], MONTHS[-1])
        for edits, (start, end) in steps:
            for kind, year, index, line in edits:
                if kind == "correct" and rows[year]:
                    rows[year][index % len(rows[year])] = line
                elif kind == "add":
                    rows[year].insert(index % (len(rows[year]) + 1), line)
                elif kind == "remove" and rows[year]:
                    rows[year].pop(index % len(rows[year]))
            landing(folder, rows)
            if start and end and start > end:
                start, end = end, start
            try:
                months = resolve_months(start, end, folder, allow_removals=True)
            except CrmError:  # a range the data no longer reaches is refused: the user runs without one
                months = resolve_months(None, None, folder, allow_removals=True)
            build(folder, warehouse, months.first, months.last, allow_removals=True)
        con = duckdb.connect(str(warehouse), read_only=True)
        built = [
            m.strftime("%Y-%m-%d")
            for (m,) in con.execute(
                "SELECT DISTINCT report_month FROM reporting.customer_snapshot ORDER BY 1"
            ).fetchall()
        ]
        con.close()
        clean = tmp / "clean" / "crm.duckdb"
        build(folder, clean, built[0], built[-1])
        assert tables(warehouse) == tables(clean)
