"""The tuning of the instance's SQLite storage: events are stored and read back as before, engines are reused."""

from __future__ import annotations

from dagster import AssetKey, AssetMaterialization, DagsterInstance

import crm_assets.automation.instance as tuning


def test_events_are_stored_and_read_back_through_the_reused_engines(tmp_path):
    with DagsterInstance.local_temp(str(tmp_path)) as instance:
        storage = instance.event_log_storage
        for month in range(1, 13):
            instance.report_runless_asset_event(AssetMaterialization(AssetKey("x"), partition=f"2024-{month:02d}-01"))
        assert len(instance.get_materialized_partitions(AssetKey("x"))) == 12
        engines = storage.__dict__.get("_crm_engines")
        assert engines and len(engines) <= tuning.ENGINES_KEPT
        kept = dict(engines)
        instance.report_runless_asset_event(AssetMaterialization(AssetKey("x"), partition="2025-01-01"))
        assert all(engines[shard] is engine for shard, engine in kept.items())  # the same engines, not new ones
        assert len(instance.get_materialized_partitions(AssetKey("x"))) == 13
