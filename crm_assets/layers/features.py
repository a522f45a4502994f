"""Customer features layer (business rules section 4), in the ``features`` schema.

Two compact aggregates are built from the enriched lines of evaluated
customers, by invoice month:

- ``features.customer_month_activity``: one row per customer and month with
  activity: qualifying units (exact DECIMAL), qualifying line count, distinct
  invoices, first/last qualifying date, first device date, first line date.
- ``features.repeated_orders``: the rare invoice ids a customer has in more
  than one month, with the previous month of the same invoice, so that order
  counts over a window stay exact distinct counts.

``features.customer_features`` then computes, for each report month M, every
figure of section 4 for every evaluated customer entered by M, from running
sums over a dense customer x month grid (no rescan of the lines per month):
``m_k(M) = C(M) - C(M-k)`` where C is the cumulative sum. It also keeps the
line counts that decide the ``= 0`` and equality rules on presence, and the
inputs of the previous month's value tier.
"""

from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetSpec,
    BackfillPolicy,
    MaterializeResult,
    multi_asset,
)

from crm_assets.core import quality, sql
from crm_assets.core.columns import schema_ddl
from crm_assets.core.months import add_months
from crm_assets.core.partitioned import (
    MonthWindow,
    WriteResult,
    add_month_metadata,
    guarded,
    month_window,
    monthly_asset,
    replace_months,
)
from crm_assets.core.partitions import DECLARED
from crm_assets.core.quality import WARN, check_results
from crm_assets.core.resources import Warehouse
from crm_assets.engines.base import Engine
from crm_assets.engines.duckdb import DuckDBEngine
from crm_assets.layers import enriched
from crm_assets.layers.tables import CUSTOMER_FEATURES, CUSTOMER_MONTH_ACTIVITY, FEATURES_TABLES, REPEATED_ORDERS

FEATURES_DDL = schema_ddl("features", FEATURES_TABLES)

ACTIVITY_SQL = sql.load(__package__, "customer_month_activity.sql")

# The previous month of an invoice id is looked up in the whole history up to
# the window's end, but only for the invoices of the window.
REPEATED_ORDERS_SQL = sql.load(__package__, "repeated_orders.sql")


TABLE = "features.customer_features"
ASSET = "features/customer_features"

CHECKS = [
    quality.unique_customer_month(ASSET, TABLE),
    quality.entered_customers_count(ASSET, TABLE),
    quality.row_rule(
        ASSET, "windows_monotonic", TABLE, quality.MONOTONIC, "0 <= m1 <= m6 <= m12 <= m13 <= m24 <= m25 <= m_total."
    ),
    quality.row_rule(
        ASSET,
        "null_rules",
        TABLE,
        "(tenure_months IS NULL) <> (lines_total = 0) OR (avg_order_size IS NULL) <> (o6 = 0) "
        "OR (months_since_last_purchase IS NULL) <> (last_consumable_purchase_date IS NULL) "
        "OR (m_total = 0) <> (lines_total = 0)",
        "tenure and months since last purchase are NULL exactly when the customer never bought; AOS exactly when o6 = 0.",
    ),
    quality.m1_reconciliation(ASSET, TABLE),
    quality.m_total_never_decreases(ASSET, TABLE),
    quality.row_rule(
        ASSET,
        "customers_without_entry_date",
        TABLE,
        "entry_date IS NULL",
        "Evaluated customers with no created date and no transaction up to the month: in every month as Prospects.",
        WARN,
    ),
    quality.customer_month_check(
        ASSET,
        "customers_with_lines_but_no_consumables",
        f"""
        SELECT f.report_month AS month, f.customer_id AS customer_id, f.customer_id AS item
        FROM {TABLE} f
        WHERE f.report_month BETWEEN $start AND $end AND f.lines_total = 0
          AND EXISTS (SELECT 1 FROM features.customer_month_activity a
                      WHERE a.customer_id = f.customer_id AND a.activity_month <= f.report_month)
        """,
        "Evaluated customers with transaction lines up to the month but no qualifying consumable line.",
        WARN,
    ),
]


