"""Every check counts in a declared unit, shows it wherever its count is shown, and samples whole ids with their
month: worked by hand on a tiny warehouse, then on long ids, then on an older warehouse's quality record."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import duckdb
import pytest
import sqlglot

from crm_assets.cli.progress import summary_lines
from crm_assets.core import quality, schema
from crm_assets.core.partitioned import MonthWindow
from crm_assets.core.quality import UNITS, Check, Outcome
from crm_assets.core.resources import Warehouse
from crm_assets.definitions import build_definitions
from crm_assets.engines.duckdb import DuckDBEngine
from crm_assets.engines.spark import bind, named_placeholders, to_spark_sql
from crm_assets.layers import features
from crm_assets.layers.checks import all_checks
from crm_assets.layers.pipeline import build_all
from crm_assets.layers.raw import CUSTOMER_CHECKS

from ..conftest import query
from ..pipeline import write_inputs

WINDOW_KEYS = ("2024-01-01", "2024-02-01", "2024-03-01", "2024-04-01")
# three customers without an entry date: two in every month, the third until its first line in March
NO_ENTRY = ("C-000000000000000000001", "C-000000000000000000002", "C-000000000000000000003")


@pytest.fixture(scope="module")
def no_entry_db(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("units")
    write_inputs(
        root / "input",
        ["P1,Pods,B,consumable,10"],
        [
            f"{NO_ENTRY[0]},Ann,Retail,Paris,,,,0,0,0",
            f"{NO_ENTRY[1]},Bob,Retail,Paris,,,,0,0,0",
            f"{NO_ENTRY[2]},Cid,Retail,Lyon,,,,0,0,0",
            "C4,Dan,Retail,Lyon,2023-06-01,,,0,0,0",
        ],
        {"2024": [f"A,{NO_ENTRY[2]},2024-03-05,P1,1,1,S1", "B,C4,2024-01-10,P1,2,2,S1"]},
    )
    path = root / "units.duckdb"
    con = duckdb.connect(str(path))
    window = MonthWindow(date(2024, 1, 1), date(2024, 4, 1), WINDOW_KEYS)
    build_all(con, root / "input", window, date(2024, 1, 1), date(2024, 4, 1))
    con.close()
    return path


def no_entry_check() -> Check:
    return next(c for c in features.CHECKS if c.name == "customers_without_entry_date")


def no_entry_outcome(path: Path) -> Outcome:
    with duckdb.connect(str(path), read_only=True) as con:
        (outcome,) = quality.evaluate(
            DuckDBEngine(con), [no_entry_check()], date(2024, 1, 1), date(2024, 4, 1), WINDOW_KEYS
        )
    return outcome


# --- every check declares its unit ------------------------------------------------------------------------


def test_every_check_of_the_definitions_declares_a_unit_of_the_allowed_set():
    specs = [spec for a in build_definitions().resolve_asset_graph().assets_defs for spec in a.check_specs]
    assert len(specs) == len(all_checks())
    by_key = {(c.asset, c.name): c for c in all_checks()}
    for spec in specs:
        check = by_key[(spec.asset_key.to_user_string(), spec.name)]
        assert check.unit in UNITS and (check.distinct is None or check.distinct in UNITS), check
        assert spec.metadata["unit"] == check.counts  # the UI shows the unit before any evaluation
    # what each kind of check counts, read from its SQL
    units = {(c.asset, c.name): c.unit for c in all_checks()}
    assert units["features/customer_features", "customers_without_entry_date"] == "customer-months"
    assert units["reporting/customer_snapshot", "unique_customer_month"] == "customer-months"
    assert units["enriched/transactions", "orphan_customer_lines"] == "lines"
    assert units["raw/sales_transactions", "exact_duplicate_lines"] == "lines"
    assert units["raw/sales_transactions", "rejected_rows"] == "file lines"
    assert units["raw/products", "unknown_categories"] == "products"
    assert units["raw/customers", "invalid_created_date"] == "customers"
    assert units["reporting/customer_snapshot", "m1_reconciles_with_lines"] == "months"
    assert units["lifecycle/customer_lifecycle", "row_count_matches"] == "rows"
    assert {c.unit for c in all_checks() if c.sql is None} == {"files", "runs"}
    assert {c.unit for c in all_checks() if c.distinct == "customers"} <= {"customer-months", "lines"}


def test_a_check_cannot_forget_its_unit_nor_misspell_it():
    with pytest.raises(TypeError, match="unit"):
        Check("a/b", "c", quality.WARN, "d", None)  # type: ignore[call-arg]
    with pytest.raises(ValueError) as error:
        Check("a/b", "c", quality.WARN, "d", None, unit="customer months")
    assert str(error.value).count("\n") == 0 and "check a/b c: unit 'customer months' is none of" in str(error.value)


def test_every_checks_unit_is_in_the_docs():
    text = (Path(__file__).resolve().parents[2] / "docs" / "data_quality.md").read_text()
    for check in all_checks():
        assert f"| `{check.asset}` | `{check.name}` | {check.severity} | " in text, check.name
        row = next(line for line in text.splitlines() if line.startswith(f"| `{check.asset}` | `{check.name}` |"))
        assert row.split(" | ")[4] == check.counts, check.name
    for unit in UNITS:
        assert f"\n| {unit} | " in text, unit


# --- a hand-worked warehouse: 3 customers without an entry date over 4 months -----------------------------


def test_customer_months_and_distinct_customers_worked_by_hand(no_entry_db):
    outcome = no_entry_outcome(no_entry_db)
    # 2 customers x 4 months + 1 customer x 2 months (January, February)
    assert {k: v for k, (v, _) in outcome.by_month.items()} == dict(zip(WINDOW_KEYS, (3, 3, 2, 2)))
    assert outcome.violations == 10 and outcome.check.unit == "customer-months" and outcome.distinct == 3
    assert outcome.count() == "3 customers (10 customer-months)"
    assert outcome.by_month["2024-03-01"] == (2, f"{NO_ENTRY[0]}, {NO_ENTRY[1]}")  # a month's sample: no month
    items, total = outcome.sample_items()
    assert total == 10 and items[:4] == [
        f"{NO_ENTRY[0]} (2024-01)",
        f"{NO_ENTRY[1]} (2024-01)",
        f"{NO_ENTRY[2]} (2024-01)",
        f"{NO_ENTRY[0]} (2024-02)",
    ]
    summary = outcome.summary()
    assert summary.startswith(
        "features/customer_features check customers_without_entry_date: 3 customers (10 customer-months) "
        "in 2024-01, 2024-02, 2024-03, 2024-04 (e.g. "
    )
    assert_whole_items(re.search(r"\(e\.g\. (.*)\)$", summary).group(1), set(items))


def test_the_dagster_result_carries_the_count_its_unit_and_the_customers(no_entry_db):
    (result,) = quality.check_results([no_entry_outcome(no_entry_db)])
    metadata = {k: v.value for k, v in result.metadata.items()}
    assert metadata["violations"] == 10 and isinstance(metadata["violations"], int)
    assert metadata["unit"] == "customer-months"
    assert metadata["customers"] == 3 and isinstance(metadata["customers"], int)
    assert metadata["sample"].startswith(f"{NO_ENTRY[0]} (2024-01), ")
    assert result.description.startswith("3 customers (10 customer-months): Evaluated customers with no created")


def test_the_quality_record_and_the_run_summary_name_the_unit(no_entry_db, tmp_path):
    rows = query(
        no_entry_db,
        "SELECT partition_key, violations, unit, sample FROM quality.check_results "
        "WHERE check_name = 'customers_without_entry_date' ORDER BY 1",
    )
    assert rows == [
        ("2024-01-01", 3, "customer-months", ", ".join(NO_ENTRY)),
        ("2024-02-01", 3, "customer-months", ", ".join(NO_ENTRY)),
        ("2024-03-01", 2, "customer-months", ", ".join(NO_ENTRY[:2])),
        ("2024-04-01", 2, "customer-months", ", ".join(NO_ENTRY[:2])),
    ]
    assert query(no_entry_db, "SELECT count(*) FROM quality.check_results WHERE unit IS NULL") == [(0,)]
    with duckdb.connect(str(no_entry_db), read_only=True) as con:
        lines = summary_lines(con, "direct", "2024-01-01", "2024-04-01", tmp_path)
    (warnings,) = [line for line in lines if line.startswith("warning checks that failed: ")]
    assert "features/customer_features customers_without_entry_date (10 customer-months)" in warnings


def test_a_blocking_failure_says_its_unit_in_one_line():
    check = quality.row_rule("a/t", "never_null", "t", "x IS NULL", "x is never NULL.")
    con = duckdb.connect()
    con.execute("CREATE TABLE t AS SELECT * FROM (VALUES (DATE '2024-01-01', 'C1', NULL), "
                "(DATE '2024-02-01', 'C1', NULL), (DATE '2024-02-01', 'C2', 1)) v(report_month, customer_id, x)")  # fmt: skip
    outcomes = quality.evaluate(
        DuckDBEngine(con), [check], date(2024, 1, 1), date(2024, 2, 1), ["2024-01-01", "2024-02-01"]
    )
    message = str(quality.BlockingCheckError(outcomes))
    assert message == (
        "a/t check never_null: 1 customer (2 customer-months) in 2024-01, 2024-02 (e.g. C1 (2024-01), C1 (2024-02))"
    )


# --- samples: whole items, never cut ------------------------------------------------------------------------


def assert_whole_items(text: str, items: set[str]) -> None:
    """``text`` is items of ``items`` joined by ', ', then maybe ``and N more``."""
    listed = re.sub(r" and [\d,]+ more$", "", text)
    assert all(item in items for item in listed.split(", ")), text


def test_a_sample_of_long_ids_drops_whole_ids_and_says_how_many_more():
    con = duckdb.connect()
    ids = [f"CUSTOMER-{'X' * 40}-{i:04d}" for i in range(25)]
    con.execute(
        "CREATE TABLE t AS SELECT DATE '2024-03-01' AS report_month, unnest(?::VARCHAR[]) AS customer_id, NULL AS x",
        [ids],
    )
    check = quality.row_rule("a/t", "never_null", "t", "x IS NULL", "x is never NULL.", quality.WARN)
    (outcome,) = quality.evaluate(DuckDBEngine(con), [check], date(2024, 3, 1), date(2024, 3, 1), ["2024-03-01"])
    assert outcome.violations == 25 and outcome.distinct == 25
    # a month's sample: the first SAMPLE_ITEMS ids, taken in SQL, whole
    assert outcome.by_month["2024-03-01"] == (25, ", ".join(ids[: quality.SAMPLE_ITEMS]) + " and 15 more")
    tagged = {f"{i} (2024-03)" for i in ids}
    for limit in (0, 1, 60, 61, 62, 100, 160, 500, 10_000):
        text = outcome.sample(limit)
        assert_whole_items(text, tagged)
        shown = len(re.sub(r" and [\d,]+ more$", "", text).split(", "))
        assert text.endswith(f" and {25 - shown} more")
        assert shown == 1 or len(text) - len(f" and {25 - shown} more") <= limit
    assert outcome.sample(0) == f"{ids[0]} (2024-03) and 24 more"  # the first id whole, whatever the limit
    assert outcome.sample(10_000).endswith(" and 15 more")  # the ids SQL did not return are counted


def test_sample_text_keeps_items_with_commas_apart_and_never_cuts_one():
    items = ["f.csv:9 expected 5 fields, found 2", "f.csv:12 missing customer_id"]
    assert (
        quality.sample_text(items, 7) == "f.csv:9 expected 5 fields, found 2; f.csv:12 missing customer_id and 5 more"
    )
    assert quality.sample_text(items, 2, limit=40) == "f.csv:9 expected 5 fields, found 2 and 1 more"
    assert quality.sample_text([], 0) is None
    assert quality.quantity(1, "customer-months") == "1 customer-month"
    assert quality.quantity(1_234, "file lines") == "1,234 file lines"


def test_a_check_returning_the_first_three_columns_only_has_a_one_item_sample():
    con = duckdb.connect()
    sql = "SELECT DATE '2024-03-01', 2, 'rows 5 vs 7'"
    check = Check("a/t", "row_count", quality.ERROR, "d", sql, unit="rows")
    (outcome,) = quality.evaluate(DuckDBEngine(con), [check], date(2024, 3, 1), date(2024, 3, 1), ["2024-03-01"])
    assert outcome.by_month == {"2024-03-01": (2, "rows 5 vs 7")} and outcome.distinct is None
    assert outcome.summary() == "a/t check row_count: 2 rows in 2024-03 (e.g. rows 5 vs 7 (2024-03))"
    assert quality._missing_columns(sql) == ", NULL, NULL"  # padded so in the Spark engine's one UNION


def test_a_loader_failure_is_its_whole_message_in_files():
    check = next(c for c in CUSTOMER_CHECKS if c.name == "unique_key")
    message = "customers_master.csv: duplicate customer_id 'C1' (2 rows, lines 2, 3) " + "x" * 300
    outcome = Outcome(check, {None: (1, message)})
    assert outcome.count() == "1 file" and outcome.sample() == message
    assert outcome.summary().endswith(f"unique_key: 1 file (e.g. {message})")


# --- the record of an older warehouse gets the column in place ----------------------------------------------


OLD_CHECK_RESULTS = """
CREATE SCHEMA quality;
CREATE TABLE quality.check_results (
    run_id VARCHAR NOT NULL, asset_key VARCHAR NOT NULL, check_name VARCHAR NOT NULL, partition_key VARCHAR,
    severity VARCHAR NOT NULL, passed BOOLEAN NOT NULL, violations BIGINT NOT NULL, sample VARCHAR,
    checked_at TIMESTAMP NOT NULL
);
INSERT INTO quality.check_results VALUES ('old', 'features/customer_features', 'customers_without_entry_date',
    '2023-01-01', 'WARN', false, 73, 'C000005, C0100', TIMESTAMP '2024-01-01 10:00:00');
