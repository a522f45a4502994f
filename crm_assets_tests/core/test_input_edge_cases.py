"""Input edge cases that docs/input_files.md promises, on hand-worked small files.

- line endings: LF, CRLF, a lone CR and any mix each end a line, and never
  cost a character (DuckDB's reader drops the character after a lone CR in a
  CRLF file, and adds blank lines for CRLF after LF);
- white space, NULs and other invisible characters around values are trimmed;
- a file with a UTF-8 byte order mark that is not UTF-8, an encoding setting
  that cannot read the files, a `;`-separated file, a transactions file named in
  other case: one line naming the file, exit 2 through `crm run`.
"""

from __future__ import annotations

import codecs
import os
import re
import tempfile
from datetime import date
from pathlib import Path
from unittest import mock

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crm_assets.cli.main import main
from crm_assets.core import csv_input
from crm_assets.core.csv_input import CUSTOMERS, TRANSACTIONS, stage_file, text_source, version_of
from crm_assets.core.errors import InputFileError

from ..conftest import CUSTOMER_HEADER, PRODUCT_HEADER, TX_HEADER, lines, query, write

EXAMPLES = int(os.environ.get("CRM_FUZZ_EXAMPLES", "150"))
ROWS = [
    "INV0001,C000001,2023-10-15,P1,3,10,S1",
    "INV0002,C000002,2023-11-20,P1,2,5,S1",
    "INV0003,C000001,2023-12-30,P1,5,1,S1",
]
CUSTOMER_ROWS = ["C000001,Ann,Loyalty,Paris,2023-01-10,,,1,0,", "C000002,Bo,Loyalty,Lyon,2023-02-01,,,,,"]


def staged_rows(path: Path, spec=TRANSACTIONS):
    """(valid rows, rejected rows, (rows read, valid, rejected, blank lines)) of one file, as the loader stages it."""
    con = duckdb.connect()
    try:
        staged = stage_file(con, path, spec, "e")
        valid = con.execute(f"SELECT * EXCLUDE (source_file) FROM {staged.valid_table} ORDER BY line_number").fetchall()
        rejected = con.execute(
            f"SELECT line_number, raw_line, reason FROM {staged.rejected_table} ORDER BY line_number"
        ).fetchall()
        return valid, rejected, (staged.rows_read, staged.rows_valid, staged.rows_rejected, staged.blank_lines)
    finally:
        con.close()


def stage_bytes(tmp_path: Path, data: bytes, spec=TRANSACTIONS):
    return staged_rows(write(tmp_path / "sales_transactions_2023.csv", data), spec)


def ids(valid) -> list[tuple]:
    return [(row[0], row[1], row[2]) for row in valid]  # line_number, invoice_id, customer_id


# --- line endings ----------------------------------------------------------------------------------------------


def test_a_lone_cr_in_a_crlf_file_ends_a_line_and_costs_no_character(tmp_path):
    data = f"{TX_HEADER}\r\n{ROWS[0]}\r{ROWS[1]}\r\n{ROWS[2]}\r\n".encode()
    valid, rejected, counts = stage_bytes(tmp_path, data)
    assert ids(valid) == [(2, "INV0001", "C000001"), (3, "INV0002", "C000002"), (4, "INV0003", "C000001")]
    assert rejected == [] and counts == (3, 3, 0, 0)


