"""The monthly summary workbook, opened with openpyxl: sheets, charts, figures, the customer list, the row limit.

Built on the small hand-made warehouse of test_views (3 months, 5 evaluated
customers a month; in March 2024: 3 Active (007 Gold, 7 Bronze, C3 Gold),
2 Prospects).
"""

from __future__ import annotations

from datetime import date, datetime

import duckdb
import openpyxl
import pytest
from openpyxl.chart import BarChart, LineChart

from crm_assets.cli.main import main
from crm_assets.core.errors import CrmError
from crm_assets.core.rules import TIERS
from crm_assets.layers.reporting import SNAPSHOT_COLUMNS
from crm_assets.outputs import workbook

from ..conftest import query
from .test_views import FEB, JAN, MAR, small, warehouse_copy  # noqa: F401 - the module-scoped warehouse fixture

SUMMARY_SHEETS = ["KPIs", "Tier mix", "Trends", "Lifecycle", "Segments", "Migration", "Cohorts", "Reach", "Definitions"]


@pytest.fixture(scope="module")
def march(small):  # noqa: F811
    """The workbook the pipeline wrote for 2024-03."""
    path = small.output_dir / "reports" / "crm_summary_2024-03.xlsx"
    return openpyxl.load_workbook(path)


def rows_of(ws, first: int = 1):
    return [r for r in ws.iter_rows(min_row=first, values_only=True)]


def find_row(ws, label):
    for r in ws.iter_rows(values_only=True):
        if r and r[0] == label:
            return r
    raise AssertionError(f"{label!r} not in {ws.title}")


def test_the_pipeline_writes_one_workbook_per_month_and_no_temporary_file(small):  # noqa: F811
    files = sorted(p.name for p in (small.output_dir / "reports").iterdir() if p.suffix != ".html")  # test_html_report
    assert files == ["crm_summary_2024-01.xlsx", "crm_summary_2024-02.xlsx", "crm_summary_2024-03.xlsx"]


def test_sheets_in_order(march):
    assert march.sheetnames == [*SUMMARY_SHEETS, "Customers"]


def test_kpis_against_previous_month_and_year_before(march):
    ws = march["KPIs"]
    header = find_row(ws, "KPI")
    assert header[1:4] == ("Mar 2024", "Feb 2024 (M-1)", "Change") and header[5] == "Mar 2023 (M-12)"
    evaluated = find_row(ws, "Evaluated customers")
    assert evaluated[1:6] == (5, 5, 0, 0, None)  # no March 2023 in the warehouse: blank
    active = find_row(ws, "Active customers")
    assert active[1:5] == (3, 3, 0, 0)
    new = find_row(ws, "New customers (event)")
    assert new[1:5] == (0, 1, -1, -1)
    assert find_row(ws, "Units bought in the month")[1:3] == (100, 2500)  # Feb: 007 500 + C3 2000
    assert find_row(ws, "Device attach rate")[1] == pytest.approx(0.5)
    share = find_row(ws, "Active share")
    assert share[1] == pytest.approx(0.6) and share[3] == pytest.approx(0.0)
    notes = [r[0] for r in rows_of(ws) if r[0] and "not in the warehouse" in str(r[0])]
    assert notes == ["M-12 is not in the warehouse: its columns are blank."]
    assert ws.freeze_panes == "B5"
    assert ws["B5"].number_format == workbook.COUNT


def test_tier_mix_with_a_native_chart(march):
    ws = march["Tier mix"]
    assert [find_row(ws, t)[1] for t in TIERS] == [0, 0, 2, 0, 1, 0]
    assert find_row(ws, "Not Active")[1] == 2 and find_row(ws, "Total")[1] == 5
    assert find_row(ws, "Gold")[2] == pytest.approx(2 / 3)
    assert len(ws._charts) == 1 and isinstance(ws._charts[0], BarChart)


