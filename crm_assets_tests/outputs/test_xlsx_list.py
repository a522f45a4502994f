"""Customer lists written by crm_assets/xlsx_list.py (sheet XML built in DuckDB), read back with openpyxl.

Each test builds a list from a hand-written query on an in-memory DuckDB,
through ``workbook.write_customer_list`` and ``workbook.save_atomically``
(the path of the summary workbook and of ``crm export --out x.xlsx``).
"""

from __future__ import annotations

import zipfile
from datetime import date, datetime
from pathlib import Path
from xml.etree import ElementTree

import duckdb
import openpyxl
import pytest

from crm_assets.outputs import workbook, xlsx_list

# (column name, SQL type, values of the rows); the names pick the formats of workbook.LIST_COLUMNS
EDGE_ROWS = 5
EDGE_COLUMNS = [
    ("report_month", "DATE", ["DATE '2024-03-01'"] * EDGE_ROWS),
    (
        "customer_id",
        "VARCHAR",
        ["'007'", "'  0042 '", "'C<3>&\"''x'", "'A' || chr(0) || 'B' || chr(7) || chr(11) || chr(31) || 'C'", "'   '"],
    ),
    (
        "city",
        "VARCHAR",
        [
            "'Saint-Étienne ✓ 😀'",
            "NULL",
            "'=1+2'",
            "'a' || chr(9) || 'b' || chr(10) || 'c' || chr(13) || chr(10) || 'd'",
            "''",
        ],
    ),
    ("m_total", "DOUBLE", ["1600.0", "0.1", "-1.5e-7", "'nan'::DOUBLE", "'inf'::DOUBLE"]),
    ("avg_order_size", "DECIMAL(18,3)", ["12.5", "NULL", "-0.125", "1234567.891", "0"]),
    ("o6", "BIGINT", ["0", "9007199254740993", "-7", "NULL", "42"]),
    ("tenure_months", "INTEGER", ["12", "NULL", "1", "2", "3"]),
    (
        "first_consumable_purchase_date",
        "DATE",
        ["DATE '2024-01-10'", "DATE '1900-01-15'", "DATE '1900-03-01'", "NULL", "DATE '9999-12-31'"],
    ),
    ("opt_email", "BOOLEAN", ["true", "false", "NULL", "true", "false"]),
    (
        "changed_at",
        "TIMESTAMP",
        ["TIMESTAMP '2024-03-01 12:30:00'", "NULL", "TIMESTAMP '2000-01-01 00:00:00'", "NULL", "NULL"],
    ),
    ("value_tier", "VARCHAR", ["'Gold'", "NULL", "NULL", "'Bronze'", "NULL"]),
    ("note_id", "UUID", ["'00000000-0000-0000-0000-00000000000a'::UUID", "NULL", "NULL", "NULL", "NULL"]),
]
NAMES = [name for name, _, _ in EDGE_COLUMNS]
COL = {name: i for i, name in enumerate(NAMES, 1)}


def values_sql(columns=EDGE_COLUMNS, rows: int = EDGE_ROWS) -> str:
    body = ", ".join(
        "(" + ", ".join([str(i)] + [f"CAST({vals[i]} AS {typ})" for _, typ, vals in columns]) + ")" for i in range(rows)
    )
    names = ", ".join(["n"] + [name for name, _, _ in columns])
    return f"SELECT * EXCLUDE (n) FROM (VALUES {body}) t({names}) ORDER BY n"


def write_list(path: Path, sql: str, total: int, names, params=()) -> workbook.ListResult:
    con = duckdb.connect()
    try:
        wb = openpyxl.Workbook(write_only=True)
        listed = workbook.write_customer_list(wb, con, sql, list(params), total, names, "Customers")
        wb.create_sheet("After").append(["a sheet after the list"])
        workbook.save_atomically(wb, path, [listed])
    finally:
        con.close()
    return listed


@pytest.fixture(scope="module")
def edge(tmp_path_factory):
    path = tmp_path_factory.mktemp("xlsx") / "edge.xlsx"
    listed = write_list(path, values_sql(), EDGE_ROWS, NAMES)
    return path, listed


def sheet_xml(path: Path, title: str) -> bytes:
    with zipfile.ZipFile(path) as zf:
        return zf.read(xlsx_list.sheet_parts(zf)[title])


def test_the_file_is_a_valid_xlsx(edge):
    path, listed = edge
    with zipfile.ZipFile(path) as zf:
        assert zf.testzip() is None
        for name in zf.namelist():
            if name.endswith((".xml", ".rels")):
                ElementTree.fromstring(zf.read(name))  # every part is well-formed XML
    wb = openpyxl.load_workbook(path)
    assert wb.sheetnames == ["Customers", "After"] and listed.sheets == [("Customers", EDGE_ROWS)]
    ws = wb["Customers"]
    assert [c.value for c in ws[1]] == NAMES
    assert ws.max_row == EDGE_ROWS + 1 and ws.max_column == len(NAMES)  # no prototype or marker left
    assert ws.freeze_panes == "A2"
    assert list(ws.tables) == ["Customers"] and ws.tables["Customers"].ref == f"A1:L{EDGE_ROWS + 1}"
    assert wb["After"]["A1"].value == "a sheet after the list"


