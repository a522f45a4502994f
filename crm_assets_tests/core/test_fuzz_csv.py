"""Fuzzing the CSV loading: arbitrary bytes, broken quoting, wrong field counts, odd
encodings and line endings never crash the load and never lose a line
(rows read = rows loaded + rows rejected, each line accounted for once).

The volume per run is set by CRM_FUZZ_EXAMPLES (default 200); a long run:
`CRM_FUZZ_EXAMPLES=20000 pytest crm_assets_tests/core/test_fuzz_csv.py`.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

import duckdb
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crm_assets.core.csv_input import CUSTOMERS, TRANSACTIONS, stage_file
from crm_assets.core.errors import InputFileError

from ..conftest import CUSTOMER_HEADER, TX_HEADER

EXAMPLES = int(os.environ.get("CRM_FUZZ_EXAMPLES", "200"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))

field = st.one_of(
    st.sampled_from(
        ["A1", "C1", "007", "2023-01-15", "2023-02-30", "15/01/2023", "3", "-1", "1.5", "x", "", " ", "inf", "NaN"]
    ),
    st.text(max_size=8),
    st.text(alphabet='",\r\n\t ;', max_size=4),
)
good_line = st.lists(field, min_size=7, max_size=7).map(lambda fs: ",".join(fs).encode("utf-8", "surrogatepass"))
any_line = st.one_of(
    good_line,
    st.lists(field, min_size=0, max_size=10).map(lambda fs: ",".join(fs).encode("utf-8", "surrogatepass")),
    st.binary(max_size=40),
    st.text(max_size=30).map(lambda t: t.encode("latin-1", "replace")),
    st.text(max_size=30).map(lambda t: t.encode("utf-16-le", "surrogatepass")),
)
ending = st.sampled_from([b"\n", b"\r\n", b"\r"])
body_st = st.lists(st.tuples(any_line, ending), max_size=25)

LINE_BREAK = re.compile(rb"\r\n|\r|\n")


def physical_rows(body: bytes) -> int:
    """Non-blank lines of the body, counted independently of the loader (LF, CRLF or CR end a line)."""
    return sum(1 for segment in LINE_BREAK.split(body) if segment.strip(b" "))


def is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def first_bad_line(data: bytes) -> int:
    """1-based number of the first line (split at LF) that is not UTF-8, counted independently of the loader."""
    for number, line in enumerate(data.split(b"\n"), start=1):
        if not is_utf8(line):
            return number
    raise AssertionError("all lines are UTF-8")


def stage_bytes(header: str, body: bytes, spec=TRANSACTIONS):
    """The staged file, or None when the file is refused for its encoding (checked here to be exactly right)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "sales_transactions_2023.csv"
        data = header.encode() + b"\n" + body
        path.write_bytes(data)
        con = duckdb.connect()
        try:
            try:
                staged = stage_file(con, path, spec, "f")
            except InputFileError as exc:
                assert not is_utf8(data), exc
                assert str(exc).startswith(f"{path}: line {first_bad_line(data)} is not valid utf-8 text"), exc
                assert "\n" not in str(exc)
                return None, [], [], []
            assert is_utf8(data)
            valid = [r[0] for r in con.execute(f"SELECT line_number FROM {staged.valid_table}").fetchall()]
            rejected = [r[0] for r in con.execute(f"SELECT line_number FROM {staged.rejected_table}").fetchall()]
            reasons = [r[0] for r in con.execute(f"SELECT reason FROM {staged.rejected_table}").fetchall()]
        finally:
            con.close()
    return staged, valid, rejected, reasons


def assert_nothing_lost(staged, valid, rejected, reasons):
    if staged is None:  # refused whole for its encoding: nothing loaded, nothing half-read
        return
    assert staged.rows_read == staged.rows_valid + staged.rows_rejected
    assert len(valid) == staged.rows_valid and len(rejected) == staged.rows_rejected
    assert len(set(valid) | set(rejected)) == len(valid) + len(rejected), "a line counted twice"
    assert all(n >= 2 for n in valid + rejected)
    assert all(reason for reason in reasons)


@FUZZ
@given(body_st)
def test_transaction_file_fuzz_never_crashes_and_never_loses_a_line(lines):
    body = b"".join(text + end for text, end in lines)
    staged, valid, rejected, reasons = stage_bytes(TX_HEADER, body)
    assert_nothing_lost(staged, valid, rejected, reasons)
    if staged is not None and (b"\r\n" not in body or b"\n" not in body.replace(b"\r\n", b"")):
        # with one kind of line ending throughout, every non-blank line is a row read
        assert staged.rows_read == physical_rows(body)


@FUZZ
@given(body_st)
def test_customer_master_fuzz(lines):
    body = b"".join(text + end for text, end in lines)
    staged, valid, rejected, reasons = stage_bytes(CUSTOMER_HEADER, body, CUSTOMERS)
    assert_nothing_lost(staged, valid, rejected, reasons)


@FUZZ
@given(st.binary(max_size=60))
def test_arbitrary_header_bytes_load_or_stop_with_one_line(header_bytes):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "sales_transactions_2023.csv"
        path.write_bytes(header_bytes + b"\nA,C1,2023-01-15,P1,1,1,S1\n")
        con = duckdb.connect()
        try:
            staged = stage_file(con, path, TRANSACTIONS, "h")
        except InputFileError as exc:
            assert "\n" not in str(exc) and str(path) in str(exc)
        else:
            assert staged.rows_read == staged.rows_valid + staged.rows_rejected
        finally:
            con.close()