def test_trends_with_twelve_and_twenty_four_month_line_charts(march):
    ws = march["Trends"]
    table = [r for r in rows_of(ws, 5) if isinstance(r[0], datetime)]
    assert [r[0].date() for r in table] == [JAN, FEB, MAR]
    assert [r[1:6] for r in table] == [(5, 2, 2, 0, 0), (5, 3, 1, 0, 0), (5, 3, 0, 0, 0)]
    charts = ws._charts
    assert len(charts) == 4 and all(isinstance(c, LineChart) for c in charts)
    titles = ["".join(run.t for p in c.title.tx.rich.p for run in (p.r or [])) for c in charts]
    assert sum("last 12 months" in t for t in titles) == 2 and sum("last 24 months" in t for t in titles) == 2
    assert ws["A5"].number_format == workbook.MONTH


def test_lifecycle_sheet(march):
    ws = march["Lifecycle"]
    new = [r[1] for r in rows_of(ws) if r[0] == "New"]
    assert new == [0, 3]  # event New in March: nobody; stage New: 007, 7, C3 (first purchase within 12 months)
    assert find_row(ws, "Prospect")[1:3] == (2, pytest.approx(0.4))
    assert find_row(ws, "Total")[1] == 5
    assert len(ws._charts) == 1 and isinstance(ws._charts[0], LineChart)


def test_migration_matrix_and_cohorts_have_colour_scales(march):
    ws = march["Migration"]
    assert find_row(ws, "Gold")[1:9] == (0, 0, 2, 0, 0, 0, 0, 2)
    assert find_row(ws, "Bronze")[1:9] == (0, 0, 0, 0, 1, 0, 0, 1)
    assert find_row(ws, "(no tier)")[1:9] == (0, 0, 0, 0, 0, 0, 2, 2)
    assert find_row(ws, "Total M")[8] == 5
    rules = [r for cf in ws.conditional_formatting for r in cf.rules]
    assert len(rules) == 1 and rules[0].colorScale is not None
    cohorts = march["Cohorts"]
    jan = find_row(cohorts, datetime(2024, 1, 1))
    assert jan[1:5] == (2, 1.0, 1.0, 1.0) and jan[5] is None
    assert find_row(cohorts, datetime(2024, 2, 1))[1:4] == (1, 1.0, 1.0)
    assert [r.colorScale is not None for cf in cohorts.conditional_formatting for r in cf.rules] == [True]


def test_reach_and_segments(march):
    ws = march["Reach"]
    assert find_row(ws, "email")[1:6] == (5, 3, pytest.approx(0.6), 2, 2)
    assert find_row(ws, "Total")[1:5] == (2, 1, 1, pytest.approx(0.5))
    seg = march["Segments"]
    assert find_row(seg, "Retail")[1:3] == (2, 2) and find_row(seg, "Saint-Étienne")[1:3] == (1, 0)


def test_definitions_explain_every_figure(march):
    ws = march["Definitions"]
    figures = {(r[0], r[1]) for r in rows_of(ws, 5) if r[0]}
    for _, label, _, _ in workbook.KPIS:
        assert ("KPIs", label) in figures
    for column in SNAPSHOT_COLUMNS:
        assert ("Customers", column) in figures
    for sheet in SUMMARY_SHEETS[1:-1]:
        assert any(s == sheet for s, _ in figures), sheet
    text = " ".join(str(r[2]) for r in rows_of(ws, 5) if r[2])
    assert "'Customers' (5 rows)" in text and "1,048,575" in text


