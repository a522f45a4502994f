"""``crm export`` on the small hand-made warehouse of test_views: every filter against hand-worked lists.

Who is in which list (see test_views for the data):

| month | filter | customers |
|---|---|---|
| 2024-03 | none | 007, 7, C3, C4, C5 |
| 2024-03 | tier Gold / gold,bronze | 007, C3 / 007, 7, C3 |
| 2024-03 | stage Prospect | C4, C5 |
| 2024-02 | event New | C3 |
| 2024-03 | status "Not Active" | C4, C5 |
| 2024-03 | group Retail | 7, C3 |
| 2024-03 | city Paris / saint-étienne | 007, C3 / C5 |
| 2024-03 | store S1 / S2 / S3 | 007, C5 / 007, 7 / C3 |
| 2024-01 | store S2 | 7 (007 bought at S2 only in March) |
| 2024-03 | consent email / sms,phone | 007, C3, C4 / 7, C3, C4 |
| 2024-03 | city Paris + consent email | 007, C3 |

Contact columns in every list: 007 email only; 7 mobile only; C3 both
(email and phone consent); C4 mobile only (consents to e-mail but has no
address); C5 nothing (no consent).
"""

from __future__ import annotations

import csv
import io
import json

import openpyxl
import pytest

from crm_assets.cli.main import main
from crm_assets.core.errors import CrmError
from crm_assets.core.resources import Warehouse
from crm_assets.layers.reporting import SNAPSHOT_COLUMNS
from crm_assets.outputs import workbook
from crm_assets.outputs.exports import EXPORT_COLUMNS, ROUNDED, export_customers, export_query

from ..conftest import query
from .test_views import FEB, JAN, MAR, small, warehouse_copy  # noqa: F401 - the module-scoped warehouse fixture

CONTACTS = {
    "007": ("ann@x.org", None),
    "7": (None, "+332"),
    "C3": ("cid@x.org", "+333"),
    "C4": (None, "+334"),
    "C5": (None, None),
}


def read_csv(path) -> tuple[bytes, list[dict]]:
    raw = path.read_bytes()
    text = raw.decode("utf-8-sig")
    return raw[:3], list(csv.DictReader(io.StringIO(text)))


def run_export(small, tmp_path, month, name="list.csv", allow_empty=False, **filters):  # noqa: F811
    out = tmp_path / name
    consent = filters.pop("consent", None)
    result = export_customers(Warehouse(database=str(small.warehouse)), month, out, filters, consent, allow_empty)
    return result, out


@pytest.mark.parametrize(
    "month, filters, expected",
    [
        (MAR, {}, ["007", "7", "C3", "C4", "C5"]),
        (MAR, {"tier": ["Gold"]}, ["007", "C3"]),
        (MAR, {"tier": ["gold,bronze"]}, ["007", "7", "C3"]),
        (MAR, {"tier": ["Gold", "Bronze"]}, ["007", "7", "C3"]),
        (MAR, {"tier": ["Diamond"]}, []),
        (MAR, {"stage": ["Prospect"]}, ["C4", "C5"]),
        (FEB, {"event": ["New"]}, ["C3"]),
        (JAN, {"event": ["New"]}, ["007", "7"]),
        (MAR, {"event": ["New"]}, []),
        (MAR, {"status": ["Not Active"]}, ["C4", "C5"]),
        (MAR, {"status": ["active"]}, ["007", "7", "C3"]),
        (MAR, {"group": ["Retail"]}, ["7", "C3"]),
        (MAR, {"city": ["Paris"]}, ["007", "C3"]),
        (MAR, {"city": ["saint-étienne"]}, ["C5"]),
        (MAR, {"store": ["S1"]}, ["007", "C5"]),
        (MAR, {"store": ["S2"]}, ["007", "7"]),
        (MAR, {"store": ["S3"]}, ["C3"]),
        (JAN, {"store": ["S2"]}, ["7"]),
        (MAR, {"consent": ["email"]}, ["007", "C3", "C4"]),
        (MAR, {"consent": ["sms,phone"]}, ["7", "C3", "C4"]),
        (MAR, {"consent": ["sms"]}, ["7", "C4"]),
        (MAR, {"city": ["Paris"], "consent": ["email"]}, ["007", "C3"]),
        (MAR, {"group": ["Retail"], "tier": ["Gold"]}, ["C3"]),
        (MAR, {"store": ["S1", "S3"], "status": ["Active"]}, ["007", "C3"]),
    ],
)
def test_each_filter_gives_the_hand_worked_list(small, tmp_path, month, filters, expected):  # noqa: F811
    result, out = run_export(small, tmp_path, month, allow_empty=not expected, **filters)
    bom, rows = read_csv(out)
    assert bom == b"\xef\xbb\xbf"
    assert [r["customer_id"] for r in rows] == expected
    assert result.rows == len(expected)
    for r in rows:
        email, mobile = CONTACTS[r["customer_id"]]
        assert (r["email"] or None, r["mobile_number"] or None) == (email, mobile), r["customer_id"]


