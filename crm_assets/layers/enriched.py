"""Enriched layer: the raw rows cleaned and joined, in the ``enriched`` schema.

``enriched.customers`` is the customer master with trimmed ids, consent flags
as booleans (never NULL) and the anonymous flag. ``enriched.transactions``
is every raw invoice line joined to its product and customer, with the
normalized category, its units, and the flags that the later layers filter
on (qualifying, evaluated, orphans). Nothing is dropped here: returns, zero
quantities, orphans and anonymous customers' lines are all kept.
"""

from dagster import AssetExecutionContext, MaterializeResult, MetadataValue, asset

from crm_assets.core import rules
from crm_assets.core.builds import BUILDS_DDL, stamp_customers
from crm_assets.core.columns import schema_ddl
from crm_assets.core.partitioned import (
    MonthWindow,
    WriteResult,
    add_month_metadata,
    counts_by_month,
    markdown_table,
    month_window,
    monthly_asset,
    replace_months,
)
from crm_assets.core.quality import WARN, Check, check_results, tally
from crm_assets.core.resources import Warehouse
from crm_assets.core.rules import CrmRules
from crm_assets.engines.base import Engine
from crm_assets.layers import raw
from crm_assets.layers.tables import ENRICHED_CUSTOMERS, ENRICHED_TABLES, ENRICHED_TRANSACTIONS

ENRICHED_DDL = schema_ddl("enriched", ENRICHED_TABLES)


def customers_sql(crm_rules: CrmRules) -> str:
    return f"""
    SELECT {rules.trim_sql("customer_id")} AS customer_id, customer_name, trim(customer_group) AS customer_group,
        trim(city) AS city, created_date, trim(email) AS email, trim(mobile_number) AS mobile_number,
        {rules.consent_sql("opt_email")} AS opt_email,
        {rules.consent_sql("opt_sms")} AS opt_sms,
        {rules.consent_sql("opt_phone")} AS opt_phone,
        {rules.anonymous_sql("customer_group", crm_rules)} AS is_anonymous
    FROM raw.customers
    """


# Units are rounded to 6 decimals and summed as DECIMAL, so sums are exact and
# independent of the order of addition.
TRANSACTIONS_SQL = f"""
WITH products AS (
    SELECT {rules.trim_sql("product_id")} AS product_id, {rules.category_sql("category")} AS category, unit_size
    FROM raw.products
)
SELECT t.partition_month, t.invoice_month, t.invoice_date, t.source_file, t.line_number,
    {rules.trim_sql("t.invoice_id")} AS invoice_id, {rules.trim_sql("t.customer_id")} AS customer_id,
    {rules.trim_sql("t.product_id")} AS product_id, {rules.id_sql("t.store_id")} AS store_id, t.quantity, t.revenue,
    p.category, p.unit_size,
    CASE WHEN p.category = '{rules.CONSUMABLE}' THEN round(t.quantity * p.unit_size, 6)::DECIMAL(38, 6) END AS units,
    c.customer_id IS NOT NULL AS is_known_customer,
    p.product_id IS NOT NULL AS is_known_product,
    coalesce(c.is_anonymous, false) AS is_anonymous,
    c.customer_id IS NOT NULL AND NOT c.is_anonymous AS is_evaluated,
    coalesce(p.category = '{rules.CONSUMABLE}', false) AS is_consumable,
    coalesce(p.category = '{rules.DEVICE}', false) AS is_device,
    coalesce(p.category = '{rules.CONSUMABLE}' AND t.quantity > 0, false) AS is_qualifying
FROM raw.sales_transactions t
LEFT JOIN enriched.customers c ON c.customer_id = {rules.trim_sql("t.customer_id")}
LEFT JOIN products p ON p.product_id = {rules.trim_sql("t.product_id")}
WHERE t.partition_month BETWEEN ? AND ?
ORDER BY t.partition_month, t.source_file, t.line_number
"""


def _orphan_check(name: str, flag: str, id_column: str, description: str, distinct: str) -> Check:
    """Lines whose ``id_column`` is not in its master, with the distinct unknown ids of the run (``distinct``)."""
    return Check(
        "enriched/transactions",
        name,
        WARN,
        description,
        tally(
            f"""
            SELECT partition_month AS month, {id_column} AS item
            FROM enriched.transactions WHERE partition_month BETWEEN $start AND $end AND NOT {flag}
            """,
            distinct="item",
        ),
        unit="lines",
        distinct=distinct,
    )


