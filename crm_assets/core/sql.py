"""SQL statements kept in ``.sql`` files beside the modules that run them (``<package>/sql/``), read once.

Statements the rules generate (thresholds, bin edges, column lists) stay in Python; the static ones live
here, where a reader, an editor and a linter expect SQL.
"""

from __future__ import annotations

from functools import cache
from importlib.resources import files


@cache
def load(package: str, name: str) -> str:
    """The text of ``<package>/sql/<name>``."""
    return files(package).joinpath("sql", name).read_text(encoding="utf-8")
