"""The ``crm`` command line: generate a sample, run the pipeline through Dagster.

Exit codes: 0 success; 2 a user error (bad argument or setting, bad or missing
input file, unwritable or locked path, a removal not allowed, a damaged
warehouse file, a full disk), printed as one line ``crm <command>: <reason>``;
1 anything else (a failed blocking check, an internal error), also one line.
``--verbose`` adds the traceback and Dagster's own log.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
import traceback
import warnings
from pathlib import Path

from crm_assets.cli.arguments import month_arg, month_or_last, positive_int
from crm_assets.cli.outputs import OUTPUT_COMMANDS, add_output_commands
from crm_assets.core import settings
from crm_assets.core.errors import NO_SPACE, CrmError, damaged_file, no_space_left

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
        "range: every stale month (none: nothing runs). Prints a line per asset and a summary; exit codes in "
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
        "--all",
        action="store_true",
        help="rebuild every month of the data, stale or not (default: only the stale months, and nothing when "
        "every month is built from the files as they are)",
    )
    run.add_argument(
        "--allow-removals",
        action="store_true",
        help="accept that a transactions file disappeared or lost more than half of its rows: remove those rows "
        "and recompute every month from the first one affected",
    )
    add_output_commands(sub, common)
    return parser


def cmd_generate(args: argparse.Namespace) -> int:
    from crm_assets.cli import generate  # noqa: PLC0415  (numpy, pyarrow: 0.3 s more for `crm --help`)

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
    settings.schedule_timezone()  # so is a CRM_SCHEDULE_TIMEZONE that is no time zone (the definitions' schedule)
    settings.check_counts()  # and a negative or fractional CRM_WORKBOOK_MONTHS / CRM_WORKBOOK_LIST_ROWS
    home = settings.prepare_dagster_home()
    if not os.environ.get("DAGSTER_HOME", "").strip():
        settings.record_dagster_home(home)  # the default home: `dagster dev` in the project folder opens it too
    os.environ["DAGSTER_HOME"] = str(home)
    for name, value in settings.DAGSTER_SETTINGS.items():
        os.environ.setdefault(name, value)


def _check_writable_folder(folder: Path, what: str) -> None:
    """A folder the run will write to exists or can be made, and takes a file: else a user error now, not mid-run."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".crm-write-test-"):
            pass
    except OSError as exc:
        raise CrmError(f"{folder}: cannot write {what} there ({exc.strerror or exc})") from None


def cmd_run(args: argparse.Namespace) -> int:
    _apply_path_options(args)
    from crm_assets.cli import runner  # noqa: PLC0415  (Dagster: 1.4 s more for `crm --help`)

    _check_writable_folder(settings.output_dir(), f"the outputs (${settings.ENV_OUTPUT_DIR})")
    from crm_assets.engines.selection import warehouse_class  # noqa: PLC0415  (Dagster: 1.4 s more for `crm --help`)

    warehouse_class()  # a CRM_ENGINE that is no engine (or Spark not installed): one line now, before the run

    started = time.perf_counter()
    months = runner.resolve_months(
        args.from_month, args.to_month, settings.input_dir(), args.allow_removals, everything=args.all
    )
    say = (lambda *_: None) if args.quiet else print
    for note in months.notes:
        say(f"crm run: {note}")
    if months.nothing:
        say(f"crm run: nothing to build: {months.why} (--all rebuilds every month)")
        return 0
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
    known = _known_run_failure(outcome.run_id, args)
    if known is not None:  # a full disk or a damaged warehouse: one line for the run, whatever each step said
        print(f"crm run: {known} (run {outcome.run_id[:8]}, {span})", file=sys.stderr)
        return EXIT_USER_ERROR
    for failure in outcome.failures or ["failed"]:
        print(f"crm run: {failure} (run {outcome.run_id[:8]}, {span})", file=sys.stderr)
    return EXIT_USER_ERROR if outcome.user_error else EXIT_RUN_FAILED