CHECKS = [
    _orphan_check(
        "orphan_customer_lines",
        "is_known_customer",
        "customer_id",
        "Lines whose customer_id is not in the customer master: kept, never counted.",
        "customers",
    ),
    _orphan_check(
        "orphan_product_lines",
        "is_known_product",
        "product_id",
        "Lines whose product_id is not in the product master: kept, never counted.",
        "products",
    ),
]


def build_customers(con: Engine, crm_rules: CrmRules, run_id: str = "direct") -> None:
    """Replace ``enriched.customers`` from ``raw.customers``, and stamp it, in one transaction."""
    con.execute(ENRICHED_DDL)
    con.execute(BUILDS_DDL)
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute("DELETE FROM enriched.customers")
        con.execute(f"INSERT INTO enriched.customers BY NAME {customers_sql(crm_rules)}")
        stamp_customers(con, crm_rules.version(), run_id)
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise


def build_transactions(con: Engine, window: MonthWindow, run_id: str = "direct") -> WriteResult:
    """Replace the window's months of ``enriched.transactions``, with the orphan warnings."""
    con.execute(ENRICHED_DDL)
    return replace_months(
        con,
        "enriched.transactions",
        "partition_month",
        window,
        TRANSACTIONS_SQL,
        [window.start, window.end],
        CHECKS,
        run_id,
    )


@asset(
    key_prefix="enriched",
    group_name="enriched",
    kinds={"duckdb"},
    deps=[raw.customers],
    metadata=ENRICHED_CUSTOMERS.metadata(),
)
def customers(context: AssetExecutionContext, warehouse: Warehouse, crm_rules: CrmRules) -> MaterializeResult:
    """The customer master ready for use: trimmed ids, consent flags as booleans, anonymous flag.

    Consent is true only for 1/true/yes/y in any case; blank or unknown means
    no consent. Anonymous customers (group ``General`` by default) are flagged
    here and never get snapshot rows.
    """
    with warehouse.engine() as con:
        build_customers(con, crm_rules, context.run_id)
        total, anonymous, email, sms, phone = con.execute(
            "SELECT count(*), count(*) FILTER (is_anonymous), count(*) FILTER (opt_email), "
            "count(*) FILTER (opt_sms), count(*) FILTER (opt_phone) FROM enriched.customers"
        ).fetchone()
    return MaterializeResult(
        metadata={
            "rows": total,
            "anonymous": anonymous,
            "opt_email": email,
            "opt_sms": sms,
            "opt_phone": phone,
            "summary": MetadataValue.md(
                markdown_table(
                    ("customers", "anonymous", "opt_email", "opt_sms", "opt_phone"),
                    [(total, anonymous, email, sms, phone)],
                )
            ),
        }
    )


@monthly_asset(
    "enriched", table=ENRICHED_TRANSACTIONS, checks=CHECKS, deps=[raw.sales_transactions, raw.products, customers]
)
def transactions(context: AssetExecutionContext, warehouse: Warehouse) -> MaterializeResult:
    """Every invoice line joined to its product and customer, by invoice month.

    Adds the normalized category (``refill`` is a consumable), ``units`` =
    quantity x unit_size for consumables, and the flags: qualifying
    (consumable, quantity > 0), evaluated customer (known, not anonymous),
    orphan customer or product. Lines dated before the first partition belong
    to the first one.
    """
    window = month_window(context)
    with warehouse.engine() as con:
        written = build_transactions(con, window, context.run_id)
        stats = con.execute(
            """
            SELECT strftime(partition_month, '%Y-%m-%d'), count(*),
                count(*) FILTER (is_qualifying AND is_evaluated),
                count(*) FILTER (NOT is_known_customer), count(*) FILTER (NOT is_known_product),
                count(*) FILTER (is_anonymous), count(*) FILTER (quantity <= 0)
            FROM enriched.transactions WHERE partition_month BETWEEN ? AND ? GROUP BY 1
            """,
            [window.start, window.end],
        ).fetchall()
        by_category = counts_by_month(con, "enriched.transactions", "partition_month", window, "category")
    per_month = {row[0]: row[1:] for row in stats}
    names = (
        "qualifying lines of evaluated customers",
        "orphan customer lines",
        "orphan product lines",
        "anonymous lines",
        "returns and zero lines",
    )
    add_month_metadata(
        context,
        window,
        {k: v[0] for k, v in per_month.items()},
        {"category": (rules.KNOWN_CATEGORIES, by_category)},
        extra={k: dict(zip(names, v[1:])) for k, v in per_month.items()},
    )
    return MaterializeResult(
        metadata={"months": window.months, "lines": written.rows}, check_results=check_results(written.outcomes)
    )


enriched_assets = [customers, transactions]
