"""The Power BI project next to the Parquet files: its TMDL parsed and every reference resolved against the files.

A small TMDL reader (``parse``) follows the documented grammar as far as the
project uses it: one object or property per line, nesting by tab
indentation, ``///`` descriptions above an object, ``name: value``
properties, a bare name as a true flag, ``= expression`` default properties
on the line or on the lines below (two levels deeper than the line), names in
single quotes when they are not plain identifiers. The files are then checked
against the Parquet files they read (their schemas and data through DuckDB).

Built on the small warehouse of test_views (5 customers x 2024-01..2024-03).
"""

from __future__ import annotations

import calendar
import json
import re
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import duckdb
import pytest

from crm_assets.core.errors import CrmError
from crm_assets.core.rules import EVENTS, STAGES, STATUSES, TIERS
from crm_assets.outputs import pbip, powerbi

from .test_views import JAN, MAR, small, warehouse_copy  # noqa: F401 - the module-scoped warehouse fixture

OBJECTS = {"database", "model", "table", "column", "measure", "partition", "relationship", "expression", "annotation"}
# TMDL dataType -> the DuckDB types of the Parquet column Power Query reads into it
PARQUET_TYPES = {
    "int64": {"BIGINT", "INTEGER"},
    "double": {"DOUBLE"},
    "string": {"VARCHAR"},
    "dateTime": {"DATE"},
    "boolean": {"BOOLEAN"},
}


@dataclass
class Node:
    kind: str
    name: str | None
    value: str | None = None  # the default property (after " = "), expression lines joined
    props: dict[str, object] = field(default_factory=dict)  # name -> text, or True for a flag
    children: list[Node] = field(default_factory=list)
    description: str = ""

    def all(self, kind: str) -> list[Node]:
        return [c for c in self.children if c.kind == kind]

    def one(self, kind: str, name: str) -> Node:
        [node] = [c for c in self.children if c.kind == kind and c.name == name]
        return node


def unquote(text: str) -> str:
    text = text.strip()
    if text.startswith("'"):
        assert text.endswith("'") and len(text) > 1, text
        return text[1:-1].replace("''", "'")
    # unquoted, a name holds no white space and none of . = : ' (a GUID is fine)
    assert re.fullmatch(r"[^\s.=:']+", text), f"a name with other characters must be quoted: {text!r}"
    return text


def split_reference(text: str) -> tuple[str, str]:
    """``table.column`` (either part quoted) -> (table, column)."""
    m = re.fullmatch(r"('(?:[^']|'')+'|[A-Za-z_]\w*)\.('(?:[^']|'')+'|[A-Za-z_]\w*)", text.strip())
    assert m, f"not a column reference: {text!r}"
    return unquote(m.group(1)), unquote(m.group(2))


def parse(text: str) -> list[Node]:
    lines = text.split("\n")
    for i, line in enumerate(lines, 1):
        assert not line.startswith(" "), f"line {i}: indented with spaces"
        assert "\r" not in line and "\ufeff" not in line, f"line {i}: CR or byte-order mark"

    def depth(line: str) -> int:
        return len(line) - len(line.lstrip("\t"))

    def expression(i: int, level: int) -> tuple[str, int]:
        """The lines below line ``i - 1`` at two or more levels deeper than ``level`` (blank lines inside kept)."""
        body = []
        while i < len(lines) and (not lines[i].strip() or depth(lines[i]) >= level + 2):
            body.append(lines[i])
            i += 1
        while body and not body[-1].strip():
            body.pop()
            i -= 1
        assert body, f"line {i}: an empty expression"
        return "\n".join(b[level + 2 :] for b in body), i

    def block(i: int, level: int) -> tuple[list[Node], dict, int]:
        nodes, props, description = [], {}, []
        while i < len(lines):
            line = lines[i]
            if not line.strip():
                i += 1
                continue
            d = depth(line)
            if d < level:
                break
            assert d == level, f"line {i + 1}: indented {d}, expected {level}: {line!r}"
            text = line.strip()
            i += 1
            if text.startswith("///"):
                description.append(text[3:].strip())
                continue
            assert not text.startswith("//"), f"line {i}: TMDL has no // comments"
            word, _, rest = text.partition(" ")
            if word == "ref":  # ref table X: the order of the model's tables
                kind, _, ref_name = rest.partition(" ")
                nodes.append(Node(f"ref {kind}", unquote(ref_name)))
                continue
            if word in OBJECTS:
                head, eq, value = rest.partition(" = ")
                if not eq and rest.endswith(" ="):
                    head, eq, value = rest[:-2], " =", ""
                node = Node(word, unquote(head) if head else None, description="\n".join(description))
                description = []
                if eq and value == "" and word != "annotation":
                    node.value, i = expression(i, level)
                elif eq:
                    node.value = value
                node.children, node.props, i = block(i, level + 1)
                nodes.append(node)
                continue
            assert not description, f"line {i}: a description above a property"
            key, colon, value = text.partition(":")
            if colon:
                props[key] = value.strip()
            elif text.endswith(" ="):  # a property whose value is the expression below
                props[text[:-2]], i = expression(i, level)
            elif i < len(lines) and lines[i].strip() and depth(lines[i]) > level:  # an object without a name
                node = Node(text, None)
                node.children, node.props, i = block(i, level + 1)
                nodes.append(node)
            else:
                props[text] = True
        return nodes, props, i

    nodes, props, end = block(0, 0)
    assert not props, f"properties outside any object: {props}"
    assert end == len(lines)
    return nodes


