"""Files written for people and tools: formula-safe contact columns in a CSV export, an existing file never
replaced without ``--force``, and a Power BI refresh that cleans up after a killed one.

Built on the small hand-made warehouse of test_views (customers 007, 7, C3, C4, C5 evaluated in 2024-03; C3
consents to e-mail and phone, so its ``email`` and ``mobile_number`` are both exported).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import zipfile

import duckdb
import openpyxl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crm_assets.cli.main import main
from crm_assets.core.errors import CrmError
from crm_assets.core.resources import Warehouse
from crm_assets.outputs import exports, powerbi
from crm_assets.outputs.exports import csv_guarded, export_customers, formula_guarded

from ..conftest import query
from .test_exports import read_csv
from .test_powerbi import FILES, listing
from .test_views import MAR, small, warehouse_copy  # noqa: F401 - the module-scoped warehouse fixture

# ---------------------------------------------------------------------------------------------------------------
# 1. contact columns in CSV


@pytest.mark.parametrize(
    "email, mobile, csv_email, csv_mobile",
    [
        ("=1+2@x.com", "+33 1 23 45 67 89", "'=1+2@x.com", "+33 1 23 45 67 89"),
        ("@SUM(A1)", "=cmd|' /C calc'!A0", "'@SUM(A1)", "'=cmd|' /C calc'!A0"),
        ("-2+3@x.org", "+1+cmd", "'-2+3@x.org", "'+1+cmd"),
        ("cid@x.org", "-2+3", "cid@x.org", "'-2+3"),
        ("\tcid@x.org", "\r+333", "'\tcid@x.org", "'\r+333"),
        ("+cid@x.org", "+1 (555) 123-4567", "'+cid@x.org", "+1 (555) 123-4567"),
        ("cid+tag@x.org", "+", "cid+tag@x.org", "'+"),
        ("cid@x.org", "0612345678", "cid@x.org", "0612345678"),
    ],
)
def test_csv_contact_columns_starting_like_a_formula_get_an_apostrophe(
    small,  # noqa: F811
    tmp_path,
    email,
    mobile,
    csv_email,
    csv_mobile,
):
    """Hand-worked: e-mail and mobile number of C3 as the master holds them, and as the CSV must show them."""
    sql_email, sql_mobile = (v.replace("'", "''") for v in (email, mobile))
    copy = warehouse_copy(
        small,
        tmp_path,
        f"UPDATE enriched.customers SET email = '{sql_email}', mobile_number = '{sql_mobile}' WHERE customer_id = 'C3'",
    )
    export_customers(Warehouse(database=str(copy)), MAR, tmp_path / "f.csv")
    rows = {r["customer_id"]: r for r in read_csv(tmp_path / "f.csv")[1]}
    assert (rows["C3"]["email"], rows["C3"]["mobile_number"]) == (csv_email, csv_mobile)
    assert (formula_guarded(email, contact=True), formula_guarded(mobile, contact=True)) == (csv_email, csv_mobile)
    # the others as they are
    assert (rows["007"]["email"], rows["C4"]["mobile_number"]) == ("ann@x.org", "+334")

    # xlsx: every text is a text cell holding the value unchanged, never a formula
    export_customers(Warehouse(database=str(copy)), MAR, tmp_path / "f.xlsx")
    ws = openpyxl.load_workbook(tmp_path / "f.xlsx")["Customers"]
    header = [c.value for c in ws[1]]
    [row] = [r for r in ws.iter_rows(min_row=2) if r[header.index("customer_id")].value == "C3"]
    for column, value in (("email", email), ("mobile_number", mobile)):
        cell = row[header.index(column)]
        assert (cell.value, cell.data_type) == (value, "s")
    with zipfile.ZipFile(tmp_path / "f.xlsx") as book:
        sheets = [n for n in book.namelist() if n.startswith("xl/worksheets/")]
        assert sheets and not any(b"<f>" in book.read(n) or b"<f " in book.read(n) for n in sheets)


DANGEROUS = ("=", "@", "-", "\t", "\r")
GUARDED_COLUMNS = (*exports.CSV_GUARDED, *exports.CSV_GUARDED_CONTACTS)
TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=30)
PHONE = st.text(st.sampled_from("0123456789 ()-"), max_size=20).filter(lambda s: any(c.isdigit() for c in s))


@pytest.fixture(scope="module")
def guard_sql():
    con = duckdb.connect()
    inner = "SELECT " + ", ".join(f"$v AS {c}" for c in GUARDED_COLUMNS)
    sql = csv_guarded(inner)

    def guarded(value: str) -> dict[str, str]:
        row = con.execute(sql, {"v": value}).fetchone()
        return dict(zip(GUARDED_COLUMNS, row))

    yield guarded
    con.close()


PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))


@PROPERTY
@given(first=st.sampled_from(DANGEROUS), rest=TEXT)
def test_any_value_starting_with_a_formula_character_is_escaped_in_every_column(guard_sql, first, rest):
    value = first + rest
    assert guard_sql(value) == {c: "'" + value for c in GUARDED_COLUMNS}


@PROPERTY
@given(rest=TEXT.filter(lambda s: not exports.is_phone_number("+" + s)))
def test_a_plus_not_followed_by_a_phone_number_is_escaped(guard_sql, rest):
    value = "+" + rest
    assert guard_sql(value) == {c: "'" + value for c in GUARDED_COLUMNS}


@PROPERTY
@given(number=PHONE)
def test_a_phone_number_is_left_as_it_is_in_the_contact_columns(guard_sql, number):
    value = "+" + number
    out = guard_sql(value)
    assert {c: out[c] for c in exports.CSV_GUARDED_CONTACTS} == {c: value for c in exports.CSV_GUARDED_CONTACTS}
    assert {c: out[c] for c in exports.CSV_GUARDED} == {c: "'" + value for c in exports.CSV_GUARDED}


@PROPERTY
@given(value=TEXT.filter(lambda s: s[:1] not in exports.FORMULA_STARTS))
def test_a_value_not_starting_like_a_formula_is_left_as_it_is(guard_sql, value):
    assert guard_sql(value) == {c: value for c in GUARDED_COLUMNS}
    assert formula_guarded(value) == formula_guarded(value, contact=True) == value


# ---------------------------------------------------------------------------------------------------------------
# 7. an existing --out file


def _audits(warehouse) -> int:
    tables = {t for (t,) in query(warehouse, "SELECT table_schema || '.' || table_name FROM information_schema.tables")}
    return (
        query(warehouse, "SELECT count(*) FROM reporting.export_audit")[0][0]
        if "reporting.export_audit" in tables
        else 0
    )


def test_export_refuses_to_replace_an_existing_file_without_force(small, tmp_path, capsys):  # noqa: F811
    copy = warehouse_copy(small, tmp_path)
    out = tmp_path / "budget.csv"
    out.write_text("my own spreadsheet\n")
    args = ["export", "--month", "2024-03", "--warehouse", str(copy), "--out", str(out)]
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"crm export: --out {out}: the file exists; --force replaces it"]
    assert out.read_text() == "my own spreadsheet\n"
    assert _audits(copy) == 0 and not list(tmp_path.glob(".budget*"))  # nothing audited, no temporary file
    assert main([*args, "--force"]) == 0
    assert "wrote 5 customers" in capsys.readouterr().out
    assert [r["customer_id"] for r in read_csv(out)[1]] == ["007", "7", "C3", "C4", "C5"]
    assert _audits(copy) == 1


def test_a_file_that_appears_while_the_list_is_written_is_not_replaced(small, tmp_path, monkeypatch):  # noqa: F811
    out = tmp_path / "list.csv"
    real = exports._write_csv

    def meanwhile(con, sql, params, tmp):
        out.write_text("written by someone else\n")
        return real(con, sql, params, tmp)

    monkeypatch.setattr(exports, "_write_csv", meanwhile)
    with pytest.raises(CrmError, match="the file exists; --force replaces it"):
        export_customers(Warehouse(database=str(warehouse_copy(small, tmp_path))), MAR, out, replace=False)
    assert out.read_text() == "written by someone else\n"
    assert not list(tmp_path.glob(".list*"))  # no temporary file left


# ---------------------------------------------------------------------------------------------------------------
# 9. a Power BI refresh killed half-way

KILLED_REFRESH = """
import os, signal, sys
import duckdb
from crm_assets.outputs import pbip, powerbi