"""


@pytest.mark.parametrize("recorded", [None, 2], ids=["before-versions", "version-2"])
def test_an_older_warehouse_gets_the_unit_column_and_keeps_its_rows(tmp_path, recorded):
    path = tmp_path / "old.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute(OLD_CHECK_RESULTS)
        if recorded is not None:  # what the release of schema version 2 left
            con.execute(schema.DDL)
            con.execute("INSERT INTO meta.schema_version (version, description) VALUES (1, 'a'), (2, 'b')")
    with Warehouse(database=str(path)).connect() as con:
        outcome = Outcome(no_entry_check(), {"2024-03-01": (2, "C1, C2")}, distinct=2)
        quality.record(DuckDBEngine(con), "new", [outcome])
    described = query(path, "DESCRIBE quality.check_results")
    assert [(name, kind) for name, kind, *_ in described] == [(c.name, c.type) for c in quality.CHECK_RESULTS.columns]
    assert query(
        path, "SELECT run_id, partition_key, violations, sample, unit FROM quality.check_results ORDER BY run_id"
    ) == [
        ("new", "2024-03-01", 2, "C1, C2", "customer-months"),
        ("old", "2023-01-01", 73, "C000005, C0100", None),  # kept as it was: its unit was not recorded
    ]
    assert query(path, "SELECT max(version) FROM meta.schema_version") == [(schema.SCHEMA_VERSION,)]


# --- the Spark engine runs the same check SQL -----------------------------------------------------------------


def test_every_checks_sql_translates_for_the_spark_engine():
    for check in all_checks():
        if check.sql is None:
            continue
        sql, params = named_placeholders(check.sql, {"start": date(2024, 1, 1), "end": date(2024, 3, 1)})
        (statement,) = sqlglot.parse(sql, read="duckdb")
        spark = to_spark_sql(bind(statement, params))
        assert "string_agg" not in spark.lower() and "[:" not in spark, check.name