def test_text_is_escaped_cleaned_and_kept_as_is(edge):
    ws = openpyxl.load_workbook(edge[0])["Customers"]
    ids = [ws.cell(row=r, column=COL["customer_id"]) for r in range(2, EDGE_ROWS + 2)]
    assert [c.value for c in ids] == ["007", "  0042 ", "C<3>&\"'x", "ABC", "   "]
    assert all(c.data_type == "s" for c in ids)  # text, leading zeros kept
    city = [ws.cell(row=r, column=COL["city"]).value for r in range(2, EDGE_ROWS + 2)]
    # a formula-looking text stays text; tab, LF and CR kept; the empty string is no cell
    assert city == ["Saint-Étienne ✓ 😀", None, "=1+2", "a\tb\nc\r\nd", None]
    assert ws.cell(row=4, column=COL["city"]).data_type == "s"
    xml = sheet_xml(edge[0], "Customers").decode("utf-8")
    assert '<t xml:space="preserve">  0042 </t>' in xml and '<t xml:space="preserve">   </t>' in xml
    assert "C&lt;3&gt;&amp;\"'x" in xml
    assert ws.cell(row=2, column=COL["note_id"]).value == "00000000-0000-0000-0000-00000000000a"  # other types: text


def test_numbers_dates_and_booleans_with_their_formats(edge):
    ws = openpyxl.load_workbook(edge[0])["Customers"]

    def column(name):
        return [ws.cell(row=r, column=COL[name]) for r in range(2, EDGE_ROWS + 2)]

    month = column("report_month")
    assert {c.value for c in month} == {datetime(2024, 3, 1)} and {c.number_format for c in month} == {"yyyy-mm"}
    m_total = column("m_total")
    assert [c.value for c in m_total] == [1600, 0.1, -1.5e-7, None, None]  # NaN and infinity: no cell
    assert m_total[0].number_format == workbook.DECIMAL and m_total[0].data_type == "n"
    aos = column("avg_order_size")
    assert [c.value for c in aos] == [12.5, None, -0.125, 1234567.891, 0]
    assert aos[0].number_format == workbook.DECIMAL
    o6 = column("o6")
    assert [c.value for c in o6] == [0, 9007199254740993, -7, None, 42]
    assert o6[0].number_format == "General"  # whole numbers have no style, as before
    assert [c.value for c in column("tenure_months")] == [12, None, 1, 2, 3]
    purchase = column("first_consumable_purchase_date")
    assert [c.value for c in purchase] == [
        datetime(2024, 1, 10),
        datetime(1900, 1, 15),
        datetime(1900, 3, 1),
        None,
        datetime(9999, 12, 31),
    ]
    assert purchase[0].number_format == workbook.DATE and purchase[0].is_date
    assert [c.value for c in column("opt_email")] == [True, False, None, True, False]
    assert column("opt_email")[0].data_type == "b"
    changed = column("changed_at")
    assert changed[0].value == datetime(2024, 3, 1, 12, 30) and changed[2].value == datetime(2000, 1, 1)
    assert changed[0].is_date  # openpyxl's own format for a datetime


def test_nulls_in_the_middle_of_a_row_leave_the_later_cells_in_their_columns(edge):
    ws = openpyxl.load_workbook(edge[0])["Customers"]
    second = [c.value for c in ws[3]]  # city, avg_order_size, tenure_months, ... NULL; value_tier NULL
    assert second[COL["customer_id"] - 1] == "  0042 " and second[COL["city"] - 1] is None
    assert second[COL["m_total"] - 1] == 0.1 and second[COL["avg_order_size"] - 1] is None
    assert second[COL["o6"] - 1] == 9007199254740993 and second[COL["opt_email"] - 1] is False
    fourth = [c.value for c in ws[5]]
    assert fourth[COL["o6"] - 1] is None and fourth[COL["tenure_months"] - 1] == 2
    assert fourth[COL["value_tier"] - 1] == "Bronze"
    xml = sheet_xml(edge[0], "Customers").decode("utf-8")
    assert '<c r="K5" t="inlineStr"><is><t>Bronze</t></is></c>' in xml and 'r="F5"' not in xml


