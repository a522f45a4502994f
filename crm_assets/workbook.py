"""The monthly Excel summary workbook ``reports/crm_summary_YYYY-MM.xlsx`` (asset and ``crm report``).

:func:`build_workbook` is the one builder, used by the ``reporting/summary_workbook``
asset and by ``crm report``. It reads the snapshot and the reporting views
through one DuckDB connection (read-only is enough), aggregates in SQL, and
writes an openpyxl write-only workbook: the customer list is streamed from
DuckDB in batches (``fetchmany``) straight into the sheet, so a month of a
million customers never sits in memory. The file is written next to its
target and moved into place with ``os.replace``: a reader sees the previous
workbook or the new one, never half a file.

Excel holds at most ``EXCEL_MAX_ROWS`` rows per sheet (header included). A
longer customer list continues on numbered sheets ``Customers (2)``, ...;
each sheet has its own header, table and frozen first row, and the
Definitions sheet states how the list was split. No row is ever dropped.
"""

import math
import multiprocessing
import os
import uuid
import warnings
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date
from concurrent.futures import ProcessPoolExecutor
from itertools import islice
from pathlib import Path

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.chart import BarChart, LineChart, Reference, Series
from openpyxl.chart.data_source import StrRef
from openpyxl.chart.series import SeriesLabel
from openpyxl.formatting.rule import ColorScaleRule
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter, quote_sheetname
from openpyxl.worksheet.filters import AutoFilter
from openpyxl.worksheet.table import Table, TableColumn, TableStyleInfo

from dagster import AssetExecutionContext, AssetKey, BackfillPolicy, MaterializeResult, MetadataValue, asset

from crm_assets.errors import CrmError
from crm_assets.partitioned import add_month_metadata, add_months, month_window
from crm_assets.partitions import key_to_date, monthly_partitions
from crm_assets.resources import OutputFolder, Warehouse
from crm_assets.reporting import SNAPSHOT_COLUMNS
from crm_assets.rules import EVENTS, STAGES, TIERS
from crm_assets.views import NO_TIER, VIEW_ASSET_KEYS, VIEWS

# Rows per sheet Excel can hold, header included (Excel's hard limit). Tests
# patch it small to exercise the split of long lists over numbered sheets.
EXCEL_MAX_ROWS = 1_048_576
# Rows fetched from DuckDB per round trip while streaming a list into a sheet.
FETCH_BATCH = 10_000
# A run of several months builds its workbooks in up to this many processes
# (at most one per CPU) once its months hold PARALLEL_MIN_ROWS snapshot rows.
MAX_WORKBOOK_PROCESSES = 8
PARALLEL_MIN_ROWS = 50_000
REPORTS_FOLDER = "reports"
CUSTOMERS_SHEET = "Customers"

TITLE_FONT = Font(bold=True, size=14)
BOLD = Font(bold=True)
HEADER_FONT = Font(bold=True, color="FFFFFF")
HEADER_FILL = PatternFill("solid", fgColor="305496")
NOTE_FONT = Font(italic=True, color="595959")
WRAP = Alignment(wrap_text=True, vertical="top")

COUNT = "#,##0"
UNITS = "#,##0"
DECIMAL = "#,##0.00"
SHARE = "0.0%"
CHANGE = "+#,##0;-#,##0;0"
CHANGE_DECIMAL = "+#,##0.00;-#,##0.00;0.00"
CHANGE_POINTS = '+0.0" pt";-0.0" pt";0.0" pt"'
CHANGE_SHARE = "+0.0%;-0.0%;0.0%"
MONTH = "mmm yyyy"
DATE = "yyyy-mm-dd"
TEXT = "@"
INTEGER = "0"

# Colour scales: the migration matrix white (low) to green (high); cohort
# shares red (0 %) - yellow (50 %) - green (100 %).
COLOR_SCALE = dict(start_type="min", start_color="FFFFFF", end_type="max", end_color="63BE7B")
COHORT_SCALE = dict(start_type="num", start_value=0, start_color="F8696B", mid_type="num", mid_value=0.5,
                    mid_color="FFEB84", end_type="num", end_value=1, end_color="63BE7B")
# Cohorts shown: the first-purchase months of the last COHORT_MONTHS months, and as many months since.
COHORT_MONTHS = 36

