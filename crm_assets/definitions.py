"""The Dagster code location: every asset, check, job, schedule, sensor and resource of the project.

Nothing is read from the environment when this module is imported: ``defs`` is
built when Dagster loads the code location (``@definitions``), with the
calendar of the data then (``partitions.load_calendar``), the resources
configured in one place (``build_resources``), and the warehouse's engine, with
the kind of the assets computed on it, as the setting ``CRM_ENGINE`` says. Runs
execute in one process (``in_process_executor``) so that a run holds the
warehouse's run lock from start to end: runs on one warehouse never overlap.
"""

from dagster import AssetsDefinition, AssetSpec, Definitions, definitions, in_process_executor

from crm_assets.automation.jobs import crm_pipeline_job
from crm_assets.automation.schedules import monthly_refresh
from crm_assets.automation.sensors import input_files_sensor
from crm_assets.core import settings
from crm_assets.core.partitions import Calendar, load_calendar
from crm_assets.core.resources import InputFolder, OutputFolder, env_config
from crm_assets.core.rules import CrmRules
from crm_assets.engines.duckdb import DuckDBEngine
from crm_assets.engines.selection import warehouse_class
from crm_assets.layers.enriched import enriched_assets
from crm_assets.layers.features import features_assets
from crm_assets.layers.lifecycle import lifecycle_assets
from crm_assets.layers.raw import raw_assets
from crm_assets.layers.reporting import reporting_assets
from crm_assets.layers.rfmt import rfmt_assets
from crm_assets.outputs.assets import reader_assets, view_assets

# The assets computed on the warehouse's engine (every layer after raw, and the reporting views): declared with
# the DuckDB engine's kind, shown with the kind of the setting's engine (``assets_on``). The raw layer always
# loads into DuckDB, and the other outputs read the warehouse through DuckDB, on either engine.
ENGINE_ASSETS = [
    *enriched_assets,
    *features_assets,
    *lifecycle_assets,
    *rfmt_assets,
    *reporting_assets,
    *view_assets,
]
# as declared, on the default calendar (partitions.DECLARED); build_definitions puts them on the loaded one
all_assets = [*raw_assets, *ENGINE_ASSETS, *reader_assets]


def assets_on(kind: str) -> list[AssetsDefinition]:
    """Every asset, those of ``ENGINE_ASSETS`` with the engine's ``kind`` in place of the DuckDB engine's."""

    def shown(spec: AssetSpec) -> AssetSpec:
        return spec.replace_attributes(kinds={kind if k == DuckDBEngine.kind else k for k in spec.kinds})

    return [*raw_assets, *(a.map_asset_specs(shown) for a in ENGINE_ASSETS), *reader_assets]


def build_resources() -> dict:
    """The resources: each setting whose environment variable is set is an ``EnvVar`` (read as a run starts,
    shown in the UI), the others their defaults (docs/configuration.md)."""
    warehouse = warehouse_class()  # the setting's engine: DuckDB's Warehouse, or SparkWarehouse
    return {
        "warehouse": warehouse(**env_config(warehouse)),
        "input_folder": InputFolder(**env_config(InputFolder)),
        "output_folder": OutputFolder(**env_config(OutputFolder)),
        "crm_rules": CrmRules(),
    }


def build_definitions(calendar: Calendar | None = None) -> Definitions:
    """The code location on ``calendar`` (default: the one of the setting and the data now)."""
    settings.check_counts()  # a run from the UI or the daemon takes CRM_WORKBOOK_MONTHS=-5 as refused, like crm run
    calendar = calendar or load_calendar()
    return Definitions(
        assets=calendar.apply(assets_on(warehouse_class().kind)),
        jobs=[crm_pipeline_job],
        schedules=[monthly_refresh(calendar)],
        sensors=[input_files_sensor(calendar)],
        resources=build_resources(),
        executor=in_process_executor,
    )


@definitions
def defs() -> Definitions:
    return build_definitions()
