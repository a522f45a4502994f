"""Running the whole pipeline in-process on small hand-made data, for rule tests."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import duckdb
from dagster import DagsterInstance, materialize

from crm_assets.cli.runner import RANGE_END_TAG, RANGE_START_TAG
from crm_assets.core.partitioned import MonthWindow
from crm_assets.core.resources import InputFolder, OutputFolder, Warehouse
from crm_assets.core.rules import CrmRules
from crm_assets.definitions import all_assets
from crm_assets.engines.spark import reader_connection
from crm_assets.layers.pipeline import build_all

from .conftest import CUSTOMER_HEADER, PRODUCT_HEADER, TX_HEADER, write

# Where ``build`` runs the layers after raw: "duckdb" (a Dagster run, as ``crm run``) or a ``SparkEngine``
# factory ``(root) -> SparkEngine`` (``build_all`` on Spark; crm_assets_tests/engines sets it per module).
ENGINE: object = "duckdb"


def write_inputs(folder: Path, products: list[str], customers: list[str], transactions: dict[str, list[str]]) -> Path:
    """Write the three kinds of file; ``transactions`` maps a year to its CSV lines (no header)."""
    write(folder / "products_master.csv", "\n".join([PRODUCT_HEADER, *products]) + "\n")
    write(folder / "customers_master.csv", "\n".join([CUSTOMER_HEADER, *customers]) + "\n")
    for year, rows in transactions.items():
        write(folder / f"sales_transactions_{year}.csv", "\n".join([TX_HEADER, *rows]) + "\n")
    return folder


def run_pipeline(
    input_dir: Path, warehouse: Path, first: str, last: str, rules: CrmRules | None = None, workbook_months: int = 1
):
    """Materialize every asset for months ``first``..``last`` (``YYYY-MM``) in one in-process run, writing the
    workbooks of the newest ``workbook_months`` months (0: every month)."""
    result = materialize(
        all_assets,
        resources={
            "warehouse": Warehouse(database=str(warehouse)),
            "input_folder": InputFolder(path=str(input_dir)),
            "output_folder": OutputFolder(path=str(warehouse.parent / "output"), workbook_months=workbook_months),
            "crm_rules": rules or CrmRules(),
        },
        instance=DagsterInstance.ephemeral(),
        tags={RANGE_START_TAG: f"{first}-01", RANGE_END_TAG: f"{last}-01"},
        raise_on_error=True,
    )
    assert result.success
    return result


def snapshot(warehouse: Path, where: str = "true", params: list | None = None) -> list[dict]:
    """Rows of reporting.customer_snapshot as dicts, ordered by month and customer."""
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        cur = con.execute(
            f"SELECT * FROM reporting.customer_snapshot WHERE {where} ORDER BY report_month, customer_id", params or []
        )
        names = [d[0] for d in cur.description]
        return [dict(zip(names, row)) for row in cur.fetchall()]
    finally:
        con.close()


def build(
    tmp_path: Path,
    products: list[str],
    customers: list[str],
    transactions: dict[str, list[str]],
    first: str,
    last: str,
    rules: CrmRules | None = None,
    workbook_months: int = 1,
) -> list[dict]:
    """Write the files, run the pipeline for first..last, return every snapshot row."""
    folder = write_inputs(tmp_path / "input", products, customers, transactions)
    warehouse = tmp_path / "warehouse" / "crm.duckdb"
    if ENGINE != "duckdb":
        return build_on_engine(ENGINE(tmp_path / "spark"), folder, warehouse, first, last, rules)
    run_pipeline(folder, warehouse, first, last, rules, workbook_months)
    return snapshot(warehouse)


# The calendar of the in-process runs above (no CRM_INPUT_DIR data when the definitions load: the default one)
CALENDAR_FIRST = date(2020, 1, 1)


def build_on_engine(
    engine, folder: Path, warehouse: Path, first: str, last: str, rules: CrmRules | None = None
) -> list[dict]:
    """``build_all`` for months first..last with the layers after raw on ``engine`` (a SparkEngine); the
    snapshot rows as ``snapshot`` gives them, read through the engine's reader connection."""
    start, end = date.fromisoformat(f"{first}-01"), date.fromisoformat(f"{last}-01")
    keys = []
    m = start
    while m <= end:
        keys.append(m.isoformat())
        m = date(m.year + (m.month == 12), m.month % 12 + 1, 1)
    today = date.today()
    warehouse.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(warehouse))
    try:
        build_all(
            con,
            folder,
            MonthWindow(start, end, tuple(keys)),
            min(CALENDAR_FIRST, start),
            date(today.year, today.month, 1),
            rules,
            engine=engine,
        )
    finally:
        con.close()
    reader = reader_connection(engine.root, warehouse)
    try:
        cur = reader.execute("SELECT * FROM reporting.customer_snapshot ORDER BY report_month, customer_id")
        names = [d[0] for d in cur.description]
        return [dict(zip(names, r)) for r in cur.fetchall()]
    finally:
        reader.close()


def row(rows: list[dict], month: str, customer: str) -> dict | None:
    """The snapshot row of ``customer`` for ``month`` (``YYYY-MM``), or None."""
    for r in rows:
        if r["report_month"].strftime("%Y-%m") == month and r["customer_id"] == customer:
            return r
    return None