# Number format, width and definition of every column of the customer list
# (the snapshot's columns; exports add the contact columns).
LIST_COLUMNS: dict[str, tuple[str | None, float, str]] = {
    "report_month": ("yyyy-mm", 10, "Report month (first day of the month)."),
    "customer_id": (TEXT, 14, "Customer id as text, exactly as in the customer master (leading zeros kept)."),
    "customer_group": (TEXT, 16, "Customer group from the customer master."),
    "city": (TEXT, 16, "City from the customer master."),
    "m_total": (DECIMAL, 12, "Units of qualifying consumable lines over the whole history up to the end of the month."),
    "m1": (DECIMAL, 11, "Units bought in the report month."),
    "m6": (DECIMAL, 11, "Units bought in the 6 months ending with the report month."),
    "m12": (DECIMAL, 11, "Units bought in the 12 months ending with the report month."),
    "m13": (DECIMAL, 11, "Units bought in the 13 months ending with the report month."),
    "m24": (DECIMAL, 11, "Units bought in the 24 months ending with the report month."),
    "m25": (DECIMAL, 11, "Units bought in the 25 months ending with the report month."),
    "o6": (COUNT, 8, "Orders (distinct invoices with a qualifying line) in 6 months."),
    "o12": (COUNT, 8, "Orders in 12 months."),
    "first_device_purchase_date": (DATE, 12, "First device purchase (quantity > 0) up to the end of the month."),
    "first_consumable_purchase_date": (DATE, 12, "First qualifying consumable purchase."),
    "last_consumable_purchase_date": (DATE, 12, "Last qualifying consumable purchase up to the end of the month."),
    "months_since_last_purchase": (INTEGER, 10, "Whole calendar months from the last purchase to the report month (0 = bought in the month)."),
    "tenure_months": (INTEGER, 10, "Calendar months from the first purchase to the report month, both ends counted."),
    "avg_monthly_consumption": (DECIMAL, 12, "AMC = m6 / 6."),
    "avg_order_size": (DECIMAL, 12, "AOS = m6 / o6 (blank when o6 = 0)."),
    "activity_status": (TEXT, 12, "Active when m12 > 0, else Not Active."),
    "value_tier": (TEXT, 11, "RFMT value tier of Active customers: Diamond, Platinum, Gold, Silver, Bronze, Passive (blank when Not Active)."),
    "prev_value_tier": (TEXT, 11, "The value tier the same rules give for the previous month."),
    "lifecycle_stage": (TEXT, 11, "Prospect, New, Active, At Risk or Lost at the end of the month."),
    "lifecycle_event": (TEXT, 11, "What changed in the month: New, Lost, Reactivated (blank when nothing did)."),
    "r_score": (INTEGER, 8, "Recency score 1..5 from months since the last purchase (Active only)."),
    "f_score": (INTEGER, 8, "Frequency score 1..5 from o12 (Active only)."),
    "m_score": (INTEGER, 8, "Monetary (volume) score 1..5 from the rank of m12 among the month's Active customers."),
    "t_score": (INTEGER, 8, "Tenure score 1..5 from tenure_months (Active only)."),
    "opt_email": (None, 9, "Consent to e-mail (TRUE/FALSE; blank or unknown in the master = FALSE)."),
    "opt_sms": (None, 9, "Consent to SMS."),
    "opt_phone": (None, 9, "Consent to phone calls."),
    "email": (TEXT, 26, "E-mail address, only when the customer consented to e-mail; blank otherwise."),
    "mobile_number": (TEXT, 16, "Mobile number, only when the customer consented to SMS or phone; blank otherwise."),
}

# Formats of the list written as cell styles (see write_customer_list).
STYLED_LIST_FORMATS = {DECIMAL, DATE, "yyyy-mm"}

SNAPSHOT = "reporting.customer_snapshot"
MANIFEST = "reporting.snapshot_manifest"


@dataclass
class ListResult:
    """Where a customer list went: its sheets and their data rows."""

    rows: int = 0
    sheets: list[tuple[str, int]] = field(default_factory=list)


@dataclass
class WorkbookSummary:
    path: Path
    month: date
    customers: int
    customer_sheets: list[tuple[str, int]]
    sheets: list[str]
    bytes: int


def workbook_path(output_dir: str | Path, month: date) -> Path:
    """``<output>/reports/crm_summary_YYYY-MM.xlsx``."""
    return Path(output_dir) / REPORTS_FOLDER / f"crm_summary_{month:%Y-%m}.xlsx"


# --------------------------------------------------------------------------- sheet helpers


class Sheet:
    """A write-only sheet and the number of its last written row (write-only sheets only append)."""

    def __init__(self, wb: Workbook, title: str, widths: Sequence[float] = (), freeze: str | None = None):
        self.ws = wb.create_sheet(title)
        self.row = 0
        for index, width in enumerate(widths, 1):
            self.ws.column_dimensions[get_column_letter(index)].width = width
        if freeze:
            # a write-only sheet writes its views with its first row: freeze before appending
            self.ws.freeze_panes = freeze

    def cell(self, value, fmt: str | None = None, font: Font | None = None, fill=None, alignment=None):
        c = WriteOnlyCell(self.ws, value=value)
        if fmt and value is not None:
            c.number_format = fmt
        if font is not None:
            c.font = font
        if fill is not None:
            c.fill = fill
        if alignment is not None:
            c.alignment = alignment
        return c

    def append(self, values: Iterable = (), formats: Sequence[str | None] = (), font: Font | None = None) -> int:
        values = list(values)
        formats = list(formats) + [None] * (len(values) - len(formats))
        self.ws.append([self.cell(v, f, font) if (f or font) else v for v, f in zip(values, formats)])
        self.row += 1
        return self.row

    def title(self, text: str, subtitle: str | None = None) -> None:
        self.ws.append([self.cell(text, font=TITLE_FONT)])
        self.row += 1
        if subtitle:
            self.note(subtitle)
        self.append()

    def note(self, text: str) -> None:
        self.ws.append([self.cell(text, font=NOTE_FONT)])
        self.row += 1

    def header(self, names: Sequence[str]) -> int:
        self.ws.append([self.cell(n, font=HEADER_FONT, fill=HEADER_FILL, alignment=WRAP) for n in names])
        self.row += 1
        return self.row

    def section(self, text: str) -> None:
        self.ws.append([self.cell(text, font=BOLD)])
        self.row += 1


def _line_chart(ws, title: str, y_title: str, cat_col: int, columns: Sequence[int], header_row: int,
                first_row: int, last_row: int) -> LineChart:
    """A line chart of ``columns`` over rows ``first_row..last_row``, series named by the header row."""
    chart = LineChart()
    chart.title = title
    chart.y_axis.title = y_title
    chart.height, chart.width = 7.5, 16
    for col in columns:
        series = Series(Reference(ws, min_col=col, min_row=first_row, max_row=last_row))
        series.tx = SeriesLabel(strRef=StrRef(f"{quote_sheetname(ws.title)}!${get_column_letter(col)}${header_row}"))
        series.smooth = False
        chart.series.append(series)
    chart.set_categories(Reference(ws, min_col=cat_col, min_row=first_row, max_row=last_row))
    chart.x_axis.number_format = "mmm yy"
    chart.x_axis.delete = False
    chart.y_axis.delete = False
    return chart


def _change(now, before, points: bool = False):
    """Absolute change and relative change (None when not computable)."""
    if now is None or before is None:
        return None, None
    if points:
        return (now - before) * 100, None
    return now - before, ((now - before) / before if before else None)


# --------------------------------------------------------------------------- customer list


