"""Helpers shared by the monthly partitioned assets: the run's months, idempotent
replacement of those months in one transaction, and per-month metadata.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date

from dagster import AssetExecutionContext, AssetKey, BackfillPolicy, MetadataValue, asset

from crm_assets.core.builds import NO_RULES, UPSTREAM, stamp_months
from crm_assets.core.months import add_months, key_to_date
from crm_assets.core.partitions import DECLARED, calendar_start_of
from crm_assets.core.quality import BlockingCheckError, check_results, check_specs, write_with_checks
from crm_assets.engines.base import Engine


@dataclass(frozen=True)
class MonthWindow:
    """The months of a run (one partition or a range: a backfill is one run)."""

    start: date
    end: date
    keys: tuple[str, ...]
    # the calendar's first month: rows of months before it (left by a calendar that started earlier) go with
    # every write; None (the plain build functions of tests) keeps them
    calendar_start: date | None = None
    # a Dagster run: a month written over a table it reads that is not current fails the write (builds.StaleInputs)
    # instead of being stamped stale
    strict: bool = False

    @property
    def months(self) -> int:
        return len(self.keys)


def month_window(context: AssetExecutionContext) -> MonthWindow:
    keys = tuple(context.partition_keys)
    return MonthWindow(key_to_date(keys[0]), key_to_date(keys[-1]), keys, calendar_start_of(context), strict=True)


def month_parts(
    con: Engine,
    window: MonthWindow,
    table: str,
    month_column: str = "report_month",
) -> list[tuple[date, date]]:
    """The window as consecutive ranges of months, each holding about the engine's ``rows_per_part`` rows of
    ``table`` (one range on an engine that spills by itself: its ``rows_per_part`` is None)."""
    per_part = con.rows_per_part
    if not per_part:
        return [(window.start, window.end)]
    counts = con.execute(
        f"SELECT {month_column}, count(*) FROM {table} WHERE {month_column} BETWEEN ? AND ? GROUP BY 1 ORDER BY 1",
        [window.start, window.end],
    ).fetchall()
    parts: list[tuple[date, date]] = []
    start, rows = window.start, 0
    for month, n in counts:
        if rows and rows + n > per_part:
            parts.append((start, add_months(month, -1)))
            start, rows = month, 0
        rows += n
    parts.append((start, window.end))
    return parts


@dataclass
class WriteResult:
    """Rows written for the window and the outcomes of the checks evaluated with them."""

    rows: int
    outcomes: list = field(default_factory=list)


def replace_months(
    con: Engine,
    table: str,
    month_column: str,
    window: MonthWindow,
    select_sql: str | Sequence[tuple[str, list]],
    params: list | None = None,
    checks: Sequence = (),
    run_id: str = "direct",
    rules_version: str = NO_RULES,
) -> WriteResult:
    """Delete the window's months of ``table`` and insert ``select_sql``, in one transaction.

    ``select_sql`` may also be a list of ``(select, params)`` inserted one
    after the other (a window computed in parts). A table of the layers
    (``builds.UPSTREAM``) stamps its months in the same transaction.

    The blocking ``checks`` are evaluated inside that transaction: when one
    fails, nothing is committed and ``BlockingCheckError`` is raised.
    """

    def write(c: Engine) -> None:
        c.execute(
            f"DELETE FROM {table} WHERE {month_column} BETWEEN ? AND ? OR {month_column} < ?",
            [window.start, window.end, window.calendar_start or date.min],
        )
        parts = [(select_sql, params)] if isinstance(select_sql, str) else select_sql
        for sql, sql_params in parts:
            c.execute(f"INSERT INTO {table} BY NAME {sql}", sql_params or [])
        if table in UPSTREAM:
            stamp(c, table, window, rules_version, run_id)

    outcomes = write_with_checks(con, write, checks, window.start, window.end, window.keys, run_id)
    rows = con.execute(
        f"SELECT count(*) FROM {table} WHERE {month_column} BETWEEN ? AND ?", [window.start, window.end]
    ).fetchone()[0]
    return WriteResult(rows, outcomes)


def stamp(con: Engine, layer: str, window: MonthWindow, rules_version: str, run_id: str) -> None:
    """Stamp the window's months of ``layer`` with what they were built from (``builds.stamp_months``)."""
    stamp_months(
        con, layer, window.start, window.end, window.calendar_start, rules_version, run_id, strict=window.strict
    )


def counts_by_month(
    con: Engine, table: str, month_column: str, window: MonthWindow, column: str
) -> dict[str, dict[str, int]]:
    """``{partition_key: {value: rows}}`` of ``column`` for the window (NULL counted as '(none)')."""
    return counts_by_month_of(con, table, month_column, window, [column])[column]


