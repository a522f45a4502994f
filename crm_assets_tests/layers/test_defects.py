"""Defective extracts through `crm run`: each case states the rows loaded and rejected, the exit code and the message.

Every case starts from one small, valid data set (two customers, two year
files) and breaks one thing, as a real extract breaks.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import duckdb
import pytest

from crm_assets.cli.main import main
from crm_assets.core import quality
from crm_assets.core.csv_input import MALFORMED_QUOTING
from crm_assets.engines.duckdb import DuckDBEngine

from ..conftest import CUSTOMER_HEADER, PRODUCT_HEADER, TX_HEADER, lines, query, table_dump, write
from ..pipeline import run_pipeline

TX_2023 = ["A,C1,2023-10-15,P1,3,10,S1", "B,C2,2023-11-20,P1,2,5,S1", "C,C1,2023-12-30,P1,5,1,S1"]
TX_2024 = ["D,C1,2024-01-05,P1,1,1,S1", "E,C2,2024-02-10,P1,2,1,S1", "F,C1,2024-03-01,P1,1,1,S1"]
CUSTOMERS = ["C1,Ann,Loyalty,Paris,2023-01-10,,,1,0,", "C2,René Müller,Loyalty,Besançon,2023-02-01,,,,,"]


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    folder = tmp_path / "input"
    write(folder / "products_master.csv", lines(PRODUCT_HEADER, "P1,Pods,B,consumable,10", "D1,Machine,B,device,"))
    write(folder / "customers_master.csv", lines(CUSTOMER_HEADER, *CUSTOMERS))
    write(folder / "sales_transactions_2023.csv", lines(TX_HEADER, *TX_2023))
    write(folder / "sales_transactions_2024.csv", lines(TX_HEADER, *TX_2024))
    return folder


@pytest.fixture
def warehouse(tmp_path: Path) -> Path:
    return tmp_path / "warehouse" / "crm.duckdb"


def crm(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    return code, captured.out, captured.err


def run(capsys, folder: Path, warehouse: Path, *extra: str) -> tuple[int, str, str]:
    return crm(capsys, "run", "--input", str(folder), "--warehouse", str(warehouse), *extra)


def loaded(warehouse: Path, name: str) -> list[int]:
    return [
        n
        for (n,) in query(
            warehouse, "SELECT line_number FROM raw.sales_transactions WHERE source_file = ? ORDER BY 1", [name]
        )
    ]


def rejected(warehouse: Path) -> list[tuple]:
    return query(warehouse, "SELECT source_file, line_number, reason FROM raw.rejected_rows ORDER BY 1, 2")


def months_built(warehouse: Path) -> list[str]:
    return [
        m
        for (m,) in query(
            warehouse, "SELECT DISTINCT strftime(report_month, '%Y-%m') FROM reporting.customer_snapshot ORDER BY 1"
        )
    ]


def m_total(warehouse: Path, customer: str, month: str) -> float:
    return query(
        warehouse,
        "SELECT m_total FROM reporting.customer_snapshot WHERE customer_id = ? AND strftime(report_month, '%Y-%m') = ?",
        [customer, month],
    )[0][0]


def analytics(warehouse: Path) -> dict:
    """Every table a clean build decides (no run ids, timestamps or run history)."""
    skip = {
        "reporting.snapshot_manifest",
        "reporting.snapshot_changes",
        "quality.check_results",
        "raw.file_months",
        "reporting.export_audit",
        "reporting.month_builds",
    }
    return {name: rows for name, rows in table_dump(warehouse).items() if name not in skip}


# --- a line-exact reader: the months of the data come from the valid lines -----------------------


def test_unterminated_quote_in_the_newest_file_rejects_one_line_and_keeps_the_later_months(capsys, folder, warehouse):
    write(
        folder / "sales_transactions_2024.csv", lines(TX_HEADER, TX_2024[0], 'X,"C1,2024-02-01,P1,1,1,S1', *TX_2024[1:])
    )
    code, out, _ = run(capsys, folder, warehouse)
    assert code == 0, out
    assert "2023-10..2024-03 (6 months)" in out  # --to is still the last month of the data
    assert loaded(warehouse, "sales_transactions_2024.csv") == [2, 4, 5]
    assert rejected(warehouse) == [("sales_transactions_2024.csv", 3, MALFORMED_QUOTING)]
    assert months_built(warehouse)[-1] == "2024-03"


def test_quoted_field_with_a_line_break_rejects_both_lines_without_a_traceback(capsys, folder, warehouse):
    write(
        folder / "sales_transactions_2024.csv",
        lines(TX_HEADER, TX_2024[0], 'Y,"two', 'lines",2024-02-01,P1,1,1,S1', *TX_2024[1:]),
    )
    code, out, err = run(capsys, folder, warehouse)
    assert code == 0, err
    assert loaded(warehouse, "sales_transactions_2024.csv") == [2, 5, 6]
    assert rejected(warehouse) == [
        ("sales_transactions_2024.csv", 3, MALFORMED_QUOTING),
        ("sales_transactions_2024.csv", 4, MALFORMED_QUOTING),
    ]
    assert query(
        warehouse,
        "SELECT sum(rows_read), sum(rows_valid), sum(rows_rejected) FROM raw.file_loads "
        "WHERE source_file = 'sales_transactions_2024.csv'",
    ) == [(5, 3, 2)]


# --- bounds ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "line, reason",
    [
        ("Q,C1,2024-02-01,P1,4006381333931,1,S1", "quantity 4006381333931 is outside the bound -100000..100000"),
        ("Q,C1,2024-02-01,P1,1e20,1,S1", "quantity 1e20 is outside the bound -100000..100000"),
        ("Q,C1,0024-06-18,P1,1,1,S1", "invoice_date 0024-06-18 is before the bound 1970-01-01"),
    ],
)
def test_impossible_values_are_rejected_naming_the_bound_and_the_run_succeeds(capsys, folder, warehouse, line, reason):
    write(folder / "sales_transactions_2024.csv", lines(TX_HEADER, line, *TX_2024))
    code, out, err = run(capsys, folder, warehouse)
    assert code == 0, err
    assert "2023-10..2024-03 (6 months)" in out
    assert rejected(warehouse) == [("sales_transactions_2024.csv", 2, reason)]
    assert m_total(warehouse, "C1", "2024-03") == (3 + 5 + 1 + 1) * 10


def test_unit_size_beyond_its_bound_rejects_the_product(capsys, folder, warehouse):
    write(folder / "products_master.csv", lines(PRODUCT_HEADER, "P1,Pods,B,consumable,10", "P2,Bag,B,consumable,1e9"))
    code, _, err = run(capsys, folder, warehouse)
    assert code == 0, err
    assert rejected(warehouse) == [("products_master.csv", 3, "unit_size 1e9 is above the bound 100000")]


def test_the_largest_accepted_values_do_not_overflow_the_sums(capsys, folder, warehouse):
    write(folder / "products_master.csv", lines(PRODUCT_HEADER, "P1,Pods,B,consumable,100000"))
    big = [f"I{i},C1,2023-{10 + i % 3:02d}-15,P1,100000,1,S1" for i in range(300)]
    write(folder / "sales_transactions_2023.csv", lines(TX_HEADER, *big))
    (folder / "sales_transactions_2024.csv").unlink()
    code, _, err = run(capsys, folder, warehouse)
    assert code == 0, err
    assert m_total(warehouse, "C1", "2023-12") == 300 * 100000 * 100000  # 3e12, beyond DECIMAL(18, 6)


# --- removals are explicit -----------------------------------------------------------------------


def test_a_header_only_file_stops_the_run_until_removals_are_allowed(capsys, folder, warehouse):
    assert run(capsys, folder, warehouse)[0] == 0
    before = table_dump(warehouse)
    write(folder / "sales_transactions_2023.csv", TX_HEADER + "\n")
    code, _, err = run(capsys, folder, warehouse)
    assert code == 2
    assert err.strip() == (
        "crm run: sales_transactions_2023.csv has 0 valid rows, fewer than half of the 3 loaded; "
        "2023-10..2023-12 would lose 3 rows. Nothing was changed: run again with --allow-removals "
        "to remove those rows and recompute every month from 2023-10"
    )
    assert table_dump(warehouse) == before
    code, out, err = run(capsys, folder, warehouse, "--allow-removals")
    assert code == 0, err
    assert "removing the rows of sales_transactions_2023.csv" in out
    assert loaded(warehouse, "sales_transactions_2023.csv") == []
    # the data, and so the calendar, now start in 2024-01: no month before it is left
    assert query(warehouse, "SELECT count(*) FROM reporting.customer_snapshot WHERE report_month < '2024-01-01'") == [
        (0,)
    ]
    assert m_total(warehouse, "C1", "2024-03") == 20


def test_a_removed_newest_file_stops_the_run_then_its_rows_and_bookkeeping_go_together(capsys, folder, warehouse):
    assert run(capsys, folder, warehouse)[0] == 0
    (folder / "sales_transactions_2024.csv").unlink()
    code, _, err = run(capsys, folder, warehouse)
    assert (
        code == 2 and "sales_transactions_2024.csv is gone from the folder; 2024-01..2024-03 would lose 3 rows" in err
    )
    code, out, err = run(capsys, folder, warehouse, "--allow-removals")
    assert code == 0, err
    assert "2024-01..2024-03 (3 months)" in out  # the months that lost rows are recomputed
    assert "2024-01..2024-03 have no line any more: they stay in the warehouse, rebuilt as months without data" in out
    assert loaded(warehouse, "sales_transactions_2024.csv") == []
    assert query(warehouse, "SELECT source_file FROM raw.file_loads WHERE file_kind = 'sales_transactions'") == [
        ("sales_transactions_2023.csv",)
    ]
    assert m_total(warehouse, "C1", "2024-03") == 80


# --- history flows forward -----------------------------------------------------------------------


def clean_build(capsys, folder: Path, tmp_path: Path, *extra: str) -> Path:
    other = tmp_path / "clean" / "crm.duckdb"
    assert run(capsys, folder, other, *extra)[0] == 0
    return other


def test_a_corrected_old_month_run_alone_carries_its_history_to_every_later_month(capsys, folder, warehouse, tmp_path):
    assert run(capsys, folder, warehouse)[0] == 0
    write(folder / "sales_transactions_2023.csv", lines(TX_HEADER, *TX_2023[:2], "C,C1,2023-12-30,P1,7,1,S1"))
    code, out, err = run(capsys, folder, warehouse, "--from", "2023-12", "--to", "2023-12")
    assert code == 0, err
    assert "lines of 2023-12 differ from the ones loaded: running 2023-12..2024-03 (not 2023-12..2023-12)" in out
    assert (m_total(warehouse, "C1", "2023-12"), m_total(warehouse, "C1", "2024-01")) == (100, 110)
    assert analytics(warehouse) == analytics(clean_build(capsys, folder, tmp_path))


def test_a_change_before_the_range_starts_the_run_at_the_changed_month(capsys, folder, warehouse, tmp_path):
    assert run(capsys, folder, warehouse)[0] == 0
    write(folder / "sales_transactions_2023.csv", lines(TX_HEADER, TX_2023[0], "B,C2,2023-11-20,P1,9,5,S1", TX_2023[2]))
    code, out, err = run(capsys, folder, warehouse, "--from", "2024-02", "--to", "2024-03")
    assert code == 0, err
    assert "running 2023-11..2024-03 (not 2024-02..2024-03)" in out
    assert analytics(warehouse) == analytics(clean_build(capsys, folder, tmp_path))


def test_a_narrow_run_from_the_ui_cannot_leave_later_months_on_old_lines(folder, warehouse):
    """A run that does not follow the change (as a run of a few months from the UI) stops before writing anything."""
    run_pipeline(folder, warehouse, "2023-10", "2024-03")
    before = analytics(warehouse)
    write(folder / "sales_transactions_2023.csv", lines(TX_HEADER, *TX_2023[:2], "C,C1,2023-12-30,P1,7,1,S1"))
    with pytest.raises(
        Exception,
        match=r"lines of 2023-12 differ from the ones loaded: 2023-10..2024-03 must be built, and this run covers "
        r"2023-10..2023-12; no month was written",
    ):
        run_pipeline(folder, warehouse, "2023-10", "2023-12")
    assert analytics(warehouse) == before
    run_pipeline(folder, warehouse, "2023-12", "2024-03")
    assert (m_total(warehouse, "C1", "2023-12"), m_total(warehouse, "C1", "2024-01")) == (100, 110)


def test_the_month_after_a_run_is_compared_with_the_runs_last_month(tmp_path):
    """The cross-month checks look across the run's end too: a later month on older history is a violation."""
    con = DuckDBEngine(duckdb.connect())
    con.execute("CREATE TABLE snap (report_month DATE, customer_id VARCHAR, m_total DOUBLE)")
    con.execute("INSERT INTO snap VALUES ('2024-01-01', 'C1', 10), ('2024-02-01', 'C1', 50), ('2024-03-01', 'C1', 40)")
    check = quality.m_total_never_decreases("t", "snap")

    (outcome,) = quality.evaluate(con, [check], date(2024, 2, 1), date(2024, 2, 1), ["2024-02-01"])
    assert outcome.by_month == {"2024-02-01": (0, None), "2024-03-01": (1, "C1")}
    (outcome,) = quality.evaluate(con, [check], date(2024, 3, 1), date(2024, 3, 1), ["2024-03-01"])
    assert outcome.failing_months == ["2024-03-01"]  # and the run's first month with the month before it