def write_customer_list(
    wb: Workbook,
    rows: Iterator[tuple],
    total: int,
    columns: Sequence[str],
    title: str = CUSTOMERS_SHEET,
    text_widths: dict[str, int] | None = None,
) -> ListResult:
    """Stream ``total`` rows into ``title``, ``title (2)``, ... of at most ``EXCEL_MAX_ROWS`` rows each.

    Each sheet: a header row, the rows with the formats of ``LIST_COLUMNS``
    (ids as text), an Excel table (with its autofilter) over exactly its
    rows, the header row frozen, column widths set. Raises when ``rows``
    does not hold exactly ``total`` rows.
    """
    per_sheet = EXCEL_MAX_ROWS - 1
    if per_sheet < 1:
        raise ValueError("EXCEL_MAX_ROWS must leave room for a header and a row")
    sheets = max(1, math.ceil(total / per_sheet))
    result = ListResult(total)
    last_col = get_column_letter(len(columns))
    specs = [LIST_COLUMNS.get(c, (None, 12, "")) for c in columns]
    for index in range(sheets):
        sheet_title = title if index == 0 else f"{title} ({index + 1})"
        ws = wb.create_sheet(sheet_title)
        for col, (name, (fmt, width, _)) in enumerate(zip(columns, specs), 1):
            if text_widths and name in text_widths:
                width = max(width, min(50, text_widths[name] + 2))
            ws.column_dimensions[get_column_letter(col)].width = max(width, len(name) * 0.9 + 3)
        ws.freeze_panes = "A2"
        ws.append([WriteOnlyCell(ws, value=name) for name in columns])
        # One styled cell per formatted column, reused for every row (openpyxl
        # writes a row as soon as it is appended). Text and whole numbers need
        # no style (a str is a text cell: ids keep their leading zeros), and
        # every styled cell costs, so only decimals and dates get one.
        templates = []
        for fmt, _, _ in specs:
            if fmt in STYLED_LIST_FORMATS:
                cell = WriteOnlyCell(ws)
                cell.number_format = fmt
                templates.append(cell)
            else:
                templates.append(None)
        styled = [i for i, t in enumerate(templates) if t is not None]
        wanted = min(per_sheet, total - index * per_sheet)
        written = 0
        for row in islice(rows, wanted):
            out = list(row)
            for i in styled:
                value = out[i]
                if value is not None:
                    template = templates[i]
                    template.value = value
                    out[i] = template
            ws.append(out)
            written += 1
        if written != wanted:
            raise RuntimeError(f"customer list: expected {total} rows, the query returned fewer")
        table = Table(
            displayName=title.replace(" ", "_") + ("" if index == 0 else f"_{index + 1}"),
            ref=f"A1:{last_col}{max(written, 1) + 1}",
            tableStyleInfo=TableStyleInfo(name="TableStyleMedium2", showRowStripes=True),
        )
        table.tableColumns = [TableColumn(id=i, name=name) for i, name in enumerate(columns, 1)]
        table.autoFilter = AutoFilter(ref=table.ref)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "add table columns manually": they are
            ws.add_table(table)
        result.sheets.append((sheet_title, written))
    if next(rows, None) is not None:
        raise RuntimeError(f"customer list: expected {total} rows, the query returned more")
    return result


def stream_rows(cursor, batch: int | None = None) -> Iterator[tuple]:
    """Rows of an executed DuckDB query, fetched ``batch`` at a time, until the result is exhausted."""
    size = batch or FETCH_BATCH
    while True:
        chunk = cursor.fetchmany(size)
        if not chunk:
            return
        yield from chunk


def text_widths(con, source_sql: str, params: list, columns: Sequence[str]) -> dict[str, int]:
    """Longest value of each text column of the list (for column widths), computed in SQL."""
    text = [c for c in columns if LIST_COLUMNS.get(c, (None,))[0] == TEXT]
    if not text:
        return {}
    expr = ", ".join(f"coalesce(max(length({c})), 0)" for c in text)
    values = con.execute(f"SELECT {expr} FROM ({source_sql})", params).fetchall()[0]
    return dict(zip(text, (int(v) for v in values)))


# --------------------------------------------------------------------------- the summary sheets


KPIS: list[tuple[str, str, str, str]] = [
    # (column of KPI_SQL, label, number format, definition)
    ("evaluated", "Evaluated customers", COUNT, "Customers in the month's snapshot: every customer of the master entered by the month, anonymous groups excluded."),
    ("active", "Active customers", COUNT, "Customers with units in the last 12 months (m12 > 0)."),
    ("active_share", "Active share", SHARE, "Active customers / evaluated customers."),
    ("new", "New customers (event)", COUNT, "Customers whose first-ever consumable purchase was in the month."),
    ("lost", "Lost customers (event)", COUNT, "Customers whose last purchase left the 12-month window in the month (first month Not Active)."),
    ("reactivated", "Reactivated customers (event)", COUNT, "Customers buying in the month after 12+ silent months, with older history."),
    ("at_risk", "At Risk customers (stage)", COUNT, "Active customers past their first year who bought nothing in the last 6 months."),
    ("prospects", "Prospects (stage)", COUNT, "Evaluated customers who never bought a consumable."),
    ("top_tiers", "Diamond + Platinum customers", COUNT, "Active customers in the two top value tiers."),
    ("units_month", "Units bought in the month", UNITS, "Sum of m1: units of qualifying consumable lines dated in the month."),
    ("units_12m", "Units bought in 12 months", UNITS, "Sum of m12 over evaluated customers."),
    ("orders_6m", "Orders in 6 months", COUNT, "Sum of o6: distinct invoices with a qualifying line in the last 6 months."),
    ("amc_active", "Average monthly consumption (Active)", DECIMAL, "Average of avg_monthly_consumption (m6 / 6) over Active customers."),
    ("aos", "Average order size (6 months)", DECIMAL, "Sum of m6 / sum of o6: units per order over the last 6 months."),
    ("opt_email", "Consent to e-mail", COUNT, "Evaluated customers with opt_email true."),
    ("opt_sms", "Consent to SMS", COUNT, "Evaluated customers with opt_sms true."),
    ("opt_phone", "Consent to phone", COUNT, "Evaluated customers with opt_phone true."),
    ("device_owners", "Device owners", COUNT, "Evaluated customers with a first_device_purchase_date."),
    ("attach_rate", "Device attach rate", SHARE, "Device owners who bought at least one consumable / device owners."),
]
SHARE_KPIS = {"active_share", "attach_rate"}

