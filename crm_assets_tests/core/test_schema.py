"""Warehouses upgrade in place: an earlier release's warehouse gets the missing columns and its version; a newer
release's warehouse is refused in one line."""

from __future__ import annotations

import duckdb

from crm_assets.cli.main import main
from crm_assets.core import schema
from crm_assets_tests.test_definitions import contracted_tables

from ..conftest import query, table_dump


def run(input_dir, warehouse) -> int:
    return main(["run", "--input", str(input_dir), "--warehouse", str(warehouse), "--quiet"])


def test_migrations_are_numbered_one_by_one():
    assert [m.version for m in schema.MIGRATIONS] == list(range(1, schema.SCHEMA_VERSION + 1))


def test_a_new_warehouse_records_the_current_version(input_dir, warehouse_path):
    assert run(input_dir, warehouse_path) == 0
    assert query(warehouse_path, "SELECT version, description FROM meta.schema_version") == [
        (schema.SCHEMA_VERSION, "new warehouse")
    ]


def test_an_earlier_releases_warehouse_upgrades_in_place(input_dir, warehouse_path, tmp_path):
    assert run(input_dir, warehouse_path) == 0
    # what the release before the schema version left: no version table, no file_digest, no last_invoice_date
    con = duckdb.connect(str(warehouse_path))
    con.execute("DROP SCHEMA meta CASCADE")
    con.execute("ALTER TABLE raw.file_profiles DROP COLUMN last_invoice_date")
    con.execute("ALTER TABLE raw.file_loads DROP COLUMN file_digest")
    con.close()
    assert run(input_dir, warehouse_path) == 0
    assert query(warehouse_path, "SELECT version FROM meta.schema_version ORDER BY 1") == [
        (m.version,) for m in schema.MIGRATIONS
    ]
    columns = {
        c for (c,) in query(warehouse_path, "SELECT table_name || '.' || column_name FROM information_schema.columns")
    }
    assert {"file_profiles.last_invoice_date", "file_loads.file_digest"} <= columns
    described = query(
        warehouse_path,
        "SELECT table_schema || '.' || table_name, column_name, data_type, is_nullable = 'NO' "
        "FROM information_schema.columns ORDER BY table_schema, table_name, ordinal_position",
    )
    for table in contracted_tables():  # the upgraded tables are the contracts' (a run writes no export audit)
        if table.name != "reporting.export_audit":
            got = [(column, kind, not_null) for name, column, kind, not_null in described if name == table.name]
            assert got == [(c.name, c.type, c.not_null) for c in table.columns], table.name
    clean = tmp_path / "clean.duckdb"
    assert run(input_dir, clean) == 0
    upgraded, fresh = table_dump(warehouse_path), table_dump(clean)
    for table in ("raw.sales_transactions", "raw.file_profiles", "raw.rejected_rows", "reporting.customer_snapshot"):
        assert upgraded[table] == fresh[table], table  # the data (the run logs hold both runs)


def test_a_newer_releases_warehouse_is_refused_in_one_line(input_dir, warehouse_path, capsys):
    assert run(input_dir, warehouse_path) == 0
    con = duckdb.connect(str(warehouse_path))
    con.execute("INSERT INTO meta.schema_version (version, description) VALUES (99, 'from the future')")
    con.close()
    before = table_dump(warehouse_path)
    capsys.readouterr()
    assert run(input_dir, warehouse_path) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "written by a newer release (schema version 99" in err[0], err
    assert main(["sql", "--warehouse", str(warehouse_path), "SELECT 1"]) == 2
    assert "written by a newer release" in capsys.readouterr().err
    assert table_dump(warehouse_path) == before
