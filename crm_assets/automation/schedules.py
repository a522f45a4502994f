"""The monthly schedule: build the month that ended, once the landed files cover it.

Runs on the 2nd of each month at 06:00 in ``CRM_SCHEDULE_TIMEZONE`` (default
UTC) and looks at the month before the tick, with the folder compared to the
warehouse (``landing.plan_folder``, the reading the load does):

- the files do not cover the month yet (``landing.Coverage``: a line dated
  after it, or a file holding its lines written after it ended): it skips,
  naming the month and the newest transaction date, and the sensor builds the
  month when its file lands;
- no month is stale (``builds.find_stale``): it skips;
- otherwise one run of every stale month, the range ``crm run`` chooses
  without options (a month not built yet is stale).

It never asks for a month past the data.
"""

from __future__ import annotations

from dagster import DefaultScheduleStatus, RunRequest, ScheduleEvaluationContext, SkipReason, schedule

from crm_assets.automation.jobs import crm_pipeline_job, range_tags
from crm_assets.core import settings
from crm_assets.core.builds import assess, plan_range
from crm_assets.core.errors import CrmError
from crm_assets.core.landing import PREFLIGHT_TAG, coverage, removal_message
from crm_assets.core.months import add_months, key_of
from crm_assets.core.partitions import Calendar
from crm_assets.core.resources import WarehouseLockedError
from crm_assets.engines.selection import warehouse

CRON = "0 6 2 * *"


def month_before(day) -> str:
    """Partition key of the calendar month before ``day``'s month."""
    return key_of(add_months(day, -1))


def decide(month: str, plan, staleness, cover, keys: list[str]) -> tuple[tuple[str, str] | None, str]:
    """The range to run for the tick's month (or None), and a sentence saying why: every stale month
    (``builds.plan_range``), once the files cover the month."""
    if month not in keys:
        return None, f"{month[:7]} is not in the calendar ({keys[0][:7] if keys else '-'} on)"
    if plan.removals:
        return None, removal_message(plan.removals)
    if cover.covered_through is None or key_of(cover.covered_through) < month:
        return None, (
            f"{month[:7]} is not covered by the files yet: {cover.describe()}; it is built once a file holding "
            f"lines of a later month, or written after {month[:7]} ended, lands"
        )
    data_first = max(key_of(plan.span[0]), keys[0])
    chosen = plan_range(staleness, keys, data_first, month)
    if chosen.first is None:
        return None, f"{month[:7]} is built from the files as they are"
    return (chosen.first, chosen.last), f"{month[:7]} is covered ({cover.describe()}): {chosen.why}"


def monthly_refresh(calendar: Calendar):
    """The monthly schedule on the calendar of the definitions, in ``CRM_SCHEDULE_TIMEZONE`` read now."""

    @schedule(
        name="monthly_refresh",
        job=crm_pipeline_job,
        cron_schedule=CRON,
        execution_timezone=settings.schedule_timezone(),
        default_status=DefaultScheduleStatus.RUNNING,
        description="On the 2nd at 06:00: build the month that ended once the files cover it (and any month "
        "missing before it); skips with the reason otherwise.",
    )
    def _schedule(context: ScheduleEvaluationContext):
        return evaluate(context, calendar)

    return _schedule


def evaluate(context: ScheduleEvaluationContext, calendar: Calendar):
    """One tick: a run through the month before it, or the reason there is none."""
    month = month_before(context.scheduled_execution_time.date())
    keys = calendar.keys(context.scheduled_execution_time)
    folder = settings.input_dir()
    try:
        plan, staleness = assess(
            folder, warehouse(lock_timeout_seconds=0), calendar.first_month(), keys, views_expected=True
        )
    except WarehouseLockedError:
        return SkipReason(f"the warehouse is in use by a run; {month[:7]} is left to the sensor or the next tick")
    except (CrmError, OSError) as exc:
        return SkipReason(str(exc) if isinstance(exc, CrmError) else f"{exc.filename}: {exc.strerror}")
    span, why = decide(month, plan, staleness, coverage(folder, plan.profiles), keys)
    if span is None:
        return SkipReason(why)
    return RunRequest(
        run_key=f"monthly-{month}",
        tags={**range_tags(*span), "crm/trigger": "schedule", "crm/reason": why[:200], PREFLIGHT_TAG: "done"},
    )
