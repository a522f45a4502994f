"""The project's own SQL without Dagster: every ``build_*`` function of ``crm_assets.layers.pipeline``.

Runs the same layers as ``crm_assets.layers.pipeline.build_all`` (same order, same
functions, checks included) on a fresh DuckDB file, timing each layer, so the
benchmark can tell the SQL's share of ``crm run`` from Dagster's.

    python -m benchmarks.sql_only --input DIR --db OUT.duckdb --from YYYY-MM --to YYYY-MM
        [--memory-limit 8GB] [--threads N] [--statements]

``--statements`` also reports the slowest SQL statements.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import date
from pathlib import Path

import duckdb

from crm_assets.core.csv_input import CUSTOMERS, PRODUCTS
from crm_assets.core.partitioned import MonthWindow
from crm_assets.core.partitions import load_calendar
from crm_assets.core.resources import Warehouse
from crm_assets.core.rules import CrmRules
from crm_assets.engines.duckdb import DuckDBEngine
from crm_assets.layers.enriched import build_customers, build_transactions
from crm_assets.layers.features import build_activity, build_features
from crm_assets.layers.lifecycle import build_lifecycle
from crm_assets.layers.raw import load_master, load_transactions
from crm_assets.layers.reporting import build_snapshot
from crm_assets.layers.rfmt import build_rfmt


class _TimedConnection:
    """A DuckDB connection that records how long each ``execute`` takes."""

    def __init__(self, con, log: list):
        self._con, self._log = con, log

    def execute(self, sql, *args, **kwargs):
        started = time.perf_counter()
        result = self._con.execute(sql, *args, **kwargs)
        self._log.append((time.perf_counter() - started, " ".join(str(sql).split())[:160]))
        return result

    def __getattr__(self, name):
        return getattr(self._con, name)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.sql_only")
    parser.add_argument("--input", type=Path, required=True)
    parser.add_argument("--db", type=Path, required=True)
    parser.add_argument("--from", dest="first", required=True)
    parser.add_argument("--to", dest="last", required=True)
    parser.add_argument("--memory-limit", default=None, help="DuckDB memory_limit (default: the Warehouse resource's)")
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--statements", action="store_true")
    args = parser.parse_args(argv)

    partitions = load_calendar().keys()
    keys = tuple(k for k in partitions if args.first[:7] <= k[:7] <= args.last[:7])
    window = MonthWindow(date.fromisoformat(keys[0]), date.fromisoformat(keys[-1]), keys)
    first_partition, last_partition = date.fromisoformat(partitions[0]), date.fromisoformat(partitions[-1])

    config = {"temp_directory": f"{args.db}.tmp"}
    memory_limit = Warehouse(database=str(args.db)).memory_limit if args.memory_limit is None else args.memory_limit
    if memory_limit:
        config["memory_limit"] = memory_limit
    if args.threads:
        config["threads"] = args.threads
    args.db.parent.mkdir(parents=True, exist_ok=True)
    log: list = []
    con = _TimedConnection(duckdb.connect(str(args.db), config=config), log)
    engine = DuckDBEngine(con)  # the layers after raw, on the same timed connection
    rules = CrmRules()
    layers = [
        ("raw: masters", lambda: (load_master(con, args.input, PRODUCTS), load_master(con, args.input, CUSTOMERS))),
        (
            "raw: transactions",
            lambda: load_transactions(con, args.input, window.start, window.end, first_partition, last_partition),
        ),
        ("enriched", lambda: (build_customers(engine, rules), build_transactions(engine, window))),
        ("features: monthly activity", lambda: build_activity(engine, window)),
        ("features: customer features", lambda: build_features(engine, window)),
        ("lifecycle", lambda: build_lifecycle(engine, window)),
        ("rfmt", lambda: build_rfmt(engine, window, rules)),
        ("reporting: snapshot", lambda: build_snapshot(engine, window, rules)),
    ]
    timings = {}
    started = time.perf_counter()
    for name, build in layers:
        t = time.perf_counter()
        build()
        timings[name] = round(time.perf_counter() - t, 3)
    total = round(time.perf_counter() - started, 3)
    rows = con.execute("SELECT count(*) FROM reporting.customer_snapshot").fetchone()[0]
    result = {"rows": rows, "months": window.months, "seconds": total, "layers": timings}
    if args.statements:
        result["slowest_statements"] = [[round(s, 3), text] for s, text in sorted(log, reverse=True)[:12]]
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
