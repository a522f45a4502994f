"""Data-quality checks: definitions, evaluation, the quality record.

A check is a SQL query over the warehouse that returns the violations per
report month of a run, so it can be evaluated on any range of months at once.
Every check declares its unit, what its count counts (``UNITS``: lines,
customers, customer-months, ...), and its samples are whole items (an id, a
value, a file line), each with its month. ``ERROR`` checks are blocking:
they are evaluated inside the writing transaction, and a failure rolls the
months back, so the warehouse keeps its last good state and nothing
downstream runs. ``WARN`` checks only report. Every evaluation is appended to
``quality.check_results``; docs/data_quality.md lists every check and its unit.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from dagster import AssetCheckResult, AssetCheckSeverity, AssetCheckSpec, AssetKey, Failure, MetadataValue

from crm_assets.core.columns import Table, col, schema_ddl
from crm_assets.core.errors import CrmError
from crm_assets.core.rules import EVENTS, SCORE_VALUES, SCORES, STAGES, STATUSES, TIERS
from crm_assets.engines.base import Engine

ERROR = "ERROR"
WARN = "WARN"

# What a check's count counts: the unit, and what one of it is (docs/data_quality.md lists them).
UNITS = {
    "lines": "transaction lines (invoice lines of the transactions files, as loaded)",
    "file lines": "lines of an input file that could not be loaded (raw.rejected_rows)",
    "files": "input files (a load stops at the first file it refuses)",
    "runs": "runs (a run refused before anything was written)",
    "products": "products of the product master",
    "customers": "customers (of the customer master, or customer ids the master lacks)",
    "customer-months": "one customer in one report month (a row of a customer-month table); over a run, "
    "summed over its months, so one customer in 12 months is 12",
    "rows": "rows of a customer-month table more or fewer than expected, summed over the months",
    "months": "report months",
}
SAMPLE_ITEMS = 10  # items of a month's sample (the first ones in order), taken in SQL
SAMPLE_CHARS = 500  # of the sample of a run's outcome (Dagster metadata), whole items only
SUMMARY_SAMPLE_CHARS = 160  # of the sample in a one-line summary
ITEM_SEPARATOR = "\x1f"  # between the items of a sample as the SQL returns it: chr(31), in no id or value

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
        col("violations BIGINT NOT NULL", "How many violations, counted in `unit`."),
        col("sample VARCHAR", "The first violations: whole ids or values, then how many more."),
        col("checked_at TIMESTAMP NOT NULL", "When."),
        col("unit VARCHAR", "What `violations` counts: lines, customers, customer-months, ... (docs/data_quality.md)."),
    ),
    "check, month and run",
)
QUALITY_DDL = schema_ddl("quality", (CHECK_RESULTS,))


def quantity(n: int, unit: str) -> str:
    """``3 customers``, ``1 customer-month``: a count with its unit (every unit is a regular plural)."""
    return f"{n:,} {unit[:-1] if n == 1 and unit.endswith('s') else unit}"


def sample_text(items: Sequence[str], total: int, limit: int | None = None) -> str | None:
    """``items`` joined, whole, then ``and N more`` for the ``total - shown`` items not shown.

    With a ``limit``, items are dropped (never cut) from the first that would pass ``limit`` characters; the
    first item is shown whole whatever its length."""
    if not items:
        return None
    separator = "; " if any(", " in item for item in items) else ", "
    shown: list[str] = []
    length = 0
    for item in items:
        if shown and limit is not None and length + len(separator) + len(item) > limit:
            break
        length += (len(separator) if shown else 0) + len(item)
        shown.append(item)
    more = max(total, len(items)) - len(shown)
    return separator.join(shown) + (f" and {more:,} more" if more else "")


@dataclass(frozen=True)
class Check:
    """One check of one asset.

    ``sql`` returns rows ``(month DATE, violations BIGINT, sample VARCHAR, items BIGINT, distinct BIGINT)``
    with parameters ``$start`` and ``$end`` (the run's first and last month): per month with violations,
    how many (in ``unit``), the first ``SAMPLE_ITEMS`` items joined by ``ITEM_SEPARATOR``, how many items
    there are, and how many distinct ``distinct`` (customers) they are of. An unpartitioned check returns
    one row with a NULL month; a per-month check with a ``distinct`` unit also returns the run's total as a
    row with a NULL month (its distinct count is over the run). ``tally`` writes this from the violating rows.
    A check may return the first three columns only: its sample is then one item, and it counts no distinct.
    """

    asset: str
    name: str
    severity: str
    description: str
    sql: str | None  # None: evaluated by the loader in Python (raw file checks)
    partitioned: bool = True
    unit: str = field(kw_only=True)  # what the count counts: one of UNITS
    distinct: str | None = field(default=None, kw_only=True)  # the unit of the distinct count beside it

    def __post_init__(self):
        for what, value in (("unit", self.unit), ("distinct", self.distinct)):
            if value is not None and value not in UNITS:
                raise ValueError(
                    f"check {self.asset} {self.name}: {what} {value!r} is none of {', '.join(UNITS)} (quality.UNITS)"
                )

    @property
    def counts(self) -> str:
        """What the count counts, in words (docs/data_quality.md): ``customer-months, with distinct customers``."""
        return self.unit + (f", with distinct {self.distinct}" if self.distinct else "")


@dataclass
class Outcome:
    check: Check
    # per month (None: the whole table): violations, and the month's sample as recorded
    by_month: dict[str | None, tuple[int, str | None]] = field(default_factory=dict)
    # per month: the sample's items, whole, and how many items there are (shown or not)
    items: dict[str | None, tuple[tuple[str, ...], int]] = field(default_factory=dict)
    distinct: int | None = None  # distinct check.distinct (customers) over the run; None: not counted

    @property
    def violations(self) -> int:
        return sum(v for v, _ in self.by_month.values())

    @property
    def passed(self) -> bool:
        return self.violations == 0

    @property
    def failing_months(self) -> list[str]:
        return sorted(k for k, (v, _) in self.by_month.items() if v and k)

    def count(self) -> str:
        """The count in its unit: ``73 customer-months``, or ``3 customers (73 customer-months)``."""
        counted = quantity(self.violations, self.check.unit)
        if self.check.distinct and self.distinct:
            return f"{quantity(self.distinct, self.check.distinct)} ({counted})"
        return counted

    def sample_items(self) -> tuple[list[str], int]:
        """The items of every month's sample, whole, in month order, each naming its month in a per-month
        check (``C000123 (2024-03)``); and how many items there are in all."""
        items: list[str] = []
        total = 0
        for key in sorted(self.by_month, key=lambda k: k or ""):
            _, text = self.by_month[key]
            shown, count = self.items.get(key) or (((text,), 1) if text else ((), 0))
            tag = f" ({key[:7]})" if self.check.partitioned and key else ""
            items += [item + tag for item in shown]
            total += count
        return items, total

    def sample(self, limit: int = SAMPLE_CHARS) -> str:
        """Whole items of the sample up to about ``limit`` characters, then ``and N more``; blank: none."""
        return sample_text(*self.sample_items(), limit=limit) or ""

    def summary(self) -> str:
        where = f" in {', '.join(m[:7] for m in self.failing_months[:6])}" if self.failing_months else ""
        more = " ..." if len(self.failing_months) > 6 else ""
        sample = self.sample(SUMMARY_SAMPLE_CHARS)
        example = f" (e.g. {sample})" if sample else ""
        return f"{self.check.asset} check {self.check.name}: {self.count()}{where}{more}{example}"


class BlockingCheckError(CrmError):
    """A blocking check failed; the months were rolled back."""

    def __init__(self, outcomes: list[Outcome]):
        self.outcomes = outcomes
        failed = [o for o in outcomes if o.check.severity == ERROR and not o.passed]
        super().__init__("; ".join(o.summary() for o in failed))

    def failure(self):
        """The Dagster Failure that stops the step (downstream assets do not run)."""
        return Failure(description=str(self), allow_retries=False)


def evaluate(
    con: Engine, checks: Iterable[Check], start: dt.date, end: dt.date, keys: Sequence[str] = ()
) -> list[Outcome]:
    """Evaluate ``checks`` for the months ``start``..``end``; every month gets a result, 0 when clean.

    An engine whose every query is a job with a fixed cost (Spark: ``checks_in_one_query``) gets the checks
    as one query, each one's rows tagged with its position."""
    evaluated = [(check, check.sql) for check in checks if check.sql is not None]
    checks = [check for check, _ in evaluated]
    if con.checks_in_one_query and len(checks) > 1:
        union = " UNION ALL ".join(
            f"SELECT {i} AS check_index, *{_missing_columns(sql)} FROM ({sql})" for i, (_, sql) in enumerate(evaluated)
        )
        params = {k: v for k, v in (("start", start), ("end", end)) if f"${k}" in union}
        rows = con.execute(union, params).fetchall()
        results = [[row[1:] for row in rows if row[0] == i] for i in range(len(checks))]
    else:
        results = [
            con.execute(sql, {k: v for k, v in (("start", start), ("end", end)) if f"${k}" in sql}).fetchall()
            for _, sql in evaluated
        ]
    outcomes = []
    for check, rows in zip(checks, results):
        outcome = Outcome(check, distinct=0 if check.distinct else None)
        if check.partitioned:
            for month_key in keys:
                outcome.by_month[month_key] = (0, None)
        else:
            outcome.by_month[None] = (0, None)
        for row in rows:
            month, violations, sample, items, distinct = (*row, None, None)[:5]
            if not violations:
                continue
            if check.distinct and distinct is not None and (month is None or not check.partitioned):
                outcome.distinct = int(distinct)  # the run's total (or the whole table's)
            if month is None and check.partitioned:
                continue
            key = month.strftime("%Y-%m-%d") if isinstance(month, dt.date) and check.partitioned else None
            shown = tuple(str(sample).split(ITEM_SEPARATOR)) if sample else ()
            count = max(int(items or 0), len(shown))
            outcome.items[key] = (shown, count)
            outcome.by_month[key] = (int(violations), sample_text(shown, count))
        outcomes.append(outcome)
    return outcomes


def _missing_columns(sql: str) -> str:
    """``, NULL, NULL`` for a check's SQL that returns the first three columns only (so that the checks' rows
    can be one UNION), else blank."""
    import sqlglot  # noqa: PLC0415  (SQLGlot is optional: the spark extra)

    statement = sqlglot.parse_one(sql, read="duckdb")
    return ", NULL, NULL" if isinstance(statement, sqlglot.exp.Query) and len(statement.selects) == 3 else ""


RECORDED = (*CHECK_RESULTS.names()[:8], "unit")  # the columns record() fills (checked_at: the time of the insert)


def record(con: Engine, run_id: str, outcomes: Iterable[Outcome]) -> None:
    """Append the outcomes to ``quality.check_results`` (its own small transaction)."""
    rows = [
        (run_id, o.check.asset, o.check.name, key, o.check.severity, violations == 0, violations, sample, o.check.unit)
        for o in outcomes
        for key, (violations, sample) in o.by_month.items()
    ]
    if not rows:
        return
    con.execute(QUALITY_DDL)
    # by name, as a warehouse upgraded in place may have its columns in another order; the time of the record
    # as an instant, which each engine writes as its TIMESTAMP column takes it
    checked_at = dt.datetime.now(dt.timezone.utc)
    con.insert_rows(CHECK_RESULTS.name, (*RECORDED, "checked_at"), [(*row, checked_at) for row in rows])


def write_with_checks(
    con: Engine,
    write: Callable[[Engine], None],
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


def tally(violating: str, partitioned: bool = True, count: str = "count(*)", distinct: str | None = None) -> str:
    """A check's SQL (see ``Check``) from ``violating``: a query of its violating rows, with the columns
    ``month`` (a per-month check), ``item`` (the text a sample shows of the row: an id, a value, a file line)
    and those ``count`` (the violations, in the check's unit) and ``distinct`` (a column) read.

    The sample is the first ``SAMPLE_ITEMS`` distinct items of each month, in order, taken in SQL; with a
    ``distinct`` column a per-month check also returns the run's total (GROUPING SETS: one pass over the
    violating rows, which are none when the check passes)."""
    shown = f"CASE WHEN sample_rank <= {SAMPLE_ITEMS} THEN item END"
    columns = [
        "month" if partitioned else "NULL::DATE",
        f"{count}",
        f"string_agg(DISTINCT {shown}, chr(31) ORDER BY {shown})",
        "count(DISTINCT item)",
        f"count(DISTINCT {distinct})" if distinct else "NULL::BIGINT",
    ]
    rank = f"dense_rank() OVER ({'PARTITION BY month ' if partitioned else ''}ORDER BY item) AS sample_rank"
    group = ("GROUP BY GROUPING SETS ((month), ())" if distinct else "GROUP BY month") if partitioned else ""
    return f"SELECT {', '.join(columns)} FROM (SELECT *, {rank} FROM ({violating}) violating) ranked {group}"


def _months_cte(table_alias: str = "") -> str:
    return "months AS (SELECT unnest(generate_series($start::DATE, $end::DATE, INTERVAL 1 MONTH))::DATE AS month)"


def customer_month_check(asset: str, name: str, violating: str, description: str, severity: str = ERROR) -> Check:
    """A check of a customer-month table: ``violating`` selects ``month``, ``customer_id`` and ``item`` of the
    violating rows; the count is in customer-months, with the distinct customers of the run beside it."""
    return Check(
        asset,
        name,
        severity,
        description,
        tally(violating, distinct="customer_id"),
        unit="customer-months",
        distinct="customers",
    )


def unique_customer_month(asset: str, table: str) -> Check:
    return customer_month_check(
        asset,
        "unique_customer_month",
        f"""
        SELECT report_month AS month, customer_id, customer_id AS item FROM {table}
        WHERE report_month BETWEEN $start AND $end
        GROUP BY report_month, customer_id HAVING count(*) > 1
        """,
        "Exactly one row per customer and report month.",
    )


def accepted_values(asset: str, table: str, column: str, values: Sequence, nullable: bool) -> Check:
    literal = ", ".join(repr(v) if isinstance(v, int) else "'" + str(v).replace("'", "''") + "'" for v in values)
    null_rule = "" if nullable else f" OR {column} IS NULL"
    return customer_month_check(
        asset,
        f"accepted_values_{column}",
        f"""
        SELECT report_month AS month, customer_id, coalesce({column}::VARCHAR, 'NULL') AS item FROM {table}
        WHERE report_month BETWEEN $start AND $end AND ({column} NOT IN ({literal}){null_rule})
        """,
        f"`{column}` is one of {', '.join(map(str, values))}{' or NULL' if nullable else ''}.",
    )


def row_rule(asset: str, name: str, table: str, violation: str, description: str, severity: str = ERROR) -> Check:
    """Rows of the window's months for which the SQL condition ``violation`` holds (customer-months)."""
    return customer_month_check(
        asset,
        name,
        f"""
        SELECT report_month AS month, customer_id, customer_id AS item
        FROM (SELECT * FROM {table} WHERE report_month BETWEEN $start AND $end AND ({violation}))
        """,
        description,
        severity,
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
    return customer_month_check(
        asset,
        name,
        f"""
        SELECT cur.report_month AS month, cur.customer_id AS customer_id, cur.customer_id AS item
        FROM {table} cur
        {join} {table} prev ON prev.customer_id = cur.customer_id
            AND prev.report_month = cur.report_month - INTERVAL 1 MONTH
        WHERE cur.report_month BETWEEN $start AND $end::DATE + INTERVAL 1 MONTH
          AND cur.report_month - INTERVAL 1 MONTH IN (SELECT DISTINCT report_month FROM {table})
          AND ({violation})
        """,
        description,
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
            'rows ' || coalesce(a.n, 0) || ' vs ' || coalesce(b.n, 0), 1, NULL::BIGINT
        FROM months m LEFT JOIN a USING (month) LEFT JOIN b USING (month)
        WHERE coalesce(a.n, 0) <> coalesce(b.n, 0)
        """,
        unit="rows",
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
            'rows ' || coalesce(g.n, 0) || ', expected ' || coalesce(e.n, 0), 1, NULL::BIGINT
        FROM months m LEFT JOIN expected e USING (month) LEFT JOIN got g USING (month)
        WHERE coalesce(g.n, 0) <> coalesce(e.n, 0)
        """,
        unit="rows",
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
        SELECT m.month, 1, 'sum m1 ' || coalesce(s.u, 0) || ' vs lines ' || coalesce(l.u, 0), 1, NULL::BIGINT
        FROM months m LEFT JOIN lines l USING (month) LEFT JOIN snap s USING (month)
        WHERE abs(coalesce(s.u, 0)::DOUBLE - coalesce(l.u, 0)::DOUBLE) > 1e-6 * greatest(1, abs(coalesce(l.u, 0)::DOUBLE))
        """,
        unit="months",
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
    return [
        accepted_values(asset, table, "activity_status", STATUSES, nullable=False),
        accepted_values(asset, table, "lifecycle_stage", STAGES, nullable=False),
        accepted_values(asset, table, "lifecycle_event", EVENTS, nullable=True),
    ]


def rfmt_value_checks(asset: str, table: str, with_status: str) -> list[Check]:
    """Accepted tier and score values, and their NULL rules (``with_status`` adds activity_status to ``table``)."""
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


def describe(checks: Iterable[Check]) -> list[tuple[str, str, str, str, str]]:
    """(asset, check, severity, description, what the count counts) of each check, for docs and tests."""
    return [(c.asset, c.name, c.severity, c.description, c.counts) for c in checks]


# --- Dagster glue ---------------------------------------------------------------------------------------


def check_specs(checks: Iterable[Check]):
    """The AssetCheckSpecs of an asset's checks: ERROR checks block downstream assets; each names its unit."""
    return [
        AssetCheckSpec(
            c.name,
            asset=AssetKey(c.asset.split("/")),
            blocking=c.severity == ERROR,
            description=c.description,
            metadata={"unit": c.counts},
        )
        for c in checks
    ]


def check_results(outcomes: Iterable[Outcome]):
    """One AssetCheckResult per outcome: the violation count and its unit (numbers stay numbers), the
    distinct customers where counted, the failing months and a sample of whole items."""
    results = []
    for o in outcomes:
        metadata: dict[str, Any] = {"violations": o.violations, "unit": o.check.unit}
        if o.check.distinct:
            metadata[o.check.distinct] = o.distinct or 0
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
                description=f"{o.count()}: {o.check.description}",
            )
        )
    return results
