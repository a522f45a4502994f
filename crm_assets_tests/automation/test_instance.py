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


def test_a_watcher_of_a_running_run_sees_each_event_as_it_is_written(tmp_path):
    """The UI follows a run by watching its file: with the connections kept, each write still touches it."""
    import time

    from dagster._core.storage.dagster_run import DagsterRun

    with DagsterInstance.local_temp(str(tmp_path)) as instance:
        run = instance.add_run(DagsterRun(job_name="crm_pipeline", run_id="watched"))
        seen: list[float] = []
        started = time.monotonic()
        instance.event_log_storage.watch("watched", None, lambda event, cursor: seen.append(time.monotonic()))
        written = []
        for i in range(4):
            instance.report_engine_event(f"step {i}", run)
            written.append(time.monotonic())
            time.sleep(0.5)
        time.sleep(1.0)
        instance.event_log_storage.end_watch("watched", None)
    assert len(seen) >= 4
    assert seen[0] - started < 1.5 and seen[0] < written[2]  # the first event arrived before the third was written


def test_a_check_planned_for_a_range_of_months_is_stored_once_per_month(tmp_path):
    from dagster import (
        AssetCheckKey,
        AssetCheckResult,
        AssetCheckSpec,
        BackfillPolicy,
        MaterializeResult,
        MonthlyPartitionsDefinition,
        asset,
        materialize,
    )
    from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus as Status

    @asset(
        partitions_def=MonthlyPartitionsDefinition("2024-01-01", end_offset=0),
        backfill_policy=BackfillPolicy.single_run(),
        check_specs=[AssetCheckSpec("c", asset="x")],
    )
    def x(context):
        return MaterializeResult(check_results=[AssetCheckResult(passed=True)])

    months = {"dagster/asset_partition_range_start": "2024-01-01", "dagster/asset_partition_range_end": "2024-03-01"}
    with DagsterInstance.local_temp(str(tmp_path)) as instance:
        run = materialize([x], instance=instance, tags=months)
        records = instance.event_log_storage.get_asset_check_execution_history(AssetCheckKey(AssetKey("x"), "c"), 10)
        # Dagster's own writer stores the very same rows for the same event
        storage = instance.event_log_storage
        table = "asset_check_executions"
        columns = "asset_key, check_name, partition, run_id, execution_status, evaluation_event, "
        columns += "evaluation_event_timestamp, evaluation_event_storage_id"
        ours = _rows(storage, f"SELECT {columns} FROM {table} WHERE execution_status = 'PLANNED' ORDER BY partition")
        record = next(
            r
            for r in instance.get_records_for_run(run.run_id, limit=1000).records
            if r.event_log_entry.dagster_event_type.value == "ASSET_CHECK_EVALUATION_PLANNED"
        )
        _rows(storage, f"DELETE FROM {table} WHERE execution_status = 'PLANNED'")
        tuning.DAGSTER_PLANNED_CHECK_WRITER(storage, record.event_log_entry, record.storage_id)
        theirs = _rows(storage, f"SELECT {columns} FROM {table} WHERE execution_status = 'PLANNED' ORDER BY partition")
    assert len(ours) == 3 and ours == theirs
    planned = [r for r in records if r.status == Status.PLANNED]
    assert sorted(r.partition for r in planned) == ["2024-01-01", "2024-02-01", "2024-03-01"]
    assert all(
        r.run_id == run.run_id and r.event.dagster_event_type.value == "ASSET_CHECK_EVALUATION_PLANNED" for r in planned
    )
    assert [r.status for r in records if r not in planned] == [Status.SUCCEEDED]


def test_a_table_once_found_is_not_asked_again_and_a_missing_one_still_is(tmp_path, monkeypatch):
    from dagster._core.storage.event_log.sqlite import sqlite_event_log

    with DagsterInstance.local_temp(str(tmp_path)) as instance:
        storage = instance.event_log_storage
        engines = []
        real = sqlite_event_log.create_engine
        monkeypatch.setattr(sqlite_event_log, "create_engine", lambda *a, **k: engines.append(1) or real(*a, **k))
        assert storage.has_table("asset_event_tags") and storage.has_table("asset_event_tags")
        assert not storage.has_table("no_such_table") and not storage.has_table("no_such_table")
    assert len(engines) == 3  # one for the table found, one each time for the missing one


def _rows(storage, statement: str) -> list[tuple]:
    from sqlalchemy import text

    with storage.index_connection() as conn:
        result = conn.execute(text(statement))
        return [tuple(r) for r in result] if result.returns_rows else []
