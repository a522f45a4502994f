"""The new-file sensor: refresh the affected months when input files land or change.

Every 30 s it looks at ``CRM_INPUT_DIR``. Its cursor remembers, per file,
the size, modification time and SHA-256 of the content, and for transaction
files a digest per invoice month (line count and an order-independent hash).
Then:

- a new or replaced transactions file requests one run of every month from
  its earliest changed invoice month through the newest month (later months
  depend on history);
- a changed or new master requests every month of the data;
- an unchanged folder requests nothing;
- a file modified in the last ``CRM_SENSOR_SETTLE_SECONDS`` (default 30) may
  still be being written: the sensor waits for the next tick, leaving its
  cursor unchanged.
"""

import hashlib
import json
import os
import time
from pathlib import Path

import duckdb
from dagster import AssetKey, DefaultSensorStatus, RunRequest, SensorEvaluationContext, SkipReason, sensor

from crm_assets import settings
from crm_assets.csv_input import TRANSACTIONS, read_header, resolve_columns
from crm_assets.errors import CrmError
from crm_assets.jobs import crm_pipeline_job, range_tags
from crm_assets.partitions import monthly_partitions
from crm_assets.raw import CUSTOMERS_FILE, PRODUCTS_FILE, TRANSACTIONS_GLOB

UNDATED = "undated"
SNAPSHOT = AssetKey(["reporting", "customer_snapshot"])


def settle_seconds() -> float:
    return float(os.environ.get("CRM_SENSOR_SETTLE_SECONDS", "30"))


def file_hash(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def month_digests(path: Path) -> dict[str, str]:
    """``{YYYY-MM-01 or 'undated': 'lines:hash'}`` of a transactions file, in one DuckDB scan.

    The month is taken from the invoice_date field of each line (lines whose
    date cannot be read count as ``undated``, which means "every month").
    """
    position = resolve_columns(path, read_header(path), TRANSACTIONS)["invoice_date"]
    con = duckdb.connect()
    try:
        rows = con.execute(
            f"""
            SELECT coalesce(strftime(date_trunc('month', try_cast(trim(string_split(line, ',')[{position + 1}]) AS DATE)), '%Y-%m-%d'), '{UNDATED}'),
                count(*), bit_xor(hash(line))
            FROM read_csv(?, columns = {{'line': 'VARCHAR'}}, header = false, skip = 1, auto_detect = false,
                delim = '\x1f\x1e\x1d', quote = '', escape = '', strict_mode = false, ignore_errors = true)
            WHERE line IS NOT NULL
            GROUP BY 1
            """,
            [str(path)],
        ).fetchall()
    finally:
        con.close()
    return {month: f"{count}:{digest}" for month, count, digest in rows}


def scan(folder: Path, previous: dict) -> tuple[dict, list[str]]:
    """The folder's state as a cursor dict, reusing hashes of files whose size and mtime did not change.

    Returns (state, files still being written).
    """
    state: dict = {}
    unsettled = []
    now = time.time()
    names = [PRODUCTS_FILE, CUSTOMERS_FILE] + sorted(p.name for p in folder.glob(TRANSACTIONS_GLOB))
    for name in names:
        path = folder / name
        if not path.is_file():
            continue
        stat = path.stat()
        if now - stat.st_mtime < settle_seconds():
            unsettled.append(name)
            continue
        old = previous.get(name)
        if old and old["size"] == stat.st_size and old["mtime_ns"] == stat.st_mtime_ns:
            state[name] = old
            continue
        entry = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "sha256": file_hash(path)}
        if old and old["sha256"] == entry["sha256"]:
            entry["months"] = old.get("months")
        elif name not in (PRODUCTS_FILE, CUSTOMERS_FILE):
            entry["months"] = month_digests(path)
        state[name] = entry
    return state, unsettled


def changed_months(previous: dict, current: dict) -> tuple[str | None, bool]:
    """(earliest changed invoice month or 'undated', whether a master changed)."""
    master_changed = any(
        previous.get(name, {}).get("sha256") != current.get(name, {}).get("sha256")
        for name in (PRODUCTS_FILE, CUSTOMERS_FILE)
    )
    months: set[str] = set()
    for name in set(previous) | set(current):
        if name in (PRODUCTS_FILE, CUSTOMERS_FILE):
            continue
        old, new = previous.get(name, {}), current.get(name, {})
        if old.get("sha256") == new.get("sha256"):
            continue
        old_months, new_months = old.get("months") or {}, new.get("months") or {}
        months |= {m for m in set(old_months) | set(new_months) if old_months.get(m) != new_months.get(m)}
    if UNDATED in months:
        return UNDATED, master_changed
    return (min(months) if months else None), master_changed


def first_data_month(state: dict) -> str | None:
    months = [m for entry in state.values() for m in (entry.get("months") or {}) if m != UNDATED]
    return min(months) if months else None


@sensor(
    job=crm_pipeline_job,
    minimum_interval_seconds=30,
    default_status=DefaultSensorStatus.RUNNING,
    description="Refreshes the affected months when files in CRM_INPUT_DIR are added or replaced.",
)
def input_files_sensor(context: SensorEvaluationContext):
    folder = settings.input_dir()
    if not folder.is_dir():
        return SkipReason(f"{folder}: input folder not found")
    cursor = json.loads(context.cursor) if context.cursor else {}
    previous = cursor.get("files", {})
    try:
        current, unsettled = scan(folder, previous)
    except CrmError as exc:
        return SkipReason(str(exc))
    if unsettled:
        return SkipReason(f"waiting for {', '.join(unsettled)} to finish writing")
    earliest, master_changed = changed_months(previous, current)
    if earliest is None and not master_changed:
        return SkipReason("no new or changed input file")
    keys = monthly_partitions.get_partition_keys()
    data_first = first_data_month(current)
    if master_changed or earliest == UNDATED or earliest is None:
        earliest = data_first or keys[0]
    first = max(earliest, keys[0])
    # through the newest month: of the data, or of what was already built, whichever is later
    newest = [m for e in current.values() for m in (e.get("months") or {}) if m != UNDATED]
    newest += list(context.instance.get_materialized_partitions(SNAPSHOT))
    last = min(keys[-1], max(newest)) if newest else keys[-1]
    if first > last:
        context.update_cursor(json.dumps({"files": current}))
        return SkipReason("the changed months are not partitions yet")
    new_cursor = json.dumps({"files": current}, sort_keys=True)
    run_key = hashlib.sha256(new_cursor.encode()).hexdigest()[:16]
    context.update_cursor(new_cursor)
    return RunRequest(run_key=run_key, tags={**range_tags(first, last), "crm/trigger": "input_files_sensor"})
