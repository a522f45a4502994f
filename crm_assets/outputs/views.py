"""Reporting views: small monthly tables in the ``reporting`` schema for Excel and Power BI.

Each view is an aggregate of ``reporting.customer_snapshot`` (plus the
presence of contact data in ``enriched.customers`` for the contactable view),
one set of rows per report month, replaced month by month like every other
partitioned table. They are what the summary workbook reads, and what an
analyst queries for totals without touching customer rows:

| table | grain | figures |
|---|---|---|
| ``reporting.segment_summary`` | month x status x tier x stage x event x group x city | customers, units of the month and of 12 months, orders of 12 months |
| ``reporting.tier_migration`` | month x tier in M-1 x tier in M | customers |
| ``reporting.cohort_retention`` | month x first-purchase cohort | cohort size, active customers, share still active |
| ``reporting.contactable_customers`` | month x channel | consented, with contact data, contactable and active |
| ``reporting.device_attach`` | month x customer group | device owners, owners who bought / never bought a consumable, attach rate |
"""

from dataclasses import dataclass

from dagster import AssetExecutionContext, AssetsDefinition, MaterializeResult

from crm_assets.core.columns import schema_ddl
from crm_assets.core.partitioned import MonthWindow, add_month_metadata, month_window, monthly_asset, replace_months
from crm_assets.core.resources import Warehouse
from crm_assets.core.rules import TIERS
from crm_assets.engines.base import Engine
from crm_assets.layers import enriched
from crm_assets.layers.reporting import SNAPSHOT_TABLE, customer_snapshot
from crm_assets.outputs import tables
from crm_assets.outputs.tables import VIEW_TABLES

SNAPSHOT = SNAPSHOT_TABLE.name

# The label of "no value tier" in the migration matrix: Not Active, or not yet
# entered (prev_value_tier is NULL in both cases).
NO_TIER = "(no tier)"
CHANNELS = ("email", "sms", "phone", "any")


def order_sql(expr: str, values: tuple[str, ...]) -> str:
    """The 1-based position of ``expr`` in ``values`` (the spec order), len + 1 otherwise.

    ``values`` are the spellings of rules.py, never user input.
    """
    whens = " ".join(f"WHEN '{v}' THEN {i}" for i, v in enumerate(values, 1))
    return f"(CASE {expr} {whens} ELSE {len(values) + 1} END)"


VIEWS_DDL = schema_ddl("reporting", VIEW_TABLES)

SEGMENT_SUMMARY_SQL = f"""
SELECT report_month, activity_status, value_tier, lifecycle_stage, lifecycle_event, customer_group, city,
    count(*) AS customers, sum(m1) AS units_month, sum(m12) AS units_12m, sum(o12) AS orders_12m
FROM {SNAPSHOT}
WHERE report_month BETWEEN ? AND ?
GROUP BY ALL
ORDER BY ALL
"""

TIER_MIGRATION_SQL = f"""
SELECT report_month, coalesce(prev_value_tier, '{NO_TIER}') AS from_tier, coalesce(value_tier, '{NO_TIER}') AS to_tier,
    {order_sql("prev_value_tier", TIERS)} AS from_order, {order_sql("value_tier", TIERS)} AS to_order,
    count(*) AS customers
FROM {SNAPSHOT}
WHERE report_month BETWEEN ? AND ?
GROUP BY ALL
ORDER BY report_month, from_order, to_order
"""

# Cohort = calendar month of the first consumable purchase; months since =
# report month - cohort month (0 = the cohort's own month). Customers never
# entered a cohort (no purchase) are left out. A cohort's size is the same
# in every report month (customers never leave the snapshot).
COHORT_RETENTION_SQL = f"""
WITH s AS (
    SELECT report_month, date_trunc('month', first_consumable_purchase_date)::DATE AS cohort_month,
        activity_status = 'Active' AS active
    FROM {SNAPSHOT}
    WHERE report_month BETWEEN ? AND ? AND first_consumable_purchase_date IS NOT NULL
)
SELECT report_month, cohort_month,
    ((year(report_month) - year(cohort_month)) * 12 + month(report_month) - month(cohort_month))::INTEGER AS months_since,
    count(*) AS cohort_size, count(*) FILTER (active) AS active_customers,
    count(*) FILTER (active) / count(*) AS share_active
FROM s
GROUP BY ALL
ORDER BY report_month, cohort_month
"""

