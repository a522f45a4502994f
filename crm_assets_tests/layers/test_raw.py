"""Raw layer: every bad-input case of source_files.md on small inline fixtures.

Each test states the exact rows loaded and rejected, with their reasons.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import duckdb
import pytest
from dagster import DagsterInstance, materialize

from crm_assets.cli.runner import RANGE_END_TAG, RANGE_START_TAG
from crm_assets.core.csv_input import CUSTOMERS, MALFORMED_QUOTING, PRODUCTS, TRANSACTIONS, stage_file
from crm_assets.core.errors import CrmError, InputFileError
from crm_assets.core.resources import InputFolder, Warehouse
from crm_assets.layers.raw import load_master, load_transactions, raw_assets

from ..conftest import CUSTOMER_HEADER, PRODUCT_HEADER, TX_HEADER, lines, query, table_dump, write

FIRST = date(2020, 1, 1)
LAST = date(2026, 10, 1)


def stage(tmp_path: Path, text: str | bytes, spec=TRANSACTIONS):
    path = write(tmp_path / "sales_transactions_2023.csv", text)
    con = duckdb.connect()
    staged = stage_file(con, path, spec, "t")
    valid = con.execute(f"SELECT * EXCLUDE (source_file) FROM {staged.valid_table} ORDER BY line_number").fetchall()
    rejected = con.execute(
        f"SELECT line_number, raw_line, reason FROM {staged.rejected_table} ORDER BY line_number"
    ).fetchall()
    return staged, valid, rejected


def load_all(input_dir: Path, warehouse: Path, start=FIRST, end=LAST) -> None:
    warehouse.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(warehouse))
    try:
        load_master(con, input_dir, PRODUCTS)
        load_master(con, input_dir, CUSTOMERS)
        load_transactions(con, input_dir, start, end, FIRST, LAST)
    finally:
        con.close()


# --- one transaction line per bad-input case ---------------------------------------------


def test_valid_line_is_typed_and_traceable(tmp_path):
    staged, valid, rejected = stage(tmp_path, lines(TX_HEADER, "A,007,2023-01-15,P1,3,1.5,S1"))
    assert valid == [(2, "A", "007", date(2023, 1, 15), "P1", 3.0, 1.5, "S1", None)]
    assert rejected == []
    assert (staged.rows_read, staged.rows_valid, staged.rows_rejected) == (1, 1, 0)


@pytest.mark.parametrize(
    "line, reason",
    [
        ("A,C1,2023-02-30,P1,1,1,S1", "invoice_date is not a valid YYYY-MM-DD date"),
        ("A,C1,15/03/2023,P1,1,1,S1", "invoice_date is not a valid YYYY-MM-DD date"),
        ("A,C1,2023-01-15T10:00,P1,1,1,S1", "invoice_date is not a valid YYYY-MM-DD date"),
        ("A,C1,2023-01-15,P1,x,1,S1", "quantity is not a number"),
        ("A,C1,2023-01-15,P1,1;5,1,S1", "quantity is not a number"),
        ("A,C1,2023-01-15,P1,inf,1,S1", "quantity is not a number"),
        ("A,C1,2023-01-15,P1,1,abc,S1", "revenue is not a number"),
        (",C1,2023-01-15,P1,1,1,S1", "missing invoice_id"),
        ("A,  ,2023-01-15,P1,1,1,S1", "missing customer_id"),
        ("A,C1,,P1,1,1,S1", "missing invoice_date"),
        ("A,C1,2023-01-15,,1,1,S1", "missing product_id"),
        ("A,C1,2023-01-15,P1,,1,S1", "missing quantity"),
        ("A,C1,2023-01-15", "expected 7 fields, found 3"),
        ("A,C1,2023-01-15,P1,1,1,S1,extra", "expected 7 fields, found 8"),
        ('A,"C1,2023-01-15,P1,1,1,S1', MALFORMED_QUOTING),
        ('A,C"1,2023-01-15,P1,1,1,S1', MALFORMED_QUOTING),
        ("A,C1,2023-01-15,P1,4006381333931,1,S1", "quantity 4006381333931 is outside the bound -100000..100000"),
        ("A,C1,2023-01-15,P1,1e20,1,S1", "quantity 1e20 is outside the bound -100000..100000"),
        ("A,C1,2023-01-15,P1,-100001,1,S1", "quantity -100001 is outside the bound -100000..100000"),
        ("A,C1,0024-06-18,P1,1,1,S1", "invoice_date 0024-06-18 is before the bound 1970-01-01"),
        ("A,C1,1969-12-31,P1,1,1,S1", "invoice_date 1969-12-31 is before the bound 1970-01-01"),
        (
            ",,bad,,x,,",
            "missing invoice_id; missing customer_id; invoice_date is not a valid YYYY-MM-DD date; "
            "missing product_id; quantity is not a number",
        ),
    ],
)
def test_bad_transaction_line_is_rejected_with_reason(tmp_path, line, reason):
    good = "OK,C1,2023-01-15,P1,1,1,S1"
    staged, valid, rejected = stage(tmp_path, lines(TX_HEADER, good, line, good))
    assert [v[0] for v in valid] == [2, 4]
    assert rejected == [(3, line, reason)]
    assert staged.rows_read == staged.rows_valid + staged.rows_rejected == 3


def test_quantity_and_date_at_their_bounds_load(tmp_path):
    staged, valid, rejected = stage(
        tmp_path,
        lines(
            TX_HEADER,
            "A,C1,1970-01-01,P1,100000,1,S1",
            "B,C1,2023-01-15,P1,-100000,1,S1",
            "C,C1,2023-01-15,P1,0.000001,1,S1",
        ),
    )
    assert [(v[0], v[3], v[5]) for v in valid] == [
        (2, date(1970, 1, 1), 100000.0),
        (3, date(2023, 1, 15), -100000.0),
        (4, date(2023, 1, 15), 0.000001),
    ]
    assert rejected == []


def test_invalid_utf8_file_is_refused_naming_the_first_bad_line_and_the_setting(tmp_path):
    text = (
        TX_HEADER + "\nA,C1,2023-01-15,P1,1,1,S1\nB,C\xff1,2023-01-15,P1,1,1,S1\nC,C\xe91,2023-01-16,P1,2,1,S1\n"
    ).encode("latin-1")
    with pytest.raises(InputFileError) as error:
        stage(tmp_path, text)
    message = str(error.value)
    assert message == (
        f"{tmp_path / 'sales_transactions_2023.csv'}: line 3 is not valid utf-8 text (CRM_INPUT_ENCODING=utf-8); "
        "set CRM_INPUT_ENCODING to the file's encoding (Excel on Windows writes cp1252) or save it as UTF-8"
    )


@pytest.mark.parametrize("encoding", ["cp1252", "latin-1"])
def test_a_file_in_the_configured_encoding_loads_with_its_accents(tmp_path, monkeypatch, encoding):
    monkeypatch.setenv("CRM_INPUT_ENCODING", encoding)
    text = lines(CUSTOMER_HEADER, "C1,René Müller,Loyalty,Besançon,2023-01-10,,,1,0,", "C2,Zoë,Loyalty,Köln,,,,,,")
    staged, valid, rejected = stage(tmp_path, text.encode(encoding), CUSTOMERS)
    assert [(v[1], v[2], v[4]) for v in valid] == [("C1", "René Müller", "Besançon"), ("C2", "Zoë", "Köln")]
    assert rejected == []


def test_cp1252_bytes_undefined_in_cp1252_are_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("CRM_INPUT_ENCODING", "cp1252")
    text = (CUSTOMER_HEADER + "\nC1,Ann,Loyalty,Paris,,,,,,\nC2,A\x81n,Loyalty,Paris,,,,,,\n").encode("latin-1")
    with pytest.raises(InputFileError, match=r"line 3 is not valid cp1252 text \(CRM_INPUT_ENCODING=cp1252\)"):
        stage(tmp_path, text, CUSTOMERS)


def test_a_utf8_bom_makes_a_file_utf8_whatever_the_setting(tmp_path, monkeypatch):
    monkeypatch.setenv("CRM_INPUT_ENCODING", "cp1252")
    text = "\ufeff" + lines(CUSTOMER_HEADER, "C1,René,Loyalty,Paris,,,,,,")
    staged, valid, _ = stage(tmp_path, text.encode("utf-8"), CUSTOMERS)
    assert [v[2] for v in valid] == ["René"]


def test_unknown_encoding_setting_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("CRM_INPUT_ENCODING", "klingon")
    with pytest.raises(CrmError, match=r"^CRM_INPUT_ENCODING=klingon is not a known encoding"):
        stage(tmp_path, lines(TX_HEADER, "A,C1,2023-01-15,P1,1,1,S1"))


def test_quoted_fields_commas_and_quotes(tmp_path):
    staged, valid, rejected = stage(tmp_path, lines(TX_HEADER, '"A,1","C ""1""",2023-01-15,P1,"2",,'))
    assert valid == [(2, "A,1", 'C "1"', date(2023, 1, 15), "P1", 2.0, None, None, None)]
    assert rejected == []


