"""A DuckDB query's rows as xlsx worksheet rows, the sheet XML generated set-based in DuckDB.

openpyxl writes the workbook and the frame of each list sheet (column
widths, frozen header, header row, Excel table): :class:`ListRows` adds one
*prototype* row (row 2) to each such sheet, whose cells hold a value of each
column's type with the real number formats, so that openpyxl registers the
cell styles in ``styles.xml``, followed by a marker cell. :func:`save`
saves the frame in memory, then copies it into the target zip, except that
in each list sheet the prototype row is replaced by the query's rows: each
column's style index ``s`` is read from the prototype, and the rows' XML is
built by DuckDB.

The query's result is read in Arrow batches of ``BLOCK_ROWS`` rows, in its
order (its ``ORDER BY``). Python numbers the rows of each batch (an Arrow
column; the numbering restarts at row 2 on each sheet), and one DuckDB query
over the batch turns each row into its ``<row>`` element; a projection of
one table keeps the batch's order (DuckDB's order preservation), and Arrow
joins the rows into one buffer, so Python only handles a few large buffers
and memory is bounded by a batch whatever the number of rows. A worker
thread builds the next block in DuckDB while the main thread deflates the
current one into the zip.

Cells, by DuckDB type: text is an inline string (XML-escaped, characters
illegal in XML 1.0 removed, cut at Excel's 32,767 characters, leading and
trailing white space kept); integers, decimals and finite floating-point
numbers are numbers; a DATE or TIMESTAMP is Excel's serial day number (the
1900 date system, like openpyxl); a BOOLEAN is a boolean; any other type is
written as its text. NULL, NaN, infinity and the empty string are no cell.
"""

from __future__ import annotations

import io
import posixpath
import re
import uuid
import zipfile
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from xml.etree import ElementTree

import pyarrow as pa
import pyarrow.compute as pc
from openpyxl.cell import WriteOnlyCell
from openpyxl.utils import get_column_letter

# Rows of the query turned into sheet XML per DuckDB round trip (about 1.2 kB of XML per row of 32 columns).
BLOCK_ROWS = 8_192
# Deflate level of the zip. Measured on a list of 198,000 rows of 32 columns (198 MB of sheet XML):
# level 1: 0.9 s of deflate, 31.2 MB; 3: 1.3 s, 27.5 MB; 6 (zlib's default): 3.0 s, 23.0 MB. Deflate runs
# beside DuckDB, so up to 3 it costs no time (DuckDB builds the XML in about 1.6 s); 6 would double the list's time.
COMPRESS_LEVEL = 3
# A list sheet's zip entry is written with ZIP64 sizes when its XML might reach this size.
ZIP64_FROM = 1 << 30
ZIP64_BYTES_PER_CELL = 64
# Excel's limit of characters in a cell.
MAX_CELL_CHARS = 32_767

_MAIN_NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_REL_NS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_PKG_REL_NS = "http://schemas.openxmlformats.org/package/2006/relationships"
_OFFICE_DOCUMENT = _REL_NS + "/officeDocument"

# Characters XML 1.0 does not allow (openpyxl refuses them; here they are removed), as an RE2 class.
_ILLEGAL_RE = r"'[\x00-\x08\x0B\x0C\x0E-\x1F\x{FFFE}\x{FFFF}]'"
_XML_SPACE_SQL = "' ' || chr(9) || chr(10) || chr(13)"
_INTEGERS = {
    "TINYINT",
    "SMALLINT",
    "INTEGER",
    "BIGINT",
    "HUGEINT",
    "UTINYINT",
    "USMALLINT",
    "UINTEGER",
    "UBIGINT",
    "UHUGEINT",
}
_DIMENSION = re.compile(r'<dimension ref="[^"]*"\s*/>')

# A value of each kind of column, written in the prototype row.
PROTOTYPE_VALUES = {
    "text": "x",
    "number": 0,
    "float": 0.5,
    "decimal": Decimal(0),
    "date": date(2000, 1, 1),
    "timestamp": datetime(2000, 1, 1),
    "bool": True,
    "other": "x",
}


