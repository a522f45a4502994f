"""The monthly partition set shared by every partitioned asset: the calendar.

Keys are ``YYYY-MM-01``. The calendar starts at the first month of the data
(the earliest valid invoice date of the transactions files of
``CRM_INPUT_DIR``), or at ``CRM_FIRST_MONTH`` when it is set, and ends with the
last complete month: the current month becomes a partition once it has ended
(``end_offset=0``). It is fixed when a process imports the definitions; the
files are profiled once and the profiles cached (``landing.quick_profiles``),
so an import reads no file that did not change.
"""

from __future__ import annotations

import os
import warnings
from datetime import date, datetime

from dagster import MonthlyPartitionsDefinition

from crm_assets.core import settings
from crm_assets.core.errors import CrmError

# Single-run backfill policies are marked beta in Dagster 1.13; the project relies on them on purpose.
warnings.filterwarnings("ignore", message=r".*backfill_policy.*beta.*")


def data_first_month(input_dir) -> date | None:
    """The first invoice month of the valid lines of the folder; None without a readable transactions file."""
    from crm_assets.core.landing import data_span, quick_profiles

    try:
        span = data_span(quick_profiles(input_dir))
    except (CrmError, OSError):  # no folder, no file, a bad encoding: the run itself says so, in one line
        return None
    return span[0] if span else None


def _calendar_start() -> tuple[str, str]:
    """The first partition key and where it comes from (for the docs of the UI and the error messages)."""
    override = os.environ.get(settings.ENV_FIRST_MONTH, "").strip()
    if override:
        return settings.first_month(), f"{settings.ENV_FIRST_MONTH}={override}"
    first = data_first_month(settings.input_dir())
    if first is None:
        return settings.first_month(), f"no transactions in {settings.input_dir()} when the definitions were loaded"
    return f"{first:%Y-%m}-01", "the first month of the data"


CALENDAR_START, CALENDAR_SOURCE = _calendar_start()
# set by hand (CRM_FIRST_MONTH) when the definitions loaded, rather than following the data
CALENDAR_SET_BY_HAND = CALENDAR_SOURCE.startswith(f"{settings.ENV_FIRST_MONTH}=")
monthly_partitions = MonthlyPartitionsDefinition(start_date=CALENDAR_START, end_offset=0)


def first_partition() -> date:
    """The first month of the calendar: older lines count as history of it."""
    return date.fromisoformat(CALENDAR_START)


def calendar_keys(current_time: datetime | None = None) -> list[str]:
    """The months of the calendar that have ended (at ``current_time``, default now)."""
    return monthly_partitions.get_partition_keys(current_time=current_time)


def describe_calendar() -> str:
    keys = calendar_keys()
    span = f"{keys[0][:7]}..{keys[-1][:7]}" if keys else f"from {CALENDAR_START[:7]}, no complete month yet"
    return f"the calendar {span} (starting at {CALENDAR_SOURCE}; set {settings.ENV_FIRST_MONTH}=YYYY-MM to widen it)"
