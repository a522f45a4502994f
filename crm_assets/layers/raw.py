"""Raw layer: the three landing files loaded into the ``raw`` schema as they are.

``raw.products`` and ``raw.customers`` are point-in-time snapshots of the
masters, replaced whole on each load. ``raw.sales_transactions`` is
partitioned by invoice month: a run for months A..B reads each
``sales_transactions_*.csv`` once and replaces exactly the rows of A..B;
a file whose bytes (SHA-256) are those already loaded for A..B is skipped
(``raw.file_months``), so a monthly refresh reads only the files that changed.
Every rejected line of every file is in ``raw.rejected_rows`` with its reason,
and ``raw.file_loads`` keeps, per file, rows read = rows valid + rows rejected.

A missing file or column, a duplicate master key or a consumable without a
positive ``unit_size`` stops the load before anything is written.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import duckdb
from dagster import (
    AssetExecutionContext,
    BackfillPolicy,
    Failure,
    MaterializeResult,
    MetadataValue,
    asset,
)

from crm_assets.core import quality, rules
from crm_assets.core.builds import assess, refresh_month_sources, uncovered
from crm_assets.core.columns import schema_ddl
from crm_assets.core.csv_input import (
    CUSTOMERS,
    PRODUCTS,
    READABLE_CHECK,
    TRANSACTIONS,
    FileSpec,
    StagedFile,
    discard_handoffs,
    stage_file,
    tag_for,
    take_handoff,
    version_of,
)
from crm_assets.core.errors import CrmError, InputFileError
from crm_assets.core.landing import (  # noqa: F401  (file names re-exported for the layers above)
    ALLOW_REMOVALS_TAG,
    CONTENT_COLUMNS,
    CONTENT_HASH,
    CUSTOMERS_FILE,
    PREFLIGHT_TAG,
    PRODUCTS_FILE,
    TRANSACTIONS_GLOB,
    FileProfile,
    find_removals,
    has_table,
    month_ranges,
    profile_folder,
    profile_of_staged,
    read_state,
    removal_message,
    transaction_files,
)
from crm_assets.core.months import key_to_date
from crm_assets.core.partitions import DECLARED, calendar_start_of
from crm_assets.core.quality import ERROR, WARN, Check, Outcome, check_results, check_specs, tally
from crm_assets.core.resources import InputFolder, Warehouse
from crm_assets.engines.duckdb import DuckDBEngine, one_row
from crm_assets.layers.tables import RAW_CUSTOMERS, RAW_DATA_TABLES, RAW_PRODUCTS, RAW_TABLES, SALES_TRANSACTIONS

REMOVALS_CHECK = "no_unexpected_removals"
STALE_MONTHS_CHECK = "run_covers_stale_months"
PAST_DATA_CHECK = "no_month_past_the_data"
USER_ERROR_METADATA = "crm/user_error"  # marks a Failure caused by bad input: `crm run` exits 2, not 1

RAW_DDL = schema_ddl("raw", RAW_TABLES)


def ensure_raw_schema(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(RAW_DDL)


def _master_path(input_dir: Path, name: str) -> Path:
    path = input_dir / name
    if not input_dir.is_dir():
        raise InputFileError(f"{input_dir}: input folder not found")
    if not path.is_file():
        raise InputFileError(f"{path}: file not found")
    return path


def _check_unique_key(con: duckdb.DuckDBPyConnection, staged: StagedFile, key: str) -> None:
    dupes = con.execute(
        f"""
        SELECT {rules.id_sql(key)} AS k, count(*) AS n, string_agg(line_number::VARCHAR, ', ' ORDER BY line_number)
        FROM {staged.valid_table} GROUP BY k HAVING count(*) > 1 ORDER BY min(line_number)
        """
    ).fetchall()
    if dupes:
        k, n, lines = dupes[0]
        raise InputFileError(
            f"{staged.path}: duplicate {key} '{k}' ({n} rows, lines {lines}); {len(dupes)} duplicate key(s) in all",
            check="unique_key",
        )


def _check_consumable_unit_size(con: duckdb.DuckDBPyConnection, staged: StagedFile) -> None:
    bad = con.execute(
        f"""
        SELECT product_id, unit_size_text FROM {staged.valid_table}
        WHERE {rules.category_sql("category")} = '{rules.CONSUMABLE}' AND coalesce(unit_size, 0) <= 0
        ORDER BY line_number
        """
    ).fetchall()
    if bad:
        product_id, text = bad[0]
        raise InputFileError(
            f"{staged.path}: consumable product '{product_id}' has no positive unit_size "
            f"(got '{text or ''}'); {len(bad)} such product(s)",
            check="consumables_have_positive_unit_size",
        )


def stage_master(con: duckdb.DuckDBPyConnection, input_dir: Path, spec: FileSpec) -> StagedFile:
    """Stage and validate one master file; raises InputFileError on a blocking problem."""
    name = CUSTOMERS_FILE if spec is CUSTOMERS else PRODUCTS_FILE
    staged = stage_file(con, _master_path(input_dir, name), spec, spec.kind)
    _check_unique_key(con, staged, spec.columns[0].name)
    if spec is PRODUCTS:
        _check_consumable_unit_size(con, staged)
    return staged


def _record_file_load(con: duckdb.DuckDBPyConnection, kind: str, staged: StagedFile) -> None:
    con.execute("DELETE FROM raw.file_loads WHERE file_kind = ? AND source_file = ?", [kind, staged.path.name])
    con.execute(
        "INSERT INTO raw.file_loads BY NAME SELECT ? AS file_kind, ? AS source_file, ? AS file_bytes, ? AS rows_read, "
        "? AS rows_valid, ? AS rows_rejected, ? AS blank_lines, current_timestamp::TIMESTAMP AS loaded_at, "
        "? AS file_digest",
        [
            kind,
            staged.path.name,
            staged.path.stat().st_size,
            staged.rows_read,
            staged.rows_valid,
            staged.rows_rejected,
            staged.blank_lines,
            staged.sha256,
        ],
    )


def _replace_rejects(
    con: duckdb.DuckDBPyConnection, kind: str, staged: list[StagedFile], keep: Sequence[str] = ()
) -> None:
    """The rejects of ``kind``: those of the staged files, plus the ones kept of the files in ``keep``."""
    con.execute(
        "DELETE FROM raw.rejected_rows WHERE file_kind = ? AND source_file NOT IN (SELECT unnest(?::VARCHAR[]))",
        [kind, list(keep)],
    )
    for s in staged:
        con.execute(
            f"INSERT INTO raw.rejected_rows SELECT ?, source_file, line_number, raw_line, reason FROM {s.rejected_table}",
            [kind],
        )


def load_master(con: duckdb.DuckDBPyConnection, input_dir: Path, spec: FileSpec) -> StagedFile:
    """Replace ``raw.<spec.kind>`` with the master file, in one transaction."""
    ensure_raw_schema(con)
    staged = stage_master(con, input_dir, spec)
    columns = [r[0] for r in con.execute(f"DESCRIBE raw.{spec.kind}").fetchall()]
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute(f"DELETE FROM raw.{spec.kind}")
        con.execute(f"INSERT INTO raw.{spec.kind} BY NAME SELECT {', '.join(columns)} FROM {staged.valid_table}")
        _replace_rejects(con, spec.kind, [staged])
        con.execute("DELETE FROM raw.file_loads WHERE file_kind = ?", [spec.kind])
        _record_file_load(con, spec.kind, staged)
        refresh_month_sources(con)
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return staged


@dataclass
class TransactionLoad:
    files: list[StagedFile]
    rows_loaded: int
    months_replaced: int
    unchanged_files: list[str] = field(default_factory=list)
    rows_read_all_files: int = 0
    rows_rejected_all_files: int = 0


def file_digest(version: str, first_month: date) -> str:
    """A file's version (``csv_input.version_of``), with the first partition (it decides ``partition_month``)."""
    return f"{version}:{first_month:%Y-%m}"


