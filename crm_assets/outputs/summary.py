"""The figures of the monthly summary, shared by the workbook and the HTML report.

Each figure of the summary is defined here once: its query over the
snapshot or the reporting views, its label, number format and definition,
what a month without customers shows, and which cohorts the cohort view
holds. ``workbook.py`` lays them out in sheets, ``html_report.py`` in a web
page; neither computes a figure of its own.
"""

from datetime import date

from crm_assets.core import sql
from crm_assets.core.columns import EXCEL_COUNT as COUNT
from crm_assets.core.columns import EXCEL_DECIMAL as DECIMAL
from crm_assets.core.errors import CrmError
from crm_assets.core.months import add_months, key_to_date
from crm_assets.core.resources import table_names
from crm_assets.core.rules import EVENTS, TIERS
from crm_assets.layers.reporting import SNAPSHOT_TABLE
from crm_assets.outputs.style import COHORT_FIRST_MONTH, COHORT_MONTHS
from crm_assets.outputs.views import VIEWS

SNAPSHOT = SNAPSHOT_TABLE.name
# the folder of the monthly workbook and HTML report under the output folder
REPORTS_FOLDER = "reports"
MANIFEST = "reporting.snapshot_manifest"

# Number formats of the figures (Excel's codes; the HTML report reads them too)
UNITS = "#,##0"
SHARE = "0.0%"

# What a unit is, said where units first appear (KPIs) and in the Definitions.
UNITS_DEFINITION = (
    "Units = quantity \u00d7 the product's unit size (grams, pods or millilitres, as the product master's "
    "unit_size counts), not items: 3 bags of 250 g are 750 units."
)