def test_the_parser_reads_the_documented_shapes():
    text = (
        "/// Sales.\ntable 'Sales Data'\n\tlineageTag: abc\n\n\tmeasure 'It''s' =\n\t\t\tVAR x = 1\n\n\t\t\tRETURN x\n"
        "\t\tformatString: 0\n\n\tcolumn Qty\n\t\tisHidden\n\t\tdataType: int64\n\n\tpartition p = m\n\t\tmode: import\n"
        "\t\tsource =\n\t\t\t\tlet\n\t\t\t\t    a = 1\n\t\t\t\tin\n\t\t\t\t    a\n\n\tannotation A = 1\n"
    )
    [t] = parse(text)
    assert (t.kind, t.name, t.description, t.props) == ("table", "Sales Data", "Sales.", {"lineageTag": "abc"})
    measure = t.one("measure", "It's")
    assert measure.value == "VAR x = 1\n\nRETURN x" and measure.props == {"formatString": "0"}
    assert t.one("column", "Qty").props == {"isHidden": True, "dataType": "int64"}
    assert t.one("partition", "p").props["source"] == "let\n    a = 1\nin\n    a"
    assert t.one("annotation", "A").value == "1"
    for broken in ("table T\n  column c\n", "table T\n\t\tcolumn c\n", "table T\n// note\n", "\tdataType: int64\n"):
        with pytest.raises(AssertionError):
            parse(broken)


# ---- the project of the small warehouse


@dataclass
class Project:
    folder: Path  # the star schema folder
    model: dict[str, list[Node]]  # relative path of each .tmdl file -> its nodes
    tables: dict[str, Node]

    @property
    def definition(self) -> Path:
        return self.folder / f"{pbip.PROJECT}.SemanticModel" / "definition"


def read_project(folder: Path) -> Project:
    definition = folder / f"{pbip.PROJECT}.SemanticModel" / "definition"
    model = {str(p.relative_to(definition)): parse(p.read_text(encoding="utf-8")) for p in definition.rglob("*.tmdl")}
    tables = {}
    for path, nodes in model.items():
        if path.startswith("tables/"):
            [table] = nodes
            assert table.kind == "table" and path == f"tables/{table.name}.tmdl"
            tables[table.name] = table
    return Project(folder, model, tables)


@pytest.fixture(scope="module")
def project(small) -> Project:  # noqa: F811
    return read_project(small.output_dir / "powerbi")


def parquet_of(project: Project, table: str) -> str:
    """The Parquet file(s) a table's partition reads: the path in its M, resolved with the parameter's default."""
    source = project.tables[table].all("partition")[0].props["source"]
    folder = default_folder(project)
    assert 'Folder = Text.TrimEnd(CrmFolder, {"\\", "/"})' in source, source
    m = re.search(r'File\.Contents\(Folder & Sep & "([^"]+)"\)', source) or re.search(
        r'Folder\.Files\(Folder & Sep & "([^"]+)"\)', source
    )
    assert m, source
    path = Path(folder.rstrip("/\\")) / m.group(1)
    assert path.exists(), path
    return str(path / "*.parquet") if path.is_dir() else str(path)