# The rows a load owns: its months, and every row dated after the newest partition ($last).
# a run owns its months, the lines dated after the newest partition, and any row left before the calendar's first
# month (by a calendar that started earlier): they are replaced, so the warehouse follows the calendar
OWNED = (
    "(partition_month BETWEEN $start::DATE AND $end::DATE OR partition_month > $last::DATE "
    "OR partition_month < $calendar_first::DATE)"
)


def _unchanged_files(
    con: duckdb.DuckDBPyConnection, digests: dict[str, str], owned: dict, first_month: date
) -> list[str]:
    """The files whose rows of the window (and after the newest partition) are in the warehouse from this very version.

    ``raw.file_months`` lists, per file, the version (digest) last read, every
    month that version has rows in, and every month still holding rows of an
    older version; ``loaded`` says whether the month's rows are this
    version's. A file is skipped only when all its months of the window and
    after ``last_month`` are loaded, and its load and profile are recorded
    for that version (a warehouse of an earlier release reads it once more).
    """
    if not digests:
        return []
    known = con.execute(
        f"""
        SELECT source_file, any_value(file_digest), bool_and(loaded) FILTER (WHERE {OWNED})
        FROM raw.file_months m WHERE source_file IN (SELECT unnest($names::VARCHAR[]))
          AND EXISTS (SELECT 1 FROM raw.file_loads l JOIN raw.file_profiles p USING (source_file, file_digest)
                      WHERE l.source_file = m.source_file AND m.file_digest = l.file_digest || ':' || $first)
          AND NOT EXISTS (SELECT 1 FROM raw.file_profiles p  -- a profile without its newest dates: read it again
                          WHERE p.source_file = m.source_file AND p.invoice_month IS NOT NULL
                            AND p.last_invoice_date IS NULL)
        GROUP BY source_file
        """,
        {**owned, "names": list(digests), "first": f"{first_month:%Y-%m}"},
    ).fetchall()
    return sorted(name for name, digest, loaded in known if digest == digests[name] and loaded is not False)


