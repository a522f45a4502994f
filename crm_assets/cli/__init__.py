"""The ``crm`` command line: ``crm run`` through Dagster, the sample generator, reports, exports and queries."""