def test_customer_list_is_the_months_snapshot_with_formats(small, march):  # noqa: F811
    ws = march["Customers"]
    assert [c.value for c in ws[1]] == list(SNAPSHOT_COLUMNS)
    listed = [tuple(c.value for c in row) for row in ws.iter_rows(min_row=2)]
    snapshot = query(
        small.warehouse,
        f"SELECT {', '.join(SNAPSHOT_COLUMNS)} FROM reporting.customer_snapshot "
        "WHERE report_month = ? ORDER BY customer_id",
        [MAR],
    )
    assert len(listed) == len(snapshot) == 5
    assert [r[1] for r in listed] == ["007", "7", "C3", "C4", "C5"]
    assert ws["B2"].value == "007" and ws["B2"].data_type == "s"  # the id keeps its leading zeros
    col = {name: i + 1 for i, name in enumerate(SNAPSHOT_COLUMNS)}
    first = ws.cell(row=2, column=col["report_month"])
    assert first.value.date() == MAR and first.number_format == "yyyy-mm"
    m_total = ws.cell(row=2, column=col["m_total"])
    assert m_total.value == 1600 and m_total.number_format == workbook.DECIMAL
    purchase = ws.cell(row=2, column=col["first_consumable_purchase_date"])
    assert purchase.value.date() == date(2024, 1, 10) and purchase.number_format == workbook.DATE
    assert ws.cell(row=2, column=col["opt_email"]).value is True
    assert ws.cell(row=5, column=col["value_tier"]).value is None  # C4: Not Active, no tier
    assert ws.freeze_panes == "A2"
    assert list(ws.tables) == ["Customers"] and ws.tables["Customers"].ref == "A1:AF6"
    assert ws.tables["Customers"].autoFilter.ref == "A1:AF6"
    assert ws.column_dimensions["B"].width >= 14 and ws.column_dimensions["N"].width >= 12


def test_row_limit_splits_the_list_over_numbered_sheets(small, tmp_path, monkeypatch):  # noqa: F811
    monkeypatch.setattr(workbook, "EXCEL_MAX_ROWS", 3)  # a header and 2 customers per sheet
    path = tmp_path / "split.xlsx"
    con = duckdb.connect(str(small.warehouse), read_only=True)
    try:
        summary = workbook.build_workbook(con, MAR, path)
    finally:
        con.close()
    assert summary.customer_sheets == [("Customers", 2), ("Customers (2)", 2), ("Customers (3)", 1)]
    wb = openpyxl.load_workbook(path)
    assert wb.sheetnames == [*SUMMARY_SHEETS, "Customers", "Customers (2)", "Customers (3)"]
    ids = []
    for title, n in summary.customer_sheets:
        ws = wb[title]
        assert [c.value for c in ws[1]] == list(SNAPSHOT_COLUMNS) and ws.freeze_panes == "A2"
        assert len(ws.tables) == 1 and next(iter(ws.tables.values())).ref == f"A1:AF{n + 1}"
        ids += [r[1] for r in ws.iter_rows(min_row=2, values_only=True)]
    assert ids == ["007", "7", "C3", "C4", "C5"]  # nothing dropped, order kept
    text = " ".join(str(r[2]) for r in wb["Definitions"].iter_rows(values_only=True) if r[2])
    assert "'Customers' (2 rows), 'Customers (2)' (2 rows), 'Customers (3)' (1 rows)" in text


@pytest.mark.parametrize("total, message", [(1, "returned more"), (3, "returned fewer")])
def test_write_customer_list_refuses_a_count_that_does_not_match(tmp_path, total, message):
    con = duckdb.connect()
    wb = openpyxl.Workbook(write_only=True)
    listed = workbook.write_customer_list(
        wb, con, "SELECT * FROM (VALUES ('a'), ('b')) t(customer_id)", [], total, ["customer_id"]
    )
    path = tmp_path / "out" / "list.xlsx"
    with pytest.raises(RuntimeError, match=message):
        workbook.save_atomically(wb, path, [listed])
    assert list(path.parent.iterdir()) == []  # neither the file nor its temporary
    con.close()


def test_crm_report_writes_the_same_workbook(small, tmp_path, capsys, monkeypatch):  # noqa: F811
    monkeypatch.setenv("CRM_OUTPUT_DIR", str(tmp_path / "out"))
    assert main(["report", "--month", "2024-02", "--warehouse", str(small.warehouse)]) == 0
    out = capsys.readouterr().out
    path = tmp_path / "out" / "reports" / "crm_summary_2024-02.xlsx"
    assert f"wrote {path}" in out and "5 customers on Customers" in out
    wb = openpyxl.load_workbook(path)
    assert wb.sheetnames == [*SUMMARY_SHEETS, "Customers"] and wb["Customers"].max_row == 6
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # the temporary file is gone
    other = tmp_path / "mine.xlsx"
    assert main(["report", "--month", "2024-01", "--out", str(other), "--warehouse", str(small.warehouse)]) == 0
    assert openpyxl.load_workbook(other)["KPIs"]["B4"].value == "Jan 2024"


