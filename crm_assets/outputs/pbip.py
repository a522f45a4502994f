"""The Power BI project (PBIP) of the star schema, written into the Parquet set so that Power BI opens it ready.

| path (under ``<output>/powerbi/``) | |
|---|---|
| ``CRM.pbip`` | the file to open: points to the report |
| ``CRM.SemanticModel/definition.pbism`` | the model's format version |
| ``CRM.SemanticModel/definition/*.tmdl`` | the model in TMDL: database, model (settings, table order), expressions (the ``CrmFolder`` parameter), relationships |
| ``CRM.SemanticModel/definition/tables/<table>.tmdl`` | one per table: columns, measures (the fact), the Power Query partition |
| ``CRM.Report/definition.pbir`` | the report, bound to the model by relative path |
| ``CRM.Report/definition/`` | one blank page, the tier colours as the report theme |

Every table, column, type, description, hidden column, sort-by column and
relationship comes from the declarations of ``star.py``, the ones the
Parquet files are written from; only the measures are written here. Names
(lineage tags, relationship names) are derived from the objects' names, so a
refresh that changes nothing writes the same files.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass
from pathlib import Path

from crm_assets.core.errors import CrmError
from crm_assets.core.rules import EVENTS, STATUSES
from crm_assets.outputs import star
from crm_assets.outputs.style import TIER_COLOURS

PROJECT = "CRM"
PARAMETER = "CrmFolder"
SCHEMAS = "https://developer.microsoft.com/json-schemas/fabric"
_TAGS = uuid.UUID("6f1c3a52-0d7e-4c1b-9a63-2b8f4e0c7d15")  # the namespace of every lineage tag of the project

# DuckDB type of a contract -> TMDL dataType of the column Power Query reads from the Parquet file
DATA_TYPES = {
    "BIGINT": "int64",
    "INTEGER": "int64",
    "DOUBLE": "double",
    "VARCHAR": "string",
    "DATE": "dateTime",
    "BOOLEAN": "boolean",
}
FORMATS = {"int64": "0", "double": "#,0.00", "dateTime": "yyyy-mm-dd"}
COUNT = "#,0"


@dataclass(frozen=True)
class Measure:
    name: str
    expression: str  # DAX
    format_string: str
    description: str


F = star.FACT
ACTIVE = STATUSES[0]
NEW, LOST, REACTIVATED = EVENTS


def _at_last_month(expression: str, *filters: str) -> str:
    """``expression`` in the newest report month of the date selection: a customer is counted once, not once a month.

    The month is read from dim_date, which no other dimension filters (every relationship runs one way, from the
    fact): a visual's row for Silver gets the same month as its row for Gold, not the newest month with a Silver
    customer. The fact's own report_month is hidden, so a month is selected through dim_date."""
    args = ", ".join((expression, f"{F}[report_month] = last_month", *filters))
    return f"VAR last_month = MAX ( {star.DATE}[month_start] )\nRETURN CALCULATE ( {args} )"


def _event(event: str) -> str:
    """Customers with ``event`` in a month of the selection, each once however many times it happened to them."""
    return (
        f"CALCULATE ( DISTINCTCOUNT ( {F}[customer_key] ), "
        f'KEEPFILTERS ( dim_lifecycle_event[lifecycle_event] = "{event}" ) )'
    )