def features_sql(
    window: MonthWindow,
    bucket: int = 0,
    buckets: int = 1,
    sum_type: str = "DECIMAL(18, 6)",
    customer_number: str = DuckDBEngine.customer_number,
) -> tuple[str, list]:
    """The SELECT of ``features.customer_features`` for the window's report months, and its parameters.

    Only the customers of ``bucket`` (``hash(customer_id) % buckets``): a
    customer's figures depend on its own rows alone.

    A dense grid of evaluated customers (numbered, so the window passes sort
    on an integer) x months, starting 26 months before the window so that
    every window sum of the report months and of their previous month lies
    inside it; history before the grid enters through ``base``. One window
    pass keeps running sums ``S`` inside the grid, a second takes
    ``m_k(M) = S(M) - S(M-k)`` (the history before the grid cancels out) and
    the previous month's figures. First dates are the customer's first date
    once it lies in the month; sums run on BIGINT and on ``sum_type``
    (DECIMAL(18, 6), fast, when every customer's total fits in it with room to
    spare, else DECIMAL(38, 6): see ``units_sum_type``).
    """
    grid_start = add_months(window.start, -26)
    statement = """
    WITH months AS (
        SELECT unnest(generate_series(?::DATE, ?::DATE, INTERVAL 1 MONTH))::DATE AS month
    ),
    activity AS (
        SELECT * FROM features.customer_month_activity WHERE activity_month <= ? AND {in_bucket}
    ),
    firsts AS (
        SELECT customer_id, min(first_consumable_date) AS first_c, min(first_device_date) AS first_d,
            min(first_line_date) AS first_line,
            sum(units) FILTER (WHERE activity_month < ?) AS bu,
            sum(qualifying_lines) FILTER (WHERE activity_month < ?) AS bl,
            max(last_consumable_date) FILTER (WHERE activity_month < ?) AS b_last_c
        FROM activity GROUP BY customer_id
    ),
    cust AS (
        SELECT {customer_number} AS cid, c.customer_id, c.created_date, f.first_c, f.first_d, f.first_line,
            coalesce(f.bu, 0)::{sum_type} AS bu, coalesce(f.bl, 0)::BIGINT AS bl, f.b_last_c
        FROM enriched.customers c LEFT JOIN firsts f USING (customer_id)
        WHERE NOT c.is_anonymous AND {in_bucket}
    ),
    repeats AS (
        SELECT r.customer_id, m.month,
            count(*) FILTER (WHERE r.previous_month >= m.month - INTERVAL 5 MONTH) AS repeats6,
            count(*) FILTER (WHERE r.previous_month >= m.month - INTERVAL 11 MONTH) AS repeats12
        FROM features.repeated_orders r
        JOIN months m ON m.month >= r.activity_month AND m.month <= r.previous_month + INTERVAL 11 MONTH
        WHERE r.activity_month <= ? AND {in_bucket}
        GROUP BY ALL
    ),
    per_month AS (
        SELECT c.cid, coalesce(a.activity_month, x.month) AS month, coalesce(a.units, 0) AS units,
            coalesce(a.qualifying_lines, 0) AS lines, coalesce(a.orders, 0) AS orders,
            coalesce(x.repeats6, 0) AS repeats6, coalesce(x.repeats12, 0) AS repeats12, a.last_consumable_date
        FROM (SELECT * FROM activity WHERE activity_month >= ?) a
        FULL JOIN repeats x ON x.customer_id = a.customer_id AND x.month = a.activity_month
        JOIN cust c ON c.customer_id = coalesce(a.customer_id, x.customer_id)
    ),
    grid AS (
        SELECT c.cid, m.month, coalesce(p.units, 0)::{sum_type} AS units, coalesce(p.lines, 0)::BIGINT AS lines,
            coalesce(p.orders, 0)::BIGINT AS orders, coalesce(p.repeats6, 0)::BIGINT AS repeats6,
            coalesce(p.repeats12, 0)::BIGINT AS repeats12, p.last_consumable_date
        FROM cust c CROSS JOIN months m
        LEFT JOIN per_month p ON p.cid = c.cid AND p.month = m.month
    ),
    running AS (
        SELECT cid, month, repeats6, repeats12,
            (sum(units) OVER w)::{sum_type} AS su, (sum(lines) OVER w)::BIGINT AS sl,
            (sum(orders) OVER w)::BIGINT AS so, max(last_consumable_date) OVER w AS last_c
        FROM grid
        WINDOW w AS (PARTITION BY cid ORDER BY month ROWS UNBOUNDED PRECEDING)
    ),
    windows AS (
        SELECT cid, month, su, sl, last_c,
            su - lag(su, 1, 0) OVER c AS m1, su - lag(su, 6, 0) OVER c AS m6, su - lag(su, 12, 0) OVER c AS m12,
            su - lag(su, 13, 0) OVER c AS m13, su - lag(su, 24, 0) OVER c AS m24, su - lag(su, 25, 0) OVER c AS m25,
            sl - lag(sl, 1, 0) OVER c AS l1, sl - lag(sl, 6, 0) OVER c AS l6,
            sl - lag(sl, 12, 0) OVER c AS l12, sl - lag(sl, 13, 0) OVER c AS l13,
            so - lag(so, 6, 0) OVER c - repeats6 AS o6, so - lag(so, 12, 0) OVER c - repeats12 AS o12,
            lag(sl, 1, 0) OVER c - lag(sl, 13, 0) OVER c AS prev_l12, lag(sl, 1, 0) OVER c - lag(sl, 7, 0) OVER c AS prev_l6,
            lag(su, 1, 0) OVER c - lag(su, 7, 0) OVER c AS prev_m6,
            lag(so, 1, 0) OVER c - lag(so, 7, 0) OVER c - lag(repeats6, 1, 0) OVER c AS prev_o6
        FROM running
        WINDOW c AS (PARTITION BY cid ORDER BY month)
    )
    SELECT w.month AS report_month, c.customer_id, least(c.created_date, CASE WHEN c.first_line <= last_day(w.month) THEN c.first_line END) AS entry_date,
        c.bu + w.su AS m_total, w.m1, w.m6, w.m12, w.m13, w.m24, w.m25, w.o6, w.o12,
        c.bl + w.sl AS lines_total, w.l1 AS lines_m1, w.l6 AS lines_m6, w.l12 AS lines_m12, w.l13 AS lines_m13,
        CASE WHEN c.first_d <= last_day(w.month) THEN c.first_d END AS first_device_purchase_date,
        CASE WHEN c.first_c <= last_day(w.month) THEN c.first_c END AS first_consumable_purchase_date,
        coalesce(w.last_c, c.b_last_c) AS last_consumable_purchase_date,
        CASE WHEN coalesce(w.last_c, c.b_last_c) IS NOT NULL THEN
            (year(w.month) - year(coalesce(w.last_c, c.b_last_c))) * 12
            + month(w.month) - month(coalesce(w.last_c, c.b_last_c)) END AS months_since_last_purchase,
        CASE WHEN c.first_c <= last_day(w.month) THEN
            (year(w.month) - year(c.first_c)) * 12 + month(w.month) - month(c.first_c) + 1 END AS tenure_months,
        w.m6::DOUBLE / 6 AS avg_monthly_consumption,
        CASE WHEN w.o6 > 0 THEN w.m6::DOUBLE / w.o6 END AS avg_order_size,
        coalesce(c.created_date IS NULL OR c.created_date < w.month OR c.first_line < w.month, false) AS prev_entered,
        w.prev_l12 AS prev_lines_m12, w.prev_l6 AS prev_lines_m6, w.prev_m6, w.prev_o6
    FROM windows w JOIN cust c USING (cid)
    WHERE w.month BETWEEN ? AND ?
      AND (c.created_date IS NULL OR c.created_date <= last_day(w.month) OR c.first_line <= last_day(w.month))
    ORDER BY report_month, customer_id
    """
    in_bucket = "true" if buckets == 1 else f"hash(customer_id) % {int(buckets)} = {int(bucket)}"
    params = [
        grid_start,
        window.end,
        window.end,
        grid_start,
        grid_start,
        grid_start,
        window.end,
        grid_start,
        window.start,
        window.end,
    ]
    statement = statement.replace("{in_bucket}", in_bucket).replace("{sum_type}", sum_type)
    return statement.replace("{customer_number}", customer_number), params