def _known_run_failure(run_id: str, args: argparse.Namespace) -> str | None:
    """The one line of a run whose steps failed on a full disk or a damaged warehouse, from the errors (and the
    errors behind them) Dagster recorded for its failed steps; None for any other failure."""
    from dagster import DagsterEventType, DagsterInstance  # noqa: PLC0415  (Dagster: 1.4 s more for `crm --help`)

    try:
        with DagsterInstance.get() as instance:
            records = instance.all_logs(run_id, of_type=DagsterEventType.STEP_FAILURE)
    except Exception:  # noqa: BLE001  (the run's own lines are printed instead)
        return None
    errors = [r.dagster_event.step_failure_data.error for r in records if r.dagster_event is not None]
    for error in errors:
        line = _known_error(error, args)
        if line is not None:
            return line
    return None


def _print_summary(outcome) -> None:
    from crm_assets.cli.progress import summary_lines  # noqa: PLC0415  (Dagster: 1.4 s more for `crm --help`)
    from crm_assets.engines.selection import warehouse  # noqa: PLC0415  (Dagster: 1.4 s more for `crm --help`)

    with warehouse().connect(read_only=True) as con:
        lines = summary_lines(con, outcome.run_id, outcome.first_month, outcome.last_month, settings.output_dir())
    for line in lines:
        print(f"  {line}")


def _commands() -> dict:
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


def _warehouse_file(args: argparse.Namespace) -> Path:
    """The warehouse file of the command: ``--warehouse``, else the setting."""
    given = getattr(args, "warehouse", None)
    return given.resolve() if given is not None else settings.warehouse_path()


def _known_error(exc, args: argparse.Namespace) -> str | None:
    """One line for a full disk or a damaged database file found anywhere in ``exc``'s chain (a Python exception
    or a step failure Dagster recorded); None for any other error."""
    # a user error that says the disk is full already names its folder and setting
    where = None if isinstance(exc, CrmError) and NO_SPACE in str(exc) else no_space_left(exc)
    if where is not None:
        if not where:  # no path in what the system said: what the command writes
            out = getattr(args, "out", None)
            where = str(out) if out is not None else str(_warehouse_file(args))
        return f"no space left on the device: {where}"
    damaged = damaged_file(exc)
    if damaged is None:
        return None
    path, detail = damaged
    warehouse = _warehouse_file(args)
    rebuild = "run `crm run` to rebuild the warehouse from the input files"
    if path is None or Path(path) == warehouse:
        return (
            f"{warehouse}: the warehouse file is damaged ({detail}); restore it from a backup, or delete it and "
            f"{rebuild}"
        )
    if Path(path) == Path(f"{warehouse}.wal"):
        return (
            f"{path}: the warehouse's log file is damaged ({detail}); restore the warehouse from a backup, or delete "
            f"{warehouse} and {path} and {rebuild}"
        )
    return f"{path}: the file is damaged ({detail})"


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
    except KeyboardInterrupt:
        print(f"crm {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001  (every error is one line: a user error exit 2, else exit 1)
        if args.verbose:
            traceback.print_exc()
        code, line = _one_line(exc, args)
        print(f"crm {args.command}: {line}", file=sys.stderr)
        return code


def _one_line(exc: Exception, args: argparse.Namespace) -> tuple[int, str]:
    """The exit code and the one line of an error that ended a command.

    A full disk and a damaged database file are recognised anywhere in the chain (a DuckDB "cannot rollback"
    whose context is the failed write; the CrmError of a warehouse that cannot be opened); then a CrmError
    says its own line, an OSError names its path; anything else is an internal error."""
    known = _known_error(exc, args)
    if known is not None:
        return EXIT_USER_ERROR, known
    if isinstance(exc, CrmError):
        return EXIT_USER_ERROR, str(exc)
    if isinstance(exc, OSError):
        return EXIT_USER_ERROR, _path_error(exc)
    first = (str(exc).strip().splitlines() or [""])[0]
    return EXIT_RUN_FAILED, f"internal error: {type(exc).__name__}: {first} (run with --verbose for the traceback)"


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