@pytest.mark.parametrize(
    "args, message",
    [
        (["--month", "2023-12"], "month 2023-12 is not in the warehouse (months held: 2024-01..2024-03)"),
        (["--month", "2024-13"], "'2024-13' is not a month"),
        (["--month", "2024-01", "--out", "report.pdf"], "must end with .xlsx"),
    ],
)
def test_crm_report_user_errors(small, tmp_path, capsys, args, message):  # noqa: F811
    argv = ["report", *args, "--warehouse", str(small.warehouse)]
    if "2024-13" in args:  # rejected by the argument parser
        with pytest.raises(SystemExit) as exit_:
            main(argv)
        assert exit_.value.code == 2
    else:
        assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_missing_views_are_a_user_error(small, tmp_path):  # noqa: F811
    copy = warehouse_copy(small, tmp_path, "DROP TABLE reporting.tier_migration")
    con = duckdb.connect(str(copy), read_only=True)
    try:
        with pytest.raises(CrmError, match="reporting.tier_migration not found"):
            workbook.build_workbook(con, MAR, tmp_path / "x.xlsx")
    finally:
        con.close()
    assert not (tmp_path / "x.xlsx").exists()


def test_a_month_without_customers_still_gets_its_workbook_and_exports(tmp_path):
    """January has only an anonymous customer's line: the month is computed, with no snapshot row."""
    from crm_assets.core.resources import Warehouse
    from crm_assets.outputs.exports import export_customers

    from ..pipeline import build

    rows = build(
        tmp_path,
        ["P1,Pods,B,consumable,10"],
        ["C1,Ann,Loyalty,Paris,2024-02-10,a@x.org,,1,0,0", "G1,Till,General,Paris,2024-01-01,,,0,0,0"],
        {"2024": ["G,G1,2024-01-05,P1,1,1,S1", "A,C1,2024-02-12,P1,2,2,S1"]},
        "2024-01",
        "2024-02",
        workbook_months=0,
    )
    assert [r["report_month"] for r in rows] == [FEB]
    output = tmp_path / "warehouse" / "output"
    jan = openpyxl.load_workbook(output / "reports" / "crm_summary_2024-01.xlsx")
    assert jan["Customers"].max_row == 1 and [c.value for c in jan["Customers"][1]] == list(SNAPSHOT_COLUMNS)
    assert find_row(jan["KPIs"], "Evaluated customers")[1] == 0
    assert find_row(jan["KPIs"], "Active share")[1] is None
    warehouse = Warehouse(database=str(tmp_path / "warehouse" / "crm.duckdb"))
    with pytest.raises(CrmError, match="no customer of 2024-01 matches"):
        export_customers(warehouse, JAN, tmp_path / "jan.csv")
    result = export_customers(warehouse, JAN, tmp_path / "jan.csv", allow_empty=True)
    assert result.rows == 0 and (tmp_path / "jan.csv").read_bytes().decode("utf-8-sig").count("\n") == 1


def test_workbooks_of_several_months_in_worker_processes_equal_the_serial_ones(small, tmp_path, monkeypatch):  # noqa: F811
    from crm_assets.core.resources import Warehouse

    monkeypatch.setattr(workbook, "PARALLEL_MIN_ROWS", 0)
    monkeypatch.setattr(workbook, "MAX_WORKBOOK_PROCESSES", 2)
    summaries = workbook.build_workbooks(Warehouse(database=str(small.warehouse)), tmp_path, [JAN, FEB, MAR])
    assert [(s.month, s.customers) for s in summaries] == [(JAN, 5), (FEB, 5), (MAR, 5)]
    for s in summaries:
        mine = openpyxl.load_workbook(s.path)
        pipeline = openpyxl.load_workbook(small.output_dir / "reports" / s.path.name)
        assert mine.sheetnames == pipeline.sheetnames
        for title in ("KPIs", "Migration", "Customers"):
            assert rows_of(mine[title]) == rows_of(pipeline[title]), (s.month, title)