@pytest.mark.parametrize(
    "data, expected, blank_lines",
    [
        # a CR right before the LF of a CRLF: the CR ends a line, the CRLF ends an empty one
        (f"{TX_HEADER}\r\n{ROWS[0]}\r\r\n{ROWS[1]}\r\n", [(2, "INV0001"), (4, "INV0002")], 1),
        # a CR at the end of the file
        (f"{TX_HEADER}\r\n{ROWS[0]}\r\n{ROWS[1]}\r", [(2, "INV0001"), (3, "INV0002")], 0),
        (f"{TX_HEADER}\n{ROWS[0]}\n{ROWS[1]}\r", [(2, "INV0001"), (3, "INV0002")], 0),
        # only CR endings
        (f"{TX_HEADER}\r{ROWS[0]}\r{ROWS[1]}\r{ROWS[2]}\r", [(2, "INV0001"), (3, "INV0002"), (4, "INV0003")], 0),
        # empty lines of every kind
        (f"{TX_HEADER}\r\r\n\n{ROWS[0]}\r\r{ROWS[1]}\n\r\n", [(4, "INV0001"), (6, "INV0002")], 4),
        # CRLF after LF: DuckDB's own detection adds a blank line per CRLF
        (f"{TX_HEADER}\n{ROWS[0]}\r\n{ROWS[1]}\n{ROWS[2]}\r\n", [(2, "INV0001"), (3, "INV0002"), (4, "INV0003")], 0),
        # no line ending at the end
        (f"{TX_HEADER}\r\n{ROWS[0]}\r{ROWS[1]}", [(2, "INV0001"), (3, "INV0002")], 0),
    ],
)
def test_every_mix_of_line_endings_numbers_lines_as_the_docs_say(tmp_path, data, expected, blank_lines):
    valid, rejected, counts = stage_bytes(tmp_path, data.encode())
    assert [(row[0], row[1]) for row in valid] == expected
    assert all(row[2].startswith("C0000") for row in valid)
    assert rejected == [] and counts == (len(expected), len(expected), 0, blank_lines)


def test_a_lone_cr_in_a_transcoded_file_ends_a_line(tmp_path, monkeypatch):
    monkeypatch.setenv("CRM_INPUT_ENCODING", "cp1252")
    data = f"{CUSTOMER_HEADER}\r\nC1,René,Loyalty,Besançon,,,,,,\rC2,Bo,Loyalty,Lyon,,,,,,\r\n".encode("cp1252")
    path = write(tmp_path / "customers_master.csv", data)
    valid, _, _ = staged_rows(path, CUSTOMERS)
    assert [(row[0], row[1], row[2], row[4]) for row in valid] == [
        (2, "C1", "René", "Besançon"),
        (3, "C2", "Bo", "Lyon"),
    ]


field = st.one_of(
    st.sampled_from(
        ["INV1", "C000001", "007", " C1 ", "C1\t", "\x00C2", "", " ", "2023-01-15", "2023-02-30", "3", "-1", "x"]
    ),
    st.sampled_from(['"C,1"', '"open', 'a"b', '""']),
    # any text but line breaks and the reader's own delimiter
    st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n\x1d\x1e\x1f"), max_size=6),
)
line_st = st.one_of(
    st.lists(field, min_size=7, max_size=7).map(",".join),
    st.lists(field, min_size=0, max_size=9).map(",".join),
)
ending_st = st.sampled_from(["\n", "\r\n", "\r"])
LINE_BREAK = re.compile("\r\n|\r|\n")


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    header_end=ending_st,
    body=st.lists(st.tuples(line_st, ending_st), max_size=12),
    last_ended=st.booleans(),
    chunk=st.sampled_from([1, 2, 3, 5, 4 << 20]),
)
def test_any_mix_of_line_endings_loads_what_lf_endings_load(header_end, body, last_ended, chunk):
    """The same lines with random LF / CRLF / CR endings and with LF endings load the same rows (ids, line numbers,
    reasons, counts); the version of the file is the same seen hashed only or read, whatever the block size."""
    if body and not last_ended:
        body[-1] = (body[-1][0], "")
    text = TX_HEADER + header_end + "".join(line + end for line, end in body)
    mixed = text.encode("utf-8")
    # the same lines, split as the docs say (a CR then an LF is one CRLF, even when they come from two lines here)
    plain = "\n".join(LINE_BREAK.split(text)).encode("utf-8")
    with tempfile.TemporaryDirectory() as tmp, mock.patch.object(csv_input, "_CHUNK", chunk):
        got = staged_rows(write(Path(tmp) / "mixed" / "sales_transactions_2023.csv", mixed))
        want = staged_rows(write(Path(tmp) / "plain" / "sales_transactions_2023.csv", plain))
        path = Path(tmp) / "mixed" / "sales_transactions_2023.csv"
        with text_source(path) as source:
            assert source.sha256 == version_of(path)
            assert source.sha256.endswith(";newlines") == (
                b"\r" in mixed.replace(b"\r\n", b"") or (b"\r\n" in mixed and b"\n" in mixed.replace(b"\r\n", b""))
            )
    assert got == want


