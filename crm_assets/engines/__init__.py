"""The engines the layers after raw compute on: the ``Engine`` protocol (``base``), DuckDB and Spark."""
