"""Dagster resources: the DuckDB warehouse and the landing folder.

One ``Warehouse`` resource owns every connection to the DuckDB file, so the
one-writer-per-file rule of DuckDB is handled in one place: writers hold a
connection only for the length of one transaction, readers open read-only.
It opens the engine of the layers after raw (``engine()``): DuckDB on this
file; ``engines/spark.py: SparkWarehouse`` is the same file with Spark as the
engine (``engines/selection.py`` picks one by ``CRM_ENGINE``).
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar, TextIO

import duckdb
from dagster import ConfigurableResource, EnvVar
from dagster_duckdb import DuckDBResource
from pydantic import Field, PrivateAttr

from crm_assets.core import schema, settings
from crm_assets.core.columns import Table
from crm_assets.core.errors import CrmError
from crm_assets.engines.base import Engine
from crm_assets.engines.duckdb import DuckDBEngine


class WarehouseLockedError(CrmError):
    """Another process holds the DuckDB file."""


def _is_lock_error(exc: Exception) -> bool:
    text = str(exc).lower()
    return "lock" in text and ("conflicting" in text or "could not set lock" in text)


_log = logging.getLogger("crm")


def _holder(exc: Exception) -> str:
    """``PID 1234`` of the process holding a DuckDB file, when DuckDB says it."""
    found = re.search(r"PID (\d+)", str(exc))
    return f" (process {found.group(1)})" if found else ""


def _open_error(path: Path, exc: BaseException) -> CrmError:
    """One line for a warehouse path that cannot be opened: a folder, unwritable, not a database."""
    if path.is_dir():
        return CrmError(
            f"{path}: is a folder; the warehouse must be a file path (--warehouse or {settings.ENV_WAREHOUSE})"
        )
    if isinstance(exc, OSError):
        return CrmError(f"{path}: cannot create the warehouse here ({exc.strerror or exc})")
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return CrmError(f"{path}: cannot open the warehouse ({first})")


def _env_value(variable: str, keep_blank: bool, whole_number: bool) -> str | None:
    """The variable's value as a field takes it; None: the field's default (unset, or blank unless kept)."""
    value = os.environ.get(variable)
    if value is None or (not value.strip() and not keep_blank):
        return None
    value = value.strip()
    if whole_number and not value.lstrip("-").isdigit():
        raise CrmError(f"{variable}={value} is not a whole number")
    return value


def env_field(variable: str, default, description: str, parse=str, keep_blank: bool = False):
    """A resource field set by an environment variable, read when the resource is built (else ``default``).

    A variable set blank is unset, unless ``keep_blank`` (e.g. a blank memory limit: DuckDB's own)."""

    def from_environment():
        value = _env_value(variable, keep_blank, parse is int)
        if value is None:
            return default() if callable(default) else default
        return parse(value)

    extra: dict[str, Any] = {"env": variable, "keep_blank": keep_blank}
    return Field(default_factory=from_environment, description=description, json_schema_extra=extra)


def env_config(resource_class: type[ConfigurableResource]) -> dict:
    """An ``EnvVar`` for each field of ``resource_class`` whose variable is set, so that Dagster reads the value
    when a run starts and its UI shows where it comes from (the Resources page); unset: the field's default."""
    config = {}
    for name, field in resource_class.model_fields.items():
        extra = field.json_schema_extra
        if not isinstance(extra, dict) or "env" not in extra:
            continue
        variable, whole_number = str(extra["env"]), field.annotation is int
        if _env_value(variable, bool(extra["keep_blank"]), whole_number) is not None:
            config[name] = EnvVar.int(variable) if whole_number else EnvVar(variable)
    return config


# DuckDB's memory limit unless CRM_DUCKDB_MEMORY_LIMIT says otherwise: the layers work in parts of a few
# million rows, so 1.5 GB keeps a backfill of 200,000 customers x 10 years within reach of a small machine
# (a process peaks about 250 MB above it; 100k customers x 5 years: 53.6 s and 1.75 GiB, against 52.5 s and
# 2.09 GiB with 3 GB).
DEFAULT_MEMORY_LIMIT = "1.5GB"


class Warehouse(DuckDBResource):
    """The DuckDB warehouse file: Dagster's ``DuckDBResource`` with the project's lock handling and memory settings.

    Defaults: ``path`` from ``CRM_WAREHOUSE`` (``data/warehouse/crm.duckdb``),
    a DuckDB memory limit of 1.5 GB (``CRM_DUCKDB_MEMORY_LIMIT``), spill files next to the
    warehouse, and up to ``lock_timeout_seconds`` of waiting when another
    process holds the file. The layers after raw compute on this file too
    (the DuckDB engine).
    """

    kind: ClassVar[str] = DuckDBEngine.kind  # the asset kind of the assets computed on its engine

    database: str = env_field(
        settings.ENV_WAREHOUSE,
        lambda: str(settings.warehouse_path()),
        "the DuckDB file (CRM_WAREHOUSE, default data/warehouse/crm.duckdb)",
    )
    memory_limit: str = env_field(
        "CRM_DUCKDB_MEMORY_LIMIT",
        DEFAULT_MEMORY_LIMIT,
        "DuckDB memory_limit (CRM_DUCKDB_MEMORY_LIMIT, default 1.5GB); beyond it DuckDB spills to temp_directory; "
        "blank: DuckDB's own default (80% of RAM)",
        keep_blank=True,
    )
    threads: int = env_field(
        "CRM_DUCKDB_THREADS", 0, "DuckDB threads (CRM_DUCKDB_THREADS); 0 = DuckDB default (all cores)", int
    )
    temp_directory: str = Field(default="", description="DuckDB spill folder; blank = <warehouse>.tmp")
    _run_lock: object = PrivateAttr(default=None)
    run_lock_timeout_seconds: float = Field(
        default=3600.0, description="how long a run waits for another run on the same warehouse to finish"
    )
    lock_timeout_seconds: int = env_field(
        "CRM_LOCK_TIMEOUT_SECONDS",
        120,
        "seconds to wait for another process holding the file (CRM_LOCK_TIMEOUT_SECONDS, whole seconds, default 120)",
        int,
    )

    @property
    def file(self) -> Path:
        return Path(self.database).expanduser()

    @contextmanager
    def engine(self) -> Iterator[Engine]:
        """Where the layers after raw run their statements: this DuckDB file, one connection for the unit of work."""
        with self.connect() as con:
            yield DuckDBEngine(con)

    def publish_raw(self, con: duckdb.DuckDBPyConnection, tables: Sequence[Table]) -> None:
        """Hand the raw ``tables`` the landing just loaded to the engine: here they are already where it reads."""

    def reader_files(self) -> list[str]:
        """The files a read-only connection reads beside this one (``crm sql`` allows those only): none."""
        return []

    def require_file(self) -> None:
        if not self.file.exists():
            raise CrmError(f"{self.file}: warehouse not found; run `crm run` first")

    def setup_for_execution(self, context) -> None:
        """Serialize runs: a run holds ``<warehouse>.runlock`` from start to end (one writer at a time)."""
        self._run_lock = RunLock(Path(f"{self.file}.runlock"), self.run_lock_timeout_seconds)
        self._run_lock.acquire()

    def teardown_after_execution(self, context) -> None:
        lock = getattr(self, "_run_lock", None)
        if lock is not None:
            lock.release()

    def _config(self, read_only: bool) -> dict:
        config: dict = dict(self.connection_config)
        if self.memory_limit:
            config["memory_limit"] = self.memory_limit
        if self.threads:
            config["threads"] = self.threads
        if not read_only:
            config["temp_directory"] = self.temp_directory or f"{self.file}.tmp"
        return config

    @contextmanager
    def get_connection(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """DuckDBResource's way in: the same as ``connect()``."""
        with self.connect() as con:
            yield con

    @contextmanager
    def connect(self, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        """A connection held for one unit of work; retries while the file is locked.

        On Spark (``SparkWarehouse``), a read-only connection reads the Spark warehouse's Parquet tables too."""
        path = self.file
        if read_only:
            self.require_file()
        if path.is_dir():
            raise _open_error(path, IsADirectoryError())
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise _open_error(path, exc) from None
        deadline = time.monotonic() + self.lock_timeout_seconds
        delay = 0.05
        waiting = False
        while True:
            try:
                con = duckdb.connect(str(path), read_only=read_only, config=self._config(read_only))
                break
            except duckdb.Error as exc:
                if not _is_lock_error(exc):
                    raise _open_error(path, exc) from None
                if not waiting and self.lock_timeout_seconds > 0:
                    waiting = True
                    _log.warning(
                        f"waiting for {path}: the warehouse is open in another process{_holder(exc)}; "
                        f"up to {self.lock_timeout_seconds:.0f} s (CRM_LOCK_TIMEOUT_SECONDS)"
                    )
                if time.monotonic() >= deadline:
                    raise WarehouseLockedError(
                        f"{path}: warehouse is locked by another process "
                        f"(waited {self.lock_timeout_seconds:.0f} s); close it or wait for the running job"
                    ) from None
                time.sleep(delay)
                delay = min(delay * 2, 1.0)
        try:
            con.execute("SET enable_progress_bar = false")  # no bar in run logs and terminals
            if read_only:
                schema.check_readable(con, str(path))
            else:
                schema.upgrade(con, str(path))
            yield con
        finally:
            con.close()


def table_names(con: duckdb.DuckDBPyConnection) -> set[str]:
    """``schema.table`` of every table of the warehouse open on ``con``."""
    rows = con.execute("SELECT table_schema, table_name FROM information_schema.tables").fetchall()
    return {f"{schema}.{table}" for schema, table in rows}


class RunLock:
    """An exclusive advisory lock on a file (``fcntl.flock``), released when the process dies."""

    def __init__(self, path: Path, timeout_seconds: float):
        self.path = path
        self.timeout_seconds = timeout_seconds
        self._handle: TextIO | None = None

    def acquire(self) -> None:
        import fcntl  # noqa: PLC0415  (fcntl is Unix-only: the module still imports on Windows)

        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            handle = open(self.path, "a+")
        except OSError as exc:
            raise CrmError(f"{self.path}: cannot create the run lock next to the warehouse ({exc.strerror})") from None
        deadline = time.monotonic() + self.timeout_seconds
        waiting = False
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if not waiting:
                    waiting = True
                    _log.warning(
                        f"waiting for another run on this warehouse to finish ({self.path} is held); "
                        f"up to {self.timeout_seconds:.0f} s"
                    )
                if time.monotonic() >= deadline:
                    handle.close()
                    raise WarehouseLockedError(
                        f"{self.path}: another run has held the warehouse for {self.timeout_seconds:.0f} s"
                    ) from None
                time.sleep(0.2)
        self._handle = handle

    def release(self) -> None:
        if self._handle is not None:
            import fcntl  # noqa: PLC0415  (fcntl is Unix-only: the module still imports on Windows)

            fcntl.flock(self._handle, fcntl.LOCK_UN)
            self._handle.close()
            self._handle = None


class InputFolder(ConfigurableResource):
    """The landing folder of the CSV files (``CRM_INPUT_DIR``, default ``data/input``)."""

    path: str = env_field(settings.ENV_INPUT_DIR, lambda: str(settings.input_dir()), "the folder of the CSV files")

    @property
    def folder(self) -> Path:
        return Path(self.path).expanduser()


class OutputFolder(ConfigurableResource):
    """Where reports, exports and Power BI files go (``CRM_OUTPUT_DIR``, default ``data/output``)."""

    path: str = env_field(
        settings.ENV_OUTPUT_DIR, lambda: str(settings.output_dir()), "the folder of the reports and exports"
    )
    workbook_list_rows: int = env_field(
        "CRM_WORKBOOK_LIST_ROWS",
        1_000_000,
        "customer rows a run writes into the monthly workbooks' lists, newest months first; the newest "
        "month always gets its list (CRM_WORKBOOK_LIST_ROWS, default 1,000,000)",
        int,
    )
    workbook_months: int = env_field(
        "CRM_WORKBOOK_MONTHS",
        1,
        "the newest months of a run that get their workbook and HTML report; the run removes the older months' "
        "files it recomputed (crm report writes any month); 0 = every month (CRM_WORKBOOK_MONTHS, default 1)",
        int,
    )

    @property
    def folder(self) -> Path:
        return Path(self.path).expanduser()