def test_a_refused_removal_in_a_ui_run_leaves_the_masters_as_they_were(folder, warehouse):
    run_pipeline(folder, warehouse, "2023-10", "2024-03")
    before = analytics(warehouse)
    write(
        folder / "products_master.csv", lines(PRODUCT_HEADER, "P1,Renamed pods,B,consumable,10", "D1,Machine,B,device,")
    )
    (folder / "sales_transactions_2024.csv").unlink()
    with pytest.raises(Exception, match="sales_transactions_2024.csv is gone from the folder"):
        run_pipeline(folder, warehouse, "2023-10", "2024-03")
    assert analytics(warehouse) == before
    assert query(warehouse, "SELECT product_name FROM raw.products WHERE product_id = 'P1'") == [("Pods",)]


# --- encodings -----------------------------------------------------------------------------------


def test_a_cp1252_master_is_refused_naming_the_line_and_the_setting_then_loads_with_it(
    capsys, folder, warehouse, monkeypatch
):
    assert run(capsys, folder, warehouse)[0] == 0
    before = table_dump(warehouse)
    write(folder / "customers_master.csv", lines(CUSTOMER_HEADER, *CUSTOMERS).encode("cp1252"))
    code, _, err = run(capsys, folder, warehouse)
    assert code == 2
    assert err.strip() == (
        f"crm run: {folder / 'customers_master.csv'}: line 3 is not valid utf-8 text (CRM_INPUT_ENCODING=utf-8); "
        "set CRM_INPUT_ENCODING to the file's encoding (Excel on Windows writes cp1252) or save it as UTF-8"
    )
    assert table_dump(warehouse) == before
    monkeypatch.setenv("CRM_INPUT_ENCODING", "cp1252")
    code, _, err = run(capsys, folder, warehouse)
    assert code == 0, err
    assert query(warehouse, "SELECT customer_name, city FROM raw.customers WHERE customer_id = 'C2'") == [
        ("René Müller", "Besançon")
    ]
    assert query(warehouse, "SELECT DISTINCT city FROM reporting.customer_snapshot WHERE customer_id = 'C2'") == [
        ("Besançon",)
    ]