# Consent as of the month (the snapshot's flags) and contact data present in
# the current customer master: email for email, mobile_number for SMS and phone.
CONTACTABLE_SQL = f"""
WITH s AS (
    SELECT s.report_month, s.activity_status = 'Active' AS active,
        s.opt_email, s.opt_sms, s.opt_phone,
        coalesce(c.email, '') <> '' AS has_email, coalesce(c.mobile_number, '') <> '' AS has_mobile
    FROM {SNAPSHOT} s LEFT JOIN enriched.customers c USING (customer_id)
    WHERE s.report_month BETWEEN ? AND ?
),
channels AS (
    SELECT report_month, active, 'email' AS channel, 1 AS channel_order, opt_email AS consented, opt_email AND has_email AS reachable FROM s
    UNION ALL
    SELECT report_month, active, 'sms', 2, opt_sms, opt_sms AND has_mobile FROM s
    UNION ALL
    SELECT report_month, active, 'phone', 3, opt_phone, opt_phone AND has_mobile FROM s
    UNION ALL
    SELECT report_month, active, 'any', 4, opt_email OR opt_sms OR opt_phone,
        (opt_email AND has_email) OR ((opt_sms OR opt_phone) AND has_mobile) FROM s
)
SELECT report_month, channel, channel_order, count(*) AS customers,
    count(*) FILTER (consented) AS consented, count(*) FILTER (reachable) AS contactable,
    count(*) FILTER (reachable AND active) AS contactable_active
FROM channels
GROUP BY ALL
ORDER BY report_month, channel_order
"""

DEVICE_ATTACH_SQL = f"""
SELECT report_month, customer_group,
    count(*) AS device_owners,
    count(*) FILTER (m_total > 0) AS owners_with_consumable,
    count(*) FILTER (m_total = 0) AS owners_without_consumable,
    count(*) FILTER (m_total > 0) / count(*) AS attach_rate
FROM {SNAPSHOT}
WHERE report_month BETWEEN ? AND ? AND first_device_purchase_date IS NOT NULL
GROUP BY ALL
ORDER BY ALL
"""


@dataclass(frozen=True)
class View:
    """One reporting view: its table and the SELECT that fills a window of months (parameters: first, last month)."""

    name: str
    select_sql: str
    count_column: str  # summed per month for the "rows" metadata

    @property
    def table(self) -> str:
        return f"reporting.{self.name}"


VIEWS = {
    v.name: v
    for v in (
        View("segment_summary", SEGMENT_SUMMARY_SQL, "customers"),
        View("tier_migration", TIER_MIGRATION_SQL, "customers"),
        View("cohort_retention", COHORT_RETENTION_SQL, "cohort_size"),
        View("contactable_customers", CONTACTABLE_SQL, "contactable"),
        View("device_attach", DEVICE_ATTACH_SQL, "device_owners"),
    )
}


def build_view(con: Engine, name: str, window: MonthWindow) -> None:
    """Replace the window's months of one view, in one transaction."""
    con.execute(VIEWS_DDL)
    view = VIEWS[name]
    replace_months(con, view.table, "report_month", window, view.select_sql, [window.start, window.end])


def build_views(con: Engine, window: MonthWindow) -> None:
    """Every view for the window (for runs without Dagster)."""
    for name in VIEWS:
        build_view(con, name, window)


