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

Dagster's SQLite event log also builds a new SQLAlchemy engine, and a new
SQLite connection, for each group of statements (two per event), and every
close of a WAL database checkpoints it: here the engines of the few shards in
use are kept, with one connection per thread (a one-month `crm run` on a
tiny data set: 16 s before, 11 s after).

Three more per-event costs of that storage are cut, with the same rows
written: for each materialization it asks SQLite, through a new engine,
whether a table exists, and reads the columns of the asset key table back (a
table or column once found is kept in mind); and it serializes the "check
planned" event once per month of the run, where once per event serves every
row (the default sample's full run, 60 months: 11.2 s before, 10.3 s after).
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


ENGINES_KEPT = 8  # shards (the index and the newest runs) whose engine, and connection per thread, stay open


def _reuse_engines() -> None:
    """Dagster's SQLite event log opens, and closes, a new engine and connection for every statement group (about
    two per event): each close of a WAL database checkpoints it. Keep the engine, and one connection per thread,
    of the few shards in use (the index and the running run's); evicted ones are closed."""
    from collections import OrderedDict
    from contextlib import contextmanager

    from dagster._core.storage.event_log.sqlite import sqlite_event_log
    from sqlalchemy import create_engine
    from sqlalchemy.pool import SingletonThreadPool

    timeout = sqlite_event_log.SQLITE_BUSY_TIMEOUT_SECONDS

    @contextmanager
    def _connect(self, shard: str):
        with self._db_lock:
            engines = self.__dict__.setdefault("_crm_engines", OrderedDict())
            engine = engines.pop(shard, None)
            if engine is None:
                engine = create_engine(
                    self.conn_string_for_shard(shard), poolclass=SingletonThreadPool, connect_args={"timeout": timeout}
                )
            engines[shard] = engine
            while len(engines) > ENGINES_KEPT:
                engines.popitem(last=False)[1].dispose()
            if shard not in self._initialized_dbs:
                self._initdb(engine)
                self._initialized_dbs.add(shard)
            with engine.connect() as conn:
                with conn.begin():
                    yield conn
            if shard != sqlite_event_log.INDEX_SHARD_NAME:
                # the UI follows a running run by watching its file change; with the connection kept, a write
                # reaches only the -wal file until a checkpoint, so touch the file after each write
                try:
                    os.utime(self.path_for_shard(shard))
                except OSError:
                    pass

    sqlite_event_log.SqliteEventLogStorage._connect = _connect


_reuse_engines()


def _remember_tables() -> None:
    """For every materialization, ``has_table`` builds a new engine to ask SQLite whether a table exists, and the
    asset key table's columns are read back: a table or column once found stays (the storage only ever adds)."""
    from dagster._core.storage.event_log import sql_event_log as sql
    from dagster._core.storage.event_log.sqlite import sqlite_event_log

    asked = sqlite_event_log.SqliteEventLogStorage.has_table
    has_columns = sql.SqlEventLogStorage._has_asset_key_index_cols_on_connection

    def has_table(self, table_name: str) -> bool:
        found = self.__dict__.setdefault("_crm_tables", set())
        if table_name not in found and asked(self, table_name):
            found.add(table_name)
        return table_name in found

    def has_index_columns(self, conn) -> bool:
        if not self.__dict__.get("_crm_index_columns"):
            self.__dict__["_crm_index_columns"] = has_columns(self, conn)
        return self.__dict__["_crm_index_columns"]

    sqlite_event_log.SqliteEventLogStorage.has_table = has_table
    sqlite_event_log.SqliteEventLogStorage._has_asset_key_index_cols_on_connection = has_index_columns


def _serialize_planned_checks_once():
    """A check planned for N months is one event stored as N rows: serialize the event once, not N times.

    Returns Dagster's own writer, which it replaces."""
    from dagster._core.storage.event_log import sql_event_log as sql

    def _store_asset_check_evaluation_planned(self, event, event_id) -> None:
        planned = event.dagster_event.event_specific_data
        keys = planned.partitions_subset.get_partition_keys() if planned.partitions_subset else [None]
        serialized = sql.serialize_value(event)
        row = dict(
            asset_key=planned.asset_key.to_string(),
            check_name=planned.check_name,
            run_id=event.run_id,
            execution_status=sql.AssetCheckExecutionRecordStatus.PLANNED.value,
            evaluation_event=serialized,
            evaluation_event_timestamp=self._event_insert_timestamp(event),
            evaluation_event_storage_id=event_id,
        )
        with self.index_connection() as conn:
            conn.execute(sql.AssetCheckExecutionsTable.insert().values([{**row, "partition": key} for key in keys]))

    replaced = sql.SqlEventLogStorage._store_asset_check_evaluation_planned
    sql.SqlEventLogStorage._store_asset_check_evaluation_planned = _store_asset_check_evaluation_planned
    return replaced


_remember_tables()
# kept so that a test compares its rows with those of the writer that replaced it
DAGSTER_PLANNED_CHECK_WRITER = _serialize_planned_checks_once()