def test_field_spanning_lines_rejects_each_physical_line(tmp_path):
    staged, valid, rejected = stage(
        tmp_path, lines(TX_HEADER, '"A', 'B",C1,2023-01-15,P1,1,1,S1', "C,C1,2023-01-15,P1,1,1,S1")
    )
    assert [v[0] for v in valid] == [4]
    assert [(r[0], r[2]) for r in rejected] == [(2, MALFORMED_QUOTING), (3, MALFORMED_QUOTING)]
    assert staged.rows_read == 3


def test_blank_lines_are_not_rows_and_line_numbers_stay_physical(tmp_path):
    staged, valid, rejected = stage(
        tmp_path, lines(TX_HEADER, "A,C1,2023-01-15,P1,1,1,S1", "", "B,C1,2023-01-15,P1,1,1,S1")
    )
    assert [v[0] for v in valid] == [2, 4]
    assert staged.blank_lines == 1 and staged.rows_read == 2


def test_header_trimmed_case_insensitive_with_bom_and_extra_column(tmp_path):
    text = "\ufeff Invoice_ID ,CUSTOMER_ID,Invoice_Date,product_id,Quantity,revenue,store_id, Note \r\nA,C1,2023-01-15,P1,1,2,S1,hello\r\n"
    staged, valid, rejected = stage(tmp_path, text)
    assert valid == [(2, "A", "C1", date(2023, 1, 15), "P1", 1.0, 2.0, "S1", '{"note":"hello"}')]
    assert staged.extra_columns == ["note"]


