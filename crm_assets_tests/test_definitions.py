"""The code location loads and has the expected shape."""

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
from dagster import AssetKey, BackfillPolicy, EnvVar, asset, materialize

from crm_assets.cli import main
from crm_assets.core import settings
from crm_assets.core.errors import CrmError
from crm_assets.core.partitions import load_calendar
from crm_assets.core.quality import CHECK_RESULTS, QUALITY_DDL
from crm_assets.core.resources import OutputFolder, Warehouse, env_config
from crm_assets.definitions import build_definitions, build_resources, crm_pipeline_job
from crm_assets.layers import enriched, features, lifecycle, raw, reporting, rfmt
from crm_assets.layers.checks import all_checks
from crm_assets.layers.reporting import REPORTING_DDL, SNAPSHOT_COLUMNS
from crm_assets.layers.tables import LAYER_TABLES, SNAPSHOT_TABLE
from crm_assets.outputs.exports import AUDIT_DDL
from crm_assets.outputs.tables import OUTPUT_TABLES
from crm_assets.outputs.views import VIEWS_DDL
from crm_assets.outputs.workbook import LIST_COLUMNS

defs = build_definitions()
monthly_partitions = load_calendar().partitions

EXPECTED_ASSETS = {
    AssetKey(["raw", "products"]),
    AssetKey(["raw", "customers"]),
    AssetKey(["raw", "sales_transactions"]),
}


def asset_graph():
    return defs.resolve_asset_graph()


def test_definitions_load_and_list_expected_assets():
    keys = set(asset_graph().get_all_asset_keys())
    assert EXPECTED_ASSETS <= keys


def test_pipeline_job_covers_every_asset_with_monthly_partitions():
    job = defs.resolve_job_def(crm_pipeline_job.name)
    assert job.partitions_def == monthly_partitions
    assert set(job.asset_layer.executable_asset_keys) == set(asset_graph().get_all_asset_keys())


def test_partitioned_assets_backfill_in_a_single_run():
    graph = asset_graph()
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        if node.partitions_def is not None:
            assert node.partitions_def == monthly_partitions
            assert node.backfill_policy is not None
            assert node.backfill_policy == BackfillPolicy.single_run()


def test_partition_keys_are_first_of_month():
    keys = monthly_partitions.get_partition_keys()
    assert keys[0] == settings.first_month()
    assert all(k.endswith("-01") and len(k) == 10 for k in keys)


def test_every_check_is_documented():
    text = (Path(__file__).resolve().parent.parent / "docs" / "data_quality.md").read_text()
    for check in all_checks():
        assert f"| `{check.asset}` | `{check.name}` |" in text, check.name
        row = next(line for line in text.splitlines() if line.startswith(f"| `{check.asset}` | `{check.name}` |"))
        assert f" | {check.counts} | " in row, f"{check.name}: docs/data_quality.md does not say it counts {check.unit}"


def test_every_asset_check_is_declared():
    declared = {(("/".join(k.asset_key.path)), k.name) for k in asset_graph().asset_check_keys}
    assert declared == {(c.asset, c.name) for c in all_checks()}


def definitions_shape() -> dict:
    """Every asset's key, group, kinds, partitioning, upstream assets and checks; the jobs, schedules and sensors."""

    graph = defs.resolve_asset_graph()
    checks: dict[str, list[str]] = {}
    for key in graph.asset_check_keys:
        checks.setdefault(key.asset_key.to_user_string(), []).append(key.name)
    assets = {}
    for key in sorted(graph.get_all_asset_keys(), key=lambda k: k.to_user_string()):
        node = graph.get(key)
        assets[key.to_user_string()] = {
            "group": node.group_name,
            "kinds": sorted(node.kinds),
            "partitions": type(node.partitions_def).__name__ if node.partitions_def else None,
            "backfill_policy": str(node.backfill_policy.policy_type.value) if node.backfill_policy else None,
            "upstream": sorted(p.to_user_string() for p in node.parent_keys),
            "checks": sorted(checks.get(key.to_user_string(), [])),
        }
    return {
        "assets": assets,
        "jobs": sorted(j.name for j in defs.jobs),
        "schedules": sorted(s.name for s in defs.schedules),
        "sensors": sorted(s.name for s in defs.sensors),
        "resources": sorted(defs.resources),
    }


def test_the_shape_of_the_definitions_is_pinned():
    """A change to an asset's key, group, kinds, partitions, upstream or checks shows here; after a deliberate
    change, write the snapshot again with CRM_UPDATE_SNAPSHOTS=1."""
    path = Path(__file__).parent / "snapshots" / "definitions.json"
    shape = definitions_shape()
    if os.environ.get("CRM_UPDATE_SNAPSHOTS") == "1":
        path.write_text(json.dumps(shape, indent=2, sort_keys=True) + "\n")
    assert shape == json.loads(path.read_text())