def test_csv_has_the_snapshot_columns_and_values(small, tmp_path):  # noqa: F811
    _, out = run_export(small, tmp_path, MAR, city=["saint-étienne"])
    text = out.read_bytes().decode("utf-8-sig")
    assert text.splitlines()[0].replace('"', "").split(",") == list(EXPORT_COLUMNS)
    row = next(csv.DictReader(io.StringIO(text)))
    assert row["city"] == "Saint-Étienne" and row["report_month"] == "2024-03-01"
    assert row["first_device_purchase_date"] == "2024-01-25" and row["lifecycle_stage"] == "Prospect"
    assert row["opt_email"] == "false" and row["value_tier"] == ""
    # the rows equal the snapshot's, column by column
    _, out = run_export(small, tmp_path, MAR, name="all.csv")
    _, rows = read_csv(out)
    snap = query(
        small.warehouse,
        f"SELECT {', '.join(SNAPSHOT_COLUMNS)} FROM reporting.customer_snapshot "
        "WHERE report_month = ? ORDER BY customer_id",
        [MAR],
    )
    assert [r["customer_id"] for r in rows] == [s[1] for s in snap]
    assert [float(r["m_total"]) for r in rows] == [round(s[4], 2) for s in snap]
    assert [r["value_tier"] or None for r in rows] == [s[21] for s in snap]


def test_no_contact_data_without_consent_in_any_month(small, tmp_path):  # noqa: F811
    for month in (JAN, FEB, MAR):
        _, out = run_export(small, tmp_path, month, name=f"{month}.csv")
        for r in read_csv(out)[1]:
            if r["email"]:
                assert r["opt_email"] == "true"
            if r["mobile_number"]:
                assert "true" in (r["opt_sms"], r["opt_phone"])
    # the anonymous customer (consenting, with contact data) is never exported
    assert "G1" not in {r["customer_id"] for r in read_csv(out)[1]}


def test_withdrawn_consent_in_the_current_master_is_honoured(small, tmp_path):  # noqa: F811
    copy = warehouse_copy(small, tmp_path, "UPDATE enriched.customers SET opt_email = false WHERE customer_id = '007'")
    result = export_customers(Warehouse(database=str(copy)), MAR, tmp_path / "w.csv", {}, ["email"])
    rows = read_csv(tmp_path / "w.csv")[1]
    assert [r["customer_id"] for r in rows] == ["C3", "C4"]
    result = export_customers(Warehouse(database=str(copy)), MAR, tmp_path / "w.csv", {"city": ["Paris"]}, None)
    ann = read_csv(tmp_path / "w.csv")[1][0]
    assert result.rows == 2 and ann["customer_id"] == "007" and ann["email"] == "" and ann["opt_email"] == "false"


def test_xlsx_export_keeps_ids_as_text_and_documents_itself(small, tmp_path):  # noqa: F811
    result, out = run_export(small, tmp_path, MAR, name="list.xlsx", consent=["email"])
    assert result.file_format == "xlsx" and result.rows == 3
    wb = openpyxl.load_workbook(out)
    assert wb.sheetnames == ["Customers", "Export"]
    ws = wb["Customers"]
    assert [c.value for c in ws[1]] == list(EXPORT_COLUMNS)
    ids = [ws.cell(row=r, column=2).value for r in range(2, ws.max_row + 1)]
    assert ids == ["007", "C3", "C4"]
    assert ws.cell(row=2, column=2).data_type == "s"
    email_col = EXPORT_COLUMNS.index("email") + 1
    assert [ws.cell(row=r, column=email_col).value for r in range(2, 5)] == ["ann@x.org", "cid@x.org", None]
    assert ws.freeze_panes == "A2" and list(ws.tables) == ["Customers"]
    about = {r[0]: r[1] for r in wb["Export"].iter_rows(min_row=4, values_only=True) if r[0]}
    assert (
        about["Rows"] == 3 and about["Consent filter"] == "consented to email" and "opt_email" in about["Consent rule"]
    )