def default_folder(project: Project) -> str:
    [expression] = project.model["expressions.tmdl"]
    assert (expression.kind, expression.name) == ("expression", pbip.PARAMETER)
    m = re.fullmatch(
        r'"((?:[^"]|"")*)" meta \[IsParameterQuery=true, Type="Text", IsParameterQueryRequired=true\]', expression.value
    )
    assert m, expression.value
    return m.group(1).replace('""', '"')


def duck(sql: str, params=None):
    con = duckdb.connect()
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


def test_every_file_parses_and_the_model_lists_every_table(project):
    assert set(project.model) >= {"database.tmdl", "model.tmdl", "expressions.tmdl", "relationships.tmdl"}
    [database] = project.model["database.tmdl"]
    assert database.kind == "database" and int(database.props["compatibilityLevel"]) >= 1550
    model, *refs = project.model["model.tmdl"]
    assert model.kind == "model" and model.props["discourageImplicitMeasures"] is True
    # auto date/time off: no hidden date table per date column
    assert model.one("annotation", "__PBI_TimeIntelligenceEnabled").value == "0"
    assert sorted(r.name for r in refs if r.kind == "ref table") == sorted(project.tables)
    assert set(project.tables) == set(json.loads(model.one("annotation", "PBI_QueryOrder").value)) - {"CrmFolder"}


def test_the_folder_is_a_parameter_whose_default_is_the_output_folder(project):
    assert default_folder(project) == str(project.folder.resolve())


def test_every_table_reads_its_parquet_file_and_every_column_is_a_column_of_it(project):
    for name, table in project.tables.items():
        [partition] = table.all("partition")
        assert partition.value == "m" and partition.props["mode"] == "import"
        parquet = parquet_of(project, name)
        schema = {c: t for c, t, *_ in duck("DESCRIBE SELECT * FROM read_parquet(?)", [parquet])}
        columns = table.all("column")
        assert [c.props["sourceColumn"] for c in columns] == list(schema), name  # all of them, in the file's order
        for c in columns:
            assert schema[c.props["sourceColumn"]] in PARQUET_TYPES[c.props["dataType"]], (name, c.name)
            assert c.description, (name, c.name)


def columns(project: Project) -> dict[tuple[str, str], Node]:
    return {(t, c.name): c for t, table in project.tables.items() for c in table.all("column")}


def test_relationships_are_many_to_one_from_the_fact_on_unique_keys(project):
    declared = columns(project)
    relationships = project.model["relationships.tmdl"]
    assert relationships and all(r.kind == "relationship" for r in relationships)
    active_to = []
    for r in relationships:
        assert "crossFilteringBehavior" not in r.props and "toCardinality" not in r.props  # single, many-to-one
        (ft, fc), (tt, tc) = split_reference(r.props["fromColumn"]), split_reference(r.props["toColumn"])
        assert ft == "fact_customer_month" and tt != ft
        from_type, to_type = declared[ft, fc].props["dataType"], declared[tt, tc].props["dataType"]
        if project.tables[tt].props.get("dataCategory") == "Time":  # the calendar: on its date key
            assert (from_type, to_type) == ("dateTime", "dateTime") and declared[tt, tc].props.get("isKey")
        else:
            assert (from_type, to_type) == ("int64", "int64"), r.props
        assert declared[ft, fc].props.get("isHidden") and declared[tt, tc].props.get("summarizeBy") == "none"
        target = parquet_of(project, tt)
        assert duck(f"SELECT count(*) = count(DISTINCT {tc}) FROM read_parquet(?)", [target]) == [(True,)]
        orphans = duck(
            f"SELECT count(*) FROM read_parquet(?) f WHERE f.{fc} IS NOT NULL"
            f" AND f.{fc} NOT IN (SELECT {tc} FROM read_parquet(?))",
            [parquet_of(project, ft), target],
        )
        assert orphans == [(0,)], r.props
        if r.props.get("isActive") != "false":
            active_to.append(tt)
    # one active path from each dimension to the fact, and every table but the fact is a dimension of it
    assert sorted(active_to) == sorted(t for t in project.tables if t != "fact_customer_month")