MEASURES = (
    Measure(
        "Customers",
        _at_last_month(f"COUNTROWS ( {F} )"),
        COUNT,
        "Customers in the newest report month of the selection (a customer once, however many months are selected).",
    ),
    Measure(
        "Active customers",
        _at_last_month(f"COUNTROWS ( {F} )", f'KEEPFILTERS ( dim_activity_status[activity_status] = "{ACTIVE}" )'),
        COUNT,
        "Customers Active (units in the last 12 months) in the newest report month of the selection.",
    ),
    Measure(
        "Active share",
        "DIVIDE ( [Active customers], [Customers] )",
        "0.0%",
        "Active customers / Customers, in the newest report month of the selection.",
    ),
    Measure(
        "Units (month)",
        f"SUM ( {F}[m1] )",
        "#,0.00",
        "Units bought in the report months of the selection (the sum of m1 over them).",
    ),
    Measure(
        "Units 12 m",
        _at_last_month(f"SUM ( {F}[m12] )"),
        "#,0.00",
        "Units bought in the 12 months ending with the newest report month of the selection (m12).",
    ),
    Measure(
        "Customers by tier",
        _at_last_month(f"COUNTROWS ( {F} )", f"KEEPFILTERS ( NOT ISBLANK ( {F}[value_tier_key] ) )"),
        COUNT,
        "Customers with a value tier in the newest report month of the selection; by tier with dim_value_tier.",
    ),
    Measure(
        "New customers",
        _event(NEW),
        COUNT,
        "Customers whose first-ever consumable purchase is in a report month of the selection (event New).",
    ),
    Measure(
        "Lost customers",
        _event(LOST),
        COUNT,
        "Customers whose last purchase left the 12-month window in a report month of the selection (event Lost).",
    ),
    Measure(
        "Reactivated customers",
        _event(REACTIVATED),
        COUNT,
        "Customers buying again after 12 or more silent months, in a report month of the selection.",
    ),
)


def name(text: str) -> str:
    """A TMDL object name: as is when it is a plain identifier, else in single quotes (a quote doubled)."""
    return text if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", text) else "'" + text.replace("'", "''") + "'"


def _tag(*parts: str) -> str:
    return str(uuid.uuid5(_TAGS, "/".join(parts)))


def _description(text: str, indent: str) -> list[str]:
    return [f"{indent}/// {line}" for line in text.splitlines()]


def _expression(text: str, indent: str) -> list[str]:
    """A default property's value: on the line itself when it is one line, else on the lines below, one level in."""
    return [f"{indent}{line}" if line else "" for line in text.splitlines()]


def m_string(text: str) -> str:
    """An M text literal (``"`` doubled, ``#(`` escaped so that it is not read as a character escape)."""
    return '"' + text.replace('"', '""').replace("#(", "#(#)(") + '"'


# The folder as the parameter gives it, with the separator it uses: a folder written on Linux and opened on
# Windows (or the reverse) gets paths of one kind, and a trailing separator is not doubled.
_FOLDER_M = [
    f'    Folder = Text.TrimEnd({PARAMETER}, {{"\\", "/"}}),',
    '    Sep = if Text.Contains(Folder, "\\") then "\\" else "/",',
]


def _partition_m(table: star.StarTable) -> str:
    if table.name == star.FACT:  # a folder of monthly files: every Parquet file of it, combined
        return "\n".join(
            [
                "let",
                *_FOLDER_M,
                f"    Files = Folder.Files(Folder & Sep & {m_string(star.FACT)}),",
                '    ParquetFiles = Table.SelectRows(Files, each Text.Lower([Extension]) = ".parquet"'
                ' and not Text.StartsWith([Name], ".")),',
                "    Months = List.Transform(ParquetFiles[Content], each Parquet.Document(_)),",
                "    Result = Table.Combine(Months)",
                "in",
                "    Result",
            ]
        )
    return "\n".join(
        [
            "let",
            *_FOLDER_M,
            f"    Source = Parquet.Document(File.Contents(Folder & Sep & {m_string(table.name + '.parquet')}))",
            "in",
            "    Source",
        ]
    )