def _materialize(
    context: AssetExecutionContext, warehouse: Warehouse, name: str, where: str = "true"
) -> MaterializeResult:
    """Build one view for the run's months; metadata per month: its rows and the sum of its count column."""
    window = month_window(context)
    view = VIEWS[name]
    with warehouse.engine() as con:
        build_view(con, name, window)
        stats = con.execute(
            f"""
            SELECT strftime(report_month, '%Y-%m-%d'), count(*), coalesce(sum({view.count_column}) FILTER ({where}), 0)::BIGINT
            FROM {view.table} WHERE report_month BETWEEN ? AND ? GROUP BY 1
            """,
            [window.start, window.end],
        ).fetchall()
    rows = {key: n for key, n, _ in stats}
    totals = {key: total for key, _, total in stats}
    add_month_metadata(context, window, rows, {}, extra={k: {view.count_column: totals.get(k, 0)} for k in window.keys})
    return MaterializeResult(
        metadata={"months": window.months, "rows_in_run": sum(rows.values()), view.count_column: sum(totals.values())}
    )


def _view_asset(table, *deps):
    return monthly_asset("reporting", table=table, group="reporting_views", deps=[customer_snapshot, *deps])


@_view_asset(tables.SEGMENT_SUMMARY)
def segment_summary(context: AssetExecutionContext, warehouse: Warehouse) -> MaterializeResult:
    """Customers and units per month by activity status, value tier, lifecycle stage and event, customer group and city.

    The finest grain of every segment total: summing ``customers`` over any
    of the columns gives the totals by the others (by tier alone, by city
    alone, ...), and over all of them the month's snapshot rows. Units are
    ``m1`` (bought in the month) and ``m12``; orders are ``o12``.
    """
    return _materialize(context, warehouse, "segment_summary")


@_view_asset(tables.TIER_MIGRATION)
def tier_migration(context: AssetExecutionContext, warehouse: Warehouse) -> MaterializeResult:
    """The value-tier migration matrix of each month: customers by tier in M-1 (rows) and tier in M (columns).

    ``(no tier)`` stands for a customer without a tier: Not Active, or (on the
    M-1 side) not yet entered. ``from_order`` / ``to_order`` sort the tiers
    as the spec lists them (Diamond first, ``(no tier)`` last). Every
    snapshot row of the month is in exactly one cell.
    """
    return _materialize(context, warehouse, "tier_migration")


@_view_asset(tables.COHORT_RETENTION)
def cohort_retention(context: AssetExecutionContext, warehouse: Warehouse) -> MaterializeResult:
    """Cohort retention: per report month and first-purchase cohort, the share of the cohort still Active.

    The cohort of a customer is the month of its first consumable purchase;
    ``months_since`` is report month minus cohort month. Read over the report
    months, the rows of one cohort are a row of the classic cohort triangle.
    """
    return _materialize(context, warehouse, "cohort_retention")


@_view_asset(tables.CONTACTABLE_CUSTOMERS, enriched.customers)
def contactable_customers(context: AssetExecutionContext, warehouse: Warehouse) -> MaterializeResult:
    """Customers reachable per channel each month: consent as of the month and contact data on file.

    For ``email``: opt_email and a non-blank email; for ``sms`` / ``phone``:
    the flag and a non-blank mobile number; ``any``: at least one of them.
    ``contactable_active`` counts the Active ones among the contactable.
    """
    return _materialize(context, warehouse, "contactable_customers", where="channel = 'any'")


@_view_asset(tables.DEVICE_ATTACH)
def device_attach(context: AssetExecutionContext, warehouse: Warehouse) -> MaterializeResult:
    """Device owners who never bought a consumable, by month and customer group, with the attach rate.

    A device owner has a ``first_device_purchase_date``; attached owners have
    bought at least one consumable (``m_total > 0``). ``attach_rate`` =
    attached owners / owners.
    """
    return _materialize(context, warehouse, "device_attach")


view_assets: list[AssetsDefinition] = [
    segment_summary,
    tier_migration,
    cohort_retention,
    contactable_customers,
    device_attach,
]