KPI_SQL = f"""
SELECT report_month,
    count(*) AS evaluated,
    count(*) FILTER (activity_status = 'Active') AS active,
    count(*) FILTER (activity_status = 'Active') / count(*) AS active_share,
    count(*) FILTER (lifecycle_event = 'New') AS new,
    count(*) FILTER (lifecycle_event = 'Lost') AS lost,
    count(*) FILTER (lifecycle_event = 'Reactivated') AS reactivated,
    count(*) FILTER (lifecycle_stage = 'At Risk') AS at_risk,
    count(*) FILTER (lifecycle_stage = 'Prospect') AS prospects,
    count(*) FILTER (value_tier IN ('Diamond', 'Platinum')) AS top_tiers,
    sum(m1) AS units_month, sum(m12) AS units_12m, sum(o6) AS orders_6m,
    avg(avg_monthly_consumption) FILTER (activity_status = 'Active') AS amc_active,
    sum(m6) / nullif(sum(o6), 0) AS aos,
    count(*) FILTER (opt_email) AS opt_email, count(*) FILTER (opt_sms) AS opt_sms,
    count(*) FILTER (opt_phone) AS opt_phone,
    count(*) FILTER (first_device_purchase_date IS NOT NULL) AS device_owners,
    count(*) FILTER (first_device_purchase_date IS NOT NULL AND m_total > 0)
        / nullif(count(*) FILTER (first_device_purchase_date IS NOT NULL), 0) AS attach_rate
FROM {SNAPSHOT}
WHERE report_month IN (?, ?, ?)
GROUP BY report_month
"""


def _kpi_sheet(wb: Workbook, con, month: date) -> None:
    prev, year_ago = add_months(month, -1), add_months(month, -12)
    cur = con.execute(KPI_SQL, [month, prev, year_ago])
    names = [d[0] for d in cur.description]
    by_month = {r[0]: dict(zip(names, r)) for r in cur.fetchall()}
    held = set(held_months(con))
    for m in (month, prev, year_ago):
        if m in held and m not in by_month:  # computed, without any customer: counts are 0, ratios undefined
            by_month[m] = {key: (0 if fmt in (COUNT, UNITS) else None) for key, _, fmt, _ in KPIS}
    s = Sheet(wb, "KPIs", [38, 14, 16, 12, 10, 16, 12, 10], freeze="B5")
    s.title(f"CRM summary {month:%B %Y}", "Key figures of the month against the previous month (M-1) and the same month a year earlier (M-12).")
    s.header(["KPI", f"{month:%b %Y}", f"{prev:%b %Y} (M-1)", "Change", "Change %", f"{year_ago:%b %Y} (M-12)", "Change", "Change %"])
    now, before, last_year = by_month.get(month, {}), by_month.get(prev), by_month.get(year_ago)
    for key, label, fmt, _ in KPIS:
        share = key in SHARE_KPIS
        value = now.get(key)
        p = before.get(key) if before else None
        y = last_year.get(key) if last_year else None
        dp, dpp = _change(value, p, share)
        dy, dyp = _change(value, y, share)
        change_fmt = CHANGE_POINTS if share else (CHANGE_DECIMAL if fmt == DECIMAL else CHANGE)
        s.append([label, value, p, dp, dpp, y, dy, dyp], [None, fmt, fmt, change_fmt, CHANGE_SHARE, fmt, change_fmt, CHANGE_SHARE])
    s.append()
    for other, label in ((before, "M-1"), (last_year, "M-12")):
        if other is None:
            s.note(f"{label} is not in the warehouse: its columns are blank.")
    s.note("Changes of shares are in percentage points (pt); Change % is relative to the earlier month.")


TIER_MIX_SQL = f"""
SELECT coalesce(value_tier, 'Not Active') AS tier,
    sum(customers) FILTER (report_month = ?) AS customers,
    sum(customers) FILTER (report_month = ?) AS customers_prev,
    sum(units_12m) FILTER (report_month = ?) AS units_12m
FROM reporting.segment_summary
WHERE report_month IN (?, ?)
GROUP BY 1
"""


def _tier_mix_sheet(wb: Workbook, con, month: date) -> None:
    prev = add_months(month, -1)
    rows = {r[0]: r[1:] for r in con.execute(TIER_MIX_SQL, [month, prev, month, month, prev]).fetchall()}
    evaluated = sum((r[0] or 0) for r in rows.values())
    active = sum((r[0] or 0) for t, r in rows.items() if t != "Not Active")
    s = Sheet(wb, "Tier mix", [22, 12, 12, 14, 12, 10, 14, 14])
    s.title(f"Value tier mix, {month:%B %Y}", "Active customers by RFMT value tier; Not Active customers have no tier.")
    header = s.header(["Value tier", "Customers", "Share of active", "Share of evaluated", f"{prev:%b %Y}", "Change", "Units 12 m", "Units 12 m per customer"])
    fmts = [None, COUNT, SHARE, SHARE, COUNT, CHANGE, UNITS, DECIMAL]
    first = None
    for tier in (*TIERS, "Not Active"):
        customers, customers_prev, units = rows.get(tier, (None, None, None))
        customers = customers or 0
        units = units or 0.0
        r = s.append(
            [tier, customers, (customers / active if active else None) if tier != "Not Active" else None,
             customers / evaluated if evaluated else None, customers_prev or 0,
             customers - (customers_prev or 0), units, units / customers if customers else None],
            fmts,
        )
        first = first or r
    s.append(["Total", evaluated, 1.0 if active else None, 1.0 if evaluated else None,
              sum((r[1] or 0) for r in rows.values()), evaluated - sum((r[1] or 0) for r in rows.values()),
              sum((r[2] or 0) for r in rows.values()), None], fmts, font=BOLD)
    chart = BarChart()
    chart.type = "col"
    chart.title = f"Active customers by value tier, {month:%b %Y}"
    chart.y_axis.title = "customers"
    chart.height, chart.width = 8, 16
    chart.add_data(Reference(s.ws, min_col=2, min_row=header, max_row=first + len(TIERS) - 1), titles_from_data=True)
    chart.set_categories(Reference(s.ws, min_col=1, min_row=first, max_row=first + len(TIERS) - 1))
    chart.legend = None
    chart.x_axis.delete = False
    chart.y_axis.delete = False
    s.ws.add_chart(chart, "J3")


