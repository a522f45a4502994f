"""The monthly summary workbook, opened with openpyxl: sheets, charts, figures, the customer list, the row limit,
and how it prints and reads (page setup, print titles, wrapped headings, labels, units, tier colours).

Built on the small hand-made warehouse of test_views (3 months, 5 evaluated
customers a month; in March 2024: 3 Active (007 Gold, 7 Bronze, C3 Gold),
2 Prospects).
"""

from __future__ import annotations

import zipfile
from datetime import date, datetime

import duckdb
import openpyxl
import pytest
from dagster import DagsterInstance, materialize
from openpyxl.chart import BarChart, LineChart

from crm_assets.cli.main import main
from crm_assets.cli.runner import RANGE_END_TAG, RANGE_START_TAG
from crm_assets.core.errors import CrmError
from crm_assets.core.resources import OutputFolder, Warehouse
from crm_assets.core.rules import TIERS
from crm_assets.layers.reporting import SNAPSHOT_COLUMNS
from crm_assets.outputs import summary, workbook
from crm_assets.outputs.exports import export_customers
from crm_assets.outputs.style import COHORT_FIRST_MONTH, TIER_COLOURS

from ..conftest import query
from ..pipeline import build
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
    assert ws.freeze_panes == "B6"
    assert ws["B6"].number_format == workbook.COUNT


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
    cohorts = march["Cohorts"]  # no cohort is 12 months old yet: nothing but the note
    assert not any(isinstance(r[0], datetime) for r in rows_of(cohorts))
    assert any("No customer made a first consumable purchase from" in str(r[0]) for r in rows_of(cohorts))


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
    listed = [(r[1], r[2]) for r in rows_of(ws, 5) if r[0] == "Customers" and r[2]]
    # each heading of the list beside the warehouse column it shows
    assert listed == [(workbook.HEADINGS[c], c) for c in SNAPSHOT_COLUMNS]
    for sheet in SUMMARY_SHEETS[1:-1]:
        assert any(s == sheet for s, _ in figures), sheet
    assert ("All sheets", "Units") in figures
    text = " ".join(str(r[3]) for r in rows_of(ws, 5) if r[3])
    assert "'Customers' (5 rows)" in text and "1,048,575" in text


def test_customer_list_is_the_months_snapshot_with_formats(small, march):  # noqa: F811
    ws = march["Customers"]
    assert [c.value for c in ws[1]] == [workbook.HEADINGS[c] for c in SNAPSHOT_COLUMNS]
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
        assert [c.value for c in ws[1]] == [workbook.HEADINGS[c] for c in SNAPSHOT_COLUMNS] and ws.freeze_panes == "A2"
        assert len(ws.tables) == 1 and next(iter(ws.tables.values())).ref == f"A1:AF{n + 1}"
        ids += [r[1] for r in ws.iter_rows(min_row=2, values_only=True)]
    assert ids == ["007", "7", "C3", "C4", "C5"]  # nothing dropped, order kept
    text = " ".join(str(r[3]) for r in wb["Definitions"].iter_rows(values_only=True) if r[3])
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
    assert openpyxl.load_workbook(other)["KPIs"]["B5"].value == "Jan 2024"


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
    headings = [workbook.HEADINGS[c] for c in SNAPSHOT_COLUMNS]
    assert jan["Customers"].max_row == 1 and [c.value for c in jan["Customers"][1]] == headings
    assert find_row(jan["KPIs"], "Evaluated customers")[1] == 0
    assert find_row(jan["KPIs"], "Active share")[1] is None
    warehouse = Warehouse(database=str(tmp_path / "warehouse" / "crm.duckdb"))
    with pytest.raises(CrmError, match="no customer of 2024-01 matches"):
        export_customers(warehouse, JAN, tmp_path / "jan.csv")
    result = export_customers(warehouse, JAN, tmp_path / "jan.csv", allow_empty=True)
    assert result.rows == 0 and (tmp_path / "jan.csv").read_bytes().decode("utf-8-sig").count("\n") == 1


def test_workbooks_of_several_months_in_worker_processes_equal_the_serial_ones(small, tmp_path, monkeypatch):  # noqa: F811
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
    monkeypatch.delenv("CRM_WORKBOOK_MONTHS")  # the tests' own setting (conftest.py)
    assert OutputFolder().workbook_months == 1
    monkeypatch.setenv("CRM_WORKBOOK_MONTHS", "0")
    assert OutputFolder().workbook_months == 0


CHART_SHEETS = {"Tier mix", "Trends", "Lifecycle"}


@pytest.fixture(scope="module")
def march_path(small):  # noqa: F811
    return small.output_dir / "reports" / "crm_summary_2024-03.xlsx"


# --------------------------------------------------------------------------- printed and read by people
# (the page count of the printed sample workbook: crm_assets_tests/layers/test_sample_pipeline.py)


