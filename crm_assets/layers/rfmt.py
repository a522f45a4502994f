"""RFMT layer (business rules 5.2, 5.5, 5.6), in the ``rfmt`` schema.

For each Active customer and report month: the value tier, the recency,
frequency, monetary and tenure scores; and for everyone the value tier of
the previous month, computed with the same rule from that month's figures
(kept by the features layer), so it never depends on whether the previous
month was materialized. Thresholds and bin edges come from the ``CrmRules``
resource; the rules themselves from ``core/ordered_rules.py``.
"""

from dagster import AssetExecutionContext, MaterializeResult

from crm_assets.core import quality
from crm_assets.core.columns import schema_ddl
from crm_assets.core.ordered_rules import M_SCORE_K, M_SCORE_N, SCORE_RULES, VALUE_TIER, inputs_of, m_score_sql
from crm_assets.core.partitioned import (
    MonthWindow,
    WriteResult,
    breakdown_metadata,
    guarded,
    month_parts,
    month_window,
    monthly_asset,
    replace_months,
)
from crm_assets.core.quality import check_results
from crm_assets.core.resources import Warehouse
from crm_assets.core.rules import SCORE_VALUES, SCORES, TIERS, CrmRules
from crm_assets.engines.base import Engine
from crm_assets.layers.features import customer_features
from crm_assets.layers.lifecycle import customer_lifecycle
from crm_assets.layers.tables import CUSTOMER_RFMT, RFMT_TABLES

RFMT_DDL = schema_ddl("rfmt", RFMT_TABLES)
TABLE = "rfmt.customer_rfmt"
ASSET = "rfmt/customer_rfmt"
WITH_STATUS = (
    "(SELECT r.*, l.activity_status FROM rfmt.customer_rfmt r "
    "JOIN lifecycle.customer_lifecycle l USING (report_month, customer_id)) AS t"
)
CHECKS = [
    quality.unique_customer_month(ASSET, TABLE),
    quality.same_row_count(ASSET, TABLE, "features.customer_features", "features.customer_features"),
    *quality.rfmt_value_checks(ASSET, TABLE, WITH_STATUS),
]


ACTIVE = "l.activity_status = 'Active'"
# the rules' inputs as this layer's statement names them (f: features.customer_features, l: lifecycle)
TIER_INPUTS = inputs_of(VALUE_TIER, "f", active=ACTIVE)
PREV_TIER_INPUTS = inputs_of(
    VALUE_TIER,
    "f",
    active="f.prev_entered AND f.prev_lines_m12 > 0",
    lines_m6="f.prev_lines_m6",
    m6="f.prev_m6",
    o6="f.prev_o6",
)
SCORE_INPUTS = {rule.column: inputs_of(rule, "f", active=ACTIVE) for rule in SCORE_RULES}


def rfmt_sql(rules: CrmRules) -> str:
    scores = ",\n            ".join(
        f"{rule.case_sql(rules, SCORE_INPUTS[rule.column])} AS {rule.column}" for rule in SCORE_RULES
    )
    # No ORDER BY: the joins promise no order, but their parallel chunks of features.customer_features (stored
    # by month) keep each month's rows together, which is what the month filters of the readers need (every
    # reader that needs an order sorts); a sort took a fifth of the statement at 100k.
    return f"""
    WITH base AS (
        SELECT f.report_month, f.customer_id, {ACTIVE} AS active, f.m12,
            {VALUE_TIER.case_sql(rules, TIER_INPUTS)} AS value_tier,
            {VALUE_TIER.case_sql(rules, PREV_TIER_INPUTS)} AS prev_value_tier,
            {scores}
        FROM features.customer_features f
        JOIN lifecycle.customer_lifecycle l USING (report_month, customer_id)
        WHERE f.report_month BETWEEN ? AND ?
    ),
    ranked AS (
        SELECT report_month, customer_id, {M_SCORE_K} AS k, {M_SCORE_N} AS n
        FROM base WHERE active
    )
    SELECT b.report_month, b.customer_id, b.value_tier, b.prev_value_tier, b.r_score, b.f_score,
        CASE WHEN b.active THEN {m_score_sql("r.k", "r.n")} END AS m_score,
        b.t_score
    FROM base b LEFT JOIN ranked r USING (report_month, customer_id)
    """


def build_rfmt(con: Engine, window: MonthWindow, crm_rules: CrmRules, run_id: str = "direct") -> WriteResult:
    """Replace the window's report months of ``rfmt.customer_rfmt``, checked."""
    crm_rules.validate_values()
    con.execute(RFMT_DDL)
    statement = rfmt_sql(crm_rules)
    parts = [(statement, [start, end]) for start, end in month_parts(con, window, "features.customer_features")]
    return replace_months(con, TABLE, "report_month", window, parts, None, CHECKS, run_id, crm_rules.version())


@monthly_asset("rfmt", table=CUSTOMER_RFMT, checks=CHECKS, deps=[customer_features, customer_lifecycle])
def customer_rfmt(context: AssetExecutionContext, warehouse: Warehouse, crm_rules: CrmRules):
    """Value tier (RFMT segment), previous month's tier, and r/f/m/t scores per customer and month.

    Tiers for Active customers, first match wins: Passive (silent 6 months),
    Diamond, Platinum, Gold, Silver, Bronze by average monthly consumption,
    order size and frequency. Scores 1..5: recency by months since the last
    purchase, frequency by orders in 12 months, monetary by the customer's
    cumulative share of the month's 12-month units, tenure by months since
    the first purchase.
    """
    window = month_window(context)

    def work(con):
        written = build_rfmt(con, window, crm_rules, context.run_id)
        breakdown_metadata(
            context,
            con,
            TABLE,
            window,
            {"tier": (TIERS, "value_tier"), **{score: (tuple(map(str, SCORE_VALUES)), score) for score in SCORES}},
            extra={k: {"rules_version": crm_rules.version()} for k in window.keys},
        )
        return written

    written = yield from guarded(warehouse, work)
    yield MaterializeResult(
        metadata={"months": window.months, "rows_in_run": written.rows, "rules_version": crm_rules.version()},
        check_results=check_results(written.outcomes),
    )


rfmt_assets = [customer_rfmt]
