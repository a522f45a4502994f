"""Column contracts: a table's columns declared once, with the type, description and list format of each.

From a ``Table`` come its ``CREATE TABLE``, its column list, the formats,
widths and definitions of an Excel list of it, Dagster's
``dagster/column_schema`` metadata and the table of the docs (kept true by a
test). Adding a column to a contracted table touches the contract, the SQL
that computes it, its tests and its business-rule doc.
"""

from __future__ import annotations

from dataclasses import dataclass

from dagster import TableColumn, TableColumnConstraints, TableSchema

# Excel number formats of list cells
EXCEL_TEXT = "@"
EXCEL_DECIMAL = "#,##0.00"
EXCEL_COUNT = "#,##0"
EXCEL_INTEGER = "0"
EXCEL_DATE = "yyyy-mm-dd"
EXCEL_MONTH_KEY = "yyyy-mm"


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # the DuckDB type
    description: str
    excel_format: str | None = None  # None: Excel's General (booleans read TRUE/FALSE)
    width: float = 12
    not_null: bool = False
    label: str = ""  # what a reader sees as the column's heading (a list for people); blank: the name

    @property
    def heading(self) -> str:
        return self.label or self.name


def col(declaration: str, description: str, excel_format: str | None = None, width: float = 12) -> Column:
    """A column from its SQL declaration, ``"name TYPE [NOT NULL]"``, and its description."""
    name, _, rest = declaration.strip().partition(" ")
    not_null = rest.upper().endswith(" NOT NULL")
    column_type = rest[: -len(" NOT NULL")] if not_null else rest
    return Column(name, column_type.strip(), description, excel_format, width, not_null)


@dataclass(frozen=True)
class Table:
    name: str  # schema.table
    description: str
    columns: tuple[Column, ...]
    grain: str = ""  # what one row is

    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)

    def ddl(self) -> str:
        body = ",\n    ".join(f"{c.name} {c.type}{' NOT NULL' if c.not_null else ''}" for c in self.columns)
        return f"CREATE TABLE IF NOT EXISTS {self.name} (\n    {body}\n);"

    def column_schema(self):
        return TableSchema(
            columns=[
                TableColumn(c.name, c.type, c.description, constraints=TableColumnConstraints(nullable=not c.not_null))
                for c in self.columns
            ]
        )

    def metadata(self) -> dict:
        """Dagster's metadata of the asset writing the table: its name and column schema (the UI's Columns tab)."""
        return {"dagster/table_name": self.name, "dagster/column_schema": self.column_schema()}

    def docs_section(self) -> str:
        """The table's section of docs/warehouse.md."""
        grain = f" One row per {self.grain}." if self.grain else ""
        return f"## `{self.name}`\n\n{self.description}{grain}\n\n{self.markdown()}\n"

    def markdown(self) -> str:
        rows = [f"| `{c.name}` | {c.type}{' NOT NULL' if c.not_null else ''} | {c.description} |" for c in self.columns]
        return "\n".join(["| column | type | description |", "|---|---|---|", *rows])


def schema_ddl(schema: str, tables: tuple[Table, ...]) -> str:
    """``CREATE SCHEMA`` and the ``CREATE TABLE`` of each table of one schema."""
    return "\n".join([f"CREATE SCHEMA IF NOT EXISTS {schema};", *(t.ddl() for t in tables)])