def _record_file_months(
    con: duckdb.DuckDBPyConnection, staged: list[StagedFile], digests: dict[str, str], owned: dict
) -> None:
    """Months of the versions just read (from ``stg_transactions``): loaded when the run owns them (or they were
    loaded from the same version before); months still holding rows of an older version are listed as not loaded."""
    if not staged:
        return
    names = [s.path.name for s in staged]
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE file_months_new AS
        WITH versions AS (SELECT unnest($names::VARCHAR[]) AS source_file, unnest($digests::VARCHAR[]) AS file_digest),
        months AS (
            SELECT DISTINCT source_file, partition_month FROM stg_transactions WHERE partition_month IS NOT NULL
            UNION
            SELECT DISTINCT source_file, partition_month FROM raw.sales_transactions
            WHERE source_file IN (SELECT unnest($names::VARCHAR[])) AND NOT {OWNED}
        )
        SELECT m.source_file, v.file_digest, m.partition_month,
            {OWNED.replace("partition_month", "m.partition_month")} OR coalesce(b.loaded, false) AS loaded
        FROM months m JOIN versions v USING (source_file)
        LEFT JOIN raw.file_months b
            ON b.source_file = m.source_file AND b.file_digest = v.file_digest AND b.partition_month = m.partition_month
        """,
        {"names": names, "digests": [digests[n] for n in names], **owned},
    )
    con.execute("DELETE FROM raw.file_months WHERE source_file IN (SELECT unnest(?::VARCHAR[]))", [names])
    con.execute("INSERT INTO raw.file_months SELECT * FROM file_months_new")
    con.execute("DROP TABLE file_months_new")


def _check_removals(
    con: duckdb.DuckDBPyConnection,
    profiles: list[FileProfile],
    digests: dict[str, str],
    unchanged: set[str],
    first_month: date,
    window_start: date,
    window_end: date,
    last_month: date,
    allowed: bool,
) -> None:
    """Stop before writing when rows would disappear, unless allowed and the window covers every month that loses rows."""
    removals = find_removals(read_state(con), profiles, first_month, unchanged)
    if not removals:
        return
    if not allowed:
        raise InputFileError(removal_message(removals), check=REMOVALS_CHECK)
    months = [max(m, first_month) for r in removals for m in r.months if m <= last_month]  # older: the first's
    if months and (min(months) < window_start or max(months) > window_end):
        raise InputFileError(
            f"{'; '.join(r.describe() for r in removals)}: the run must cover {min(months):%Y-%m}..{max(months):%Y-%m} "
            f"to remove those rows (it covers {window_start:%Y-%m}..{window_end:%Y-%m})",
            check=REMOVALS_CHECK,
        )


def _refuse_wholly_rejected(con: duckdb.DuckDBPyConnection, staged: StagedFile) -> None:
    """A transactions file of which no line is valid is a wrong extract, not a month without sales: stop."""
    if staged.rows_valid or not staged.rows_rejected:
        return
    line, reason = one_row(con, f"SELECT line_number, reason FROM {staged.rejected_table} ORDER BY line_number LIMIT 1")
    raise InputFileError(
        f"{staged.path}: none of its {staged.rows_rejected:,} lines is valid (line {line}: {reason}); nothing was "
        "loaded: correct the file (every rejection is listed by crm run once one line loads), or take it out of "
        "the folder",
        check=READABLE_CHECK,
    )


# the months of a file without a valid line: one row with no month
NO_MONTH: list[tuple[None, tuple[None, None]]] = [(None, (None, None))]


def _record_profiles(con: duckdb.DuckDBPyConnection, profiles: list[FileProfile], present: list[str]) -> None:
    """The profile of each version just read replaces the file's; files no longer in the folder lose theirs."""
    names = [p.name for p in profiles]
    con.execute(
        "DELETE FROM raw.file_profiles WHERE source_file IN (SELECT unnest($n::VARCHAR[])) "
        "OR source_file NOT IN (SELECT unnest($p::VARCHAR[]))",
        {"n": names, "p": present},
    )
    # one row per file and month (a file without a valid line keeps one row with no month): metadata, not data
    rows = [
        (
            p.name,
            p.sha256,
            p.rows_read,
            p.rows_valid,
            p.rows_rejected,
            month,
            n,
            None if h is None else str(h),
            None if month is None else p.last_dates.get(month),
        )
        for p in profiles
        for month, (n, h) in (sorted(p.months.items()) or NO_MONTH)
    ]
    if rows:
        con.executemany(
            "INSERT INTO raw.file_profiles (source_file, file_digest, rows_read, rows_valid, rows_rejected, "
            "invoice_month, lines, content_hash, last_invoice_date) VALUES (?, ?, ?, ?, ?, ?, ?, ?::HUGEINT, ?)",
            rows,
        )