def test_sort_by_columns_resolve_and_sort_each_value_one_way(project):
    declared = columns(project)
    sorted_columns = 0
    for (t, name), column in declared.items():
        if "sortByColumn" not in column.props:
            continue
        by = unquote(column.props["sortByColumn"])
        assert (t, by) in declared and by != name
        ambiguous = duck(
            f"SELECT count(*) FROM (SELECT {name} FROM read_parquet(?) GROUP BY 1 HAVING count(DISTINCT {by}) > 1)",
            [parquet_of(project, t)],
        )
        assert ambiguous == [(0,)], (t, name, by)
        sorted_columns += 1
    expected = {
        ("dim_value_tier", "value_tier"),
        ("dim_date", "month_name"),
        ("dim_lifecycle_stage", "lifecycle_stage"),
    }
    assert expected <= {k for k, c in declared.items() if "sortByColumn" in c.props} and sorted_columns >= 7


def test_sort_orders_are_the_natural_ones(small, tmp_path):  # noqa: F811
    # a month in the next year too, so that a month name is in two years and a label sorted without its year shows
    later = (
        "INSERT INTO reporting.customer_snapshot SELECT * REPLACE (DATE '2025-01-01' AS report_month)"
        " FROM reporting.customer_snapshot WHERE report_month = '2024-03-01'"
    )
    project = read_project(_write(warehouse_copy(small, tmp_path, later), tmp_path / "out"))
    expected = {
        ("dim_value_tier", "value_tier"): list(TIERS),
        ("dim_lifecycle_stage", "lifecycle_stage"): list(STAGES),
        ("dim_lifecycle_event", "lifecycle_event"): list(EVENTS),
        ("dim_activity_status", "activity_status"): list(STATUSES),
        ("dim_date", "month_name"): [calendar.month_name[i] for i in range(1, 13)],
        ("dim_date", "month_short"): [calendar.month_abbr[i] for i in range(1, 13)],
        ("dim_date", "month_label"): [f"{calendar.month_abbr[m]} 2024" for m in range(1, 13)] + ["Jan 2025"],
        ("dim_date", "year_month"): [f"2024-{m:02d}" for m in range(1, 13)] + ["2025-01"],
    }
    seen = {}
    for (t, name), column in columns(project).items():
        if "sortByColumn" in column.props:
            by = unquote(column.props["sortByColumn"])
            rows = duck(f"SELECT {name} FROM read_parquet(?) GROUP BY 1 ORDER BY min({by})", [parquet_of(project, t)])
            seen[t, name] = [r[0] for r in rows]
    assert {k: v for k, v in seen.items() if k in expected} == expected


def test_keys_and_sort_orders_are_hidden_and_nothing_is_summed_implicitly(project):
    for (t, name), column in columns(project).items():
        assert column.props["summarizeBy"] == "none", (t, name)
        if name.endswith("_key") or name == "year_month_sort":
            assert column.props.get("isHidden") is True, (t, name)
    fact = project.tables["fact_customer_month"]
    hidden = {c.name for c in fact.all("column") if c.props.get("isHidden")}
    assert {"customer_id", "value_tier", "activity_status", "report_month"} <= hidden  # through the dimensions


def test_the_date_table_is_marked_and_one_day_a_row_over_every_report_month(project):
    [calendar] = [t for t in project.tables.values() if t.props.get("dataCategory") == "Time"]
    [key] = [c for c in calendar.all("column") if c.props.get("isKey")]
    assert key.props["dataType"] == "dateTime"
    days = [
        d for (d,) in duck(f"SELECT {key.name} FROM read_parquet(?) ORDER BY 1", [parquet_of(project, calendar.name)])
    ]
    months = duck(
        "SELECT min(report_month), max(report_month) FROM read_parquet(?)", [parquet_of(project, "fact_customer_month")]
    )
    first, newest = months[0]
    assert (first, newest) == (JAN, MAR)
    assert days == [date(2024, 1, 1) + timedelta(n) for n in range(31 + 29 + 31)]  # 2024 is a leap year
    attributes = duck(
        f"SELECT month_name, month_start, year_month_sort, is_latest FROM read_parquet(?) WHERE {key.name} = ?",
        [parquet_of(project, calendar.name), date(2024, 2, 29)],
    )
    assert attributes == [("February", date(2024, 2, 1), 202402, False)]


