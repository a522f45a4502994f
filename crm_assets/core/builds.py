"""What every month of the warehouse was built from, and the one decision of which months are stale.

The invariant: after any run that succeeds, every month the warehouse holds
equals a clean build of the files as they are. It holds by construction:

- ``raw.month_sources`` says, for the months where something starts, a digest
  of everything the months from then on are built from: the input lines of
  every month up to it (count and content hash, the same digest the file
  profiles keep), and the master rows that reach those months (a customer from
  the month it is created or first bought, whichever comes first, or from the
  start when it has no creation date; a product from the month it is first
  sold). Every raw load rewrites it in the transaction of its own write, so it
  always describes the raw tables as they are. A change of one master row
  changes the digest only of the months that row reaches.
- ``reporting.month_builds`` holds a *stamp* per layer and month: the digest
  of the month's sources, the rules version and the code version it was built
  with. A layer writes its stamps in the transaction of its rows, and only
  when every layer it reads holds current stamps for every month up to that
  month; otherwise it stamps ``stale`` (a Dagster run fails instead). The
  computation is deterministic, so rows stamped with the sources, rules and
  code of now are the rows a clean build writes; a layer rewritten under the
  stamps of a layer above it leaves those stamps true. A failed, refused or
  killed run therefore leaves stamps that do not match, never stamps that lie.
- :func:`find_stale` compares the stamps with what the files as they are, the
  rules and the code say now. It is the only place that decides which months
  a run must build: ``crm run``, the sensor, the schedule and the guard of a
  run launched from the UI all call it.

The code version is a hash of the code and SQL that compute the months,
taken from the syntax trees (docstrings, comments and imports left out), so
that moving a module or editing its documentation changes nothing.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from crm_assets.core.code_digest import code_files, version_of_code
from crm_assets.core.columns import Table, col, schema_ddl
from crm_assets.core.csv_input import CUSTOMERS, PRODUCTS, stage_file
from crm_assets.core.errors import CrmError
from crm_assets.core.landing import (
    CONTENT_HASH,
    CUSTOMERS_FILE,
    fold,
    month_ranges,
    plan_folder,
    read_warehouse_state,
    scratch_duckdb,
)
from crm_assets.core.months import add_months
from crm_assets.core.rules import CrmRules, id_sql
from crm_assets.engines.base import Engine

# --- the tables ----------------------------------------------------------------------------------------------

MONTH_SOURCES = Table(
    "raw.month_sources",
    "What the months are built from, as of each month in which something starts (its lines, a customer, a "
    "product): a month's sources are those of the newest row at or before it.",
    (
        col("source_month DATE NOT NULL", "A month in which lines fall or a master row starts to count."),
        col("lines BIGINT NOT NULL", "Valid lines of the partition month."),
        col("lines_hash VARCHAR NOT NULL", "Sum of the content hashes of those lines (as text)."),
        col(
            "source_digest VARCHAR NOT NULL",
            "Digest of every line and master row that the months from this one on read.",
        ),
    ),
    "month in which something starts",
)
MONTH_BUILDS = Table(
    "reporting.month_builds",
    "What each layer's months were built from: a month is built when every layer holds a current stamp of it.",
    (
        col("layer VARCHAR NOT NULL", "The table written."),
        col("built_month DATE", "The month written (blank for a table without months)."),
        col(
            "source_digest VARCHAR NOT NULL",
            "raw.month_sources.source_digest of the month when it was written ('stale' when a table it reads was not current).",
        ),
        col("rules_version VARCHAR NOT NULL", "Hash of the rule values."),
        col("code_version VARCHAR NOT NULL", "Hash of the code and SQL that compute the months."),
        col("run_id VARCHAR NOT NULL", "The Dagster run."),
        col("computed_at TIMESTAMP NOT NULL", "When."),
    ),
    "table and month",
)

BUILDS_DDL = schema_ddl("reporting", (MONTH_BUILDS,))
STALE = "stale"
NO_SOURCES = "none"

# --- the layers, in the order a run writes them, with the tables each reads --------------------------------

CUSTOMERS_LAYER = "enriched.customers"  # the one table without months that monthly tables read
UPSTREAM: dict[str, tuple[str, ...]] = {
    CUSTOMERS_LAYER: (),
    "enriched.transactions": (CUSTOMERS_LAYER,),
    "features.customer_month_activity": ("enriched.transactions",),
    "features.repeated_orders": ("enriched.transactions",),
    "features.customer_features": (
        "features.customer_month_activity",
        "features.repeated_orders",
        CUSTOMERS_LAYER,
    ),
    "lifecycle.customer_lifecycle": ("features.customer_features",),
    "rfmt.customer_rfmt": ("features.customer_features", "lifecycle.customer_lifecycle"),
    "reporting.customer_snapshot": (
        "features.customer_features",
        "lifecycle.customer_lifecycle",
        "rfmt.customer_rfmt",
        CUSTOMERS_LAYER,
    ),
}
# the reporting views (crm_assets/outputs/views.py): monthly tables too, built by the Dagster runs (the plain
# build functions of the layers leave them out), so a warehouse without them is not held to them
VIEW_LAYERS = tuple(
    f"reporting.{view}"
    for view in ("segment_summary", "tier_migration", "cohort_retention", "contactable_customers", "device_attach")
)
UPSTREAM.update({view: ("reporting.customer_snapshot", CUSTOMERS_LAYER) for view in VIEW_LAYERS})
MONTHLY_LAYERS = tuple(layer for layer in UPSTREAM if layer != CUSTOMERS_LAYER)
# A layer that is not given the rules (CrmRules) stamps the rules version of the enriched.customers it read: the
# anonymous groups reach every layer through it, and any change of the rules rebuilds every month.
NO_RULES = "-"


class StaleInputs(CrmError):
    """A layer would write a month over a table it reads that is not built from the files as they are."""


# --- the code version ----------------------------------------------------------------------------------------

# The packages whose code computes the months (rules, column contracts, layers and their SQL). Named, not
# imported: the raw layer reads the version, and the layers above it import the raw layer.
CODE_PACKAGES = ("crm_assets.layers",)
CODE_MODULES = (
    "crm_assets.core.rules",
    "crm_assets.core.ordered_rules",
    "crm_assets.core.columns",
    "crm_assets.core.partitioned",
    "crm_assets.core.months",
    "crm_assets.core.builds",
    "crm_assets.core.code_digest",
    "crm_assets.outputs.views",
)


_versions: dict[tuple, str] = {}


def code_version() -> str:
    """A hash of the code and SQL that compute the months, independent of where each module lives
    (``code_digest``); read again whenever a file changed, so a long-lived process (the sensor's) follows edits."""
    key = tuple(sorted((str(p), p.stat().st_mtime_ns) for p in code_files(CODE_MODULES, CODE_PACKAGES)))
    if key not in _versions:
        _versions.clear()
        _versions[key] = version_of_code(CODE_MODULES, CODE_PACKAGES)
    return _versions[key]


# --- the sources of the months -------------------------------------------------------------------------------

# The master columns that reach a month's figures: names reach none, an e-mail address or a mobile number only by
# being there or not (reporting.contactable_customers)
_CUSTOMER_COLUMNS = (
    "customer_id, customer_group, city, created_date, opt_email, opt_sms, opt_phone, "
    "coalesce(trim(email), '') <> '', coalesce(trim(mobile_number), '') <> ''"
)
_PRODUCT_COLUMNS = "product_id, category, unit_size"
EVER = "1900-01-01"  # a customer without a creation date is in every month (before any line: dates load from 1970)


def month_sources_sql(lines: str, customers: str, products: str) -> str:
    """The rows of ``raw.month_sources`` from a lines relation (``raw.sales_transactions``) and the masters."""
    return f"""
    WITH per_month AS (
        -- the file profiles' digest of a month's lines, so the folder and the warehouse compare month by month
        SELECT partition_month AS m, count(*) AS n, {CONTENT_HASH} AS h
        FROM {lines} GROUP BY 1
    ),
    first_customer_line AS (
        SELECT {id_sql("customer_id")} AS id, min(partition_month) AS m FROM {lines} GROUP BY 1
    ),
    first_product_line AS (
        SELECT {id_sql("product_id")} AS id, min(partition_month) AS m FROM {lines} GROUP BY 1
    ),
    customer_starts AS (
        SELECT CASE WHEN c.created_date IS NULL THEN DATE '{EVER}'
                    ELSE least(date_trunc('month', c.created_date)::DATE, f.m) END AS m,
            sum(hash({_CUSTOMER_COLUMNS.replace("customer_id", id_sql("c.customer_id"))})::HUGEINT) AS h
        FROM {customers} c LEFT JOIN first_customer_line f ON f.id = {id_sql("c.customer_id")}
        GROUP BY 1
    ),
    product_starts AS (
        SELECT f.m, sum(hash({_PRODUCT_COLUMNS.replace("product_id", id_sql("p.product_id"))})::HUGEINT) AS h
        FROM {products} p JOIN first_product_line f ON f.id = {id_sql("p.product_id")}
        GROUP BY 1
    ),
    starts AS (
        SELECT m FROM per_month UNION SELECT m FROM customer_starts UNION SELECT m FROM product_starts
    ),
    cumulated AS (
        SELECT s.m, coalesce(l.n, 0) AS n, coalesce(l.h, 0) AS h,
            sum(coalesce(l.n, 0)) OVER w AS cn, sum(coalesce(l.h, 0)) OVER w AS ch,
            sum(coalesce(c.h, 0)) OVER w AS cc, sum(coalesce(p.h, 0)) OVER w AS cp
        FROM starts s LEFT JOIN per_month l USING (m) LEFT JOIN customer_starts c USING (m)
        LEFT JOIN product_starts p USING (m)
        WINDOW w AS (ORDER BY s.m ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
    )
    SELECT m AS source_month, n AS lines, h::VARCHAR AS lines_hash,
        md5(concat_ws(':', cn, ch, cc, cp)) AS source_digest
    FROM cumulated
    """


def refresh_month_sources(con) -> None:
    """Rewrite ``raw.month_sources`` from the raw tables (inside the caller's transaction)."""
    con.execute("DELETE FROM raw.month_sources")
    con.execute(
        "INSERT INTO raw.month_sources BY NAME "
        + month_sources_sql("raw.sales_transactions", "raw.customers", "raw.products")
    )


def _sources_as_of(months_sql: str) -> str:
    """``(m, sources)`` for each month of ``months_sql`` (a relation of one column ``m``)."""
    return f"""
    SELECT k.m, coalesce(s.source_digest, '{NO_SOURCES}') AS source_digest
    FROM ({months_sql}) k
    LEFT JOIN (
        SELECT source_month, source_digest, lead(source_month) OVER (ORDER BY source_month) AS next_month
        FROM raw.month_sources
    ) s ON k.m >= s.source_month AND (s.next_month IS NULL OR k.m < s.next_month)
    """


def _months(start: str, end: str) -> str:
    return f"SELECT unnest(generate_series({start}::DATE, {end}::DATE, INTERVAL 1 MONTH))::DATE AS m"


def _quoted(names: Sequence[str]) -> str:
    return ", ".join(f"'{n}'" for n in names)


def stamp_months(
    con: Engine,
    layer: str,
    start: date,
    end: date,
    first: date | None,
    rules_version: str,
    run_id: str,
    strict: bool = False,
) -> None:
    """Stamp ``layer``'s months ``start``..``end`` (in the caller's transaction, after its rows are written).

    A month is stamped with its sources when every table the layer reads holds current stamps for every month
    from the first month of the lines (not before ``first``, the calendar's first month) through it; else
    ``stale``.
    ``strict`` (a Dagster run): a month that would be stamped ``stale`` raises ``StaleInputs`` instead, so that
    the caller's transaction rolls back and the run fails, naming the table to build first.
    """
    con.execute(BUILDS_DDL)
    con.execute(
        "DELETE FROM reporting.month_builds WHERE layer = ? AND built_month BETWEEN ? AND ?", [layer, start, end]
    )
    reads = UPSTREAM[layer]
    monthly = [u for u in reads if u != CUSTOMERS_LAYER]
    if rules_version == NO_RULES:
        known = con.execute(
            f"SELECT max(rules_version) FROM reporting.month_builds WHERE layer = '{CUSTOMERS_LAYER}'"
        ).fetchone()
        rules_version = (known and known[0]) or NO_RULES
    # History starts at the first month with lines (older lines count in the calendar's first month), or at an
    # earlier month a table it reads still holds (its rows are read too), never before the calendar's first month.
    first_sql = (
        "least((SELECT min(partition_month) FROM raw.sales_transactions), (SELECT min(built_month) FROM "
        f"reporting.month_builds WHERE layer IN ({_quoted(monthly or [layer])})))"
    )
    if first is not None:
        first_sql = f"greatest($first::DATE, {first_sql})"
    checks = []
    if monthly:
        # the first month, from the first month on, at which a table the layer reads is not current
        checks.append(
            f"""(SELECT min(e.m) FROM ({_sources_as_of(_months(first_sql, "$end"))}) e
                CROSS JOIN (SELECT unnest([{_quoted(monthly)}]) AS layer) u
                LEFT JOIN reporting.month_builds b ON b.layer = u.layer AND b.built_month = e.m
                WHERE b.layer IS NULL OR b.source_digest <> e.source_digest OR b.rules_version <> $rules
                   OR b.code_version <> $code)"""
        )
    customers_current = "true"
    if CUSTOMERS_LAYER in reads:
        customers_current = f"""EXISTS (SELECT 1 FROM reporting.month_builds b
            WHERE b.layer = '{CUSTOMERS_LAYER}' AND b.source_digest = (SELECT max(file_digest) FROM raw.file_loads
                                                                WHERE file_kind = 'customers')
              AND b.rules_version = $rules AND b.code_version = $code)"""
    first_bad = checks[0] if checks else "NULL::DATE"
    statement = f"""
        INSERT INTO reporting.month_builds
        SELECT $layer, e.m,
            CASE WHEN {customers_current} AND (bad.first_bad IS NULL OR bad.first_bad > e.m) THEN e.source_digest
                 ELSE '{STALE}' END,
            $rules, $code, $run_id, current_timestamp::TIMESTAMP
        FROM ({_sources_as_of(_months("$start", "$end"))}) e
        CROSS JOIN (SELECT {first_bad} AS first_bad) bad
        """
    values = {
        "layer": layer,
        "start": start,
        "end": end,
        "first": first,
        "rules": rules_version,
        "code": code_version(),
        "run_id": run_id,
    }
    con.execute(statement, {k: v for k, v in values.items() if f"${k}" in statement})
    if strict:
        bad = con.execute(
            f"SELECT min(built_month), max(built_month) FROM reporting.month_builds WHERE layer = ? "
            f"AND source_digest = '{STALE}' AND built_month BETWEEN ? AND ?",
            [layer, start, end],
        ).fetchone()
        if bad and bad[0] is not None:
            raise StaleInputs(
                f"{layer} {month_ranges([bad[0], bad[1]])}: a table it reads ({', '.join(reads)}) is not built "
                f"from the files as they are for every month through {bad[1]:%Y-%m}; nothing was written. Run "
                "`crm run` (it builds every stale month), or launch the stale months with every asset"
            )


def stamp_customers(con: Engine, rules_version: str, run_id: str) -> None:
    """Stamp ``enriched.customers`` with the version of the customer master it was built from.

    The monthly stamps stay: a master row that reaches a month changes that month's sources."""
    con.execute(BUILDS_DDL)
    con.execute(f"DELETE FROM reporting.month_builds WHERE layer = '{CUSTOMERS_LAYER}'")
    con.execute(
        f"""
        INSERT INTO reporting.month_builds
        SELECT '{CUSTOMERS_LAYER}', NULL::DATE, coalesce(max(file_digest), '{NO_SOURCES}'), $rules, $code, $run_id,
            current_timestamp::TIMESTAMP
        FROM raw.file_loads WHERE file_kind = 'customers'
        """,
        {"rules": rules_version, "code": code_version(), "run_id": run_id},
    )


# --- which months are stale ----------------------------------------------------------------------------------


@dataclass
class Staleness:
    """The months a run must build, and why, as :func:`find_stale` found them."""

    stale: list[date] = field(default_factory=list)  # months to build, ascending
    held: list[date] = field(default_factory=list)  # months the warehouse holds (any layer)
    # a file differs from the version loaded (a master, or only rejected lines of a transactions file), or
    # enriched.customers from the customer master, whatever the months: any run loads them again
    files_stale: bool = False
    reasons: list[str] = field(default_factory=list)
    records: str = ""  # a digest of the stamps and sources read: equal digests, equal records

    def describe(self) -> str:
        return "; ".join(self.reasons) if self.reasons else "every month is built from the files as they are"


def _month_list(first: date, last: date) -> list[date]:
    months, m = [], first
    while m <= last:
        months.append(m)
        m = add_months(m, 1)
    return months


def _as_of(rows: Sequence[tuple[date, str]], month: date) -> str:
    """The sources of ``month``: those of the newest row at or before it."""
    found = NO_SOURCES
    for start, sources in rows:
        if start > month:
            break
        found = sources
    return found


def _staged_sources(warehouse_path: str, input_dir, changed: Sequence[str]) -> list[tuple[date, str]]:
    """``raw.month_sources`` as it would be with the masters of the folder named in ``changed`` in place of the
    loaded ones, over the lines the warehouse holds (right for every month before the lines differ)."""
    with scratch_duckdb("crm-plan-") as con:
        con.execute(f"ATTACH '{warehouse_path}' AS wh (READ_ONLY)")
        relations = {"customers": "wh.raw.customers", "products": "wh.raw.products"}
        for name in changed:
            spec = CUSTOMERS if name == CUSTOMERS_FILE else PRODUCTS
            staged = stage_file(con, Path(input_dir) / name, spec, f"plan_{spec.kind}")
            relations[spec.kind] = staged.valid_table
        return con.execute(
            "SELECT source_month, source_digest FROM ("
            + month_sources_sql("wh.raw.sales_transactions", relations["customers"], relations["products"])
            + ") ORDER BY 1"
        ).fetchall()


def find_stale(
    input_dir,
    state,
    plan,
    first_month: date,
    last_month: date,
    rules_version: str,
    warehouse_path: str | None = None,
    views_expected: bool = False,
) -> Staleness:
    """The months of the calendar (``first_month``..``last_month``) that a run must build: every month the
    warehouse holds or the data reaches whose stamps are not those of the files, the rules and the code now.

    ``state`` and ``plan`` are the warehouse's records and the folder's reading (``landing``); the masters
    that changed since their load are read from the folder (``warehouse_path``: the file to read the held
    lines from).
    """
    result = Staleness()
    stamps: dict[str, dict[date | None, tuple[str, str, str]]] = {}  # None: the customers layer's one stamp
    for layer, month, sources, rules, code in state.query(
        "SELECT layer, built_month, source_digest, rules_version, code_version FROM reporting.month_builds",
        table=("reporting", "month_builds"),
    ):
        stamps.setdefault(layer, {})[month] = (sources, rules, code)
    held_rows = state.query(
        "SELECT source_month, lines, lines_hash, source_digest FROM raw.month_sources ORDER BY 1",
        table=("raw", "month_sources"),
    )
    flat = sorted((layer, str(month), stamp) for layer, months in stamps.items() for month, stamp in months.items())
    result.records = hashlib.sha256(repr((flat, held_rows)).encode()).hexdigest()
    present = {
        f"{schema}.{table}"
        for schema, table in state.query(
            "SELECT table_schema, table_name FROM information_schema.tables WHERE table_schema = 'reporting'",
            table=("reporting", "month_builds"),
        )
    }
    # A reporting view counts once its table is there, or when the run planned builds the views (the whole job:
    # a run killed before its views leaves none, and the next run must make them); a warehouse built by the
    # layers alone (pipeline.build_all, a run of some assets) has none, and they are not missing work there.
    layers = [layer for layer in MONTHLY_LAYERS if layer not in VIEW_LAYERS or layer in present or views_expected]
    held = {m for layer in layers for m in stamps.get(layer, {}) if m is not None} | set(state.built)
    data = fold(plan.profiles, first_month)
    target_last = min(max([*held, *data], default=first_month), last_month)
    result.held = sorted(m for m in held if first_month <= m <= last_month)
    # from the first month with data (a calendar may start earlier), or an earlier month built all the same
    target_first = max(first_month, min([*data, *held], default=first_month))
    months = _month_list(target_first, target_last) if data or held else []

    # the lines: the first month whose lines in the folder are not the ones the sources were computed from
    lines_held = {m: (int(n), int(h)) for m, n, h, _ in held_rows if n}
    lines_differ = sorted(m for m in set(data) | set(lines_held) if data.get(m) != lines_held.get(m))
    first_lines_change = lines_differ[0] if lines_differ else None
    if first_lines_change is not None and any(m >= first_lines_change for m in held):
        result.reasons.append(f"lines of {month_ranges(lines_differ)} differ from the ones loaded")

    # the masters: a changed master is read from the folder and its rows placed in the months they reach
    changed_masters = list(plan.masters_changed)
    sources_rows = [(m, s) for m, _, _, s in held_rows]
    if changed_masters and held_rows and warehouse_path is not None:
        loaded_rows = sources_rows
        sources_rows = _staged_sources(warehouse_path, input_dir, changed_masters)
        reached = [m for m in months if _as_of(sources_rows, m) != _as_of(loaded_rows, m)]
        if reached:
            result.reasons.append(f"{' and '.join(changed_masters)} changed rows read by {month_ranges(reached)}")
    customers_file = state.files.get(CUSTOMERS_FILE)
    customers_now = (
        customers_file.sha256 if customers_file else NO_SOURCES,
        rules_version,
        code_version(),
    )
    customers_stamp = stamps.get(CUSTOMERS_LAYER, {}).get(None)
    result.files_stale = (
        bool(changed_masters) or plan.files_changed or (bool(held) and customers_stamp != customers_now)
    )

    unfinished, new, rebuilt = [], [], []
    for month in months:
        sources = _as_of(sources_rows, month)
        expected = [(sources, rules_version, code_version())] * len(layers)
        if first_lines_change is not None and month >= first_lines_change:
            result.stale.append(month)
            if month not in held:
                new.append(month)
            continue
        found = [stamps.get(layer, {}).get(month) for layer in layers]
        if found == expected:
            continue
        result.stale.append(month)
        if all(s is None for s in found):
            new.append(month)
        elif any(s is not None and s[0] == e[0] and s[1:] != e[1:] for s, e in zip(found, expected)):
            rebuilt.append(month)
        else:
            unfinished.append(month)
    if new:
        result.reasons.append(f"{month_ranges(new)} not built yet")
    if rebuilt:
        result.reasons.append(f"the rules or the code changed since {month_ranges(rebuilt)} were built")
    if unfinished and not changed_masters and first_lines_change is None:
        result.reasons.append(f"{month_ranges(unfinished)} left unfinished or built on other inputs")
    elif unfinished and not result.reasons:
        result.reasons.append(f"{month_ranges(unfinished)} built on other inputs")
    if result.stale and not result.reasons:  # a warehouse of an earlier release keeps no stamps
        result.reasons.append(f"no record of what {month_ranges(result.stale)} were built from")
    if result.files_stale and not result.stale:
        result.reasons.append("a file or enriched.customers differs from the version loaded (no month's figures do)")
    return result


@dataclass
class RunRange:
    """The months a run builds (partition keys; None: nothing to build), with a sentence for each change."""

    first: str | None
    last: str | None
    why: str
    notes: list[str] = field(default_factory=list)
    files_only: bool = False  # no month is stale: any run loads the files again


def plan_range(
    staleness: Staleness,
    keys: Sequence[str],
    data_first: str,
    data_last: str,
    requested: tuple[str | None, str | None] = (None, None),
    everything: bool = False,
) -> RunRange:
    """The one range decision of ``crm run``, the sensor, the schedule and the guard of every run: at least every
    stale month (through the newest stale one: each month reads all months before it), widened to what was
    asked; ``everything``: every month of the data and every month held."""
    stale = [k for k in (f"{m:%Y-%m}-01" for m in staleness.stale) if k in set(keys)]
    held = [f"{m:%Y-%m}-01" for m in staleness.held]
    why = staleness.describe()
    if stale:  # a month's rows are read by every later month: the ones held after the first stale month follow
        stale = [*stale, *(k for k in held if k > stale[-1] and k in set(keys))]
    if everything:
        first, last = min([data_first, *held, *stale]), max([data_last, *held])
        return RunRange(first, min(last, keys[-1]), "every month (--all)")
    asked_first, asked_last = requested
    if asked_first is None and asked_last is None:
        if stale:
            return RunRange(stale[0], stale[-1], why, [f"{why}: running {stale[0][:7]}..{stale[-1][:7]}"])
        if staleness.files_stale and held:
            return RunRange(held[-1], held[-1], f"{why}: the newest month loads the files again", files_only=True)
        return RunRange(None, None, why)
    first = asked_first or data_first
    last = asked_last or data_last
    notes = []
    # every stale month before the range (its history) and every stale month held after it; a month after it
    # that was never built may stay so
    left = [k for k in stale if k < first or (k > last and k in set(held))]
    if left:
        wider = min(first, left[0]), max([last, *(k for k in left if k > last)])
        notes.append(f"{why}: running {wider[0][:7]}..{wider[1][:7]} (not {first[:7]}..{last[:7]})")
        first, last = wider
    return RunRange(first, last, why, notes)


def uncovered(staleness: Staleness, keys: Sequence[str], start: str, end: str) -> str | None:
    """Why a run of ``start``..``end`` would leave a month stale behind it (None: it does not).

    After the run, every month the warehouse holds must be current: a stale month before the run (its history) or
    a stale month held after it must be in it; a month after it that was never built may stay unbuilt."""
    required = plan_range(staleness, keys, start, end, (start, end))
    if required.first is None or required.last is None or (required.first, required.last) == (start, end):
        return None
    return (
        f"{required.why}: {required.first[:7]}..{required.last[:7]} must be built, and this run covers "
        f"{start[:7]}..{end[:7]}; no month was written. `crm run` builds them, or launch that range"
    )


def assess(input_dir, warehouse, first_month: date, keys: Sequence[str], views_expected: bool = False):
    """The folder read against the ``Warehouse``'s records: ``(landing.Plan, Staleness)`` for the calendar of
    ``keys`` (its partition keys) starting at ``first_month``; ``views_expected``: the run planned is the whole
    job, so a reporting view not made yet is stale (``find_stale``).

    Opens the warehouse read-only, briefly (``WarehouseLockedError`` when a run holds it)."""
    state = read_warehouse_state(warehouse)
    plan = plan_folder(input_dir, state, first_month)
    last = date.fromisoformat(keys[-1]) if keys else first_month
    path = warehouse.file
    staleness = find_stale(
        input_dir,
        state,
        plan,
        first_month,
        last,
        CrmRules().version(),
        str(path) if path.exists() else None,
        views_expected,
    )
    return plan, staleness