@pytest.mark.parametrize("block_rows", [2, 3, 1000])
def test_the_split_over_numbered_sheets_restarts_at_row_2(tmp_path, monkeypatch, block_rows):
    monkeypatch.setattr(workbook, "EXCEL_MAX_ROWS", 4)  # a header and 3 rows per sheet
    monkeypatch.setattr(xlsx_list, "BLOCK_ROWS", block_rows)  # Arrow batches across the sheet boundaries
    sql = (
        "SELECT lpad(i::VARCHAR, 4, '0') AS customer_id, i * 1.5 AS m_total, DATE '2024-01-01' + i::INT AS "
        "first_consumable_purchase_date FROM range(7) t(i) ORDER BY i"
    )
    names = ["customer_id", "m_total", "first_consumable_purchase_date"]
    listed = write_list(tmp_path / "split.xlsx", sql, 7, names)
    assert listed.sheets == [("Customers", 3), ("Customers (2)", 3), ("Customers (3)", 1)]
    wb = openpyxl.load_workbook(tmp_path / "split.xlsx")
    assert wb.sheetnames == ["Customers", "Customers (2)", "Customers (3)", "After"]
    rows = []
    for title, n in listed.sheets:
        ws = wb[title]
        assert [c.value for c in ws[1]] == names and ws.freeze_panes == "A2"
        assert ws.max_row == n + 1 and next(iter(ws.tables.values())).ref == f"A1:C{n + 1}"
        rows += [(r[0].value, r[1].value, r[2].value.date(), r[1].number_format) for r in ws.iter_rows(min_row=2)]
    assert rows == [(f"{i:04d}", i * 1.5, date(2024, 1, 1 + i), workbook.DECIMAL) for i in range(7)]
    assert b'<row r="2">' in sheet_xml(tmp_path / "split.xlsx", "Customers (3)")


def test_an_empty_list_keeps_its_header_and_table(tmp_path):
    listed = write_list(tmp_path / "empty.xlsx", "SELECT 'x' AS customer_id WHERE false", 0, ["customer_id"])
    assert listed.sheets == [("Customers", 0)]
    ws = openpyxl.load_workbook(tmp_path / "empty.xlsx")["Customers"]
    assert ws.max_row == 1 and ws["A1"].value == "customer_id" and ws.tables["Customers"].ref == "A1:A2"


def test_named_parameters_and_a_count_that_does_not_match(tmp_path):
    sql = "SELECT i::VARCHAR AS customer_id FROM range(10) t(i) WHERE i < $n ORDER BY i"
    con = duckdb.connect()
    try:
        wb = openpyxl.Workbook(write_only=True)
        listed = workbook.write_customer_list(wb, con, sql, {"n": 4}, 4, ["customer_id"])
        workbook.save_atomically(wb, tmp_path / "out" / "ok.xlsx", [listed])
        ws = openpyxl.load_workbook(tmp_path / "out" / "ok.xlsx")["Customers"]
        assert [r[0] for r in ws.iter_rows(min_row=2, values_only=True)] == ["0", "1", "2", "3"]
        for total, message in ((3, "returned more"), (5, "returned fewer")):
            wb = openpyxl.Workbook(write_only=True)
            listed = workbook.write_customer_list(wb, con, sql, {"n": 4}, total, ["customer_id"])
            with pytest.raises(RuntimeError, match=message):
                workbook.save_atomically(wb, tmp_path / "out" / "bad.xlsx", [listed])
        with pytest.raises(ValueError, match="2 column names for a query of 1 columns"):
            workbook.write_customer_list(openpyxl.Workbook(write_only=True), con, sql, {"n": 4}, 4, ["a", "b"])
    finally:
        con.close()
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["ok.xlsx"]  # no temporary left


def test_sheet_parts_follow_relative_and_absolute_relationship_targets(tmp_path):
    path = tmp_path / "parts.zip"
    rel = "http://schemas.openxmlformats.org/package/2006/relationships"
    office = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(
            "_rels/.rels",
            f'<Relationships xmlns="{rel}"><Relationship Id="rId1" '
            f'Type="{office}/officeDocument" Target="xl/workbook.xml"/></Relationships>',
        )
        zf.writestr(
            "xl/_rels/workbook.xml.rels",
            f'<Relationships xmlns="{rel}">'
            '<Relationship Id="rId1" Type="x" Target="worksheets/a.xml"/>'
            '<Relationship Id="rId2" Type="x" Target="/xl/worksheets/b.xml"/></Relationships>',
        )
        zf.writestr(
            "xl/workbook.xml",
            '<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
            f'xmlns:r="{office}"><sheets><sheet name="One" sheetId="1" r:id="rId1"/>'
            '<sheet name="Two" sheetId="2" r:id="rId2"/></sheets></workbook>',
        )
    with zipfile.ZipFile(path) as zf:
        assert xlsx_list.sheet_parts(zf) == {"One": "xl/worksheets/a.xml", "Two": "xl/worksheets/b.xml"}


@pytest.mark.parametrize(
    "duckdb_type, kind",
    [
        ("VARCHAR", "text"),
        ("BIGINT", "number"),
        ("HUGEINT", "number"),
        ("DECIMAL(18,3)", "decimal"),
        ("DOUBLE", "float"),
        ("FLOAT", "float"),
        ("DATE", "date"),
        ("TIMESTAMP", "timestamp"),
        ("TIMESTAMP_NS", "timestamp"),
        ("BOOLEAN", "bool"),
        ("UUID", "other"),
        ("TIMESTAMP WITH TIME ZONE", "other"),
    ],
)
def test_column_kinds(duckdb_type, kind):
    assert xlsx_list.column_kind(duckdb_type) == kind
