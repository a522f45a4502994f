"""The code location loads and has the expected shape."""

from dagster import AssetKey, BackfillPolicy

from crm_assets.core import settings
from crm_assets.core.partitions import monthly_partitions
from crm_assets.definitions import crm_pipeline_job, defs

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
    from pathlib import Path

    from crm_assets.layers.checks import all_checks

    text = (Path(__file__).resolve().parent.parent / "docs" / "data_quality.md").read_text()
    for check in all_checks():
        assert f"| `{check.asset}` | `{check.name}` |" in text, check.name


def test_every_asset_check_is_declared():
    from crm_assets.layers.checks import all_checks

    declared = {(("/".join(k.asset_key.path)), k.name) for k in asset_graph().asset_check_keys}
    assert declared == {(c.asset, c.name) for c in all_checks()}
