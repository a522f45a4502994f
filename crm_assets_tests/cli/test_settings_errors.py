"""Settings and states that used to end in a traceback or an "internal error": each is one line naming the
setting or the file, exit code 2.

- a time zone that is none (``CRM_SCHEDULE_TIMEZONE``), a negative count (``CRM_WORKBOOK_MONTHS``), a
  ``DAGSTER_HOME`` that is a file;
- a damaged warehouse file, and a full disk, wherever they surface (before a run, in one of its steps, in an
  output command);
- ``crm sql`` reads the warehouse and nothing else.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

import duckdb
import pytest

from crm_assets.cli.main import main
from crm_assets.core import settings
from crm_assets.core.errors import CrmError
from crm_assets.definitions import build_definitions
from crm_assets.outputs import exports, powerbi

from ..conftest import CUSTOMER_HEADER, PRODUCT_HEADER, TX_HEADER, lines, write
from .test_cli import one_line_error, run_cli


def one_line_exit_2(result, *needles: str) -> str:
    one_line_error(result, *needles)
    assert result.returncode == 2, result.stderr
    err = [line for line in result.stderr.strip().splitlines() if line.strip()]
    assert len(err) == 1, result.stderr
    assert "internal error" not in err[0]
    return err[0]


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> dict:
    """A warehouse built by ``crm run`` from the minimal input of conftest: the environment of its commands."""
    root = tmp_path_factory.mktemp("built")
    folder = root / "input"
    write(folder / "products_master.csv", lines(PRODUCT_HEADER, "P1,Pods,B,consumable,10"))
    write(folder / "customers_master.csv", lines(CUSTOMER_HEADER, "C1,Ann,Loyalty,Paris,2023-01-10,a@x.org,+331,1,0,"))
    write(folder / "sales_transactions_2023.csv", lines(TX_HEADER, "A,C1,2023-01-15,P1,3,10,S1"))
    env = {
        "CRM_INPUT_DIR": str(folder),
        "CRM_WAREHOUSE": str(root / "warehouse" / "crm.duckdb"),
        "CRM_OUTPUT_DIR": str(root / "output"),
        "DAGSTER_HOME": str(root / "dagster_home"),
    }
    done = run_cli("run", "--quiet", env_extra=env)
    assert done.returncode == 0, done.stderr
    return env


# ---------------------------------------------------------------------------------------------------------------
# settings


def test_a_schedule_timezone_that_is_no_time_zone_is_one_line(input_dir, warehouse_path):
    result = run_cli(
        "run",
        "--input",
        str(input_dir),
        "--warehouse",
        str(warehouse_path),
        env_extra={"CRM_SCHEDULE_TIMEZONE": "Mars/Olympus"},
    )
    line = one_line_exit_2(result, "CRM_SCHEDULE_TIMEZONE=Mars/Olympus is not a time zone")
    assert "DagsterInvalidDefinitionError" not in line
    assert not warehouse_path.exists()  # refused before anything started


@pytest.mark.parametrize("value", ["UTC", "utc", "Europe/Paris", "America/New_York", " Asia/Tokyo "])
def test_time_zones_of_the_iana_database_are_taken(monkeypatch, value):
    monkeypatch.setenv(settings.ENV_SCHEDULE_TIMEZONE, value)
    assert settings.schedule_timezone() == ("UTC" if value.strip().upper() == "UTC" else value.strip())


@pytest.mark.parametrize("value", ["Mars/Olympus", "../../etc/passwd", "/etc/localtime", "Europe/"])
def test_other_time_zones_are_refused(monkeypatch, value):
    monkeypatch.setenv(settings.ENV_SCHEDULE_TIMEZONE, value)
    with pytest.raises(CrmError, match=f"^CRM_SCHEDULE_TIMEZONE={value.strip()} is not a time zone"):
        settings.schedule_timezone()


@pytest.mark.parametrize(
    "variable, value",
    [
        ("CRM_WORKBOOK_MONTHS", "-5"),
        ("CRM_WORKBOOK_MONTHS", "1.5"),
        ("CRM_WORKBOOK_MONTHS", "two"),
        ("CRM_WORKBOOK_LIST_ROWS", "-1"),
    ],
)
def test_a_negative_or_fractional_count_is_one_line(input_dir, warehouse_path, variable, value):
    result = run_cli("run", "--input", str(input_dir), "--warehouse", str(warehouse_path), env_extra={variable: value})
    one_line_exit_2(result, f"crm run: {variable}={value} is not a whole number >= 0")
    assert not warehouse_path.exists()  # not taken as "every month": nothing ran


def test_counts_that_are_whole_numbers_are_taken(monkeypatch):
    for value in ("0", "1", "12", " 3 ", ""):
        monkeypatch.setenv("CRM_WORKBOOK_MONTHS", value)
        settings.check_counts()


def test_a_dagster_home_that_is_a_file_is_one_line(input_dir, warehouse_path, tmp_path):
    home = write(tmp_path / "home.txt", "not a folder")
    result = run_cli(
        "run", "--input", str(input_dir), "--warehouse", str(warehouse_path), env_extra={"DAGSTER_HOME": str(home)}
    )
    one_line_exit_2(result, f"crm run: DAGSTER_HOME={home} is a file, not a folder")
    below = tmp_path / "home.txt" / "inside"  # a folder below a file
    result = run_cli(
        "run", "--input", str(input_dir), "--warehouse", str(warehouse_path), env_extra={"DAGSTER_HOME": str(below)}
    )
    one_line_exit_2(result, f"crm run: DAGSTER_HOME={below}: cannot hold the run history there")


# ---------------------------------------------------------------------------------------------------------------
# a damaged warehouse


def _damaged_copy(built: dict, tmp_path: Path, how: str) -> Path:
    copy = tmp_path / "damaged.duckdb"
    data = Path(built["CRM_WAREHOUSE"]).read_bytes()
    if how == "truncated":
        copy.write_bytes(data[: len(data) // 2])
    elif how == "header only":
        copy.write_bytes(data[:4096])
    else:  # not a DuckDB file at all
        copy.write_bytes(os.urandom(8192))
    return copy


@pytest.mark.parametrize("how", ["truncated", "header only", "garbage"])
def test_a_damaged_warehouse_is_one_line_saying_what_to_do(built, tmp_path, how):
    copy = _damaged_copy(built, tmp_path, how)
    env = {**built, "CRM_WAREHOUSE": str(copy), "CRM_OUTPUT_DIR": str(tmp_path / "out")}
    commands = [
        ("run", "--quiet"),
        ("export", "--month", "2023-01", "--out", str(tmp_path / "list.csv")),
        ("report", "--month", "2023-01"),
    ]
    if how != "truncated":  # the half left holds the blocks of this small query: it reads fine
        commands.append(("sql", "SELECT count(*) FROM reporting.customer_snapshot"))
    for command in commands:
        line = one_line_exit_2(
            run_cli(*command, env_extra=env), f"crm {command[0]}: {copy}: the warehouse file is damaged ("
        )
        assert "restore it from a backup, or delete it and run `crm run`" in line, line
    assert not (tmp_path / "list.csv").exists()


def test_a_damaged_warehouse_met_inside_a_run_is_one_line(input_dir, warehouse_path, monkeypatch, capsys):
    def damaged(con, output_dir):
        raise duckdb.IOException(
            f'IO Error: Could not read enough bytes from file "{warehouse_path}": attempted to read 262144 bytes '
            "from location 6041600"
        )

    monkeypatch.setattr(powerbi, "write_star_schema", damaged)
    assert main(["run", "--input", str(input_dir), "--warehouse", str(warehouse_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"crm run: {warehouse_path}: the warehouse file is damaged (IO Error:")
    assert "delete it and run `crm run`" in err[0]


# ---------------------------------------------------------------------------------------------------------------
# a full disk


def _rollback_after_a_full_disk(path: str):
    """What DuckDB raises when a commit hits a full disk and the code then rolls back: the real error is the
    context of "cannot rollback"."""
    try:
        raise duckdb.TransactionException(
            f'TransactionContext Error: Failed to commit: Could not write file "{path}": No space left on device'
        )
    except duckdb.TransactionException:
        con = duckdb.connect()
        con.execute("ROLLBACK")  # the real one: "cannot rollback - no transaction is active"


def test_a_full_disk_behind_a_failed_rollback_is_one_line(built, tmp_path, monkeypatch, capsys):
    wal = f"{built['CRM_WAREHOUSE']}.wal"
    monkeypatch.setattr(exports, "export_customers", lambda *a, **k: _rollback_after_a_full_disk(wal))
    args = ["export", "--month", "2023-01", "--warehouse", built["CRM_WAREHOUSE"], "--out", str(tmp_path / "l.csv")]
    assert main(args) == 2
    assert capsys.readouterr().err.strip().splitlines() == [f"crm export: no space left on the device: {wal}"]


def test_a_full_disk_in_the_cause_chain_is_one_line(built, tmp_path, monkeypatch, capsys):
    out = tmp_path / "l.csv"

    def full(*args, **kwargs):
        raise RuntimeError("the writer failed") from OSError(errno.ENOSPC, "No space left on device", str(out))

    monkeypatch.setattr(exports, "export_customers", full)
    args = ["export", "--month", "2023-01", "--warehouse", built["CRM_WAREHOUSE"], "--out", str(out)]
    assert main(args) == 2
    assert capsys.readouterr().err.strip().splitlines() == [f"crm export: no space left on the device: {out}"]

    def nameless(*args, **kwargs):  # no path said: the file the command writes
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(exports, "export_customers", nameless)
    assert main(args) == 2
    assert capsys.readouterr().err.strip().splitlines() == [f"crm export: no space left on the device: {out}"]


def test_a_full_disk_inside_a_run_is_one_line(input_dir, warehouse_path, monkeypatch, capsys):
    wal = f"{warehouse_path}.wal"
    monkeypatch.setattr(powerbi, "write_star_schema", lambda con, output_dir: _rollback_after_a_full_disk(wal))
    assert main(["run", "--input", str(input_dir), "--warehouse", str(warehouse_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"crm run: no space left on the device: {wal} (run "), err
    assert "cannot rollback" not in err[0]


# ---------------------------------------------------------------------------------------------------------------
# crm sql reads the warehouse only


def test_sql_reads_the_warehouse_and_no_other_file(built, tmp_path):
    ok = run_cli("sql", "--csv", "SELECT customer_id, m_total FROM reporting.customer_snapshot", env_extra=built)
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.splitlines() == ["customer_id,m_total", "C1,30.0"]

    secret = write(tmp_path / "secret.txt", "password\n")
    target = tmp_path / "stolen.csv"
    refused = {
        f"COPY (SELECT * FROM reporting.customer_snapshot) TO '{target}'": "COPY writes a file",
        f"SELECT 1; COPY reporting.customer_snapshot TO '{target}'": "COPY writes a file",
        f"EXPORT DATABASE '{tmp_path / 'dump'}'": "EXPORT DATABASE writes files",
        f"SELECT * FROM read_text('{secret}')": "file system operations are disabled",
        "SELECT * FROM read_text('/etc/passwd')": "file system operations are disabled",
        f"SELECT * FROM read_csv('{secret}')": "file system operations are disabled",
        f"SELECT * FROM glob('{tmp_path}/*')": "file system operations are disabled",
        f"ATTACH '{tmp_path / 'other.duckdb'}' AS other": "file system operations are disabled",
        "SET enable_external_access = true": "the configuration has been locked",
        "RESET lock_configuration": "the configuration has been locked",
    }
    for query, needle in refused.items():
        result = run_cli("sql", query, env_extra=built)
        line = one_line_exit_2(result, "crm sql: ", needle)
        assert "password" not in result.stdout + line, query
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != "dagster_home") == ["secret.txt"]  # none written


def test_the_definitions_refuse_a_negative_count_setting_too(monkeypatch):
    """A run from the UI or the daemon loads the definitions, not the crm command: the same one line."""
    monkeypatch.setenv("CRM_WORKBOOK_MONTHS", "-5")
    with pytest.raises(CrmError, match=r"CRM_WORKBOOK_MONTHS=-5 is not a whole number >= 0"):
        build_definitions()