def table_tmdl(table: star.StarTable) -> str:
    lines = [*_description(table.contract.description, ""), f"table {name(table.name)}"]
    lines.append(f"\tlineageTag: {_tag(table.name)}")
    if table.is_date_table:
        lines.append("\tdataCategory: Time")
    if table.name == star.FACT:
        for m in MEASURES:
            lines += ["", *_description(m.description, "\t")]
            if "\n" in m.expression:
                lines += [f"\tmeasure {name(m.name)} =", *_expression(m.expression, "\t\t\t")]
            else:
                lines.append(f"\tmeasure {name(m.name)} = {m.expression}")
            lines += [f"\t\tformatString: {m.format_string}", f"\t\tlineageTag: {_tag(table.name, m.name)}"]
    for c in table.contract.columns:
        data_type = DATA_TYPES.get(c.type)
        if data_type is None:
            raise ValueError(f"{table.name}.{c.name}: no Power BI type for {c.type}")
        lines += ["", *_description(c.description, "\t"), f"\tcolumn {name(c.name)}", f"\t\tdataType: {data_type}"]
        if c.name in table.hidden:
            lines.append("\t\tisHidden")
        if table.is_date_table and c.name == table.key:
            lines.append("\t\tisKey")
        if data_type in FORMATS:
            lines.append(f"\t\tformatString: {FORMATS[data_type]}")
        lines.append(f"\t\tlineageTag: {_tag(table.name, c.name)}")
        # every figure goes through a measure: a snapshot row summed over months would count a customer twice
        lines.append("\t\tsummarizeBy: none")
        lines.append(f"\t\tsourceColumn: {c.name}")
        if c.name in table.sort_by:
            lines.append(f"\t\tsortByColumn: {name(table.sort_by[c.name])}")
        lines += ["", "\t\tannotation SummarizationSetBy = User"]
    lines += [
        "",
        f"\tpartition {name(table.name)} = m",
        "\t\tmode: import",
        "\t\tsource =",
        *_expression(_partition_m(table), "\t\t\t\t"),
        "",
        "\tannotation PBI_ResultType = Table",
    ]
    return "\n".join(lines) + "\n"


def relationships_tmdl() -> str:
    lines = []
    for r in star.RELATIONSHIPS:
        lines.append(f"relationship {_tag('relationship', r.from_column, r.to_table)}")
        if not r.active:
            lines.append("\tisActive: false")
        lines += [
            f"\tfromColumn: {name(star.FACT)}.{name(r.from_column)}",
            f"\ttoColumn: {name(r.to_table)}.{name(r.to_column)}",
            "",
        ]
    return "\n".join(lines)


def expressions_tmdl(folder: str) -> str:
    if "\n" in folder or "\r" in folder:
        raise CrmError(f"{folder!r}: a Power BI folder parameter cannot hold a line break")
    return "\n".join(
        [
            "/// The folder of the star schema (the Parquet files). Set it when the folder moved: Transform data >",
            "/// Edit parameters, then Refresh.",
            f"expression {PARAMETER} = {m_string(folder)}"
            ' meta [IsParameterQuery=true, Type="Text", IsParameterQueryRequired=true]',
            f"\tlineageTag: {_tag('expression', PARAMETER)}",
            "",
            "\tannotation PBI_ResultType = Text",
            "",
        ]
    )


def model_tmdl() -> str:
    order = json.dumps([PARAMETER, *star.MODEL_TABLES], separators=(",", ":"))
    return "\n".join(
        [
            "model Model",
            "\tculture: en-US",
            "\tdefaultPowerBIDataSourceVersion: powerBI_V3",
            "\tdiscourageImplicitMeasures",
            "\tsourceQueryCulture: en-US",
            "\tdataAccessOptions",
            "\t\tlegacyRedirects",
            "\t\treturnErrorValuesAsNull",
            "",
            # no auto date/time: dim_date is the calendar, and hidden date tables per date column only cost memory
            "\tannotation __PBI_TimeIntelligenceEnabled = 0",
            "",
            f"\tannotation PBI_QueryOrder = {order}",
            "",
            *(f"ref table {name(t)}" for t in star.MODEL_TABLES),
            "",
        ]
    )


