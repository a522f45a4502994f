"""Reading the landing CSV files into DuckDB staging tables, line by line traceable.

Every file is read by DuckDB's CSV reader in one set-based scan, one physical
line per row, so each row keeps its line number (the header is line 1). The
fields are then split in SQL (``string_split`` for the common unquoted line, a
regular expression for quoted ones) and every value is validated in SQL. The
result of :func:`stage_file` is two temporary tables: the valid rows with
typed values, and the rejected rows with their raw text and reason. For every
file, rows read = valid rows + rejected rows; fully blank lines are not rows
and are only counted.

A quoted field left open, or one that holds a line break, is not followed
across lines: each physical line it touches is rejected with the reason
``malformed quoting`` and every other line loads, so one stray quote can never
swallow the rest of a file.

Files are decoded with ``CRM_INPUT_ENCODING`` (default UTF-8; a UTF-8
byte-order mark makes a file UTF-8 whatever the setting). A file that is not
valid text in that encoding is refused whole, naming its first bad line; a
file in another encoding is transcoded to UTF-8 in a temporary copy first.
Values that parse but cannot be real (a bar code pasted as a quantity, a date
before 1970) are rejected against the bounds below.
"""

from __future__ import annotations

import codecs
import csv
import functools
import hashlib
import io
import json
import os
import re
import shutil
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from crm_assets.core import settings
from crm_assets.core.errors import InputFileError

TEXT = "text"
DATE = "date"
NUMBER = "number"

# A byte sequence that never occurs in a text file, used as the "delimiter"
# of the line reader so that each physical line is one value.
_LINE_DELIM = "\x1f\x1e\x1d"
_FIELD = r'("(?:[^"]|"")*"|[^,"]*)'
_LINE_GRAMMAR = f"{_FIELD}(?:,{_FIELD})*"
_MAX_LINE_BYTES = 1 << 20

# Plausible bounds: a value beyond them parses but cannot be real, so its row is rejected.
# Units of a line are at most 1e5 x 1e5 = 1e10, far inside the exact DECIMAL sums of the features.
QUANTITY_BOUND = 100_000  # items on one invoice line, either sign (returns are negative)
UNIT_SIZE_BOUND = 100_000  # units (grams, pods, millilitres) in one item
EARLIEST_DATE = "1970-01-01"
MALFORMED_QUOTING = "malformed quoting (a quoted field left open or holding a line break)"


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
    # NUMBER: the largest magnitude accepted (``signed``: either sign, else at most the bound).
    bound: float | None = None
    signed: bool = False
    # DATE: the earliest date accepted.
    earliest: str | None = None


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
        Column("invoice_date", DATE, True, True, earliest=EARLIEST_DATE),
        Column("product_id", TEXT, True, True),
        Column("quantity", NUMBER, True, True, bound=QUANTITY_BOUND, signed=True),
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
        Column("created_date", DATE, True, lenient=True, earliest=EARLIEST_DATE),
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
        Column("unit_size", NUMBER, True, aliases=("grammage_g",), lenient=True, bound=UNIT_SIZE_BOUND),
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
    sha256: str = ""


def normalize_header(name: str) -> str:
    return name.strip().lower()


_CHUNK = 4 << 20


@dataclass(frozen=True)
class TextSource:
    """A file as DuckDB reads it: ``path`` is UTF-8 (the file itself, or a transcoded copy).

    ``sha256`` is the file's *version*: the SHA-256 of its bytes, plus the
    encoding it was read with when that is not UTF-8, plus the DuckDB version
    whose ``hash()`` the content hashes of its profile use, so that changing
    either reads the file again.
    """

    original: Path
    path: Path
    encoding: str
    sha256: str


def file_version(sha256_hex: str, encoding: str) -> str:
    """The version id of a file's bytes read in ``encoding`` (see ``TextSource``)."""
    major_minor = ".".join(duckdb.__version__.split(".")[:2])
    suffix = "" if codecs.lookup(encoding).name == "utf-8" else f";{codecs.lookup(encoding).name}"
    return f"{sha256_hex}{suffix};duckdb{major_minor}"


def version_of(path: Path, encoding: str | None = None) -> str:
    """The version id of a file without decoding it (a UTF-8 byte-order mark makes it UTF-8)."""
    encoding = encoding or settings.input_encoding()
    with open(path, "rb") as handle:
        if handle.read(3) == codecs.BOM_UTF8:
            encoding = "utf-8"
        handle.seek(0)
        digest = hashlib.file_digest(handle, "sha256").hexdigest()
    return file_version(digest, encoding)


