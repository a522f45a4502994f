"""``crm report`` and ``crm export``: the output commands of the CLI.

``add_output_commands`` adds their subparsers; ``OUTPUT_COMMANDS`` maps each
command name to its handler ``(args) -> exit code``. Both read the warehouse
read-only (``crm export`` opens it read-write only for the instant of its
audit record).
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from pathlib import Path

import duckdb

from crm_assets.cli.arguments import month_arg
from crm_assets.core import settings
from crm_assets.core.errors import CrmError, damaged_file, no_space_left
from crm_assets.core.months import key_to_date

FILTER_HELP = {
    "tier": "value tier: Diamond, Platinum, Gold, Silver, Bronze, Passive",
    "stage": "lifecycle stage: Prospect, New, Active, 'At Risk', Lost",
    "event": "lifecycle event of the month: New, Lost, Reactivated",
    "status": "activity status: Active, 'Not Active'",
    "group": "customer group (values of the month)",
    "city": "city (values of the month)",
    "store": "customers with a transaction line at the store, dated up to the end of the month",
}


# crm report --format: the file name's ending of each
REPORT_FORMATS = ("xlsx", "html")


def add_output_commands(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    """Add the output subcommands to the ``crm`` parser."""
    report = sub.add_parser(
        "report",
        parents=[common],
        help="write the monthly summary: the Excel workbook or the HTML page",
        description="Write the summary of one month (docs/outputs.md) from the warehouse, read-only: the Excel "
        "workbook (--format xlsx, the default) or one self-contained HTML page (--format html).",
    )
    report.add_argument("--month", required=True, type=month_arg, help="report month YYYY-MM")
    report.add_argument(
        "--format",
        choices=REPORT_FORMATS,
        default="xlsx",
        help="xlsx: the Excel workbook (default); html: the web page, readable on a phone and printable",
    )
    report.add_argument(
        "--out",
        type=Path,
        default=None,
        help=f"file .xlsx or .html, as --format says (default ${settings.ENV_OUTPUT_DIR}/reports/crm_summary_YYYY-MM.xlsx "
        "or .html)",
    )
    report.add_argument("--warehouse", type=Path, default=None, help=f"DuckDB file (default ${settings.ENV_WAREHOUSE})")

    export = sub.add_parser(
        "export",
        parents=[common],
        help="write a filtered customer list (.csv or .xlsx) for a campaign",
        description=(
            "Write the customers of one month that pass every filter given. Each filter is repeatable or "
            "comma-separated; values of one filter are OR-ed, different filters AND-ed. Contact data only "
            "where consented; every export is recorded in reporting.export_audit (docs/outputs.md)."
        ),
    )
    export.add_argument("--month", required=True, type=month_arg, help="report month YYYY-MM")
    for name, text in FILTER_HELP.items():
        export.add_argument(f"--{name}", action="append", default=None, metavar="VALUE", help=text)
    export.add_argument(
        "--consent",
        action="append",
        default=None,
        metavar="CHANNEL",
        help="email, sms, phone: keep customers who consented to at least one of them",
    )
    export.add_argument(
        "--out", required=True, type=Path, help="output file, .csv (UTF-8 with BOM) or .xlsx; an existing file: --force"
    )
    export.add_argument(
        "--force", action="store_true", help="replace the --out file when it exists (else: exit 2, nothing written)"
    )
    export.add_argument(
        "--allow-empty",
        action="store_true",
        help="write the list even when no customer matches (else: exit 2, nothing written)",
    )
    export.add_argument(
        "--explain",
        action="store_true",
        help="add a tier_explanation column: the value tier's rule that matched and the one above that did not",
    )
    export.add_argument("--warehouse", type=Path, default=None, help=f"DuckDB file (default ${settings.ENV_WAREHOUSE})")

    explain = sub.add_parser(
        "explain",
        parents=[common],
        help="say why a customer has its status, tier, stage, event and scores in a month",
        description="Print a customer's figures for one month and, for each rule, the branch that matched and the "
        "one just above it that did not, with the numbers and the thresholds the month was computed with "
        "(docs/outputs.md). Reads the warehouse read-only.",
    )
    explain.add_argument("--month", required=True, type=month_arg, help="report month YYYY-MM")
    explain.add_argument("--customer", required=True, metavar="ID", help="customer id, as in the customer master")
    explain.add_argument(
        "--warehouse", type=Path, default=None, help=f"DuckDB file (default ${settings.ENV_WAREHOUSE})"
    )

    sql = sub.add_parser(
        "sql",
        parents=[common],
        help="run a read-only SQL query on the warehouse and print the result",
        description="Run one SQL query on the warehouse, read-only (docs/warehouse.md lists the tables), "
        "and print the result as a table; --csv prints CSV instead. The query reads the warehouse only: no other "
        "file is read or written (COPY, read_csv, read_text, ATTACH ... are refused).",
    )
    sql.add_argument(
        "query",
        help='the SQL query, e.g. "SELECT value_tier, count(*) FROM reporting.customer_snapshot '
        "WHERE report_month = '2025-12-01' GROUP BY 1\"",
    )
    sql.add_argument("--csv", action="store_true", help="print CSV (with a header row) instead of a table")
    sql.add_argument("--max-rows", type=int, default=40, help="rows shown in the table (default 40; --csv prints all)")
    sql.add_argument("--warehouse", type=Path, default=None, help=f"DuckDB file (default ${settings.ENV_WAREHOUSE})")


def _warehouse(args: argparse.Namespace):
    from crm_assets.engines.selection import warehouse  # noqa: PLC0415  (Dagster: 1.4 s more for `crm --help`)

    if args.warehouse is not None:
        return warehouse(database=str(args.warehouse.resolve()))
    return warehouse()


def cmd_report(args: argparse.Namespace) -> int:
    from crm_assets.outputs.workbook import build_workbook, workbook_path  # noqa: PLC0415  (Dagster: 1.4 s more for `crm --help`)

    month = key_to_date(args.month)
    if args.format == "html":
        return _html_report(args, month)
    out = args.out if args.out is not None else workbook_path(settings.output_dir(), month)
    if out.suffix.lower() != ".xlsx":
        raise CrmError(f"--out {out}: the workbook file name must end with .xlsx")
    started = time.perf_counter()
    with _warehouse(args).connect(read_only=True) as con:
        summary = build_workbook(con, month, out)
    sheets = ", ".join(title for title, _ in summary.customer_sheets)
    print(
        f"crm report: wrote {summary.path} ({summary.customers:,} customers on {sheets}; "
        f"{len(summary.sheets)} sheets) in {time.perf_counter() - started:.1f} s"
    )
    return 0


def _html_report(args: argparse.Namespace, month) -> int:
    from crm_assets.outputs.html_report import build_html_report, html_path  # noqa: PLC0415  (Dagster: 1.4 s more for `crm --help`)

    out = args.out if args.out is not None else html_path(settings.output_dir(), month)
    if out.suffix.lower() != ".html":
        raise CrmError(f"--out {out}: the HTML report's file name must end with .html")
    started = time.perf_counter()
    with _warehouse(args).connect(read_only=True) as con:
        summary = build_html_report(con, month, out)
    print(
        f"crm report: wrote {summary.path} ({summary.customers:,} customers; {len(summary.sections)} sections, "
        f"{summary.charts} charts; {summary.bytes:,} bytes) in {time.perf_counter() - started:.1f} s"
    )
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from crm_assets.outputs.exports import describe_filters, export_customers  # noqa: PLC0415  (Dagster: 1.4 s more for `crm --help`)

    started = time.perf_counter()
    filters = {name: getattr(args, name) for name in FILTER_HELP if getattr(args, name)}
    result = export_customers(
        _warehouse(args),
        key_to_date(args.month),
        args.out,
        filters,
        args.consent,
        allow_empty=args.allow_empty,
        explain=args.explain,
        replace=args.force,
    )
    print(
        f"crm export: wrote {result.rows:,} customers of {result.month:%Y-%m} to {result.path}"
        f" ({describe_filters(result.filters, result.consent)}) in {time.perf_counter() - started:.1f} s"
    )
    return 0


def cmd_explain(args: argparse.Namespace) -> int:
    from crm_assets.outputs.explain import explain_customer  # noqa: PLC0415  (Dagster: 1.4 s more for `crm --help`)

    for line in explain_customer(_warehouse(args), key_to_date(args.month), args.customer):
        print(line)
    return 0


# statements that write files: refused by crm sql before DuckDB sees them
SQL_WRITES = {"COPY": "COPY writes a file", "EXPORT": "EXPORT DATABASE writes files"}


def cmd_sql(args: argparse.Namespace) -> int:
    try:
        statements = duckdb.extract_statements(args.query)
    except duckdb.Error as exc:
        raise CrmError(str(exc).strip().splitlines()[0]) from None
    for statement in statements:
        what = SQL_WRITES.get(statement.type.name)
        if what is not None:
            raise CrmError(f"{what}; crm sql only reads the warehouse (write a list with crm export)")
    warehouse = _warehouse(args)
    with warehouse.connect(read_only=True) as con:
        try:
            warehouse_only(con, warehouse)
            relation = con.sql(args.query)
            if relation is None:
                return 0
            if args.csv:
                writer = csv.writer(sys.stdout)
                writer.writerow(relation.columns)
                writer.writerows(relation.fetchall())
            else:
                relation.show(max_rows=args.max_rows, max_width=200)
        except duckdb.PermissionException as exc:
            first = str(exc).strip().splitlines()[0]
            raise CrmError(f"{first} (crm sql reads the warehouse only, no other file)") from None
        except duckdb.Error as exc:
            if damaged_file(exc) is not None or no_space_left(exc) is not None:
                raise  # a damaged warehouse, a full disk: main says so
            raise CrmError(str(exc).strip().splitlines()[0]) from None
    return 0


def warehouse_only(con, warehouse) -> None:
    """Shut ``con`` off from every file but the warehouse, for good: DuckDB's ``enable_external_access`` off (no
    COPY TO, read_csv, read_text, glob, ATTACH, INSTALL of a path) and the configuration locked, so that a query
    cannot turn it back on. On the Spark engine the connection's views read the Spark warehouse's Parquet files:
    those files, and only they, stay readable (``allowed_paths``)."""
    paths = warehouse.reader_files()
    if paths:
        con.execute("SET allowed_paths = ?", [paths])
    con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")


OUTPUT_COMMANDS: dict = {"report": cmd_report, "export": cmd_export, "explain": cmd_explain, "sql": cmd_sql}