def test_a_latin1_transactions_file_is_refused_before_the_run(capsys, folder, warehouse):
    write(
        folder / "sales_transactions_2024.csv",
        lines(TX_HEADER, "D,C1,2024-01-05,P1,1,1,Gare du Nord é").encode("latin-1"),
    )
    code, _, err = run(capsys, folder, warehouse)
    assert code == 2 and "sales_transactions_2024.csv: line 2 is not valid utf-8 text" in err
    assert not warehouse.exists()


# --- clean failures ------------------------------------------------------------------------------


def test_a_warehouse_path_that_is_a_folder_is_one_line(capsys, folder, tmp_path):
    target = tmp_path / "afolder"
    target.mkdir()
    code, _, err = run(capsys, folder, target)
    assert code == 2
    assert (
        err.strip()
        == f"crm run: {target}: is a folder; the warehouse must be a file path (--warehouse or CRM_WAREHOUSE)"
    )


def test_a_warehouse_under_a_file_is_one_line(capsys, folder, tmp_path):
    blocker = write(tmp_path / "plain.txt", "x")
    code, _, err = run(capsys, folder, blocker / "crm.duckdb")
    assert code == 2
    assert err.strip().startswith(f"crm run: {blocker / 'crm.duckdb'}: cannot create the warehouse here")


