"""The benchmark suite (``python -m benchmarks``) runs end to end on a tiny data set.

No timing is asserted: this only checks that every step of the benchmark
works, that the report has a row for each of them, and that the benchmark's
two reference computations (the plain single-query floor and the
one-query-per-month loop) agree with the warehouse row for row.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.report import STEP_LABELS, plot_svg
from benchmarks.run import REPEATS, ScaleRun
from benchmarks.scales import SCALES

REPO = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.slow

STEPS = (
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
)


def test_benchmark_smoke_run(tmp_path: Path) -> None:
    out = tmp_path / "performance.md"
    work = tmp_path / "work"
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--smoke", "--workdir", str(work), "--out", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]

    data = json.loads((work / "results" / "smoke.json").read_text())
    steps = {s["step"]: s for s in data["steps"]}
    assert sorted(steps) == sorted(STEPS)
    for name in STEPS:
        step = steps[name]
        assert step["returncode"] == 0 and not step["timed_out"], f"{name}: {step['stderr_tail']}"
        assert step["wall_s"] > 0 and step["peak_rss_kb"] > 0, name
    for name in ("floor", "loop"):
        compare = steps[name]["info"]["compare"]
        assert compare["reference_rows"] == compare["warehouse_rows"] > 0, compare
        assert compare["differing_rows"] == compare["only_warehouse"] == compare["only_reference"] == 0, compare

    report = out.read_text()
    table_rows = [line for line in report.splitlines() if line.startswith("| ")]
    for name in STEPS:
        assert any(row.startswith(f"| {STEP_LABELS[name]} |") for row in table_rows), f"no row for {name}"
    assert "cores" in report and "GiB of memory" in report
    # the ratio table comes first, on stdout and in the report, and the log-log plot is written beside it
    backfill, floor = steps["backfill"]["wall_s"], steps["floor"]["wall_s"]
    ratio_row = next(line for line in table_rows if line.startswith("| smoke |"))
    assert ratio_row.split("|")[8].strip() == f"{backfill / floor:.1f}x"
    assert report.index("## Ratios") < report.index("## Machine and run")
    assert "| smoke |" in result.stdout
    plot = (out.parent / "performance_scaling.svg").read_text()
    assert plot.startswith("<svg") and plot.count("<polyline") == 3


def test_the_plot_puts_each_series_on_log_axes():
    def result(scale, lines, backfill, sql, floor):
        steps = [("generate", 1.0, {"lines": lines}), ("backfill", backfill, {}), ("sql only", sql, {})]
        steps.append(("floor", floor, {}))
        return {"scale": scale, "steps": [{"step": n, "wall_s": w, "info": i} for n, w, i in steps]}

    svg = plot_svg([result("a", 1_000, 10.0, 1.0, 0.1), result("b", 100_000, 100.0, 10.0, 1.0)])
    # x from 10^3 to 10^5 lines and y from 10^-1 to 10^2 s: the decades are labelled, each series is one line
    assert all(f">{label}<" in svg for label in ("1,000", "10,000", "100,000", "0.1 s", "1 s", "10 s", "100 s"))
    assert svg.count("<polyline") == 3 and svg.count("<circle") == 6


def test_a_short_step_is_run_three_times_and_its_median_kept(tmp_path):
    args = argparse.Namespace(repeats=None, smoke=False, timeout=60)
    bench = ScaleRun(SCALES["S"], tmp_path, args)
    bench.root.mkdir(parents=True)
    counter = tmp_path / "runs"
    # each run sleeps a little longer than the one before: the median is the second
    script = (
        "import pathlib, time; p = pathlib.Path(r'%s'); n = int(p.read_text()) if p.exists() else 0; "
        "p.write_text(str(n + 1)); time.sleep(0.2 * (n + 1)); print(n + 1)" % counter
    )
    prepared = []
    m = bench.measure("report", [sys.executable, "-c", script], dict(os.environ), again=lambda: prepared.append(1))
    assert REPEATS == 3 and len(prepared) == 2 and counter.read_text() == "3"
    assert len(m.info["runs_s"]) == 3 and m.info["runs_s"] == sorted(m.info["runs_s"])
    assert m.wall_s == m.info["runs_s"][1] and m.stdout_tail.strip() == "2"
    once = bench.measure("backfill", [sys.executable, "-c", script], dict(os.environ))  # no again: one run
    assert "runs_s" not in once.info and counter.read_text() == "4"
