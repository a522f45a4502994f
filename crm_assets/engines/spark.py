"""The Spark engine: the layers' DuckDB statements run on Apache Spark, over Parquet tables, and its resource."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, ClassVar

import duckdb
import sqlglot
from sqlglot import exp

from crm_assets.core import settings
from crm_assets.core.columns import Table
from crm_assets.core.errors import CrmError
from crm_assets.core.resources import Warehouse, env_field
from crm_assets.engines.base import Engine

# PySpark is imported where it is used, in the methods that run on Spark: the definitions load this module for
# the resource's settings and kind (CRM_ENGINE=spark) without starting or importing Spark.

# Columns by which a table is partitioned, in order of preference: the first one a table has.
MONTH_COLUMNS = ("partition_month", "report_month")
VIEW_PREFIX = "crm__"


def to_spark_sql(expression: exp.Expr) -> str:
    """Spark SQL for a statement parsed in DuckDB's dialect (what SQLGlot's own translation leaves to do)."""

    def aggregate(node: exp.Expr) -> exp.Expr:
        # string_agg(x, sep): Spark 3.5 has no LISTAGG
        if isinstance(node, exp.GroupConcat):
            value = node.this
            ordered = isinstance(value, exp.Order)
            if ordered:  # ordered by the value itself (the samples of the checks): sorted, as DuckDB does
                order = value.expressions
                if (
                    len(order) != 1
                    or order[0].this
                    != (value.this.expressions[0] if isinstance(value.this, exp.Distinct) else value.this)
                    or order[0].args.get("desc")
                ):
                    raise CrmError(f"string_agg ordered by another expression is not translated: {node.sql()}")
                value = value.this
            distinct = isinstance(value, exp.Distinct)
            if distinct:
                value = value.expressions[0]
            collected = exp.Anonymous(this="collect_set" if distinct else "collect_list", expressions=[value])
            if ordered:
                collected = exp.Anonymous(this="array_sort", expressions=[collected])
            separator = node.args.get("separator") or exp.Literal.string(",")
            joined = exp.Anonymous(this="array_join", expressions=[collected, separator])
            return exp.Anonymous(this="nullif", expressions=[joined, exp.Literal.string("")])
        return node

    def rewrite(node: exp.Expr) -> exp.Expr:
        # text[:n] (a DuckDB slice) -> substring(text, 1, n)
        if isinstance(node, exp.Bracket) and len(node.expressions) == 1 and isinstance(node.expressions[0], exp.Slice):
            piece = node.expressions[0]
            if piece.this is None and piece.expression is not None:
                return exp.Substring(this=node.this, start=exp.Literal.number(1), length=piece.expression)
        # CAST(unnest(...) AS DATE): a generator cannot sit inside an expression on Spark, and a sequence of
        # dates is already of dates
        if isinstance(node, exp.Cast) and isinstance(node.this, (exp.Explode, exp.Unnest)):
            return node.this
        # JSON is text in a Parquet table
        if isinstance(node, exp.Cast) and node.to.is_type("json"):
            return node.this
        return node

    return inline_windows(expression.transform(aggregate)).transform(rewrite).sql(dialect="spark")


def inline_windows(expression: exp.Expr) -> exp.Expr:
    """Named windows (``OVER c ... WINDOW c AS (...)``) written out at each use: Spark reads
    ``OVER c - x`` as the identifier ``c-x``."""
    expression = expression.copy()
    for select in list(expression.find_all(exp.Select)):
        named = {w.this.name: w for w in select.args.get("windows") or []}
        if not named:
            continue
        for window in list(select.find_all(exp.Window)):
            alias = window.args.get("alias")
            if alias is None or alias.name not in named or window.args.get("over") is None:
                continue
            spec = named[alias.name]
            window.set("alias", None)
            for part in ("partition_by", "order", "spec"):
                if spec.args.get(part) is not None:
                    value = spec.args[part]
                    window.set(part, [v.copy() for v in value] if isinstance(value, list) else value.copy())
        select.set("windows", None)
    return expression


def literal(value: Any) -> exp.Expr:
    """A bound parameter as a SQL literal (Spark 3.5's own parameters cannot type dates or lists)."""
    if value is None:
        return exp.Null()
    if isinstance(value, bool):
        return exp.Boolean(this=value)
    if isinstance(value, dt.datetime):
        return exp.Cast(this=exp.Literal.string(value.isoformat(sep=" ")), to=exp.DataType.build("TIMESTAMP"))
    if isinstance(value, dt.date):
        return exp.Cast(this=exp.Literal.string(value.isoformat()), to=exp.DataType.build("DATE"))
    if isinstance(value, (int, float, Decimal)):
        return exp.Literal.number(value)
    if isinstance(value, (list, tuple)):
        return exp.Array(expressions=[literal(v) for v in value])
    return exp.Literal.string(str(value))


def named_placeholders(sql: str, params) -> tuple[str, Any]:
    """``?`` placeholders renamed ``$p1``, ``$p2``, ... with their values by name (SQLGlot cannot parse
    ``?::DATE``; ``$name::DATE`` it can). Quoted text is left as it is."""
    if not isinstance(params, (list, tuple)) or "?" not in sql:
        return sql, params
    out: list[str] = []
    values: dict[str, Any] = {}
    i = 0
    while i < len(sql):
        char = sql[i]
        ends = {"'": "'", '"': '"', "/*": "*/", "--": "\n"}
        opening = sql[i : i + 2] if sql[i : i + 2] in ends else char if char in ends else None
        if opening:  # a quoted name or text, or a comment: copied as it is
            close = sql.find(ends[opening], i + len(opening))
            close = len(sql) if close < 0 else close + len(ends[opening])
            out.append(sql[i:close])
            i = close
            continue
        if char == "?":
            name = f"p{len(values) + 1}"
            values[name] = params[len(values)]
            char = f"${name}"
        out.append(char)
        i += 1
    return "".join(out), values


def bind(statement: exp.Expr, params) -> exp.Expr:
    """``statement`` with its ``?`` (in order) and ``$name`` placeholders replaced by literals."""
    if not params:
        return statement
    positional = iter(params) if isinstance(params, (list, tuple)) else iter(())
    named = params if isinstance(params, dict) else {}

    def replace(node: exp.Expr) -> exp.Expr:
        if isinstance(node, exp.Placeholder):
            name = node.this
            if name and not str(name).isdigit():
                return literal(named[name])
            if name:  # $1: positional by number
                return literal(list(params)[int(name) - 1])
            return literal(next(positional))
        if isinstance(node, exp.Parameter):
            return literal(named[node.name])
        return node

    return statement.transform(replace)


class Result:
    """What ``execute`` returns: the rows of a query, read like a DuckDB result."""

    def __init__(self, rows: Sequence[tuple] = (), names: Sequence[str] = ()):
        self._rows = list(rows)
        self.description = [(name, None, None, None, None, None, None) for name in names]

    def fetchall(self) -> list[tuple]:
        return list(self._rows)

    def fetchone(self) -> tuple | None:
        return self._rows[0] if self._rows else None


@dataclass(frozen=True)
class Deletion:
    """What a DELETE's condition reads, and the condition in DuckDB's words."""

    columns: frozenset
    duckdb_condition: str


@dataclass
class Pending:
    """One table's changes inside a transaction: in order, deletions (a condition) and staged insertions."""

    # (kind, the condition of a delete or the folder of an insert, the Deletion of a delete)
    operations: list[tuple[str, str, Deletion | None]] = field(default_factory=list)


class SparkEngine:
    """Parquet tables under ``root``, read and written by a SparkSession with DuckDB's statements.

    It stands where a DuckDB connection stands: ``execute(sql, params)`` takes the statement the layer wrote
    once, in DuckDB's dialect, and SQLGlot translates it to Spark SQL. Only what Parquet files cannot do the
    way a database does is written here:

    - each table ``schema.table`` is a Parquet dataset ``<root>/<schema>/<table>/``, partitioned by its month
      column (``partition_month`` or ``report_month``) when it has one;
    - ``DELETE`` and ``INSERT`` inside ``BEGIN`` .. ``COMMIT`` are staged: the inserted rows are written to
      ``<root>/_staging/``, and every statement of the transaction (the blocking checks among them) reads the
      table as it will be (the committed rows less the deleted ones, plus the staged ones);
    - ``COMMIT`` writes the months it touched with dynamic partition overwrite (a month left without rows loses
      its folder); ``ROLLBACK`` drops the staging folder, and the tables are as they were.

    The rules, the checks and the statements of each layer stay where they are (``layers/``); this module
    knows none of them.
    """

    name = "spark"
    kind = "spark"
    # Spark spills on its own: each window is one statement (no parts of months, no buckets of customers),
    # and a customer's number for the window passes is its id (an unordered row_number() is not stable
    # between the reads of a CTE on Spark)
    rows_per_part: int | None = None
    grid_rows_per_bucket: int | None = None
    customer_number = "c.customer_id"
    # a Spark job costs a fixed part of a second: the checks of a write are evaluated as one query
    checks_in_one_query = True

    def __init__(self, spark, root: str | Path):
        self.spark = spark
        self.root = str(root).rstrip("/")
        self._schemas: dict[str, str] = {}  # schema.table -> Spark DDL of its columns
        self._pending: dict[str, Pending] | None = None
        self._staging: str | None = None
        self._temp: set[str] = set()
        self._fs = FileSystem(spark)
        # committed tables as DataFrames, kept until a commit rewrites them: Spark lists a table's files once
        self._committed: dict[str, Any] = {}

    # --- where tables live -------------------------------------------------------------------------

    def path(self, table: str) -> str:
        schema, name = table.split(".")
        return f"{self.root}/{schema}/{name}"

    def month_column(self, table: str) -> str | None:
        names = [part.split(" ")[0] for part in self._columns(table)]
        return next((c for c in MONTH_COLUMNS if c in names), None)

    def _columns(self, table: str) -> list[str]:
        ddl = self._schemas.get(table)
        if ddl is None:
            if not self._fs.has_data(self.path(table)):
                raise CrmError(f"{table}: no such table in the Spark warehouse {self.root}")
            fields = self.spark.read.parquet(self.path(table)).schema.fields
            ddl = ", ".join(f"`{f.name}` {f.dataType.simpleString()}" for f in fields)
            self._schemas[table] = ddl
        return [part.strip().replace("`", "") for part in _split_columns(ddl)]

    def committed(self, table: str):
        """The committed rows of ``table`` as a DataFrame (none yet: an empty one of its columns)."""
        if table not in self._committed:
            self._columns(table)
            schema = self._schemas[table]
            path = self.path(table)
            if self._fs.has_data(path):
                self._committed[table] = self.spark.read.schema(schema).parquet(path)
            else:
                self._committed[table] = self.spark.createDataFrame([], schema)
        return self._committed[table]

    def current(self, table: str):
        """``table`` as this transaction sees it: committed rows, less deletions, plus staged insertions."""
        from pyspark.sql import functions as F  # noqa: PLC0415  (PySpark is optional: the spark extra)

        frame = self.committed(table)
        for kind, value, _ in (self._pending or {}).get(table, Pending()).operations:
            if kind == "delete":
                frame = frame.filter(~F.coalesce(F.expr(value), F.lit(False)))
            else:
                frame = frame.unionByName(self.spark.read.schema(self._schemas[table]).parquet(value))
        return frame

    # --- statements --------------------------------------------------------------------------------

    def execute(self, sql: str, params=None) -> Result:
        result = Result()
        sql, params = named_placeholders(sql, params)
        for statement in sqlglot.parse(sql, read="duckdb"):
            if statement is not None:
                result = self._run(bind(statement, params))
        return result

    def sql(self, sql: str, params=None):
        """A query's rows as a Spark DataFrame (for writers that stream them, e.g. to Parquet)."""
        sql, params = named_placeholders(sql, params)
        return self._frame(bind(sqlglot.parse_one(sql, read="duckdb"), params))

    def _run(self, statement: exp.Expr) -> Result:
        if isinstance(statement, exp.Transaction):
            self.begin()
        elif isinstance(statement, exp.Commit):
            self.commit()
        elif isinstance(statement, exp.Rollback):
            self.rollback()
        elif isinstance(statement, exp.Create):
            self._create(statement)
        elif isinstance(statement, exp.Drop):
            self._drop(statement)
        elif isinstance(statement, exp.Delete):
            self._autocommit(self._delete, statement)
        elif isinstance(statement, exp.Insert):
            self._autocommit(self._insert, statement)
        elif isinstance(statement, (exp.Command, exp.Set, exp.Pragma)):
            pass  # SET / PRAGMA: DuckDB's session settings
        else:
            frame = self._frame(statement)
            return Result([tuple(row) for row in frame.collect()], frame.columns)
        return Result()

    def _frame(self, statement: exp.Expr):
        """The DataFrame of a query, its tables read as the transaction sees them."""
        statement = statement.copy()
        for table in list(statement.find_all(exp.Table)):
            if table.args.get("db") is None:
                continue
            name = f"{table.db}.{table.name}"
            view = VIEW_PREFIX + name.replace(".", "__")
            self.current(name).createOrReplaceTempView(view)
            table.set("db", None)
            table.set("this", exp.to_identifier(view))
            if table.alias == "":
                table.set("alias", exp.TableAlias(this=exp.to_identifier(name.split(".")[1])))
        return self.spark.sql(to_spark_sql(statement))

    def _create(self, statement: exp.Create) -> None:
        self._define(statement)
        target = statement.this
        if statement.args.get("kind", "").upper() == "TABLE" and isinstance(target, exp.Schema):
            # the table exists from here on for readers too, with its columns and no rows
            self._write_schema_file(f"{target.this.db}.{target.this.name}")
            if self._pending is None:
                self._clear_staging()

    def _define(self, statement: exp.Create) -> None:
        kind = statement.args.get("kind", "").upper()
        if kind != "TABLE":
            return  # CREATE SCHEMA: a folder made by the first write
        target = statement.this
        if isinstance(statement.expression, exp.Query):  # CREATE TEMP TABLE x AS SELECT ...
            name = target.name
            frame = self._frame(statement.expression)
            path = f"{self._staging_root()}/temp/{name}"
            frame.write.mode("overwrite").parquet(path)
            self.spark.read.parquet(path).createOrReplaceTempView(name)
            self._temp.add(name)
            return
        table = f"{target.this.db}.{target.this.name}"
        columns = []
        for column in target.expressions:
            if isinstance(column, exp.ColumnDef):
                kind = column.args["kind"]
                spark_type = "STRING" if kind.is_type("json") else kind.sql(dialect="spark")
                columns.append(f"`{column.name}` {spark_type}")
        self._schemas[table] = ", ".join(columns)

    def _drop(self, statement: exp.Drop) -> None:
        for target in statement.args.get("tables") or [statement.this]:
            if target.args.get("db") is None:
                self.spark.catalog.dropTempView(target.name)
                self._temp.discard(target.name)
            else:
                self._fs.delete(self.path(f"{target.db}.{target.name}"))

    # --- transactions ------------------------------------------------------------------------------

    def _staging_root(self) -> str:
        if self._staging is None:
            self._staging = f"{self.root}/_staging/{uuid.uuid4().hex}"
        return self._staging

    def begin(self) -> None:
        if self._pending is not None:
            raise CrmError("a transaction is already open on the Spark warehouse")
        self._pending = {}

    def _changes(self, table: str) -> list[tuple[str, str, Deletion | None]]:
        """The operations on ``table`` of the open transaction."""
        if self._pending is None:
            raise CrmError("no transaction is open on the Spark warehouse")
        return self._pending.setdefault(table, Pending()).operations

    def _autocommit(self, operation, statement) -> None:
        if self._pending is not None:
            operation(statement)
            return
        self.begin()
        try:
            operation(statement)
            self.commit()
        except BaseException:
            self.rollback()
            raise

    def _delete(self, statement: exp.Delete) -> None:
        target = statement.this
        table = f"{target.db}.{target.name}"
        self._columns(table)
        where = statement.args.get("where")
        condition = to_spark_sql(where.this) if where is not None else "true"
        columns = frozenset(c.name for c in where.this.find_all(exp.Column)) if where is not None else frozenset()
        # kept in DuckDB's words too: which months a deletion of whole months selects is decided without a job
        months_condition = where.this.sql(dialect="duckdb") if where is not None else "true"
        self._changes(table).append(("delete", condition, Deletion(columns, months_condition)))

    def _insert(self, statement: exp.Insert) -> None:
        target = statement.this
        listed = None
        if isinstance(target, exp.Schema):
            listed = [c.name for c in target.expressions]
            target = target.this
        table = f"{target.db}.{target.name}"
        columns = [c.split(" ")[0] for c in self._columns(table)]
        frame = self._frame(statement.expression)
        if statement.args.get("by_name"):
            given = set(frame.columns)
        else:
            names = listed or columns[: len(frame.columns)]
            frame = frame.toDF(*names)
            given = set(names)
        types = dict(_column_types(self._schemas[table]))
        from pyspark.sql import functions as F  # noqa: PLC0415  (PySpark is optional: the spark extra)

        frame = frame.select(
            *[(F.col(f"`{c}`") if c in given else F.lit(None)).cast(types[c]).alias(c) for c in columns]
        )
        self._stage(table, frame)

    def _stage(self, table: str, frame) -> None:
        """Write inserted rows to the staging folder (by month, as the table is) and note them."""
        path = f"{self._staging_root()}/insert/{table}/{uuid.uuid4().hex}"
        month = self.month_column(table)
        (frame.write.partitionBy(month) if month else frame.write).parquet(path)
        self._changes(table).append(("insert", path, None))

    def insert_rows(self, table: str, columns: Sequence[str], rows: Sequence[tuple]) -> None:
        """A DataFrame of the rows (small bookkeeping tables), in the table's column order, staged."""
        if not rows:
            return
        from pyspark.sql import functions as F  # noqa: PLC0415  (PySpark is optional: the spark extra)

        names = [c.split(" ")[0] for c in self._columns(table)]
        types = dict(_column_types(self._schemas[table]))
        frame = self.spark.createDataFrame(list(rows), ", ".join(f"`{c}` {types[c]}" for c in columns))
        frame = frame.select(
            *[(F.col(f"`{c}`") if c in columns else F.lit(None)).cast(types[c]).alias(c) for c in names]
        )
        self._autocommit(lambda _: self._stage(table, frame), None)

    def take_raw(self, landing: duckdb.DuckDBPyConnection, tables: Sequence[Table]) -> None:
        """A Parquet copy of each of the raw ``tables`` the DuckDB ``landing`` loaded."""
        copy_tables(landing, self.root, tables)

    def commit(self) -> None:
        pending, self._pending = self._pending or {}, None
        try:
            for table, changes in pending.items():
                self._publish(table, changes)
        finally:
            self._clear_staging()

    def rollback(self) -> None:
        self._pending = None
        self._clear_staging()

    def _clear_staging(self) -> None:
        for name in self._temp:
            self.spark.catalog.dropTempView(name)
        self._temp.clear()
        if self._staging is not None:
            self._fs.delete(self._staging)
            self._staging = None

    def _publish(self, table: str, changes: Pending) -> None:
        """Write the months ``changes`` touched (or the whole table, when it has no month column)."""

        try:
            self._write(table, changes)
        finally:
            self._committed.pop(table, None)

    def _write(self, table: str, changes: Pending) -> None:
        from pyspark.sql import functions as F  # noqa: PLC0415  (PySpark is optional: the spark extra)

        self._pending = {table: changes}
        try:
            month = self.month_column(table)
            target = self.path(table)
            schema = self._schemas[table]
            self._write_schema_file(table)
            operations = changes.operations
            inserts = [value for kind, value, _ in operations if kind == "insert"]
            if (
                month is not None
                and dict(_column_types(schema))[month].upper() == "DATE"
                and all(deletion is None or deletion.columns <= {month} for _, _, deletion in operations)
            ):
                # every deletion is of whole months (the layers' replace of a window): month folders are
                # replaced, appended to or removed, and no committed row is read
                self._write_months(table, month, operations)
                return
            if month is None and all(kind == "insert" for kind, _, _ in operations):
                self._union(schema, inserts).write.mode("append").parquet(target)
                return
            if month is None and operations[0][1] == "true" and all(k == "insert" for k, _, _ in operations[1:]):
                self._union(schema, inserts).write.mode("overwrite").parquet(target)  # a whole table replaced
                return
            final = self.current(table)
            out = f"{self._staging_root()}/publish/{table}"
            if month is None:
                final.write.mode("overwrite").parquet(out)
                self.spark.read.schema(self._schemas[table]).parquet(out).write.mode("overwrite").parquet(target)
                return
            touched = set()
            committed = self.committed(table)
            for kind, value, _ in operations:
                source = committed.filter(F.expr(value)) if kind == "delete" else self.spark.read.parquet(value)
                touched |= {row[0] for row in source.select(month).distinct().collect()}
            if not touched:
                return
            final = final.filter(F.col(month).isin(sorted(touched)))
            final.write.mode("overwrite").partitionBy(month).parquet(out)
            written = self.spark.read.schema(self._schemas[table]).parquet(out) if self._fs.has_data(out) else None
            kept = {row[0] for row in written.select(month).distinct().collect()} if written is not None else set()
            if written is not None and kept:
                (
                    written.write.mode("overwrite")
                    .option("partitionOverwriteMode", "dynamic")
                    .partitionBy(month)
                    .parquet(target)
                )
            for emptied in touched - kept:
                self._fs.delete(f"{target}/{month}={emptied.isoformat()}")
        finally:
            self._pending = None

    def _union(self, schema: str, paths: list[str], months: dict[str, set] | None = None, month: str = ""):
        """The staged rows of ``paths`` (of the given ``months`` of each, when given) as one DataFrame."""
        from pyspark.sql import functions as F  # noqa: PLC0415  (PySpark is optional: the spark extra)

        frame = self.spark.createDataFrame([], schema)
        for path in paths:
            staged = self.spark.read.schema(schema).parquet(path)
            if months is not None:
                staged = staged.filter(F.col(month).isin(sorted(months.get(path, ()))))
            frame = frame.unionByName(staged)
        return frame

    def _months_in(self, path: str, month: str) -> set[dt.date]:
        """The months of the partition folders ``<month>=YYYY-MM-DD`` under ``path``."""
        if not self._fs.exists(path):
            return set()
        prefix = f"{month}="
        return {dt.date.fromisoformat(n[len(prefix) :]) for n in self._fs.list(path) if n.startswith(prefix)}

    def _write_months(self, table: str, month: str, operations: list) -> None:
        """Publish changes made of whole-month deletions and insertions, month folder by month folder."""
        target, schema = self.path(table), self._schemas[table]
        committed = {m: True for m in self._months_in(target, month)}  # month -> its committed rows still stand
        staged: dict[dt.date, list[str]] = {}
        for kind, value, deletion in operations:
            if kind == "delete":
                candidates = {m for m, kept in committed.items() if kept} | set(staged)
                for m in _matching(deletion.duckdb_condition, month, candidates):
                    committed[m] = False
                    staged.pop(m, None)
            else:
                for m in self._months_in(value, month):
                    staged.setdefault(m, []).append(value)

        def rows(months: set[dt.date]):
            by_path: dict[str, set] = {}
            for m in months:
                for path in staged[m]:
                    by_path.setdefault(path, set()).add(m)
            return self._union(schema, list(by_path), by_path, month)

        replaced = {m for m in staged if not committed.get(m, False)}
        appended = {m for m in staged if committed.get(m, False)}
        if replaced:
            rows(replaced).write.mode("overwrite").option("partitionOverwriteMode", "dynamic").partitionBy(
                month
            ).parquet(target)
        if appended:
            rows(appended).write.mode("append").partitionBy(month).parquet(target)
        for m, kept in committed.items():
            if not kept and m not in staged:
                self._fs.delete(f"{target}/{month}={m.isoformat()}")

    def _write_schema_file(self, table: str) -> None:
        """``_schema.parquet`` beside the table's data, once: readers get its columns when it has no rows."""
        target = f"{self.path(table)}/{SCHEMA_FILE}"
        if self._fs.exists(target):
            return
        out = f"{self._staging_root()}/schema/{table}"
        self.spark.createDataFrame([], self._schemas[table]).coalesce(1).write.mode("overwrite").parquet(out)
        part = next(name for name in self._fs.list(out) if name.endswith(".parquet"))
        self._fs.move(f"{out}/{part}", target)

    def close(self) -> None:
        if self._pending is not None:
            self.rollback()


def _matching(condition: str, month: str, months: set[dt.date]) -> set[dt.date]:
    """Those of ``months`` a deletion's condition on the month column alone selects (DuckDB in memory: a
    condition of a few dates needs no Spark job)."""
    if condition == "true" or not months:
        return set(months)
    with duckdb.connect() as con:
        rows = con.execute(
            f"SELECT {month} FROM (SELECT unnest(?::DATE[]) AS {month}) WHERE coalesce(({condition}), false)",
            [sorted(months)],
        ).fetchall()
    return {row[0] for row in rows}


def _split_columns(ddl: str) -> list[str]:
    """``a INT, b DECIMAL(38, 6)`` -> ``['a INT', 'b DECIMAL(38, 6)']`` (commas inside parentheses kept)."""
    parts, depth, current = [], 0, ""
    for char in ddl:
        if char == "," and depth == 0:
            parts.append(current.strip())
            current = ""
            continue
        depth += char == "("
        depth -= char == ")"
        current += char
    if current.strip():
        parts.append(current.strip())
    return parts


def _column_types(ddl: str) -> list[tuple[str, str]]:
    return [(name, kind) for name, kind in (part.replace("`", "").split(" ", 1) for part in _split_columns(ddl))]


class FileSystem:
    """Folders of the warehouse: Hadoop's FileSystem where the session has one (any cluster storage), else
    the local file system (a Spark Connect client writing to a local path)."""

    def __init__(self, spark):
        self._jvm: Any = getattr(spark, "_jvm", None)
        self._conf = spark._jsc.hadoopConfiguration() if getattr(spark, "_jsc", None) is not None else None

    def _hadoop(self, path: str):
        hadoop_path = self._jvm.org.apache.hadoop.fs.Path(path)
        return hadoop_path.getFileSystem(self._conf), hadoop_path

    def has_data(self, path: str) -> bool:
        """True when ``path`` holds a Parquet file (a table never written, or emptied, has none)."""
        if self._jvm is not None:
            fs, hadoop_path = self._hadoop(path)
            if not fs.exists(hadoop_path):
                return False
            files = fs.listFiles(hadoop_path, True)
            while files.hasNext():
                name = files.next().getPath().getName()
                if name.endswith(".parquet") and not name.startswith(("_", ".")):
                    return True
            return False
        found = Path(path).rglob("*.parquet") if os.path.isdir(path) else ()
        return any(not f.name.startswith(("_", ".")) for f in found)

    def exists(self, path: str) -> bool:
        if self._jvm is not None:
            fs, hadoop_path = self._hadoop(path)
            return bool(fs.exists(hadoop_path))
        return os.path.exists(path)

    def list(self, path: str) -> list[str]:
        """The names in the folder ``path``."""
        if self._jvm is not None:
            fs, hadoop_path = self._hadoop(path)
            return [status.getPath().getName() for status in fs.listStatus(hadoop_path)]
        return sorted(os.listdir(path))

    def move(self, source: str, target: str) -> None:
        if self._jvm is not None:
            fs, hadoop_source = self._hadoop(source)
            hadoop_target = self._jvm.org.apache.hadoop.fs.Path(target)
            fs.mkdirs(hadoop_target.getParent())
            if not fs.rename(hadoop_source, hadoop_target):
                raise CrmError(f"{target}: cannot move {source} there")
        else:
            os.makedirs(os.path.dirname(target), exist_ok=True)
            os.replace(source, target)

    def delete(self, path: str) -> None:
        if self._jvm is not None:
            fs, hadoop_path = self._hadoop(path)
            fs.delete(hadoop_path, True)
        else:
            shutil.rmtree(path, ignore_errors=True)


# --- the session ---------------------------------------------------------------------------------------

_SESSIONS: dict[tuple, Any] = {}


def session(master: str = "", remote: str = "", driver_memory: str = "2g"):
    """The process's SparkSession: Spark Connect when ``remote`` (sc://host:15002) is given, else a master
    URL (``local[*]`` by default: Spark inside this process, on every core)."""
    key = (master, remote, driver_memory)
    if key in _SESSIONS:
        return _SESSIONS[key]
    try:
        from pyspark.sql import SparkSession  # noqa: PLC0415  (PySpark is optional: the spark extra)
    except ImportError:
        raise CrmError("CRM_ENGINE=spark needs PySpark: pip install 'crm_assets[spark]' (and a Java 17 runtime)")
    builder = SparkSession.builder.appName("crm_assets")
    builder = builder.remote(remote) if remote else builder.master(master or "local[*]")
    options = {
        # a month re-run replaces the months it writes, no others
        "spark.sql.sources.partitionOverwriteMode": "dynamic",
        "spark.sql.session.timeZone": "UTC",
        # timestamps every Parquet reader reads (not Spark's legacy INT96)
        "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
        "spark.ui.showConsoleProgress": "false",
    }
    if not remote:
        options |= {"spark.driver.memory": driver_memory, "spark.ui.enabled": "false"}
        if (master or "local[*]").startswith("local"):
            # a few partitions per core: Spark's 200 shuffle partitions cost more than they save on one machine
            options["spark.sql.shuffle.partitions"] = str(max(4, 2 * (os.cpu_count() or 2)))
    for name, value in options.items():
        builder = builder.config(name, value)
    try:
        spark = builder.getOrCreate()
    except Exception as exc:  # no Java, a cluster that does not answer
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise CrmError(f"CRM_ENGINE=spark: cannot start Spark ({first})") from None
    if getattr(spark, "sparkContext", None) is not None and not remote:
        spark.sparkContext.setLogLevel("ERROR")
    _SESSIONS[key] = spark
    return spark


# --- the raw layer's tables, read by DuckDB, handed to Spark -----------------------------------------------


def copy_from_duckdb(con, root: str | Path, table: str, columns: Sequence[str]) -> None:
    """Replace ``<root>/<schema>/<table>/`` with the rows of the DuckDB ``table`` (partitioned by its month
    column when it has one). The CSV files are read once, by the raw layer's reader; Spark takes it from here.

    Written beside the old copy and swapped in, so a reader sees the old rows or the new ones."""
    target = Path(f"{root}/{table.replace('.', '/')}")
    fresh = target.with_name(f".{target.name}.{uuid.uuid4().hex}")
    month = next((c for c in MONTH_COLUMNS if c in columns), None)
    rows = con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    fresh.mkdir(parents=True)
    if month and rows:
        con.execute(f"COPY (SELECT * FROM {table}) TO '{fresh}' (FORMAT PARQUET, PARTITION_BY ({month}), OVERWRITE)")
    else:  # no month column, or no rows yet: one file, with the columns
        con.execute(f"COPY (SELECT * FROM {table}) TO '{fresh / 'data.parquet'}' (FORMAT PARQUET)")
    con.execute(f"COPY (SELECT * FROM {table} LIMIT 0) TO '{fresh / SCHEMA_FILE}' (FORMAT PARQUET)")
    old = target.with_name(f".{target.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    if target.exists():
        target.rename(old)
    fresh.rename(target)
    shutil.rmtree(old, ignore_errors=True)


def copy_tables(con: duckdb.DuckDBPyConnection, root: str | Path, tables: Sequence[Table]) -> None:
    """``copy_from_duckdb`` for each of ``tables`` (column contracts)."""
    for table in tables:
        copy_from_duckdb(con, root, table.name, table.names())


# --- readers ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ParquetTable:
    """A table's Parquet files as a reader finds them."""

    files: list[str]
    partitioned: bool  # its month is in its folder names
    schema_file: str | None  # a file of no rows with its columns (a table whose months are all empty)


def parquet_tables(root: str | Path) -> dict[str, ParquetTable]:
    """``schema.table`` -> its files, for every table of the Spark warehouse."""
    found: dict[str, ParquetTable] = {}
    base = Path(root)
    if not base.is_dir():
        return found
    for schema_dir in sorted(p for p in base.iterdir() if p.is_dir() and not p.name.startswith(("_", "."))):
        for table_dir in sorted(p for p in schema_dir.iterdir() if p.is_dir() and not p.name.startswith((".", "_"))):
            months = [p for p in table_dir.iterdir() if p.is_dir() and "=" in p.name]
            files = [str(f) for m in months for f in sorted(m.glob("*.parquet")) if not f.name.startswith(("_", "."))]
            if not months:
                files = [str(f) for f in sorted(table_dir.glob("*.parquet")) if not f.name.startswith(("_", "."))]
            schema_file = table_dir / SCHEMA_FILE
            if files or schema_file.exists():
                found[f"{schema_dir.name}.{table_dir.name}"] = ParquetTable(
                    files, bool(months), str(schema_file) if schema_file.exists() else None
                )
    return found


# Beside a Spark table's data: a Parquet file of its columns and no rows (Spark skips names starting with _)
SCHEMA_FILE = "_schema.parquet"


def reader_connection(root: str | Path, landing: str | Path, config: dict | None = None):
    """An in-memory DuckDB connection that reads the Spark warehouse's tables as they are (a view over the
    Parquet folders of each) and the landing file's others (read-only): what every output reads."""
    con = duckdb.connect(config=config or {})
    con.execute(f"ATTACH '{landing}' AS landing (READ_ONLY)")
    landed = {
        f"{s}.{t}"
        for s, t in con.execute(
            "SELECT table_schema, table_name FROM information_schema.tables WHERE table_catalog = 'landing'"
        ).fetchall()
    }
    parquet = parquet_tables(root)
    for name in sorted(landed | set(parquet)):
        schema_name = name.split(".")[0]
        con.execute(f"CREATE SCHEMA IF NOT EXISTS memory.{schema_name}")
        sources = []
        table = parquet.get(name)
        if table is not None and table.files:
            listed = ", ".join(f"'{f}'" for f in table.files)
            # a partitioned table's month comes from its folder names
            sources.append(
                f"SELECT * FROM read_parquet([{listed}], hive_partitioning = {str(table.partitioned).lower()}, "
                "union_by_name = true)"
            )
        if table is not None and table.schema_file:
            sources.append(f"SELECT * FROM read_parquet('{table.schema_file}')")
        if name in landed and (name not in parquet or name in APPENDED_IN_BOTH):
            sources.append(f"SELECT * FROM landing.{name}")
        union = " UNION ALL BY NAME ".join(sources)
        if table is not None and table.schema_file:
            # the table's own column order (a partitioned folder's month column would come last)
            names = con.execute(f"DESCRIBE SELECT * FROM read_parquet('{table.schema_file}')").fetchall()
            union = f"SELECT {', '.join(chr(34) + n[0] + chr(34) for n in names)} FROM ({union})"
        con.execute(f"CREATE VIEW memory.{name} AS {union}")
    con.execute("USE memory")
    return con


# Tables both the landing file (the raw layer's runs) and Spark (the later layers' runs) append to.
APPENDED_IN_BOTH = {"quality.check_results"}


# --- the resource ----------------------------------------------------------------------------------------


class SparkWarehouse(Warehouse):
    """The warehouse on Spark (CRM_ENGINE=spark): the layers after raw compute on Spark, their tables Parquet
    folders under ``spark_warehouse``; the DuckDB file keeps the raw layer's landing and the load records.

    A read-only connection (every output, ``crm sql``, the staleness of the sensor and the schedule) reads the
    Parquet tables and the landing file's others (``reader_connection``)."""

    kind: ClassVar[str] = SparkEngine.kind

    spark_warehouse: str = env_field(
        settings.ENV_SPARK_WAREHOUSE,
        lambda: str(settings.spark_warehouse_path()),
        "the Spark engine's tables, <schema>/<table>/<month column>=YYYY-MM-01/ (CRM_SPARK_WAREHOUSE, "
        "default data/spark-warehouse)",
    )
    spark_remote: str = env_field(
        "CRM_SPARK_REMOTE", "", "a Spark Connect server, sc://host:15002 (CRM_SPARK_REMOTE); blank: spark_master"
    )
    spark_master: str = env_field(
        "CRM_SPARK_MASTER", "", "a Spark master URL (CRM_SPARK_MASTER), e.g. spark://host:7077; blank: local[*]"
    )
    spark_driver_memory: str = env_field(
        "CRM_SPARK_DRIVER_MEMORY", "2g", "the driver's heap of a local Spark (CRM_SPARK_DRIVER_MEMORY, default 2g)"
    )

    @contextmanager
    def engine(self) -> Iterator[Engine]:
        engine = SparkEngine(
            session(self.spark_master, self.spark_remote, self.spark_driver_memory), self.spark_warehouse
        )
        try:
            yield engine
        finally:
            engine.close()

    def publish_raw(self, con: duckdb.DuckDBPyConnection, tables: Sequence[Table]) -> None:
        """The engine's ``take_raw`` without starting Spark: DuckDB writes the Parquet copy."""
        copy_tables(con, self.spark_warehouse, tables)

    def reader_files(self) -> list[str]:
        files = []
        for table in parquet_tables(self.spark_warehouse).values():
            files.extend(table.files)
            if table.schema_file:
                files.append(table.schema_file)
        return files

    @contextmanager
    def connect(self, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        if not read_only:
            with super().connect() as con:
                yield con
            return
        self.require_file()
        con = reader_connection(self.spark_warehouse, self.file, self._config(True))
        try:
            con.execute("SET enable_progress_bar = false")
            yield con
        finally:
            con.close()