# --- white space and control characters around values ------------------------------------------------------------


@pytest.mark.parametrize("blank", ["\t", "\x00", " \t\x00 ", "\u00a0", "\ufeff"])
def test_an_id_of_white_space_and_nuls_only_is_missing(tmp_path, blank):
    valid, rejected, _ = stage_bytes(tmp_path, lines(TX_HEADER, f"A,{blank},2023-01-15,P1,1,1,S1").encode())
    assert valid == [] and rejected == [(2, f"A,{blank},2023-01-15,P1,1,1,S1", "missing customer_id")]


def test_dates_and_numbers_with_tabs_and_nuls_around_them_load_and_ids_keep_their_text(tmp_path):
    valid, rejected, _ = stage_bytes(tmp_path, lines(TX_HEADER, "A,C1\t,\t2023-01-15\x00,P1,3\t,\x001.5,S1").encode())
    assert rejected == []
    assert valid == [(2, "A", "C1\t", date(2023, 1, 15), "P1", 3.0, 1.5, "S1", None)]


def test_trim_sql_trims_white_space_nuls_and_invisible_characters_only_around():
    sql = f"SELECT {csv_input.trim_sql('x')} FROM (SELECT unnest(?) AS x)"
    values = ["C1\t", "\x00C1\x00", " \u00a0C1\r\n", "\ufeffC 1\u200b", "C1", "", "\t"]
    assert [r[0] for r in duckdb.execute(sql, [values]).fetchall()] == ["C1", "C1", "C1", "C 1", "C1", "", ""]


# --- through `crm run`: the folder of test_defects ---------------------------------------------------------------


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    folder = tmp_path / "input"
    write(folder / "products_master.csv", lines(PRODUCT_HEADER, "P1,Pods,B,consumable,10", "D1,Machine,B,device,"))
    write(folder / "customers_master.csv", lines(CUSTOMER_HEADER, *CUSTOMER_ROWS))
    write(folder / "sales_transactions_2023.csv", lines(TX_HEADER, *ROWS))
    return folder


@pytest.fixture
def warehouse(tmp_path: Path) -> Path:
    return tmp_path / "warehouse" / "crm.duckdb"


def run(capsys, folder: Path, warehouse: Path) -> tuple[int, str, str]:
    code = main(["run", "--input", str(folder), "--warehouse", str(warehouse)])
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    return code, captured.out, captured.err


def test_a_lone_cr_in_a_crlf_file_loads_every_id_through_crm_run(capsys, folder, warehouse):
    write(
        folder / "sales_transactions_2023.csv",
        f"{TX_HEADER}\r\n{ROWS[0]}\r{ROWS[1]}\r\n{ROWS[2]}\r\n".encode(),
    )
    code, _, err = run(capsys, folder, warehouse)
    assert code == 0, err
    assert query(
        warehouse,
        "SELECT line_number, invoice_id, customer_id, is_known_customer FROM enriched.transactions ORDER BY 1",
    ) == [(2, "INV0001", "C000001", True), (3, "INV0002", "C000002", True), (4, "INV0003", "C000001", True)]
    assert query(warehouse, "SELECT count(*) FROM raw.rejected_rows") == [(0,)]


def test_ids_with_a_tab_or_nul_around_them_match_their_master_through_crm_run(capsys, folder, warehouse):
    write(folder / "customers_master.csv", lines(CUSTOMER_HEADER, "C000001\x00,Ann,Loyalty,Paris,2023-01-10,,,1,0,"))
    write(folder / "sales_transactions_2023.csv", lines(TX_HEADER, "INV0001\t,C000001\t,2023-10-15,\tP1,3,10,S1"))
    code, _, err = run(capsys, folder, warehouse)
    assert code == 0, err
    assert query(
        warehouse,
        "SELECT invoice_id, customer_id, product_id, is_known_customer, is_known_product FROM enriched.transactions",
    ) == [("INV0001", "C000001", "P1", True, True)]


