"""The monthly partition set shared by every partitioned asset.

Keys are ``YYYY-MM-01``. The set starts at ``CRM_FIRST_MONTH`` (default
2020-01) and ends with the last complete month: the current month becomes a
partition once it has ended (``end_offset=0``).
"""

from __future__ import annotations

import warnings
from datetime import date, datetime

from dagster import MonthlyPartitionsDefinition

from crm_assets import settings

# Single-run backfill policies are marked beta in Dagster 1.13; the project relies on them on purpose.
warnings.filterwarnings("ignore", message=r".*backfill_policy.*beta.*")

monthly_partitions = MonthlyPartitionsDefinition(start_date=settings.first_month(), end_offset=0)


def month_key(value: str) -> str:
    """``YYYY-MM`` or ``YYYY-MM-DD`` -> partition key ``YYYY-MM-01``; ValueError otherwise."""
    text = value.strip()
    try:
        parsed = datetime.strptime(text[:7], "%Y-%m") if len(text) in (7, 10) else None
        if len(text) == 10:
            datetime.strptime(text, "%Y-%m-%d")
    except ValueError:
        parsed = None
    if parsed is None:
        raise ValueError(f"'{value}' is not a month (YYYY-MM)")
    return parsed.strftime("%Y-%m-01")


def key_to_date(key: str) -> date:
    return datetime.strptime(key, "%Y-%m-%d").date()
