"""``crm`` with DuckDB settings from the environment, for the benchmark only.

The ``Warehouse`` resource has ``memory_limit``, ``threads`` and
``temp_directory`` fields but reads no environment variable for them, so
``crm run`` always uses DuckDB's defaults (80 % of RAM, every core). This shim
runs the real ``crm`` command line after making ``Warehouse`` honour

    CRM_DUCKDB_MEMORY_LIMIT   e.g. 10GB
    CRM_DUCKDB_THREADS        e.g. 2
    CRM_DUCKDB_TEMP_DIRECTORY e.g. /tmp/spill

which is what the proposed change to ``crm_assets/resources.py`` would do
(see docs/performance.md). A value set explicitly on the resource wins. It
only applies to the ``crm`` process itself (the workbook worker processes
open read-only connections with the defaults).

    python -m benchmarks.crm_shim run --input ... --warehouse ...
"""

from __future__ import annotations

import os
import sys

ENV = {"memory_limit": "CRM_DUCKDB_MEMORY_LIMIT", "threads": "CRM_DUCKDB_THREADS",
       "temp_directory": "CRM_DUCKDB_TEMP_DIRECTORY"}


def patch() -> None:
    from crm_assets.resources import Warehouse

    original = Warehouse._config

    def _config(self, read_only: bool) -> dict:
        config = original(self, read_only)
        for key, env in ENV.items():
            value = os.environ.get(env, "").strip()
            if not value or (key == "temp_directory" and read_only):
                continue
            if key == "temp_directory" and self.temp_directory:
                continue
            if key != "temp_directory" and key in config:
                continue
            config[key] = int(value) if key == "threads" else value
        return config

    Warehouse._config = _config


def main() -> int:
    patch()
    from crm_assets.cli import main as crm_main

    return crm_main(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
