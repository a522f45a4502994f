"""Launching the pipeline job through Dagster, as ``crm run`` does.

The run is recorded in the instance of ``DAGSTER_HOME`` so that the UI shows
it afterwards. A range of months is one run (the assets' backfill policy is a
single run), selected with Dagster's partition-range tags.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from crm_assets import settings
from crm_assets.errors import CrmError

from crm_assets.jobs import RANGE_END_TAG, RANGE_START_TAG, range_tags  # noqa: F401  (re-exported for tests)


@dataclass
class RunOutcome:
    success: bool
    run_id: str
    first_month: str
    last_month: str
    months: int
    assets: int
    failures: list[str] = field(default_factory=list)


def resolve_months(from_month: str | None, to_month: str | None, input_dir: Path) -> tuple[str, str, list[str]]:
    """The partition keys to run: the options, else the months of the data, clamped to the partition set.

    A range that starts after the first month of the data needs the earlier
    months in the warehouse already (history counts): otherwise it is refused.
    """
    from crm_assets.partitions import monthly_partitions
    from crm_assets.raw import transaction_month_span

    keys = monthly_partitions.get_partition_keys()
    if not keys:
        raise CrmError(f"no complete month since {settings.ENV_FIRST_MONTH}={settings.first_month()[:7]}")
    span = transaction_month_span(input_dir)
    if span is None:
        raise CrmError(f"{input_dir}: no transaction line with a valid invoice_date")
    data_first = max(span[0].strftime("%Y-%m-01"), keys[0])
    from_month = from_month or data_first
    to_month = to_month or span[1].strftime("%Y-%m-01")
    if from_month > to_month:
        raise CrmError(f"--from {from_month[:7]} is after --to {to_month[:7]}")
    first, last = max(from_month, keys[0]), min(to_month, keys[-1])
    if first > last:
        raise CrmError(
            f"months {from_month[:7]}..{to_month[:7]} are outside the partitions "
            f"{keys[0][:7]}..{keys[-1][:7]} (set {settings.ENV_FIRST_MONTH} for older data)"
        )
    history = [k for k in keys if data_first <= k < first]
    missing = _months_not_built(history)
    if missing:
        raise CrmError(
            f"months {missing[0][:7]}..{missing[-1][:7]} before --from {first[:7]} are not in the warehouse yet "
            f"and count as history; run with --from {missing[0][:7]} (or without --from) first"
        )
    return first, last, [k for k in keys if first <= k <= last]


def _months_not_built(keys: list[str]) -> list[str]:
    """The keys whose snapshot month is not in the warehouse's manifest."""
    if not keys:
        return []
    import duckdb

    path = settings.warehouse_path()
    built: set[str] = set()
    if path.exists():
        try:
            con = duckdb.connect(str(path), read_only=True)
        except duckdb.Error:
            return []  # locked by a writer: the run itself will wait for it
        try:
            built = {
                m for (m,) in con.execute(
                    "SELECT DISTINCT strftime(report_month, '%Y-%m-%d') FROM reporting.snapshot_manifest"
                ).fetchall()
            }
        except duckdb.Error:
            built = set()
        finally:
            con.close()
    return [k for k in keys if k not in built]


def _wait_for_warehouse() -> None:
    """Fail early, in one line, when another process holds the warehouse longer than the lock timeout."""
    from crm_assets.resources import Warehouse

    with Warehouse().connect():
        pass


def _failure_lines(result) -> list[str]:
    lines = []
    for event in result.all_events:
        if not event.is_step_failure:
            continue
        error = event.step_failure_data.error
        while error is not None and error.cause is not None:
            error = error.cause
        message = (error.message if error is not None else "failed").strip().splitlines()[0]
        if ": " in message and message.split(": ", 1)[0].rsplit(".", 1)[-1][:1].isupper():
            message = message.split(": ", 1)[1]
        lines.append(f"{event.step_key}: {message}")
    return lines


def run_pipeline(from_month: str | None, to_month: str | None, verbose: bool = False) -> RunOutcome:
    from dagster import DagsterInstance

    from crm_assets.definitions import build_definitions, crm_pipeline_job

    first, last, keys = resolve_months(from_month, to_month, settings.input_dir())
    _wait_for_warehouse()
    job = build_definitions().resolve_job_def(crm_pipeline_job.name)
    if not verbose:
        logging.getLogger("dagster").setLevel(logging.ERROR)
    run_config = {"loggers": {"console": {"config": {"log_level": "INFO" if verbose else "CRITICAL"}}}}
    with DagsterInstance.get() as instance:
        result = job.execute_in_process(
            instance=instance,
            run_config=run_config,
            tags={**range_tags(first, last), "crm/trigger": "crm run"},
            raise_on_error=False,
        )
    assets = len({e.asset_key for e in result.all_events if e.is_step_materialization})
    return RunOutcome(result.success, result.run_id, first, last, len(keys), assets, _failure_lines(result))
