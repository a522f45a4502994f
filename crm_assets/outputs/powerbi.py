"""The Power BI star schema: Parquet files and a Power BI project under ``<output>/powerbi/``.

| file | grain | |
|---|---|---|
| ``fact_customer_month/fact_customer_month_YYYY-MM.parquet`` | snapshot row | the keys of its dimensions and every column of ``reporting.customer_snapshot``; one file per month held |
| ``dim_customer.parquet`` | customer | ``customer_key``, master attributes; ``email`` / ``mobile_number`` only where consented |
| ``dim_date.parquet`` | day | the calendar, first day of the first month to the last day of the newest |
| ``dim_month.parquet`` | report month | year, quarter, month name, sort keys, ``is_latest`` |
| ``dim_activity_status.parquet``, ``dim_value_tier.parquet``, ``dim_lifecycle_stage.parquet``, ``dim_lifecycle_event.parquet`` | value | key (= sort order), the spec spelling, its definition |
| ``CRM.pbip``, ``CRM.SemanticModel/``, ``CRM.Report/`` | | the Power BI project reading the files (``pbip.py``) |

The columns and queries of the files are declared in ``star.py``. DuckDB
writes every file with ``COPY ... (FORMAT parquet)``: DATE columns stay
Parquet DATE (not integer timestamps), booleans stay booleans. The files go
to a new sibling folder which then replaces ``powerbi/`` in one step (an
atomic exchange of the two folders where the OS has one, else two renames a
few microseconds apart), so a reader sees the previous complete set or the
new complete set, never a mix. The asset is unpartitioned: Power BI reads one
folder holding every month (docs/powerbi.md). The fact table is one file per
month: a refresh writes the months whose snapshot was computed since the
previous set (``reporting.snapshot_manifest``; each file carries the version
it was written from, and the layout of the fact, in its Parquet key-value
metadata) and hard-links the others from it, so a monthly refresh writes one
month, not the whole history. The files of a set are never modified, only
replaced by the next set.

A refresh holds a lock file next to its staging folder (``.powerbi.lock-<id>``
beside ``.powerbi.new-<id>``, a ``flock`` the system releases when the process
dies, even by SIGKILL) from before the folder exists until it is swapped in or
removed: every refresh first deletes the staging folders whose lock is free
(left by a killed refresh), then the retired sets past their grace period.
"""

import ctypes
import ctypes.util
import datetime as dt
import hashlib
import os
import shutil
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import duckdb
from dagster import MaterializeResult, MetadataValue, asset

from crm_assets.core.errors import CrmError
from crm_assets.core.resources import OutputFolder, Warehouse, table_names
from crm_assets.layers import enriched
from crm_assets.layers.reporting import customer_snapshot
from crm_assets.outputs import pbip, star

POWERBI_FOLDER = "powerbi"
# A replaced set stays (hidden, next to the folder) this long for readers still reading it.
RETIRED_GRACE_SECONDS = 600.0
# A staging folder untouched this long belongs to a refresh that was killed (where no writer lock tells it sooner).
STAGING_MAX_SECONDS = 3600.0
# Next to the staging folder ``.powerbi.new-<id>`` while its refresh runs: ``.powerbi.lock-<id>``, a file the
# refresh holds an exclusive lock on (``fcntl.flock``, released by the system when the process dies, even by
# SIGKILL). A staging folder whose lock file is free belongs to a refresh that died: the next refresh deletes it.
LOCK_KIND = "lock"
# a free lock file with no staging folder (its refresh died after the swap) is deleted once this old
STRAY_LOCK_SECONDS = 60.0
SNAPSHOT = star.SNAPSHOT

MANIFEST = "reporting.snapshot_manifest"
FACT = star.FACT
# Parquet key-value metadata of each fact file: the snapshot version it was written from.
VERSION_KEY = "crm_snapshot_version"
FACT_MONTH_SQL = star.FACT_MONTH_SQL
# A file written by another layout of the fact (another query) is never reused: the layout is part of its version.
FACT_LAYOUT = hashlib.sha256(FACT_MONTH_SQL.encode()).hexdigest()[:12]
DIM_MONTH_SQL = star.DIM_MONTH_SQL


def table_sql() -> dict[str, str]:
    """Every dimension file of the star schema (name without ``.parquet``) and the query that fills it."""
    return star.dimension_sql()


