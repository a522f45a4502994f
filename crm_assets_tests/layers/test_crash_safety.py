"""A run killed with SIGKILL in the middle of a backfill, then run again, leaves
exactly the warehouse that a clean run leaves."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from crm_assets.cli import generate

from ..conftest import table_dump

pytestmark = pytest.mark.slow

# Columns and tables that record when and by which run, not what.
VOLATILE_TABLES = (
    "quality.check_results",
    "reporting.snapshot_manifest",
    "reporting.snapshot_changes",
    "reporting.export_audit",
    "reporting.month_builds",
)


def crm_run(input_dir: Path, warehouse: Path, home: Path) -> subprocess.Popen:
    env = dict(
        os.environ,
        DAGSTER_HOME=str(home),
        CRM_WAREHOUSE=str(warehouse),
        CRM_INPUT_DIR=str(input_dir),
        CRM_OUTPUT_DIR=str(warehouse.parent / f"{warehouse.stem}_output"),
    )
    home.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen(
        [sys.executable, "-m", "crm_assets.cli", "run", "--input", str(input_dir), "--warehouse", str(warehouse)],
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