def test_xlsx_export_splits_over_numbered_sheets_at_the_row_limit(small, tmp_path, monkeypatch):  # noqa: F811
    monkeypatch.setattr(workbook, "EXCEL_MAX_ROWS", 3)  # a header and 2 customers per sheet
    _, out = run_export(small, tmp_path, MAR, name="split.xlsx")
    wb = openpyxl.load_workbook(out)
    assert wb.sheetnames == ["Customers", "Customers (2)", "Customers (3)", "Export"]
    ids = []
    for title in wb.sheetnames[:3]:
        ws = wb[title]
        assert ws.cell(row=1, column=2).value == "customer_id"
        ids += [ws.cell(row=r, column=2).value for r in range(2, ws.max_row + 1)]
    assert ids == ["007", "7", "C3", "C4", "C5"]


@pytest.mark.parametrize(
    "month, filters, message",
    [
        (
            MAR,
            {"tier": ["Platinium"]},
            "--tier: unknown value 'Platinium'; valid values: Diamond, Platinum, Gold, Silver, Bronze, Passive",
        ),
        (
            MAR,
            {"stage": ["Churned"]},
            "--stage: unknown value 'Churned'; valid values: Prospect, New, Active, At Risk, Lost",
        ),
        (MAR, {"event": ["Won"]}, "--event: unknown value 'Won'; valid values: New, Lost, Reactivated"),
        (MAR, {"status": ["Inactive"]}, "--status: unknown value 'Inactive'; valid values: Active, Not Active"),
        (
            MAR,
            {"group": ["General"]},
            "--group: unknown value 'General' in 2024-03; valid values: Loyalty, Online, Retail",
        ),
        (
            MAR,
            {"city": ["Berlin"]},
            "--city: unknown value 'Berlin' in 2024-03; valid values: Lyon, Paris, Saint-Étienne",
        ),
        (JAN, {"store": ["S3"]}, "--store: unknown value 'S3' in 2024-01; valid values: S1, S2"),
        (MAR, {"consent": ["fax"]}, "--consent: unknown value 'fax'; valid values: email, sms, phone"),
        (MAR, {"city": ["Paris' OR '1'='1"]}, "--city: unknown value 'Paris' OR '1'='1' in 2024-03"),
    ],
)
def test_unknown_filter_values_are_refused_with_the_valid_ones(small, tmp_path, month, filters, message):  # noqa: F811
    with pytest.raises(CrmError) as error:
        run_export(small, tmp_path, month, **filters)
    assert message in str(error.value)
    assert not list(tmp_path.glob("*list*"))  # no file, not even a temporary one


def test_filter_values_are_parameters_not_sql_text():
    sql, params = export_query(MAR, {"city": ["O'Brien; DROP TABLE x"], "store": ["S1"], "tier": ["Gold"]}, ["email"])
    assert "O'Brien" not in sql and "S1" not in sql and "Gold" not in sql
    assert params["filter_city"] == ["O'Brien; DROP TABLE x"] and params["consent"] == ["email"]
    # the text depends only on which filters are used
    assert export_query(MAR, {"city": ["Lyon"], "store": ["S9"], "tier": ["Bronze"]}, ["sms"])[0] == sql