def _first_bad_line(path: Path, encoding: str) -> int:
    """Number of the first physical line of ``path`` that does not decode (only on the error path)."""
    with open(path, "rb") as handle:
        for number, line in enumerate(handle, start=1):
            try:
                line.decode(encoding)
            except UnicodeDecodeError:
                return number
    return 1


@contextmanager
def text_source(path: Path, encoding: str | None = None) -> Iterator[TextSource]:
    """The file checked to be valid text in ``encoding`` (default ``CRM_INPUT_ENCODING``), with its SHA-256.

    One streaming pass hashes and decodes the bytes; a UTF-8 file is then read
    as it is, any other is written to a temporary UTF-8 copy, removed on exit.
    A decoding error stops with one line naming the file, its first bad line
    and the setting.
    """
    path = Path(path)
    encoding = encoding or settings.input_encoding()
    try:
        handle = open(path, "rb")
    except FileNotFoundError:
        raise InputFileError(f"{path}: file not found") from None
    except IsADirectoryError:
        raise InputFileError(f"{path}: is a folder, not a file") from None
    except OSError as exc:
        raise InputFileError(f"{path}: cannot read file ({exc.strerror})") from None
    tmp_dir = None
    with handle:
        head = handle.read(3)
        handle.seek(0)
        setting = encoding
        if head == codecs.BOM_UTF8:
            encoding = "utf-8"
        utf8 = codecs.lookup(encoding).name == "utf-8"
        decoder = codecs.getincrementaldecoder("utf-8-sig" if utf8 else encoding)("strict")
        digest = hashlib.sha256()
        out = None
        try:
            if not utf8:
                tmp_dir = tempfile.mkdtemp(prefix="crm-input-")
                out = open(Path(tmp_dir) / path.name, "wb")
            try:
                for block in iter(lambda: handle.read(_CHUNK), b""):
                    digest.update(block)
                    text = decoder.decode(block)
                    if out is not None:
                        out.write(text.encode("utf-8"))
                decoder.decode(b"", final=True)
            except UnicodeDecodeError:
                line = _first_bad_line(path, encoding)
                bom = " (it starts with a UTF-8 byte-order mark)" if encoding != setting else ""
                raise InputFileError(
                    f"{path}: line {line} is not valid {encoding} text{bom} ({settings.ENV_INPUT_ENCODING}={setting}); "
                    f"set {settings.ENV_INPUT_ENCODING} to the file's encoding (Excel on Windows writes cp1252) "
                    "or save it as UTF-8",
                    check=READABLE_CHECK,
                ) from None
            finally:
                if out is not None:
                    out.close()
            source = TextSource(
                path,
                Path(tmp_dir) / path.name if tmp_dir else path,
                encoding,
                file_version(digest.hexdigest(), encoding),
            )
        except BaseException:
            if tmp_dir:
                shutil.rmtree(tmp_dir, ignore_errors=True)
            raise
    try:
        yield source
    finally:
        if tmp_dir:
            shutil.rmtree(tmp_dir, ignore_errors=True)


READABLE_CHECK = "readable_with_required_columns"


def read_header(path: Path, encoding: str = "utf-8", name: Path | None = None) -> list[str]:
    """The header row of ``path`` (a UTF-8 file, BOM tolerated: see ``text_source``); errors name ``name``."""
    shown = name or path
    try:
        with open(path, "rb") as handle:
            first = handle.readline(_MAX_LINE_BYTES)
    except FileNotFoundError:
        raise InputFileError(f"{shown}: file not found") from None
    except OSError as exc:
        raise InputFileError(f"{shown}: cannot read file ({exc.strerror})") from None
    if not first.strip():
        raise InputFileError(f"{shown}: empty file, a header row is required")
    try:
        text = first.decode("utf-8-sig" if codecs.lookup(encoding).name == "utf-8" else encoding)
    except UnicodeDecodeError:
        raise InputFileError(f"{shown}: header row is not {encoding} text") from None
    try:
        return next(csv.reader(io.StringIO(text.rstrip("\r\n"))))
    except (csv.Error, StopIteration):
        raise InputFileError(f"{shown}: header row is not valid CSV") from None


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


