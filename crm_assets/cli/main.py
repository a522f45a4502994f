"""The ``crm`` command line: generate a sample, run the pipeline through Dagster.

Exit codes: 0 success; 2 a user error (bad argument, bad or missing input
file, unwritable or locked path, a removal not allowed), printed as one line
``crm <command>: <reason>``; 1 anything else (a failed blocking check, an
internal error), also one line. ``--verbose`` adds the traceback and
Dagster's own log.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
import traceback
import warnings
from pathlib import Path

from crm_assets.cli.arguments import month_arg, month_or_last, positive_int
from crm_assets.cli.outputs import add_output_commands
from crm_assets.core import settings
from crm_assets.core.errors import CrmError

EXIT_USER_ERROR = 2
EXIT_RUN_FAILED = 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="crm", description="CRM analytics over a DuckDB warehouse, run by Dagster.")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--verbose", action="store_true", help="show tracebacks and Dagster's log")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    gen = sub.add_parser(
        "generate",
        parents=[common],
        help="write a deterministic synthetic data set in the input format",
        description="Write a synthetic data set (customer and product masters, one transactions file per year) in the "
        "input format of docs/input_files.md: the same options always give the same bytes.",
    )
    gen.add_argument("--out", required=True, type=Path, help="folder to write the CSV files to")
    gen.add_argument("--customers", type=positive_int, default=None, help="number of customers (default 2000)")
    gen.add_argument("--seed", type=int, default=None, help="random seed (default 42)")
    gen.add_argument("--start", type=month_arg, default=None, help="first month YYYY-MM (default 2021-01)")
    gen.add_argument(
        "--end",
        type=month_or_last,
        default=None,
        help="last month YYYY-MM, or last: the last complete month (default 2025-12)",
    )

    run = sub.add_parser(
        "run",
        parents=[common],
        help="materialize every asset for a range of months through Dagster",
        description="Load the files of the input folder and build every layer, the workbooks and the Power BI files "
        "for a range of months, as one Dagster run recorded in DAGSTER_HOME (the UI shows it). Default "
        "range: every month of the data. Prints a line per asset and a summary; exit codes in "
        "docs/configuration.md.",
    )
    run.add_argument(
        "--input", type=Path, default=None, help=f"input folder (default ${settings.ENV_INPUT_DIR} or data/input)"
    )
    run.add_argument("--warehouse", type=Path, default=None, help=f"DuckDB file (default ${settings.ENV_WAREHOUSE})")
    run.add_argument(
        "--from",
        dest="from_month",
        type=month_arg,
        default=None,
        help="first month YYYY-MM (default: earliest transaction)",
    )
    run.add_argument(
        "--to", dest="to_month", type=month_arg, default=None, help="last month YYYY-MM (default: latest transaction)"
    )
    run.add_argument("--quiet", action="store_true", help="print nothing but errors (for scripts)")
    run.add_argument(
        "--allow-removals",
        action="store_true",
        help="accept that a transactions file disappeared or lost more than half of its rows: remove those rows "
        "and recompute every month from the first one affected",
    )
    add_output_commands(sub, common)
    return parser


def cmd_generate(args: argparse.Namespace) -> int:
    from crm_assets.cli import generate

    kwargs = {}
    if args.customers is not None:
        kwargs["customers"] = args.customers
    if args.seed is not None:
        kwargs["seed"] = args.seed
    if args.start is not None:
        kwargs["start"] = args.start[:7]
    if args.end is not None:
        kwargs["end"] = args.end[:7]
    started = time.perf_counter()
    try:
        summary = generate.generate(args.out, **kwargs)
    except ValueError as exc:
        raise CrmError(str(exc)) from None
    lines = sum(summary.get("lines", {}).values()) if isinstance(summary.get("lines"), dict) else None
    print(
        f"crm generate: wrote {len(summary.get('files', []))} files to {args.out}"
        + (f" ({lines:,} lines)" if lines is not None else "")
        + f" in {time.perf_counter() - started:.1f} s"
    )
    return 0


def _apply_path_options(args: argparse.Namespace) -> None:
    """Command-line options override the environment, for this process and Dagster's."""
    if getattr(args, "input", None) is not None:
        os.environ[settings.ENV_INPUT_DIR] = str(args.input.resolve())
    if getattr(args, "warehouse", None) is not None:
        os.environ[settings.ENV_WAREHOUSE] = str(args.warehouse.resolve())
    settings.input_encoding()  # an unknown CRM_INPUT_ENCODING is a user error before anything starts
    os.environ["DAGSTER_HOME"] = str(settings.prepare_dagster_home())