def contracted_tables():
    """Every table's contract, in the order of docs/warehouse.md (the snapshot first)."""
    return (SNAPSHOT_TABLE, *(t for t in LAYER_TABLES if t is not SNAPSHOT_TABLE), *OUTPUT_TABLES, CHECK_RESULTS)


def test_every_table_contract_is_its_ddl_its_docs_section_and_its_assets_metadata():
    tables = contracted_tables()
    docs_path = Path(__file__).resolve().parent.parent / "docs" / "warehouse.md"
    if os.environ.get("CRM_UPDATE_SNAPSHOTS") == "1":  # the page's prose, then a section per table
        prose = docs_path.read_text().split(f"## `{tables[0].name}`")[0]
        docs_path.write_text(prose + "\n".join(t.docs_section() for t in tables))
    docs = docs_path.read_text()
    con = duckdb.connect()
    for ddl in (raw.RAW_DDL, enriched.ENRICHED_DDL, features.FEATURES_DDL, lifecycle.LIFECYCLE_DDL):
        con.execute(ddl)
    for ddl in (rfmt.RFMT_DDL, reporting.REPORTING_DDL, VIEWS_DDL, AUDIT_DDL, QUALITY_DDL):
        con.execute(ddl)
    created = con.execute(
        "SELECT table_schema || '.' || table_name, column_name, data_type, is_nullable = 'NO' "
        "FROM information_schema.columns ORDER BY table_schema, table_name, ordinal_position"
    ).fetchall()
    assert sorted(created) == sorted((t.name, c.name, c.type, c.not_null) for t in tables for c in t.columns)
    graph = defs.resolve_asset_graph()
    named = {}
    for key in graph.get_all_asset_keys():
        metadata = graph.get(key).metadata
        if "dagster/table_name" in metadata:
            named[metadata["dagster/table_name"]] = metadata["dagster/column_schema"]
    for table in tables:
        assert table.docs_section() in docs, f"{table.name}: rewrite docs/warehouse.md with CRM_UPDATE_SNAPSHOTS=1"
        if table.name in named:
            assert [c.name for c in named[table.name].columns] == list(table.names()), table.name
    written_by_assets = {
        "raw.sales_transactions", "raw.customers", "raw.products", "enriched.customers", "enriched.transactions",
        "features.customer_month_activity", "features.repeated_orders", "features.customer_features",
        "lifecycle.customer_lifecycle", "rfmt.customer_rfmt", "reporting.customer_snapshot",
        "reporting.segment_summary", "reporting.tier_migration", "reporting.cohort_retention",
        "reporting.contactable_customers", "reporting.device_attach",
    }  # fmt: skip
    assert set(named) == written_by_assets


def test_the_snapshot_contract_is_the_table_the_docs_and_dagster_show(tmp_path):
    docs = (Path(__file__).resolve().parent.parent / "docs" / "warehouse.md").read_text()
    assert SNAPSHOT_TABLE.markdown() in docs  # regenerate the table from the contract when this fails
    con = duckdb.connect()
    con.execute(REPORTING_DDL)
    described = con.execute("DESCRIBE reporting.customer_snapshot").fetchall()
    assert [(name, kind, null == "NO") for name, kind, null, *_ in described] == [
        (c.name, c.type, c.not_null) for c in SNAPSHOT_TABLE.columns
    ]
    assert set(SNAPSHOT_COLUMNS) <= set(LIST_COLUMNS)
    spec = defs.resolve_asset_graph().get(AssetKey(["reporting", "customer_snapshot"]))
    schema = spec.metadata["dagster/column_schema"]
    assert [c.name for c in schema.columns] == list(SNAPSHOT_COLUMNS)


def test_the_defaults_are_relative_to_the_repository_whatever_the_working_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DAGSTER_HOME")
    root = Path(__file__).resolve().parent.parent
    assert settings.project_root() == root
    assert settings.dagster_home() == root / ".dagster_home"
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    home = settings.prepare_dagster_home()
    assert "enabled: false" in (home / "dagster.yaml").read_text()  # the instance settings: no telemetry


def test_importing_the_definitions_reads_no_setting():
    """A bad setting fails when Dagster loads the code location (``defs()``), not when a module is imported."""
    code = "import crm_assets.definitions as d; print('imported', flush=True); d.defs()"
    env = {**os.environ, "CRM_FIRST_MONTH": "June"}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=env)
    assert result.stdout.strip().splitlines() == ["imported"]
    assert result.returncode != 0
    assert "CRM_FIRST_MONTH=June is not a month" in result.stderr


