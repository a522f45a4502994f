"""Raw layer: a file unchanged since its months were loaded is not read again.

Hand-made cases state which files a run reads; the property test runs random
sequences of file edits, removals and runs of random month ranges through
the skipping loader and through a loader that reads every file every time,
and requires the same raw tables after every run.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crm_assets.core import csv_input
from crm_assets.core import settings as crm_settings
from crm_assets.core.csv_input import HANDOFF_FOLDER
from crm_assets.core.errors import InputFileError
from crm_assets.core.landing import profile_folder
from crm_assets.layers import raw
from crm_assets.layers.raw import load_transactions

from ..conftest import TX_HEADER, lines, write

FIRST = date(2023, 1, 1)
LAST = date(2023, 6, 1)  # newest partition: lines of 2023-07 are "after the newest partition"
RAW_TABLES = {
    "raw.sales_transactions": "SELECT * FROM raw.sales_transactions ORDER BY source_file, line_number",
    "raw.rejected_rows": "SELECT * FROM raw.rejected_rows ORDER BY source_file, line_number",
    "raw.file_loads": "SELECT * EXCLUDE (loaded_at) FROM raw.file_loads ORDER BY source_file",
}


def dump(con) -> dict[str, list[tuple]]:
    return {name: con.execute(sql).fetchall() for name, sql in RAW_TABLES.items()}


def tx(*rows: str) -> str:
    return lines(TX_HEADER, *rows)


def month(m: int) -> date:
    return date(2023, m, 1)


def read_files(con, folder: Path, start: int, end: int) -> list[str]:
    result = load_transactions(con, folder, month(start), month(end), FIRST, LAST)
    return sorted(s.path.name for s in result.files)


def test_a_refresh_reads_only_the_changed_file(tmp_path):
    a = write(tmp_path / "sales_transactions_a.csv", tx("I1,C1,2023-01-10,P1,1,1,S1", "I2,C1,2023-02-10,P1,2,1,S1"))
    b = write(tmp_path / "sales_transactions_b.csv", tx("I3,C2,2023-03-10,P1,3,1,S1"))
    con = duckdb.connect()
    assert read_files(con, tmp_path, 1, 3) == [a.name, b.name]
    # nothing changed: the same months again read nothing and keep every row
    before = dump(con)
    assert read_files(con, tmp_path, 1, 3) == []
    assert dump(con) == before
    # a new month lands in b: b is read, a (no line in April, loaded for its months) is not
    write(b, tx("I3,C2,2023-03-10,P1,3,1,S1", "I4,C2,2023-04-10,P1,4,1,S1"))
    assert read_files(con, tmp_path, 4, 4) == [b.name]
    assert con.execute("SELECT invoice_id FROM raw.sales_transactions ORDER BY 1").fetchall() == [
        ("I1",),
        ("I2",),
        ("I3",),
        ("I4",),
    ]


def test_months_never_loaded_from_a_file_are_read(tmp_path):
    write(tmp_path / "sales_transactions_a.csv", tx("I1,C1,2023-01-10,P1,1,1,S1", "I2,C1,2023-05-10,P1,2,1,S1"))
    con = duckdb.connect()
    assert read_files(con, tmp_path, 1, 2) == ["sales_transactions_a.csv"]
    # May was not in the first run: the same file must be read for it
    assert read_files(con, tmp_path, 5, 5) == ["sales_transactions_a.csv"]
    assert read_files(con, tmp_path, 5, 5) == []
    assert con.execute("SELECT invoice_id FROM raw.sales_transactions ORDER BY 1").fetchall() == [("I1",), ("I2",)]


def test_rows_left_by_an_older_version_are_replaced_when_their_month_runs(tmp_path):
    a = write(tmp_path / "sales_transactions_a.csv", tx("I1,C1,2023-01-10,P1,1,1,S1", "I2,C1,2023-05-10,P1,2,1,S1"))
    con = duckdb.connect()
    read_files(con, tmp_path, 1, 6)
    # the May line is corrected, but only January runs: May keeps the old row for now
    write(a, tx("I1,C1,2023-01-10,P1,1,1,S1", "I2,C1,2023-05-10,P1,9,1,S1"))
    read_files(con, tmp_path, 1, 1)
    assert con.execute("SELECT quantity FROM raw.sales_transactions WHERE invoice_id = 'I2'").fetchall() == [(2.0,)]
    # when May runs, the file is read again (its May rows are of the old version)
    assert read_files(con, tmp_path, 5, 5) == [a.name]
    assert con.execute("SELECT quantity FROM raw.sales_transactions WHERE invoice_id = 'I2'").fetchall() == [(9.0,)]


def test_a_month_emptied_by_a_new_version_is_emptied_when_it_runs(tmp_path):
    a = write(tmp_path / "sales_transactions_a.csv", tx("I1,C1,2023-01-10,P1,1,1,S1", "I2,C1,2023-05-10,P1,2,1,S1"))
    con = duckdb.connect()
    read_files(con, tmp_path, 1, 6)
    write(a, tx("I1,C1,2023-01-10,P1,1,1,S1"))  # the May line is withdrawn; only January runs
    read_files(con, tmp_path, 1, 1)
    # the new version has no May line, but May still holds the old one: running May reads the file
    assert read_files(con, tmp_path, 5, 5) == [a.name]
    assert con.execute("SELECT invoice_id FROM raw.sales_transactions").fetchall() == [("I1",)]


def test_a_removed_file_stops_the_load_until_removals_are_allowed(tmp_path):
    write(tmp_path / "sales_transactions_a.csv", tx("I1,C1,2023-01-10,P1,1,1,S1"))
    b = write(tmp_path / "sales_transactions_b.csv", tx("I2,C1,2023-01-11,P1,1,1,S1", "I3,C1,2023-03-11,P1,1,1,S1"))
    con = duckdb.connect()
    read_files(con, tmp_path, 1, 3)
    before = dump(con)
    b.unlink()
    with pytest.raises(InputFileError) as error:
        read_files(con, tmp_path, 1, 3)
    assert str(error.value) == (
        "sales_transactions_b.csv is gone from the folder; 2023-01, 2023-03 would lose 2 rows. Nothing was changed: "
        "run again with --allow-removals to remove those rows and recompute every month from 2023-01"
    )
    assert dump(con) == before
    # allowed, but the window starts after the first month that loses rows: still refused
    with pytest.raises(
        InputFileError, match=r"the run must cover 2023-01..2023-03 to remove those rows \(it covers 2023-03..2023-03\)"
    ):
        load_transactions(con, tmp_path, month(3), month(3), FIRST, LAST, allow_removals=True)
    assert dump(con) == before
    load_transactions(con, tmp_path, month(1), month(3), FIRST, LAST, allow_removals=True)
    assert con.execute("SELECT invoice_id FROM raw.sales_transactions").fetchall() == [("I1",)]
    assert con.execute("SELECT source_file FROM raw.file_loads").fetchall() == [("sales_transactions_a.csv",)]
    assert con.execute("SELECT DISTINCT source_file FROM raw.file_profiles").fetchall() == [
        ("sales_transactions_a.csv",)
    ]


@pytest.mark.parametrize(
    "new_rows, stops",
    [
        ([], True),  # header only
        (["I1,C1,2023-01-10,P1,1,1,S1"], True),  # 1 of 3 rows left
        (["I1,C1,2023-01-10,P1,1,1,S1", "I2,C1,2023-02-10,P1,1,1,S1"], False),  # 2 of 3: not more than half lost
        (["I1,C1,2023-01-10,P1,1,1,S1", "bad line", "worse line"], True),  # rejected lines are not rows kept
    ],
)
def test_a_file_that_lost_more_than_half_of_its_rows_stops_the_load(tmp_path, new_rows, stops):
    a = write(
        tmp_path / "sales_transactions_a.csv",
        tx("I1,C1,2023-01-10,P1,1,1,S1", "I2,C1,2023-02-10,P1,1,1,S1", "I3,C1,2023-03-10,P1,1,1,S1"),
    )
    con = duckdb.connect()
    read_files(con, tmp_path, 1, 3)
    before = dump(con)
    write(a, tx(*new_rows))
    if not stops:
        read_files(con, tmp_path, 1, 3)
        assert con.execute("SELECT count(*) FROM raw.sales_transactions").fetchone() == (2,)
        return
    with pytest.raises(
        InputFileError,
        match=r"^sales_transactions_a.csv has \d valid rows, fewer than half of the 3 "
        r"loaded; .* would lose \d rows\. Nothing was changed",
    ):
        read_files(con, tmp_path, 1, 3)
    assert dump(con) == before
    load_transactions(con, tmp_path, month(1), month(3), FIRST, LAST, allow_removals=True)
    valid = len([r for r in new_rows if r.startswith("I")])
    assert con.execute("SELECT count(*) FROM raw.sales_transactions").fetchone() == (valid,)
    assert con.execute("SELECT rows_valid FROM raw.file_loads").fetchone() == (valid,)


# --- property: skipping never changes the result ----------------------------------------------------

ROW = st.tuples(
    st.sampled_from(["I1", "I2", "I3"]),
    st.sampled_from(["C1", "C2"]),
    st.sampled_from(["2022-12-05", "2023-01-05", "2023-02-05", "2023-03-05", "2023-06-30", "2023-07-01", "bad"]),
    st.sampled_from(["1", "2", "x"]),
)
FILE_TEXT = st.lists(ROW, max_size=5).map(lambda rows: tx(*(f"{i},{c},{d},P1,{q},1,S1" for i, c, d, q in rows)))
STEP = st.one_of(
    st.tuples(st.just("write"), st.sampled_from("abc"), FILE_TEXT),
    st.tuples(st.just("remove"), st.sampled_from("ab"), st.none()),
    st.tuples(st.just("run"), st.integers(1, 6), st.integers(0, 5)),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.lists(STEP, min_size=1, max_size=10))
def test_skipping_unchanged_files_gives_the_tables_of_reading_every_file(tmp_path_factory, steps):
    folder = tmp_path_factory.mktemp("input")
    write(folder / "sales_transactions_c.csv", tx("I9,C9,2023-01-01,P1,1,1,S1"))  # never empty
    skipping, reading = duckdb.connect(), duckdb.connect()
    for kind, a, b in steps:
        path = folder / f"sales_transactions_{a}.csv" if kind != "run" else None
        if kind == "write":
            write(path, b)
        elif kind == "remove":
            path.unlink(missing_ok=True)
        else:
            start, end = month(a), month(min(6, a + b))
            errors = []
            for con, reread in ((skipping, False), (reading, True)):
                try:
                    load_transactions(con, folder, start, end, FIRST, LAST, reread=reread, allow_removals=True)
                    errors.append(None)
                except InputFileError as exc:
                    errors.append(str(exc))
            assert errors[0] == errors[1]
            assert dump(skipping) == dump(reading)


def handoffs() -> list[str]:
    folder = crm_settings.dagster_home() / HANDOFF_FOLDER
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


def handoff_folder(tmp_path: Path) -> Path:
    return write(
        tmp_path / "in" / "sales_transactions_2023.csv",
        tx("A,C1,2023-01-05,P1,2,3.5,S1", "B,C1,2023-02-30,P1,1,1,S1", "C,C2,2023-03-01,P1,1,1,S1"),
    ).parent


def test_a_file_read_to_plan_the_run_is_loaded_as_read_and_not_parsed_again(tmp_path, monkeypatch):
    folder = handoff_folder(tmp_path)
    write(folder / "sales_transactions_2024.csv", TX_HEADER + ",note\n" + "D,C1,2024-01-02,P1,1,1,S1,hi\n")
    reference = duckdb.connect(str(tmp_path / "reference.duckdb"))
    load_transactions(reference, folder, month(1), date(2024, 1, 1), FIRST, date(2024, 1, 1))

    profile_folder(folder)  # the plan of a run: reads both files, hands their rows to the load
    assert len(handoffs()) == 2
    monkeypatch.setattr(raw, "stage_file", lambda *a, **k: pytest.fail("the load parsed a file again"))
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    load_transactions(con, folder, month(1), date(2024, 1, 1), FIRST, date(2024, 1, 1))
    assert dump(con) == dump(reference)  # the rejected line, the extra column and the counts included
    assert handoffs() == []  # used once


def test_a_handoff_is_used_only_for_the_version_it_was_read_from(tmp_path):
    folder = handoff_folder(tmp_path)
    profile_folder(folder)
    path = folder / "sales_transactions_2023.csv"
    path.write_text(path.read_text() + "E,C3,2023-04-01,P1,1,1,S1\n")  # replaced after the plan
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    load_transactions(con, folder, month(1), month(6), FIRST, LAST)
    assert con.execute("SELECT invoice_id FROM raw.sales_transactions ORDER BY 1").fetchall() == [
        ("A",),
        ("C",),
        ("E",),
    ]
    profile_folder(folder)  # the new version's handoff replaces the one never taken
    assert len(handoffs()) == 1


def test_a_handoff_of_an_unchanged_file_is_dropped_and_a_broken_one_is_read_again(tmp_path):
    folder = handoff_folder(tmp_path)
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    load_transactions(con, folder, month(1), month(6), FIRST, LAST)
    expected = dump(con)
    profile_folder(folder)  # read again to plan (a new profile cache, a touched file): its rows are loaded already
    assert len(handoffs()) == 1
    load_transactions(con, folder, month(1), month(6), FIRST, LAST)
    assert handoffs() == [] and dump(con) == expected

    path = folder / "sales_transactions_2023.csv"
    path.write_text(path.read_text() + "E,C3,2023-04-01,P1,1,1,S1\n")
    profile_folder(folder)
    (handoff,) = (csv_input.settings.dagster_home() / csv_input.HANDOFF_FOLDER).iterdir()
    handoff.write_bytes(b"not a database")  # damaged: the load reads the file itself
    fresh = duckdb.connect(str(tmp_path / "fresh.duckdb"))
    load_transactions(fresh, folder, month(1), month(6), FIRST, LAST)
    assert fresh.execute("SELECT count(*) FROM raw.sales_transactions").fetchone()[0] == 3
    assert handoffs() == []