def test_every_export_is_audited(small, tmp_path):  # noqa: F811
    def audit():
        return query(
            small.warehouse,
            "SELECT report_month, filters, rows, file, file_format, consent_rule "
            "FROM reporting.export_audit ORDER BY exported_at, file",
        )

    before = (
        len(audit())
        if query(small.warehouse, "SELECT count(*) FROM information_schema.tables WHERE table_name = 'export_audit'")[
            0
        ][0]
        else 0
    )
    run_export(small, tmp_path, MAR, name="a.csv", city=["Paris"], consent=["email", "sms"])
    run_export(small, tmp_path, FEB, name="b.xlsx")
    with pytest.raises(CrmError):
        run_export(small, tmp_path, MAR, name="c.csv", tier=["Nope"])
    rows = audit()
    assert len(rows) == before + 2
    month, filters, n, file, fmt, rule = rows[-2]
    assert (month, json.loads(filters), n, fmt) == (MAR, {"city": ["Paris"], "consent": ["email", "sms"]}, 2, "csv")
    assert file == str((tmp_path / "a.csv").resolve())
    assert "email only when opt_email" in rule and "--consent email OR sms" in rule
    assert rows[-1][0] == FEB and json.loads(rows[-1][1]) == {} and rows[-1][2] == 5 and rows[-1][4] == "xlsx"


def test_cli_export(small, tmp_path, capsys):  # noqa: F811
    out = tmp_path / "cli.csv"
    code = main(
        [
            "export",
            "--month",
            "2024-03",
            "--tier",
            "gold",
            "--tier",
            "Bronze",
            "--city",
            "Paris,Lyon",
            "--consent",
            "email",
            "--warehouse",
            str(small.warehouse),
            "--out",
            str(out),
        ]
    )
    assert code == 0
    assert "wrote 2 customers of 2024-03" in capsys.readouterr().out  # Paris or Lyon, Gold or Bronze, email
    assert [r["customer_id"] for r in read_csv(out)[1]] == ["007", "C3"]
    assert (
        main(
            [
                "export",
                "--month",
                "2024-03",
                "--tier",
                "Platinium",
                "--warehouse",
                str(small.warehouse),
                "--out",
                str(out),
            ]
        )
        == 2
    )
    err = capsys.readouterr().err.strip()
    assert err.startswith("crm export: --tier: unknown value 'Platinium'") and "\n" not in err
    assert main(["export", "--month", "2030-01", "--warehouse", str(small.warehouse), "--out", str(out)]) == 2
    assert "month 2030-01 is not in the warehouse (months held: 2024-01..2024-03)" in capsys.readouterr().err
    assert (
        main(["export", "--month", "2024-03", "--warehouse", str(small.warehouse), "--out", str(tmp_path / "x.txt")])
        == 2
    )
    assert "must end with .csv or .xlsx" in capsys.readouterr().err


NAMES = {"007": "Ann", "7": "Bob", "C3": "Cid", "C4": "Dee", "C5": "Eve"}


def test_a_list_has_each_customers_name_beside_the_id(small, tmp_path):  # noqa: F811
    _, out = run_export(small, tmp_path, MAR)
    header, *_ = out.read_bytes().decode("utf-8-sig").splitlines()
    assert header.replace('"', "").split(",")[:3] == ["report_month", "customer_id", "customer_name"]
    assert {r["customer_id"]: r["customer_name"] for r in read_csv(out)[1]} == NAMES


def test_decimals_are_rounded_to_two_places_as_the_workbook_shows_them(small, tmp_path):  # noqa: F811
    assert {"m_total", "m6", "avg_monthly_consumption", "avg_order_size"} <= ROUNDED
    _, out = run_export(small, tmp_path, MAR)
    rows = read_csv(out)[1]
    snap = dict(
        query(
            small.warehouse,
            "SELECT customer_id, avg_monthly_consumption FROM reporting.customer_snapshot WHERE report_month = ?",
            [MAR],
        )
    )
    assert any(abs(v * 100 - round(v * 100)) > 1e-6 for v in snap.values() if v)  # the data has long decimals
    for r in rows:
        for column in ROUNDED:
            value = r[column]
            assert value == "" or len(value.partition(".")[2]) <= 2, (column, value)
        assert float(r["avg_monthly_consumption"]) == round(snap[r["customer_id"]], 2)