def column_kind(duckdb_type: str) -> str:
    """How a DuckDB column type is written: a key of ``PROTOTYPE_VALUES``."""
    t = duckdb_type.upper()
    if t == "VARCHAR":
        return "text"
    if t in _INTEGERS:
        return "number"
    if t.startswith("DECIMAL"):
        return "decimal"
    if t in ("DOUBLE", "FLOAT"):
        return "float"
    if t == "DATE":
        return "date"
    if t in ("TIMESTAMP", "TIMESTAMP_S", "TIMESTAMP_MS", "TIMESTAMP_NS"):
        return "timestamp"
    if t == "BOOLEAN":
        return "bool"
    return "other"


def _value_sql(kind: str, column: str) -> str:
    """A column's value as written (NULL: no cell): cleaned text, a number, a serial day number, a boolean."""
    if kind in ("text", "other"):
        text = column if kind == "text" else f"CAST({column} AS VARCHAR)"
        return f"nullif(left(regexp_replace({text}, {_ILLEGAL_RE}, '', 'g'), {MAX_CELL_CHARS}), '')"
    if kind in ("number", "decimal", "bool"):
        return column
    if kind == "float":
        return f"CASE WHEN isfinite({column}) THEN {column} END"
    # days since 1899-12-30, less one up to 28 February 1900: Excel counts a 29 February 1900 that did
    # not exist (as openpyxl does)
    if kind == "date":
        return (
            f"CASE WHEN isfinite({column}) THEN {column} - DATE '1899-12-30'"
            f" - CASE WHEN {column} BETWEEN DATE '1899-12-31' AND DATE '1900-02-28' THEN 1 ELSE 0 END END"
        )
    if kind == "timestamp":
        return (
            f"CASE WHEN isfinite({column}) THEN (epoch_us({column}::TIMESTAMP) - epoch_us(TIMESTAMP '1899-12-30'))"
            f" / 86400e6 - CASE WHEN {column}::TIMESTAMP >= TIMESTAMP '1899-12-31'"
            f" AND {column}::TIMESTAMP < TIMESTAMP '1900-03-01' THEN 1 ELSE 0 END END"
        )
    raise ValueError(kind)


def _cell_sql(kind: str, column: int, style: str | None, value: str) -> str:
    """The XML of a column's cell (NULL: no cell) from its value ``value`` (see _value_sql); ``r``: the row number."""
    ref = f"""'<c r="{get_column_letter(column)}', r, '"{f' s="{style}"' if style else ""}"""
    if kind in ("text", "other"):
        escaped = value
        for char, entity in (("'&'", "'&amp;'"), ("'<'", "'&lt;'"), ("'>'", "'&gt;'"), ("chr(13)", "'&#13;'")):
            escaped = f"replace({escaped}, {char}, {entity})"  # a CR is kept (a parser turns a raw one into LF)
        space = f"""CASE WHEN trim({value}, {_XML_SPACE_SQL}) <> {value} THEN ' xml:space="preserve"' ELSE '' END"""
        parts = f"""{ref} t="inlineStr"><is><t', {space}, '>', {escaped}, '</t></is></c>'"""
    elif kind == "bool":
        parts = f"""{ref} t="b"><v>', CASE WHEN {value} THEN '1' ELSE '0' END, '</v></c>'"""
    else:
        parts = f"""{ref}><v>', CAST({value} AS VARCHAR), '</v></c>'"""
    return f"CASE WHEN {value} IS NOT NULL THEN concat({parts}) END"  # one concat() builds the cell in one go


def rows_sql(kinds: Sequence[str], styles: Sequence[str | None], source: str) -> str:
    """The query turning the rows of ``source`` (columns ``c1``.. and the row number ``r``) into ``<row>`` elements.

    ``styles``: each column's style index (None: none). A projection of
    one table, so its rows come in the order of ``source`` (DuckDB's order
    preservation); one VARCHAR ``x`` a row.
    """
    values = ", ".join(f"{_value_sql(kind, f'c{i}')} AS v{i}" for i, kind in enumerate(kinds, 1))
    cells = ", ".join(_cell_sql(kind, i, style, f"v{i}") for i, (kind, style) in enumerate(zip(kinds, styles), 1))
    return f"""
        SELECT concat('<row r="', r, '">', {cells}, '</row>') AS x
        FROM (SELECT CAST(r AS VARCHAR) AS r, {values} FROM {source})
    """