def load_transactions(
    con: duckdb.DuckDBPyConnection,
    input_dir: Path,
    window_start: date,
    window_end: date,
    first_month: date,
    last_month: date,
    reread: bool = False,
    allow_removals: bool = False,
) -> TransactionLoad:
    """Replace the rows of invoice months ``window_start`` .. ``window_end`` (inclusive).

    Rows are owned by ``partition_month``: their invoice month, or the first
    partition for older rows. Rows dated after the newest partition
    (``last_month``) are replaced on every load too, so that nothing read is
    left out of the warehouse. A file whose bytes did not change since the
    run that loaded its rows of these months is not read again
    (``raw.file_months``): a monthly refresh reads the files that changed.
    ``reread`` reads every file all the same.

    A file gone since its last load, or holding fewer than half of the rows
    loaded from it, stops the load (``InputFileError``) unless
    ``allow_removals``; then the window must start at or before the first
    month that loses rows.
    """
    ensure_raw_schema(con)
    paths = transaction_files(input_dir)
    versions = {path.name: version_of(path) for path in paths}
    digests = {name: file_digest(version, first_month) for name, version in versions.items()}
    owned = {"start": window_start, "end": window_end, "last": last_month, "calendar_first": first_month}
    unchanged = set() if reread else set(_unchanged_files(con, digests, owned, first_month))
    staged = []
    for i, path in enumerate(paths):
        if path.name not in unchanged:
            tag = f"tx{i}_{tag_for(path.stem)}"  # the position keeps tags unique
            # the plan of this run may have read this version already (csv_input.hand_off)
            staged.append(take_handoff(con, path, tag, versions[path.name]) or stage_file(con, path, TRANSACTIONS, tag))
    discard_handoffs(unchanged)  # read to plan, but their rows are in the warehouse already
    for s in staged:
        _refuse_wholly_rejected(con, s)
    profiles = [profile_of_staged(con, s) for s in staged]
    _check_removals(
        con, profiles, digests, unchanged, first_month, window_start, window_end, last_month, allow_removals
    )
    con.execute("DROP TABLE IF EXISTS stg_transactions")
    if staged:
        union = " UNION ALL ".join(
            f"SELECT * EXCLUDE (extra_columns), extra_columns FROM {s.valid_table}" for s in staged
        )
        con.execute(
            f"""
            CREATE TEMP TABLE stg_transactions AS
            SELECT *, date_trunc('month', invoice_date)::DATE AS invoice_month,
                   greatest(date_trunc('month', invoice_date)::DATE, ?::DATE) AS partition_month
            FROM ({union})
            """,
            [first_month],
        )
    else:
        con.execute("CREATE TEMP TABLE stg_transactions AS SELECT * FROM raw.sales_transactions WHERE false")
    kept = sorted(unchanged)
    con.execute("BEGIN TRANSACTION")
    try:
        # the window's rows of every file but the unchanged ones (a file gone from the folder loses its rows too)
        con.execute(
            f"DELETE FROM raw.sales_transactions WHERE {OWNED} AND source_file NOT IN (SELECT unnest($kept::VARCHAR[]))",
            {**owned, "kept": kept},
        )
        con.execute(
            f"""
            INSERT INTO raw.sales_transactions BY NAME
            SELECT * FROM stg_transactions WHERE {OWNED} ORDER BY partition_month, source_file, line_number
            """,
            owned,
        )
        rows_loaded = one_row(con, f"SELECT count(*) FROM stg_transactions WHERE {OWNED}", owned)[0]
        _record_file_months(con, staged, digests, owned)
        present = list(digests)
        con.execute("DELETE FROM raw.file_months WHERE source_file NOT IN (SELECT unnest(?::VARCHAR[]))", [present])
        _replace_rejects(con, TRANSACTIONS.kind, staged, keep=kept)
        con.execute(
            "DELETE FROM raw.file_loads WHERE file_kind = ? AND source_file NOT IN (SELECT unnest(?::VARCHAR[]))",
            [TRANSACTIONS.kind, kept],
        )
        for s in staged:
            _record_file_load(con, TRANSACTIONS.kind, s)
        _record_profiles(con, profiles, present)
        refresh_month_sources(con)
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    months = (window_end.year - window_start.year) * 12 + window_end.month - window_start.month + 1
    read, rejected = one_row(
        con,
        "SELECT coalesce(sum(rows_read), 0), coalesce(sum(rows_rejected), 0) FROM raw.file_loads WHERE file_kind = ?",
        [TRANSACTIONS.kind],
    )
    return TransactionLoad(staged, rows_loaded, months, kept, int(read), int(rejected))


