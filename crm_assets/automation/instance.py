"""Tuning of the local Dagster instance's SQLite storage, applied in every process that loads the project.

Dagster's SQLite run and event storage (WAL mode) syncs to disk on every
event by default; a backfill of 60 months writes a few thousand events, and
the syncs then dominate a run. ``CRM_DAGSTER_SQLITE_SYNCHRONOUS`` (default
``NORMAL``) sets SQLite's ``synchronous`` pragma on those connections:
``NORMAL`` is safe against corruption in WAL mode (a power cut can lose the
last events, never the warehouse); ``FULL`` is Dagster's default; ``OFF``
trades safety for speed.

A backfill of N months is one run (single-run backfill policy), and Dagster
by default logs one "materialization planned" event per asset and month
before the run starts: 2,160 events for 120 months, about a minute on
SQLite. ``DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS`` (a Dagster
setting, defaulted to ``1`` here and in ``make dev``) logs one event per
asset holding the range instead. The materializations themselves are still
recorded per month; the one difference in the UI is that the months of a
failed run show as missing rather than failed.
"""

import os

from sqlalchemy import event
from sqlalchemy.engine import Engine

SYNC_ENV = "CRM_DAGSTER_SQLITE_SYNCHRONOUS"
PLANNED_EVENTS_ENV = "DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS"
os.environ.setdefault(PLANNED_EVENTS_ENV, "1")
ALLOWED = ("OFF", "NORMAL", "FULL", "EXTRA")


def synchronous_mode() -> str:
    value = os.environ.get(SYNC_ENV, "NORMAL").strip().upper()
    return value if value in ALLOWED else "NORMAL"


@event.listens_for(Engine, "connect")
def _sqlite_synchronous(dbapi_connection, _record) -> None:
    if type(dbapi_connection).__module__.startswith("sqlite3"):
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA synchronous={synchronous_mode()}")
        finally:
            cursor.close()
