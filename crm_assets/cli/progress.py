"""What `crm run` prints while it runs and when it ends.

During the run, a Dagster logger (added to the job by ``crm run`` only) turns
the step events into one line as each asset starts and one as it ends, with
the rows it wrote and its seconds. After the run, :func:`summary_lines`
reads the warehouse (read-only) for the summary: months, snapshot rows,
rejected rows per file, warning checks that failed (each count with its unit:
``customers_without_entry_date (73 customer-months)``), where the outputs are.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from pathlib import Path

from dagster import logger

from crm_assets.core.quality import quantity
from crm_assets.layers.checks import all_checks

REJECTED_QUERY = "SELECT source_file, line_number, reason, raw_line FROM raw.rejected_rows ORDER BY 1, 2"


def asset_label(step_key: str) -> str:
    """``raw__sales_transactions`` -> ``raw/sales_transactions``."""
    return step_key.replace("__", "/")


def status_line(label: str, seconds: float, done: int, total: int, width: int = 20) -> str:
    """The line a long step shows on a terminal: the run's progress as a bar, the step and its seconds so far."""
    filled = round(width * done / total) if total else 0
    return f"  [{'#' * filled}{'.' * (width - filled)}] {done}/{total} steps  {label} running {seconds:.0f} s"


class Ticker:
    """On a terminal, rewrites one status line every half second while a step runs longer than ``after`` seconds.

    Nothing is written to a pipe or a file (scripts and logs get the plain lines only).
    """

    def __init__(self, stream, total: int, after: float = 2.0, every: float = 0.5):
        self.stream, self.total, self.after, self.every = stream, total, after, every
        self.enabled = bool(getattr(stream, "isatty", lambda: False)())
        self.lock = threading.Lock()
        self.step: tuple[str, float] | None = None
        self.done = 0
        self.shown = False
        if self.enabled:
            threading.Thread(target=self._loop, daemon=True, name="crm-progress").start()

    def start(self, label: str) -> None:
        with self.lock:
            self.step = (label, time.perf_counter())

    def finish(self) -> None:
        with self.lock:
            self.step = None
            self.done += 1
            self._clear()

    def write(self, text: str) -> None:
        with self.lock:
            self._clear()
            print(text, file=self.stream, flush=True)

    def _clear(self) -> None:
        if self.shown:
            self.stream.write("\r\033[K")
            self.shown = False

    def _loop(self) -> None:
        while True:
            time.sleep(self.every)
            with self.lock:
                if self.step is None:
                    continue
                label, since = self.step
                seconds = time.perf_counter() - since
                if seconds >= self.after:
                    self.stream.write("\r\033[K" + status_line(label, seconds, self.done, self.total))
                    self.stream.flush()
                    self.shown = True


class ProgressHandler(logging.Handler):
    """Prints a line when a step starts and when it ends; counts the rows of its materializations."""

    def __init__(self, months: int, steps: int = 0, stream=None):
        super().__init__()
        self.months = months
        self.started: dict[str, float] = {}
        self.rows: dict[str, int] = {}
        self.assets: dict[str, dict[str, None]] = {}
        self.run_rows: dict[str, dict[str, int]] = {}
        self.width = 44
        self.ticker = Ticker(stream or sys.stdout, steps)

    def _print(self, text: str) -> None:
        self.ticker.write(text)

    def emit(self, record: logging.LogRecord) -> None:
        meta = getattr(record, "dagster_meta", None) or {}
        event = meta.get("dagster_event")
        if event is None or not event.step_key:
            return
        kind, step = event.event_type_value, event.step_key
        label = asset_label(step)
        if kind == "STEP_START":
            self.started[step] = time.perf_counter()
            self._print(f"  {label:<{self.width}} started")
            self.ticker.start(label)
        elif kind == "ASSET_MATERIALIZATION":
            materialization = event.event_specific_data.materialization
            self.assets.setdefault(step, {})[materialization.asset_key.to_user_string()] = None
            metadata = {k: v.value for k, v in materialization.metadata.items() if isinstance(v.value, int)}
            key = materialization.asset_key.to_user_string()
            per_run = metadata.get("rows_in_run", metadata.get("rows_loaded"))
            if per_run is not None:  # a run's total, attached alike to each of its months: count it once per asset
                self.run_rows.setdefault(step, {})[key] = per_run
            elif "rows" in metadata:  # a month's (or an unpartitioned asset's) rows: they add up
                self.rows[step] = self.rows.get(step, 0) + metadata["rows"]
        elif kind in ("STEP_SUCCESS", "STEP_FAILURE"):
            self.ticker.finish()
            seconds = time.perf_counter() - self.started.get(step, time.perf_counter())
            total = sum(self.run_rows[step].values()) if step in self.run_rows else self.rows.get(step)
            rows = f"{total:>12,} rows" if total is not None else " " * 17
            state = "done  " if kind == "STEP_SUCCESS" else "FAILED"
            label = " + ".join(self.assets.get(step, {})) or label  # a multi-asset step names its assets
            self._print(f"  {label:<{self.width}} {state} {rows} {seconds:7.1f} s")