def _loader_check(asset_name: str, name: str, description: str, unit: str) -> Check:
    """A check the loader decides: 1 when it refused the file (the run, for the stale months), its message
    the sample."""
    return Check(asset_name, name, ERROR, description, None, partitioned=False, unit=unit)


def _rejected_rows_check(asset_name: str, kind: str) -> Check:
    return Check(
        asset_name,
        "rejected_rows",
        WARN,
        "Lines of the file(s) that could not be loaded; see raw.rejected_rows for the reason of each.",
        tally(
            f"""
            SELECT source_file || ':' || line_number || ' ' || reason AS item
            FROM raw.rejected_rows WHERE file_kind = '{kind}'
            """,
            partitioned=False,
        ),
        partitioned=False,
        unit="file lines",
    )


READABLE = (
    "Every file is present and readable, valid text in CRM_INPUT_ENCODING (default UTF-8), with a header holding "
    "every required column once."
)
PRODUCT_CHECKS = [
    _loader_check("raw/products", "readable_with_required_columns", READABLE, "files"),
    _loader_check("raw/products", "unique_key", "product_id is unique (after trimming).", "files"),
    _loader_check(
        "raw/products", "consumables_have_positive_unit_size", "Every consumable has unit_size > 0.", "files"
    ),
    _rejected_rows_check("raw/products", PRODUCTS.kind),
    Check(
        "raw/products",
        "unknown_categories",
        WARN,
        "Products whose category is none of consumable, device, accessories, spare_parts (or refill): never counted.",
        tally(
            f"""
            SELECT product_id || '=' || coalesce(category, 'NULL') AS item
            FROM raw.products
            WHERE {rules.category_sql("category")} IS NULL
               OR {rules.category_sql("category")} NOT IN ({", ".join(repr(c) for c in rules.KNOWN_CATEGORIES)})
            """,
            partitioned=False,
        ),
        partitioned=False,
        unit="products",
    ),
]
CUSTOMER_CHECKS = [
    _loader_check("raw/customers", "readable_with_required_columns", READABLE, "files"),
    _loader_check("raw/customers", "unique_key", "customer_id is unique (after trimming).", "files"),
    _rejected_rows_check("raw/customers", CUSTOMERS.kind),
    Check(
        "raw/customers",
        "invalid_created_date",
        WARN,
        "Customers whose created_date is not a valid YYYY-MM-DD date: loaded with no created date.",
        tally(
            """
            SELECT customer_id || '=' || created_date_text AS item
            FROM raw.customers WHERE created_date IS NULL AND nullif(trim(created_date_text), '') IS NOT NULL
            """,
            partitioned=False,
        ),
        partitioned=False,
        unit="customers",
    ),
]
TRANSACTION_CHECKS = [
    _loader_check("raw/sales_transactions", "readable_with_required_columns", READABLE, "files"),
    _loader_check(
        "raw/sales_transactions",
        REMOVALS_CHECK,
        "No transactions file disappeared or lost more than half of its loaded rows since the last load, "
        "unless the run allows removals (crm run --allow-removals, run tag crm/allow_removals=true).",
        "files",
    ),
    _loader_check(
        "raw/sales_transactions",
        STALE_MONTHS_CHECK,
        "The run covers every stale month (a month whose lines, master rows, rules or code differ from what it was "
        "built from, or that a failed run left unfinished), so that no month stays on older inputs.",
        "runs",
    ),
    _rejected_rows_check("raw/sales_transactions", TRANSACTIONS.kind),
    Check(
        "raw/sales_transactions",
        PAST_DATA_CHECK,
        WARN,
        "Months of the run after the month of the newest transaction: with no line, every customer ages in them "
        "(crm run, the sensor and the schedule never ask for one unless --to says so).",
        """
        SELECT month, 1, 'no transaction after ' || strftime(newest, '%Y-%m'), 1, NULL::BIGINT
        FROM (SELECT max(partition_month) AS newest FROM raw.sales_transactions),
             (SELECT unnest(generate_series($start::DATE, $end::DATE, INTERVAL 1 MONTH))::DATE AS month)
        WHERE newest IS NULL OR month > newest
        """,
        unit="months",
    ),
    Check(
        "raw/sales_transactions",
        "exact_duplicate_lines",
        WARN,
        "Lines identical in every column to another line: loaded, and counted twice.",
        tally(
            """
            SELECT partition_month AS month, count(*) - 1 AS copies, min(source_file || ':' || line_number) AS item
            FROM raw.sales_transactions WHERE partition_month BETWEEN $start AND $end
            GROUP BY partition_month, invoice_id, customer_id, invoice_date, product_id, quantity, revenue,
                store_id, extra_columns
            HAVING count(*) > 1
            """,
            count="sum(copies)",
        ),
        unit="lines",
    ),
    Check(
        "raw/sales_transactions",
        "future_dated_lines",
        WARN,
        "Lines dated after today: loaded, counted from their month on.",
        tally(
            """
            SELECT source_file || ':' || line_number || ' ' || invoice_date AS item
            FROM raw.sales_transactions WHERE invoice_date > current_date
            """,
            partitioned=False,
        ),
        partitioned=False,
        unit="lines",
    ),
]