def _tier_filters() -> str:
    return ", ".join(
        f"coalesce(sum(customers) FILTER (value_tier = '{t}'), 0) AS \"{t}\"" for t in TIERS
    )


TRENDS_SQL = f"""
SELECT report_month, sum(customers) AS evaluated,
    coalesce(sum(customers) FILTER (activity_status = 'Active'), 0) AS active,
    coalesce(sum(customers) FILTER (lifecycle_event = 'New'), 0) AS new,
    coalesce(sum(customers) FILTER (lifecycle_event = 'Lost'), 0) AS lost,
    coalesce(sum(customers) FILTER (lifecycle_event = 'Reactivated'), 0) AS reactivated,
    sum(units_month) AS units_month, sum(units_12m) AS units_12m,
    {_tier_filters()}
FROM reporting.segment_summary
WHERE report_month BETWEEN ? AND ?
GROUP BY report_month
ORDER BY report_month
"""


def _trends_sheet(wb: Workbook, con, month: date) -> list[tuple]:
    rows = con.execute(TRENDS_SQL, [add_months(month, -23), month]).fetchall()
    s = Sheet(wb, "Trends", [11, 11, 10, 9, 9, 11, 13, 13] + [10] * len(TIERS), freeze="B5")
    s.title(f"Trends over the 24 months to {month:%B %Y}", f"{len(rows)} month(s) of the warehouse in that range; the charts show the last 12 and 24 months.")
    names = ["Month", "Evaluated", "Active", "New", "Lost", "Reactivated", "Units in month", "Units 12 m", *TIERS]
    header = s.header(names)
    fmts = [MONTH, COUNT, COUNT, COUNT, COUNT, COUNT, UNITS, UNITS] + [COUNT] * len(TIERS)
    first = s.row + 1
    for r in rows:
        s.append(r, fmts)
    last = s.row
    if rows:
        first12 = max(first, last - 11)
        tiers = range(9, 9 + len(TIERS))
        charts = [
            ("Active and evaluated customers, last 12 months", (2, 3), first12, "J"),
            ("Customers by value tier, last 12 months", tiers, first12, "J"),
            ("Active and evaluated customers, last 24 months", (2, 3), first, "T"),
            ("Customers by value tier, last 24 months", tiers, first, "T"),
        ]
        col0 = len(names) + 2
        for i, (title, columns, start, _) in enumerate(charts):
            chart = _line_chart(s.ws, title, "customers", 1, columns, header, start, last)
            s.ws.add_chart(chart, f"{get_column_letter(col0 + (i // 2) * 10)}{3 + (i % 2) * 16}")
    return rows


LIFECYCLE_SQL = """
SELECT report_month, lifecycle_stage, lifecycle_event, sum(customers), sum(units_month)
FROM reporting.segment_summary
WHERE report_month IN (?, ?, ?)
GROUP BY ALL
"""


def _lifecycle_sheet(wb: Workbook, con, month: date, trends: list[tuple]) -> None:
    prev, year_ago = add_months(month, -1), add_months(month, -12)
    data = con.execute(LIFECYCLE_SQL, [month, prev, year_ago]).fetchall()

    def total(m, stage=None, event=None, column=3):
        return sum((r[column] or 0) for r in data if r[0] == m and (stage is None or r[1] == stage) and (event is None or r[2] == event))

    evaluated = total(month)
    s = Sheet(wb, "Lifecycle", [16, 12, 14, 14, 12, 14])
    s.title(f"Lifecycle, {month:%B %Y}", "Events: what changed during the month. Stages: where customers stand at its end.")
    s.section("Lifecycle events of the month")
    s.header(["Event", "Customers", f"{prev:%b %Y}", f"{year_ago:%b %Y}", "Units in month", "Share of evaluated"])
    for event in EVENTS:
        n = total(month, event=event)
        s.append([event, n, total(prev, event=event), total(year_ago, event=event), total(month, event=event, column=4),
                  n / evaluated if evaluated else None], [None, COUNT, COUNT, COUNT, UNITS, SHARE])
    s.append()
    s.section("Lifecycle stages at the end of the month")
    s.header(["Stage", "Customers", "Share", f"{prev:%b %Y}", "Change"])
    for stage in STAGES:
        n, p = total(month, stage=stage), total(prev, stage=stage)
        s.append([stage, n, n / evaluated if evaluated else None, p, n - p], [None, COUNT, SHARE, COUNT, CHANGE])
    s.append(["Total", evaluated, 1.0 if evaluated else None, total(prev), evaluated - total(prev)],
             [None, COUNT, SHARE, COUNT, CHANGE], font=BOLD)
    s.append()
    s.section("Lifecycle events, last 12 months")
    header = s.header(["Month", *EVENTS])
    first = s.row + 1
    for r in trends[-12:]:
        s.append([r[0], r[3], r[4], r[5]], [MONTH, COUNT, COUNT, COUNT])
    if trends:
        chart = _line_chart(s.ws, "Lifecycle events, last 12 months", "customers", 1, range(2, 2 + len(EVENTS)), header, first, s.row)
        s.ws.add_chart(chart, "H3")


