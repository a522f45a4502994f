"""The benchmark driver: ``python -m benchmarks``.

For each scale: generate the data, then measure, each as a separate process,

- ``generate``: ``crm generate``;
- ``backfill``: ``crm run`` of every month on a fresh warehouse and a fresh ``DAGSTER_HOME``;
- ``refresh setup``: ``crm run --to <last-1>`` on another fresh warehouse (all months but the last);
- ``refresh``: ``crm run --from <last> --to <last>`` on it: the refresh of one newly added month;
- ``report``: ``crm report --month <last>``;
- ``export``: ``crm export --month <last>`` of every customer, and with filters;
- ``sql only``: the package's own SQL without Dagster (``crm_assets.layers.pipeline``'s build functions);
- ``floor``: the same snapshot by one plain DuckDB statement over the CSV files (benchmarks/floor.py);
- ``loop``: the same snapshot by one query per month (benchmarks/floor.py);

then checks that the floor and the loop agree with the warehouse, row by
row, and writes the results (JSON per scale in ``--results``) and the
Markdown report (``--out``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from datetime import datetime, timezone
from importlib.metadata import version
from pathlib import Path

import duckdb

from benchmarks.measure import Measurement, gnu_time, run_measured
from benchmarks.report import PLOT_NAME, ratio_rows, render, write_plot, write_report
from benchmarks.scales import SCALES, Scale

REPO = Path(__file__).resolve().parent.parent
# A step that takes less than this is run REPEATS times and its median recorded: a short step's single run is
# mostly noise (a step of a few seconds varies by 10-15% from one run to the next on a shared machine).
SHORT_STEP_S = 30.0
REPEATS = 3


def machine() -> dict:
    info = {"cores": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()}
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                info["memory_kb"] = int(line.split()[1])
    except OSError:
        pass
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info.setdefault("cpu", platform.processor() or "unknown")
    for package in ("duckdb", "dagster"):
        try:
            info[package] = version(package)
        except Exception:  # noqa: BLE001
            info[package] = "?"
    info["timer"] = "GNU time -v" if gnu_time() else "getrusage(RUSAGE_CHILDREN)"
    return info


def crm_command() -> list[str]:
    script = Path(sys.executable).with_name("crm")
    return [str(script)] if script.exists() else [sys.executable, "-m", "crm_assets.cli"]


class ScaleRun:
    def __init__(self, scale: Scale, workdir: Path, args: argparse.Namespace):
        self.scale, self.args = scale, args
        self.root = workdir / scale.name
        self.input = self.root / "input"
        self.log = self.root / "bench.log"
        self.steps: list[Measurement] = []
        self.crm = crm_command()

    def env(self, name: str | None = None) -> dict:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CRM_") and k != "DAGSTER_HOME"}
        # the caller's PYTHONPATH first: a patched copy of crm_assets put there is what gets measured
        env["PYTHONPATH"] = os.pathsep.join([*filter(None, [os.environ.get("PYTHONPATH")]), str(REPO)])
        env["CRM_FIRST_MONTH"] = self.scale.start
        env["CRM_INPUT_DIR"] = str(self.input)
        if name:
            base = self.root / name
            env["CRM_WAREHOUSE"] = str(base / "warehouse" / "crm.duckdb")
            env["CRM_OUTPUT_DIR"] = str(base / "output")
            env["DAGSTER_HOME"] = str(base / "dagster_home")
        if self.args.duckdb_memory_limit:
            env["CRM_DUCKDB_MEMORY_LIMIT"] = self.args.duckdb_memory_limit
        if self.args.duckdb_threads:
            env["CRM_DUCKDB_THREADS"] = str(self.args.duckdb_threads)
        if name and self.args.engine == "spark":
            env["CRM_ENGINE"] = "spark"
            env["CRM_SPARK_WAREHOUSE"] = str(base / "spark-warehouse")
            env["CRM_SPARK_DRIVER_MEMORY"] = self.args.spark_driver_memory
        return env

    def fresh(self, name: str) -> Path:
        """An empty folder for a warehouse, its outputs and its DAGSTER_HOME (with the project's dagster_instance.yaml)."""
        base = self.root / name
        shutil.rmtree(base, ignore_errors=True)
        (base / "dagster_home").mkdir(parents=True)
        if (REPO / "dagster_instance.yaml").exists():
            shutil.copy(REPO / "dagster_instance.yaml", base / "dagster_home" / "dagster.yaml")
        return base

    def measure(self, step: str, command: list[str], env: dict, info: dict | None = None, again=None) -> Measurement:
        """Run ``command`` as one measured process. With ``again`` (what puts the step back to where it starts), a
        step shorter than ``SHORT_STEP_S`` runs ``REPEATS`` times: the run of median wall time is kept, with every
        wall time in ``info["runs_s"]`` and the largest peak of memory."""
        print(f"[{self.scale.name}] {step} ...", flush=True)
        m = run_measured(step, command, env=env, cwd=self.root, timeout=self.args.timeout, log=self.log)
        repeats = max(1, self.args.repeats if self.args.repeats is not None else 1 if self.args.smoke else REPEATS)
        if again is not None and m.ok and m.wall_s < SHORT_STEP_S and repeats > 1:
            runs = [m]
            for _ in range(repeats - 1):
                if again() is False:  # the step could not be put back where it starts: keep the runs so far
                    break
                runs.append(
                    run_measured(step, command, env=env, cwd=self.root, timeout=self.args.timeout, log=self.log)
                )
            if all(r.ok for r in runs):
                ordered = sorted(runs, key=lambda r: r.wall_s)
                median = ordered[len(ordered) // 2]
                median.peak_rss_kb = max(r.peak_rss_kb for r in runs)
                median.tree_rss_kb = max(r.tree_rss_kb for r in runs)
                median.info["runs_s"] = [round(r.wall_s, 2) for r in runs]
                m = median
            else:
                m = next(r for r in runs if not r.ok)
        m.info.update(info or {})
        state = "ok" if m.ok else ("TIMEOUT" if m.timed_out else f"FAILED rc={m.returncode}")
        runs_note = f" (median of {len(m.info['runs_s'])})" if "runs_s" in m.info else ""
        print(
            f"[{self.scale.name}] {step}: {m.wall_s:.1f} s{runs_note}, peak {m.tree_rss_kb / 1024:.0f} MiB, {state}",
            flush=True,
        )
        if not m.ok and m.stderr_tail:
            print("    " + m.stderr_tail.replace("\n", "\n    "), flush=True)
        self.steps.append(m)
        return m

    def package(self) -> str:
        """Where the measured ``crm_assets`` comes from (a patched copy first on PYTHONPATH is measured instead)."""
        probe = subprocess.run(
            [sys.executable, "-c", "import crm_assets, os; print(os.path.dirname(crm_assets.__file__))"],
            env=self.env(),
            cwd=self.root,
            capture_output=True,
            text=True,
        )
        return probe.stdout.strip() or "?"

    def python(self, module: str, *args) -> list[str]:
        return [sys.executable, "-m", module, *map(str, args)]

    @staticmethod
    def json_out(m: Measurement) -> dict:
        for line in reversed(m.stdout_tail.splitlines()):
            if line.startswith("{"):
                try:
                    return json.loads(line)
                except json.JSONDecodeError:
                    return {}
        return {}

    def wants(self, step: str) -> bool:
        return self.args.steps is None or step in self.args.steps

    def previous_ok(self, step: str) -> bool:
        """Whether ``step`` succeeded in this run, or (when not run now) in the stored result being completed."""
        for m in self.steps:
            if m.step == step:
                return m.ok
        old = next((x for x in self.previous.get("steps", []) if x["step"] == step), None)
        return bool(old) and old.get("returncode") == 0 and not old.get("timed_out")

    def run(self, previous: dict | None = None) -> dict:
        s, last, before_last = self.scale, self.scale.end, self.scale.month_before_last()
        self.previous = previous or {}
        self.root.mkdir(parents=True, exist_ok=True)
        started = datetime.now(timezone.utc)

        if self.wants("generate") or not self.input.is_dir():
            shutil.rmtree(self.input, ignore_errors=True)
            gen = self.measure(
                "generate",
                [
                    *self.crm,
                    "generate",
                    "--out",
                    self.input,
                    "--customers",
                    s.customers,
                    "--start",
                    s.start,
                    "--end",
                    s.end,
                    "--seed",
                    s.seed,
                ],
                self.env(),
                again=lambda: shutil.rmtree(self.input, ignore_errors=True),
            )
            gen.info["lines"] = _transaction_lines(self.input) if gen.ok else None
            gen.info["input_mb"] = round(sum(p.stat().st_size for p in self.input.glob("*.csv")) / 2**20, 1)
            if not gen.ok:
                return self.result(started)

        # full backfill of every month
        if self.wants("backfill"):
            self.fresh("full")
            full = self.measure(
                "backfill",
                [*self.crm, "run", "--input", self.input],
                self.env("full"),
                {"months": s.months},
                again=lambda: self.fresh("full"),
            )
            full.info["dagster"] = self.json_out(
                run_measured(
                    "breakdown", self.python("benchmarks.dagster_breakdown"), env=self.env("full"), cwd=self.root
                )
            )
            if full.ok:
                # the same command again: the planner finds every month built from the files as they are
                self.measure(
                    "no-op run",
                    [*self.crm, "run", "--input", self.input],
                    self.env("full"),
                    {"months": 0},
                    again=lambda: None,
                )
                full.info["snapshot_rows"] = _snapshot_rows(
                    self.root / "full" / "warehouse" / "crm.duckdb", self.env("full").get("CRM_SPARK_WAREHOUSE")
                )

        # refresh of one newly added month: every month but the last, then the last one
        if self.wants("refresh"):
            self.fresh("refresh")
            if self.args.refresh_setup == "sql":
                setup = self.measure(
                    "refresh setup",
                    self.python(
                        "benchmarks.sql_only",
                        "--input",
                        self.input,
                        "--db",
                        self.root / "refresh" / "warehouse" / "crm.duckdb",
                        "--from",
                        s.start,
                        "--to",
                        before_last,
                        *self.memory_args(),
                    ),
                    self.env("refresh"),
                    {"months": s.months - 1, "via": "sql"},
                )
            else:
                setup = self.measure(
                    "refresh setup",
                    [*self.crm, "run", "--input", self.input, "--to", before_last],
                    self.env("refresh"),
                    {"months": s.months - 1},
                )
            if setup.ok:

                def set_up_again(command=setup.command) -> bool:
                    self.fresh("refresh")
                    env, timeout = self.env("refresh"), self.args.timeout
                    return run_measured(
                        "refresh setup", command, env=env, cwd=self.root, timeout=timeout, log=self.log
                    ).ok

                refresh = self.measure(
                    "refresh",
                    [*self.crm, "run", "--input", self.input, "--from", last, "--to", last],
                    self.env("refresh"),
                    {"months": 1},
                    # repeated only where its setup is short too (a setup is a backfill of every month but one)
                    again=set_up_again if setup.wall_s < SHORT_STEP_S else None,
                )
                refresh.info["dagster"] = self.json_out(
                    run_measured(
                        "breakdown", self.python("benchmarks.dagster_breakdown"), env=self.env("refresh"), cwd=self.root
                    )
                )

        # outputs of the last month, from the full warehouse (or the refreshed one when the backfill failed)
        source = None
        for name, step in (("full", "backfill"), ("refresh", "refresh")):
            if self.previous_ok(step) and (self.root / name / "warehouse" / "crm.duckdb").exists():
                source = name
                break
        warehouse = self.root / source / "warehouse" / "crm.duckdb" if source else None
        if source and self.wants("report"):
            out = self.root / source / "output"
            env = self.env(source)
            info = {} if source == "full" else {"warehouse": "the refreshed one (the backfill failed)"}
            self.measure(
                "report",
                [*self.crm, "report", "--month", last, "--out", out / "report.xlsx"],
                env,
                info,
                again=lambda: None,
            )
            self.measure(
                "export",
                [*self.crm, "export", "--month", last, "--out", out / "export_all.csv", "--force"],
                env,
                {"filters": "none", **info},
                again=lambda: None,
            )
            self.measure(
                "export filtered",
                [
                    *self.crm,
                    "export",
                    "--month",
                    last,
                    "--tier",
                    "Diamond,Platinum,Gold",
                    "--consent",
                    "email",
                    "--out",
                    out / "export_filtered.csv",
                    "--force",
                ],
                env,
                {"filters": "--tier Diamond,Platinum,Gold --consent email", **info},
                again=lambda: None,
            )
            for m in self.steps[-3:]:
                m.info["rows"] = _output_rows(m.stdout_tail)

        # the package's SQL alone, the floor, the loop
        if self.wants("sql") and not self.args.skip_sql_only:
            sql = self.measure(
                "sql only",
                self.python(
                    "benchmarks.sql_only",
                    "--input",
                    self.input,
                    "--db",
                    self.root / "sql_only" / "crm.duckdb",
                    "--from",
                    s.start,
                    "--to",
                    s.end,
                    "--statements",
                    *self.memory_args(),
                ),
                self.env(),
                again=lambda: shutil.rmtree(self.root / "sql_only", ignore_errors=True),
            )
            sql.info.update(self.json_out(sql))
            shutil.rmtree(self.root / "sql_only", ignore_errors=True)
        for mode in ("floor", "loop"):
            if not self.wants(mode) or (mode == "loop" and self.args.skip_loop):
                continue
            db = self.root / f"{mode}.duckdb"

            def remove(db=db):
                for suffix in ("", ".wal"):
                    Path(f"{db}{suffix}").unlink(missing_ok=True)
                shutil.rmtree(f"{db}.tmp", ignore_errors=True)

            m = self.measure(
                mode,
                self.python(
                    "benchmarks.floor", mode, "--input", self.input, "--db", db, "--first", s.start, *self.memory_args()
                ),
                self.env(),
                again=remove,
            )
            m.info.update(self.json_out(m))
            if m.ok and warehouse is not None:
                check = run_measured(
                    f"compare {mode}",
                    self.python("benchmarks.floor", "compare", "--db", db, "--warehouse", warehouse),
                    env=self.env(),
                    cwd=self.root,
                )
                m.info["compare"] = self.json_out(check)
                if source != "full":
                    m.info["compare"]["warehouse"] = source
            remove()
        return self.result(started)

    def memory_args(self) -> list[str]:
        return ["--memory-limit", self.args.duckdb_memory_limit] if self.args.duckdb_memory_limit else []

    def result(self, started: datetime) -> dict:
        s = self.scale
        return {
            "scale": s.name,
            "engine": self.args.engine,
            "customers": s.customers,
            "start": s.start,
            "end": s.end,
            "months": s.months,
            "note": s.note,
            "started": started.isoformat(timespec="seconds"),
            "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "options": {
                "refresh_setup": self.args.refresh_setup,
                "timeout_s": self.args.timeout,
                "duckdb_memory_limit": self.args.duckdb_memory_limit or None,
                "duckdb_threads": self.args.duckdb_threads or None,
                "spark_driver_memory": self.args.spark_driver_memory if self.args.engine == "spark" else None,
            },
            "machine": machine(),
            "package": self.package(),
            "steps": self.merged_steps(),
        }

    def merged_steps(self) -> list[dict]:
        """This run's steps, plus the stored ones of the steps not run now (``--steps``), in the usual order."""
        now = {m.step: m.as_dict() for m in self.steps}
        if self.args.steps is None:
            return list(now.values())
        old = {x["step"]: x for x in self.previous.get("steps", [])}
        for name, value in now.items():
            value.setdefault("info", {})["measured_separately"] = True
            old[name] = value
        order = [
            "generate",
            "backfill",
            "no-op run",
            "refresh setup",
            "refresh",
            "report",
            "export",
            "export filtered",
            "sql only",
            "floor",
            "loop",
        ]
        return sorted(old.values(), key=lambda x: order.index(x["step"]) if x["step"] in order else 99)


def _transaction_lines(folder: Path) -> int:
    """Data lines of the transaction files (physical lines minus the header of each)."""
    total = 0
    for path in sorted(folder.glob("sales_transactions_*.csv")):
        with open(path, "rb") as handle:
            while chunk := handle.read(1 << 24):
                total += chunk.count(b"\n")
        total -= 1
    return total


def _snapshot_rows(warehouse: Path, spark_warehouse: str | None = None) -> int | None:
    try:
        if spark_warehouse:  # the Spark engine's snapshot is a Parquet folder
            con = duckdb.connect()
            source = f"read_parquet('{spark_warehouse}/reporting/customer_snapshot/*/*.parquet')"
        else:
            con = duckdb.connect(str(warehouse), read_only=True)
            source = "reporting.customer_snapshot"
        try:
            return con.execute(f"SELECT count(*) FROM {source}").fetchone()[0]
        finally:
            con.close()
    except Exception:  # noqa: BLE001
        return None


def _output_rows(stdout: str) -> int | None:
    match = re.search(r"([\d,]+) customers", stdout)
    return int(match.group(1).replace(",", "")) if match else None


ENGINES = ("duckdb", "spark")


def result_name(scale: str, engine: str) -> str:
    """The JSON result of a scale: ``M.json`` on DuckDB, ``M-spark.json`` on Spark (kept apart)."""
    return f"{scale}.json" if engine == "duckdb" else f"{scale}-{engine}.json"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description="Benchmark suite of the CRM pipeline.")
    parser.add_argument(
        "--scales",
        default="S,seed,M,100k,L",
        help="comma-separated scales among S, seed, M, 100k, L, XL (default S,seed,M,100k,L)",
    )
    parser.add_argument("--xl", action="store_true", help="also run XL (1,000,000 customers, ~60 million lines)")
    parser.add_argument(
        "--smoke", action="store_true", help="a tiny run (50 customers, 3 months) that only checks it works"
    )
    parser.add_argument("--out", type=Path, default=None, help="Markdown report (default docs/performance.md)")
    parser.add_argument(
        "--results",
        type=Path,
        default=None,
        help="folder of the JSON results per scale (default benchmarks/results; <workdir>/results with --smoke)",
    )
    parser.add_argument(
        "--workdir", type=Path, default=Path("/tmp/crm-bench"), help="data and warehouses (default /tmp/crm-bench)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the data of each scale in the workdir afterwards")
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds before a step is killed (default 3600)")
    parser.add_argument(
        "--refresh-setup",
        choices=("crm", "sql"),
        default="crm",
        help="build the months before the refreshed one with `crm run` (default) or with the SQL alone",
    )
    parser.add_argument(
        "--duckdb-memory-limit",
        default="",
        help="DuckDB memory_limit of every step (CRM_DUCKDB_MEMORY_LIMIT; default: the package's, 1.5GB; "
        "the floor and the loop: DuckDB's own)",
    )
    parser.add_argument("--duckdb-threads", type=int, default=0, help="DuckDB threads of crm (CRM_DUCKDB_THREADS)")
    parser.add_argument(
        "--engine",
        choices=("duckdb", "spark"),
        default="duckdb",
        help="CRM_ENGINE of the crm steps (default duckdb); spark: a CRM_SPARK_WAREHOUSE beside each warehouse, "
        "and results stored as <scale>-spark.json",
    )
    parser.add_argument(
        "--spark-driver-memory", default="6g", help="CRM_SPARK_DRIVER_MEMORY with --engine spark (default 6g)"
    )
    parser.add_argument(
        "--repeats",
        type=int,
        default=None,
        help=f"runs of a step shorter than {SHORT_STEP_S:.0f} s, of which the median is kept "
        f"(default {REPEATS}; 1 with --smoke)",
    )
    parser.add_argument("--skip-loop", action="store_true", help="do not run the one-query-per-month loop")
    parser.add_argument("--skip-sql-only", action="store_true", help="do not run the SQL-only pipeline")
    parser.add_argument(
        "--steps",
        default=None,
        help="only these steps (comma-separated among generate, backfill, refresh, report, sql, floor, "
        "loop), merged into the stored result of the scale; reuses the data kept with --keep",
    )
    parser.add_argument("--report-only", action="store_true", help="only rewrite --out from the stored results")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.steps is not None:
        args.steps = {x.strip() for x in args.steps.split(",") if x.strip()}
    if args.smoke:
        names = ["smoke"]
    else:
        names = [n.strip() for n in args.scales.split(",") if n.strip()]
        if args.xl and "XL" not in names:
            names.append("XL")
    unknown = [n for n in names if n not in SCALES]
    if unknown:
        print(f"python -m benchmarks: unknown scale {unknown[0]} (scales: {', '.join(SCALES)})", file=sys.stderr)
        return 2
    out = args.out or (args.workdir / "performance.md" if args.smoke else REPO / "docs" / "performance.md")
    results_dir = args.results or (args.workdir / "results" if args.smoke else REPO / "benchmarks" / "results")
    results_dir.mkdir(parents=True, exist_ok=True)
    if not args.report_only:
        if not gnu_time():
            print("python -m benchmarks: GNU time not found (apt-get install time); using getrusage", flush=True)
        for name in names:
            run = ScaleRun(SCALES[name], args.workdir, args)
            started = time.perf_counter()
            path = results_dir / result_name(name, args.engine)
            previous = json.loads(path.read_text()) if args.steps is not None and path.exists() else None
            try:
                result = run.run(previous)
            finally:
                if not args.keep:
                    shutil.rmtree(run.root / "input", ignore_errors=True)
                    for sub in ("full", "refresh", "sql_only"):
                        shutil.rmtree(run.root / sub, ignore_errors=True)
            path.write_text(json.dumps(result, indent=1, default=str))
            print(f"[{name}] done in {time.perf_counter() - started:.0f} s", flush=True)
    results = []
    for engine in ENGINES:
        for name in SCALES:
            path = results_dir / result_name(name, engine)
            if path.exists() and (name != "smoke" or args.smoke):
                results.append(json.loads(path.read_text()))
    print("\n".join(ratio_rows(results)), flush=True)
    write_report(out, render(results))
    write_plot(out.parent / PLOT_NAME, results)
    print(f"python -m benchmarks: wrote {out} and {out.parent / PLOT_NAME}")
    return 0
