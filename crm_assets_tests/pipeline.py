"""Running the whole pipeline in-process on small hand-made data, for rule tests."""

from __future__ import annotations

from pathlib import Path

import duckdb
from dagster import DagsterInstance, materialize

from crm_assets.cli.runner import RANGE_END_TAG, RANGE_START_TAG
from crm_assets.core.resources import InputFolder, OutputFolder, Warehouse
from crm_assets.core.rules import CrmRules
from crm_assets.definitions import all_assets

from .conftest import CUSTOMER_HEADER, PRODUCT_HEADER, TX_HEADER, write


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
    run_pipeline(folder, warehouse, first, last, rules, workbook_months)
    return snapshot(warehouse)


def row(rows: list[dict], month: str, customer: str) -> dict | None:
    """The snapshot row of ``customer`` for ``month`` (``YYYY-MM``), or None."""
    for r in rows:
        if r["report_month"].strftime("%Y-%m") == month and r["customer_id"] == customer:
            return r
    return None
