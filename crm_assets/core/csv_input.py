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

LF, CRLF and a lone CR each end a line, in any mix. DuckDB's reader gets that
right only for a file whose lines all end one way, LF or CRLF, when it is told
which (``new_line``): with a lone CR it drops the character after it, with
CRLF after LF it adds blank lines, and told CRLF its parallel scan of an LF
file loses lines. So the streaming pass that hashes and checks a file also
notes its line endings (``_EndingScan``): a UTF-8 file with LF or CRLF
throughout is read as it is, any other from a temporary copy with every line
ending made LF (a transcoded copy always is).

A required value made only of white space, NULs and other invisible
characters is missing, and dates and numbers are read without those around
them (``trim_sql``, the trimming ids are compared after); raw keeps the text
of ids.
"""

from __future__ import annotations

import codecs
import csv
import fnmatch
import functools
import hashlib
import io
import itertools
import json
import logging
import os
import re
import shutil
import tempfile
import time
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from crm_assets.core import settings
from crm_assets.core.code_digest import version_of_code
from crm_assets.core.errors import CrmError, InputFileError
from crm_assets.core.rules import trim_sql
from crm_assets.engines.duckdb import one_row

TEXT = "text"
DATE = "date"
NUMBER = "number"

# A byte sequence that never occurs in a text file, used as the "delimiter"
# of the line reader so that each physical line is one value.
_LINE_DELIM = "\x1f\x1e\x1d"
_FIELD = r'("(?:[^"]|"")*"|[^,"]*)'
_LINE_GRAMMAR = f"{_FIELD}(?:,{_FIELD})*"
_NEW_LINE_SQL = {"\n": "'\\n'", "\r\n": "'\\r\\n'"}  # read_csv's spelling of a line ending
_MAX_LINE_BYTES = 1 << 20
# Separators that people's spreadsheets use instead of the comma: what a header without a comma is told.
_OTHER_SEPARATORS = {";": "';'", "\t": "a tab", "|": "'|'"}

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
# The mark of the version of a file whose line endings mix (``_EndingScan.mixed``): before the loader read such a
# file right, DuckDB's reader read it another way, so a profile of it kept from then is not trusted.
_MIXED_ENDINGS = ";newlines"


@dataclass(frozen=True)
class TextSource:
    """A file as DuckDB reads it: ``path`` is UTF-8 (the file itself, or a copy transcoded or with its line endings
    made LF), every line ended by ``new_line`` (LF or CRLF), the last one maybe not.

    ``sha256`` is the file's *version*: the SHA-256 of its bytes, plus the
    encoding it was read with when that is not UTF-8, plus the DuckDB version
    whose ``hash()`` the content hashes of its profile use, so that changing
    either reads the file again, plus a mark when its line endings mix.
    """

    original: Path
    path: Path
    encoding: str
    sha256: str
    new_line: str = "\n"


# The code that turns a file into rows: a change of it makes every file a new version, read again by the next run.
READER_MODULES = ("crm_assets.core.csv_input", "crm_assets.core.landing", "crm_assets.layers.raw")


@functools.cache
def reader_version() -> str:
    return version_of_code(READER_MODULES)[:8]


def file_version(sha256_hex: str, encoding: str, mixed_endings: bool = False) -> str:
    """The version id of a file's bytes read in ``encoding`` by this reader (see ``TextSource``)."""
    major_minor = ".".join(duckdb.__version__.split(".")[:2])
    suffix = "" if codecs.lookup(encoding).name == "utf-8" else f";{codecs.lookup(encoding).name}"
    mixed = _MIXED_ENDINGS if mixed_endings else ""
    return f"{sha256_hex}{suffix};duckdb{major_minor};reader{reader_version()}{mixed}"


class _EndingScan:
    """The line endings of a file's bytes, fed block by block: a CRLF, a bare LF, a lone CR (not followed by LF).

    Only whether each occurs: ``in`` and ``count`` run at C speed, so the pass that hashes every file notes them.
    """

    def __init__(self) -> None:
        self.crlf = self.bare_lf = self.lone_cr = False
        self._cr_pending = False  # the last block ended with a CR: the next one's first byte decides

    def feed(self, block: bytes) -> None:
        if not block:
            return
        if self._cr_pending:
            if block.startswith(b"\n"):
                self.crlf, block = True, block[1:]
            else:
                self.lone_cr = True
        self._cr_pending = block.endswith(b"\r")
        if self._cr_pending:
            block = block[:-1]
        crlf = 0
        if b"\r" in block:
            crlf = block.count(b"\r\n")
            self.crlf = self.crlf or crlf > 0
            self.lone_cr = self.lone_cr or block.count(b"\r") > crlf
        if not self.bare_lf and block.count(b"\n") > crlf:
            self.bare_lf = True

    def finish(self) -> None:
        if self._cr_pending:  # a CR ends the file
            self.lone_cr, self._cr_pending = True, False

    @property
    def crlf_only(self) -> bool:
        """Every line ending is CRLF (and there is one)."""
        return self.crlf and not self.bare_lf and not self.lone_cr

    @property
    def mixed(self) -> bool:
        """Neither LF throughout nor CRLF throughout: a lone CR, or CRLF beside a bare LF."""
        return self.lone_cr or (self.crlf and self.bare_lf)


