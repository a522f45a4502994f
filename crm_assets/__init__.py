"""CRM analytics: a Dagster project of monthly customer snapshots over DuckDB."""

__version__ = "0.1.0"
