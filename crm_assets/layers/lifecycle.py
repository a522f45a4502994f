"""Lifecycle layer (business rules 5.1, 5.3, 5.4), in the ``lifecycle`` schema.

For each evaluated customer and report month: the activity status, the
lifecycle event of the month and the lifecycle stage at its end. Every
``= 0`` and equality test is decided on line counts (a qualifying line always
has positive units), never on float sums; within each output the first rule
that matches wins (the rules are declared in ``core/ordered_rules.py``).
"""

from dagster import AssetExecutionContext, MaterializeResult

from crm_assets.core import quality
from crm_assets.core.columns import schema_ddl
from crm_assets.core.ordered_rules import ACTIVITY_STATUS, LIFECYCLE_EVENT, LIFECYCLE_STAGE, inputs_of
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
from crm_assets.core.rules import EVENTS, STAGES, STATUSES
from crm_assets.engines.base import Engine
from crm_assets.layers.features import customer_features
from crm_assets.layers.tables import CUSTOMER_LIFECYCLE, LIFECYCLE_TABLES

LIFECYCLE_DDL = schema_ddl("lifecycle", LIFECYCLE_TABLES)

LIFECYCLE_RULES = (ACTIVITY_STATUS, LIFECYCLE_STAGE, LIFECYCLE_EVENT)
# the rules' inputs as LIFECYCLE_SQL names them (f: features.customer_features)
LIFECYCLE_INPUTS = {rule.column: inputs_of(rule, "f") for rule in LIFECYCLE_RULES}
# No ORDER BY: a projection of features.customer_features keeps its order (by month, then customer); a sort
# took 60% of the statement at 100k customers.
_CASES = ",\n    ".join(
    f"{rule.case_sql(None, LIFECYCLE_INPUTS[rule.column])} AS {rule.column}" for rule in LIFECYCLE_RULES
)
LIFECYCLE_SQL = f"""
SELECT report_month, customer_id,
    {_CASES}
FROM features.customer_features f
WHERE report_month BETWEEN ? AND ?
"""

TABLE = "lifecycle.customer_lifecycle"
ASSET = "lifecycle/customer_lifecycle"

CHECKS = [
    quality.unique_customer_month(ASSET, TABLE),
    quality.same_row_count(ASSET, TABLE, "features.customer_features", "features.customer_features"),
    *quality.lifecycle_value_checks(ASSET, TABLE),
    *quality.cross_month_checks(ASSET, TABLE),
]


def build_lifecycle(con: Engine, window: MonthWindow, run_id: str = "direct") -> WriteResult:
    """Replace the window's report months of ``lifecycle.customer_lifecycle``, checked."""
    con.execute(LIFECYCLE_DDL)
    parts = [(LIFECYCLE_SQL, [start, end]) for start, end in month_parts(con, window, "features.customer_features")]
    return replace_months(con, TABLE, "report_month", window, parts, None, CHECKS, run_id)


@monthly_asset("lifecycle", table=CUSTOMER_LIFECYCLE, checks=CHECKS, deps=[customer_features])
def customer_lifecycle(context: AssetExecutionContext, warehouse: Warehouse):
    """Activity status, lifecycle stage and lifecycle event of every evaluated customer, per month.

    Active means units in the last 12 months. Events: New (first-ever
    purchase in the month), Lost (first month without units in 12 months),
    Reactivated (buying again after 12+ silent months). Stages: Prospect,
    Lost, New (tenure up to 12 months), At Risk (silent 6 months), Active.
    """
    window = month_window(context)

    def work(con):
        written = build_lifecycle(con, window, context.run_id)
        breakdown_metadata(
            context,
            con,
            TABLE,
            window,
            {
                "status": (STATUSES, "activity_status"),
                "stage": (STAGES, "lifecycle_stage"),
                "event": (EVENTS, "lifecycle_event"),
            },
        )
        return written

    written = yield from guarded(warehouse, work)
    yield MaterializeResult(
        metadata={"months": window.months, "rows_in_run": written.rows}, check_results=check_results(written.outcomes)
    )


lifecycle_assets = [customer_lifecycle]
