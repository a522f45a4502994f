"""The landing folder against the warehouse: one reading of every file, and what a run must do about it.

Every transactions file is read by the loader's own line-exact reader
(``csv_input.stage_file``), and nothing else: the months of the data, the
sensor's view of what changed and the load itself all come from that one
reading, so a defect that the loader rejects line by line cannot make the
month span or the change detection see less.

A *profile* of a file is its SHA-256, its row counts and, per invoice month,
the valid lines and a content hash (the sum of the hashes of the lines with
their file and line number, so duplicate lines count twice). The loader keeps
the profile of each version it read in ``raw.file_profiles``, so an unchanged
file is never read twice. :func:`plan_folder` compares the folder with what
the warehouse loaded (which months are stale is ``builds.find_stale``'s to
say, from the same profiles):

- a *removal* is a transactions file that disappeared, or that now has fewer
  than half of the valid rows it had at its last load. It stops the run until
  it is allowed (``crm run --allow-removals``).
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import duckdb

from crm_assets.core import settings
from crm_assets.core.csv_input import TRANSACTIONS, hand_off, named_files, stage_file, tag_for, text_source, version_of
from crm_assets.core.errors import CrmError, InputFileError
from crm_assets.engines.duckdb import one_row

CUSTOMERS_FILE = "customers_master.csv"
PRODUCTS_FILE = "products_master.csv"
MASTER_FILES = (PRODUCTS_FILE, CUSTOMERS_FILE)
TRANSACTIONS_GLOB = "sales_transactions_*.csv"
TRANSACTIONS_KIND = TRANSACTIONS.kind
ALLOW_REMOVALS_TAG = "crm/allow_removals"
# set by `crm run` and the sensor: the folder was compared with the warehouse just before the run was launched
PREFLIGHT_TAG = "crm/preflight"

# A loaded line as the warehouse keeps it, its place included: a line that moves (a line inserted above it, a
# line moved to another file) changes its month too, since raw and enriched trace every line to its file and line.
CONTENT_COLUMNS = (
    "source_file, line_number, invoice_id, customer_id, invoice_date, product_id, quantity, revenue, store_id, "
    "extra_columns"
)
CONTENT_HASH = f"sum(hash({CONTENT_COLUMNS})::HUGEINT)"

Digest = tuple[int, int]  # (lines, content hash)


class RemovalNotAllowed(CrmError):
    """Rows would disappear from the warehouse; ``--allow-removals`` accepts it."""


@dataclass
class FileProfile:
    name: str
    sha256: str
    rows_read: int
    rows_valid: int
    rows_rejected: int
    months: dict[date, Digest] = field(default_factory=dict)  # invoice month -> digest
    last_dates: dict[date, date] = field(default_factory=dict)  # invoice month -> its newest invoice date

    @property
    def newest_date(self) -> date | None:
        return max(self.last_dates.values(), default=None)


def transaction_files(input_dir: Path) -> list[Path]:
    """Every ``sales_transactions_*.csv`` of the folder, sorted by name; one in other case (``.CSV``) stops, other
    CSV files are named in a warning (``csv_input.named_files``)."""
    if not input_dir.is_dir():
        raise InputFileError(f"{input_dir}: input folder not found")
    files = named_files(input_dir, TRANSACTIONS_GLOB, MASTER_FILES)
    if not files:
        raise InputFileError(f"{input_dir}: no {TRANSACTIONS_GLOB} file found")
    return files


def profile_of_staged(con: duckdb.DuckDBPyConnection, staged) -> FileProfile:
    """The profile of a file staged on ``con`` (its valid table)."""
    rows = con.execute(
        f"""
        SELECT date_trunc('month', invoice_date)::DATE, count(*), {CONTENT_HASH}, max(invoice_date)::DATE
        FROM {staged.valid_table} GROUP BY 1
        """
    ).fetchall()
    return FileProfile(
        staged.path.name,
        staged.sha256,
        staged.rows_read,
        staged.rows_valid,
        staged.rows_rejected,
        {month: (int(n), int(h)) for month, n, h, _ in rows},
        {month: last for month, _, _, last in rows},
    )


@contextmanager
def scratch_duckdb(prefix: str) -> Iterator[duckdb.DuckDBPyConnection]:
    """A throw-away in-memory DuckDB that spills to a temporary folder of its own, for reading files beside a run."""
    with tempfile.TemporaryDirectory(prefix=prefix) as spill:
        con = duckdb.connect(config={"temp_directory": spill})
        try:
            con.execute("SET enable_progress_bar = false")
            yield con
        finally:
            con.close()


def profile_file(path: Path) -> FileProfile:
    """Read one transactions file with the loader's reader, in a throw-away in-memory DuckDB, and hand the rows
    to the load (``csv_input.hand_off``)."""
    with scratch_duckdb("crm-profile-") as con:
        with text_source(path) as source:
            staged = stage_file(con, path, TRANSACTIONS, f"p_{tag_for(path.stem)}", source)
        hand_off(con, staged)  # the load that follows takes these rows instead of parsing the file again
        return profile_of_staged(con, staged)


def profile_folder(input_dir: Path, known: dict[tuple[str, str], FileProfile] | None = None) -> list[FileProfile]:
    """Profiles of every transactions file; a file whose version is in ``known`` or in the cache is not read again."""
    cache = ProfileCache(input_dir)
    profiles = []
    for path in transaction_files(input_dir):
        sha = version_of(path)
        before = path.stat()
        profile = (known or {}).get((path.name, sha)) or cache.by_version(path.name, sha)
        if profile is None:
            profile = profile_file(path)
        cache.keep(path, profile, before)
        profiles.append(profile)
    cache.save()
    return profiles


def quick_profiles(input_dir: Path) -> list[FileProfile]:
    """Profiles of every readable transactions file, trusting the cache for a file whose size and time did not
    change; a file that cannot be read is left out (the run itself names it, in one line).

    For the calendar, which every Dagster process computes when it imports the definitions: no file is
    hashed or read unless it changed since a process last profiled it.
    """
    cache = ProfileCache(input_dir)
    profiles = []
    for path in transaction_files(input_dir):
        before = path.stat()
        try:
            profile = cache.by_stat(path) or profile_file(path)
        except (CrmError, OSError):
            continue
        cache.keep(path, profile, before)
        profiles.append(profile)
    cache.save()
    return profiles


class ProfileCache:
    """Profiles of the folder's files kept in ``$DAGSTER_HOME/crm_profiles.json``, so that no process reads a file
    another one already read: the definitions' load (the calendar), the sensor, the schedule and ``crm run``.

    A cache only: unreadable or unwritable, it is ignored; the loader never trusts it (it hashes what it loads).
    """

    def __init__(self, input_dir: Path):
        self.path = settings.dagster_home() / "crm_profiles.json"
        self.folder = str(input_dir.resolve())
        self.encoding = settings.input_encoding()
        try:
            data = json.loads(self.path.read_text())
            entries = data.get(self.folder, {}) if isinstance(data, dict) else {}
        except (OSError, ValueError):
            entries = {}
        # a cache is only a cache: anything that is not what this code wrote is ignored
        self.entries = {k: v for k, v in entries.items() if isinstance(v, dict)} if isinstance(entries, dict) else {}
        self.kept: dict[str, dict] = {}

    def by_stat(self, path: Path) -> FileProfile | None:
        entry = self.entries.get(path.name, {})
        stat = path.stat()
        if entry and [entry.get("size"), entry.get("mtime_ns"), entry.get("encoding")] == [
            stat.st_size,
            stat.st_mtime_ns,
            self.encoding,
        ]:
            return _profile_from_json(entry.get("profile"))
        return None

    def by_version(self, name: str, version: str) -> FileProfile | None:
        entry = self.entries.get(name)
        return _profile_from_json(entry.get("profile")) if entry and entry.get("version") == version else None

    def keep(self, path: Path, profile: FileProfile, before: os.stat_result | None = None) -> None:
        stat = path.stat()
        if before is not None and (before.st_size, before.st_mtime_ns) != (stat.st_size, stat.st_mtime_ns):
            return  # the file changed while it was read: the profile may be of neither version
        self.kept[path.name] = {
            "size": stat.st_size,
            "mtime_ns": stat.st_mtime_ns,
            "encoding": self.encoding,
            "version": profile.sha256,
            "profile": _profile_to_json(profile),
        }

    def save(self) -> None:
        if self.kept == self.entries:
            return
        try:
            data = json.loads(self.path.read_text()) if self.path.exists() else {}
            data = data if isinstance(data, dict) else {}
        except (OSError, ValueError):
            data = {}
        data[self.folder] = self.kept  # the folder's files as they are now: a removed file leaves the cache
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile("w", dir=self.path.parent, prefix=".crm_profiles-", delete=False) as tmp:
                json.dump(data, tmp)
            os.replace(tmp.name, self.path)
        except OSError:
            pass


def _profile_to_json(profile: FileProfile) -> dict:
    return {
        "name": profile.name,
        "version": profile.sha256,
        "rows": [profile.rows_read, profile.rows_valid, profile.rows_rejected],
        "months": [
            [m.isoformat(), n, str(h), profile.last_dates[m].isoformat()] for m, (n, h) in profile.months.items()
        ],
    }


def _profile_from_json(data) -> FileProfile | None:
    try:
        read, valid, rejected = (int(x) for x in data["rows"])
        profile = FileProfile(data["name"], data["version"], read, valid, rejected)
        for month, n, h, last in data["months"]:
            profile.months[date.fromisoformat(month)] = (int(n), int(h))
            profile.last_dates[date.fromisoformat(month)] = date.fromisoformat(last)
        return profile
    except (KeyError, TypeError, ValueError):
        return None


def data_span(profiles: list[FileProfile]) -> tuple[date, date] | None:
    """First and last invoice month of the valid lines of every file; None when there is none."""
    months = [m for p in profiles for m in p.months]
    return (min(months), max(months)) if months else None


def fold(profiles: list[FileProfile], first_partition: date) -> dict[date, Digest]:
    """Digests per partition month (invoice month, or the first partition for older lines) over the files."""
    months: dict[date, Digest] = {}
    for profile in profiles:
        for month, (n, h) in profile.months.items():
            key = max(month, first_partition)
            lines, total = months.get(key, (0, 0))
            months[key] = (lines + n, total + h)
    return months


# --- what the warehouse holds -------------------------------------------------------------------------------


@dataclass
class LoadedFile:
    kind: str
    sha256: str | None
    rows_valid: int


@dataclass
class WarehouseState:
    """What the warehouse says about the files it loaded and the months it built (all empty for a new one)."""

    files: dict[str, LoadedFile] = field(default_factory=dict)
    profiles: dict[tuple[str, str], FileProfile] = field(default_factory=dict)
    built: list[date] = field(default_factory=list)
    # how to reach the warehouse for the on-demand queries: a connection held by the caller (the loader), or a
    # way to open one briefly (readers must not hold the file while they read input files)
    connect: Callable[[], AbstractContextManager] | None = None

    def query(self, sql: str, table: tuple[str, str], params: list | None = None) -> list[tuple]:
        """The rows of ``sql``, or none when the warehouse has no ``table`` (schema, name) yet."""
        if self.connect is None:
            return []
        with self.connect() as con:
            return con.execute(sql, params or []).fetchall() if has_table(con, *table) else []

    def rows_by_month(self, source_file: str) -> dict[date, int]:
        return dict(
            self.query(
                "SELECT partition_month, count(*) FROM raw.sales_transactions WHERE source_file = ? GROUP BY 1",
                ("raw", "sales_transactions"),
                [source_file],
            )
        )


def has_table(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> bool:
    return bool(
        one_row(
            con,
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = ? AND table_name = ?",
            [schema, table],
        )[0]
    )


def _has_column(con: duckdb.DuckDBPyConnection, schema: str, table: str, column: str) -> bool:
    return bool(
        one_row(
            con,
            "SELECT count(*) FROM information_schema.columns WHERE table_schema = ? AND table_name = ? "
            "AND column_name = ?",
            [schema, table, column],
        )[0]
    )


def read_state(
    con: duckdb.DuckDBPyConnection, connect: Callable[[], AbstractContextManager] | None = None
) -> WarehouseState:
    """The state of the warehouse open on ``con`` (read-only is enough).

    Later queries use ``connect`` (open the warehouse briefly), or ``con`` itself when it is not given.
    """
    state = WarehouseState(connect=connect or (lambda: nullcontext(con)))
    if has_table(con, "raw", "file_loads"):
        digest = "file_digest" if _has_column(con, "raw", "file_loads", "file_digest") else "NULL"
        for kind, name, sha, valid in con.execute(
            f"SELECT file_kind, source_file, {digest}, rows_valid FROM raw.file_loads"
        ).fetchall():
            state.files[name] = LoadedFile(kind, sha, int(valid or 0))
    if has_table(con, "raw", "file_profiles"):
        # a profile stored before the newest dates were kept is read again (its row has no last_invoice_date)
        last = "last_invoice_date" if _has_column(con, "raw", "file_profiles", "last_invoice_date") else "NULL::DATE"
        incomplete = set()
        for name, sha, read, valid, rejected, month, n, h, newest in con.execute(
            "SELECT source_file, file_digest, rows_read, rows_valid, rows_rejected, invoice_month, lines, content_hash, "
            f"{last} FROM raw.file_profiles"
        ).fetchall():
            profile = state.profiles.setdefault((name, sha), FileProfile(name, sha, read, valid, rejected))
            if month is not None:
                profile.months[month] = (int(n), int(h))
                profile.last_dates[month] = newest
                if newest is None:
                    incomplete.add((name, sha))
        for key in incomplete:
            del state.profiles[key]
    if has_table(con, "reporting", "snapshot_manifest"):
        state.built = [
            m
            for (m,) in con.execute(
                "SELECT DISTINCT report_month FROM reporting.snapshot_manifest ORDER BY 1"
            ).fetchall()
        ]
    return state


# --- removals ------------------------------------------------------------------------------------------------


@dataclass
class Removal:
    source_file: str
    rows_before: int
    rows_now: int | None  # None: the file is gone
    months: list[date]
    rows_lost: int
    renamed_to: str | None = None  # a new file holding as many lines of each of its months

    def describe(self) -> str:
        what = (
            "is gone from the folder"
            if self.rows_now is None
            else f"has {self.rows_now:,} valid rows, fewer than half of the {self.rows_before:,} loaded"
        )
        where = f"; {month_ranges(self.months)} would lose {self.rows_lost:,} rows" if self.months else ""
        if self.renamed_to:
            where += (
                f" (but {self.renamed_to}, new, holds as many lines of the same months: if the file was renamed, "
                "--allow-removals reads them under the new name)"
            )
        return f"{self.source_file} {what}{where}"


def month_ranges(months: list[date]) -> str:
    """``2023-01..2023-12, 2024-03`` for a list of months."""
    ordered = sorted(set(months))
    parts: list[str] = []
    span: tuple[date, date] | None = None  # the first and last month of the run of months so far
    for month in ordered:
        if span is not None and (month.year * 12 + month.month) == (span[1].year * 12 + span[1].month) + 1:
            span = (span[0], month)
            continue
        if span is not None:
            parts.append(_range(*span))
        span = (month, month)
    if span is not None:
        parts.append(_range(*span))
    return ", ".join(parts)


def _range(a: date, b: date) -> str:
    return f"{a:%Y-%m}" if a == b else f"{a:%Y-%m}..{b:%Y-%m}"


def find_removals(
    state: WarehouseState, profiles: list[FileProfile], first_partition: date, unchanged: Iterable[str] = ()
) -> list[Removal]:
    """Transactions files gone since their last load, or holding fewer than half of the rows loaded from them.

    ``unchanged`` names files known to be the version loaded (no profile needed: they lost nothing).
    """
    present = {p.name: p for p in profiles}
    removals = []
    for name, loaded in sorted(state.files.items()):
        if loaded.kind != TRANSACTIONS_KIND or name in set(unchanged):
            continue
        profile = present.get(name)
        if profile is not None and 2 * profile.rows_valid >= loaded.rows_valid:
            continue
        before = state.rows_by_month(name)
        after = fold([profile], first_partition) if profile is not None else {}
        lost = {m: n - after.get(m, (0, 0))[0] for m, n in before.items() if n > after.get(m, (0, 0))[0]}
        new_files = [p for p in profiles if p.name not in state.files]
        renamed = next(
            (
                p.name
                for p in new_files
                if before and {m: n for m, (n, _) in fold([p], first_partition).items()} == before
            ),
            None,
        )
        removals.append(
            Removal(
                name,
                loaded.rows_valid,
                None if profile is None else profile.rows_valid,
                sorted(lost),
                sum(lost.values()),
                renamed if profile is None else None,
            )
        )
    return removals


def removal_message(removals: list[Removal]) -> str:
    earliest = min((m for r in removals for m in r.months), default=None)
    then = f" and recompute every month from {earliest:%Y-%m}" if earliest else ""
    return (
        "; ".join(r.describe() for r in removals)
        + f". Nothing was changed: run again with --allow-removals to remove those rows{then}"
    )


# --- the plan of a run ---------------------------------------------------------------------------------------


@dataclass
class Plan:
    """What the folder means for the warehouse (which months are stale is ``builds.find_stale``'s to say)."""

    profiles: list[FileProfile]
    span: tuple[date, date] | None
    masters_changed: list[str]
    files_changed: bool  # any transactions file differs from the version loaded (even with no month changed)
    removals: list[Removal]


def plan_folder(input_dir: Path, state: WarehouseState, first_partition: date) -> Plan:
    """Compare the folder with the warehouse: profiles, changed files and masters, removals."""
    profiles = profile_folder(input_dir, state.profiles)
    loaded_tx = {n: f for n, f in state.files.items() if f.kind == TRANSACTIONS_KIND}
    files_changed = {p.name: p.sha256 for p in profiles} != {n: f.sha256 for n, f in loaded_tx.items()}
    masters_changed = []
    for name in MASTER_FILES:
        path = input_dir / name
        if not path.is_file():
            continue
        with text_source(path) as source:  # a master in the wrong encoding stops here, before any run
            sha = source.sha256
        loaded = state.files.get(name)
        if loaded is None or loaded.sha256 != sha:
            masters_changed.append(name)
    removals = find_removals(state, profiles, first_partition)
    return Plan(profiles, data_span(profiles), masters_changed, files_changed, removals)


def read_warehouse_state(warehouse) -> WarehouseState:
    """The state of the ``Warehouse`` resource's file, read in one short read-only connection (empty if none)."""
    if not warehouse.file.exists():
        return WarehouseState()
    with warehouse.connect(read_only=True) as con:
        return read_state(con, connect=lambda: warehouse.connect(read_only=True))


# --- coverage: which months the landed files hold completely ----------------------------------------------------


@dataclass
class Coverage:
    """How far the data reaches, and the newest month it covers completely.

    A month is *covered* when a valid line is dated after it, or when a file holding lines of it was written on or
    after the first day of the next month (in ``CRM_SCHEDULE_TIMEZONE``): the extract was taken once the month had
    ended. The month of the newest line is covered only in the second way.
    """

    newest_date: date | None = None
    newest_file: str | None = None
    written: datetime | None = None  # when the newest file holding the newest month's lines was written
    covered_through: date | None = None

    def describe(self) -> str:
        if self.newest_date is None:
            return "no transaction line is valid"
        return (
            f"the newest transaction is dated {self.newest_date:%Y-%m-%d} ({self.newest_file}, written "
            f"{self.written:%Y-%m-%d %H:%M})"
        )


def coverage(input_dir: Path, profiles: list[FileProfile]) -> Coverage:
    dated = [(p.newest_date, p.name) for p in profiles if p.newest_date is not None]
    if not dated:
        return Coverage()
    newest_date = max(d for d, _ in dated)
    last_month = newest_date.replace(day=1)
    zone = ZoneInfo(settings.schedule_timezone())
    written, newest_file = max(
        (datetime.fromtimestamp((input_dir / p.name).stat().st_mtime, zone), p.name)
        for p in profiles
        if last_month in p.months
    )
    ended = datetime(last_month.year + last_month.month // 12, last_month.month % 12 + 1, 1, tzinfo=zone)
    covered: date | None
    if written >= ended:
        covered = last_month
    else:
        covered = date(last_month.year - (last_month.month == 1), (last_month.month - 2) % 12 + 1, 1)
        first = min(m for p in profiles for m in p.months)
        covered = covered if covered >= first else None
    return Coverage(newest_date, newest_file, written, covered)


# --- a stray date far before the data ---------------------------------------------------------------------------

# A few lines dated this many months or more before all the others are a typing error, not history: they would
# start the calendar years early (every month between them and the data an empty month).
OUTLIER_GAP_MONTHS = 24
OUTLIER_MAX_LINES = 5


def stray_lines(input_dir: Path, profiles: list[FileProfile]) -> str | None:
    """One line naming the first of a few lines dated ``OUTLIER_GAP_MONTHS`` or more before every other line of
    the folder (at most ``OUTLIER_MAX_LINES`` and 1% of the lines), or None."""
    per_month: dict[date, int] = {}
    for profile in profiles:
        for month, (n, _) in profile.months.items():
            per_month[month] = per_month.get(month, 0) + n
    months = sorted(per_month)
    total = sum(per_month.values())
    for i in range(1, len(months)):
        before, after = months[i - 1], months[i]
        gap = (after.year - before.year) * 12 + after.month - before.month
        head = sum(per_month[m] for m in months[:i])
        if gap >= OUTLIER_GAP_MONTHS and head <= min(OUTLIER_MAX_LINES, total // 100):
            return _describe_stray(input_dir, profiles, after, head)
        if head > OUTLIER_MAX_LINES:
            return None
    return None


def _describe_stray(input_dir: Path, profiles: list[FileProfile], data_start: date, lines: int) -> str:
    name = next(p.name for p in profiles if any(m < data_start for m in p.months))
    with scratch_duckdb("crm-stray-") as con:
        staged = stage_file(con, input_dir / name, TRANSACTIONS, "stray")
        line, day = one_row(
            con,
            f"SELECT line_number, invoice_date FROM {staged.valid_table} WHERE invoice_date < ? "
            "ORDER BY invoice_date, line_number LIMIT 1",
            [data_start],
        )
    others = f" ({lines} lines in all)" if lines > 1 else ""
    return (
        f"{name}: line {line} is dated {day:%Y-%m-%d}, {(data_start.year - day.year) * 12 + data_start.month - day.month}"
        f" months before every other line (from {data_start:%Y-%m}){others}; it would start the calendar in "
        f"{day:%Y-%m}: correct the date, or set {settings.ENV_FIRST_MONTH}={data_start:%Y-%m} (older lines then "
        "count as history of that month)"
    )