# DECIMAL(18, 6) holds 999,999,999,999.999999: with a customer's whole history below a tenth of it, no running
# sum, window difference or snapshot total can overflow.
FAST_SUM_LIMIT = 10**11


def units_sum_type(con: Engine) -> str:
    """The DECIMAL type of the units sums: DECIMAL(18, 6) when the largest customer total fits, else (38, 6)."""
    largest = con.execute(
        "SELECT max(total) FROM (SELECT sum(units) AS total FROM features.customer_month_activity GROUP BY customer_id)"
    ).fetchone()[0]
    return "DECIMAL(18, 6)" if largest is None or largest < FAST_SUM_LIMIT else "DECIMAL(38, 6)"


def build_activity(con: Engine, window: MonthWindow) -> tuple[int, int]:
    """Replace the window's months of both compact aggregates; returns their row counts."""
    con.execute(FEATURES_DDL)
    activity_rows = replace_months(
        con, "features.customer_month_activity", "partition_month", window, ACTIVITY_SQL, [window.start, window.end]
    )
    repeat_rows = replace_months(
        con,
        "features.repeated_orders",
        "partition_month",
        window,
        REPEATED_ORDERS_SQL,
        [window.start, window.end, window.end, window.start, window.end],
    )
    return activity_rows.rows, repeat_rows.rows