def _check_writable_folder(folder: Path, what: str) -> None:
    """A folder the run will write to exists or can be made, and takes a file: else a user error now, not mid-run."""
    import tempfile

    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".crm-write-test-"):
            pass
    except OSError as exc:
        raise CrmError(f"{folder}: cannot write {what} there ({exc.strerror or exc})") from None


def cmd_run(args: argparse.Namespace) -> int:
    _apply_path_options(args)
    from crm_assets.cli import runner

    _check_writable_folder(settings.output_dir(), f"the outputs (${settings.ENV_OUTPUT_DIR})")
    from crm_assets.core.resources import Warehouse

    Warehouse().on_spark  # noqa: B018  (a CRM_ENGINE that is no engine: one line now, not one per asset of the run)

    started = time.perf_counter()
    months = runner.resolve_months(args.from_month, args.to_month, settings.input_dir(), args.allow_removals)
    say = (lambda *_: None) if args.quiet else print
    for note in months.notes:
        say(f"crm run: {note}")
    say(
        f"crm run: {months.first[:7]}..{months.last[:7]} ({len(months.keys)} months) from {settings.input_dir()} "
        f"into {settings.warehouse_path()}"
    )
    outcome = runner.run_pipeline(months, verbose=args.verbose, allow_removals=args.allow_removals, quiet=args.quiet)
    elapsed = time.perf_counter() - started
    span = f"{outcome.first_month[:7]}..{outcome.last_month[:7]} ({outcome.months} months)"
    if outcome.success:
        say(f"crm run: materialized {outcome.assets} assets for {span} in {elapsed:.1f} s (run {outcome.run_id})")
        if not args.quiet:
            _print_summary(outcome)
        return 0
    for failure in outcome.failures or ["failed"]:
        print(f"crm run: {failure} (run {outcome.run_id[:8]}, {span})", file=sys.stderr)
    return EXIT_USER_ERROR if outcome.user_error else EXIT_RUN_FAILED


def _print_summary(outcome) -> None:
    from crm_assets.cli.progress import summary_lines
    from crm_assets.core.resources import Warehouse

    with Warehouse().connect(read_only=True) as con:
        lines = summary_lines(con, outcome.run_id, outcome.first_month, outcome.last_month, settings.output_dir())
    for line in lines:
        print(f"  {line}")


def _commands() -> dict:
    from crm_assets.cli.outputs import OUTPUT_COMMANDS

    return {"generate": cmd_generate, "run": cmd_run, **OUTPUT_COMMANDS}


def _path_error(exc: OSError) -> str:
    """One line for an OS error on a path: the path, then what the system said."""
    where = exc.filename if exc.filename is not None else ""
    what = exc.strerror or str(exc)
    hint = {
        "Permission denied": "not writable (or not readable) by this user",
        "Is a directory": "is a folder, a file path is needed",
        "Not a directory": "a part of the path is a file, not a folder",
        "Read-only file system": "is on a read-only file system",
        "No space left on device": "no space left on the device",
    }.get(what, what)
    return f"{where}: {hint}" if where else hint


class _StderrHandler(logging.Handler):
    """Writes to the ``sys.stderr`` of the moment (not the one of when it was made)."""

    def emit(self, record: logging.LogRecord) -> None:
        print(self.format(record), file=sys.stderr)


def _show_waits() -> None:
    """Lock waits and similar notices of the project's code go to stderr as ``crm: ...`` lines."""
    logger = logging.getLogger("crm")
    if not any(isinstance(h, _StderrHandler) for h in logger.handlers):
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("crm: %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.verbose:
        warnings.filterwarnings("ignore")
    _show_waits()
    try:
        return _commands()[args.command](args)
    except CrmError as exc:
        if args.verbose:
            traceback.print_exc()
        print(f"crm {args.command}: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except OSError as exc:
        if args.verbose:
            traceback.print_exc()
        print(f"crm {args.command}: {_path_error(exc)}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print(f"crm {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001  (an internal error is still one line, exit 1)
        if args.verbose:
            traceback.print_exc()
        first = (str(exc).strip().splitlines() or [""])[0]
        print(
            f"crm {args.command}: internal error: {type(exc).__name__}: {first} (run with --verbose for the traceback)",
            file=sys.stderr,
        )
        return EXIT_RUN_FAILED


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