def test_a_list_that_matches_nothing_is_refused_unless_allowed(small, tmp_path, capsys):  # noqa: F811
    with pytest.raises(CrmError) as refused:
        run_export(small, tmp_path, MAR, name="none.csv", tier=["Diamond"], consent=["email"])
    assert str(refused.value) == (
        f"no customer of 2024-03 matches (value tier Diamond; consented to email); nothing written to "
        f"{tmp_path / 'none.csv'} (--allow-empty writes the empty list)"
    )
    assert not (tmp_path / "none.csv").exists() and not list(tmp_path.glob(".none*"))
    args = ["export", "--month", "2024-03", "--event", "new", "--warehouse", str(small.warehouse)]
    assert main([*args, "--out", str(tmp_path / "e.csv")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("crm export: no customer of 2024-03 matches (lifecycle event of the month New)")
    assert "\n" not in err and not (tmp_path / "e.csv").exists()
    assert main([*args, "--allow-empty", "--out", str(tmp_path / "e.csv")]) == 0
    assert "wrote 0 customers" in capsys.readouterr().out
    assert read_csv(tmp_path / "e.csv")[1] == [] and (tmp_path / "e.csv").read_bytes().startswith(b"\xef\xbb\xbf")


def test_the_export_sheet_says_the_filters_in_words(small, tmp_path):  # noqa: F811
    _, out = run_export(small, tmp_path, MAR, name="w.xlsx", tier=["gold,bronze"], city=["Paris"], consent=["email"])
    about = {r[0]: r[1] for r in openpyxl.load_workbook(out)["Export"].iter_rows(min_row=4, values_only=True) if r[0]}
    assert about["Filter: value tier"] == "Gold or Bronze" and about["Filter: city"] == "Paris"
    assert about["Consent filter"] == "consented to email" and "Filters" not in about
    _, out = run_export(small, tmp_path, MAR, name="all.xlsx")
    about = {r[0]: r[1] for r in openpyxl.load_workbook(out)["Export"].iter_rows(min_row=4, values_only=True) if r[0]}
    assert about["Filters"].startswith("(none)") and not any(k.startswith("Filter:") for k in about)
    _, out = run_export(small, tmp_path, MAR, name="c.xlsx", consent=["sms"])
    about = {r[0]: r[1] for r in openpyxl.load_workbook(out)["Export"].iter_rows(min_row=4, values_only=True) if r[0]}
    assert about["Filters"] == "(none)" and about["Consent filter"] == "consented to sms"


def test_csv_free_text_that_would_run_as_a_formula_is_kept_as_text(small, tmp_path):  # noqa: F811
    """A name, group or city starting like a formula gets an apostrophe in CSV (a spreadsheet shows it as
    text); a mobile number starting with + is left as it is, and xlsx cells keep the value unchanged."""
    copy = warehouse_copy(
        small,
        tmp_path,
        "UPDATE enriched.customers SET customer_name = '=HYPERLINK(\"http://x\")', mobile_number = '+33 6 12' "
        "WHERE customer_id = '007'",
        "UPDATE reporting.customer_snapshot SET city = '@SUM(A1)', customer_group = '-1+2' WHERE customer_id = 'C3'",
        "UPDATE enriched.customers SET opt_sms = true WHERE customer_id = '007'",
        "UPDATE reporting.customer_snapshot SET opt_sms = true WHERE customer_id = '007'",
    )
    export_customers(Warehouse(database=str(copy)), MAR, tmp_path / "f.csv")
    rows = {r["customer_id"]: r for r in read_csv(tmp_path / "f.csv")[1]}
    assert rows["007"]["customer_name"] == '\'=HYPERLINK("http://x")'
    assert rows["007"]["mobile_number"] == "+33 6 12"
    assert (rows["C3"]["city"], rows["C3"]["customer_group"]) == ("'@SUM(A1)", "'-1+2")
    assert (
        rows["7"]["city"] == query(copy, "SELECT city FROM reporting.customer_snapshot WHERE customer_id = '7'")[0][0]
    )
    export_customers(Warehouse(database=str(copy)), MAR, tmp_path / "f.xlsx")
    ws = openpyxl.load_workbook(tmp_path / "f.xlsx")["Customers"]
    column = EXPORT_COLUMNS.index("customer_name") + 1
    [cell] = [
        ws.cell(row=r, column=column) for r in range(2, ws.max_row + 1) if ws.cell(row=r, column=2).value == "007"
    ]
    assert cell.value == '=HYPERLINK("http://x")' and cell.data_type == "s"  # text, not a formula