SEGMENTS_SQL = """
SELECT {column} AS segment, sum(customers) AS customers,
    coalesce(sum(customers) FILTER (activity_status = 'Active'), 0) AS active,
    coalesce(sum(customers) FILTER (activity_status = 'Active'), 0) / sum(customers) AS active_share,
    coalesce(sum(customers) FILTER (lifecycle_event = 'New'), 0) AS new,
    coalesce(sum(customers) FILTER (lifecycle_event = 'Lost'), 0) AS lost,
    sum(units_month) AS units_month, sum(units_12m) AS units_12m,
    {tiers}
FROM reporting.segment_summary
WHERE report_month = ?
GROUP BY 1
ORDER BY customers DESC, segment
"""


def _segments_sheet(wb: Workbook, con, month: date) -> None:
    s = Sheet(wb, "Segments", [20, 11, 10, 10, 9, 9, 13, 13] + [10] * len(TIERS))
    s.title(f"Customer groups and cities, {month:%B %Y}", "Evaluated customers, activity, events, units and value tiers per customer group and per city.")
    names = ["Active", "Active share", "New", "Lost", "Units in month", "Units 12 m", *TIERS]
    fmts = [None, COUNT, COUNT, SHARE, COUNT, COUNT, UNITS, UNITS] + [COUNT] * len(TIERS)
    for column, label in (("customer_group", "Customer group"), ("city", "City")):
        s.section(f"By {label.lower()}")
        s.header([label, "Customers", *names])
        for r in con.execute(SEGMENTS_SQL.format(column=column, tiers=_tier_filters()), [month]).fetchall():
            s.append([r[0] if r[0] is not None else "(blank)", *r[1:]], fmts)
        s.append()


def _migration_sheet(wb: Workbook, con, month: date) -> None:
    cells = {(f, t): n for f, t, n in con.execute(
        "SELECT from_tier, to_tier, customers FROM reporting.tier_migration WHERE report_month = ?", [month]).fetchall()}
    order = (*TIERS, NO_TIER)
    prev = add_months(month, -1)
    s = Sheet(wb, "Migration", [14] + [11] * (len(order) + 1))
    s.title(f"Value tier migration {prev:%b %Y} -> {month:%b %Y}",
            f"Rows: tier in {prev:%b %Y} (M-1); columns: tier in {month:%b %Y} (M). {NO_TIER} = Not Active, or not yet entered in M-1.")
    header = s.header([f"M-1 \\ M", *order, "Total M-1"])
    first = header + 1
    for f in order:
        values = [cells.get((f, t), 0) for t in order]
        s.append([f, *values, sum(values)], [None] + [COUNT] * (len(order) + 1))
    totals = [sum(cells.get((f, t), 0) for f in order) for t in order]
    s.append(["Total M", *totals, sum(totals)], [None] + [COUNT] * (len(order) + 1), font=BOLD)
    body = f"B{first}:{get_column_letter(1 + len(order))}{first + len(order) - 1}"
    s.ws.conditional_formatting.add(body, ColorScaleRule(**COLOR_SCALE))
    s.append()
    stayed = sum(cells.get((t, t), 0) for t in TIERS)
    had_tier = sum(cells.get((f, t), 0) for f in TIERS for t in order)
    s.note(f"Customers with a tier in M-1 who kept the same tier in M: {stayed:,} of {had_tier:,}.")


def _cohort_sheet(wb: Workbook, con, month: date) -> None:
    first_cohort = add_months(month, -(COHORT_MONTHS - 1))
    data = con.execute(
        """
        SELECT cohort_month, months_since, cohort_size, share_active FROM reporting.cohort_retention
        WHERE report_month BETWEEN ? AND ? AND cohort_month >= ?
        """,
        [first_cohort, month, first_cohort],
    ).fetchall()
    sizes: dict[date, int] = {}
    shares: dict[tuple[date, int], float] = {}
    for cohort, since, size, share in data:
        shares[(cohort, since)] = share
        sizes[cohort] = size
    cohorts = sorted(sizes)
    s = Sheet(wb, "Cohorts", [11, 9] + [6] * COHORT_MONTHS, freeze="C5")
    s.title(
        f"Cohort retention, the {COHORT_MONTHS} cohorts to {month:%B %Y}",
        "Cohort = month of the first consumable purchase; columns = months since; cells = share of the cohort "
        "Active in that month (months 0-11 are 100% by definition: Active = units in the last 12 months).",
    )
    header = s.header(["Cohort", "Size", *[str(k) for k in range(COHORT_MONTHS)]])
    for cohort in cohorts:
        s.append([cohort, sizes[cohort], *[shares.get((cohort, k)) for k in range(COHORT_MONTHS)]],
                 [MONTH, COUNT] + ["0%"] * COHORT_MONTHS)
    if cohorts:
        last_col = get_column_letter(2 + COHORT_MONTHS)
        s.ws.conditional_formatting.add(f"C{header + 1}:{last_col}{s.row}", ColorScaleRule(**COHORT_SCALE))
    else:
        s.note(f"No customer made a first consumable purchase in the {COHORT_MONTHS} months to the report month.")