@dataclass
class StarSchema:
    folder: Path
    rows: dict[str, int]
    bytes: int
    latest_month: object
    months_written: int = 0
    months_reused: int = 0


def _sql_string(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


_RENAME_EXCHANGE = 2


def _exchange(a: Path, b: Path) -> bool:
    """Swap two folders in one atomic step (Linux ``renameat2(RENAME_EXCHANGE)``); False where unsupported."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd = -100
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    result = renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), _RENAME_EXCHANGE)
    return result == 0


def swap_in(new: Path, target: Path) -> Path | None:
    """Make the folder ``new`` the folder ``target``; return where the previous set went (None if none).

    With an atomic exchange the path ``target`` always holds a complete set;
    otherwise it is missing for the instant between two renames. The previous
    set is only moved aside (``.powerbi.old-<time>-<id>``), not deleted: a
    reader in the middle of reading it keeps reading a complete set.
    """
    if not target.exists():
        os.rename(new, target)
        return None
    retired = target.with_name(f".{target.name}.old-{int(time.time())}-{uuid.uuid4().hex[:8]}")
    if _exchange(new, target):
        os.rename(new, retired)  # ``new`` now holds the previous set
        return retired
    try:
        os.rename(target, retired)
    except PermissionError:
        raise CrmError(f"{target}: cannot be replaced; close the program that has its files open (Power BI?)") from None
    try:
        os.rename(new, target)
    except BaseException:
        os.rename(retired, target)
        raise
    return retired


def fact_file(month) -> str:
    return f"{FACT}_{month:%Y-%m}.parquet"


def month_versions(con) -> dict[str, str]:
    """``{YYYY-MM: version}`` of every month held: the fact's layout, when the month was last computed, its rows."""
    months = f"SELECT report_month, count(*) AS n FROM {SNAPSHOT} GROUP BY 1"
    if MANIFEST in table_names(con):
        sql = f"""
        WITH held AS ({months}
            UNION ALL SELECT DISTINCT report_month, 0 FROM {MANIFEST}),
        computed AS (SELECT report_month, max(computed_at)::VARCHAR AS at FROM {MANIFEST} GROUP BY 1)
        SELECT strftime(h.report_month, '%Y-%m'), coalesce(c.at, '') || '/' || sum(h.n)
        FROM held h LEFT JOIN computed c USING (report_month) GROUP BY h.report_month, c.at
        """
        return {month: f"{FACT_LAYOUT}/{version}" for month, version in con.execute(sql).fetchall()}
    # no manifest: no way to tell an unchanged month, write them all
    sql = f"SELECT strftime(report_month, '%Y-%m') FROM ({months})"
    return {month: None for (month,) in con.execute(sql).fetchall()}


def _previous_versions(con, folder: Path) -> dict[str, str]:
    """``{file name: version}`` from the key-value metadata of the fact files of the previous set."""
    if not any(folder.glob("*.parquet")):
        return {}
    try:
        rows = con.execute(
            "SELECT file_name, value::VARCHAR FROM parquet_kv_metadata(?) WHERE key::VARCHAR = ?",
            [str(folder / "*.parquet"), VERSION_KEY],
        ).fetchall()
    except duckdb.Error:
        return {}  # an unreadable previous set: write every month
    return {Path(name).name: value for name, value in rows}


def write_fact(con, staging: Path, previous: Path) -> tuple[int, int, int]:
    """The fact folder in ``staging``: new files for months computed since ``previous``, links to the others.

    Returns (rows, months written, months reused).
    """
    folder = staging / FACT
    folder.mkdir()
    versions = month_versions(con)
    before = _previous_versions(con, previous)
    pending: list[tuple[str, list]] = []
    reused = 0
    for month, version in sorted(versions.items()):
        name = fact_file(dt.date.fromisoformat(month + "-01"))
        old = previous / name
        if version is not None and before.get(name) == version and old.is_file():
            try:
                os.link(old, folder / name)
                reused += 1
                continue
            except OSError:
                pass  # no hard links here (another file system): write it
        metadata = f", KV_METADATA {{{VERSION_KEY}: {_sql_string(version)}}}" if version is not None else ""
        copy = f"COPY ({FACT_MONTH_SQL}) TO {_sql_string(str(folder / name))} (FORMAT parquet, COMPRESSION snappy{metadata})"
        pending.append((copy, [dt.date.fromisoformat(month + "-01")]))
    copy_in_parallel(con, pending)
    rows = con.execute(f"SELECT count(*) FROM {SNAPSHOT}").fetchall()[0][0]
    return rows, len(pending), reused


def copy_in_parallel(con, statements: list[tuple[str, list]]) -> None:
    """Run the ``COPY`` statements on as many cursors as DuckDB has threads.

    A month's file is smaller than one Parquet row group, and DuckDB writes a row group on one thread: one month
    after another leaves every core but one idle.
    """
    threads = int(con.execute("SELECT current_setting('threads')").fetchone()[0])
    workers = max(1, min(threads, len(statements)))
    if workers == 1:
        for sql, params in statements:
            con.execute(sql, params)
        return
    stop = threading.Event()

    def work(cursor, jobs) -> None:
        for sql, params in jobs:
            if stop.is_set():
                return
            cursor.execute(sql, params)

    cursors = [con.cursor() for _ in range(workers)]
    try:
        with ThreadPoolExecutor(workers) as pool:
            futures = [pool.submit(work, c, statements[i::workers]) for i, c in enumerate(cursors)]
            try:
                for future in futures:
                    future.result()
            except BaseException:  # a failed month, or Ctrl-C: the other cursors stop now, not after their months
                stop.set()
                for cursor in cursors:
                    cursor.interrupt()
                raise
    finally:
        for cursor in cursors:
            cursor.close()


def lock_path(staging: Path) -> Path:
    """``.powerbi.lock-<id>``: the writer lock of the staging folder ``.powerbi.new-<id>``."""
    return staging.with_name(staging.name.replace(".new-", f".{LOCK_KIND}-", 1))


def hold_lock(path: Path):
    """Create ``path`` and lock it for this process; the open file to keep until the refresh is over (None where
    there is no ``flock``: staging folders are then judged by their age only)."""
    try:
        import fcntl  # noqa: PLC0415  (fcntl is Unix-only: no lock on Windows)
    except ImportError:  # Windows
        return None
    try:
        handle = open(path, "w")
    except OSError:
        return None
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        path.unlink(missing_ok=True)
        return None
    return handle


def writer_alive(staging: Path) -> bool | None:
    """Whether the refresh of ``staging`` is alive, from its lock file (``lock_path``): True when held, False when
    free (the refresh died: killed, crashed), None when there is none to tell (a refresh of an older version, no
    ``flock`` here). A refresh locks its file before it creates its staging folder and deletes it after the folder
    is gone (swapped in or removed), so a staging folder whose lock file is free is never a live one."""
    lock = lock_path(staging)
    if sys.platform == "win32" or not lock.is_file():
        return None
    return not _lock_free(lock)


def write_star_schema(con, output_dir: str | Path) -> StarSchema:
    """Write every file of the star schema into ``<output_dir>/powerbi`` atomically.

    Leftovers of earlier refreshes (retired sets past their grace, staging folders of killed refreshes) are
    deleted first and again at the end (``remove_retired``)."""
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    remove_retired(output_dir)
    target = output_dir / POWERBI_FOLDER
    staging = output_dir / f".{POWERBI_FOLDER}.new-{uuid.uuid4().hex[:8]}"
    lock = lock_path(staging)
    writer = hold_lock(lock)  # before the staging folder exists: a staging folder with a free lock is dead
    rows: dict[str, int] = {}
    try:
        staging.mkdir()
        rows[FACT], written, reused = write_fact(con, staging, target / FACT)
        for name, sql in table_sql().items():
            path = staging / f"{name}.parquet"
            copied = con.execute(f"COPY ({sql}) TO {_sql_string(str(path))} (FORMAT parquet, COMPRESSION snappy)")
            rows[name] = copied.fetchall()[0][0]
        check_customer_keys(con, staging / f"{star.CUSTOMER_TABLE.name}.parquet")
        pbip.write_project(staging, target)
        size = sum(p.stat().st_size for p in staging.rglob("*.parquet"))
        latest = con.execute(f"SELECT max(report_month) FROM {SNAPSHOT}").fetchall()[0][0]
        swap_in(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    finally:  # the staging folder is gone (swapped in or removed): its lock goes
        if writer is not None:
            lock.unlink(missing_ok=True)
            writer.close()
    remove_retired(output_dir)
    return StarSchema(target, rows, size, latest, written, reused)


def check_customer_keys(con, path: Path) -> None:
    """Stop the refresh when two customer ids share a ``customer_key``: a relationship would merge them."""
    shared = con.execute("SELECT count(*) - count(DISTINCT customer_key) FROM read_parquet(?)", [str(path)]).fetchone()[
        0
    ]
    if shared:
        raise CrmError(f"{path.name}: {shared} customer ids share a customer_key with another id; report this data set")


def remove_retired(output_dir: Path, grace_seconds: float | None = None) -> None:
    """Delete previous sets retired more than ``grace_seconds`` ago, and staging folders of killed refreshes.

    A previous set stays ``RETIRED_GRACE_SECONDS`` for readers that were in
    the middle of reading it; a file still open (Windows) is left for the next
    refresh. A staging folder goes as soon as its writer lock says its refresh
    died (``writer_alive``); one whose lock is held (a refresh running in
    another process) stays; one without a lock file goes once untouched for
    ``STAGING_MAX_SECONDS``.
    """
    grace = RETIRED_GRACE_SECONDS if grace_seconds is None else grace_seconds
    now = time.time()
    for path in output_dir.glob(f".{POWERBI_FOLDER}.*"):
        kind, _, rest = path.name[len(POWERBI_FOLDER) + 2 :].partition("-")
        try:
            if kind == "old":  # .powerbi.old-<retired at>-<id>
                expired = now - float(rest.split("-", 1)[0]) >= grace
            elif kind == "new":  # .powerbi.new-<id>, being written or left by a killed refresh
                alive = writer_alive(path)
                expired = alive is False or (alive is None and now - path.stat().st_mtime >= STAGING_MAX_SECONDS)
            elif kind == LOCK_KIND:  # .powerbi.lock-<id> of no staging folder: its refresh died after the swap
                stray = not path.with_name(path.name.replace(f".{LOCK_KIND}-", ".new-", 1)).exists()
                if stray and now - path.stat().st_mtime >= STRAY_LOCK_SECONDS and _lock_free(path):
                    path.unlink(missing_ok=True)
                continue
            else:
                continue
        except (ValueError, OSError):
            continue
        if expired and path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
            if kind == "new" and not path.exists():
                lock_path(path).unlink(missing_ok=True)


def _lock_free(path: Path) -> bool:
    """True when no process holds the lock file ``path`` (False where there is no ``flock``)."""
    try:
        import fcntl  # noqa: PLC0415  (fcntl is Unix-only: no lock on Windows)
    except ImportError:
        return False
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False  # held
    finally:
        os.close(fd)  # closing releases a lock taken here
    return True


@asset(
    key_prefix="powerbi",
    group_name="outputs",
    kinds={"duckdb", "parquet", "powerbi"},
    deps=[customer_snapshot, enriched.customers],
)
def star_schema(warehouse: Warehouse, output_folder: OutputFolder) -> MaterializeResult:
    """The Power BI star schema: Parquet files of every snapshot month and a Power BI project under ``<output>/powerbi/``.

    ``fact_customer_month`` (one row per snapshot row, with integer keys),
    ``dim_customer`` (contact data only where consented), ``dim_date`` (the
    daily calendar), ``dim_month`` (with ``is_latest``), the small dimensions
    of status, tier, stage and event, and ``CRM.pbip``: the model of these
    files (relationships, sort orders, measures), ready to open and refresh.
    A new set is built on every run (the fact months computed since the last
    set are written, the others linked) and swapped in atomically, so Power BI
    never reads half a refresh.
    """
    with warehouse.connect(read_only=True) as con:
        result = write_star_schema(con, output_folder.folder)
    return MaterializeResult(
        metadata={
            **{f"rows: {name}": n for name, n in result.rows.items()},
            "latest month": str(result.latest_month),
            "fact months written": result.months_written,
            "fact months unchanged (linked)": result.months_reused,
            "bytes": result.bytes,
            "folder": MetadataValue.path(str(result.folder)),
        }
    )


powerbi_assets = [star_schema]