class ListRows:
    """The ``total`` rows of the query ``sql`` planned on list sheets of ``per_sheet`` rows each.

    :meth:`add_sheet` plans each sheet in the workbook; :func:`save` writes
    the rows (through cursors of ``con``, which must stay open until then),
    and raises when the query does not return exactly ``total`` rows.
    """

    def __init__(self, con, sql: str, params, total: int, per_sheet: int):
        if per_sheet < 1:
            raise ValueError("a sheet must hold at least one row")
        self.con, self.sql, self.params, self.total, self.per_sheet = con, sql, params, total, per_sheet
        self.sheets: list[str] = []  # titles, in order
        self.marker = f"crm-list-prototype-{uuid.uuid4().hex}"
        cursor = con.cursor()
        try:
            description = cursor.execute(f"SELECT * FROM ({sql}) LIMIT 0", params).description
        finally:
            cursor.close()
        self.kinds = [column_kind(str(d[1])) for d in description]

    def sheet_rows(self, index: int) -> int:
        """The data rows planned on the ``index``-th sheet (from 0)."""
        return max(0, min(self.per_sheet, self.total - index * self.per_sheet))

    def add_sheet(self, ws, formats: Sequence[str | None]) -> None:
        """Plan the next sheet of the list on the write-only sheet ``ws``, its header already appended.

        ``formats`` holds each column's number format (None: no style).
        """
        if len(formats) != len(self.kinds):
            raise ValueError(f"{len(formats)} formats for a query of {len(self.kinds)} columns")
        cells = []
        for kind, fmt in zip(self.kinds, formats):
            cell = WriteOnlyCell(ws, value=PROTOTYPE_VALUES[kind])
            if fmt:
                cell.number_format = fmt
            cells.append(cell)
        ws.append([*cells, self.marker])
        self.sheets.append(ws.title)

    def blocks(self, styles: Sequence[str | None]) -> Iterator[tuple[int, pa.Buffer]]:
        """(sheet index, XML of rows) in order; raises unless the query returns exactly ``total`` rows.

        ``styles`` holds the style index of each column's cells (None: none).
        """
        source, builder = self.con.cursor(), self.con.cursor()
        try:
            reader = source.sql(self.sql, params=self.params).to_arrow_reader(BLOCK_ROWS)
            names = [f"c{i}" for i in range(1, len(self.kinds) + 1)] + ["r"]
            sql = rows_sql(self.kinds, styles, "crm_list_block")
            done = 0
            for batch in reader:
                start = 0
                while start < batch.num_rows:
                    # the rows of one sheet, numbered from row 2 on each sheet
                    sheet, before = divmod(done, self.per_sheet)
                    n = min(batch.num_rows - start, self.per_sheet - before)
                    if done + n > self.total:
                        raise RuntimeError(f"list: expected {self.total} rows, the query returned more")
                    numbers = pa.array(range(before + 2, before + 2 + n), pa.int64())
                    block = pa.Table.from_arrays([*batch.slice(start, n).columns, numbers], names=names)
                    builder.register("crm_list_block", block)
                    xml = _joined(builder.sql(sql).to_arrow_table().column(0))
                    builder.unregister("crm_list_block")
                    del block
                    done += n
                    start += n
                    yield sheet, xml
            if done != self.total:
                raise RuntimeError(f"list: expected {self.total} rows, the query returned fewer")
        finally:
            builder.close()
            source.close()


def _joined(column: pa.ChunkedArray) -> pa.Buffer:
    """The values of a string column (no NULL) one after the other, as one UTF-8 buffer."""
    chunks = column.chunks
    if not chunks:
        return pa.py_buffer(b"")
    one = (chunks[0] if len(chunks) == 1 else pa.concat_arrays(chunks)).cast(pa.large_string())  # 64-bit offsets
    whole = pa.ListArray.from_arrays(pa.array([0, len(one)], pa.int32()), one)  # one list of all the values
    return pc.binary_join(whole, pa.scalar("", pa.large_string()))[0].as_buffer()


# --------------------------------------------------------------------------- the zip


def _resolve(base: str, target: str) -> str:
    """A relationship's target as a zip member name, relative to the part ``base``."""
    if target.startswith("/"):
        return target[1:]
    return posixpath.normpath(posixpath.join(posixpath.dirname(base), target))


def _rels_name(part: str) -> str:
    folder, name = posixpath.split(part)
    return posixpath.join(folder, "_rels", name + ".rels")


