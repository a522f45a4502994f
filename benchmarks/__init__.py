"""Benchmark suite of the CRM pipeline: ``python -m benchmarks`` (see benchmarks/run.py and docs/performance.md)."""