def test_optional_columns_may_be_absent(tmp_path):
    staged, valid, _ = stage(
        tmp_path, lines("invoice_id,customer_id,invoice_date,product_id,quantity", "A,C1,2023-01-15,P1,1")
    )
    assert valid == [(2, "A", "C1", date(2023, 1, 15), "P1", 1.0, None, None, None)]


def test_values_are_trimmed_for_types_but_ids_keep_their_text(tmp_path):
    staged, valid, _ = stage(tmp_path, lines(TX_HEADER, "A, 007 , 2023-01-15 ,P1, -2 ,1,S1"))
    assert valid == [(2, "A", " 007 ", date(2023, 1, 15), "P1", -2.0, 1.0, "S1", None)]


# --- file-level errors: one line naming the file and column or key ----------------------------


@pytest.mark.parametrize(
    "header, message",
    [
        ("invoice_id,customer_id,invoice_date,product_id,revenue", "missing required column 'quantity'"),
        ("invoice_id,customer_id,invoice_date,product_id,quantity,Quantity", "column 'quantity' appears twice"),
        ("invoice_id,,invoice_date,product_id,quantity,customer_id", "column 2 of the header has no name"),
    ],
)
def test_bad_header_stops_with_file_and_column(tmp_path, header, message):
    with pytest.raises(InputFileError) as err:
        stage(tmp_path, lines(header, "A,C1,2023-01-15,P1,1"))
    text = str(err.value)
    assert "sales_transactions_2023.csv" in text and message in text and "\n" not in text


def test_empty_file_stops(tmp_path):
    with pytest.raises(InputFileError, match="sales_transactions_2023.csv: empty file"):
        stage(tmp_path, b"")


def test_missing_master_stops_and_names_file(input_dir, warehouse_path):
    (input_dir / "customers_master.csv").unlink()
    with pytest.raises(InputFileError, match=r"customers_master\.csv: file not found"):
        load_all(input_dir, warehouse_path)


def test_missing_transactions_files_stop(input_dir, warehouse_path):
    (input_dir / "sales_transactions_2023.csv").unlink()
    with pytest.raises(InputFileError, match=r"no sales_transactions_\*\.csv file found"):
        load_all(input_dir, warehouse_path)


def test_duplicate_master_key_names_key_and_count(input_dir, warehouse_path):
    write(
        input_dir / "customers_master.csv",
        lines(CUSTOMER_HEADER, "C1,A,G,X,,,,,,", "C2,B,G,X,,,,,,", " C1 ,C,G,X,,,,,,", "C2,D,G,X,,,,,,"),
    )
    with pytest.raises(InputFileError) as err:
        load_all(input_dir, warehouse_path)
    assert str(err.value).endswith("duplicate customer_id 'C1' (2 rows, lines 2, 4); 2 duplicate key(s) in all")


def test_ids_007_and_7_are_different_keys(input_dir, warehouse_path):
    write(input_dir / "customers_master.csv", lines(CUSTOMER_HEADER, "007,A,G,X,,,,,,", "7,B,G,X,,,,,,"))
    load_all(input_dir, warehouse_path)
    assert query(warehouse_path, "SELECT customer_id FROM raw.customers ORDER BY line_number") == [("007",), ("7",)]