KPIS: list[tuple[str, str, str, str]] = [
    # (column of KPI_SQL, label, number format, definition)
    (
        "evaluated",
        "Evaluated customers",
        COUNT,
        "Customers in the month's snapshot: every customer of the master entered by the month, anonymous groups excluded.",
    ),
    ("active", "Active customers", COUNT, "Customers with units in the last 12 months (m12 > 0)."),
    ("active_share", "Active share", SHARE, "Active customers / evaluated customers."),
    ("new", "New customers (event)", COUNT, "Customers whose first-ever consumable purchase was in the month."),
    (
        "lost",
        "Lost customers (event)",
        COUNT,
        "Customers whose last purchase left the 12-month window in the month (first month Not Active).",
    ),
    (
        "reactivated",
        "Reactivated customers (event)",
        COUNT,
        "Customers buying in the month after 12+ silent months, with older history.",
    ),
    (
        "at_risk",
        "At Risk customers (stage)",
        COUNT,
        "Active customers past their first year who bought nothing in the last 6 months.",
    ),
    ("prospects", "Prospects (stage)", COUNT, "Evaluated customers who never bought a consumable."),
    ("top_tiers", "Diamond + Platinum customers", COUNT, "Active customers in the two top value tiers."),
    (
        "units_month",
        "Units bought in the month",
        UNITS,
        "Sum of m1: units of qualifying consumable lines dated in the month.",
    ),
    ("units_12m", "Units bought in 12 months", UNITS, "Sum of m12 over evaluated customers."),
    (
        "orders_6m",
        "Orders in 6 months",
        COUNT,
        "Sum of o6: distinct invoices with a qualifying line in the last 6 months.",
    ),
    (
        "amc_active",
        "Average monthly consumption (Active)",
        DECIMAL,
        "Average of avg_monthly_consumption (m6 / 6) over Active customers.",
    ),
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


def kpi_values(con, month: date, held: set[date]) -> dict[date, dict]:
    """KPI_SQL's figures of ``month``, M-1 and M-12, by month. A month computed without any customer has
    zero counts and no ratios; a month not computed (not in ``held``, see held_months) is absent."""
    prev, year_ago = add_months(month, -1), add_months(month, -12)
    cur = con.execute(KPI_SQL, [month, prev, year_ago])
    names = [d[0] for d in cur.description]
    by_month = {r[0]: dict(zip(names, r)) for r in cur.fetchall()}
    for m in (month, prev, year_ago):
        if m in held and m not in by_month:
            by_month[m] = {key: (0 if fmt in (COUNT, UNITS) else None) for key, _, fmt, _ in KPIS}
    return by_month


def change(now, before, points: bool = False):
    """Absolute change and relative change (None when not computable)."""
    if now is None or before is None:
        return None, None
    if points:
        return (now - before) * 100, None
    return now - before, ((now - before) / before if before else None)


TIER_MIX_SQL = sql.load(__package__, "workbook_tier_mix.sql")


def tier_filters() -> str:
    return ", ".join(f"coalesce(sum(customers) FILTER (value_tier = '{t}'), 0) AS \"{t}\"" for t in TIERS)


TRENDS_SQL = f"""
SELECT report_month, sum(customers) AS evaluated,
    coalesce(sum(customers) FILTER (activity_status = 'Active'), 0) AS active,
    coalesce(sum(customers) FILTER (lifecycle_event = 'New'), 0) AS new,
    coalesce(sum(customers) FILTER (lifecycle_event = 'Lost'), 0) AS lost,
    coalesce(sum(customers) FILTER (lifecycle_event = 'Reactivated'), 0) AS reactivated,
    sum(units_month) AS units_month, sum(units_12m) AS units_12m,
    {tier_filters()}
FROM reporting.segment_summary
WHERE report_month BETWEEN ? AND ?
GROUP BY report_month
ORDER BY report_month
"""


LIFECYCLE_SQL = sql.load(__package__, "workbook_lifecycle.sql")


SEGMENTS_SQL = sql.load(__package__, "workbook_segments.sql")


# The columns of TRENDS_SQL and SEGMENTS_SQL, in their order: (name, heading, number format). The workbook and
# the page take headings and formats from here and read the rows by name (named_rows checks the order).
MONTH = "mmm yyyy"
TREND_COLUMNS = (
    ("report_month", "Month", MONTH),
    ("evaluated", "Evaluated", COUNT),
    ("active", "Active", COUNT),
    ("new", "New", COUNT),
    ("lost", "Lost", COUNT),
    ("reactivated", "Reactivated", COUNT),
    ("units_month", "Units in month", UNITS),
    ("units_12m", "Units 12 m", UNITS),
    *((tier, tier, COUNT) for tier in TIERS),
)
SEGMENT_COLUMNS = (
    ("segment", "Segment", None),
    ("customers", "Customers", COUNT),
    ("active", "Active", COUNT),
    ("active_share", "Active share", SHARE),
    ("new", "New", COUNT),
    ("lost", "Lost", COUNT),
    ("units_month", "Units in month", UNITS),
    ("units_12m", "Units 12 m", UNITS),
    *((tier, tier, COUNT) for tier in TIERS),
)
# the columns of an event in TREND_COLUMNS
EVENT_COLUMNS = {event: event.lower() for event in EVENTS}


def named_rows(con, query: str, params, columns) -> list[dict]:
    """The rows of ``query`` as dicts by column name; the query's columns must be ``columns``, in order."""
    cur = con.execute(query, params)
    names = [d[0] for d in cur.description]
    if names != [c[0] for c in columns]:
        raise AssertionError(f"the query's columns {names} are not the declared {[c[0] for c in columns]}")
    return [dict(zip(names, r)) for r in cur.fetchall()]


def trends(con, month: date) -> list[dict]:
    """TRENDS_SQL over the 24 months to ``month`` (those the warehouse holds), oldest first."""
    return named_rows(con, TRENDS_SQL, [add_months(month, -23), month], TREND_COLUMNS)


def segments(con, month: date, column: str) -> list[dict]:
    """SEGMENTS_SQL by ``column`` (customer_group or city) for ``month``, largest first."""
    return named_rows(con, SEGMENTS_SQL.format(column=column, tiers=tier_filters()), [month], SEGMENT_COLUMNS)


def cohort_window(month: date) -> tuple[date, date, range]:
    """The cohort view of ``month``: its first and last cohort and the months since shown.

    Months since run from COHORT_FIRST_MONTH (before it every cohort is Active by definition), so the
    newest cohort shown is COHORT_FIRST_MONTH months old and the oldest has COHORT_MONTHS months shown.
    """
    newest = add_months(month, -COHORT_FIRST_MONTH)
    return (
        add_months(newest, -(COHORT_MONTHS - 1)),
        newest,
        range(COHORT_FIRST_MONTH, COHORT_FIRST_MONTH + COHORT_MONTHS),
    )


COHORT_SQL = """
SELECT cohort_month, months_since, cohort_size, share_active FROM reporting.cohort_retention
WHERE report_month BETWEEN ? AND ? AND cohort_month BETWEEN ? AND ? AND months_since >= ?
"""


def held_months(con) -> list[date]:
    """The report months computed in the warehouse: those of the manifest (a month may have no customer) and the snapshot."""
    sql = f"SELECT DISTINCT report_month FROM {SNAPSHOT}"
    if MANIFEST in table_names(con):
        sql += f" UNION SELECT DISTINCT report_month FROM {MANIFEST}"
    return [m for (m,) in con.execute(f"SELECT * FROM ({sql}) ORDER BY 1").fetchall()]


def require_month(con, month: date) -> int:
    """The month's snapshot rows (0 for a computed month without customers); CrmError for a month not computed."""
    if SNAPSHOT not in table_names(con):
        raise CrmError(f"{SNAPSHOT} not found in the warehouse; run `crm run` first")
    rows = con.execute(f"SELECT count(*) FROM {SNAPSHOT} WHERE report_month = ?", [month]).fetchall()[0][0]
    if rows == 0:
        months = held_months(con)
        if month not in months:
            held = f"{months[0]:%Y-%m}..{months[-1]:%Y-%m}" if months else "none"
            raise CrmError(f"month {month:%Y-%m} is not in the warehouse (months held: {held})")
    return rows


def require_views(con, month: date, customers: int) -> None:
    tables = table_names(con)
    for view in VIEWS.values():
        if view.table not in tables:
            raise CrmError(f"{view.table} not found in the warehouse; run `crm run` to build the reporting views")
    summary = con.execute("SELECT count(*) FROM reporting.segment_summary WHERE report_month = ?", [month]).fetchall()[
        0
    ][0]
    if customers and not summary:
        raise CrmError(
            f"the reporting views have no rows for {month:%Y-%m}; run `crm run --from {month:%Y-%m} --to {month:%Y-%m}`"
        )


def months_written(window, keep: int, path_of, what: str, command: str) -> tuple[list[str], dict, dict]:
    """The months of a run whose file (workbook or page) is written: the newest ``keep`` (0: every month).

    The run's older months get no file, and a file an earlier run left for one of them is removed: it would
    show the figures from before the recomputation. Returns the written months' keys and, for the others, their
    rows (0) and metadata, which say which command writes the file.
    """
    written = list(window.keys[-keep:] if keep > 0 else window.keys)
    rows: dict[str, int] = {}
    extra: dict[str, dict] = {}
    for key in window.keys[: len(window.keys) - len(written)]:
        path_of(key_to_date(key)).unlink(missing_ok=True)
        rows[key] = 0
        extra[key] = {
            what: f"not written by a run of {window.months} months (CRM_WORKBOOK_MONTHS={keep}): "
            f"{command.format(month=key[:7])} writes it"
        }
    return written, rows, extra
