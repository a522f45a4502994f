"""The Dagster code location: every asset, check, job, schedule, sensor and resource of the project.

Resources are chosen in one place (``build_resources``) from the environment.
Runs execute in one process (``in_process_executor``) so that a run holds the
warehouse's run lock from start to end: runs on one warehouse never overlap.
"""

from dagster import Definitions, in_process_executor

import crm_assets.automation.instance  # noqa: F401  (SQLite tuning of the run history, see instance.py)
from crm_assets.automation.jobs import crm_pipeline_job
from crm_assets.automation.schedules import monthly_refresh
from crm_assets.automation.sensors import input_files_sensor
from crm_assets.core.resources import InputFolder, OutputFolder, Warehouse
from crm_assets.core.rules import CrmRules
from crm_assets.layers.enriched import enriched_assets
from crm_assets.layers.features import features_assets
from crm_assets.layers.lifecycle import lifecycle_assets
from crm_assets.layers.raw import raw_assets
from crm_assets.layers.reporting import reporting_assets
from crm_assets.layers.rfmt import rfmt_assets
from crm_assets.outputs.assets import output_assets

all_assets = [
    *raw_assets,
    *enriched_assets,
    *features_assets,
    *lifecycle_assets,
    *rfmt_assets,
    *reporting_assets,
    *output_assets,
]


def build_resources() -> dict:
    """The resources, read from the environment when the definitions load."""
    return {
        "warehouse": Warehouse(),
        "input_folder": InputFolder(),
        "output_folder": OutputFolder(),
        "crm_rules": CrmRules(),
    }


def build_definitions() -> Definitions:
    """The code location, with resources read from the environment now."""
    return Definitions(
        assets=all_assets,
        jobs=[crm_pipeline_job],
        schedules=[monthly_refresh],
        sensors=[input_files_sensor],
        resources=build_resources(),
        executor=in_process_executor,
    )


defs = build_definitions()