@pytest.mark.parametrize("unit_size", ["", "0", "-5", "ten"])
def test_consumable_without_positive_unit_size_stops(input_dir, warehouse_path, unit_size):
    write(
        input_dir / "products_master.csv",
        lines(PRODUCT_HEADER, "P1,Pods,B,consumable,10", f"P2,Caps,B, Refill ,{unit_size}"),
    )
    with pytest.raises(InputFileError) as err:
        load_all(input_dir, warehouse_path)
    assert f"consumable product 'P2' has no positive unit_size (got '{unit_size}'); 1 such product(s)" in str(err.value)


def test_grammage_g_is_unit_size_and_categories_load_as_written(input_dir, warehouse_path):
    write(
        input_dir / "products_master.csv",
        lines(
            "product_id,product_name,brand,category,grammage_g",
            "P1,Pods,B,REFILL,250",
            "G1,Gift,B,gift_card,",
            "D1,M,B,device,n/a",
        ),
    )
    load_all(input_dir, warehouse_path)
    assert query(
        warehouse_path, "SELECT product_id, category, unit_size, unit_size_text FROM raw.products ORDER BY line_number"
    ) == [
        ("P1", "REFILL", 250.0, "250"),
        ("G1", "gift_card", None, None),
        ("D1", "device", None, "n/a"),
    ]


def test_customer_created_date_blank_or_invalid_loads_as_null_with_text(input_dir, warehouse_path):
    write(
        input_dir / "customers_master.csv",
        lines(CUSTOMER_HEADER, 'C1,"Doe, ""Jo""",Loyalty,Paris,,,,,,', "C2,B,General,X,2023-02-30,,0612,yes,N,maybe"),
    )
    load_all(input_dir, warehouse_path)
    assert query(
        warehouse_path,
        "SELECT customer_id, customer_name, created_date, created_date_text, mobile_number, opt_email, opt_sms, opt_phone "
        "FROM raw.customers ORDER BY line_number",
    ) == [
        ("C1", 'Doe, "Jo"', None, None, None, None, None, None),
        ("C2", "B", None, "2023-02-30", "0612", "yes", "N", "maybe"),
    ]


def test_master_row_without_key_is_rejected(input_dir, warehouse_path):
    write(input_dir / "customers_master.csv", lines(CUSTOMER_HEADER, "C1,A,G,X,,,,,,", ",B,G,X,,,,,,"))
    load_all(input_dir, warehouse_path)
    assert query(warehouse_path, "SELECT file_kind, source_file, line_number, reason FROM raw.rejected_rows") == [
        ("customers", "customers_master.csv", 3, "missing customer_id")
    ]


# --- loaded and kept: orphans, duplicates, future dates, returns ---------------------------------------


def test_orphans_duplicates_future_and_returns_are_loaded(input_dir, warehouse_path):
    write(
        input_dir / "sales_transactions_2023.csv",
        lines(
            TX_HEADER,
            "A,C1,2023-01-15,P1,3,10,S1",
            "A,C1,2023-01-15,P1,3,10,S1",  # exact duplicate
            "B,C404,2023-02-01,P1,1,1,S1",  # orphan customer
            "C,C1,2023-02-01,P404,1,1,S1",  # orphan product
            "D,C1,2023-02-02,P1,-1,-3,S1",  # return
            "E,C1,2023-02-02,P1,0,0,S1",  # zero quantity
            "F,C1,2031-05-01,P1,1,1,S1",  # future date
        ),
    )
    load_all(input_dir, warehouse_path)
    assert query(
        warehouse_path,
        "SELECT line_number, invoice_id, customer_id, product_id, quantity, partition_month FROM raw.sales_transactions ORDER BY line_number",
    ) == [
        (2, "A", "C1", "P1", 3.0, date(2023, 1, 1)),
        (3, "A", "C1", "P1", 3.0, date(2023, 1, 1)),
        (4, "B", "C404", "P1", 1.0, date(2023, 2, 1)),
        (5, "C", "C1", "P404", 1.0, date(2023, 2, 1)),
        (6, "D", "C1", "P1", -1.0, date(2023, 2, 1)),
        (7, "E", "C1", "P1", 0.0, date(2023, 2, 1)),
        (8, "F", "C1", "P1", 1.0, date(2031, 5, 1)),
    ]