def _reach_sheet(wb: Workbook, con, month: date) -> None:
    s = Sheet(wb, "Reach", [24, 12, 12, 12, 12, 14])
    s.title(f"Reach and device attach, {month:%B %Y}", "Consent as of the month; contact data as in the current customer master.")
    s.section("Contactable customers per channel")
    s.header(["Channel", "Customers", "Consented", "Consent share", "Contactable", "Contactable & Active"])
    for channel, customers, consented, contactable, active in con.execute(
        "SELECT channel, customers, consented, contactable, contactable_active FROM reporting.contactable_customers "
        "WHERE report_month = ? ORDER BY channel_order", [month]).fetchall():
        s.append([channel, customers, consented, consented / customers if customers else None, contactable, active],
                 [None, COUNT, COUNT, SHARE, COUNT, COUNT])
    s.append()
    s.section("Device owners who never bought a consumable")
    s.header(["Customer group", "Device owners", "With consumable", "Never bought", "Attach rate"])
    rows = con.execute(
        "SELECT customer_group, device_owners, owners_with_consumable, owners_without_consumable, attach_rate "
        "FROM reporting.device_attach WHERE report_month = ? ORDER BY device_owners DESC, customer_group", [month]).fetchall()
    fmts = [None, COUNT, COUNT, COUNT, SHARE]
    for r in rows:
        s.append([r[0] if r[0] is not None else "(blank)", *r[1:]], fmts)
    owners = sum(r[1] for r in rows)
    attached = sum(r[2] for r in rows)
    s.append(["Total", owners, attached, owners - attached, attached / owners if owners else None], fmts, font=BOLD)


def _definitions_sheet(wb: Workbook, month: date, customers: ListResult, columns: Sequence[str]) -> None:
    s = Sheet(wb, "Definitions", [16, 34, 100], freeze="A5")
    s.title("Definitions", "Every figure of this workbook. Rules: docs/business_rules.md; outputs: docs/outputs.md.")
    s.header(["Sheet", "Figure", "Definition"])
    rows: list[tuple[str, str, str]] = [("KPIs", label, text) for _, label, _, text in KPIS]
    rows += [
        ("KPIs", "Change / Change %", "This month minus M-1 (or M-12); Change % = change / the earlier value. Shares change in percentage points."),
        ("Tier mix", "Customers", "Evaluated customers of the month per value tier; Not Active customers have no tier."),
        ("Tier mix", "Share of active / evaluated", "Customers of the tier / Active customers (or / all evaluated customers)."),
        ("Tier mix", "Units 12 m", "Sum of m12 of the tier's customers; per customer = that sum / customers."),
        ("Trends", "Each row", "One report month (up to 24 months back, as far as the warehouse holds them): evaluated, Active, events, units of the month (m1) and of 12 months (m12), customers per tier."),
        ("Lifecycle", "Events", "New, Lost and Reactivated in the month (business rules 5.3), with the units bought in the month by those customers."),
        ("Lifecycle", "Stages", "Prospect, New, Active, At Risk, Lost at the end of the month (business rules 5.4)."),
        ("Segments", "By customer group / city", "The same figures per customer group and per city of the customer master."),
        ("Migration", "Cell", f"Customers with the row's tier in M-1 (prev_value_tier) and the column's tier in M (value_tier). {NO_TIER}: Not Active, or not yet entered in M-1. The cells add up to the evaluated customers."),
        ("Cohorts", "Cell", f"Share of the cohort (customers whose first consumable purchase was in that month) that is Active in the month cohort + column, for the last {COHORT_MONTHS} cohorts; Size = customers of the cohort. Months 0-11 are 100% by definition (Active = units in the last 12 months)."),
        ("Reach", "Consented / Contactable", "Consent flag true as of the month / and a non-blank e-mail (e-mail) or mobile number (SMS, phone) in the customer master; 'any' = at least one channel."),
        ("Reach", "Attach rate", "Device owners (first_device_purchase_date set) who bought at least one consumable / device owners."),
    ]
    split = ", ".join(f"'{title}' ({n:,} rows)" for title, n in customers.sheets)
    rows.append((
        CUSTOMERS_SHEET, "The list",
        f"Every evaluated customer of {month:%B %Y}: {customers.rows:,} rows, one per snapshot row, on {split}. "
        f"A sheet holds at most {EXCEL_MAX_ROWS - 1:,} customers (Excel's limit of {EXCEL_MAX_ROWS:,} rows with the header); "
        "a longer list continues on numbered sheets, nothing is dropped.",
    ))
    rows += [(CUSTOMERS_SHEET, name, LIST_COLUMNS[name][2]) for name in columns]
    for row in rows:
        s.ws.append([row[0], row[1], s.cell(row[2], alignment=Alignment(wrap_text=True, vertical="top"))])
        s.row += 1


# --------------------------------------------------------------------------- the builder


def _tables(con) -> set[str]:
    return {f"{s}.{t}" for s, t in con.execute("SELECT table_schema, table_name FROM information_schema.tables").fetchall()}


def held_months(con) -> list[date]:
    """The report months computed in the warehouse: those of the manifest (a month may have no customer) and the snapshot."""
    sql = f"SELECT DISTINCT report_month FROM {SNAPSHOT}"
    if MANIFEST in _tables(con):
        sql += f" UNION SELECT DISTINCT report_month FROM {MANIFEST}"
    return [m for (m,) in con.execute(f"SELECT * FROM ({sql}) ORDER BY 1").fetchall()]


def require_month(con, month: date) -> int:
    """The month's snapshot rows (0 for a computed month without customers); CrmError for a month not computed."""
    if SNAPSHOT not in _tables(con):
        raise CrmError(f"{SNAPSHOT} not found in the warehouse; run `crm run` first")
    rows = con.execute(f"SELECT count(*) FROM {SNAPSHOT} WHERE report_month = ?", [month]).fetchall()[0][0]
    if rows == 0:
        months = held_months(con)
        if month not in months:
            held = f"{months[0]:%Y-%m}..{months[-1]:%Y-%m}" if months else "none"
            raise CrmError(f"month {month:%Y-%m} is not in the warehouse (months held: {held})")
    return rows


def _require_views(con, month: date, customers: int) -> None:
    tables = _tables(con)
    for view in VIEWS.values():
        if view.table not in tables:
            raise CrmError(f"{view.table} not found in the warehouse; run `crm run` to build the reporting views")
    summary = con.execute("SELECT count(*) FROM reporting.segment_summary WHERE report_month = ?", [month]).fetchall()[0][0]
    if customers and not summary:
        raise CrmError(f"the reporting views have no rows for {month:%Y-%m}; run `crm run --from {month:%Y-%m} --to {month:%Y-%m}`")


