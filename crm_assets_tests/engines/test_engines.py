"""The engines as an interface: both satisfy the ``Engine`` protocol with their declared capabilities, the layers
read those and never probe the connection, and the assets computed on the engine show its kind."""

from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace

import duckdb
import pytest

import crm_assets
from crm_assets.core.errors import CrmError
from crm_assets.core.resources import Warehouse
from crm_assets.definitions import build_definitions
from crm_assets.engines import spark
from crm_assets.engines.base import Engine
from crm_assets.engines.duckdb import GRID_ROWS_PER_BUCKET, ROWS_PER_PART, DuckDBEngine
from crm_assets.engines.selection import warehouse_class
from crm_assets.engines.spark import SparkEngine, SparkWarehouse

PACKAGE = Path(crm_assets.__file__).resolve().parent


def spark_engine(root: Path) -> SparkEngine:
    """A Spark engine on a stand-in session: its interface needs no JVM (the session is used by statements only)."""
    return SparkEngine(SimpleNamespace(), root)


def test_both_engines_satisfy_the_protocol_with_their_declared_capabilities(tmp_path):
    duck = DuckDBEngine(duckdb.connect())
    on_spark = spark_engine(tmp_path)
    assert isinstance(duck, Engine) and isinstance(on_spark, Engine)
    assert (duck.name, duck.kind, duck.rows_per_part, duck.grid_rows_per_bucket) == (
        "duckdb",
        "duckdb",
        ROWS_PER_PART,
        GRID_ROWS_PER_BUCKET,
    )
    assert (duck.customer_number, duck.checks_in_one_query) == ("row_number() OVER ()", False)
    # Spark spills by itself (whole windows), numbers customers by id and evaluates a write's checks as one query
    assert (on_spark.name, on_spark.kind, on_spark.rows_per_part, on_spark.grid_rows_per_bucket) == (
        "spark",
        "spark",
        None,
        None,
    )
    assert (on_spark.customer_number, on_spark.checks_in_one_query) == ("c.customer_id", True)


def test_a_bare_duckdb_connection_is_not_an_engine():
    """It declares no capability: the layers get a ``DuckDBEngine`` around it, never the connection itself."""
    assert not isinstance(duckdb.connect(), Engine)


def test_the_duckdb_engine_runs_statements_and_appends_rows_by_name():
    engine = DuckDBEngine(duckdb.connect())
    engine.execute("CREATE TABLE t (a VARCHAR, b BIGINT, c BOOLEAN)")
    engine.insert_rows("t", ["c", "a"], [(True, "x"), (False, None)])
    engine.insert_rows("t", ["a"], [])
    assert engine.execute("SELECT * FROM t ORDER BY a").fetchall() == [("x", None, True), (None, None, False)]
    assert engine.execute("SELECT count(*) FROM t WHERE a = ?", ["x"]).fetchone() == (1,)


def test_each_warehouse_resource_opens_its_engine(tmp_path):
    assert warehouse_class("duckdb") is Warehouse and warehouse_class("spark") is SparkWarehouse
    assert (Warehouse.kind, SparkWarehouse.kind) == (DuckDBEngine.kind, SparkEngine.kind)
    with Warehouse(database=str(tmp_path / "w.duckdb")).engine() as engine:
        assert isinstance(engine, DuckDBEngine)
        assert engine.execute("SELECT 42").fetchone() == (42,)
    # the Spark fields are the Spark resource's only
    assert not {name for name in Warehouse.model_fields if name.startswith("spark")}
    assert {"spark_warehouse", "spark_remote", "spark_master", "spark_driver_memory"} <= set(
        SparkWarehouse.model_fields
    )


def test_a_setting_that_is_no_engine_is_one_line(monkeypatch):
    monkeypatch.setenv("CRM_ENGINE", "bogus")
    with pytest.raises(CrmError, match=r"^CRM_ENGINE=bogus is not an engine: use one of duckdb, spark$"):
        warehouse_class()


PROBING = re.compile(r"\b(?:getattr|hasattr)\(\s*(?:con|c|engine|warehouse)\b")


def test_no_module_probes_the_connection_for_a_capability():
    probing = [
        f"{path.relative_to(PACKAGE)}:{number}"
        for path in sorted(PACKAGE.rglob("*.py"))
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if PROBING.search(line)
    ]
    assert probing == []
    assert PROBING.search('per_part = getattr(con, "rows_per_part", 4)')  # the check can fail


def test_definitions_on_spark_show_the_spark_kind_without_starting_spark(monkeypatch):
    def no_session(*args, **kwargs):
        raise AssertionError("building the definitions started Spark")

    monkeypatch.setattr(spark, "session", no_session)
    monkeypatch.setenv("CRM_ENGINE", "spark")
    defs = build_definitions()
    assert isinstance(defs.resources["warehouse"], SparkWarehouse)
    graph = defs.resolve_asset_graph()
    kinds = {key.to_user_string(): graph.get(key).kinds for key in graph.get_all_asset_keys()}
    for key, shown in kinds.items():
        layer = key.split("/")[0]
        if layer == "raw":  # the raw layer always loads into DuckDB
            assert shown == {"duckdb"}, key
        elif key in ("reporting/summary_workbook", "reporting/summary_html", "powerbi/star_schema"):
            assert "duckdb" in shown and "spark" not in shown, key  # they read the warehouse through DuckDB
        else:
            assert shown == {"spark"}, key
    assert {"enriched", "features", "lifecycle", "rfmt", "reporting"} <= {k.split("/")[0] for k in kinds}
    monkeypatch.setenv("CRM_ENGINE", "duckdb")
    graph = build_definitions().resolve_asset_graph()
    assert all("spark" not in graph.get(key).kinds for key in graph.get_all_asset_keys())
