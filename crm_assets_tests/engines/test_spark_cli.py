"""``crm run`` with CRM_ENGINE=spark, as a user runs it (a subprocess: its own JVM), and a bad CRM_ENGINE."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from ..conftest import CUSTOMER_HEADER, PRODUCT_HEADER, TX_HEADER, lines, write

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]


def crm(args: list[str], env: dict, timeout: int = 1800) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "crm_assets.cli", *args],
        env={**os.environ, **env, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture
def small_input(tmp_path: Path) -> dict:
    folder = tmp_path / "input"
    write(folder / "products_master.csv", lines(PRODUCT_HEADER, "P1,Pods,B,consumable,10", "D1,Machine,B,device,"))
    write(
        folder / "customers_master.csv",
        lines(
            CUSTOMER_HEADER,
            "C1,Ann,Loyalty,Paris,2023-01-10,a@x.org,+331,1,0,",
            "C2,Bob,Retail,Lyon,2023-02-01,b@x.org,+332,1,1,1",
        ),
    )
    write(
        folder / "sales_transactions_2023.csv",
        lines(
            TX_HEADER,
            "A,C1,2023-01-15,P1,3,10,S1",
            "B,C2,2023-02-03,D1,1,90,S1",
            "C,C2,2023-02-03,P1,40,120,S1",
            "D,C1,2023-03-09,P1,-1,-3,S1",
            "E,C1,2023-03-20,P1,2,6,S1",
            "F,C1,2023-03-21,P1,x,6,S1",
        ),
    )
    return {
        "CRM_INPUT_DIR": str(folder),
        "CRM_WAREHOUSE": str(tmp_path / "warehouse" / "crm.duckdb"),
        "CRM_SPARK_WAREHOUSE": str(tmp_path / "spark-warehouse"),
        "CRM_OUTPUT_DIR": str(tmp_path / "output"),
        "DAGSTER_HOME": str(tmp_path / "dagster_home"),
        "CRM_SPARK_MASTER": "local[2]",
        "CRM_SPARK_DRIVER_MEMORY": "1g",
    }


def test_crm_run_on_spark_writes_the_outputs_and_the_readers_read_it(small_input, tmp_path):
    env = {**small_input, "CRM_ENGINE": "spark"}
    done = crm(["run", "--input", env["CRM_INPUT_DIR"]], env)
    assert done.returncode == 0, done.stderr[-3000:]
    spark_tables = tmp_path / "spark-warehouse"
    assert (spark_tables / "reporting" / "customer_snapshot" / "report_month=2023-03-01").is_dir()
    # the DuckDB file holds the raw layer's landing only: the later layers are the Parquet tables
    con = duckdb.connect(env["CRM_WAREHOUSE"], read_only=True)
    schemas = {s for (s,) in con.execute("SELECT DISTINCT table_schema FROM information_schema.tables").fetchall()}
    con.close()
    assert "reporting" not in schemas and "features" not in schemas
    output = tmp_path / "output"
    written = [p.relative_to(output).as_posix() for p in output.rglob("*") if p.is_file()]
    assert any(p.endswith("crm_summary_2023-03.xlsx") for p in written), written
    assert any(p.endswith("crm_summary_2023-03.html") for p in written), written
    assert any(p.startswith("powerbi/") and p.endswith(".pbip") for p in written), written
    assert any(p.startswith("powerbi/") and p.endswith(".parquet") for p in written), written

    query = crm(
        [
            "sql",
            "--csv",
            "SELECT customer_id, m_total FROM reporting.customer_snapshot "
            "WHERE report_month = DATE '2023-03-01' ORDER BY 1",
        ],
        env,
    )
    assert query.returncode == 0, query.stderr
    # C1: Jan 3*10 = 30, Mar 2*10 = 20 (the return and the bad line ignored); C2: 40*10 = 400
    assert query.stdout.splitlines() == ["customer_id,m_total", "C1,50.0", "C2,400.0"]
    export = crm(["export", "--month", "2023-03", "--out", str(tmp_path / "export.csv")], env)
    assert export.returncode == 0, export.stderr
    assert "C1" in (tmp_path / "export.csv").read_text()


def test_crm_run_with_a_bogus_engine_is_one_line_and_exit_2(small_input):
    done = crm(["run", "--input", small_input["CRM_INPUT_DIR"]], {**small_input, "CRM_ENGINE": "bogus"})
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == ["crm run: CRM_ENGINE=bogus is not an engine: use one of duckdb, spark"]
    assert "Traceback" not in done.stdout + done.stderr