class _ToLF:
    """Every CRLF and lone CR made LF, chunk by chunk (``str`` or ``bytes``); a CR ending a chunk waits for the
    next one. Byte by byte it is exact for UTF-8, whose multi-byte characters never hold a CR or LF byte."""

    def __init__(self, cr, lf):
        self.cr, self.lf, self.pending = cr, lf, False

    def feed(self, chunk):
        if self.pending:
            chunk = self.cr + chunk
        self.pending = chunk.endswith(self.cr)
        if self.pending:
            chunk = chunk[:-1]
        return chunk.replace(self.cr + self.lf, self.lf).replace(self.cr, self.lf)

    def finish(self):
        pending, self.pending = self.pending, False
        return self.lf if pending else self.lf[:0]


def version_of(path: Path, encoding: str | None = None) -> str:
    """The version id of a file without decoding it (a UTF-8 byte-order mark makes it UTF-8)."""
    encoding = encoding or settings.input_encoding()
    digest, endings = hashlib.sha256(), _EndingScan()
    with open(path, "rb") as handle:
        if handle.read(3) == codecs.BOM_UTF8:
            encoding = "utf-8"
        handle.seek(0)
        for block in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(block)
            endings.feed(block)
    endings.finish()
    return file_version(digest.hexdigest(), encoding, endings.mixed)


def _decoder(encoding: str) -> codecs.IncrementalDecoder:
    utf8 = codecs.lookup(encoding).name == "utf-8"
    return codecs.getincrementaldecoder("utf-8-sig" if utf8 else encoding)("strict")


def _first_bad_line(path: Path, encoding: str) -> int:
    """Number of the LF-ended line of ``path`` holding the first bytes that do not decode (only on the error path:
    the file is decoded again up to there, so a multi-byte encoding such as UTF-16 is counted right too)."""
    decoder = _decoder(encoding)
    breaks = 0
    with open(path, "rb") as handle:
        for block in itertools.chain(iter(lambda: handle.read(_CHUNK), b""), [None]):  # None: the end
            state = decoder.getstate()
            try:
                breaks += decoder.decode(block or b"", final=block is None).count("\n")
            except UnicodeDecodeError as exc:
                # the good text before the bad bytes, decoded from the same state (exc.object: the bytes it decoded)
                prefix = _decoder(encoding)
                prefix.setstate((b"", state[1]))
                try:
                    return breaks + prefix.decode(exc.object[: exc.start], final=True).count("\n") + 1
                except UnicodeError:
                    return breaks + 1
            except UnicodeError:
                break
    return breaks + 1


def _decoding_error(path: Path, encoding: str, setting: str, bom: bool, exc: UnicodeError) -> InputFileError:
    """The one line for a file that does not decode: its first bad line and the setting, or what is wrong."""
    variable = f"{settings.ENV_INPUT_ENCODING}={setting}"
    advice = (
        f"set {settings.ENV_INPUT_ENCODING} to the file's encoding (Excel on Windows writes cp1252) or save it as UTF-8"
    )
    if bom:  # the setting is not used for such a file: only the file can change
        return InputFileError(
            f"{path}: it starts with a UTF-8 byte order mark but is not UTF-8 "
            f"(line {_first_bad_line(path, encoding)} is not valid UTF-8): remove the BOM or save it as UTF-8",
            check=READABLE_CHECK,
        )
    if isinstance(exc, UnicodeDecodeError):
        return InputFileError(
            f"{path}: line {_first_bad_line(path, encoding)} is not valid {encoding} text ({variable}); {advice}",
            check=READABLE_CHECK,
        )
    reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    return InputFileError(
        f"{path}: cannot be read as {encoding} text ({variable}: {reason}); {advice}", check=READABLE_CHECK
    )