def loader_outcomes(checks: list[Check], error: InputFileError | None) -> list[Outcome]:
    """Outcomes of the checks the loader decides in Python: all pass, or the one named by ``error`` fails."""
    outcomes = []
    for check in checks:
        if check.sql is not None:
            continue
        failed = error is not None and error.check == check.name
        outcomes.append(Outcome(check, {None: (1, str(error)) if failed else (0, None)}))
    return outcomes


def checked_load(context, warehouse: Warehouse, checks: list[Check], load, start=None, end=None, keys=()):
    """Run ``load(con)``; on a blocking input error record the failed check and raise, else evaluate the warnings.

    Returns (load result, outcomes). A generator is not needed: the caller
    attaches the outcomes to its MaterializeResult, or they travel in the raised Failure.
    """
    with warehouse.connect() as con:
        landing = DuckDBEngine(con)  # the raw layer's checks and their record: on the DuckDB landing, any engine
        try:
            loaded = load(con)
        except InputFileError as exc:
            outcomes = loader_outcomes(checks, exc)
            quality.record(landing, context.run_id, outcomes)
            raise LoadStopped(outcomes, exc) from None
        outcomes = loader_outcomes(checks, None) + quality.evaluate(landing, checks, start, end, keys)
        quality.record(landing, context.run_id, outcomes)
        warehouse.publish_raw(con, RAW_DATA_TABLES)
    return loaded, outcomes


