"""The layers in dependency order as plain functions over one DuckDB connection.

The Dagster assets call the same ``build_*`` functions one by one; this module
runs them all at once without Dagster, for property tests and benchmarks of
the SQL alone.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from crm_assets.core.csv_input import CUSTOMERS, PRODUCTS
from crm_assets.core.partitioned import MonthWindow
from crm_assets.core.rules import CrmRules
from crm_assets.layers.enriched import build_customers, build_transactions
from crm_assets.layers.features import build_activity, build_features
from crm_assets.layers.lifecycle import build_lifecycle
from crm_assets.layers.raw import load_master, load_transactions
from crm_assets.layers.reporting import build_snapshot
from crm_assets.layers.rfmt import build_rfmt
from crm_assets.layers.tables import RAW_DATA_TABLES


def build_all(
    con: duckdb.DuckDBPyConnection,
    input_dir: Path,
    window: MonthWindow,
    first_partition,
    last_partition,
    crm_rules: CrmRules | None = None,
    run_id: str = "direct",
    allow_removals: bool = False,
    engine=None,
) -> None:
    """Load the files and build every layer for the window's months.

    ``engine``: where the layers after raw run (a ``SparkWarehouse``); None: on ``con`` too. The raw layer
    always loads into the DuckDB ``con``; a Spark engine gets a Parquet copy of its tables."""
    crm_rules = crm_rules or CrmRules()
    load_master(con, input_dir, PRODUCTS)
    load_master(con, input_dir, CUSTOMERS)
    load_transactions(
        con, input_dir, window.start, window.end, first_partition, last_partition, allow_removals=allow_removals
    )
    if engine is not None:
        from crm_assets.core.spark import copy_from_duckdb

        for table in RAW_DATA_TABLES:
            copy_from_duckdb(con, engine.root, table.name, table.names())
    con = engine if engine is not None else con
    build_customers(con, crm_rules)
    build_transactions(con, window, run_id)
    build_activity(con, window)
    build_features(con, window, run_id)
    build_lifecycle(con, window, run_id)
    build_rfmt(con, window, crm_rules, run_id)
    build_snapshot(con, window, crm_rules, run_id)
