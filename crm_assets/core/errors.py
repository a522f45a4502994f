"""User-facing errors: one line naming the file, column, key or argument.

Also the recognisers of two errors that reach the user under another name: a full disk
(``no_space_left``) and a damaged database file (``damaged_file``), looked for along an error's chain.
"""

from __future__ import annotations

import errno
import re
from collections.abc import Iterator


class CrmError(Exception):
    """A user error (bad input, bad argument, locked warehouse).

    Its message is one line, printed as it is by the CLI without a traceback.
    """


class InputFileError(CrmError):
    """An input file that stops the load: missing, unreadable, missing column, duplicate key.

    ``check`` names the blocking raw-layer check that failed.
    """

    def __init__(self, message: str, check: str = "readable_with_required_columns"):
        super().__init__(message)
        self.check = check


# What DuckDB says of a database file it cannot read back: truncated, overwritten, not a DuckDB file at all.
DAMAGE_SIGNS = (
    "not a valid DuckDB database file",
    "Could not read enough bytes from file",
    "Corrupt database file",
    "does not match stored checksum",
    "Failure while replaying WAL file",
    "Serialization Error: Failed to deserialize",
)
NO_SPACE = "No space left on device"
# a path as DuckDB and Python quote it in a message: "/a/b", '/a/b', "C:\\a\\b"
_QUOTED_PATH = re.compile(r"""["']((?:/|~/|[A-Za-z]:[\\/]|\\\\)[^"']+)["']""")


def error_chain(error) -> Iterator:
    """``error`` and every error behind it, each once: the causes and contexts of a Python exception
    (``__cause__``, ``__context__``, even under ``raise ... from None``), or of Dagster's ``SerializableErrorInfo``
    (``cause``, ``context``) as a run's step failure records them."""
    seen: set[int] = set()
    stack = [error]
    while stack:
        current = stack.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        if isinstance(current, BaseException):
            stack.extend((current.__context__, current.__cause__))
        else:
            stack.extend((getattr(current, "context", None), getattr(current, "cause", None)))


def error_text(error) -> str:
    """The message of an exception, or of a ``SerializableErrorInfo``."""
    if isinstance(error, BaseException):
        return str(error)
    return str(getattr(error, "message", "") or "")


def _quoted_path(text: str) -> str | None:
    found = _QUOTED_PATH.search(text)
    return found.group(1) if found else None


def no_space_left(error) -> str | None:
    """Where a full disk stopped ``error`` or anything behind it (``ENOSPC``, "No space left on device"): the path
    named, ``""`` when none is; None when no full disk is in the chain.

    A full disk often surfaces as a later error (DuckDB's "cannot rollback - no transaction is active" after a
    failed commit), with the real one as its context."""
    for item in error_chain(error):
        text = error_text(item)
        if (isinstance(item, OSError) and item.errno == errno.ENOSPC) or NO_SPACE in text or "[Errno 28]" in text:
            filename = getattr(item, "filename", None) if isinstance(item, OSError) else None
            return str(filename) if filename is not None else (_quoted_path(text) or "")
    return None


def damaged_file(error) -> tuple[str | None, str] | None:
    """``(path or None, DuckDB's first line)`` when ``error`` or anything behind it says a database file is
    damaged (``DAMAGE_SIGNS``: truncated, bad checksum, not a DuckDB file); None otherwise. The deepest error
    that says so is quoted (DuckDB's own words, not a message that wraps them)."""
    found = None
    for item in error_chain(error):
        text = error_text(item).strip()
        if any(sign in text for sign in DAMAGE_SIGNS):
            found = next(t for t in text.splitlines() if any(s in t for s in DAMAGE_SIGNS))
    if found is None:
        return None
    # a Python class name in front (a Dagster record's message): DuckDB's own words only
    line = re.sub(r"^[\w.]+(?:Exception|Error): (?=\w+ Error: )", "", found.strip())
    return _quoted_path(line), line