def progress_logger_def(months: int, steps: int = 0):
    """A Dagster logger definition printing the progress of a run of ``months`` months and ``steps`` steps."""

    @logger(description="one line as each asset starts and ends (crm run); a status bar on a terminal")
    def crm_progress(_init_context):
        log = logging.Logger("crm.progress", level=logging.DEBUG)
        log.addHandler(ProgressHandler(months, steps))
        return log

    return crm_progress


def check_units() -> dict[tuple[str, str], str]:
    """The unit of each check's count, by (asset, check): from the definitions, so that a warehouse read as it
    is (recorded before units were) is summarized alike."""
    return {(c.asset, c.name): c.unit for c in all_checks()}


def counted(n: int, unit: str | None) -> str:
    """``73 customer-months``, ``1 file line``: a count with its unit (the bare number when it is unknown)."""
    return quantity(n, unit) if unit else f"{n:,}"


def summary_lines(con, run_id: str, first: str, last: str, output_dir: Path) -> list[str]:
    """The end-of-run summary, read from the warehouse open (read-only) on ``con``."""
    lines = []
    months, rows = con.execute(
        "SELECT count(DISTINCT report_month), count(*) FROM reporting.customer_snapshot WHERE report_month BETWEEN ? AND ?",
        [first, last],
    ).fetchone()
    lines.append(f"months built: {first[:7]}..{last[:7]} ({months} months), {rows:,} snapshot rows")
    rejected = con.execute("SELECT source_file, count(*) FROM raw.rejected_rows GROUP BY 1 ORDER BY 1").fetchall()
    if rejected:
        total = sum(n for _, n in rejected)
        lines.append(f"rejected rows: {total:,} ({', '.join(f'{f} {n:,}' for f, n in rejected)}); list them with")
        lines.append(f"  {REJECTED_QUERY}")
    else:
        lines.append("rejected rows: none")
    warnings = con.execute(
        """
        SELECT asset_key, check_name, sum(violations) FROM quality.check_results
        WHERE run_id = ? AND NOT passed AND severity = 'WARN' GROUP BY 1, 2 ORDER BY 1, 2
        """,
        [run_id],
    ).fetchall()
    if warnings:
        units = check_units()
        lines.append(
            "warning checks that failed: "
            + "; ".join(f"{a} {c} ({counted(n, units.get((a, c)))})" for a, c, n in warnings)
        )
    else:
        lines.append("warning checks that failed: none")
    workbook = output_dir / "reports" / f"crm_summary_{last[:7]}.xlsx"
    if workbook.exists():
        lines.append(f"workbook: {workbook}")
    page = workbook.with_suffix(".html")
    if page.exists():
        lines.append(f"HTML report: {page}")
    powerbi = output_dir / "powerbi"
    if powerbi.exists():
        lines.append(f"Power BI files: {powerbi}")
    return lines
