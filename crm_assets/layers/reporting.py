"""Reporting layer: ``reporting.customer_snapshot``, the table users and reports rely on.

One row per evaluated customer and report month, with exactly the columns,
types and spellings of the interface (docs/warehouse.md). Each computed month
also gets a row in ``reporting.snapshot_manifest`` (append-only) with the
rules version and values it was computed with and the Dagster run id, so a
change of thresholds always leaves a trace.
"""

import json
from datetime import date

from dagster import AssetExecutionContext, MaterializeResult

from crm_assets.core import quality, sql
from crm_assets.core.columns import schema_ddl
from crm_assets.core.partitioned import (
    MonthWindow,
    breakdown_metadata,
    guarded,
    month_parts,
    month_window,
    monthly_asset,
    stamp,
)
from crm_assets.core.quality import Outcome, check_results, write_with_checks
from crm_assets.core.resources import Warehouse
from crm_assets.core.rules import EVENTS, STAGES, STATUSES, TIERS, CrmRules
from crm_assets.engines.base import Engine
from crm_assets.layers import enriched
from crm_assets.layers.features import customer_features
from crm_assets.layers.lifecycle import customer_lifecycle
from crm_assets.layers.rfmt import customer_rfmt
from crm_assets.layers.tables import REPORTING_TABLES, SNAPSHOT_TABLE

SNAPSHOT_COLUMNS = SNAPSHOT_TABLE.names()

REPORTING_DDL = schema_ddl("reporting", REPORTING_TABLES)


SNAPSHOT_SQL = sql.load(__package__, "customer_snapshot.sql")

# Late data made visible: when a month that was already in the snapshot is
# computed again, count per month how many customers' status, tier, event or
# stage moved against the previous version (only months that had one, kept in
# the temp table old_snapshot while the months are replaced).
CHANGES_SQL = f"""
INSERT INTO reporting.snapshot_changes
SELECT report_month, $run_id, current_timestamp::TIMESTAMP,
    count(o.customer_id), count(n.customer_id),
    count(*) FILTER (WHERE o.customer_id IS NULL), count(*) FILTER (WHERE n.customer_id IS NULL),
    count(*) FILTER (WHERE o.activity_status IS DISTINCT FROM n.activity_status AND o.customer_id IS NOT NULL AND n.customer_id IS NOT NULL),
    count(*) FILTER (WHERE o.value_tier IS DISTINCT FROM n.value_tier AND o.customer_id IS NOT NULL AND n.customer_id IS NOT NULL),
    count(*) FILTER (WHERE o.lifecycle_event IS DISTINCT FROM n.lifecycle_event AND o.customer_id IS NOT NULL AND n.customer_id IS NOT NULL),
    count(*) FILTER (WHERE o.lifecycle_stage IS DISTINCT FROM n.lifecycle_stage AND o.customer_id IS NOT NULL AND n.customer_id IS NOT NULL),
    count(*) FILTER (WHERE o.customer_id IS NULL OR n.customer_id IS NULL
        OR (o.{", o.".join(SNAPSHOT_COLUMNS)}) IS DISTINCT FROM (n.{", n.".join(SNAPSHOT_COLUMNS)}))
FROM old_snapshot o
FULL JOIN (SELECT * FROM {{table}} WHERE report_month IN (SELECT DISTINCT report_month FROM old_snapshot)) n
    USING (report_month, customer_id)
GROUP BY report_month
"""

TABLE = SNAPSHOT_TABLE.name
ASSET = "reporting/customer_snapshot"
CHECKS = [
    quality.unique_customer_month(ASSET, TABLE),
    quality.same_row_count(ASSET, TABLE, "features.customer_features", "features.customer_features"),
    *quality.lifecycle_value_checks(ASSET, TABLE),
    *quality.rfmt_value_checks(ASSET, TABLE, TABLE),
    quality.row_rule(
        ASSET,
        "tenure_null_exactly_when_never_bought",
        TABLE,
        "(tenure_months IS NULL) <> (m_total = 0)",
        "`tenure_months` is NULL exactly when `m_total` = 0.",
    ),
    quality.row_rule(
        ASSET,
        "consent_never_null",
        TABLE,
        "opt_email IS NULL OR opt_sms IS NULL OR opt_phone IS NULL",
        "Consent flags are never NULL (no consent = false).",
    ),
    quality.row_rule(
        ASSET, "windows_monotonic", TABLE, quality.MONOTONIC, "0 <= m1 <= m6 <= m12 <= m13 <= m24 <= m25 <= m_total."
    ),
    quality.m1_reconciliation(ASSET, TABLE),
    *quality.cross_month_checks(ASSET, TABLE),
    quality.m_total_never_decreases(ASSET, TABLE),
]