def _theme() -> dict:
    # The tiers' colours in the tiers' order. Power BI gives a theme's colours to series by position, not by
    # value: a visual with the tier as its legend (series), sorted by tier and showing all six, draws Gold in
    # gold; a tier missing from the visual shifts the colours after it (docs/powerbi.md says how to pin them).
    return {"name": f"{PROJECT} tiers", "dataColors": [f"#{c}" for c in TIER_COLOURS.values()]}


THEME_FILE = f"{PROJECT}_theme.json"


def files(folder: str) -> dict[str, str]:
    """Every file of the project, by path relative to the star schema folder, for the data in ``folder``."""
    model = f"{PROJECT}.SemanticModel"
    report = f"{PROJECT}.Report"

    def js(value: dict) -> str:
        return json.dumps(value, indent=2) + "\n"

    out = {
        f"{PROJECT}.pbip": js(
            {
                "$schema": f"{SCHEMAS}/pbip/pbipProperties/1.0.0/schema.json",
                "version": "1.0",
                "artifacts": [{"report": {"path": report}}],
                "settings": {"enableAutoRecovery": True},
            }
        ),
        f"{model}/definition.pbism": js(
            {
                "$schema": f"{SCHEMAS}/item/semanticModel/definitionProperties/1.0.0/schema.json",
                "version": "4.0",
                "settings": {},
            }
        ),
        f"{model}/definition/database.tmdl": f"database {PROJECT}\n\tcompatibilityLevel: 1567\n",
        f"{model}/definition/model.tmdl": model_tmdl(),
        f"{model}/definition/expressions.tmdl": expressions_tmdl(folder),
        f"{model}/definition/relationships.tmdl": relationships_tmdl(),
        **{f"{model}/definition/tables/{t}.tmdl": table_tmdl(star.TABLES[t]) for t in star.MODEL_TABLES},
        f"{report}/definition.pbir": js(
            {
                "$schema": f"{SCHEMAS}/item/report/definitionProperties/2.0.0/schema.json",
                "version": "4.0",
                "datasetReference": {"byPath": {"path": f"../{model}"}},
            }
        ),
        f"{report}/definition/version.json": js(
            {"$schema": f"{SCHEMAS}/item/report/definition/versionMetadata/1.0.0/schema.json", "version": "2.0.0"}
        ),
        f"{report}/definition/report.json": js(
            {
                "$schema": f"{SCHEMAS}/item/report/definition/report/1.0.0/schema.json",
                "themeCollection": {
                    "customTheme": {"name": THEME_FILE, "reportVersionAtImport": "5.55", "type": "RegisteredResources"}
                },
                "layoutOptimization": "None",
                "resourcePackages": [
                    {
                        "name": "RegisteredResources",
                        "type": "RegisteredResources",
                        "items": [{"name": THEME_FILE, "path": THEME_FILE, "type": "CustomTheme"}],
                    }
                ],
            }
        ),
        f"{report}/StaticResources/RegisteredResources/{THEME_FILE}": js(_theme()),
        f"{report}/definition/pages/pages.json": js(
            {
                "$schema": f"{SCHEMAS}/item/report/definition/pagesMetadata/1.0.0/schema.json",
                "pageOrder": ["overview"],
                "activePageName": "overview",
            }
        ),
        f"{report}/definition/pages/overview/page.json": js(
            {
                "$schema": f"{SCHEMAS}/item/report/definition/page/1.0.0/schema.json",
                "name": "overview",
                "displayName": "Overview",
                "displayOption": "FitToPage",
                "height": 720,
                "width": 1280,
            }
        ),
    }
    return out


def write_project(staging: Path, folder: Path) -> list[Path]:
    """Write the project into the staging folder of a set whose final place is ``folder`` (the parameter's default).

    Nothing is written in place: the set, project included, replaces the previous one in one step.
    """
    written = []
    for relative, text in files(str(folder.resolve())).items():
        path = staging / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        # UTF-8 without a byte-order mark and with LF line ends, as Power BI Desktop reads them
        path.write_bytes(text.encode("utf-8"))
        written.append(path)
    return written