DAX_REFERENCE = re.compile(r"'((?:[^']|'')+)'\[([^\]]+)\]|\b([A-Za-z_]\w*)\[([^\]]+)\]|(?<![\w'\]])\[([^\]]+)\]")


def test_every_measure_reference_resolves_and_every_filter_value_exists(project):
    declared = columns(project)
    measures = {m.name: m for t in project.tables.values() for m in t.all("measure")}
    assert set(measures) >= {m.name for m in pbip.MEASURES} and len(measures) >= 9
    for name, measure in measures.items():
        assert measure.props.get("formatString") and measure.description, name
        refs = 0
        for quoted_table, quoted_column, table, column, bare in DAX_REFERENCE.findall(measure.value):
            refs += 1
            if bare:
                assert bare in measures, (name, bare)
                continue
            t, c = (quoted_table.replace("''", "'"), quoted_column) if quoted_table else (table, column)
            assert (t, c) in declared, (name, t, c)
        assert refs, name
        for t, c, value in re.findall(r'\b(\w+)\[(\w+)\] = "([^"]*)"', measure.value):
            present = duck(f"SELECT count(*) FROM read_parquet(?) WHERE {c} = ?", [parquet_of(project, t), value])
            assert present[0][0] >= 1, (name, t, c, value)


def test_the_json_files_parse_and_point_to_the_folders_they_name(project):
    folder = project.folder
    for path in [*folder.glob("*.pbip"), *folder.rglob("*.pbir"), *folder.rglob("*.pbism"), *folder.rglob("*.json")]:
        data = json.loads(path.read_text(encoding="utf-8"))
        assert data.get("$schema", "").startswith(pbip.SCHEMAS + "/") or "dataColors" in data, path
    entry = json.loads((folder / f"{pbip.PROJECT}.pbip").read_text())
    [artifact] = entry["artifacts"]
    report = folder / artifact["report"]["path"]
    assert report.is_dir() and (report / "definition.pbir").is_file()
    pbir = json.loads((report / "definition.pbir").read_text())
    model = (report / pbir["datasetReference"]["byPath"]["path"]).resolve()
    assert model == (folder / f"{pbip.PROJECT}.SemanticModel").resolve() and (model / "definition").is_dir()
    pbism = json.loads((model / "definition.pbism").read_text())
    assert float(pbism["version"]) >= 4.0  # TMDL under definition/
    report_json = json.loads((report / "definition" / "report.json").read_text())
    theme = report_json["themeCollection"]["customTheme"]["name"]
    colours = json.loads((report / "StaticResources" / "RegisteredResources" / theme).read_text())["dataColors"]
    assert len(colours) == len(TIERS)
    pages = json.loads((report / "definition" / "pages" / "pages.json").read_text())
    assert all((report / "definition" / "pages" / p / "page.json").is_file() for p in pages["pageOrder"])


# ---- keys


def _write(warehouse: Path, out: Path) -> Path:
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        return powerbi.write_star_schema(con, out).folder
    finally:
        con.close()


def _keys(folder: Path) -> dict[str, int]:
    return dict(duck("SELECT customer_id, customer_key FROM read_parquet(?)", [str(folder / "dim_customer.parquet")]))


def test_ids_differing_only_by_case_get_different_keys(small, tmp_path):  # noqa: F811
    rename = (
        "UPDATE {} SET customer_id = CASE customer_id WHEN '007' THEN 'c1' WHEN 'C3' THEN 'C1' ELSE customer_id END"
    )
    warehouse = warehouse_copy(
        small, tmp_path, rename.format("reporting.customer_snapshot"), rename.format("enriched.customers")
    )
    folder = _write(warehouse, tmp_path / "out")
    keys = _keys(folder)
    assert {"c1", "C1"} <= set(keys) and keys["c1"] != keys["C1"]
    # and each fact row keeps its own customer: the rows of c1 are 007's (Silver in January), C1's are C3's
    tiers = duck(
        "SELECT d.customer_id, f.value_tier FROM read_parquet(?) f JOIN read_parquet(?) d USING (customer_key)"
        " WHERE f.report_month = ? AND d.customer_id IN ('c1', 'C1')",
        [str(folder / "fact_customer_month" / "*.parquet"), str(folder / "dim_customer.parquet"), JAN],
    )
    assert sorted(tiers, key=lambda r: r[0]) == [("C1", None), ("c1", "Silver")]


