"""The new-file sensor: refresh the affected months when input files land, change or go.

Every 30 s it looks at ``CRM_INPUT_DIR``. Its baseline is the warehouse
itself: the file versions the raw layer recorded and the lines it holds per
month (``landing.plan_folder``, the same reading the load does). So starting
the daemon after a ``crm run`` requests nothing, and a change requests
exactly the months it affects:

- every stale month (``builds.find_stale``: lines, master rows, rules or code
  that differ from what a month was built from, a month a failed or killed run
  left unfinished, a month with data not built yet), as one run, the range
  ``crm run`` chooses without options;
- a master that changed without reaching any month: the newest month, so that
  the masters are loaded again;
- a file that disappeared or lost more than half of its rows: no run; the
  sensor skips with the reason until ``crm run --allow-removals`` is run;
- a file modified in the last ``CRM_SENSOR_SETTLE_SECONDS`` (default 30) may
  still be being written: the sensor waits for the next tick.

The cursor holds only the folder's signature (names, sizes, modification
times) and the last decision in words, shown in the UI.
"""

import hashlib
import json
import os
import time
from pathlib import Path

from dagster import DefaultSensorStatus, RunRequest, SensorEvaluationContext, SkipReason, sensor

from crm_assets.automation.jobs import crm_pipeline_job, range_tags
from crm_assets.core import settings
from crm_assets.core.builds import Staleness, assess, plan_range
from crm_assets.core.errors import CrmError
from crm_assets.core.landing import (
    MASTER_FILES,
    PREFLIGHT_TAG,
    TRANSACTIONS_GLOB,
    Plan,
    removal_message,
    stray_lines,
)
from crm_assets.core.months import key_of
from crm_assets.core.partitions import Calendar
from crm_assets.core.resources import WarehouseLockedError
from crm_assets.engines.selection import warehouse as engine_warehouse


def settle_seconds() -> float:
    return float(os.environ.get("CRM_SENSOR_SETTLE_SECONDS", "30"))


def folder_signature(folder: Path, calendar: Calendar) -> tuple[str, list[str]]:
    """(a short hash of the names, sizes and modification times of the input files and of the warehouse, the
    files still being written)."""
    now = time.time()
    entries, unsettled = [], []
    for path in sorted([*(folder / n for n in MASTER_FILES), *folder.glob(TRANSACTIONS_GLOB)]):
        if not path.is_file():
            continue
        stat = path.stat()
        if now - stat.st_mtime < settle_seconds():
            unsettled.append(path.name)
        entries.append(f"{path.name}:{stat.st_size}:{stat.st_mtime_ns}")
    entries.append(f"encoding:{os.environ.get(settings.ENV_INPUT_ENCODING, '')}")  # a new setting: a new look
    entries.append(f"calendar:{calendar.start}")  # definitions reloaded with a new calendar: a new look
    return hashlib.sha256("\n".join(entries).encode()).hexdigest()[:16], unsettled


def warehouse_signature() -> str:
    """A short hash of the warehouse file's size and time: a run wrote to it (one that failed or was killed
    half-way included), so the sensor looks again."""
    entries = []
    for path in (settings.warehouse_path(), Path(f"{settings.warehouse_path()}.wal")):
        if path.is_file():
            stat = path.stat()
            entries.append(f"{path.name}:{stat.st_size}:{stat.st_mtime_ns}")
    return hashlib.sha256("\n".join(entries).encode()).hexdigest()[:8]


def refresh_request(plan: Plan, staleness: Staleness, calendar: Calendar) -> tuple[tuple[str, str] | None, str]:
    """The range of months to run for the plan (or None) and a sentence saying why: every stale month
    (``builds.plan_range``, the decision ``crm run`` makes without options)."""
    keys = calendar.keys()
    if plan.removals:
        return None, removal_message(plan.removals)
    if plan.span is None:
        return None, "no transaction line with a valid invoice_date in the folder"
    if not keys:
        return None, "no month of the calendar has ended yet"
    data_first, data_last = key_of(plan.span[0]), key_of(plan.span[1])
    if plan.span[0] < calendar.first_month() and not calendar.set_by_hand:
        return None, (
            f"the data now starts in {data_first[:7]}, before the calendar ({keys[0][:7]} on): reload the "
            "definitions (Reload in the UI's Deployment page, or restart dagster dev) so that it starts there"
        )
    chosen = plan_range(staleness, keys, max(data_first, keys[0]), min(max(data_last, keys[0]), keys[-1]))
    if chosen.first is None:
        return None, "the warehouse holds every input file as it is"
    return (chosen.first, chosen.last), f"{chosen.why}: {chosen.first[:7]}..{chosen.last[:7]}"


def input_files_sensor(calendar: Calendar):
    """The sensor of the input folder, on the calendar of the definitions."""

    @sensor(
        name="input_files_sensor",
        job=crm_pipeline_job,
        minimum_interval_seconds=30,
        default_status=DefaultSensorStatus.RUNNING,
        description="Refreshes the affected months when files in CRM_INPUT_DIR are added, replaced or removed.",
    )
    def _sensor(context: SensorEvaluationContext):
        return evaluate(context, calendar)

    return _sensor


def evaluate(context: SensorEvaluationContext, calendar: Calendar):
    """One tick: a run of the months the folder's changes reach, or the reason there is none."""
    folder = settings.input_dir()
    if not folder.is_dir():
        return SkipReason(f"{folder}: input folder not found")
    signature, unsettled = folder_signature(folder, calendar)
    if unsettled:
        return SkipReason(f"waiting for {', '.join(unsettled)} to finish writing")
    cursor = json.loads(context.cursor) if context.cursor else {}
    look = f"{signature}:{warehouse_signature()}"
    if cursor.get("signature") == look:
        return SkipReason(f"no change in the folder since: {cursor.get('decision', 'the last look')}")

    warehouse = engine_warehouse(lock_timeout_seconds=0)
    try:
        plan, staleness = assess(folder, warehouse, calendar.first_month(), calendar.keys(), views_expected=True)
    except WarehouseLockedError:
        return SkipReason("the warehouse is in use by a run; looking again at the next tick")
    except (CrmError, OSError) as exc:
        decision = str(exc) if isinstance(exc, CrmError) else f"{exc.filename}: {exc.strerror}"
        context.update_cursor(json.dumps({"signature": look, "decision": decision}))
        return SkipReason(decision)
    stray = None if calendar.set_by_hand else stray_lines(folder, plan.profiles)
    span, why = (None, stray) if stray else refresh_request(plan, staleness, calendar)
    context.update_cursor(json.dumps({"signature": look, "decision": why}))
    if span is None:
        return SkipReason(why)
    # the same folder and the same records ask for the same run once: a run that fails the same way each time
    # (a broken master) is not launched again until a file or the records change
    return RunRequest(
        run_key=f"files-{signature}-{staleness.records[:12]}",
        tags={**range_tags(*span), "crm/trigger": "input_files_sensor", "crm/reason": why[:200], PREFLIGHT_TAG: "done"},
    )
