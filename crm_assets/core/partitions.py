"""The monthly partition set shared by every partitioned asset: the calendar.

Keys are ``YYYY-MM-01``. The calendar starts at the first month of the data
(the earliest valid invoice date of the transactions files of
``CRM_INPUT_DIR``), or at ``CRM_FIRST_MONTH`` when it is set, and ends with the
last complete month: the current month becomes a partition once it has ended
(``end_offset=0``).

Nothing is read at import. The assets are declared on ``DECLARED`` (the default
calendar); ``load_calendar()`` reads the setting and the files when the
definitions load (``definitions.build_definitions``), and ``Calendar.apply``
puts every asset on that calendar. The files are profiled once and the profiles
cached (``landing.quick_profiles``), so a load reads no file that did not change.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from functools import cached_property

from dagster import AssetsDefinition, MonthlyPartitionsDefinition

from crm_assets.core import settings
from crm_assets.core.errors import CrmError
from crm_assets.core.landing import data_span, quick_profiles

# Single-run backfill policies are marked beta in Dagster 1.13; the project relies on them on purpose.
warnings.filterwarnings("ignore", message=r".*backfill_policy.*beta.*")


def _partitions(start: str) -> MonthlyPartitionsDefinition:
    return MonthlyPartitionsDefinition(start_date=start, end_offset=0)


DEFAULT_START = f"{settings.DEFAULT_FIRST_MONTH}-01"
# what the assets are declared with; Calendar.apply replaces it by the calendar of the definitions
DECLARED = _partitions(DEFAULT_START)


@dataclass(frozen=True)
class Calendar:
    """The months the definitions partition by, and where their first month comes from."""

    start: str  # the first partition key, YYYY-MM-01
    source: str  # where the first month comes from, for the UI's docs and the error messages
    set_by_hand: bool = False  # CRM_FIRST_MONTH set it, rather than the data

    @cached_property
    def partitions(self) -> MonthlyPartitionsDefinition:
        return _partitions(self.start)

    def first_month(self) -> date:
        """Older lines count as history of this month."""
        return date.fromisoformat(self.start)

    def keys(self, current_time: datetime | None = None) -> list[str]:
        """The months that have ended (at ``current_time``, default now)."""
        return list(self.partitions.get_partition_keys(current_time=current_time))

    def describe(self) -> str:
        keys = self.keys()
        span = f"{keys[0][:7]}..{keys[-1][:7]}" if keys else f"from {self.start[:7]}, no complete month yet"
        return f"the calendar {span} (starting at {self.source}; set {settings.ENV_FIRST_MONTH}=YYYY-MM to widen it)"

    def apply(self, assets: Sequence[AssetsDefinition]) -> list[AssetsDefinition]:
        """The assets, each partitioned one moved onto this calendar."""
        return [
            a.map_asset_specs(lambda spec: spec.replace_attributes(partitions_def=self.partitions))
            if a.partitions_def is not None
            else a
            for a in assets
        ]


def data_first_month(input_dir) -> date | None:
    """The first invoice month of the valid lines of the folder; None without a readable transactions file."""
    try:
        span = data_span(quick_profiles(input_dir))
    except (CrmError, OSError):  # no folder, no file, a bad encoding: the run itself says so, in one line
        return None
    return span[0] if span else None


def load_calendar() -> Calendar:
    """The calendar of ``CRM_FIRST_MONTH``, else of the data of ``CRM_INPUT_DIR``, else the default; read now."""
    override = os.environ.get(settings.ENV_FIRST_MONTH, "").strip()
    if override:
        return Calendar(settings.first_month(), f"{settings.ENV_FIRST_MONTH}={override}", set_by_hand=True)
    first = data_first_month(settings.input_dir())
    if first is None:
        return Calendar(
            settings.first_month(), f"no transactions in {settings.input_dir()} when the definitions loaded"
        )
    return Calendar(f"{first:%Y-%m}-01", "the first month of the data")


def calendar_start_of(context) -> date:
    """The first month of the calendar a running asset is on: its own partitions', or for an asset without
    partitions (a master) those of the partitioned assets beside it."""
    partitions = context.assets_def.partitions_def or next(
        (n.partitions_def for n in context.job_def.asset_layer.asset_graph.asset_nodes if n.partitions_def), None
    )
    if partitions is None:  # a job of masters only: the partitioned assets of its code location
        try:
            beside = context.repository_def.assets_defs_by_key.values()
        except Exception:  # materialize() of masters alone has no code location: the calendar of now
            beside = ()
        partitions = next((a.partitions_def for a in beside if a.partitions_def), None) or load_calendar().partitions
    return partitions.start.date()
