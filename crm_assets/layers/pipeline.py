"""The layers in dependency order as plain functions over one DuckDB connection (or a DuckDB landing and an engine).

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
from crm_assets.engines.base import Engine
from crm_assets.engines.duckdb import DuckDBEngine
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
    engine: Engine | None = None,
) -> None:
    """Load the files and build every layer for the window's months.

    ``engine``: where the layers after raw run (e.g. a ``SparkEngine``); None: on ``con`` too. The raw layer
    always loads into the DuckDB ``con``, and the engine takes its tables from there (``take_raw``)."""
    crm_rules = crm_rules or CrmRules()
    load_master(con, input_dir, PRODUCTS)
    load_master(con, input_dir, CUSTOMERS)
    load_transactions(
        con, input_dir, window.start, window.end, first_partition, last_partition, allow_removals=allow_removals
    )
    engine = engine or DuckDBEngine(con)
    engine.take_raw(con, RAW_DATA_TABLES)
    build_customers(engine, crm_rules)
    build_transactions(engine, window, run_id)
    build_activity(engine, window)
    build_features(engine, window, run_id)
    build_lifecycle(engine, window, run_id)
    build_rfmt(engine, window, crm_rules, run_id)
    build_snapshot(engine, window, crm_rules, run_id)
