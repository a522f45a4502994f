"""Dagster resources: the DuckDB warehouse and the landing folder.

One ``Warehouse`` resource owns every connection to the DuckDB file, so the
one-writer-per-file rule of DuckDB is handled in one place: writers hold a
connection only for the length of one transaction, readers open read-only.
"""

from __future__ import annotations

import os
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import duckdb
from dagster import ConfigurableResource
from pydantic import Field

from crm_assets import settings
from crm_assets.errors import CrmError


class WarehouseLockedError(CrmError):
    """Another process holds the DuckDB file."""


def _is_lock_error(exc: Exception) -> bool:
    text = str(exc).lower()
    return "lock" in text and ("conflicting" in text or "could not set lock" in text)


class Warehouse(ConfigurableResource):
    """The DuckDB warehouse file.

    Defaults: ``path`` from ``CRM_WAREHOUSE`` (``data/warehouse/crm.duckdb``),
    no memory limit beyond DuckDB's own (80% of RAM), spill files next to the
    warehouse, and up to ``lock_timeout_seconds`` of waiting when another
    process holds the file.
    """

    path: str = Field(default_factory=lambda: str(settings.warehouse_path()))
    memory_limit: str = Field(default="", description="DuckDB memory_limit, e.g. '8GB'; blank = DuckDB default")
    threads: int = Field(default=0, description="DuckDB threads; 0 = DuckDB default (all cores)")
    temp_directory: str = Field(default="", description="DuckDB spill folder; blank = <warehouse>.tmp")
    lock_timeout_seconds: float = Field(
        default_factory=lambda: float(os.environ.get("CRM_LOCK_TIMEOUT_SECONDS", "120")),
        description="how long to wait for another process holding the file (CRM_LOCK_TIMEOUT_SECONDS, default 120)",
    )

    def _config(self, read_only: bool) -> dict:
        config: dict = {}
        if self.memory_limit:
            config["memory_limit"] = self.memory_limit
        if self.threads:
            config["threads"] = self.threads
        if not read_only:
            config["temp_directory"] = self.temp_directory or f"{self.path}.tmp"
        return config

    @contextmanager
    def connect(self, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        """A connection held for one unit of work; retries while the file is locked."""
        path = Path(self.path)
        if read_only and not path.exists():
            raise CrmError(f"{path}: warehouse not found; run `crm run` first")
        path.parent.mkdir(parents=True, exist_ok=True)
        deadline = time.monotonic() + self.lock_timeout_seconds
        delay = 0.05
        while True:
            try:
                con = duckdb.connect(str(path), read_only=read_only, config=self._config(read_only))
                break
            except duckdb.Error as exc:
                if not _is_lock_error(exc):
                    raise
                if time.monotonic() >= deadline:
                    raise WarehouseLockedError(
                        f"{path}: warehouse is locked by another process "
                        f"(waited {self.lock_timeout_seconds:.0f} s); close it or wait for the running job"
                    ) from None
                time.sleep(delay)
                delay = min(delay * 2, 1.0)
        try:
            yield con
        finally:
            con.close()


class InputFolder(ConfigurableResource):
    """The landing folder of the CSV files (``CRM_INPUT_DIR``, default ``data/input``)."""

    path: str = Field(default_factory=lambda: str(settings.input_dir()))


class OutputFolder(ConfigurableResource):
    """Where reports, exports and Power BI files go (``CRM_OUTPUT_DIR``, default ``data/output``)."""

    path: str = Field(default_factory=lambda: str(settings.output_dir()))
