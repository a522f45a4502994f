"""The rules exist once: the Spark engine translates the layers' statements and knows no rule of its own.

(test_spark_sample.py checks the other side: every statement a Spark run executes is one the DuckDB run
executes too.)"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from crm_assets.core import rules
from crm_assets.core.rules import CrmRules
from crm_assets.engines import spark
from crm_assets.layers.tables import LAYER_TABLES

PACKAGE = Path(spark.__file__).resolve().parents[1]
# what the engine may name: the month columns it partitions by, and the id a customer is numbered by in the
# window passes (SparkEngine.customer_number, a parameter of the layers' statements)
ENGINE_COLUMNS = {*spark.MONTH_COLUMNS, "customer_id"}


def words(text: str) -> set[str]:
    return set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", text))


def test_the_spark_module_names_no_contract_column_nor_rule():
    source = Path(spark.__file__).read_text()
    tree = ast.parse(source)
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef)) and ast.get_docstring(node) is not None
    }
    # the text of the code: its string constants (SQL it would hold), not its docstrings
    code_strings = " ".join(
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings
    )
    columns = {c for t in LAYER_TABLES for c in t.names()} - ENGINE_COLUMNS
    named = sorted(words(code_strings) & columns)
    assert not named, f"spark.py names the contract columns {named}"
    keywords = {*rules.TIERS, *rules.STAGES, *rules.EVENTS, *rules.STATUSES, *CrmRules.model_fields}
    keywords |= {w for value in keywords for w in value.split()} - {"Not", "At"}
    found = sorted(k for k in keywords if re.search(rf"\b{re.escape(k)}\b", source))
    assert not found, f"spark.py names the rule words {found}"


def test_no_sql_or_module_of_the_package_is_specific_to_spark():
    spark_module = Path(spark.__file__).resolve()
    for path in PACKAGE.rglob("*"):
        if path.suffix not in (".sql", ".py") or path.resolve() == spark_module:
            continue
        assert "spark" not in path.name.lower(), path
        if path.suffix == ".sql":
            text = path.read_text().lower()
            assert "spark" not in text, f"{path}: SQL for Spark"


def test_no_layer_branches_its_sql_on_the_engine():
    """A layer may ask the engine for its parameters (rows_per_part, customer_number), never hold a statement
    for one engine: no ``engine == "spark"`` (or ``isinstance(..., SparkEngine)``) in the layers."""
    for path in sorted((PACKAGE / "layers").rglob("*.py")) + [PACKAGE / "core" / "partitioned.py"]:
        text = path.read_text()
        assert not re.search(r"""engine\s*[!=]=\s*["']spark|isinstance\([^)]*SparkEngine""", text), path
