"""Jobs: the whole pipeline, partitioned by month (a range of months is one run).

The job takes its partitions from its assets: the calendar of the definitions.
"""

from dagster import AssetSelection, define_asset_job

crm_pipeline_job = define_asset_job(
    "crm_pipeline",
    selection=AssetSelection.all(),
    description="Every asset, raw files to outputs, for a month or a range of months (one run).",
)

RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"


def range_tags(first_key: str, last_key: str) -> dict[str, str]:
    """Tags that make a run of the partitioned job cover first..last (inclusive) as one run."""
    return {RANGE_START_TAG: first_key, RANGE_END_TAG: last_key}
