"""Reading the landing CSV files into DuckDB staging tables, line by line traceable.

Every file is read by DuckDB's CSV reader in one set-based scan, one physical
line per row, so each row keeps its line number (the header is line 1). The
fields are then split in SQL (``string_split`` for the common unquoted line, a
regular expression for quoted ones) and every value is validated in SQL. The
result of :func:`stage_file` is two temporary tables: the valid rows with
typed values, and the rejected rows with their raw text and reason. For every
file, rows read = valid rows + rejected rows; fully blank lines are not rows
and are only counted.

A quoted field that spans several lines is not supported: each of its lines is
rejected with the reason ``malformed quoting`` (nothing is lost).
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from crm_assets.errors import InputFileError

TEXT = "text"
DATE = "date"
NUMBER = "number"

# A byte sequence that never occurs in a text file, used as the "delimiter"
# of the line reader so that each physical line is one value.
_LINE_DELIM = "\x1f\x1e\x1d"
_FIELD = r'("(?:[^"]|"")*"|[^,"]*)'
_LINE_GRAMMAR = f"{_FIELD}(?:,{_FIELD})*"
_MAX_LINE_BYTES = 1 << 20


@dataclass(frozen=True)
class Column:
    name: str
    kind: str = TEXT
    required_column: bool = False
    required_value: bool = False
    aliases: tuple[str, ...] = ()
    # For master files: a bad value is kept as NULL (the text is kept in
    # ``<name>_text``) instead of rejecting the row.
    lenient: bool = False


@dataclass(frozen=True)
class FileSpec:
    kind: str
    columns: tuple[Column, ...]

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)


TRANSACTIONS = FileSpec(
    "sales_transactions",
    (
        Column("invoice_id", TEXT, True, True),
        Column("customer_id", TEXT, True, True),
        Column("invoice_date", DATE, True, True),
        Column("product_id", TEXT, True, True),
        Column("quantity", NUMBER, True, True),
        Column("revenue", NUMBER),
        Column("store_id", TEXT),
    ),
)

CUSTOMERS = FileSpec(
    "customers",
    (
        Column("customer_id", TEXT, True, True),
        Column("customer_name", TEXT),
        Column("customer_group", TEXT, True),
        Column("city", TEXT),
        Column("created_date", DATE, True, lenient=True),
        Column("email", TEXT),
        Column("mobile_number", TEXT),
        Column("opt_email", TEXT),
        Column("opt_sms", TEXT),
        Column("opt_phone", TEXT),
    ),
)

PRODUCTS = FileSpec(
    "products",
    (
        Column("product_id", TEXT, True, True),
        Column("product_name", TEXT),
        Column("brand", TEXT),
        Column("category", TEXT, True),
        Column("unit_size", NUMBER, True, aliases=("grammage_g",), lenient=True),
    ),
)


@dataclass
class StagedFile:
    """The result of reading one file: names of its temp tables and its counts."""

    path: Path
    valid_table: str
    rejected_table: str
    rows_read: int = 0
    rows_valid: int = 0
    rows_rejected: int = 0
    blank_lines: int = 0
    extra_columns: list[str] = field(default_factory=list)


def normalize_header(name: str) -> str:
    return name.strip().lower()


def read_header(path: Path) -> list[str]:
    """The header row of ``path``, decoded as UTF-8 (BOM tolerated)."""
    try:
        with open(path, "rb") as handle:
            first = handle.readline(_MAX_LINE_BYTES)
    except FileNotFoundError:
        raise InputFileError(f"{path}: file not found") from None
    except OSError as exc:
        raise InputFileError(f"{path}: cannot read file ({exc.strerror})") from None
    if not first.strip():
        raise InputFileError(f"{path}: empty file, a header row is required")
    try:
        text = first.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InputFileError(f"{path}: header row is not UTF-8 text") from None
    try:
        return next(csv.reader(io.StringIO(text.rstrip("\r\n"))))
    except (csv.Error, StopIteration):
        raise InputFileError(f"{path}: header row is not valid CSV") from None


def resolve_columns(path: Path, header: list[str], spec: FileSpec) -> dict[str, int | None]:
    """Position (0-based) of every spec column in the header; None when absent and optional.

    Extra columns map to their own normalized names.
    """
    names = [normalize_header(h) for h in header]
    seen: dict[str, int] = {}
    for position, name in enumerate(names):
        if name == "":
            raise InputFileError(f"{path}: column {position + 1} of the header has no name")
        if name in seen:
            raise InputFileError(f"{path}: column '{name}' appears twice in the header")
        seen[name] = position
    positions: dict[str, int | None] = {}
    for column in spec.columns:
        found = [n for n in (column.name, *column.aliases) if n in seen]
        if len(found) > 1:
            raise InputFileError(f"{path}: columns {' and '.join(repr(f) for f in found)} are the same column")
        if found:
            positions[column.name] = seen.pop(found[0])
        elif column.required_column:
            raise InputFileError(f"{path}: missing required column '{column.name}'")
        else:
            positions[column.name] = None
    for name, position in seen.items():
        positions[name] = position
    return positions


def _sql_str(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def stage_file(con: duckdb.DuckDBPyConnection, path: Path, spec: FileSpec, tag: str) -> StagedFile:
    """Read ``path`` into temp tables ``stg_<tag>`` (valid) and ``rej_<tag>`` (rejected)."""
    path = Path(path)
    header = read_header(path)
    positions = resolve_columns(path, header, spec)
    spec_names = [c.name for c in spec.columns]
    extras = [n for n in positions if n not in spec_names]
    staged = StagedFile(path, f"stg_{tag}", f"rej_{tag}", extra_columns=extras)
    lines, reader_rejects = f"lines_{tag}", f"readrej_{tag}"
    for table in (lines, reader_rejects, staged.valid_table, staged.rejected_table, f"readscan_{tag}", f"parsed_{tag}"):
        con.execute(f"DROP TABLE IF EXISTS {table}")

    # 1. One row per physical line (blank lines come back as NULL rows).
    con.execute(
        f"""
        CREATE TEMP TABLE {lines} AS
        SELECT line FROM read_csv({_sql_str(str(path))},
            columns = {{'line': 'VARCHAR'}}, header = false, auto_detect = false,
            delim = {_sql_str(_LINE_DELIM)}, quote = '', escape = '', strict_mode = false,
            max_line_size = {_MAX_LINE_BYTES}, store_rejects = true,
            rejects_table = '{reader_rejects}', rejects_scan = 'readscan_{tag}')
        """
    )
    # 2. Line numbers: the reader keeps file order; lines it rejected (bad
    #    encoding, too long) are numbered by the reader and fill the gaps.
    n_rejects = con.execute(f"SELECT count(DISTINCT line) FROM {reader_rejects}").fetchone()[0]
    if n_rejects == 0:
        numbered = f"SELECT rowid + 1 AS line_number, line FROM {lines}"
    else:
        numbered = f"""
            WITH good AS (SELECT rowid AS ord, line FROM {lines}),
            total AS (SELECT (SELECT count(*) FROM good) + {n_rejects} AS n),
            free AS (
                SELECT r.range + 1 AS line_number, row_number() OVER (ORDER BY r.range) - 1 AS ord
                FROM total, range(total.n) r
                WHERE r.range + 1 NOT IN (SELECT DISTINCT line FROM {reader_rejects}))
            SELECT free.line_number, good.line FROM good JOIN free USING (ord)
        """

    # 3. Split fields and validate.
    n_columns = len(header)
    unquote = "list_transform(regexp_extract_all(',' || l, ',{f}', 1), lambda x: CASE WHEN x LIKE '\"%' THEN replace(x[2:length(x) - 1], '\"\"', '\"') ELSE x END)".format(
        f=_FIELD
    )
    con.execute(
        f"""
        CREATE TEMP TABLE parsed_{tag} AS
        WITH numbered AS ({numbered}),
        body AS (
            SELECT line_number, rtrim(line, chr(13)) AS l FROM numbered
            WHERE line_number > 1 AND line IS NOT NULL AND trim(rtrim(line, chr(13))) <> ''
        )
        SELECT line_number, l AS raw_line,
            CASE WHEN strpos(l, '"') = 0 THEN string_split(l, ',')
                 WHEN regexp_full_match(l, '{_LINE_GRAMMAR}') THEN {unquote}
            END AS fields
        FROM body
        """
    )

    def value(name: str) -> str:
        position = positions.get(name)
        return "NULL::VARCHAR" if position is None else f"nullif(fields[{position + 1}], '')"

    checks: list[str] = []
    typed: list[str] = []
    for column in spec.columns:
        raw = value(column.name)
        blank = f"(nullif(trim({raw}), '') IS NULL)"
        if column.kind == TEXT:
            typed.append(f"{raw} AS {column.name}")
        elif column.kind == DATE:
            parsed = f"CASE WHEN regexp_full_match(trim({raw}), '\\d{{4}}-\\d{{2}}-\\d{{2}}') THEN try_cast(trim({raw}) AS DATE) END"
            typed.append(f"{parsed} AS {column.name}")
            if column.lenient:
                typed.append(f"{raw} AS {column.name}_text")
            else:
                checks.append(
                    f"CASE WHEN NOT {blank} AND {parsed} IS NULL THEN '{column.name} is not a valid YYYY-MM-DD date' END"
                )
        else:
            parsed = f"(CASE WHEN isfinite(try_cast(trim({raw}) AS DOUBLE)) THEN try_cast(trim({raw}) AS DOUBLE) END)"
            typed.append(f"{parsed} AS {column.name}")
            if column.lenient:
                typed.append(f"{raw} AS {column.name}_text")
            else:
                checks.append(f"CASE WHEN NOT {blank} AND {parsed} IS NULL THEN '{column.name} is not a number' END")
        if column.required_value:
            checks.append(f"CASE WHEN {blank} THEN 'missing {column.name}' END")
    if extras:
        pairs = ", ".join(f"{_sql_str(n)}, {value(n)}" for n in extras)
        typed.append(f"json_object({pairs})::VARCHAR AS extra_columns")
    else:
        typed.append("NULL::VARCHAR AS extra_columns")

    # Field checks only make sense when the field count is right.
    reason = (
        f"CASE WHEN fields IS NULL THEN 'malformed quoting' "
        f"WHEN len(fields) <> {n_columns} THEN 'expected {n_columns} fields, found ' || len(fields) "
        f"ELSE concat_ws('; ', {', '.join(checks) or 'NULL'}) END"
    )
    source = _sql_str(path.name)
    con.execute(
        f"""
        CREATE TEMP TABLE {staged.rejected_table} AS
        SELECT {source} AS source_file, line_number, raw_line, reason FROM (
            SELECT line_number, raw_line, nullif({reason}, '') AS reason FROM parsed_{tag}
        ) WHERE reason IS NOT NULL
        UNION ALL
        SELECT {source}, line, any_value(csv_line),
            string_agg(DISTINCT CASE error_type
                WHEN 'INVALID ENCODING' THEN 'not UTF-8 text'
                WHEN 'LINE SIZE OVER MAXIMUM' THEN 'line longer than {_MAX_LINE_BYTES} bytes'
                ELSE lower(error_type) END, '; ')
        FROM {reader_rejects} WHERE line > 1 GROUP BY line
        """
    )
    con.execute(
        f"""
        CREATE TEMP TABLE {staged.valid_table} AS
        SELECT {source} AS source_file, line_number, {', '.join(typed)}
        FROM parsed_{tag}
        WHERE line_number NOT IN (SELECT line_number FROM {staged.rejected_table})
        ORDER BY line_number
        """
    )
    header_rejected = con.execute(f"SELECT count(*) FROM {reader_rejects} WHERE line = 1").fetchone()[0]
    if header_rejected:
        raise InputFileError(f"{path}: header row is not UTF-8 text")
    staged.rows_valid = con.execute(f"SELECT count(*) FROM {staged.valid_table}").fetchone()[0]
    staged.rows_rejected = con.execute(f"SELECT count(*) FROM {staged.rejected_table}").fetchone()[0]
    staged.rows_read = staged.rows_valid + staged.rows_rejected
    total_lines = con.execute(f"SELECT count(*) FROM {lines}").fetchone()[0] + n_rejects
    staged.blank_lines = max(total_lines - 1 - staged.rows_read, 0)
    for table in (lines, reader_rejects, f"readscan_{tag}", f"parsed_{tag}"):
        con.execute(f"DROP TABLE IF EXISTS {table}")
    return staged


_SAFE_TAG = re.compile(r"[^a-z0-9_]")


def tag_for(name: str) -> str:
    """A temp-table-safe tag for a file name."""
    return _SAFE_TAG.sub("_", name.lower())