class LoadStopped(Exception):
    """A blocking raw check failed: carries its outcomes and the one-line error."""

    def __init__(self, outcomes: list[Outcome], error: InputFileError):
        super().__init__(str(error))
        self.outcomes = outcomes
        self.error = error

    def failure(self):
        return Failure(description=str(self.error), metadata={USER_ERROR_METADATA: True}, allow_retries=False)


def _file_table(files: list[StagedFile]) -> str:
    lines = ["| file | rows read | loaded | rejected | blank lines |", "|---|---:|---:|---:|---:|"]
    for s in files:
        lines.append(f"| {s.path.name} | {s.rows_read} | {s.rows_valid} | {s.rows_rejected} | {s.blank_lines} |")
    return "\n".join(lines)


def guard_removals(con: duckdb.DuckDBPyConnection, input_dir: Path, first_month: date, allowed: bool) -> None:
    """The removal rule of the transactions load, applied before a master is replaced.

    In a run launched from the UI or the schedule the masters load before the
    transactions: a removal must stop the run before they change too.
    """
    ensure_raw_schema(con)
    state = read_state(con)
    removals = find_removals(state, profile_folder(input_dir, state.profiles), first_month)
    if removals and not allowed:
        raise InputFileError(removal_message(removals), check=REMOVALS_CHECK)


def stale_months_left(
    input_dir: Path, warehouse: Warehouse, first: date, keys: list[str], start: date, end: date, allowed: bool
) -> str | None:
    """Why a run of ``start``..``end`` would leave stale months behind (``builds.uncovered``), read before the
    load opens the warehouse; None when it leaves none (or a removal not allowed stops it first)."""
    try:
        plan, staleness = assess(input_dir, warehouse, first, keys)
    except CrmError:
        return None  # a file that cannot be read: the load itself says why, in one line, with its check
    if plan.removals and not allowed or plan.span is None:
        return None  # the load itself says why, in one line
    return uncovered(staleness, keys, f"{start:%Y-%m}-01", f"{end:%Y-%m}-01")


def _load_master_asset(context, warehouse: Warehouse, input_folder: InputFolder, spec: FileSpec, checks: list[Check]):
    tags = context.run.tags
    input_dir = input_folder.folder

    def load(con):
        if tags.get(PREFLIGHT_TAG) != "done":  # crm run and the sensor compared the folder just before launching
            guard_removals(
                con, input_dir, calendar_start_of(context), tags.get(ALLOW_REMOVALS_TAG, "").lower() == "true"
            )
        return load_master(con, input_dir, spec)

    try:
        staged, outcomes = checked_load(context, warehouse, checks, load)
    except LoadStopped as stop:
        yield from check_results(stop.outcomes)
        raise stop.failure() from None
    yield _master_result(staged, outcomes)


