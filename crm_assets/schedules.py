"""The monthly schedule: after a month has ended, refresh the newest complete month.

Runs on the 2nd of each month at 06:00 in ``CRM_SCHEDULE_TIMEZONE`` (default
UTC) and requests the month that ended. When months before it are missing
from the run history (a new installation, or a gap), the request starts at
the first missing month so the features always see their history.
"""

import os
from datetime import date

from dagster import AssetKey, DefaultScheduleStatus, RunRequest, ScheduleEvaluationContext, SkipReason, schedule

from crm_assets.jobs import crm_pipeline_job, range_tags
from crm_assets.partitions import monthly_partitions

CRON = "0 6 2 * *"
TIMEZONE = os.environ.get("CRM_SCHEDULE_TIMEZONE", "UTC")
SNAPSHOT = AssetKey(["reporting", "customer_snapshot"])


def month_before(day: date) -> str:
    """Partition key of the calendar month before ``day``'s month."""
    year, month = (day.year - 1, 12) if day.month == 1 else (day.year, day.month - 1)
    return f"{year:04d}-{month:02d}-01"


def refresh_range(newest: str, materialized: set[str], keys: list[str], data_first: str | None = None) -> tuple[str, str]:
    """From the first month missing after the earliest built one to ``newest``.

    With nothing built yet, from the first month of the data (``data_first``).
    """
    if not materialized:
        start = max(data_first or newest, keys[0]) if keys else newest
        return min(start, newest), newest
    built = [k for k in keys if k >= min(materialized) and k <= newest]
    missing = [k for k in built if k not in materialized]
    return (missing[0] if missing else newest), newest


@schedule(
    job=crm_pipeline_job,
    cron_schedule=CRON,
    execution_timezone=TIMEZONE,
    default_status=DefaultScheduleStatus.RUNNING,
    description="On the 2nd at 06:00: refresh the month that just ended (and any missing month before it).",
)
def monthly_refresh(context: ScheduleEvaluationContext):
    newest = month_before(context.scheduled_execution_time.date())
    keys = monthly_partitions.get_partition_keys(current_time=context.scheduled_execution_time)
    if newest not in keys:
        return SkipReason(f"{newest[:7]} is not a partition (partitions {keys[0][:7] if keys else '-'} on)")
    materialized = set(context.instance.get_materialized_partitions(SNAPSHOT))
    data_first = None
    if not materialized:
        from crm_assets import settings
        from crm_assets.errors import CrmError
        from crm_assets.landing import data_span, profile_folder

        try:
            span = data_span(profile_folder(settings.input_dir()))
        except CrmError as exc:
            return SkipReason(str(exc))
        data_first = f"{span[0].year:04d}-{span[0].month:02d}-01" if span else None
    first, last = refresh_range(newest, materialized, keys, data_first)
    return RunRequest(run_key=f"monthly-{newest}", tags={**range_tags(first, last), "crm/trigger": "schedule"})