def test_rows_read_equal_loaded_plus_rejected_for_every_file(input_dir, warehouse_path):
    write(
        input_dir / "sales_transactions_2024.csv",
        lines(
            TX_HEADER, "A,C1,2024-01-15,P1,1,1,S1", "bad", "B,C1,2024-13-01,P1,1,1,S1", "", "C,C1,2019-06-01,P1,1,1,S1"
        ),
    )
    load_all(input_dir, warehouse_path)
    rows = query(
        warehouse_path,
        """
        SELECT f.source_file, f.rows_read,
            (SELECT count(*) FROM raw.sales_transactions t WHERE t.source_file = f.source_file),
            (SELECT count(*) FROM raw.rejected_rows r WHERE r.source_file = f.source_file)
        FROM raw.file_loads f WHERE file_kind = 'sales_transactions' ORDER BY 1
        """,
    )
    assert rows == [("sales_transactions_2023.csv", 1, 1, 0), ("sales_transactions_2024.csv", 4, 2, 2)]
    # the 2019 line predates the first partition: owned by it, still loaded
    assert query(warehouse_path, "SELECT partition_month FROM raw.sales_transactions WHERE invoice_id = 'C'") == [
        (date(2020, 1, 1),)
    ]


def test_window_replaces_exactly_its_months(input_dir, warehouse_path):
    write(
        input_dir / "sales_transactions_2023.csv",
        lines(TX_HEADER, "A,C1,2023-01-15,P1,1,1,S1", "B,C1,2023-02-15,P1,1,1,S1", "C,C1,2023-03-15,P1,1,1,S1"),
    )
    load_all(input_dir, warehouse_path)
    # the file changes in every month, but only February is reloaded
    write(
        input_dir / "sales_transactions_2023.csv",
        lines(TX_HEADER, "A2,C1,2023-01-15,P1,1,1,S1", "B2,C1,2023-02-15,P1,1,1,S1", "C2,C1,2023-03-15,P1,1,1,S1"),
    )
    con = duckdb.connect(str(warehouse_path))
    load_transactions(con, input_dir, date(2023, 2, 1), date(2023, 2, 1), FIRST, LAST)
    con.close()
    assert query(warehouse_path, "SELECT invoice_id FROM raw.sales_transactions ORDER BY invoice_date") == [
        ("A",),
        ("B2",),
        ("C",),
    ]


@pytest.mark.parametrize(
    "breakage",
    [
        lambda d: write(d / "products_master.csv", lines("product_id,product_name,brand,unit_size", "P1,a,b,1")),
        lambda d: write(d / "customers_master.csv", lines(CUSTOMER_HEADER, "C1,A,G,X,,,,,,", "C1,B,G,X,,,,,,")),
        lambda d: write(d / "products_master.csv", lines(PRODUCT_HEADER, "P1,Pods,B,consumable,0")),
        lambda d: write(
            d / "sales_transactions_2023.csv", lines("invoice_id,customer_id,product_id,quantity", "A,C1,P1,1")
        ),
        lambda d: (d / "products_master.csv").unlink(),
    ],
)
def test_blocking_error_leaves_warehouse_unchanged(input_dir, warehouse_path, breakage):
    load_all(input_dir, warehouse_path)
    before = table_dump(warehouse_path)
    write(input_dir / "sales_transactions_2023.csv", lines(TX_HEADER, "Z,C1,2023-05-15,P1,9,1,S1"))
    breakage(input_dir)
    with pytest.raises(InputFileError):
        load_all(input_dir, warehouse_path)
    assert table_dump(warehouse_path) == before


# --- through Dagster -------------------------------------------------------------------------------


def test_assets_materialize_a_month_range_in_one_run(input_dir, warehouse_path):
    write(input_dir / "sales_transactions_2024.csv", lines(TX_HEADER, "B,C1,2024-03-01,P1,1,1,S1", "oops"))
    result = materialize(
        raw_assets,
        resources={
            "warehouse": Warehouse(database=str(warehouse_path)),
            "input_folder": InputFolder(path=str(input_dir)),
        },
        instance=DagsterInstance.ephemeral(),
        tags={RANGE_START_TAG: "2023-01-01", RANGE_END_TAG: "2024-12-01"},
    )
    assert result.success
    assert query(warehouse_path, "SELECT count(*) FROM raw.sales_transactions") == [(2,)]
    assert query(warehouse_path, "SELECT source_file, line_number, raw_line, reason FROM raw.rejected_rows") == [
        ("sales_transactions_2024.csv", 3, "oops", "expected 7 fields, found 1")
    ]
    tx = [m for m in result.get_asset_materialization_events() if m.asset_key.path == ["raw", "sales_transactions"]]
    assert len(tx) == 24  # one materialization per month of the range, from one run
    meta = tx[0].materialization.metadata
    assert meta["rows_read_all_files"].value == 3 and meta["rows_rejected_all_files"].value == 1
