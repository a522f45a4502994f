"""Schedule, sensor, late-data visibility and overlapping runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import date, datetime, timezone
from pathlib import Path
from unittest import mock

import duckdb
import pytest
from dagster import (
    AssetKey,
    AssetMaterialization,
    DagsterInstance,
    RunRequest,
    SkipReason,
    build_schedule_context,
    build_sensor_context,
    instance_for_test,
)

from crm_assets.automation.jobs import RANGE_END_TAG, RANGE_START_TAG
from crm_assets.automation.schedules import month_before, monthly_refresh
from crm_assets.automation.sensors import input_files_sensor
from crm_assets.cli import generate
from crm_assets.core.builds import Staleness, plan_range, uncovered
from crm_assets.core.partitioned import MonthWindow
from crm_assets.core.partitions import DEFAULT_START, Calendar
from crm_assets.engines.duckdb import DuckDBEngine
from crm_assets.layers import pipeline
from crm_assets.layers.pipeline import build_all
from crm_assets.outputs.views import build_views

from ..conftest import TX_HEADER, lines, table_dump, write
from ..pipeline import write_inputs

SNAPSHOT = AssetKey(["reporting", "customer_snapshot"])

# the calendar of definitions loaded before the test's files landed: the default one
CALENDAR = Calendar(DEFAULT_START, "no transactions when the definitions loaded")


def months(first: str, last: str) -> list[str]:
    out, y, m = [], int(first[:4]), int(first[5:7])
    while f"{y:04d}-{m:02d}-01" <= last:
        out.append(f"{y:04d}-{m:02d}-01")
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return out


def materialize_months(instance: DagsterInstance, keys: list[str]) -> None:
    for key in keys:
        instance.report_runless_asset_event(AssetMaterialization(SNAPSHOT, partition=key))


# --- schedule: see the end of the file (it needs the landing fixture) ---


# --- sensor ---------------------------------------------------------------------------------------


@pytest.fixture
def landing(tmp_path, monkeypatch):
    folder = write_inputs(
        tmp_path / "landing",
        ["P1,Pods,B,consumable,10"],
        ["C1,Ann,Loyalty,Paris,2023-01-10,,,1,0,"],
        {"2023": ["A,C1,2023-01-15,P1,3,10,S1", "B,C1,2023-05-20,P1,2,5,S1", "C,C1,2023-09-01,P1,1,1,S1"]},
    )
    monkeypatch.setenv("CRM_INPUT_DIR", str(folder))
    monkeypatch.setenv("CRM_SENSOR_SETTLE_SECONDS", "0")
    return folder


def tick(instance, cursor):
    with build_sensor_context(instance=instance, cursor=cursor) as context:
        result = input_files_sensor(CALENDAR)(context)
        return result, context.cursor


def span(request) -> tuple[str, str]:
    assert isinstance(request, RunRequest), request
    return request.tags[RANGE_START_TAG], request.tags[RANGE_END_TAG]


def skipped(result) -> str:
    assert isinstance(result, SkipReason), result
    return result.skip_message


def build_warehouse(folder: Path, first: str, last: str, allow_removals: bool = False) -> None:
    """What a `crm run` of first..last leaves in the warehouse the sensor looks at (CRM_WAREHOUSE)."""
    path = Path(os.environ["CRM_WAREHOUSE"])
    path.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(path))
    try:
        build_all(con, folder, window(first, last), date(2020, 1, 1), date(2026, 10, 1), allow_removals=allow_removals)
        build_views(DuckDBEngine(con), window(first, last))  # a crm run builds the reporting views too
    finally:
        con.close()


def test_sensor_with_nothing_built_requests_every_month_of_the_data(landing):
    with instance_for_test() as instance:
        request, cursor = tick(instance, None)
    assert span(request) == ("2023-01-01", "2023-09-01")
    assert set(json.loads(cursor)) == {"signature", "decision"}


def test_sensor_after_a_run_requests_nothing(landing):
    build_warehouse(landing, "2023-01-01", "2023-09-01")
    with instance_for_test() as instance:
        result, cursor = tick(instance, None)
        assert skipped(result) == "the warehouse holds every input file as it is"
        result, cursor2 = tick(instance, cursor)
    assert skipped(result).startswith("no change in the folder since: the warehouse holds")
    assert cursor2 == cursor


def test_sensor_replaced_file_requests_from_its_earliest_changed_month(landing):
    build_warehouse(landing, "2023-01-01", "2023-12-01")
    with instance_for_test() as instance:
        write(
            landing / "sales_transactions_2023.csv",
            lines(TX_HEADER, "A,C1,2023-01-15,P1,3,10,S1", "B,C1,2023-05-20,P1,4,5,S1", "C,C1,2023-09-01,P1,1,1,S1"),
        )
        request, cursor = tick(instance, None)
    # May changed; the refresh runs through the newest built month, as one run
    assert span(request) == ("2023-05-01", "2023-12-01")
    assert json.loads(cursor)["decision"] == "lines of 2023-05 differ from the ones loaded: 2023-05..2023-12"


def test_sensor_new_year_file_requests_its_months(landing):
    build_warehouse(landing, "2023-01-01", "2023-09-01")
    with instance_for_test() as instance:
        write(
            landing / "sales_transactions_2024.csv",
            lines(TX_HEADER, "D,C1,2024-03-01,P1,1,1,S1", "E,C1,2024-04-01,P1,1,1,S1"),
        )
        request, _ = tick(instance, None)
    # the months between the old data and the new are built too: each month's history is every month before it
    assert span(request) == ("2023-10-01", "2024-04-01")


def test_sensor_months_come_from_the_valid_lines_despite_an_open_quote(landing):
    build_warehouse(landing, "2023-01-01", "2023-09-01")
    with instance_for_test() as instance:
        write(
            landing / "sales_transactions_2024.csv",
            lines(
                TX_HEADER,
                "D,C1,2024-03-01,P1,1,1,S1",
                'X,"C1,2024-04-01,P1,1,1,S1',
                "E,C1,2024-06-01,P1,1,1,S1",
                'Y,"multi',
                'line",2024-07-01,P1,1,1,S1',
            ),
        )
        request, _ = tick(instance, None)
    assert span(request) == ("2023-10-01", "2024-06-01")


def test_sensor_changed_master_requests_every_month(landing):
    build_warehouse(landing, "2023-01-01", "2023-09-01")
    with instance_for_test() as instance:
        write(landing / "customers_master.csv", (landing / "customers_master.csv").read_text().replace("Paris", "Lyon"))
        request, _ = tick(instance, None)
    assert span(request) == ("2023-01-01", "2023-09-01")


def test_sensor_skips_a_removal_with_its_reason(landing):
    write(landing / "sales_transactions_2022.csv", lines(TX_HEADER, "Z,C1,2022-11-15,P1,1,1,S1"))
    build_warehouse(landing, "2022-11-01", "2023-09-01")
    with instance_for_test() as instance:
        (landing / "sales_transactions_2022.csv").unlink()
        result, cursor = tick(instance, None)
        message = skipped(result)
        assert message.startswith("sales_transactions_2022.csv is gone from the folder; 2022-11 would lose 1 rows.")
        assert "--allow-removals" in message
        result, _ = tick(instance, cursor)
    assert message in skipped(result)  # the reason stays visible on later ticks


def test_sensor_rejected_lines_only_refresh_the_newest_month(landing):
    build_warehouse(landing, "2023-01-01", "2023-09-01")
    with instance_for_test() as instance:
        text = (landing / "sales_transactions_2023.csv").read_text()
        write(landing / "sales_transactions_2023.csv", text + "broken line\n")
        request, _ = tick(instance, None)
    assert span(request) == ("2023-09-01", "2023-09-01")


def test_sensor_waits_for_a_file_still_being_written(landing, monkeypatch):
    build_warehouse(landing, "2023-01-01", "2023-09-01")
    with instance_for_test() as instance:
        _, cursor = tick(instance, None)
        monkeypatch.setenv("CRM_SENSOR_SETTLE_SECONDS", "3600")
        write(landing / "sales_transactions_2024.csv", lines(TX_HEADER, "D,C1,2024-03-01,P1,1,1,S1"))
        result, cursor2 = tick(instance, cursor)
        assert "waiting for" in skipped(result) and "sales_transactions_2024.csv" in skipped(result)
        assert cursor2 == cursor  # nothing remembered: the next tick sees the file as new
        monkeypatch.setenv("CRM_SENSOR_SETTLE_SECONDS", "0")
        request, _ = tick(instance, cursor2)
    assert span(request) == ("2023-10-01", "2024-03-01")


# --- late data -----------------------------------------------------------------------------------


def window(first: str, last: str) -> MonthWindow:
    keys = months(first, last)
    return MonthWindow(date.fromisoformat(keys[0]), date.fromisoformat(keys[-1]), tuple(keys))


def test_recomputed_month_records_what_changed(landing, tmp_path):
    con = duckdb.connect()
    build_all(con, landing, window("2023-01-01", "2023-12-01"), date(2020, 1, 1), date(2026, 10, 1), run_id="first")
    assert con.execute("SELECT count(*) FROM reporting.snapshot_changes").fetchone() == (0,)  # nothing to compare with
    # a late line in March: the customer stays Active, but the tier and event of March move
    write(
        landing / "sales_transactions_2023.csv",
        lines(
            TX_HEADER,
            "A,C1,2023-01-15,P1,3,10,S1",
            "L,C1,2023-03-10,P1,700,1,S1",
            "B,C1,2023-05-20,P1,2,5,S1",
            "C,C1,2023-09-01,P1,1,1,S1",
        ),
    )
    build_all(con, landing, window("2023-03-01", "2023-12-01"), date(2020, 1, 1), date(2026, 10, 1), run_id="late")
    rows = con.execute(
        "SELECT strftime(report_month, '%Y-%m'), changed_tier, changed_status, changed_any FROM reporting.snapshot_changes "
        "WHERE run_id = 'late' ORDER BY 1"
    ).fetchall()
    assert [r[0] for r in rows] == [m[:7] for m in months("2023-03-01", "2023-12-01")]
    march = rows[0]
    assert march[1] == 1 and march[2] == 0 and march[3] == 1  # Bronze -> Gold in March, still Active
    assert rows[-1][3] == 1  # m_total moved in every later month


# --- one writer at a time --------------------------------------------------------------------------


@pytest.mark.slow
def test_two_overlapping_runs_both_succeed_and_leave_a_clean_warehouse(tmp_path):
    generate.generate(tmp_path / "input", customers=300, start="2024-01", end="2024-06")
    env = dict(os.environ, DAGSTER_HOME=str(tmp_path / "home"), CRM_INPUT_DIR=str(tmp_path / "input"))
    (tmp_path / "home").mkdir()

    def launch(warehouse: Path) -> subprocess.Popen:
        return subprocess.Popen(
            [sys.executable, "-m", "crm_assets.cli", "run", "--warehouse", str(warehouse)],
            env=dict(env, CRM_WAREHOUSE=str(warehouse)),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    DagsterInstance.local_temp(str(tmp_path / "home")).dispose()  # storage created once, up front
    shared = tmp_path / "shared.duckdb"
    first, second = launch(shared), launch(shared)
    results = [p.communicate(timeout=900) for p in (first, second)]
    assert first.returncode == 0 and second.returncode == 0, results
    # the second run says it waits for the first one, and never fails on the lock
    errors = [line for _, err in results for line in err.splitlines() if not line.startswith("crm: waiting for")]
    assert not any("lock" in line.lower() for line in errors), results
    alone = launch(tmp_path / "alone.duckdb")
    assert alone.communicate(timeout=900) and alone.returncode == 0

    def stable(path):
        dump = table_dump(path)
        for volatile in (
            "quality.check_results",
            "reporting.snapshot_manifest",
            "reporting.snapshot_changes",
            "reporting.export_audit",
            "reporting.month_builds",
        ):
            dump.pop(volatile, None)
        return dump

    assert stable(shared) == stable(tmp_path / "alone.duckdb")


MONTHLY_CORE = (
    "raw/sales_transactions,enriched/transactions,features/customer_month_activity,features/repeated_orders,"
    "features/customer_features,lifecycle/customer_lifecycle,rfmt/customer_rfmt,reporting/customer_snapshot"
)


@pytest.mark.slow
def test_dagster_cli_partition_range_is_one_run(tmp_path):
    generate.generate(tmp_path / "input", customers=100, start="2025-01", end="2025-03")
    home = tmp_path / "home"
    home.mkdir()
    env = dict(
        os.environ,
        DAGSTER_HOME=str(home),
        CRM_INPUT_DIR=str(tmp_path / "input"),
        CRM_WAREHOUSE=str(tmp_path / "w.duckdb"),
        CRM_OUTPUT_DIR=str(tmp_path / "out"),
    )
    dagster = Path(sys.executable).parent / "dagster"
    for selection, extra in (
        ("raw/products,raw/customers,enriched/customers", []),
        (MONTHLY_CORE, ["--partition-range", "2025-01-01...2025-03-01"]),
    ):
        done = subprocess.run(
            [str(dagster), "asset", "materialize", "-m", "crm_assets.definitions", "--select", selection, *extra],
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert done.returncode == 0, done.stderr[-3000:]
    with DagsterInstance.local_temp(str(home)) as instance:
        records = instance.get_run_records()
        assert len(records) == 2
        ranged = [r for r in records if r.dagster_run.tags.get(RANGE_START_TAG)]
        assert len(ranged) == 1 and ranged[0].dagster_run.is_success
        assert instance.get_materialized_partitions(SNAPSHOT) == {"2025-01-01", "2025-02-01", "2025-03-01"}


# --- schedule --------------------------------------------------------------------------------------
# The landing fixture's lines are dated 2023-01-15, 2023-05-20 and 2023-09-01 (one 2023 file).


def utc(*parts) -> datetime:
    return datetime(*parts, tzinfo=timezone.utc)


def written(path: Path, when: datetime) -> None:
    os.utime(path, (when.timestamp(), when.timestamp()))


def schedule_tick(when: datetime):
    with instance_for_test() as instance:
        with build_schedule_context(instance=instance, scheduled_execution_time=when) as context:
            return monthly_refresh(CALENDAR)(context)


def test_schedule_before_the_data_ends_builds_the_month_that_ended(landing):
    build_warehouse(landing, "2023-01-01", "2023-04-01")
    written(landing / "sales_transactions_2023.csv", utc(2023, 10, 5))
    assert span(schedule_tick(utc(2023, 6, 2, 6))) == ("2023-05-01", "2023-05-01")


def test_schedule_at_the_data_end_waits_for_a_file_written_after_the_month(landing):
    build_warehouse(landing, "2023-01-01", "2023-08-01")
    tx = landing / "sales_transactions_2023.csv"
    written(tx, utc(2023, 9, 30, 18))  # taken before September ended: September may be incomplete
    message = skipped(schedule_tick(utc(2023, 10, 2, 6)))
    assert message.startswith("2023-09 is not covered by the files yet: the newest transaction is dated 2023-09-01")
    assert "sales_transactions_2023.csv, written 2023-09-30 18:00" in message
    written(tx, utc(2023, 10, 1, 0, 30))  # taken after September ended
    assert span(schedule_tick(utc(2023, 10, 2, 6))) == ("2023-09-01", "2023-09-01")


def test_schedule_after_the_data_ends_skips_naming_the_month_and_the_newest_date(landing):
    build_warehouse(landing, "2023-01-01", "2023-09-01")
    written(landing / "sales_transactions_2023.csv", utc(2023, 10, 3))
    message = skipped(schedule_tick(utc(2024, 1, 2, 6)))  # January: December of the year before
    assert message.startswith("2023-12 is not covered by the files yet: the newest transaction is dated 2023-09-01")


def test_schedule_in_january_builds_december_of_the_year_before(landing):
    build_warehouse(landing, "2023-01-01", "2023-09-01")
    write(landing / "sales_transactions_2024.csv", lines(TX_HEADER, "D,C1,2024-01-01,P1,1,1,S1"))
    write(
        landing / "sales_transactions_2023.csv",
        (landing / "sales_transactions_2023.csv").read_text() + "E,C1,2023-12-15,P1,1,1,S1\n",
    )
    written(landing / "sales_transactions_2023.csv", utc(2023, 12, 20))  # December incomplete in its own file...
    written(landing / "sales_transactions_2024.csv", utc(2024, 1, 1, 9))  # ...but a January line follows it
    # October and November have no line: covered all the same (a later line exists), and built before December
    assert span(schedule_tick(utc(2024, 1, 2, 6))) == ("2023-10-01", "2023-12-01")


def test_schedule_with_nothing_built_starts_at_the_first_month_of_the_data(landing):
    written(landing / "sales_transactions_2023.csv", utc(2023, 10, 3))
    assert span(schedule_tick(utc(2023, 10, 2, 6))) == ("2023-01-01", "2023-09-01")


def test_schedule_fills_a_gap_before_the_month(landing):
    build_warehouse(landing, "2023-01-01", "2023-05-01")
    written(landing / "sales_transactions_2023.csv", utc(2023, 10, 3))
    assert span(schedule_tick(utc(2023, 9, 2, 6))) == ("2023-06-01", "2023-08-01")


def test_schedule_skips_a_month_built_from_the_files_as_they_are(landing):
    build_warehouse(landing, "2023-01-01", "2023-09-01")
    written(landing / "sales_transactions_2023.csv", utc(2023, 10, 3))
    assert skipped(schedule_tick(utc(2023, 8, 2, 6))) == "2023-07 is built from the files as they are"


def test_schedule_skips_a_month_before_the_calendar(landing):
    assert "is not in the calendar" in skipped(schedule_tick(utc(2019, 5, 2, 6)))


def test_month_before_crosses_the_year():
    assert month_before(date(2025, 1, 2)) == "2024-12-01"
    assert month_before(date(2025, 12, 31)) == "2025-11-01"


def test_plan_range_covers_every_stale_month_whatever_was_asked():
    keys = months("2020-01-01", "2026-10-01")
    stale = Staleness(
        stale=[date(2024, 3, 1), date(2024, 4, 1), date(2024, 5, 1)],
        held=[date(2024, m, 1) for m in range(1, 6)],
        reasons=["lines of 2024-03 differ from the ones loaded"],
    )
    plain = plan_range(stale, keys, "2024-01-01", "2024-05-01")
    assert (plain.first, plain.last) == ("2024-03-01", "2024-05-01")
    assert plain.notes == ["lines of 2024-03 differ from the ones loaded: running 2024-03..2024-05"]
    narrow = plan_range(stale, keys, "2024-01-01", "2024-05-01", ("2024-05-01", "2024-05-01"))
    assert (narrow.first, narrow.last) == ("2024-03-01", "2024-05-01")
    assert narrow.notes == [
        "lines of 2024-03 differ from the ones loaded: running 2024-03..2024-05 (not 2024-05..2024-05)"
    ]
    wide = plan_range(stale, keys, "2024-01-01", "2024-05-01", ("2024-01-01", None))
    assert (wide.first, wide.last, wide.notes) == ("2024-01-01", "2024-05-01", [])
    everything = plan_range(Staleness(held=stale.held), keys, "2024-01-01", "2024-05-01", everything=True)
    assert (everything.first, everything.last) == ("2024-01-01", "2024-05-01")
    assert uncovered(stale, keys, "2024-03-01", "2024-05-01") is None
    assert "2024-03..2024-05 must be built, and this run covers 2024-04..2024-05" in uncovered(
        stale, keys, "2024-04-01", "2024-05-01"
    )
    assert "2024-03..2024-05 must be built, and this run covers 2024-03..2024-04" in uncovered(
        stale, keys, "2024-03-01", "2024-04-01"
    )  # 2024-05 is held: it would stay on older history
    fresh = Staleness(stale=[date(2024, m, 1) for m in range(1, 6)], held=[], reasons=["2024-01..2024-05 not built"])
    assert uncovered(fresh, keys, "2024-01-01", "2024-03-01") is None  # a first build may stop before the end


def test_plan_range_builds_nothing_when_nothing_is_stale_and_the_newest_month_for_a_file_alone():
    keys = months("2020-01-01", "2026-10-01")
    held = [date(2024, m, 1) for m in range(1, 6)]
    nothing = plan_range(Staleness(held=held), keys, "2024-01-01", "2024-05-01")
    assert nothing.first is None and nothing.why == "every month is built from the files as they are"
    files = plan_range(Staleness(held=held, files_stale=True), keys, "2024-01-01", "2024-05-01")
    assert (files.first, files.last, files.files_only) == ("2024-05-01", "2024-05-01", True)
    assert uncovered(Staleness(held=held, files_stale=True), keys, "2024-01-01", "2024-01-01") is None


def test_schedule_after_a_changed_master_refreshes_every_month(landing):
    build_warehouse(landing, "2023-01-01", "2023-08-01")
    written(landing / "sales_transactions_2023.csv", utc(2023, 10, 3))
    write(landing / "customers_master.csv", (landing / "customers_master.csv").read_text().replace("Paris", "Lyon"))
    assert span(schedule_tick(utc(2023, 10, 2, 6))) == ("2023-01-01", "2023-09-01")


def test_sensor_finishes_the_work_of_a_run_that_failed_half_way(landing):
    build_warehouse(landing, "2023-01-01", "2023-09-01")
    write(
        landing / "sales_transactions_2023.csv",
        lines(TX_HEADER, "A,C1,2023-01-15,P1,3,10,S1", "B,C1,2023-05-20,P1,4,5,S1", "C,C1,2023-09-01,P1,1,1,S1"),
    )
    with instance_for_test() as instance:
        request, cursor = tick(instance, None)
        assert span(request) == ("2023-05-01", "2023-09-01")
        # the run it asked for loads the lines and the enriched layer, then dies in the features
        with mock.patch.object(pipeline, "build_features", side_effect=RuntimeError("killed")):
            with pytest.raises(RuntimeError):
                build_warehouse(landing, "2023-05-01", "2023-09-01")
        again, cursor = tick(instance, cursor)
        assert span(again) == ("2023-05-01", "2023-09-01")  # the folder did not change, the work is pending
        assert again.run_key != request.run_key
        assert json.loads(cursor)["decision"].startswith("2023-05..2023-09 left unfinished")
        result, _ = tick(instance, cursor)
    assert skipped(result).startswith("no change in the folder since: 2023-05..2023-09 left unfinished")