def test_the_resources_read_the_set_variables_when_a_run_starts(monkeypatch, tmp_path):
    """Each variable set is handed to Dagster as an ``EnvVar`` (resolved by the run, shown in the UI), each
    unset one leaves its field's default."""
    monkeypatch.setenv("CRM_WAREHOUSE", str(tmp_path / "w.duckdb"))
    monkeypatch.setenv("CRM_DUCKDB_THREADS", "2")
    monkeypatch.setenv("CRM_DUCKDB_MEMORY_LIMIT", "")  # blank: DuckDB's own limit
    monkeypatch.delenv("CRM_LOCK_TIMEOUT_SECONDS", raising=False)
    resources = build_resources()
    assert isinstance(resources["warehouse"].database, EnvVar)
    monkeypatch.setenv("CRM_WAREHOUSE", str(tmp_path / "later.duckdb"))  # read as the run starts, not before

    @asset
    def probe(warehouse: Warehouse):
        return warehouse.database, warehouse.threads, warehouse.memory_limit, warehouse.lock_timeout_seconds

    result = materialize([probe], resources={"warehouse": resources["warehouse"]})
    assert result.output_for_node("probe") == (str(tmp_path / "later.duckdb"), 2, "", 120)


def test_a_blank_variable_is_unset_except_the_memory_limit_and_a_bad_number_is_named(monkeypatch):
    monkeypatch.setenv("CRM_WAREHOUSE", " ")  # e.g. an empty ${VAR} of a compose file
    monkeypatch.setenv("CRM_OUTPUT_DIR", "")
    monkeypatch.setenv("CRM_DUCKDB_MEMORY_LIMIT", "")
    assert Warehouse().database == str(settings.project_root() / settings.DEFAULT_WAREHOUSE)
    assert OutputFolder().path == str(settings.project_root() / settings.DEFAULT_OUTPUT_DIR)
    assert set(env_config(Warehouse)) == {"memory_limit"} and Warehouse().memory_limit == ""
    monkeypatch.setenv("CRM_LOCK_TIMEOUT_SECONDS", "0.5")
    with pytest.raises(CrmError, match=r"^CRM_LOCK_TIMEOUT_SECONDS=0.5 is not a whole number$"):
        env_config(Warehouse)
    with pytest.raises(CrmError, match="is not a whole number"):
        Warehouse()


def _project(tmp_path: Path, monkeypatch) -> Path:
    """A project folder of its own (pyproject.toml, .env.example), so that no test writes the repository's .env."""
    root = tmp_path / "project"
    root.mkdir()
    (root / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    (root / settings.ENV_FILE_EXAMPLE).write_text("# comment\nDAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS=1\n")
    monkeypatch.setattr(settings, "project_root", lambda: root)
    monkeypatch.delenv("DAGSTER_HOME")
    return root


def test_crm_records_its_default_run_history_in_the_project_env_file_once(tmp_path, monkeypatch):
    root = _project(tmp_path, monkeypatch)
    home = settings.dagster_home()
    assert home == root / ".dagster_home"
    assert settings.record_dagster_home(home) == root / ".env"
    text = (root / ".env").read_text()
    assert text.splitlines() == [
        "# comment",
        "DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS=1",
        f"DAGSTER_HOME={home}",
    ]
    assert settings.record_dagster_home(home) is None  # named already: the file is left as it is
    assert (root / ".env").read_text() == text


def test_a_home_named_in_the_env_file_is_the_one_crm_and_dagster_open(tmp_path, monkeypatch):
    root = _project(tmp_path, monkeypatch)
    elsewhere = tmp_path / "history"
    (root / ".env").write_text(f"CRM_ENGINE=duckdb\nDAGSTER_HOME={elsewhere}\n")
    assert settings.dagster_home() == elsewhere
    assert settings.record_dagster_home(elsewhere) is None
    (root / ".env").write_text(f"export DAGSTER_HOME={elsewhere}\n")  # the same reading as Dagster's: no second one
    assert settings.record_dagster_home(elsewhere) is None
    assert settings.dagster_home() == elsewhere
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "set"))  # the environment wins, as for Dagster
    assert settings.dagster_home() == tmp_path / "set"
    # Dagster's own CLI, started in the project folder without DAGSTER_HOME, opens the same folder
    env = {k: v for k, v in os.environ.items() if k != "DAGSTER_HOME"}
    elsewhere.mkdir()
    done = subprocess.run(
        [sys.executable, "-m", "dagster", "instance", "info"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert f"$DAGSTER_HOME: {elsewhere}" in done.stdout, done.stdout + done.stderr


def test_a_crm_command_without_dagster_home_writes_the_project_env_file(tmp_path, monkeypatch):
    root = _project(tmp_path, monkeypatch)
    for name in settings.DAGSTER_SETTINGS:
        monkeypatch.setenv(name, "1")  # restored afterwards, like DAGSTER_HOME
    main._apply_path_options(argparse.Namespace())
    assert os.environ["DAGSTER_HOME"] == str(root / ".dagster_home")
    assert f"DAGSTER_HOME={root / '.dagster_home'}" in (root / ".env").read_text().splitlines()
    assert (root / ".dagster_home").is_dir()