def _master_result(staged: StagedFile, outcomes: list[Outcome]) -> MaterializeResult:
    return MaterializeResult(
        check_results=check_results(outcomes),
        metadata={
            "source_file": staged.path.name,
            "rows_read": staged.rows_read,
            "rows_loaded": staged.rows_valid,
            "rows_rejected": staged.rows_rejected,
            "summary": MetadataValue.md(_file_table([staged])),
        },
    )


@asset(
    key_prefix="raw",
    group_name="raw",
    kinds={"duckdb"},
    check_specs=check_specs(PRODUCT_CHECKS),
    metadata=RAW_PRODUCTS.metadata(),
)
def products(context: AssetExecutionContext, warehouse: Warehouse, input_folder: InputFolder):
    """The product master as loaded: one row per product of ``products_master.csv``.

    Point-in-time snapshot, replaced whole. Keeps each row's file and line;
    ``grammage_g`` is read as ``unit_size``. Stops on a duplicate
    ``product_id`` or a consumable without a positive ``unit_size``.
    """
    yield from _load_master_asset(context, warehouse, input_folder, PRODUCTS, PRODUCT_CHECKS)


@asset(
    key_prefix="raw",
    group_name="raw",
    kinds={"duckdb"},
    check_specs=check_specs(CUSTOMER_CHECKS),
    metadata=RAW_CUSTOMERS.metadata(),
)
def customers(context: AssetExecutionContext, warehouse: Warehouse, input_folder: InputFolder):
    """The customer master as loaded: one row per customer of ``customers_master.csv``.

    Point-in-time snapshot, replaced whole. Ids stay text (``007`` is not
    ``7``); a blank or invalid ``created_date`` loads as NULL with its text
    kept. Stops on a duplicate ``customer_id``.
    """
    yield from _load_master_asset(context, warehouse, input_folder, CUSTOMERS, CUSTOMER_CHECKS)


@asset(
    key_prefix="raw",
    group_name="raw",
    kinds={"duckdb"},
    partitions_def=DECLARED,
    backfill_policy=BackfillPolicy.single_run(),
    check_specs=check_specs(TRANSACTION_CHECKS),
    metadata=SALES_TRANSACTIONS.metadata(),
)
def sales_transactions(context: AssetExecutionContext, warehouse: Warehouse, input_folder: InputFolder):
    """Invoice lines of every ``sales_transactions_*.csv``, partitioned by invoice month.

    One run reads the files once and replaces exactly the rows of its months
    (any range: a backfill is one run); a file unchanged since it was loaded
    for these months is not read again. Malformed lines go to
    ``raw.rejected_rows`` with their reason; per file, rows read = rows loaded
    + rows rejected (``raw.file_loads``).
    """
    window = context.partition_time_window
    start = window.start.date()
    end_exclusive = window.end.date()
    end = date(end_exclusive.year - (end_exclusive.month == 1), (end_exclusive.month - 2) % 12 + 1, 1)
    keys = context.assets_def.partitions_def.get_partition_keys(dynamic_partitions_store=context.instance)
    first, last = calendar_start_of(context), key_to_date(keys[-1])
    allowed = context.run.tags.get(ALLOW_REMOVALS_TAG, "").lower() == "true"
    refusal = stale_months_left(input_folder.folder, warehouse, first, keys, start, end, allowed)

    def load(con):
        if refusal:
            raise InputFileError(refusal, check=STALE_MONTHS_CHECK)
        return load_transactions(con, input_folder.folder, start, end, first, last, allow_removals=allowed)

    try:
        result, outcomes = checked_load(
            context,
            warehouse,
            TRANSACTION_CHECKS,
            load,
            start,
            end,
            context.partition_keys,
        )
    except LoadStopped as stop:
        yield from check_results(stop.outcomes)
        raise stop.failure() from None
    yield MaterializeResult(
        check_results=check_results(outcomes),
        metadata={
            "months": result.months_replaced,
            "rows_loaded": result.rows_loaded,
            "rows_read_all_files": result.rows_read_all_files,
            "rows_rejected_all_files": result.rows_rejected_all_files,
            "files": len(result.files) + len(result.unchanged_files),
            "files_read": len(result.files),
            "files_unchanged": len(result.unchanged_files),
            "summary": MetadataValue.md(_file_table(result.files)),
        },
    )


raw_assets = [products, customers, sales_transactions]
