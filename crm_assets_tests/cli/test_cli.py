"""The ``crm`` command: runs through Dagster, and user errors are one line without a traceback."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import time
from datetime import date

import duckdb
import pytest
from dagster import AssetKey, DagsterInstance

from crm_assets.cli.arguments import month_or_last
from crm_assets.cli.main import main
from crm_assets.cli.progress import Ticker, status_line

from ..conftest import CUSTOMER_HEADER, TX_HEADER, lines, query, write


def run_cli(*args: str, env_extra: dict | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env.update(env_extra or {})
    return subprocess.run(
        [sys.executable, "-m", "crm_assets.cli", *args], capture_output=True, text=True, env=env, timeout=300
    )


def test_run_materializes_and_records_in_dagster_home(input_dir, warehouse_path, tmp_path, capsys):
    code = main(["run", "--input", str(input_dir), "--warehouse", str(warehouse_path)])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "materialized" in out and "2023-01..2023-01 (1 months)" in out
    assert query(warehouse_path, "SELECT count(*) FROM raw.sales_transactions") == [(1,)]
    with DagsterInstance.get() as instance:
        assert instance.get_latest_materialization_event(AssetKey(["raw", "sales_transactions"])) is not None
        assert len(instance.get_run_records()) == 1


def test_run_months_option_limits_the_range(input_dir, warehouse_path, capsys):
    write(input_dir / "sales_transactions_2024.csv", lines(TX_HEADER, "B,C1,2024-03-01,P1,1,1,S1"))
    args = ["run", "--input", str(input_dir), "--warehouse", str(warehouse_path)]
    # history first: a range after the first month of data starts at the first month not built
    assert main([*args, "--from", "2024-02", "--to", "2024-02"]) == 0
    assert "running 2023-01..2024-02 (not 2024-02..2024-02)" in capsys.readouterr().out
    assert main(args) == 0
    assert "2024-03..2024-03 (1 months)" in capsys.readouterr().out  # the one month still not built
    assert main([*args, "--from", "2024-01", "--to", "2024-12"]) == 0
    assert "2024-01..2024-12 (12 months)" in capsys.readouterr().out
    runs_per_month = dict(
        query(
            warehouse_path,
            "SELECT strftime(report_month, '%Y-%m'), count(DISTINCT run_id) FROM reporting.snapshot_manifest GROUP BY 1",
        )
    )
    assert runs_per_month["2023-06"] == 1 and runs_per_month["2024-02"] == 2 and runs_per_month["2024-12"] == 1


def one_line_error(result: subprocess.CompletedProcess, *needles: str) -> None:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    err_lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
    assert len(err_lines) >= 1
    last = err_lines[-1]
    for needle in needles:
        assert needle in last, result.stderr


@pytest.mark.parametrize(
    "args, needles",
    [
        (["run", "--from", "2023-13"], ["--from", "'2023-13' is not a month"]),
        (["run", "--from", "2024-05", "--to", "2024-01"], ["--from 2024-05 is after --to 2024-01"]),
        (["generate", "--out", "x", "--customers", "0"], ["--customers", "'0' is not a positive whole number"]),
        (["frobnicate"], ["invalid choice"]),
    ],
)
def test_bad_arguments(input_dir, args, needles):
    one_line_error(run_cli(*args), *needles)


def test_missing_input_folder(tmp_path):
    result = run_cli("run", "--input", str(tmp_path / "nowhere"))
    one_line_error(result, "nowhere: input folder not found")
    assert result.returncode == 2


def test_missing_required_column_fails_the_run_with_one_line(input_dir, warehouse_path):
    write(input_dir / "products_master.csv", lines("product_id,product_name,brand,unit_size", "P1,a,b,1"))
    result = run_cli("run", "--input", str(input_dir), "--warehouse", str(warehouse_path))
    one_line_error(result, "products_master.csv: missing required column 'category'")
    assert result.returncode == 2  # bad input found inside the run is still a user error


def test_help_for_every_command():
    for command in ("generate", "run"):
        result = run_cli(command, "--help")
        assert result.returncode == 0 and "usage: crm " + command in result.stdout


def test_locked_warehouse_is_one_clear_line(input_dir, warehouse_path):
    warehouse_path.parent.mkdir(parents=True, exist_ok=True)
    holder = duckdb.connect(str(warehouse_path))  # another process holding the file read-write
    try:
        result = run_cli(
            "run",
            "--input",
            str(input_dir),
            "--warehouse",
            str(warehouse_path),
            env_extra={"CRM_LOCK_TIMEOUT_SECONDS": "1"},
        )
    finally:
        holder.close()
    one_line_error(result, "warehouse is locked by another process")
    err = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(err) == 2
    assert err[0].startswith(f"crm: waiting for {warehouse_path}: the warehouse is open in another process")


def test_duplicate_key_is_one_clear_line(input_dir, warehouse_path):
    write(input_dir / "customers_master.csv", lines(CUSTOMER_HEADER, "C1,A,G,X,,,,,,", "C1,B,G,X,,,,,,"))
    result = run_cli("run", "--input", str(input_dir), "--warehouse", str(warehouse_path))
    one_line_error(result, "customers_master.csv: duplicate customer_id 'C1' (2 rows, lines 2, 3)")


def test_run_prints_each_asset_and_a_summary_with_the_rejects(input_dir, warehouse_path, capsys):
    write(
        input_dir / "sales_transactions_2023.csv",
        lines(TX_HEADER, "A,C1,2023-01-15,P1,3,10,S1", "B,C1,2023-01-16,P1,x,1,S1"),
    )
    assert main(["run", "--input", str(input_dir), "--warehouse", str(warehouse_path)]) == 0
    out = capsys.readouterr().out.splitlines()
    raw = [line.split() for line in out if line.split()[:1] == ["raw/sales_transactions"]]
    assert raw[0] == ["raw/sales_transactions", "started"]
    assert raw[1][:4] == ["raw/sales_transactions", "done", "1", "rows"] and raw[1][-1] == "s"
    done = [line.split()[0] for line in out if " done " in line]
    assert len(done) == 18 and "reporting/customer_snapshot" in done  # every step, the features' two assets as one
    assert "  months built: 2023-01..2023-01 (1 months), 1 snapshot rows" in out
    assert "  rejected rows: 1 (sales_transactions_2023.csv 1); list them with" in out
    assert "    SELECT source_file, line_number, reason, raw_line FROM raw.rejected_rows ORDER BY 1, 2" in out
    assert any(
        line.startswith("  warning checks that failed: ")
        and "raw/sales_transactions rejected_rows (1 file line)" in line
        for line in out
    )
    assert any(line.startswith("  workbook: ") and line.endswith("crm_summary_2023-01.xlsx") for line in out)
    assert any(line.startswith("  HTML report: ") and line.endswith("crm_summary_2023-01.html") for line in out)


def test_run_quiet_prints_nothing_on_success(input_dir, warehouse_path, capsys):
    assert main(["run", "--quiet", "--input", str(input_dir), "--warehouse", str(warehouse_path)]) == 0
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""


def test_sql_prints_a_read_only_query_and_a_bad_one_is_one_line(input_dir, warehouse_path, capsys):
    assert main(["run", "--quiet", "--input", str(input_dir), "--warehouse", str(warehouse_path)]) == 0
    sql = ["sql", "--warehouse", str(warehouse_path)]
    assert main([*sql, "--csv", "SELECT customer_id, m_total FROM reporting.customer_snapshot"]) == 0
    assert capsys.readouterr().out.splitlines() == ["customer_id,m_total", "C1,30.0"]
    assert main([*sql, "SELECT count(*) AS customers FROM reporting.customer_snapshot"]) == 0
    assert "customers" in capsys.readouterr().out
    assert main([*sql, "DELETE FROM reporting.customer_snapshot"]) == 2  # read-only
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("crm sql: ")
    assert query(warehouse_path, "SELECT count(*) FROM reporting.customer_snapshot") == [(1,)]


def test_a_long_step_shows_a_status_bar_on_a_terminal_only():
    assert status_line("features/customer_features", 12.4, 5, 10, width=10) == (
        "  [#####.....] 5/10 steps  features/customer_features running 12 s"
    )

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    terminal, pipe = Terminal(), io.StringIO()
    for stream in (terminal, pipe):
        ticker = Ticker(stream, total=4, after=0.05, every=0.02)
        ticker.start("raw/sales_transactions")
        time.sleep(0.3)
        ticker.finish()
        ticker.write("  raw/sales_transactions done")
    assert "] 0/4 steps  raw/sales_transactions running 0 s" in terminal.getvalue()
    assert terminal.getvalue().endswith("\r\033[K  raw/sales_transactions done\n")  # the bar is cleared first
    assert pipe.getvalue() == "  raw/sales_transactions done\n"  # a pipe gets the plain lines only


def test_generate_end_last_is_the_last_complete_month():
    today = date.today()
    expected = f"{today.year - (today.month == 1):04d}-{(today.month - 2) % 12 + 1:02d}-01"
    assert month_or_last("last") == month_or_last("LAST") == expected
    assert month_or_last("2024-03") == "2024-03-01"