def test_every_sheet_prints_one_page_wide_with_the_month_and_page_numbers(march):
    for ws in march.worksheets:
        setup = ws.page_setup
        assert ws.sheet_properties.pageSetUpPr.fitToPage, ws.title
        assert (int(setup.fitToWidth), int(setup.fitToHeight)) == (1, 0), ws.title  # as many pages down as needed
        assert int(setup.paperSize) == int(ws.PAPERSIZE_A4)
        assert ws.oddHeader.left.text == "CRM summary March 2024" and ws.oddHeader.right.text == "&A"
        assert ws.oddFooter.right.text == "Page &P of &N" and ws.oddFooter.left.text == "CRM analytics"
        assert ws.page_margins.left < 0.75  # narrower than the default
        if ws.title in CHART_SHEETS or ws.title == "Customers":
            assert setup.orientation == "landscape", ws.title
        if ws._charts:
            assert ws.title in CHART_SHEETS


def test_long_sheets_repeat_their_header_rows_on_every_page(march):
    titles = {ws.title: ws.print_title_rows for ws in march.worksheets}
    assert titles["Customers"] == "$1:$1"
    header = [i for i, r in enumerate(rows_of(march["KPIs"]), 1) if r[0] == "KPI"]
    assert titles["KPIs"] == f"${header[0]}:${header[0]}"
    assert titles["Definitions"] == "$4:$4" and rows_of(march["Definitions"])[3][0] == "Sheet"
    assert march["Cohorts"].print_title_cols == "$A:$B"
    city_header = [i for i, r in enumerate(rows_of(march["Segments"]), 1) if r[0] == "City"]
    assert titles["Segments"] == f"${city_header[0]}:${city_header[0]}"  # the long table's heading


def test_the_trends_charts_print_on_their_own_page_below_the_table(march):
    ws = march["Trends"]
    months = [i for i, r in enumerate(rows_of(ws), 1) if isinstance(r[0], datetime)]
    assert [b.id for b in ws.row_breaks.brk] == [months[-1]]
    anchors = [c.anchor._from.row + 1 for c in ws._charts]  # openpyxl anchors count rows from 0
    assert min(anchors) > months[-1]


def test_headings_wrap_and_their_rows_are_as_high_as_they_need(march):
    ws = march["Tier mix"]
    header = next(i for i, r in enumerate(rows_of(ws), 1) if r[0] == "Value tier")
    cells = list(ws[header])
    assert all(c.alignment.wrap_text for c in cells if c.value)
    # "Units 12 m per customer" in a column of width 14 takes two lines
    assert ws.row_dimensions[header].height == 2 * workbook.LINE_HEIGHT
    definitions = march["Definitions"]
    heights = [definitions.row_dimensions[i].height or 15 for i in range(5, definitions.max_row + 1)]
    assert max(heights) >= 3 * workbook.LINE_HEIGHT and min(heights) == workbook.LINE_HEIGHT
    for i in range(5, definitions.max_row + 1):
        text = definitions.cell(row=i, column=4).value
        assert definitions.row_dimensions[i].height >= workbook.LINE_HEIGHT * workbook.lines_needed(text, 70)
    # a note spans the sheet's width, wrapped
    assert any(str(r).startswith("A2:") for r in ws.merged_cells.ranges)


@pytest.mark.parametrize(
    "text, width, lines",
    [("Share of active", 12, 2), ("Customers", 12, 1), ("a " * 30, 21, 3), ("x" * 30, 10, 4), ("", 5, 1)],
)
def test_lines_needed(text, width, lines):
    assert workbook.lines_needed(text, width) == lines


def test_the_customer_list_shows_labels_and_wraps_them(march):
    ws = march["Customers"]
    headings = [c.value for c in ws[1]]
    assert headings == [workbook.HEADINGS[c] for c in SNAPSHOT_COLUMNS]
    assert len(set(headings)) == len(headings)
    assert "m6" not in headings and "Units 6 m" in headings and "Recency score" in headings
    assert all(c.alignment.wrap_text for c in ws[1])
    assert list(ws.tables["Customers"].column_names) == headings


def test_units_are_defined_where_they_first_appear(march):
    kpis = march["KPIs"]
    first_units = next(i for i, r in enumerate(rows_of(kpis), 1) if r[0] and "Units" in str(r[0]))
    assert kpis.cell(row=first_units, column=1).value == workbook.UNITS_DEFINITION
    assert "not items" in workbook.UNITS_DEFINITION
    assert find_row(march["Definitions"], "All sheets")[3] == workbook.UNITS_DEFINITION


def test_tier_colours_match_their_names_in_every_tier_chart_and_table(march, march_path):
    assert TIER_COLOURS["Gold"] == "D4AF37" and TIER_COLOURS["Silver"] == "BFC5CC"
    ws = march["Tier mix"]
    for tier in TIERS:
        cell = next(c for c in ws["A"] if c.value == tier)
        assert cell.fill.fgColor.rgb[-6:] == TIER_COLOURS[tier]
    points = ws._charts[0].series[0].dPt
    assert [(p.idx, p.graphicalProperties.solidFill.srgbClr) for p in points] == [
        (i, TIER_COLOURS[t]) for i, t in enumerate(TIERS)
    ]
    tier_charts = [c for c in march["Trends"]._charts if len(c.series) == len(TIERS)]
    assert len(tier_charts) == 2
    for chart in tier_charts:
        colours = [s.graphicalProperties.line.solidFill.srgbClr for s in chart.series]
        assert colours == [TIER_COLOURS[t] for t in TIERS]
    # the chart XML itself, as Excel and LibreOffice read it
    with zipfile.ZipFile(march_path) as z:
        charts = " ".join(z.read(n).decode() for n in z.namelist() if n.startswith("xl/charts/"))
    for tier in TIERS:
        assert f'val="{TIER_COLOURS[tier]}"' in charts