def test_outputs_to_unwritable_paths_are_one_line(capsys, folder, warehouse, tmp_path):
    assert run(capsys, folder, warehouse)[0] == 0
    blocker = write(tmp_path / "plain.txt", "x")
    for command, out in (("export", blocker / "list.csv"), ("report", blocker / "book.xlsx")):
        code, _, err = crm(capsys, command, "--month", "2024-03", "--warehouse", str(warehouse), "--out", str(out))
        assert code == 2, (command, err)
        lines_ = err.strip().splitlines()
        assert len(lines_) == 1 and str(blocker) in lines_[0], (command, err)


def test_an_unknown_encoding_setting_is_one_line(capsys, folder, warehouse, monkeypatch):
    monkeypatch.setenv("CRM_INPUT_ENCODING", "klingon")
    code, _, err = run(capsys, folder, warehouse)
    assert code == 2
    assert err.strip() == "crm run: CRM_INPUT_ENCODING=klingon is not a known encoding (e.g. utf-8, cp1252, latin-1)"


def test_an_unwritable_output_folder_stops_before_the_run(capsys, folder, warehouse, tmp_path, monkeypatch):
    blocker = write(tmp_path / "plain.txt", "x")
    monkeypatch.setenv("CRM_OUTPUT_DIR", str(blocker / "out"))
    code, _, err = run(capsys, folder, warehouse)
    assert code == 2
    assert err.strip().startswith(f"crm run: {blocker / 'out'}: cannot write the outputs ($CRM_OUTPUT_DIR) there")
    assert not warehouse.exists()