def build_snapshot(con: Engine, window: MonthWindow, crm_rules: CrmRules, run_id: str = "direct") -> list[Outcome]:
    """Replace the window's months of the snapshot and log them in the manifest, checked, in one transaction."""
    con.execute(REPORTING_DDL)
    rules_json = json.dumps(crm_rules.as_dict(), sort_keys=True)

    def write(c: Engine) -> None:
        c.execute("DROP TABLE IF EXISTS old_snapshot")
        c.execute(
            f"CREATE TEMP TABLE old_snapshot AS SELECT * FROM {TABLE} WHERE report_month BETWEEN ? AND ?",
            [window.start, window.end],
        )
        c.execute(
            f"DELETE FROM {TABLE} WHERE report_month BETWEEN ? AND ? OR report_month < ?",
            [window.start, window.end, window.calendar_start or date.min],
        )
        for start, end in month_parts(c, window, "features.customer_features"):
            c.execute(f"INSERT INTO {TABLE} BY NAME {SNAPSHOT_SQL}", [start, end])
        if c.execute("SELECT count(*) FROM old_snapshot").fetchone()[0]:
            c.execute(CHANGES_SQL.format(table=TABLE), {"run_id": run_id})
        c.execute("DROP TABLE old_snapshot")
        c.execute(
            f"""
            INSERT INTO reporting.snapshot_manifest
            SELECT m.month, ?, current_timestamp::TIMESTAMP, ?, ?::JSON,
                (SELECT count(*) FROM {TABLE} s WHERE s.report_month = m.month)
            FROM (SELECT unnest(generate_series(?::DATE, ?::DATE, INTERVAL 1 MONTH))::DATE AS month) m
            """,
            [run_id, crm_rules.version(), rules_json, window.start, window.end],
        )
        stamp(c, TABLE, window, crm_rules.version(), run_id)

    return write_with_checks(con, write, CHECKS, window.start, window.end, window.keys, run_id)


def changes_by_month(con: Engine, run_id: str) -> dict[str, dict[str, int]]:
    """Per recomputed month of this run: customers whose status, tier, event or stage changed."""
    rows = con.execute(
        """
        SELECT strftime(report_month, '%Y-%m-%d'), changed_status, changed_tier, changed_event, changed_stage,
            changed_any, added, removed
        FROM reporting.snapshot_changes WHERE run_id = ?
        """,
        [run_id],
    ).fetchall()
    names = (
        "changed: status",
        "changed: tier",
        "changed: event",
        "changed: stage",
        "changed: any column",
        "changed: added",
        "changed: removed",
    )
    return {key: dict(zip(names, values)) for key, *values in rows}


@monthly_asset(
    "reporting",
    checks=CHECKS,
    deps=[customer_features, customer_lifecycle, customer_rfmt, enriched.customers],
    table=SNAPSHOT_TABLE,
)
def customer_snapshot(context: AssetExecutionContext, warehouse: Warehouse, crm_rules: CrmRules):
    """The monthly snapshot of every evaluated customer: features, status, tier, stage, event, scores.

    One row per customer entered by the month (anonymous customers excluded),
    with the customer's group, city and consent flags (never NULL). Each month
    computed is logged in ``reporting.snapshot_manifest`` with the rules used.
    """
    window = month_window(context)

    def work(con):
        outcomes = build_snapshot(con, window, crm_rules, context.run_id)
        breakdown_metadata(
            context,
            con,
            TABLE,
            window,
            {
                "status": (STATUSES, "activity_status"),
                "tier": (TIERS, "value_tier"),
                "stage": (STAGES, "lifecycle_stage"),
                "event": (EVENTS, "lifecycle_event"),
            },
            extra=changes_by_month(con, run_id=context.run_id),
        )
        return outcomes

    outcomes = yield from guarded(warehouse, work)
    yield MaterializeResult(
        metadata={"months": window.months, "rules_version": crm_rules.version()},
        check_results=check_results(outcomes),
    )


reporting_assets = [customer_snapshot]