def build_features(con: Engine, window: MonthWindow, run_id: str = "direct") -> WriteResult:
    """Replace the window's report months of ``features.customer_features``, checked."""
    con.execute(FEATURES_DDL)
    customers = con.execute("SELECT count(*) FROM enriched.customers WHERE NOT is_anonymous").fetchone()[0]
    # an engine that spills by itself (Spark) takes the window in one statement, and numbers customers its way
    per_bucket = con.grid_rows_per_bucket
    buckets = max(1, -(-customers * (window.months + 26) // per_bucket)) if per_bucket else 1
    sum_type = units_sum_type(con)
    statements = [features_sql(window, bucket, buckets, sum_type, con.customer_number) for bucket in range(buckets)]
    return replace_months(con, TABLE, "report_month", window, statements, None, CHECKS, run_id)


ACTIVITY_KEY = AssetKey(["features", "customer_month_activity"])
REPEATS_KEY = AssetKey(["features", "repeated_orders"])


@multi_asset(
    specs=[
        AssetSpec(
            ACTIVITY_KEY,
            deps=[enriched.transactions],
            group_name="features",
            kinds={"duckdb"},
            description="Per evaluated customer and invoice month: qualifying units, lines, orders, first and last dates.",
            metadata=CUSTOMER_MONTH_ACTIVITY.metadata(),
        ),
        AssetSpec(
            REPEATS_KEY,
            deps=[enriched.transactions],
            group_name="features",
            kinds={"duckdb"},
            description="Invoice ids a customer has in more than one month, with the previous month of each.",
            metadata=REPEATED_ORDERS.metadata(),
        ),
    ],
    partitions_def=DECLARED,
    backfill_policy=BackfillPolicy.single_run(),
)
def customer_month_activity(context: AssetExecutionContext, warehouse: Warehouse):
    """The compact monthly aggregates that every feature is computed from."""
    window = month_window(context)
    with warehouse.engine() as con:
        activity_rows, repeat_rows = build_activity(con, window)
    yield MaterializeResult(asset_key=ACTIVITY_KEY, metadata={"rows_in_run": activity_rows})
    yield MaterializeResult(asset_key=REPEATS_KEY, metadata={"rows_in_run": repeat_rows})


@monthly_asset(
    "features", table=CUSTOMER_FEATURES, checks=CHECKS, deps=[customer_month_activity, enriched.customers]
)  # both activity tables
def customer_features(context: AssetExecutionContext, warehouse: Warehouse):
    """Section 4 of the business rules for every evaluated customer entered by each report month.

    Units in the 1/6/12/13/24/25-month windows and in all history, orders in
    6 and 12 months, first and last purchase dates, months since the last
    purchase, tenure, AMC and AOS, as of the last day of the month: a line
    dated after the month never changes it.
    """
    window = month_window(context)

    def work(con: Engine):
        written = build_features(con, window, context.run_id)
        stats = con.execute(
            """
            SELECT strftime(report_month, '%Y-%m-%d'), count(*), count(*) FILTER (lines_m12 > 0),
                count(*) FILTER (lines_total = 0), sum(m1)::DOUBLE, sum(m12)::DOUBLE
            FROM features.customer_features WHERE report_month BETWEEN ? AND ? GROUP BY 1
            """,
            [window.start, window.end],
        ).fetchall()
        return written, stats

    written, stats = yield from guarded(warehouse, work)
    per_month = {row[0]: row[1:] for row in stats}
    add_month_metadata(
        context,
        window,
        {k: v[0] for k, v in per_month.items()},
        {},
        extra={
            k: {
                "customers with units in 12 months": v[1],
                "never bought": v[2],
                "units in month": v[3],
                "units in 12 months": v[4],
            }
            for k, v in per_month.items()
        },
    )
    yield MaterializeResult(
        metadata={"months": window.months, "rows_in_run": written.rows}, check_results=check_results(written.outcomes)
    )


features_assets = [customer_month_activity, customer_features]
