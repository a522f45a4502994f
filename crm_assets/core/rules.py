"""Business rules that are configurable, and rule expressions shared by several layers.

``CrmRules`` is the Dagster resource holding every threshold and bin edge of
business_rules.md with its documented default. The SQL snippet functions
below are the only place each shared rule is written; the ordered rules
(status, tier, stage, event, score bins) are declared in
``core/ordered_rules.py``.
"""

from __future__ import annotations

import hashlib
import json

from dagster import ConfigurableResource
from pydantic import Field

from crm_assets.core.errors import CrmError

CONSUMABLE = "consumable"
DEVICE = "device"
KNOWN_CATEGORIES = ("consumable", "device", "accessories", "spare_parts")
CATEGORY_ALIASES = {"refill": "consumable"}
CONSENT_TRUE = ("1", "true", "yes", "y")

TIERS = ("Diamond", "Platinum", "Gold", "Silver", "Bronze", "Passive")
STATUSES = ("Active", "Not Active")
STAGES = ("Prospect", "New", "Active", "At Risk", "Lost")
EVENTS = ("New", "Lost", "Reactivated")
SCORES = ("r_score", "f_score", "m_score", "t_score")
SCORE_VALUES = (1, 2, 3, 4, 5)


class CrmRules(ConfigurableResource):
    """Thresholds (in units) and bin edges of the CRM rules; defaults per business_rules.md."""

    anonymous_groups: list[str] = Field(
        default=["General"], description="customer_group values of anonymous customers (trimmed, any case)"
    )
    t_high: float = Field(default=1000.0, description="AMC threshold of Diamond and Platinum")
    t_mid_high: float = Field(default=200.0, description="AMC threshold of Gold")
    t_mid: float = Field(default=50.0, description="AMC threshold of Silver")
    a_high: float = Field(default=1500.0, description="AOS threshold of Diamond")
    f_high: int = Field(default=6, description="orders in 6 months for Diamond")
    f_mid: int = Field(default=3, description="orders in 6 months for Platinum")
    r_score_max_months: list[int] = Field(
        default=[0, 1, 2, 5], description="largest months_since_last_purchase for r_score 5, 4, 3, 2 (else 1)"
    )
    f_score_min_orders: list[int] = Field(
        default=[2, 4, 7, 12], description="smallest o12 for f_score 2, 3, 4, 5 (else 1)"
    )
    t_score_min_months: list[int] = Field(
        default=[4, 7, 13, 25], description="smallest tenure_months for t_score 2, 3, 4, 5 (else 1)"
    )

    def as_dict(self) -> dict:
        return {name: getattr(self, name) for name in type(self).model_fields}

    def version(self) -> str:
        """A short hash of every rule value: equal hashes, equal rules."""
        canonical = json.dumps(self.as_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:12]

    def validate_values(self) -> None:
        if not (self.t_high >= self.t_mid_high >= self.t_mid > 0):
            raise CrmError("rules: thresholds must satisfy t_high >= t_mid_high >= t_mid > 0")
        for name in ("t_high", "t_mid_high", "t_mid", "a_high"):
            # crm explain shows AMC and AOS rounded down to hundredths: a comparison it writes is true for a
            # threshold of at most two decimals, and a third decimal of units per month means nothing here
            if round(getattr(self, name), 2) != getattr(self, name):
                raise CrmError(f"rules: {name} must have at most two decimals, got {getattr(self, name)}")
        for name in ("r_score_max_months", "f_score_min_orders", "t_score_min_months"):
            edges = getattr(self, name)
            if len(edges) != 4 or edges != sorted(edges) or len(set(edges)) != 4:
                raise CrmError(f"rules: {name} must be 4 increasing whole numbers, got {edges}")


def category_sql(expr: str) -> str:
    """Normalized product category: trimmed, lower case, ``refill`` -> ``consumable``."""
    aliases = " ".join(f"WHEN '{old}' THEN '{new}'" for old, new in CATEGORY_ALIASES.items())
    return f"(CASE lower(trim({expr})) {aliases} ELSE lower(trim({expr})) END)"


# White space and invisible characters around a value: spaces of every kind (Unicode Z: space, no-break
# space...), tabs, line breaks, NUL and the other control characters (Cc), a stray byte order mark or zero-width
# space (Cf). An RE2 class, for ``regexp_replace``.
PADDING = r"[\pZ\p{Cc}\p{Cf}]"


def trim_sql(expr: str) -> str:
    """SQL: ``expr`` without the white space, NULs and other invisible characters around it (see ``PADDING``).

    DuckDB's ``trim`` removes spaces only (a tab, a NUL or a CR stays), so ids and typed values use this one."""
    return f"regexp_replace({expr}, '^{PADDING}+|{PADDING}+$', '', 'g')"


def id_sql(expr: str) -> str:
    """Identifiers are text compared after trimming white space and invisible characters; blank is missing."""
    return f"nullif({trim_sql(expr)}, '')"


def consent_sql(expr: str) -> str:
    """A consent flag: true only for 1/true/yes/y (any case); blank or anything else is false."""
    values = ", ".join(f"'{v}'" for v in CONSENT_TRUE)
    return f"coalesce(lower(trim({expr})) IN ({values}), false)"


def anonymous_sql(expr: str, rules: CrmRules) -> str:
    """Whether a customer_group marks an anonymous customer."""
    groups = ", ".join("'" + g.strip().lower().replace("'", "''") + "'" for g in rules.anonymous_groups) or "NULL"
    return f"coalesce(lower(trim({expr})) IN ({groups}), false)"