def test_the_key_of_a_customer_never_changes_when_others_appear(small, tmp_path):  # noqa: F811
    out = tmp_path / "out"
    before = _keys(_write(small.warehouse, out))
    # a new customer whose id sorts before every other one, in every month
    arrive = (
        "INSERT INTO reporting.customer_snapshot SELECT * REPLACE ('!000' AS customer_id)"
        " FROM reporting.customer_snapshot WHERE customer_id = 'C4'"
    )
    after = _keys(_write(warehouse_copy(small, tmp_path, arrive), out))
    assert set(after) == set(before) | {"!000"}
    assert {c: after[c] for c in before} == before


def test_a_shared_customer_key_stops_the_refresh(small, tmp_path, monkeypatch):  # noqa: F811
    out = tmp_path / "out"
    _write(small.warehouse, out)
    before = sorted(p.name for p in (out / "powerbi").iterdir())
    monkeypatch.setattr(
        powerbi,
        "table_sql",
        lambda: {
            **powerbi.star.dimension_sql(),
            "dim_customer": powerbi.star.DIM_CUSTOMER_SQL.replace(
                powerbi.star.customer_key_sql("seen.customer_id"), "1::BIGINT"
            ),
        },
    )
    with pytest.raises(CrmError, match="share a customer_key"):
        _write(small.warehouse, out)
    assert sorted(p.name for p in (out / "powerbi").iterdir()) == before


# ---- the measures, by hand


def sql_of_measure(name: str) -> str:
    """The SQL that computes measure ``name`` over the Parquet files, for the report months ``?`` to ``?``.

    The equivalence, measure by measure: the relationships filter the fact to
    the rows whose keys are in the filtered dimension rows, so a DAX filter on
    a dimension column is a join on the key plus a WHERE on the column; the
    months of the selection are report_month BETWEEN the two parameters;
    ``VAR last_month = MAX(dim_date[month_start])`` with the CALCULATE filter
    ``fact[report_month] = last_month`` is the WHERE report_month = the newest
    month of the date selection (dim_date is filtered by the selection only:
    no dimension of the fact filters it); an event measure's DISTINCTCOUNT of
    customer_key is a count of distinct customers.
    """
    fact = "read_parquet($fact) f"
    months = "f.report_month BETWEEN $a AND $b"
    last = "f.report_month = (SELECT max(month_start) FROM read_parquet($date) WHERE date BETWEEN $a AND last_day($b))"
    status = "JOIN read_parquet($status) s USING (activity_status_key)"
    event = "JOIN read_parquet($event) e USING (lifecycle_event_key)"
    return {
        "Customers": f"SELECT count(*) FROM {fact} WHERE {months} AND {last}",
        "Active customers": f"SELECT count(*) FROM {fact} {status} WHERE {months} AND {last} AND s.activity_status = '{STATUSES[0]}'",
        "Active share": f"""SELECT (SELECT count(*) FROM {fact} {status} WHERE {months} AND {last} AND s.activity_status = '{STATUSES[0]}')
            / nullif((SELECT count(*) FROM {fact} WHERE {months} AND {last}), 0)""",
        "Units (month)": f"SELECT sum(m1) FROM {fact} WHERE {months}",
        "Units 12 m": f"SELECT sum(m12) FROM {fact} WHERE {months} AND {last}",
        "Customers by tier": f"SELECT count(*) FROM {fact} WHERE {months} AND {last} AND f.value_tier_key IS NOT NULL",
        **{
            f"{e} customers": f"SELECT count(DISTINCT f.customer_key) FROM {fact} {event} WHERE {months} AND e.lifecycle_event = '{e}'"
            for e in EVENTS
        },
    }[name]