def test_document_properties(march):
    props = march.properties
    assert props.creator == "CRM analytics" and props.lastModifiedBy == "CRM analytics"
    assert props.title == "CRM summary March 2024" and "cohorts" in props.subject


def test_summary_sheets_come_first_and_the_workbook_opens_on_the_kpis(march):
    assert march.sheetnames[: len(SUMMARY_SHEETS)] == SUMMARY_SHEETS
    assert march.active.title == "KPIs"


def test_cohorts_start_at_month_twelve_hand_worked(tmp_path):
    """Cohort Jan 2023: C1 buys then only, C2 again in Jun 2023, C3 again in Feb 2024; cohort Feb 2023: C4,
    again in Mar 2024. In month 12 of Jan 2023 (Jan 2024) only C2 has units in the last 12 months: 1/3;
    in months 13 and 14, C2 and C3: 2/3. Feb 2023: month 12 (Feb 2024) 0, month 13 (Mar 2024) 1."""
    customers = [f"C{i},N{i},Retail,Lyon,2023-01-01,,,0,0,0" for i in range(1, 5)]
    lines = {
        "2023": [
            "I1,C1,2023-01-10,P1,1,1,S1",
            "I2,C2,2023-01-11,P1,1,1,S1",
            "I3,C3,2023-01-12,P1,1,1,S1",
            "I4,C4,2023-02-10,P1,1,1,S1",
            "I5,C2,2023-06-10,P1,1,1,S1",
        ],
        "2024": ["I6,C3,2024-02-10,P1,1,1,S1", "I7,C4,2024-03-10,P1,1,1,S1"],
    }
    build(tmp_path, ["P1,Pods,B,consumable,10"], customers, lines, "2023-01", "2024-03")
    wb = openpyxl.load_workbook(tmp_path / "warehouse" / "output" / "reports" / "crm_summary_2024-03.xlsx")
    ws = wb["Cohorts"]
    header = find_row(ws, "Cohort")
    assert header[2:5] == (str(COHORT_FIRST_MONTH), "13", "14")
    jan, feb = find_row(ws, datetime(2023, 1, 1)), find_row(ws, datetime(2023, 2, 1))
    assert jan[1] == 3 and jan[2:5] == (pytest.approx(1 / 3), pytest.approx(2 / 3), pytest.approx(2 / 3))
    assert jan[5] is None
    assert feb[1:4] == (1, 0.0, 1.0) and feb[4] is None
    cohorts = [r[0] for r in rows_of(ws) if isinstance(r[0], datetime)]
    assert cohorts == [datetime(2023, 1, 1), datetime(2023, 2, 1)]  # Mar 2023 on: younger than 12 months
    assert "Months 0-11 are left out" in " ".join(str(r[0]) for r in rows_of(ws)[:4])


def test_a_comparison_month_not_in_the_warehouse_is_blank_in_every_table(small):  # noqa: F811
    """January 2024 is the first month held: December 2023 (M-1) and January 2023 (M-12) are blank, not 0."""
    jan = openpyxl.load_workbook(small.output_dir / "reports" / "crm_summary_2024-01.xlsx")
    tiers = jan["Tier mix"]
    assert find_row(tiers, "Value tier")[4] == "Dec 2023"
    for label in (*TIERS, "Not Active", "Total"):
        assert find_row(tiers, label)[4:6] == (None, None), label
    lifecycle = rows_of(jan["Lifecycle"])
    events = [r for r in lifecycle if r[0] in ("Lost", "Reactivated")][:2]
    assert [r[2:4] for r in events] == [(None, None), (None, None)]
    assert find_row(jan["Lifecycle"], "Total")[3:5] == (None, None)
    # February: January is held, so its figures are there
    feb = openpyxl.load_workbook(small.output_dir / "reports" / "crm_summary_2024-02.xlsx")
    assert find_row(feb["Tier mix"], "Total")[4] == 5


def test_the_summary_queries_return_the_declared_columns_in_order():
    """The workbook and the page read the trend and segment rows by name: a query whose columns drift from
    TREND_COLUMNS or SEGMENT_COLUMNS is refused instead of shifting every figure."""
    con = duckdb.connect()
    try:
        rows = summary.named_rows(con, "SELECT 1 AS a, 2 AS b", [], (("a", "A", None), ("b", "B", None)))
        assert rows == [{"a": 1, "b": 2}]
        with pytest.raises(AssertionError, match="not the declared"):
            summary.named_rows(con, "SELECT 2 AS b, 1 AS a", [], (("a", "A", None), ("b", "B", None)))
    finally:
        con.close()
    assert [c[0] for c in summary.TREND_COLUMNS[-len(TIERS) :]] == list(TIERS)
