"""Launching the pipeline job through Dagster, as ``crm run`` does.

The run is recorded in the instance of ``DAGSTER_HOME`` so that the UI shows
it afterwards. A range of months is one run (the assets' backfill policy is a
single run), selected with Dagster's partition-range tags.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from dagster import DagsterInstance, colored_console_logger

from crm_assets.automation.jobs import RANGE_END_TAG, RANGE_START_TAG, range_tags  # noqa: F401  (re-exported for tests)
from crm_assets.cli.progress import progress_logger_def
from crm_assets.core import settings
from crm_assets.core.builds import assess, plan_range
from crm_assets.core.errors import CrmError, InputFileError
from crm_assets.core.landing import (
    ALLOW_REMOVALS_TAG,
    PREFLIGHT_TAG,
    RemovalNotAllowed,
    coverage,
    month_ranges,
    removal_message,
    stray_lines,
)
from crm_assets.core.months import key_of
from crm_assets.core.partitions import Calendar, load_calendar
from crm_assets.core.quality import BlockingCheckError
from crm_assets.core.resources import Warehouse
from crm_assets.definitions import build_definitions, crm_pipeline_job
from crm_assets.engines import selection
from crm_assets.layers.raw import USER_ERROR_METADATA


@dataclass
class RunOutcome:
    success: bool
    run_id: str
    first_month: str
    last_month: str
    months: int
    assets: int
    failures: list[str] = field(default_factory=list)
    user_error: bool = False  # every failure is bad input (exit 2), not an internal or check failure


@dataclass
class RunMonths:
    first: str | None  # None: nothing to build
    last: str | None
    keys: list[str]
    notes: list[str] = field(default_factory=list)
    calendar: Calendar | None = None  # the calendar the months are of; None: load it again
    why: str = ""  # what the stale months are, in words

    @property
    def nothing(self) -> bool:
        return self.first is None


def resolve_months(
    from_month: str | None,
    to_month: str | None,
    input_dir: Path,
    allow_removals: bool = False,
    everything: bool = False,
) -> RunMonths:
    """The partition keys to run: every stale month (``builds.find_stale``), widened to the options.

    The folder is compared with the warehouse first (``landing.plan_folder``): a removal stops here unless
    allowed. Without options the run builds the stale months and nothing else (none: nothing to build);
    ``--from``/``--to`` are widened to every stale month, in one line; ``everything`` (``--all``) rebuilds
    every month of the data. Only an explicit ``--to`` ends after the month of the newest transaction (with a
    note).
    """
    calendar = load_calendar()
    keys = calendar.keys()
    if not keys:
        raise CrmError(f"no month has ended yet in {calendar.describe()}")
    if from_month and from_month < keys[0]:
        raise CrmError(f"--from {from_month[:7]} is before {calendar.describe()}")
    if to_month and to_month > keys[-1]:
        raise CrmError(f"--to {to_month[:7]} is after {calendar.describe()}; a month is in it once it has ended")
    if from_month and to_month and from_month > to_month:
        raise CrmError(f"--from {from_month[:7]} is after --to {to_month[:7]}")
    warehouse = selection.warehouse()
    path = warehouse.file
    if path.is_dir():
        raise CrmError(
            f"{path}: is a folder; the warehouse must be a file path (--warehouse or {settings.ENV_WAREHOUSE})"
        )
    plan, staleness = assess(input_dir, warehouse, calendar.first_month(), keys, views_expected=True)
    if plan.removals and not allow_removals:
        raise RemovalNotAllowed(removal_message(plan.removals))
    if plan.span is None:
        raise CrmError(f"{input_dir}: no transaction line with a valid invoice_date")
    if not calendar.set_by_hand:
        stray = stray_lines(input_dir, plan.profiles)
        if stray:
            raise InputFileError(stray)
    data_first, data_last = max(key_of(plan.span[0]), keys[0]), max(key_of(plan.span[1]), keys[0])
    data_last = min(data_last, keys[-1])
    if from_month and from_month > data_last and not to_month:
        raise CrmError(f"--from {from_month[:7]} is after the data's last month {data_last[:7]}")
    if to_month and to_month < data_first and not from_month:
        raise CrmError(f"--to {to_month[:7]} is before the data's first month {data_first[:7]}")
    notes = []
    if to_month and to_month > data_last:
        notes.append(
            f"--to {to_month[:7]} is after the data ({coverage(input_dir, plan.profiles).describe()}): no line "
            f"falls in the months after {data_last[:7]}, so every customer ages in them"
        )
    chosen = plan_range(staleness, keys, data_first, data_last, (from_month, to_month), everything)
    if chosen.first is None:
        return RunMonths(None, None, [], notes, calendar, chosen.why)
    first, last = chosen.first, min(chosen.last, keys[-1])
    notes += chosen.notes
    if plan.removals:
        notes.append("removing the rows of " + "; ".join(r.describe() for r in plan.removals) + " (--allow-removals)")
        emptied = [m for m in staleness.held if f"{m:%Y-%m}-01" > data_last]
        if emptied:
            notes.append(
                f"{month_ranges(emptied)} have no line any more: they stay in the warehouse, rebuilt as months "
                "without data (every customer ages in them)"
            )
    return RunMonths(first, last, [k for k in keys if first <= k <= last], notes, calendar, chosen.why)


def _wait_for_warehouse() -> None:
    """Fail early, in one line, when another process holds the warehouse longer than the lock timeout."""
    with Warehouse().connect():
        pass


def _is_user_error(error) -> bool:
    """A step that raised one of the project's user errors (bad input, unwritable or locked path)."""

    def subclasses(cls):
        for sub in cls.__subclasses__():
            yield sub
            yield from subclasses(sub)

    names = {CrmError.__name__} | {c.__name__ for c in subclasses(CrmError)} - {BlockingCheckError.__name__}
    names |= {"PermissionError", "IsADirectoryError", "NotADirectoryError"}  # a path the user gave is not writable
    while error is not None:
        if getattr(error, "cls_name", None) in names:
            return True
        error = error.cause
    return False