def stage_file(
    con: duckdb.DuckDBPyConnection, path: Path, spec: FileSpec, tag: str, source: TextSource | None = None
) -> StagedFile:
    """Read ``path`` into temp tables ``stg_<tag>`` (valid) and ``rej_<tag>`` (rejected).

    ``source`` is the file already checked by ``text_source``; without it the file is checked here.
    """
    if source is None:
        with text_source(Path(path)) as checked:
            return stage_file(con, path, spec, tag, checked)
    path = Path(path)
    header = read_header(source.path, name=path)
    positions = resolve_columns(path, header, spec)
    spec_names = [c.name for c in spec.columns]
    extras = [n for n in positions if n not in spec_names]
    staged = StagedFile(path, f"stg_{tag}", f"rej_{tag}", extra_columns=extras, sha256=source.sha256)
    lines, reader_rejects = f"lines_{tag}", f"readrej_{tag}"
    for table in (lines, reader_rejects, staged.valid_table, staged.rejected_table, f"readscan_{tag}", f"parsed_{tag}"):
        con.execute(f"DROP TABLE IF EXISTS {table}")

    # 1. One row per physical line (blank lines come back as NULL rows).
    con.execute(
        f"""
        CREATE TEMP TABLE {lines} AS
        SELECT line FROM read_csv({_sql_str(str(source.path))},
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
            too_early = f"{parsed} < DATE '{column.earliest}'" if column.earliest else "false"
            if column.lenient:
                # an impossible date is no date: NULL, with the text kept
                typed.append(f"CASE WHEN NOT ({too_early}) THEN {parsed} END AS {column.name}")
                typed.append(f"{raw} AS {column.name}_text")
            else:
                typed.append(f"{parsed} AS {column.name}")
                checks.append(
                    f"CASE WHEN NOT {blank} AND {parsed} IS NULL THEN '{column.name} is not a valid YYYY-MM-DD date' "
                    f"WHEN {too_early} THEN '{column.name} ' || trim({raw}) || ' is before the bound {column.earliest}' END"
                )
        else:
            parsed = f"(CASE WHEN isfinite(try_cast(trim({raw}) AS DOUBLE)) THEN try_cast(trim({raw}) AS DOUBLE) END)"
            typed.append(f"{parsed} AS {column.name}")
            if column.lenient:
                typed.append(f"{raw} AS {column.name}_text")
            else:
                checks.append(f"CASE WHEN NOT {blank} AND {parsed} IS NULL THEN '{column.name} is not a number' END")
            if column.bound is not None:
                bound = f"{column.bound:g}" if column.bound < 1e15 else repr(column.bound)
                if column.signed:
                    beyond, limit = f"abs({parsed}) > {column.bound}", f"outside the bound -{bound}..{bound}"
                else:
                    beyond, limit = f"{parsed} > {column.bound}", f"above the bound {bound}"
                checks.append(f"CASE WHEN {beyond} THEN '{column.name} ' || trim({raw}) || ' is {limit}' END")
        if column.required_value:
            checks.append(f"CASE WHEN {blank} THEN 'missing {column.name}' END")
    if extras:
        pairs = ", ".join(f"{_sql_str(n)}, {value(n)}" for n in extras)
        typed.append(f"json_object({pairs})::VARCHAR AS extra_columns")
    else:
        typed.append("NULL::VARCHAR AS extra_columns")

    # Field checks only make sense when the field count is right.
    reason = (
        f"CASE WHEN fields IS NULL THEN '{MALFORMED_QUOTING}' "
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
                WHEN 'INVALID ENCODING' THEN 'not valid UTF-8 text'
                WHEN 'LINE SIZE OVER MAXIMUM' THEN 'line longer than {_MAX_LINE_BYTES} bytes'
                ELSE lower(error_type) END, '; ')
        FROM {reader_rejects} WHERE line > 1 GROUP BY line
        """
    )
    con.execute(
        f"""
        CREATE TEMP TABLE {staged.valid_table} AS
        SELECT {source} AS source_file, line_number, {", ".join(typed)}
        FROM parsed_{tag}
        WHERE line_number NOT IN (SELECT line_number FROM {staged.rejected_table})
        ORDER BY line_number
        """
    )
    header_rejected = con.execute(f"SELECT count(*) FROM {reader_rejects} WHERE line = 1").fetchone()[0]
    if header_rejected:
        raise InputFileError(f"{path}: header row cannot be read (longer than {_MAX_LINE_BYTES} bytes?)")
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