# --- the invariant under operation (issue 25): whatever came before, a run that succeeds leaves a clean build --


def test_a_failed_run_that_committed_half_its_work_is_finished_by_the_next_narrow_run(
    capsys, folder, warehouse, tmp_path
):
    """New files (a customer dropped, a new line) with a duplicated product id: the run exits 2 after the
    customers and the lines are committed. Once the product master is mended, a run of one month builds
    every month the failed run left behind."""
    assert run(capsys, folder, warehouse)[0] == 0
    write(folder / "customers_master.csv", lines(CUSTOMER_HEADER, CUSTOMERS[0]))
    write(folder / "sales_transactions_2023.csv", lines(TX_HEADER, *TX_2023, "G,C1,2023-10-20,P1,4,1,S1"))
    products = (folder / "products_master.csv").read_text()
    write(folder / "products_master.csv", products + "P1,Pods again,B,consumable,10\n")
    code, _, err = run(capsys, folder, warehouse)
    assert code == 2 and "duplicate product_id 'P1'" in err
    write(folder / "products_master.csv", products)
    code, out, err = run(capsys, folder, warehouse, "--from", "2024-03", "--to", "2024-03")
    assert code == 0, err
    assert "running 2023-10..2024-03 (not 2024-03..2024-03)" in out
    assert analytics(warehouse) == analytics(clean_build(capsys, folder, tmp_path))
    assert "nothing to build" in run(capsys, folder, warehouse)[1]


@pytest.mark.parametrize(
    "change",
    [
        ("customers_master.csv", lambda text: text.replace(CUSTOMERS[1] + "\n", "")),  # a customer dropped
        ("customers_master.csv", lambda text: text.replace("Besançon", "Lyon")),  # a city
        ("products_master.csv", lambda text: text.replace("P1,Pods,B,consumable,10", "P1,Pods,B,device,")),
        ("products_master.csv", lambda text: text.replace("P1,Pods,B,consumable,10", "P1,Pods,B,consumable,25")),
    ],
    ids=["customer dropped", "city", "category", "unit size"],
)
def test_a_master_change_widens_a_narrow_run_to_the_months_it_changes(capsys, folder, warehouse, tmp_path, change):
    assert run(capsys, folder, warehouse)[0] == 0
    name, edit = change
    write(folder / name, edit((folder / name).read_text()))
    code, out, err = run(capsys, folder, warehouse, "--from", "2024-03", "--to", "2024-03")
    assert code == 0, err
    assert f"{name} changed rows read by" in out and "(not 2024-03..2024-03)" in out, out
    assert analytics(warehouse) == analytics(clean_build(capsys, folder, tmp_path))


