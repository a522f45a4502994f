"""Checks inside Dagster runs: results visible as asset checks, blocking failures stop
downstream assets and leave the warehouse in its last good state."""

from __future__ import annotations

import pytest
from dagster import DagsterEventType, DagsterInstance, materialize

from crm_assets.cli.runner import RANGE_END_TAG, RANGE_START_TAG
from crm_assets.core.quality import ERROR
from crm_assets.core.resources import InputFolder, OutputFolder, Warehouse
from crm_assets.core.rules import CrmRules
from crm_assets.definitions import all_assets
from crm_assets.layers import lifecycle
from crm_assets.layers.checks import all_checks

from ..conftest import CUSTOMER_HEADER, PRODUCT_HEADER, lines, query, table_dump, write
from ..pipeline import write_inputs


def run(input_dir, warehouse):
    return materialize(
        all_assets,
        resources={
            "warehouse": Warehouse(database=str(warehouse)),
            "input_folder": InputFolder(path=str(input_dir)),
            "output_folder": OutputFolder(path=str(warehouse.parent / "output")),
            "crm_rules": CrmRules(),
        },
        instance=DagsterInstance.ephemeral(),
        tags={RANGE_START_TAG: "2023-01-01", RANGE_END_TAG: "2024-07-01"},
        raise_on_error=False,
    )


def evaluations(result) -> dict[tuple[str, str], bool]:
    out = {}
    for event in result.all_events:
        if event.event_type == DagsterEventType.ASSET_CHECK_EVALUATION:
            data = event.event_specific_data
            out[("/".join(data.asset_key.path), data.check_name)] = data.passed
    return out


def materialized(result) -> set[str]:
    return {
        "/".join(e.asset_key.path) for e in result.all_events if e.event_type == DagsterEventType.ASSET_MATERIALIZATION
    }


@pytest.fixture
def example(tmp_path):
    folder = write_inputs(
        tmp_path / "input",
        ["P1,Pods,B,consumable,10", "D1,Machine,B,device,"],
        ["C1,Ann,Loyalty,Paris,2023-01-10,a@x.org,+331,1,0,", "C2,Bob,Retail,Lyon,2023-01-02,,,0,1,1"],
        {
            "2023": [
                "A,C1,2023-01-15,D1,1,100,S1",
                "A,C1,2023-01-15,P1,3,10,S1",
                "B,C1,2023-02-20,P1,2,5,S1",
                "C,C1,2023-06-30,P1,5,5,S1",
                "E,C2,2023-03-03,P1,4,4,S2",
            ],
            "2024": ["D,C1,2024-07-01,P1,1,1,S1", "F,C2,2024-02-03,P1,4,4,S2"],
        },
    )
    return folder, tmp_path / "warehouse" / "crm.duckdb"


def test_every_check_is_evaluated_and_passes_on_good_data(example):
    folder, warehouse = example
    result = run(folder, warehouse)
    assert result.success
    got = evaluations(result)
    expected = {(c.asset, c.name) for c in all_checks()}
    assert set(got) == expected
    assert all(got[(c.asset, c.name)] for c in all_checks() if c.severity == ERROR)
    recorded = query(warehouse, "SELECT count(DISTINCT (asset_key, check_name)) FROM quality.check_results")
    assert recorded == [(len(expected),)]


@pytest.mark.parametrize(
    "file, text, check",
    [
        (
            "products_master.csv",
            lines(PRODUCT_HEADER, "P1,Pods,B,consumable,10", "P1,Pods,B,consumable,10"),
            ("raw/products", "unique_key"),
        ),
        (
            "products_master.csv",
            lines(PRODUCT_HEADER, "P1,Pods,B,consumable,0"),
            ("raw/products", "consumables_have_positive_unit_size"),
        ),
        (
            "products_master.csv",
            lines("product_id,brand,unit_size", "P1,B,10"),
            ("raw/products", "readable_with_required_columns"),
        ),
        (
            "customers_master.csv",
            lines(CUSTOMER_HEADER, "C1,A,G,X,,,,,,", " C1,B,G,X,,,,,,"),
            ("raw/customers", "unique_key"),
        ),
        (
            "sales_transactions_2024.csv",
            lines("invoice_id,customer_id,product_id,quantity", "A,C1,P1,1"),
            ("raw/sales_transactions", "readable_with_required_columns"),
        ),
    ],
)
def test_blocking_raw_check_stops_the_run_and_keeps_the_last_good_state(example, file, text, check):
    folder, warehouse = example
    assert run(folder, warehouse).success
    before = table_dump(warehouse)
    write(folder / file, text)
    result = run(folder, warehouse)
    assert not result.success
    assert evaluations(result)[check] is False
    assert not materialized(result) & {
        "reporting/customer_snapshot",
        "features/customer_features",
        "enriched/transactions",
    }
    after = table_dump(warehouse)
    failed = [r for r in after.pop("quality.check_results") if r[2] == check[1] and r[5] is False]
    before.pop("quality.check_results")
    # the stamps of what was rebuilt (enriched.customers, beside a failed master) name the run that wrote them
    before.pop("reporting.month_builds"), after.pop("reporting.month_builds")
    assert after == before
    assert failed, "the failed check is in quality.check_results"


def test_blocking_analytics_check_rolls_back_and_stops_downstream(example, monkeypatch):
    folder, warehouse = example
    assert run(folder, warehouse).success
    before = table_dump(warehouse)
    monkeypatch.setattr(
        lifecycle,
        "LIFECYCLE_SQL",
        lifecycle.LIFECYCLE_SQL.replace("THEN 'At Risk'", "THEN 'at risk'").replace("THEN 'Lost'\n", "THEN 'Gone'\n"),
    )
    result = run(folder, warehouse)
    assert not result.success
    assert evaluations(result)[("lifecycle/customer_lifecycle", "accepted_values_lifecycle_stage")] is False
    assert "lifecycle/customer_lifecycle" not in materialized(result)
    assert not materialized(result) & {"rfmt/customer_rfmt", "reporting/customer_snapshot"}
    after = table_dump(warehouse)
    for volatile in (
        "quality.check_results",
        "reporting.snapshot_manifest",
        "raw.file_loads",
        "reporting.month_builds",
    ):
        before.pop(volatile), after.pop(volatile)
    assert after == before