# A transactions file read to plan a run (``landing.profile_file``) is handed to the load that follows, so that a
# first build parses each new file once: its staged tables are kept in a DuckDB file under DAGSTER_HOME, keyed by
# the file's version (its bytes, encoding and DuckDB version) and by this module's own source (the reader and the
# rules that split valid from rejected lines), and taken (then removed) by the load. Only a cache: when it is
# missing, stale or unreadable, the load reads the file itself; handoffs never taken go after a day.
HANDOFF_FOLDER = "crm_staged"
HANDOFF_MAX_AGE_SECONDS = 24 * 3600


@functools.cache
def _reader_fingerprint() -> str:
    return hashlib.sha256(Path(__file__).read_bytes()).hexdigest()


def _handoff_folder() -> Path:
    return settings.dagster_home() / HANDOFF_FOLDER


def _handoff_file(name: str, version: str) -> Path:
    key = hashlib.sha256(f"{_reader_fingerprint()}\n{name}\n{version}".encode()).hexdigest()[:32]
    return _handoff_folder() / f"{tag_for(name)}.{key}.duckdb"


def discard_handoffs(names=(), older_than: float = HANDOFF_MAX_AGE_SECONDS) -> None:
    """Remove the handoffs of the files ``names`` (read but not loaded: unchanged), and any left for a day."""
    folder = _handoff_folder()
    if not folder.is_dir():
        return
    tags = {tag_for(name) for name in names}
    now = time.time()
    for path in folder.iterdir():
        try:
            if path.name.split(".", 1)[0] in tags or now - path.stat().st_mtime > older_than:
                path.unlink(missing_ok=True)
        except OSError:
            pass


def hand_off(con: duckdb.DuckDBPyConnection, staged: StagedFile) -> None:
    """Keep ``staged`` (read on ``con``) for the load of the same file version."""
    target = _handoff_file(staged.path.name, staged.sha256)
    partial = target.with_name(f"{target.stem}.{uuid.uuid4().hex}.partial")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        for older in target.parent.glob(f"{tag_for(staged.path.name)}.*.duckdb"):  # an earlier version's, never taken
            older.unlink(missing_ok=True)
        con.execute(f"ATTACH {_sql_str(str(partial))} AS handoff")
        try:
            con.execute(f"CREATE TABLE handoff.valid AS SELECT * FROM {staged.valid_table}")
            con.execute(f"CREATE TABLE handoff.rejected AS SELECT * FROM {staged.rejected_table}")
            counts = [staged.rows_read, staged.rows_valid, staged.rows_rejected, staged.blank_lines]
            meta = json.dumps(
                {
                    "name": staged.path.name,
                    "version": staged.sha256,
                    "counts": counts,
                    "extra_columns": staged.extra_columns,
                }
            )
            con.execute("CREATE TABLE handoff.meta AS SELECT ?::VARCHAR AS meta", [meta])
        finally:
            con.execute("DETACH handoff")
        os.replace(partial, target)
    except (OSError, duckdb.Error):
        partial.unlink(missing_ok=True)


def take_handoff(con: duckdb.DuckDBPyConnection, path: Path, tag: str, version: str | None = None) -> StagedFile | None:
    """The staged tables of ``path`` as the plan read them, on ``con`` as ``stg_<tag>`` and ``rej_<tag>``, when
    this very version (``version``, default: hashed now) was handed off (see ``hand_off``); used once."""
    path = Path(path)
    version = version or version_of(path)
    target = _handoff_file(path.name, version)
    if not target.is_file():
        return None
    staged = StagedFile(path, f"stg_{tag}", f"rej_{tag}")
    try:
        con.execute(f"ATTACH {_sql_str(str(target))} AS handoff (READ_ONLY)")
        try:
            meta = json.loads(con.execute("SELECT meta FROM handoff.meta").fetchone()[0])
            if meta["name"] != path.name or meta["version"] != version:
                return None
            staged.rows_read, staged.rows_valid, staged.rows_rejected, staged.blank_lines = map(int, meta["counts"])
            staged.extra_columns, staged.sha256 = [str(c) for c in meta["extra_columns"]], version
            for table, source in ((staged.valid_table, "valid"), (staged.rejected_table, "rejected")):
                con.execute(f"CREATE OR REPLACE TEMP TABLE {table} AS SELECT * FROM handoff.{source}")
        finally:
            con.execute("DETACH handoff")
    except (OSError, duckdb.Error, ValueError, KeyError, TypeError):
        return None
    finally:
        target.unlink(missing_ok=True)
    return staged