def _failure_lines(result) -> tuple[list[str], bool]:
    """One line per failed step, and whether every failure was bad input (a Failure marked as a user error)."""
    lines = []
    user = []
    for event in result.all_events:
        if not event.is_step_failure:
            continue
        data = event.step_failure_data.user_failure_data
        error = event.step_failure_data.error
        user.append(bool(data and USER_ERROR_METADATA in (data.metadata or {})) or _is_user_error(error))
        while error is not None and error.cause is not None:
            error = error.cause
        message = (error.message if error is not None else "failed").strip().splitlines()[0]
        if ": " in message and message.split(": ", 1)[0].rsplit(".", 1)[-1][:1].isupper():
            message = message.split(": ", 1)[1]
        lines.append(f"{event.step_key}: {message}")
    return lines, bool(user) and all(user)


def run_pipeline(
    months: RunMonths, verbose: bool = False, allow_removals: bool = False, quiet: bool = False
) -> RunOutcome:
    """One in-process run of the job for the months; unless ``quiet``, a line as each asset starts and ends."""
    first, last, keys = months.first, months.last, months.keys
    _wait_for_warehouse()
    job = build_definitions(months.calendar).resolve_job_def(crm_pipeline_job.name)
    job = job.with_logger_defs(
        {"console": colored_console_logger, "crm_progress": progress_logger_def(len(keys), len(job.graph.nodes))}
    )
    if not verbose:
        logging.getLogger("dagster").setLevel(logging.ERROR)
    run_config = {"loggers": {"console": {"config": {"log_level": "INFO" if verbose else "CRITICAL"}}}}
    if not quiet and not verbose:
        run_config["loggers"]["crm_progress"] = {}
    with DagsterInstance.get() as instance:
        result = job.execute_in_process(
            instance=instance,
            run_config=run_config,
            tags={
                **range_tags(first, last),
                "crm/trigger": "crm run",
                PREFLIGHT_TAG: "done",
                **({ALLOW_REMOVALS_TAG: "true"} if allow_removals else {}),
            },
            raise_on_error=False,
        )
    assets = len({e.asset_key for e in result.all_events if e.is_step_materialization})
    failures, user_error = _failure_lines(result)
    return RunOutcome(result.success, result.run_id, first, last, len(keys), assets, failures, user_error)