def test_a_master_change_reaches_only_the_months_of_the_rows_it_changes(capsys, folder, warehouse):
    """C2 was created in 2023-02, first bought in 2023-11: its city reaches the months from 2023-02 on (the
    calendar's first month, 2023-10, here); a customer created in 2024-02 without a line reaches 2024-02 on."""
    write(folder / "customers_master.csv", lines(CUSTOMER_HEADER, *CUSTOMERS, "C9,Eve,Loyalty,Rome,2024-02-03,,,,,"))
    assert run(capsys, folder, warehouse)[0] == 0
    write(folder / "customers_master.csv", (folder / "customers_master.csv").read_text().replace("Rome", "Oslo"))
    code, out, err = run(capsys, folder, warehouse)
    assert code == 0, err
    assert "customers_master.csv changed rows read by 2024-02..2024-03: running 2024-02..2024-03" in out, out


def test_a_run_with_nothing_changed_builds_nothing_and_all_rebuilds_every_month(capsys, folder, warehouse):
    assert run(capsys, folder, warehouse)[0] == 0
    code, out, _ = run(capsys, folder, warehouse)
    assert code == 0
    assert out.strip() == (
        "crm run: nothing to build: every month is built from the files as they are (--all rebuilds every month)"
    )
    code, out, _ = run(capsys, folder, warehouse, "--all")
    assert code == 0 and "2023-10..2024-03 (6 months)" in out


def test_a_file_of_which_no_line_is_valid_stops_the_run_naming_the_first_reason(capsys, folder, warehouse):
    assert run(capsys, folder, warehouse)[0] == 0
    before = analytics(warehouse)
    write(folder / "sales_transactions_2025.csv", lines(TX_HEADER, "G,C1,2025-01-05 10:30,P1,1,1,S1"))
    code, _, err = run(capsys, folder, warehouse)
    assert code == 2, err
    assert f"{folder / 'sales_transactions_2025.csv'}: none of its 1 lines is valid (line 2: " in err
    assert len(err.strip().splitlines()) == 1
    assert analytics(warehouse) == before


def test_a_renamed_file_is_refused_as_a_loss_naming_the_new_name(capsys, folder, warehouse):
    assert run(capsys, folder, warehouse)[0] == 0
    (folder / "sales_transactions_2024.csv").rename(folder / "sales_transactions_2024_v2.csv")
    code, _, err = run(capsys, folder, warehouse)
    assert code == 2
    assert (
        "sales_transactions_2024.csv is gone from the folder; 2024-01..2024-03 would lose 3 rows (but "
        "sales_transactions_2024_v2.csv, new, holds as many lines of the same months: if the file was renamed, "
        "--allow-removals reads them under the new name)"
    ) in err


def test_a_stray_date_years_before_the_data_is_named_instead_of_stretching_the_calendar(
    capsys, folder, warehouse, monkeypatch
):
    rows = [f"L{i},C1,2023-{1 + i % 12:02d}-{1 + i % 28:02d},P1,1,1,S1" for i in range(600)]
    rows.insert(57, "S,C2,2003-05-04,P1,1,1,S1")
    write(folder / "sales_transactions_2023.csv", lines(TX_HEADER, *rows))
    code, _, err = run(capsys, folder, warehouse)
    assert code == 2
    assert err.strip() == (
        "crm run: sales_transactions_2023.csv: line 59 is dated 2003-05-04, 236 months before every other line "
        "(from 2023-01); it would start the calendar in 2003-05: correct the date, or set CRM_FIRST_MONTH=2023-01 "
        "(older lines then count as history of that month)"
    )
    monkeypatch.setenv("CRM_FIRST_MONTH", "2023-01")
    assert run(capsys, folder, warehouse)[0] == 0
    assert months_built(warehouse)[0] == "2023-01"