def test_a_cp1252_file_with_a_utf8_bom_is_told_to_lose_the_bom(capsys, folder, warehouse, monkeypatch):
    monkeypatch.setenv("CRM_INPUT_ENCODING", "cp1252")
    path = folder / "customers_master.csv"
    write(path, codecs.BOM_UTF8 + lines(CUSTOMER_HEADER, "C000001,René,Loyalty,Besançon,,,,,,").encode("cp1252"))
    code, _, err = run(capsys, folder, warehouse)
    assert code == 2
    assert err.strip() == (
        f"crm run: {path}: it starts with a UTF-8 byte order mark but is not UTF-8 (line 2 is not valid UTF-8): "
        "remove the BOM or save it as UTF-8"
    )
    assert not warehouse.exists()


def test_an_encoding_setting_that_cannot_read_the_files_is_one_line(capsys, folder, warehouse, monkeypatch):
    monkeypatch.setenv("CRM_INPUT_ENCODING", "utf-16")
    code, _, err = run(capsys, folder, warehouse)
    assert code == 2
    assert err.strip() == (
        f"crm run: {folder / 'sales_transactions_2023.csv'}: cannot be read as utf-16 text "
        "(CRM_INPUT_ENCODING=utf-16: UTF-16 stream does not start with BOM); set CRM_INPUT_ENCODING to the file's "
        "encoding (Excel on Windows writes cp1252) or save it as UTF-8"
    )


def test_an_encoding_setting_that_is_no_text_encoding_is_one_line(capsys, folder, warehouse, monkeypatch):
    monkeypatch.setenv("CRM_INPUT_ENCODING", "rot13")
    code, _, err = run(capsys, folder, warehouse)
    assert code == 2
    assert err.strip() == "crm run: CRM_INPUT_ENCODING=rot-13 is not a text encoding (e.g. utf-8, cp1252, latin-1)"


def test_a_semicolon_separated_file_is_told_its_separator(capsys, folder, warehouse):
    path = folder / "sales_transactions_2023.csv"
    write(path, lines(TX_HEADER.replace(",", ";"), "INV0001;C000001;2023-10-15;P1;3;10,5;S1"))
    code, _, err = run(capsys, folder, warehouse)
    assert code == 2
    assert err.strip() == (
        f"crm run: {path}: line 1: the separator looks like ';' (the header has no comma); "
        "the files must be comma-separated, with '.' as the decimal point"
    )


def test_a_tab_separated_file_is_told_its_separator(tmp_path):
    with pytest.raises(InputFileError) as error:
        stage_bytes(tmp_path, lines(TX_HEADER.replace(",", "\t"), "INV0001\tC000001").encode())
    assert str(error.value).endswith(
        "sales_transactions_2023.csv: line 1: the separator looks like a tab (the header has no comma); "
        "the files must be comma-separated, with '.' as the decimal point"
    )


@pytest.mark.parametrize("name", ["Sales_Transactions_2025.CSV", "sales_transactions_2025.CSV"])
def test_a_transactions_file_named_in_other_case_stops_naming_it(capsys, folder, warehouse, name):
    write(folder / name, lines(TX_HEADER, "INV0009,C000001,2025-01-15,P1,1,1,S1"))
    code, _, err = run(capsys, folder, warehouse)
    assert code == 2
    assert err.strip() == (
        f"crm run: {folder / name}: not read: the name must be sales_transactions_*.csv in lower case; "
        "rename it sales_transactions_2025.csv"
    )
    assert not warehouse.exists()


def test_other_csv_files_are_named_in_a_warning(capsys, folder, warehouse):
    write(folder / "notes.csv", "a,b\n")
    write(folder / "Customers_Master.csv", lines(CUSTOMER_HEADER))
    write(folder / "README.txt", "not a CSV file")
    code, _, err = run(capsys, folder, warehouse)
    assert code == 0, err
    warnings = [line for line in err.splitlines() if "not read" in line]
    assert warnings == [
        f"crm: {folder}: not read, not a name the loader reads (products_master.csv, customers_master.csv, "
        "sales_transactions_*.csv): Customers_Master.csv, notes.csv"
    ]
    assert query(warehouse, "SELECT count(*) FROM raw.sales_transactions") == [(3,)]
