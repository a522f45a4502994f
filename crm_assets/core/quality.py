"""Data-quality checks: definitions, evaluation, the quality record.

A check is a SQL query over the warehouse that returns the violations per
report month of a run (``month, violations, sample``), so it can be
evaluated on any range of months at once. ``ERROR`` checks are blocking:
they are evaluated inside the writing transaction, and a failure rolls the
months back, so the warehouse keeps its last good state and nothing
downstream runs. ``WARN`` checks only report. Every evaluation is appended to
``quality.check_results``; docs/data_quality.md lists every check.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import duckdb

from crm_assets.core.columns import Table, col, schema_ddl
from crm_assets.core.errors import CrmError

ERROR = "ERROR"
WARN = "WARN"

CHECK_RESULTS = Table(
    "quality.check_results",
    "Every evaluation of every check (docs/data_quality.md), append-only.",
    (
        col("run_id VARCHAR NOT NULL", "The Dagster run."),
        col("asset_key VARCHAR NOT NULL", "The asset checked (layer/table)."),
        col("check_name VARCHAR NOT NULL", "The check."),
        col("partition_key VARCHAR", "The month checked (blank for a whole-table check)."),
        col("severity VARCHAR NOT NULL", "ERROR (blocks the write) or WARN."),
        col("passed BOOLEAN NOT NULL", "No violation."),
        col("violations BIGINT NOT NULL", "Rows (or keys) violating the check."),
        col("sample VARCHAR", "A few of the violations."),
        col("checked_at TIMESTAMP NOT NULL", "When."),
    ),
    "check, month and run",
)
QUALITY_DDL = schema_ddl("quality", (CHECK_RESULTS,))


@dataclass(frozen=True)
class Check:
    """One check of one asset.

    ``sql`` returns rows ``(month DATE, violations BIGINT, sample VARCHAR)``
    with parameters ``$start`` and ``$end`` (the run's first and last month);
    an unpartitioned check returns one row with a NULL month.
    """

    asset: str
    name: str
    severity: str
    description: str
    sql: str | None  # None: evaluated by the loader in Python (raw file checks)
    partitioned: bool = True


@dataclass
class Outcome:
    check: Check
    by_month: dict[str | None, tuple[int, str | None]] = field(default_factory=dict)

    @property
    def violations(self) -> int:
        return sum(v for v, _ in self.by_month.values())

    @property
    def passed(self) -> bool:
        return self.violations == 0

    @property
    def failing_months(self) -> list[str]:
        return sorted(k for k, (v, _) in self.by_month.items() if v and k)

    def sample(self) -> str:
        samples = [s for _, s in self.by_month.values() if s]
        return "; ".join(samples)[:500]

    def summary(self) -> str:
        where = f" in {', '.join(m[:7] for m in self.failing_months[:6])}" if self.failing_months else ""
        more = " ..." if len(self.failing_months) > 6 else ""
        example = f" (e.g. {self.sample()[:160]})" if self.sample() else ""
        return f"{self.check.asset} check {self.check.name}: {self.violations} violation(s){where}{more}{example}"


class BlockingCheckError(CrmError):
    """A blocking check failed; the months were rolled back."""

    def __init__(self, outcomes: list[Outcome]):
        self.outcomes = outcomes
        failed = [o for o in outcomes if o.check.severity == ERROR and not o.passed]
        super().__init__("; ".join(o.summary() for o in failed))

    def failure(self):
        """The Dagster Failure that stops the step (downstream assets do not run)."""
        from dagster import Failure

        return Failure(description=str(self), allow_retries=False)


def evaluate(
    con: duckdb.DuckDBPyConnection, checks: Iterable[Check], start: dt.date, end: dt.date, keys: Sequence[str] = ()
) -> list[Outcome]:
    """Evaluate ``checks`` for the months ``start``..``end``; every month gets a result, 0 when clean.

    An engine whose every query is a job with a fixed cost (Spark: ``checks_in_one_query``) gets the checks
    as one query, each one's rows tagged with its position."""
    checks = [check for check in checks if check.sql is not None]
    if getattr(con, "checks_in_one_query", False) and len(checks) > 1:
        union = " UNION ALL ".join(f"SELECT {i} AS check_index, * FROM ({c.sql})" for i, c in enumerate(checks))
        params = {k: v for k, v in (("start", start), ("end", end)) if f"${k}" in union}
        rows = con.execute(union, params).fetchall()
        results = [[row[1:] for row in rows if row[0] == i] for i in range(len(checks))]
    else:
        results = [
            con.execute(c.sql, {k: v for k, v in (("start", start), ("end", end)) if f"${k}" in c.sql}).fetchall()
            for c in checks
        ]
    outcomes = []
    for check, rows in zip(checks, results):
        outcome = Outcome(check)
        if check.partitioned:
            for key in keys:
                outcome.by_month[key] = (0, None)
        else:
            outcome.by_month[None] = (0, None)
        for month, violations, sample in rows:
            key = month.strftime("%Y-%m-%d") if isinstance(month, dt.date) and check.partitioned else None
            if violations:
                outcome.by_month[key] = (int(violations), sample)
        outcomes.append(outcome)
    return outcomes


def record(con: duckdb.DuckDBPyConnection, run_id: str, outcomes: Iterable[Outcome]) -> None:
    """Append the outcomes to ``quality.check_results`` (its own small transaction)."""
    rows = [
        (run_id, o.check.asset, o.check.name, key, o.check.severity, violations == 0, violations, sample)
        for o in outcomes
        for key, (violations, sample) in o.by_month.items()
    ]
    if not rows:
        return
    con.execute(QUALITY_DDL)
    if hasattr(con, "insert_rows"):  # the Spark engine appends a DataFrame of the rows
        checked_at = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
        con.insert_rows(CHECK_RESULTS.name, [(*row, checked_at) for row in rows])
        return
    columns = [list(c) for c in zip(*rows)]
    # one statement over parallel lists (a few thousand rows for a long backfill): no row-by-row insert
    con.execute(
        """
        INSERT INTO quality.check_results
        SELECT unnest($1::VARCHAR[]), unnest($2::VARCHAR[]), unnest($3::VARCHAR[]), unnest($4::VARCHAR[]),
               unnest($5::VARCHAR[]), unnest($6::BOOLEAN[]), unnest($7::BIGINT[]), unnest($8::VARCHAR[]),
               current_timestamp::TIMESTAMP
        """,
        columns,
    )


def write_with_checks(
    con: duckdb.DuckDBPyConnection,
    write: callable,
    checks: Sequence[Check],
    start: dt.date,
    end: dt.date,
    keys: Sequence[str],
    run_id: str,
) -> list[Outcome]:
    """Run ``write(con)`` and the blocking checks in one transaction; commit only when they pass.

    Warning checks run after the commit. Raises BlockingCheckError (after
    rolling back and recording the outcomes) when a blocking check fails.
    """
    blocking = [c for c in checks if c.severity == ERROR]
    warnings = [c for c in checks if c.severity != ERROR]
    con.execute(QUALITY_DDL)
    con.execute("BEGIN TRANSACTION")
    try:
        write(con)
        outcomes = evaluate(con, blocking, start, end, keys)
        if all(o.passed for o in outcomes):
            con.execute("COMMIT")
        else:
            con.execute("ROLLBACK")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    if not all(o.passed for o in outcomes):
        record(con, run_id, outcomes)
        raise BlockingCheckError(outcomes)
    outcomes += evaluate(con, warnings, start, end, keys)
    record(con, run_id, outcomes)
    return outcomes


# --- check builders: one definition per kind of check -------------------------------------------------


def _months_cte(table_alias: str = "") -> str:
    return "months AS (SELECT unnest(generate_series($start::DATE, $end::DATE, INTERVAL 1 MONTH))::DATE AS month)"


def unique_customer_month(asset: str, table: str) -> Check:
    return Check(
        asset,
        "unique_customer_month",
        ERROR,
        "Exactly one row per customer and report month.",
        f"""
        SELECT report_month, count(*), string_agg(DISTINCT customer_id, ', ' ORDER BY customer_id)[:200] FROM (
            SELECT report_month, customer_id FROM {table}
            WHERE report_month BETWEEN $start AND $end
            GROUP BY ALL HAVING count(*) > 1
        ) GROUP BY report_month
        """,
    )


def accepted_values(asset: str, table: str, column: str, values: Sequence, nullable: bool) -> Check:
    literal = ", ".join(repr(v) if isinstance(v, int) else "'" + str(v).replace("'", "''") + "'" for v in values)
    null_rule = "" if nullable else f" OR {column} IS NULL"
    return Check(
        asset,
        f"accepted_values_{column}",
        ERROR,
        f"`{column}` is one of {', '.join(map(str, values))}{' or NULL' if nullable else ''}.",
        f"""
        SELECT report_month, count(*), string_agg(DISTINCT coalesce({column}::VARCHAR, 'NULL'), ', ' ORDER BY coalesce({column}::VARCHAR, 'NULL'))[:200]
        FROM {table}
        WHERE report_month BETWEEN $start AND $end AND ({column} NOT IN ({literal}){null_rule})
        GROUP BY report_month
        """,
    )


def row_rule(asset: str, name: str, table: str, violation: str, description: str, severity: str = ERROR) -> Check:
    """Rows of the window's months for which the SQL condition ``violation`` holds."""
    return Check(
        asset,
        name,
        severity,
        description,
        f"""
        SELECT report_month, count(*), string_agg(customer_id, ', ' ORDER BY customer_id)[:200]
        FROM (SELECT * FROM {table} WHERE report_month BETWEEN $start AND $end AND ({violation}))
        GROUP BY report_month
        """,
    )


def previous_month_rule(
    asset: str, name: str, table: str, violation: str, description: str, outer: bool = True
) -> Check:
    """Rows ``cur`` joined to the same customer's row ``prev`` of M-1, where ``violation`` holds.

    ``cur`` is every month of the window and the month after it: the run's
    first month is compared with the month before it, and the month after the
    run (when built, on the history it had then) with the run's last month, so
    a month left on older history is caught. Months whose M-1 is not in the
    table (the first month built) are not checked.
    """
    join = "LEFT JOIN" if outer else "JOIN"
    return Check(
        asset,
        name,
        ERROR,
        description,
        f"""
        WITH built AS (SELECT DISTINCT report_month FROM {table})
        SELECT cur.report_month, count(*), string_agg(cur.customer_id, ', ' ORDER BY cur.customer_id)[:200]
        FROM {table} cur
        {join} {table} prev ON prev.customer_id = cur.customer_id
            AND prev.report_month = cur.report_month - INTERVAL 1 MONTH
        WHERE cur.report_month BETWEEN $start AND $end::DATE + INTERVAL 1 MONTH
          AND cur.report_month - INTERVAL 1 MONTH IN (SELECT report_month FROM built)
          AND ({violation})
        GROUP BY cur.report_month
        """,
    )


def same_row_count(asset: str, table: str, reference_table: str, reference_label: str) -> Check:
    return Check(
        asset,
        "row_count_matches",
        ERROR,
        f"As many rows per month as {reference_label}.",
        f"""
        WITH {_months_cte()},
        a AS (SELECT report_month AS month, count(*) AS n FROM {table} WHERE report_month BETWEEN $start AND $end GROUP BY 1),
        b AS (SELECT report_month AS month, count(*) AS n FROM {reference_table} WHERE report_month BETWEEN $start AND $end GROUP BY 1)
        SELECT m.month, abs(coalesce(a.n, 0) - coalesce(b.n, 0)),
            'rows ' || coalesce(a.n, 0) || ' vs ' || coalesce(b.n, 0)
        FROM months m LEFT JOIN a USING (month) LEFT JOIN b USING (month)
        WHERE coalesce(a.n, 0) <> coalesce(b.n, 0)
        """,
    )


def entered_customers_count(asset: str, table: str) -> Check:
    """Rows per month = evaluated customers entered by M, counted independently from the enriched layer."""
    return Check(
        asset,
        "row_count_matches_entered_customers",
        ERROR,
        "Rows per month = evaluated (non-anonymous) customers entered by the month's end "
        "(created by then, a line by then, or no created date).",
        f"""
        WITH {_months_cte()},
        first_line AS (SELECT customer_id, min(invoice_date) AS d FROM enriched.transactions
                       WHERE is_evaluated GROUP BY 1),
        expected AS (
            SELECT m.month, count(*) AS n
            FROM enriched.customers c CROSS JOIN months m LEFT JOIN first_line f USING (customer_id)
            WHERE NOT c.is_anonymous
              AND (c.created_date IS NULL OR c.created_date <= last_day(m.month) OR f.d <= last_day(m.month))
            GROUP BY 1
        ),
        got AS (SELECT report_month AS month, count(*) AS n FROM {table} WHERE report_month BETWEEN $start AND $end GROUP BY 1)
        SELECT m.month, abs(coalesce(g.n, 0) - coalesce(e.n, 0)),
            'rows ' || coalesce(g.n, 0) || ', expected ' || coalesce(e.n, 0)
        FROM months m LEFT JOIN expected e USING (month) LEFT JOIN got g USING (month)
        WHERE coalesce(g.n, 0) <> coalesce(e.n, 0)
        """,
    )


def m1_reconciliation(asset: str, table: str) -> Check:
    """Sum of m1 of the month = units of the qualifying lines of evaluated customers dated in the month."""
    return Check(
        asset,
        "m1_reconciles_with_lines",
        ERROR,
        "Sum of `m1` = units of qualifying lines of evaluated customers dated in the month.",
        f"""
        WITH {_months_cte()},
        lines AS (SELECT invoice_month AS month, sum(units) AS u FROM enriched.transactions
                  WHERE is_evaluated AND is_qualifying AND invoice_month BETWEEN $start AND $end GROUP BY 1),
        snap AS (SELECT report_month AS month, sum(m1) AS u FROM {table} WHERE report_month BETWEEN $start AND $end GROUP BY 1)
        SELECT m.month, 1, 'sum m1 ' || coalesce(s.u, 0) || ' vs lines ' || coalesce(l.u, 0)
        FROM months m LEFT JOIN lines l USING (month) LEFT JOIN snap s USING (month)
        WHERE abs(coalesce(s.u, 0)::DOUBLE - coalesce(l.u, 0)::DOUBLE) > 1e-6 * greatest(1, abs(coalesce(l.u, 0)::DOUBLE))
        """,
    )


MONOTONIC = "NOT (0 <= m1 AND m1 <= m6 AND m6 <= m12 AND m12 <= m13 AND m13 <= m24 AND m24 <= m25 AND m25 <= m_total)"
CROSS_MONTH = {
    "lost_follows_active": (
        "cur.lifecycle_event = 'Lost' AND (cur.activity_status <> 'Not Active' OR prev.activity_status IS DISTINCT FROM 'Active')",
        "`Lost` in M implies Active in M-1 and Not Active in M.",
    ),
    "reactivated_follows_not_active": (
        "cur.lifecycle_event = 'Reactivated' AND (cur.activity_status <> 'Active' OR prev.activity_status IS DISTINCT FROM 'Not Active')",
        "`Reactivated` in M implies Not Active in M-1 and Active in M (and not New).",
    ),
    "new_follows_prospect": (
        "cur.lifecycle_event = 'New' AND prev.customer_id IS NOT NULL AND prev.lifecycle_stage <> 'Prospect'",
        "`New` in M implies stage Prospect in M-1, or not yet entered.",
    ),
}


def cross_month_checks(asset: str, table: str) -> list[Check]:
    return [previous_month_rule(asset, name, table, rule, text) for name, (rule, text) in CROSS_MONTH.items()]


def m_total_never_decreases(asset: str, table: str) -> Check:
    return previous_month_rule(
        asset,
        "m_total_never_decreases",
        table,
        "cur.m_total < prev.m_total",
        "`m_total` never decreases from M-1 to M.",
        outer=False,
    )


def lifecycle_value_checks(asset: str, table: str) -> list[Check]:
    """Accepted values of activity status, lifecycle stage and lifecycle event."""
    from crm_assets.core.rules import EVENTS, STAGES, STATUSES

    return [
        accepted_values(asset, table, "activity_status", STATUSES, nullable=False),
        accepted_values(asset, table, "lifecycle_stage", STAGES, nullable=False),
        accepted_values(asset, table, "lifecycle_event", EVENTS, nullable=True),
    ]


def rfmt_value_checks(asset: str, table: str, with_status: str) -> list[Check]:
    """Accepted tier and score values, and their NULL rules (``with_status`` adds activity_status to ``table``)."""
    from crm_assets.core.rules import SCORE_VALUES, SCORES, TIERS

    return [
        accepted_values(asset, table, "value_tier", TIERS, nullable=True),
        accepted_values(asset, table, "prev_value_tier", TIERS, nullable=True),
        *(accepted_values(asset, table, score, SCORE_VALUES, nullable=True) for score in SCORES),
        row_rule(
            asset,
            "value_tier_null_exactly_when_not_active",
            with_status,
            "(value_tier IS NULL) <> (activity_status = 'Not Active')",
            "`value_tier` is NULL exactly when the customer is Not Active.",
        ),
        row_rule(
            asset,
            "scores_null_exactly_when_not_active",
            with_status,
            " OR ".join(f"(({s} IS NULL) <> (activity_status = 'Not Active'))" for s in SCORES),
            "r, f, m and t scores are NULL exactly when the customer is Not Active.",
        ),
    ]


def describe(checks: Iterable[Check]) -> list[tuple[str, str, str, str]]:
    """(asset, check, severity, description) of each check, for docs and tests."""
    return [(c.asset, c.name, c.severity, c.description) for c in checks]


# --- Dagster glue ---------------------------------------------------------------------------------------


def check_specs(checks: Iterable[Check]):
    """The AssetCheckSpecs of an asset's checks: ERROR checks block downstream assets."""
    from dagster import AssetCheckSpec, AssetKey

    return [
        AssetCheckSpec(
            c.name, asset=AssetKey(c.asset.split("/")), blocking=c.severity == ERROR, description=c.description
        )
        for c in checks
    ]


def check_results(outcomes: Iterable[Outcome]):
    """One AssetCheckResult per outcome, with the violation count, failing months and a sample."""
    from dagster import AssetCheckResult, AssetCheckSeverity, AssetKey, MetadataValue

    results = []
    for o in outcomes:
        metadata = {"violations": o.violations}
        if o.check.partitioned:
            metadata["months checked"] = len(o.by_month)
            metadata["failing months"] = ", ".join(m[:7] for m in o.failing_months) or "none"
        if o.sample():
            metadata["sample"] = MetadataValue.text(o.sample())
        results.append(
            AssetCheckResult(
                asset_key=AssetKey(o.check.asset.split("/")),
                check_name=o.check.name,
                passed=o.passed,
                severity=AssetCheckSeverity.ERROR if o.check.severity == ERROR else AssetCheckSeverity.WARN,
                metadata=metadata,
                description=o.check.description,
            )
        )
    return results