# The DAX each SQL above stands for: a measure written otherwise fails here, and its SQL is written again.
DAX = {
    "Customers": "VAR last_month = MAX ( dim_date[month_start] )\n"
    "RETURN CALCULATE ( COUNTROWS ( fact_customer_month ), fact_customer_month[report_month] = last_month )",
    "Active customers": "VAR last_month = MAX ( dim_date[month_start] )\n"
    "RETURN CALCULATE ( COUNTROWS ( fact_customer_month ), fact_customer_month[report_month] = last_month,"
    ' KEEPFILTERS ( dim_activity_status[activity_status] = "Active" ) )',
    "Active share": "DIVIDE ( [Active customers], [Customers] )",
    "Units (month)": "SUM ( fact_customer_month[m1] )",
    "Units 12 m": "VAR last_month = MAX ( dim_date[month_start] )\n"
    "RETURN CALCULATE ( SUM ( fact_customer_month[m12] ), fact_customer_month[report_month] = last_month )",
    "Customers by tier": "VAR last_month = MAX ( dim_date[month_start] )\n"
    "RETURN CALCULATE ( COUNTROWS ( fact_customer_month ), fact_customer_month[report_month] = last_month,"
    " KEEPFILTERS ( NOT ISBLANK ( fact_customer_month[value_tier_key] ) ) )",
    **{
        f"{e} customers": "CALCULATE ( DISTINCTCOUNT ( fact_customer_month[customer_key] ),"
        f' KEEPFILTERS ( dim_lifecycle_event[lifecycle_event] = "{e}" ) )'
        for e in EVENTS
    },
}

# Worked out from the fixture (test_views' table), plus one Lost and one Reactivated event set by hand: P1 is
# 10 units, so 007 bought 1,000 units in January, 500 in February, 100 in March; 7 30 in January; C3 2,000 in
# February. Active: 007 and 7 from January, C3 from February; tiers in March: 007 Gold, 7 Bronze, C3 Gold.
EVENTS_SET = (
    "UPDATE reporting.customer_snapshot SET lifecycle_event = 'Lost' WHERE customer_id = 'C4' AND report_month = '2024-02-01'",
    "UPDATE reporting.customer_snapshot SET lifecycle_event = 'Reactivated' WHERE customer_id = 'C5' AND report_month = '2024-03-01'",
)
BY_HAND = {
    # measure: (January alone, January to March)
    "Customers": (5, 5),
    "Active customers": (2, 3),
    "Active share": (0.4, 0.6),
    "Units (month)": (1030, 3630),
    "Units 12 m": (1030, 3630),  # in March: 007 1,600, 7 30, C3 2,000
    "Customers by tier": (2, 3),
    "New customers": (2, 3),
    "Lost customers": (0, 1),
    "Reactivated customers": (0, 1),
}


def test_the_measures_compute_what_they_say(small, tmp_path):  # noqa: F811
    folder = _write(warehouse_copy(small, tmp_path, *EVENTS_SET), tmp_path / "out")
    project = read_project(folder)
    measures = {m.name: m for m in project.tables["fact_customer_month"].all("measure")}
    assert {name: m.value for name, m in measures.items()} == DAX
    files = {
        "fact": str(folder / "fact_customer_month" / "*.parquet"),
        "status": str(folder / "dim_activity_status.parquet"),
        "event": str(folder / "dim_lifecycle_event.parquet"),
        "date": str(folder / "dim_date.parquet"),
    }
    con = duckdb.connect()
    try:
        for name, (january, quarter) in BY_HAND.items():
            for (a, b), expected in (((JAN, JAN), january), ((JAN, MAR), quarter)):
                sql = sql_of_measure(name)
                params = {k: v for k, v in {**files, "a": a, "b": b}.items() if f"${k}" in sql}
                value = con.execute(sql, params).fetchone()[0]
                assert value == pytest.approx(expected), (name, a, b)
        # by tier: Customers by tier with dim_value_tier on rows, January to March selected. Each row takes the
        # newest month of the selection (March), not the newest month of its own tier: 007, Silver in January
        # and Gold in March, is counted once, under Gold, and Silver has no row.
        sql = sql_of_measure("Customers by tier").replace("SELECT count(*)", "SELECT t.value_tier, count(*)")
        sql = sql.replace(
            "FROM read_parquet($fact) f", "FROM read_parquet($fact) f JOIN read_parquet($tier) t USING (value_tier_key)"
        )
        by_tier = con.execute(
            sql + " GROUP BY 1 ORDER BY 1",
            {
                "fact": files["fact"],
                "date": files["date"],
                "tier": str(folder / "dim_value_tier.parquet"),
                "a": JAN,
                "b": MAR,
            },
        ).fetchall()
    finally:
        con.close()
    assert by_tier == [("Bronze", 1), ("Gold", 2)]
