"""The Dagster code location: every asset, check, job and resource of the project."""

from __future__ import annotations

from dagster import AssetSelection, Definitions, define_asset_job

from crm_assets.enriched import enriched_assets
from crm_assets.features import features_assets
from crm_assets.lifecycle import lifecycle_assets
from crm_assets.outputs import output_assets
from crm_assets.partitions import monthly_partitions
from crm_assets.raw import raw_assets
from crm_assets.reporting import reporting_assets
from crm_assets.resources import InputFolder, OutputFolder, Warehouse
from crm_assets.rfmt import rfmt_assets
from crm_assets.rules import CrmRules

all_assets = [*raw_assets, *enriched_assets, *features_assets, *lifecycle_assets, *rfmt_assets, *reporting_assets, *output_assets]

crm_pipeline_job = define_asset_job(
    "crm_pipeline",
    selection=AssetSelection.all(),
    partitions_def=monthly_partitions,
    description="Every asset, raw files to outputs, for a month or a range of months (one run).",
)


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
    return Definitions(assets=all_assets, jobs=[crm_pipeline_job], resources=build_resources())


defs = build_definitions()