def sheet_parts(zf: zipfile.ZipFile) -> dict[str, str]:
    """Sheet title -> zip member of its XML, from the package and workbook relationships."""
    rels = ElementTree.fromstring(zf.read("_rels/.rels"))
    workbook = next(
        _resolve("", r.get("Target"))
        for r in rels.iter(f"{{{_PKG_REL_NS}}}Relationship")
        if r.get("Type") == _OFFICE_DOCUMENT
    )
    targets = {
        r.get("Id"): _resolve(workbook, r.get("Target"))
        for r in ElementTree.fromstring(zf.read(_rels_name(workbook))).iter(f"{{{_PKG_REL_NS}}}Relationship")
    }
    return {
        s.get("name"): targets[s.get(f"{{{_REL_NS}}}id")]
        for s in ElementTree.fromstring(zf.read(workbook)).iter(f"{{{_MAIN_NS}}}sheet")
    }


def _split_prototype(xml: str, marker: str, columns: int) -> tuple[str, str, list[str | None]]:
    """The sheet XML before and after its prototype row, and the style index of each column's cell."""
    at = xml.find(marker)
    start = xml.rfind('<row r="2"', 0, at)
    end = xml.find("</row>", at)
    if at < 0 or start < 0 or end < 0:
        raise RuntimeError("list sheet: prototype row not found")
    end += len("</row>")
    row = ElementTree.fromstring(xml[start:end])
    cells: dict[str, str | None] = {c.get("r"): c.get("s") for c in row}
    expected = [f"{get_column_letter(i)}2" for i in range(1, columns + 2)]  # the columns and the marker
    if list(cells) != expected:
        raise RuntimeError(f"list sheet: unexpected prototype row {list(cells)}")
    return xml[:start], xml[end:], [cells[ref] for ref in expected[:-1]]


def _prefetched(items: Iterator) -> Iterator:
    """``items``, each next one computed in a worker thread while the caller uses the current one.

    DuckDB and zlib release the GIL: the next block's XML is built while this one is deflated.
    """
    end = object()
    try:
        with ThreadPoolExecutor(1, thread_name_prefix="xlsx-list") as worker:
            ahead = worker.submit(next, items, end)
            while (item := ahead.result()) is not end:
                ahead = worker.submit(next, items, end)
                yield item
    finally:  # the worker is done (the with waited for it): the generator can be closed here
        close = getattr(items, "close", None)
        if close is not None:
            close()


def save(wb, path: str | Path, lists: Sequence[ListRows] = ()) -> None:
    """Write ``wb`` to ``path`` with the rows of ``lists`` in their sheets (not atomic: see the callers)."""
    frame = io.BytesIO()
    wb.save(frame)
    with (
        zipfile.ZipFile(frame) as zin,
        zipfile.ZipFile(
            path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=COMPRESS_LEVEL, allowZip64=True
        ) as zout,
    ):
        parts = sheet_parts(zin)
        listed = {parts[title] for rows in lists for title in rows.sheets}
        for info in zin.infolist():
            if info.filename not in listed:
                zout.writestr(info.filename, zin.read(info))
        for rows in lists:
            _write_list(zin, zout, parts, rows)


def _write_list(zin: zipfile.ZipFile, zout: zipfile.ZipFile, parts: dict[str, str], rows: ListRows) -> None:
    frames, styles = [], None
    for index, title in enumerate(rows.sheets):
        head, tail, found = _split_prototype(zin.read(parts[title]).decode("utf-8"), rows.marker, len(rows.kinds))
        last = f"{get_column_letter(len(rows.kinds))}{rows.sheet_rows(index) + 1}"
        head = _DIMENSION.sub(f'<dimension ref="A1:{last}"/>', head, count=1)
        frames.append((head.encode("utf-8"), tail.encode("utf-8")))
        if styles is None:
            styles = found
        elif found != styles:
            raise RuntimeError("list sheet: the sheets of one list have different styles")
    if not frames:
        return
    current, entry = -1, None

    def open_sheet(index: int):
        nonlocal current, entry
        while current < index:
            if entry is not None:
                entry.write(frames[current][1])
                entry.close()
            current += 1
            big = rows.sheet_rows(current) * (len(rows.kinds) * ZIP64_BYTES_PER_CELL + 32) >= ZIP64_FROM
            entry = zout.open(parts[rows.sheets[current]], "w", force_zip64=big)
            entry.write(frames[current][0])

    try:
        for sheet, xml in _prefetched(rows.blocks(styles)):
            open_sheet(sheet)
            entry.write(xml)
        open_sheet(len(frames) - 1)
        entry.write(frames[current][1])
    finally:
        if entry is not None:
            entry.close()