def _copy_with_lf(handle, target: Path) -> None:
    """Stream ``handle`` (bytes, UTF-8) into ``target`` with every line ending made LF."""
    to_lf = _ToLF(b"\r", b"\n")
    with open(target, "wb") as out:
        for block in iter(lambda: handle.read(_CHUNK), b""):
            out.write(to_lf.feed(block))
        out.write(to_lf.finish())


@contextmanager
def text_source(path: Path, encoding: str | None = None) -> Iterator[TextSource]:
    """The file checked to be valid text in ``encoding`` (default ``CRM_INPUT_ENCODING``), with its version.

    One streaming pass hashes and decodes the bytes and notes the line
    endings; a UTF-8 file is then read as it is when its lines all end with
    LF, or all with CRLF; any other is copied with every line ending made LF,
    in a second streaming pass. A file in another encoding is written to a
    temporary UTF-8 copy (line endings made LF too) in the first pass. Copies
    are removed on exit. A decoding error stops with one line naming the
    file, its first bad line and the setting.
    """
    path = Path(path)
    setting = encoding or settings.input_encoding()
    if not getattr(codecs.lookup(setting), "_is_text_encoding", True):  # rot13, base64...: not a text encoding
        raise CrmError(f"{settings.ENV_INPUT_ENCODING}={setting} is not a text encoding (e.g. utf-8, cp1252, latin-1)")
    try:
        handle = open(path, "rb")
    except FileNotFoundError:
        raise InputFileError(f"{path}: file not found") from None
    except IsADirectoryError:
        raise InputFileError(f"{path}: is a folder, not a file") from None
    except OSError as exc:
        raise InputFileError(f"{path}: cannot read file ({exc.strerror})") from None
    tmp_dir = None
    try:
        with handle:
            bom = handle.read(3) == codecs.BOM_UTF8
            handle.seek(0)
            encoding = "utf-8" if bom else setting
            utf8 = codecs.lookup(encoding).name == "utf-8"
            decoder = _decoder(encoding)
            digest, endings = hashlib.sha256(), _EndingScan()
            out, to_lf = None, _ToLF("\r", "\n")
            if not utf8:
                tmp_dir = tempfile.mkdtemp(prefix="crm-input-")
                out = open(Path(tmp_dir) / path.name, "wb")
            try:
                try:
                    for block in iter(lambda: handle.read(_CHUNK), b""):
                        digest.update(block)
                        endings.feed(block)
                        text = decoder.decode(block)
                        if out is not None:
                            out.write(to_lf.feed(text).encode("utf-8"))
                    text = decoder.decode(b"", final=True)
                    if out is not None:
                        out.write((to_lf.feed(text) + to_lf.finish()).encode("utf-8"))
                finally:
                    if out is not None:
                        out.close()
            except UnicodeError as exc:  # a UnicodeDecodeError, or a codec's own (utf-16 without its BOM)
                raise _decoding_error(path, encoding, setting, bom, exc) from None
            endings.finish()
            if utf8 and endings.mixed:  # neither LF throughout nor CRLF throughout
                tmp_dir = tempfile.mkdtemp(prefix="crm-input-")
                handle.seek(0)
                _copy_with_lf(handle, Path(tmp_dir) / path.name)
            source = TextSource(
                path,
                Path(tmp_dir) / path.name if tmp_dir else path,
                encoding,
                file_version(digest.hexdigest(), encoding, endings.mixed),
                "\r\n" if utf8 and endings.crlf_only else "\n",
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
    if len(header) == 1:
        found = [shown for separator, shown in _OTHER_SEPARATORS.items() if separator in header[0]]
        if found:
            raise InputFileError(
                f"{path}: line 1: the separator looks like {found[0]} (the header has no comma); "
                "the files must be comma-separated, with '.' as the decimal point"
            )
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


_log = logging.getLogger("crm")
_named_unread: set[tuple[str, tuple[str, ...]]] = set()  # (folder, names) warned about by this process


def named_files(folder: Path, pattern: str, expected: Iterable[str] = ()) -> list[Path]:
    """The files of ``folder`` named ``pattern`` (case-sensitive), sorted by name.

    A file whose name matches only in other case (``Sales_Transactions_2025.CSV``) stops with one line naming it
    and the name expected. Other CSV files that neither ``pattern`` nor ``expected`` names are named in a
    warning (once a process), since they are not read.
    """
    found, unread = [], []
    for path in sorted(folder.iterdir()):
        if path.name.startswith(".") or not path.is_file():
            continue
        if fnmatch.fnmatchcase(path.name, pattern):
            found.append(path)
        elif fnmatch.fnmatchcase(path.name.lower(), pattern):
            raise InputFileError(
                f"{path}: not read: the name must be {pattern} in lower case; rename it {path.name.lower()}"
            )
        elif path.suffix.lower() == ".csv" and path.name not in expected:
            unread.append(path.name)
    key = (str(folder), tuple(unread))
    if unread and key not in _named_unread:
        _named_unread.add(key)
        _log.warning(
            "%s: not read, not a name the loader reads (%s): %s",
            folder,
            ", ".join([*expected, pattern]),
            ", ".join(unread),
        )
    return found


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

    # 1. One row per physical line (blank lines come back as NULL rows). Every line of ``source.path`` ends with
    #    ``source.new_line`` (``text_source`` made any other file's line endings LF in a copy).
    con.execute(
        f"""
        CREATE TEMP TABLE {lines} AS
        SELECT line FROM read_csv({_sql_str(str(source.path))},
            columns = {{'line': 'VARCHAR'}}, header = false, auto_detect = false,
            delim = {_sql_str(_LINE_DELIM)}, quote = '', escape = '', strict_mode = false,
            new_line = {_NEW_LINE_SQL[source.new_line]},
            max_line_size = {_MAX_LINE_BYTES}, store_rejects = true,
            rejects_table = '{reader_rejects}', rejects_scan = 'readscan_{tag}')
        """
    )
    # 2. Line numbers: the reader keeps file order; lines it rejected (bad
    #    encoding, too long) are numbered by the reader and fill the gaps.
    n_rejects = one_row(con, f"SELECT count(DISTINCT line) FROM {reader_rejects}")[0]
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
            SELECT line_number, line AS l FROM numbered
            WHERE line_number > 1 AND line IS NOT NULL AND trim(line) <> ''
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
        trimmed = trim_sql(raw)
        blank = f"(nullif({trimmed}, '') IS NULL)"
        if column.kind == TEXT:
            typed.append(f"{raw} AS {column.name}")
        elif column.kind == DATE:
            parsed = f"CASE WHEN regexp_full_match({trimmed}, '\\d{{4}}-\\d{{2}}-\\d{{2}}') THEN try_cast({trimmed} AS DATE) END"
            too_early = f"{parsed} < DATE '{column.earliest}'" if column.earliest else "false"
            if column.lenient:
                # an impossible date is no date: NULL, with the text kept
                typed.append(f"CASE WHEN NOT ({too_early}) THEN {parsed} END AS {column.name}")
                typed.append(f"{raw} AS {column.name}_text")
            else:
                typed.append(f"{parsed} AS {column.name}")
                checks.append(
                    f"CASE WHEN NOT {blank} AND {parsed} IS NULL THEN '{column.name} is not a valid YYYY-MM-DD date' "
                    f"WHEN {too_early} THEN '{column.name} ' || {trimmed} || ' is before the bound {column.earliest}' END"
                )
        else:
            parsed = f"(CASE WHEN isfinite(try_cast({trimmed} AS DOUBLE)) THEN try_cast({trimmed} AS DOUBLE) END)"
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
                checks.append(f"CASE WHEN {beyond} THEN '{column.name} ' || {trimmed} || ' is {limit}' END")
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
    source_file = _sql_str(path.name)
    con.execute(
        f"""
        CREATE TEMP TABLE {staged.rejected_table} AS
        SELECT {source_file} AS source_file, line_number, raw_line, reason FROM (
            SELECT line_number, raw_line, nullif({reason}, '') AS reason FROM parsed_{tag}
        ) WHERE reason IS NOT NULL
        UNION ALL
        SELECT {source_file}, line, any_value(csv_line),
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
        SELECT {source_file} AS source_file, line_number, {", ".join(typed)}
        FROM parsed_{tag}
        WHERE line_number NOT IN (SELECT line_number FROM {staged.rejected_table})
        ORDER BY line_number
        """
    )
    header_rejected = one_row(con, f"SELECT count(*) FROM {reader_rejects} WHERE line = 1")[0]
    if header_rejected:
        raise InputFileError(f"{path}: header row cannot be read (longer than {_MAX_LINE_BYTES} bytes?)")
    staged.rows_valid = one_row(con, f"SELECT count(*) FROM {staged.valid_table}")[0]
    staged.rows_rejected = one_row(con, f"SELECT count(*) FROM {staged.rejected_table}")[0]
    staged.rows_read = staged.rows_valid + staged.rows_rejected
    total_lines = one_row(con, f"SELECT count(*) FROM {lines}")[0] + n_rejects
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
            meta = json.loads(one_row(con, "SELECT meta FROM handoff.meta")[0])
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
