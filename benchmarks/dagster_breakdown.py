"""Where the time of a ``crm run`` went, from the run's own Dagster event log.

    DAGSTER_HOME=... python -m benchmarks.dagster_breakdown [--run-id ID]

Prints JSON: the events of the run by type, the time spent before the run
started (writing the "materialization planned" events: one per asset and
month), each step's duration, and the run's span. Read with Dagster's public
instance API, after the run, from another process.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter, defaultdict

from dagster import DagsterInstance


def breakdown(run_id: str | None = None) -> dict:
    with DagsterInstance.get() as instance:
        if run_id is None:
            runs = instance.get_runs(limit=1)
            if not runs:
                return {}
            run_id = runs[0].run_id
        events = instance.all_logs(run_id)
    by_type: Counter = Counter()
    events_by_step: Counter = Counter()
    starts: dict = {}
    steps: dict = defaultdict(float)
    run_start = run_end = None
    for entry in events:
        event = entry.dagster_event
        if event is None:
            continue
        kind = event.event_type_value
        by_type[kind] += 1
        events_by_step[entry.step_key or "(run)"] += 1
        if kind == "PIPELINE_START":
            run_start = entry.timestamp
        elif kind in ("PIPELINE_SUCCESS", "PIPELINE_FAILURE"):
            run_end = entry.timestamp
        elif kind == "STEP_START":
            starts[entry.step_key] = entry.timestamp
        elif kind in ("STEP_SUCCESS", "STEP_FAILURE") and entry.step_key in starts:
            steps[entry.step_key] += entry.timestamp - starts.pop(entry.step_key)
    stamps = [e.timestamp for e in events]
    first = min(stamps) if stamps else None
    return {
        "run_id": run_id,
        "events": sum(by_type.values()),
        "events_by_type": dict(by_type.most_common()),
        "planned_phase_s": round(run_start - first, 3) if run_start and first else None,
        "run_span_s": round(run_end - first, 3) if run_end and first else None,
        "steps": {
            k: {"seconds": round(v, 3), "events": events_by_step.get(k, 0)}
            for k, v in sorted(steps.items(), key=lambda kv: -kv[1])
        },
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.dagster_breakdown")
    parser.add_argument("--run-id", default=None)
    args = parser.parse_args(argv)
    print(json.dumps(breakdown(args.run_id)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