@pytest.mark.parametrize(
    "rows, budget, listed",
    [
        ({JAN: 5, FEB: 5, MAR: 5}, 15, {JAN, FEB, MAR}),  # everything fits
        ({JAN: 5, FEB: 5, MAR: 5}, 10, {FEB, MAR}),  # newest first
        ({JAN: 5, FEB: 5, MAR: 5}, 9, {MAR}),
        ({JAN: 5, FEB: 5, MAR: 50}, 10, {MAR}),  # the newest month always gets its list
        ({JAN: 1, FEB: 50, MAR: 5}, 10, {MAR}),  # stops at the first month that does not fit
    ],
)
def test_lists_within_budget(rows, budget, listed):
    assert workbook.lists_within_budget(rows, budget) == listed


def test_a_long_run_leaves_the_older_lists_out_and_says_how_to_get_them(small, tmp_path):  # noqa: F811
    from crm_assets.core.resources import Warehouse

    summaries = workbook.build_workbooks(
        Warehouse(database=str(small.warehouse)), tmp_path, [JAN, FEB, MAR], list_rows=10
    )
    assert [(s.month, s.customers, [n for _, n in s.customer_sheets]) for s in summaries] == [
        (JAN, 5, []),
        (FEB, 5, [5]),
        (MAR, 5, [5]),
    ]
    jan = openpyxl.load_workbook(summaries[0].path)
    assert jan.sheetnames == [*SUMMARY_SHEETS, "Customers"]  # every summary sheet, and a Customers sheet
    assert jan["Customers"].max_row < 10 and "Table" not in str(jan["Customers"].tables)
    text = " ".join(str(c.value) for row in jan["Customers"].iter_rows() for c in row if c.value)
    assert "crm report --month 2024-01" in text and "crm export --month 2024-01" in text
    assert "5 customers" in text
    definitions = " ".join(str(c.value) for row in jan["Definitions"].iter_rows() for c in row if c.value)
    assert "Not in this workbook (5 customers)" in definitions
    # the KPIs are complete all the same
    pipeline = openpyxl.load_workbook(small.output_dir / "reports" / "crm_summary_2024-01.xlsx")
    assert rows_of(jan["KPIs"]) == rows_of(pipeline["KPIs"])
    feb = openpyxl.load_workbook(summaries[1].path)
    assert feb["Customers"].max_row == 6


def test_a_long_run_writes_the_newest_months_workbooks_and_removes_the_older_ones_it_recomputed(small, tmp_path):  # noqa: F811
    from dagster import DagsterInstance, materialize

    from crm_assets.cli.runner import RANGE_END_TAG, RANGE_START_TAG
    from crm_assets.core.resources import OutputFolder, Warehouse

    reports = tmp_path / "reports"
    reports.mkdir()
    stale = reports / "crm_summary_2024-01.xlsx"
    stale.write_bytes(b"figures of an earlier run")
    result = materialize(
        [workbook.summary_workbook],
        resources={
            "warehouse": Warehouse(database=str(small.warehouse)),
            "output_folder": OutputFolder(path=str(tmp_path), workbook_months=2),
        },
        instance=DagsterInstance.ephemeral(),
        tags={RANGE_START_TAG: "2024-01-01", RANGE_END_TAG: "2024-03-01"},
    )
    assert result.success
    assert sorted(p.name for p in reports.iterdir()) == ["crm_summary_2024-02.xlsx", "crm_summary_2024-03.xlsx"]
    january = [m for m in result.get_asset_materialization_events() if m.materialization.partition == "2024-01-01"][
        0
    ].materialization
    assert "crm report --month 2024-01 writes it" in january.metadata["workbook"].value


def test_a_run_writes_the_workbook_of_its_newest_month_unless_told_otherwise(monkeypatch):
    from crm_assets.core.resources import OutputFolder

    monkeypatch.delenv("CRM_WORKBOOK_MONTHS")  # the tests' own setting (conftest.py)
    assert OutputFolder().workbook_months == 1
    monkeypatch.setenv("CRM_WORKBOOK_MONTHS", "0")
    assert OutputFolder().workbook_months == 0
