"""Shared fixtures: a temporary landing folder and warehouse, and file writers."""

from __future__ import annotations

import os
import tempfile
import warnings
from pathlib import Path

import duckdb
import pytest

warnings.filterwarnings("ignore", message=".*is currently in beta.*")

# A test that sets no CRM_INPUT_DIR of its own gets an empty folder, and so the default calendar (2020-01 on),
# whatever data/input holds; a run on a test's folder (crm run --input) gets the calendar of its data.
os.environ["CRM_INPUT_DIR"] = tempfile.mkdtemp(prefix="crm-tests-no-input-")
os.environ.pop("CRM_FIRST_MONTH", None)
# Runs write the workbook of their newest month only (each costs about 0.4 s even on a few customers); the
# tests of the workbooks and of CRM_WORKBOOK_MONTHS itself ask for theirs.
os.environ["CRM_WORKBOOK_MONTHS"] = "1"

TX_HEADER = "invoice_id,customer_id,invoice_date,product_id,quantity,revenue,store_id"
CUSTOMER_HEADER = (
    "customer_id,customer_name,customer_group,city,created_date,email,mobile_number,opt_email,opt_sms,opt_phone"
)
PRODUCT_HEADER = "product_id,product_name,brand,category,unit_size"


def write(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, str):
        text = text.encode("utf-8")
    path.write_bytes(text)
    return path


def lines(*rows: str) -> str:
    return "\n".join(rows) + "\n"


@pytest.fixture
def input_dir(tmp_path: Path) -> Path:
    """A landing folder with minimal valid masters and one transactions file."""
    folder = tmp_path / "input"
    write(folder / "products_master.csv", lines(PRODUCT_HEADER, "P1,Pods,B,consumable,10", "D1,Machine,B,device,"))
    write(
        folder / "customers_master.csv",
        lines(CUSTOMER_HEADER, "C1,Ann,Loyalty,Paris,2023-01-10,a@x.org,+331,1,0,"),
    )
    write(folder / "sales_transactions_2023.csv", lines(TX_HEADER, "A,C1,2023-01-15,P1,3,10,S1"))
    return folder


@pytest.fixture
def warehouse_path(tmp_path: Path) -> Path:
    return tmp_path / "warehouse" / "crm.duckdb"


@pytest.fixture(autouse=True)
def _isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test touches the repository's data/ or .dagster_home."""
    monkeypatch.setenv("CRM_INPUT_DIR", str(tmp_path / "input"))
    monkeypatch.setenv("CRM_WAREHOUSE", str(tmp_path / "warehouse" / "crm.duckdb"))
    monkeypatch.setenv("CRM_OUTPUT_DIR", str(tmp_path / "output"))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    os.makedirs(tmp_path / "dagster_home", exist_ok=True)


def query(path: Path, sql: str, params: list | None = None) -> list[tuple]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


def table_dump(path: Path) -> dict[str, list[tuple]]:
    """Every row of every table of the warehouse except load timestamps, for before/after comparisons."""
    con = duckdb.connect(str(path), read_only=True)
    try:
        tables = con.execute("SELECT table_schema, table_name FROM information_schema.tables ORDER BY 1, 2").fetchall()
        dump = {}
        for schema, table in tables:
            columns = [
                c
                for (c,) in con.execute(
                    "SELECT column_name FROM information_schema.columns WHERE table_schema = ? AND table_name = ? "
                    "AND column_name NOT IN ('loaded_at', 'applied_at') ORDER BY ordinal_position",
                    [schema, table],
                ).fetchall()
            ]
            cols = ", ".join(f'"{c}"' for c in columns)
            dump[f"{schema}.{table}"] = con.execute(f'SELECT {cols} FROM "{schema}"."{table}" ORDER BY ALL').fetchall()
        return dump
    finally:
        con.close()
