"""Rule expressions that more than one layer needs, written once as SQL snippets.

Each function returns a SQL expression over the column expression it is given.
"""

from __future__ import annotations

CONSUMABLE = "consumable"
DEVICE = "device"
KNOWN_CATEGORIES = ("consumable", "device", "accessories", "spare_parts")
CATEGORY_ALIASES = {"refill": "consumable"}


def category_sql(expr: str) -> str:
    """Normalized product category: trimmed, lower case, ``refill`` -> ``consumable``."""
    aliases = " ".join(f"WHEN '{old}' THEN '{new}'" for old, new in CATEGORY_ALIASES.items())
    return f"(CASE lower(trim({expr})) {aliases} ELSE lower(trim({expr})) END)"


def id_sql(expr: str) -> str:
    """Identifiers are text compared after trimming white space; blank is missing."""
    return f"nullif(trim({expr}), '')"