CUSTOMER_LIST_SQL = f"SELECT {', '.join(SNAPSHOT_COLUMNS)} FROM {SNAPSHOT} WHERE report_month = ? ORDER BY customer_id"


def save_atomically(wb: Workbook, path: Path) -> int:
    """Save next to ``path`` and move into place; returns the file size."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # hidden, next to the target (the move is atomic on one file system), usual permissions
    tmp = path.with_name(f".{path.stem}.{uuid.uuid4().hex[:8]}.tmp.xlsx")
    try:
        wb.save(tmp)
        os.replace(tmp, path)
    except PermissionError:
        Path(tmp).unlink(missing_ok=True)
        raise CrmError(f"{path}: cannot be replaced (is it open in Excel?)") from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path.stat().st_size


def build_workbook(con, month: date, path: str | Path) -> WorkbookSummary:
    """Write the summary workbook of ``month`` (first day) to ``path`` from the warehouse of ``con``."""
    path = Path(path)
    customers = require_month(con, month)
    _require_views(con, month, customers)
    wb = Workbook(write_only=True)
    _kpi_sheet(wb, con, month)
    _tier_mix_sheet(wb, con, month)
    trends = _trends_sheet(wb, con, month)
    _lifecycle_sheet(wb, con, month, trends)
    _segments_sheet(wb, con, month)
    _migration_sheet(wb, con, month)
    _cohort_sheet(wb, con, month)
    _reach_sheet(wb, con, month)
    # the Definitions sheet names the customer sheets: plan the split first, write it before the list
    per_sheet = EXCEL_MAX_ROWS - 1
    planned = ListResult(customers, [
        (CUSTOMERS_SHEET if i == 0 else f"{CUSTOMERS_SHEET} ({i + 1})", min(per_sheet, customers - i * per_sheet))
        for i in range(max(1, math.ceil(customers / per_sheet)))
    ])
    _definitions_sheet(wb, month, planned, SNAPSHOT_COLUMNS)
    widths = text_widths(con, CUSTOMER_LIST_SQL, [month], SNAPSHOT_COLUMNS)
    cursor = con.cursor()  # its own result, read to the end in batches
    try:
        rows = stream_rows(cursor.execute(CUSTOMER_LIST_SQL, [month]))
        written = write_customer_list(wb, rows, customers, SNAPSHOT_COLUMNS, CUSTOMERS_SHEET, widths)
    finally:
        cursor.close()
    size = save_atomically(wb, path)
    return WorkbookSummary(path, month, written.rows, written.sheets, [ws.title for ws in wb.worksheets], size)


def _build_one(warehouse_config: dict, month: date, path: Path) -> WorkbookSummary:
    """One month's workbook in its own connection (also the unit of work of a worker process)."""
    with Warehouse(**warehouse_config).connect(read_only=True) as con:
        return build_workbook(con, month, path)


def build_workbooks(warehouse: Warehouse, output_dir: str | Path, months: Sequence[date]) -> list[WorkbookSummary]:
    """The workbooks of ``months``, in worker processes when there are several months and many rows.

    Writing cells is Python work (openpyxl), so months run in parallel
    processes (spawned, each with its own read-only connection: DuckDB lets
    any number of processes read a file together) when the months hold at
    least ``PARALLEL_MIN_ROWS`` snapshot rows; a small run stays in this process.
    """
    config = warehouse.model_dump()
    jobs = [(config, month, workbook_path(output_dir, month)) for month in months]
    workers = min(len(jobs), os.cpu_count() or 1, MAX_WORKBOOK_PROCESSES)
    if workers > 1:
        with warehouse.connect(read_only=True) as con:
            rows = con.execute(
                f"SELECT count(*) FROM {SNAPSHOT} WHERE report_month BETWEEN ? AND ?", [min(months), max(months)]
            ).fetchall()[0][0]
        if rows < PARALLEL_MIN_ROWS:
            workers = 1
    if workers <= 1:
        return [_build_one(*job) for job in jobs]
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        return list(pool.map(_build_one, *zip(*jobs)))


@asset(
    key_prefix="reporting",
    group_name="outputs",
    compute_kind="excel",
    partitions_def=monthly_partitions,
    backfill_policy=BackfillPolicy.single_run(),
    deps=[AssetKey(["reporting", "customer_snapshot"]), *VIEW_ASSET_KEYS],
)
def summary_workbook(context: AssetExecutionContext, warehouse: Warehouse, output_folder: OutputFolder) -> MaterializeResult:
    """The monthly Excel summary workbook ``reports/crm_summary_YYYY-MM.xlsx`` under the output folder.

    KPIs against M-1 and M-12, tier mix, 12- and 24-month trends, lifecycle,
    groups and cities, the tier migration matrix, cohort retention, reach,
    definitions of every figure, and the list of every evaluated customer of
    the month (split over numbered sheets beyond Excel's row limit). One file
    per month of the run, each replaced atomically; reads the warehouse only.
    """
    window = month_window(context)
    rows: dict[str, int] = {}
    extra: dict[str, dict] = {}
    total_bytes = 0
    summaries = build_workbooks(warehouse, output_folder.path, [key_to_date(key) for key in window.keys])
    for key, summary in zip(window.keys, summaries):
        rows[key] = summary.customers
        extra[key] = {"customer sheets": len(summary.customer_sheets), "bytes": summary.bytes,
                      "path": MetadataValue.path(str(summary.path))}
        total_bytes += summary.bytes
    add_month_metadata(context, window, rows, {}, extra=extra)
    return MaterializeResult(
        metadata={
            "months": window.months,
            "workbooks": len(window.keys),
            "customer rows": sum(rows.values()),
            "bytes": total_bytes,
            "folder": MetadataValue.path(str(Path(output_folder.path) / REPORTS_FOLDER)),
        }
    )


workbook_assets = [summary_workbook]