real = pbip.write_project

def write_then_die(staging, target):
    real(staging, target)
    os.kill(os.getpid(), signal.SIGKILL)  # the files are written, the set is not swapped in yet

pbip.write_project = write_then_die
con = duckdb.connect(sys.argv[1], read_only=True)
powerbi.write_star_schema(con, sys.argv[2])
"""


def _write(small, out):  # noqa: F811
    con = duckdb.connect(str(small.warehouse), read_only=True)
    try:
        return powerbi.write_star_schema(con, out)
    finally:
        con.close()


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL and flock")
def test_the_next_refresh_removes_what_a_killed_one_left(small, tmp_path):  # noqa: F811
    out = tmp_path / "out"
    _write(small, out)
    killed = subprocess.run(
        [sys.executable, "-c", KILLED_REFRESH, str(small.warehouse), str(out)], capture_output=True, timeout=120
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    left = sorted(p.name for p in out.iterdir() if p.name != "powerbi")
    assert any(n.startswith(".powerbi.new-") for n in left), left  # the killed refresh's staging folder
    # older leftovers too: a retired set past its grace period, a free lock of a refresh killed after its swap
    old = out / f".powerbi.old-{int(time.time() - powerbi.RETIRED_GRACE_SECONDS - 5)}-deadbeef"
    old.mkdir()
    (old / "dim_month.parquet").write_bytes(b"old")
    stray = out / ".powerbi.lock-0badf00d"
    stray.write_text("")
    hour_ago = time.time() - 3600
    os.utime(stray, (hour_ago, hour_ago))

    result = _write(small, out)

    rest = sorted(p.name for p in out.iterdir() if p.name != "powerbi")
    # what is left: the set this refresh replaced, kept for its readers for the grace period
    assert len(rest) == 1 and rest[0].startswith(".powerbi.old-") and rest[0] != old.name, rest
    assert {p.name for p in result.folder.iterdir()} == FILES
    assert result.rows["fact_customer_month"] == 15 and result.rows["dim_customer"] == 5
    assert "fact_customer_month/fact_customer_month_2024-03.parquet" in listing(result.folder)


@pytest.mark.skipif(sys.platform == "win32", reason="flock")
def test_a_refresh_running_in_another_process_keeps_its_staging_folder(small, tmp_path):  # noqa: F811
    out = tmp_path / "out"
    out.mkdir()
    running = out / ".powerbi.new-cafef00d"
    handle = powerbi.hold_lock(powerbi.lock_path(running))  # another open file: flock treats it as another holder
    assert handle is not None
    try:
        running.mkdir()
        hour_ago = time.time() - powerbi.STAGING_MAX_SECONDS - 5
        os.utime(running, (hour_ago, hour_ago))  # a long refresh: old, but its writer is alive
        _write(small, out)
        assert running.is_dir() and powerbi.lock_path(running).is_file()
    finally:
        handle.close()
    _write(small, out)  # its writer gone: the next refresh removes it
    assert not running.exists() and not powerbi.lock_path(running).exists()
