"""A run killed with SIGKILL in the middle of a backfill, then run again, leaves
exactly the warehouse that a clean run leaves."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from crm_assets.cli import generate
from crm_assets.core import builds

from ..conftest import table_dump

pytestmark = pytest.mark.slow

# Columns and tables that record when and by which run, not what.
VOLATILE_TABLES = (
    "quality.check_results",
    "reporting.snapshot_manifest",
    "reporting.snapshot_changes",
    "reporting.export_audit",
    "reporting.month_builds",
    "raw.file_months",  # which file version each month's rows were read from: a narrower run reads fewer
)


def crm_run(input_dir: Path, warehouse: Path, home: Path, *options: str) -> subprocess.Popen:
    env = dict(
        os.environ,
        DAGSTER_HOME=str(home),
        CRM_WAREHOUSE=str(warehouse),
        CRM_INPUT_DIR=str(input_dir),
        CRM_OUTPUT_DIR=str(warehouse.parent / f"{warehouse.stem}_output"),
    )
    home.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "crm_assets.cli",
            "run",
            "--input",
            str(input_dir),
            "--warehouse",
            str(warehouse),
            *options,
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def stable(dump: dict) -> dict:
    return {k: v for k, v in dump.items() if k not in VOLATILE_TABLES}


@pytest.fixture(scope="module")
def clean(tmp_path_factory):
    root = tmp_path_factory.mktemp("crash")
    generate.generate(root / "input", customers=800, start="2024-01", end="2025-12")
    started = time.monotonic()
    proc = crm_run(root / "input", root / "clean.duckdb", root / "home_clean")
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err
    return root, time.monotonic() - started, stable(table_dump(root / "clean.duckdb"))


VIEWS = builds.VIEW_LAYERS


def test_a_run_killed_before_its_views_made_any_is_finished_by_the_next_run(clean):
    """The state a kill leaves after the snapshot, before the first view was made (no view table, no view stamp):
    the next plain run makes them, for every month, and the warehouse is the clean one."""
    root, _, expected = clean
    warehouse, home = root / "before_views.duckdb", root / "home_before_views"
    shutil.copy(root / "clean.duckdb", warehouse)
    con = duckdb.connect(str(warehouse))
    try:
        for view in VIEWS:
            con.execute(f"DROP TABLE {view}")
        con.execute("DELETE FROM reporting.month_builds WHERE layer IN (SELECT unnest(?::VARCHAR[]))", [list(VIEWS)])
    finally:
        con.close()
    rerun = crm_run(root / "input", warehouse, home)
    out, err = rerun.communicate(timeout=600)
    assert rerun.returncode == 0, err
    assert "nothing to build" not in out
    assert stable(table_dump(warehouse)) == expected


@pytest.mark.parametrize("fraction", [0.4, 0.75])
def test_sigkill_mid_backfill_then_rerun_equals_clean_run(clean, fraction):
    root, duration, expected = clean
    warehouse = root / f"killed_{fraction}.duckdb"
    home = root / f"home_{fraction}"
    delay = duration * fraction
    for _ in range(4):  # a run that ended before the kill is retried with a shorter delay
        proc = crm_run(root / "input", warehouse, home)
        time.sleep(delay)
        if proc.poll() is None:
            break
        proc.communicate()
        delay /= 2
    assert proc.poll() is None, "the run always ended before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    rerun = crm_run(root / "input", warehouse, home)
    out, err = rerun.communicate(timeout=600)
    assert rerun.returncode == 0, err
    assert stable(table_dump(warehouse)) == expected


@pytest.mark.parametrize("step", ["features/customer_features", "lifecycle/customer_lifecycle", "raw/products"])
def test_a_narrow_run_killed_after_an_edit_of_history_is_finished_by_the_next_narrow_run(tmp_path, step):
    """Quantities of an old month corrected, ``crm run --from N --to N`` (it widens to the corrected month),
    SIGKILL when ``step`` starts, the same command again: the warehouse equals a clean build."""
    generate.generate(tmp_path / "input", customers=60, start="2024-01", end="2025-06")
    warehouse, home = tmp_path / "w.duckdb", tmp_path / "home"
    first = crm_run(tmp_path / "input", warehouse, home)
    assert first.communicate(timeout=600) and first.returncode == 0
    tx = tmp_path / "input" / "sales_transactions_2024.csv"
    rows = tx.read_text().splitlines()
    rows = [rows[0], *(_doubled(r) if ",2024-03-" in r else r for r in rows[1:])]
    tx.write_text("\n".join(rows) + "\n")
    narrow = ("--from", "2025-06", "--to", "2025-06")
    proc = crm_run(tmp_path / "input", warehouse, home, *narrow)
    started = time.monotonic()
    seen = ""
    while proc.poll() is None and time.monotonic() - started < 300:
        line = proc.stdout.readline()
        seen += line
        if line.split()[:1] == [step] and "started" in line:
            os.killpg(proc.pid, signal.SIGKILL)
            break
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL, f"the run ended before {step} started: {seen}"
    assert "running 2024-03..2025-06 (not 2025-06..2025-06)" in seen
    again = crm_run(tmp_path / "input", warehouse, home, *narrow)
    out, err = again.communicate(timeout=600)
    assert again.returncode == 0, err
    assert "2024-03..2025-06" in out, out
    clean = crm_run(tmp_path / "input", tmp_path / "clean.duckdb", tmp_path / "home_clean")
    assert clean.communicate(timeout=600) and clean.returncode == 0
    assert stable(table_dump(warehouse)) == stable(table_dump(tmp_path / "clean.duckdb"))
    # and nothing is left to do: the planner finds every month built from the files as they are
    done = crm_run(tmp_path / "input", warehouse, home)
    out, _ = done.communicate(timeout=600)
    assert done.returncode == 0 and "nothing to build" in out, out


def _doubled(row: str) -> str:
    fields = row.split(",")
    fields[4] = str(2 * int(float(fields[4])))
    return ",".join(fields)