def counts_by_month_of(
    con: Engine, table: str, month_column: str, window: MonthWindow, columns: Sequence[str]
) -> dict[str, dict[str, dict[str, int]]]:
    """``{column: {partition_key: {value: rows}}}`` for each of ``columns``, in one scan (grouping sets)."""
    values = ", ".join(f"coalesce({c}::VARCHAR, '(none)') AS c{i}" for i, c in enumerate(columns))
    sets = ", ".join(f"(m, c{i})" for i in range(len(columns)))
    picks = ", ".join(f"c{i}, grouping(c{i})" for i in range(len(columns)))
    rows = con.execute(
        f"""
        SELECT strftime(m, '%Y-%m-%d'), {picks}, count(*)
        FROM (SELECT {month_column} AS m, {values} FROM {table} WHERE {month_column} BETWEEN ? AND ?)
        GROUP BY GROUPING SETS ({sets})
        """,
        [window.start, window.end],
    ).fetchall()
    result: dict[str, dict[str, dict[str, int]]] = {c: {k: {} for k in window.keys} for c in columns}
    for key, *cells, count in rows:
        for i, column in enumerate(columns):
            value, grouped_out = cells[2 * i], cells[2 * i + 1]
            if not grouped_out:
                result[column].setdefault(key, {})[value] = count
    return result


def breakdown_metadata(
    context: AssetExecutionContext,
    con: Engine,
    table: str,
    window: MonthWindow,
    breakdowns: Mapping[str, tuple[tuple[str, ...], str]],
    extra: Mapping[str, Mapping[str, float | int | str]] | None = None,
    month_column: str = "report_month",
) -> None:
    """Per-month counts of each ``label: (values, column)`` of ``table``, attached to each partition."""
    columns = list(dict.fromkeys(column for _, column in breakdowns.values()))
    counts = counts_by_month_of(con, table, month_column, window, columns)
    counted = {label: (values, counts[column]) for label, (values, column) in breakdowns.items()}
    first = next(iter(counted.values()))[1]
    rows = {key: sum(values.values()) for key, values in first.items()}
    add_month_metadata(context, window, rows, counted, extra)


def markdown_table(header: Iterable[str], rows: Iterable[Iterable]) -> str:
    header = list(header)
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def add_month_metadata(
    context: AssetExecutionContext,
    window: MonthWindow,
    rows_by_month: Mapping[str, int],
    breakdowns: Mapping[str, tuple[tuple[str, ...], Mapping[str, Mapping[str, int]]]],
    extra: Mapping[str, Mapping[str, float | int | str]] | None = None,
    asset_key: AssetKey | None = None,
) -> None:
    """Numeric metadata per partition (plotted across partitions by the UI) and a Markdown summary.

    ``breakdowns`` maps a label ("tier") to (the values to always report, counts by month).
    """
    for key in window.keys:
        metadata: dict = {"rows": rows_by_month.get(key, 0)}
        table_rows = []
        for label, (values, counts) in breakdowns.items():
            month_counts = counts.get(key, {})
            for value in values:
                metadata[f"{label}: {value}"] = month_counts.get(value, 0)
                table_rows.append((label, value, month_counts.get(value, 0)))
        for name, figure in ((extra or {}).get(key, {})).items():
            metadata[name] = figure
        if table_rows:
            metadata["summary"] = MetadataValue.md(markdown_table(("breakdown", "value", "customers"), table_rows))
        context.add_asset_metadata(metadata, partition_key=key, asset_key=asset_key)


def monthly_asset(
    layer: str, *, table=None, checks: Sequence = (), deps: Sequence = (), group: str | None = None, **kwargs
):
    """The decorator of a monthly table asset of ``layer``: the monthly partitions of the calendar, a single-run
    backfill policy (a range of months is one run), its checks declared, its upstream assets, and the column
    contract of the ``table`` it writes (``columns.Table``) as metadata. Its kind is the DuckDB engine's until
    the definitions load and show the kind of the setting's engine (``definitions.ENGINE_ASSETS``)."""
    return asset(
        key_prefix=layer,
        group_name=group or layer,
        kinds={"duckdb"},
        partitions_def=DECLARED,
        backfill_policy=BackfillPolicy.single_run(),
        deps=list(deps),
        check_specs=check_specs(list(checks)),
        metadata={**(table.metadata() if table is not None else {}), **kwargs.pop("metadata", {})},
        **kwargs,
    )


def guarded(warehouse, work):
    """Run ``work(con)`` on the warehouse's engine (``con``) and return its result (use with ``yield from``).

    A blocking check that fails inside the write (``BlockingCheckError``: nothing was committed) yields the
    results of every check of the asset, so the UI shows which one failed, and fails the step.
    """
    try:
        with warehouse.engine() as con:
            return work(con)
    except BlockingCheckError as exc:
        yield from check_results(exc.outcomes)
        raise exc.failure() from None
