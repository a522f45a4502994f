"""The Power BI star schema declared once: every Parquet file's columns, the query that fills it, keys and relationships.

Each file is a ``Table`` contract (``crm_assets/core/columns.py``): its
columns, in order, with their DuckDB types and descriptions. The query of a
file is built from its contract (``select``: one expression per column, a
plain column where the name says it all), the Power BI project's tables
(``pbip.py``) are written from the same contracts, and the tests compare the
Parquet schemas with them, so a column is added in one place.

Keys are integers: Power BI compares text without case, so ``c1`` and ``C1``
would be one customer in a relationship on ``customer_id``.
``customer_key`` is a 63-bit number taken from the MD5 of the id's bytes
(``customer_key_sql``): the same id has the same key in every refresh and on
every machine, a customer appearing later changes no other key (a rank over
the ids would), and ids differing only by case get different keys. Two ids
sharing a key (about one chance in 10^7 for a million customers) stop the
refresh rather than merge. The key of a status, tier, stage or event is its
position in the rules' order, which is also its sort order.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field

from crm_assets.core.columns import Table, col
from crm_assets.core.rules import EVENTS, STAGES, STATUSES, TIERS
from crm_assets.layers.tables import ENRICHED_CUSTOMERS, SNAPSHOT_TABLE

SNAPSHOT = SNAPSHOT_TABLE.name
FACT = "fact_customer_month"
DATE = "dim_date"
DATE_COLUMN = "date"


@dataclass(frozen=True)
class StarTable:
    """One Parquet file (a folder of monthly files for the fact) and how the model shows it."""

    contract: Table
    sql: str  # the query of the file (the fact's takes the month as its one parameter)
    key: str | None = None  # the column the fact's relationship points to: unique in the file
    hidden: tuple[str, ...] = ()  # technical columns: keys, sort orders, text the dimensions carry
    sort_by: Mapping[str, str] = field(default_factory=dict)  # column -> the column it sorts by
    is_date_table: bool = False

    @property
    def name(self) -> str:
        return self.contract.name

    def __post_init__(self) -> None:
        named = {*self.hidden, *self.sort_by, *self.sort_by.values(), *([self.key] if self.key else [])}
        assert named <= set(self.contract.names()), f"{self.name}: {sorted(named - set(self.contract.names()))}"


@dataclass(frozen=True)
class Relationship:
    """Many fact rows to one dimension row, filtering from the dimension to the fact only."""

    from_column: str  # in the fact
    to_table: str
    to_column: str
    active: bool = True


def select(table: Table, exprs: Mapping[str, str], tail: str) -> str:
    """``SELECT`` every column of ``table`` in its order: ``exprs[name] AS name``, or the column itself."""
    unknown = set(exprs) - set(table.names())
    assert not unknown, f"{table.name}: no such columns {sorted(unknown)}"
    items = ",\n    ".join(f"{exprs[c]} AS {c}" if c in exprs else c for c in table.names())
    return f"SELECT {items}\n{tail}"


def customer_key_sql(expr: str) -> str:
    """The customer's surrogate key: the first 64 bits of the MD5 of the id, shifted to a positive BIGINT."""
    return f"(('0x' || md5({expr})[1:16])::UBIGINT >> 1)::BIGINT"


# ---- the small dimensions: the spec spellings, their order and what each means

DEFINITIONS = {
    "activity_status": {
        "Active": "units in the last 12 months (m12 > 0)",
        "Not Active": "no units in the last 12 months",
    },
    "value_tier": {
        "Diamond": "AMC >= t_high, AOS >= a_high and o6 >= f_high",
        "Platinum": "AMC >= t_high and o6 >= f_mid",
        "Gold": "AMC >= t_mid_high",
        "Silver": "AMC >= t_mid",
        "Bronze": "AMC > 0",
        "Passive": "Active but no units in the last 6 months",
    },
    "lifecycle_stage": {
        "Prospect": "never bought a consumable",
        "New": "first purchase within the last 12 months",
        "Active": "bought in the last 6 months, past the first year",
        "At Risk": "past the first year, nothing in the last 6 months",
        "Lost": "nothing in the last 12 months",
    },
    "lifecycle_event": {
        "New": "first-ever consumable purchase in the month",
        "Lost": "last purchase just left the 12-month window",
        "Reactivated": "bought in the month after 12+ silent months",
    },
}
SMALL_DIMENSIONS = {
    "dim_activity_status": ("activity_status", STATUSES),
    "dim_value_tier": ("value_tier", TIERS),
    "dim_lifecycle_stage": ("lifecycle_stage", STAGES),
    "dim_lifecycle_event": ("lifecycle_event", EVENTS),
}
_LABELS = {
    "activity_status": "activity status",
    "value_tier": "value tier",
    "lifecycle_stage": "lifecycle stage",
    "lifecycle_event": "lifecycle event",
}


def key_column(column: str) -> str:
    """The integer key of a small dimension's value: ``value_tier`` -> ``value_tier_key``."""
    return f"{column}_key"


def code_sql(expr: str, values: tuple[str, ...]) -> str:
    """The key of a value: its position in the rules' order (1 = first); NULL (no tier, no event) stays NULL."""
    cases = " ".join(f"WHEN '{v}' THEN {i}" for i, v in enumerate(values, 1))
    return f"(CASE {expr} {cases} END)::INTEGER"


def _small_dimension(name: str, column: str, values: tuple[str, ...]) -> StarTable:
    # Every column name is the dimension's own (no shared sort_order / definition), so Power BI's
    # relationship autodetection of the manual path finds nothing to join two dimensions on.
    label = _LABELS[column]
    contract = Table(
        name,
        f"The {label} values, in the order of the rules.",
        (
            col(f"{key_column(column)} INTEGER NOT NULL", f"Key and sort order of the {label} (1 = first)."),
            col(f"{column} VARCHAR NOT NULL", f"The {label}, spelled as in the business rules."),
            col(f"{column}_definition VARCHAR NOT NULL", "What it means."),
        ),
        label,
    )
    definitions = DEFINITIONS[column]
    rows = ", ".join(f"({i}, '{v}', '{definitions[v]}')" for i, v in enumerate(values, 1))
    sql = f"SELECT * FROM (VALUES {rows}) AS t({', '.join(contract.names())}) ORDER BY 1"
    return StarTable(
        contract, sql, key=key_column(column), hidden=(key_column(column),), sort_by={column: key_column(column)}
    )


# ---- the fact

_CUSTOMER_KEY = col(
    "customer_key BIGINT NOT NULL", "Surrogate key of the customer (dim_customer), stable across refreshes."
)
_FACT_KEYS = {
    "activity_status": col("activity_status_key INTEGER NOT NULL", "Key of activity_status (dim_activity_status)."),
    "value_tier": col("value_tier_key INTEGER", "Key of value_tier (dim_value_tier); blank when Not Active."),
    "prev_value_tier": col(
        "prev_value_tier_key INTEGER", "Key of prev_value_tier (dim_value_tier, inactive relationship)."
    ),
    "lifecycle_stage": col("lifecycle_stage_key INTEGER NOT NULL", "Key of lifecycle_stage (dim_lifecycle_stage)."),
    "lifecycle_event": col(
        "lifecycle_event_key INTEGER", "Key of lifecycle_event (dim_lifecycle_event); blank when none."
    ),
}
_VALUES = {"prev_value_tier": TIERS, **{column: values for column, values in SMALL_DIMENSIONS.values()}}
FACT_TABLE = Table(
    FACT,
    "One row per row of reporting.customer_snapshot (customer x report month), with the keys of its dimensions.",
    (_CUSTOMER_KEY, *_FACT_KEYS.values(), *SNAPSHOT_TABLE.columns),
    "customer and report month",
)
# No ORDER BY: Power BI does not care about row order, and a sort of every month costs a tenth of the copy.
FACT_MONTH_SQL = select(
    FACT_TABLE,
    {
        "customer_key": customer_key_sql("customer_id"),
        **{key.name: code_sql(column, _VALUES[column]) for column, key in _FACT_KEYS.items()},
    },
    f"FROM {SNAPSHOT} WHERE report_month = ?",
)
# In the model the fact's codes and ids are reached through the dimensions, which sort them and keep case apart.
_FACT_HIDDEN = (
    "customer_key",
    *(c.name for c in _FACT_KEYS.values()),
    "customer_id",
    "report_month",
    "activity_status",
    "value_tier",
    "prev_value_tier",
    "lifecycle_stage",
    "lifecycle_event",
)

# ---- the customers

_CONSENT = {name: ENRICHED_CUSTOMERS.column(name) for name in ("opt_email", "opt_sms", "opt_phone")}
CUSTOMER_TABLE = Table(
    "dim_customer",
    "Every customer with a snapshot row: the current master's attributes; contact data only where consented.",
    (
        _CUSTOMER_KEY,
        SNAPSHOT_TABLE.column("customer_id"),
        *(ENRICHED_CUSTOMERS.column(n) for n in ("customer_name", "customer_group", "city", "created_date")),
        dataclasses.replace(ENRICHED_CUSTOMERS.column("email"), description="E-mail address, only when opt_email."),
        dataclasses.replace(
            ENRICHED_CUSTOMERS.column("mobile_number"), description="Mobile number, only when opt_sms or opt_phone."
        ),
        *(dataclasses.replace(c, not_null=True) for c in _CONSENT.values()),
        col("first_report_month DATE NOT NULL", "First report month with a snapshot row."),
        col("last_report_month DATE NOT NULL", "Last report month with a snapshot row."),
    ),
    "customer",
)
# Contact data only where the current consent allows it (email: opt_email; mobile number: opt_sms or
# opt_phone), as in exports.
DIM_CUSTOMER_SQL = select(
    CUSTOMER_TABLE,
    {
        "customer_key": customer_key_sql("seen.customer_id"),
        "customer_id": "seen.customer_id",
        "email": "CASE WHEN c.opt_email THEN nullif(c.email, '') END",
        "mobile_number": "CASE WHEN c.opt_sms OR c.opt_phone THEN nullif(c.mobile_number, '') END",
        **{name: f"coalesce(c.{name}, false)" for name in _CONSENT},
        "first_report_month": "seen.first_report_month",
        "last_report_month": "seen.last_report_month",
    },
    f"""FROM (
    SELECT customer_id, min(report_month) AS first_report_month, max(report_month) AS last_report_month
    FROM {SNAPSHOT} GROUP BY customer_id
) seen LEFT JOIN enriched.customers c USING (customer_id)
ORDER BY seen.customer_id""",
)

# ---- months and days

# The newest month with data: a month built past the newest transaction (by an explicit crm run --to) is not latest.
_LATEST = f"""(
    SELECT coalesce(
        max(report_month) FILTER (WHERE report_month <= (SELECT max(partition_month) FROM raw.sales_transactions)),
        max(report_month)
    ) AS latest FROM {SNAPSHOT}
) latest"""
_MONTH_COLUMNS = (
    col("year INTEGER NOT NULL", "Calendar year."),
    col("quarter INTEGER NOT NULL", "Quarter, 1 to 4."),
    col("quarter_label VARCHAR NOT NULL", "Q1 .. Q4."),
    col("year_quarter VARCHAR NOT NULL", "e.g. 2025-Q4."),
    col("month_number INTEGER NOT NULL", "Month of the year, 1 to 12."),
    col("month_name VARCHAR NOT NULL", "e.g. December."),
    col("month_short VARCHAR NOT NULL", "e.g. Dec."),
    col("year_month VARCHAR NOT NULL", "e.g. 2025-12."),
    col("month_label VARCHAR NOT NULL", "e.g. Dec 2025."),
    col("year_month_sort INTEGER NOT NULL", "year x 100 + month, e.g. 202512: the sort key of the month."),
    col("is_latest BOOLEAN NOT NULL", "The month is the newest month with data (the default filter)."),
    col("months_from_latest INTEGER NOT NULL", "0 for the latest month, -1 the month before, ..."),
)


def _month_exprs(m: str) -> dict[str, str]:
    """The month columns of a month ``m`` (a DATE, the first of the month); ``latest`` comes from ``_LATEST``."""
    return {
        "year": f"year({m})::INTEGER",
        "quarter": f"quarter({m})::INTEGER",
        "quarter_label": f"'Q' || quarter({m})",
        "year_quarter": f"strftime({m}, '%Y') || '-Q' || quarter({m})",
        "month_number": f"month({m})::INTEGER",
        "month_name": f"strftime({m}, '%B')",
        "month_short": f"strftime({m}, '%b')",
        "year_month": f"strftime({m}, '%Y-%m')",
        "month_label": f"strftime({m}, '%b %Y')",
        "year_month_sort": f"(year({m}) * 100 + month({m}))::INTEGER",
        "is_latest": f"({m} = latest)",
        "months_from_latest": f"((year({m}) - year(latest)) * 12 + month({m}) - month(latest))::INTEGER",
    }


_MONTH_SORTS = {"month_name": "month_number", "month_short": "month_number", "month_label": "year_month_sort"}
MONTH_TABLE = Table(
    "dim_month",
    "One row per report month held (for reports built on it; the model's calendar is dim_date).",
    (SNAPSHOT_TABLE.column("report_month"), *_MONTH_COLUMNS),
    "report month",
)
DIM_MONTH_SQL = select(
    MONTH_TABLE,
    _month_exprs("report_month"),
    f"FROM (SELECT DISTINCT report_month FROM {SNAPSHOT}) months, {_LATEST}\nORDER BY report_month",
)
DATE_TABLE = Table(
    DATE,
    "The calendar: one row per day from the first day of the first report month to the last day of the newest.",
    (
        col(f"{DATE_COLUMN} DATE NOT NULL", "The day (the fact's report_month is the first day of its month)."),
        col("month_start DATE NOT NULL", "First day of the month: the report month of the day."),
        *_MONTH_COLUMNS,
        col("day_of_month INTEGER NOT NULL", "Day of the month, 1 to 31."),
    ),
    "day",
)
DIM_DATE_SQL = select(
    DATE_TABLE,
    {
        DATE_COLUMN: "day::DATE",
        "month_start": "date_trunc('month', day)::DATE",
        **_month_exprs("date_trunc('month', day)::DATE"),
        "day_of_month": "day(day)::INTEGER",
    },
    f"""FROM (SELECT min(report_month) AS first, max(report_month) AS last FROM {SNAPSHOT}) bounds,
    range(bounds.first, bounds.last + INTERVAL 1 MONTH, INTERVAL 1 DAY) days(day), {_LATEST}
ORDER BY day""",
)

# ---- the star

DIMENSIONS = (
    StarTable(
        CUSTOMER_TABLE,
        DIM_CUSTOMER_SQL,
        key="customer_key",
        hidden=("customer_key",),
    ),
    StarTable(
        DATE_TABLE,
        DIM_DATE_SQL,
        key=DATE_COLUMN,
        hidden=("year_month_sort",),
        sort_by={**_MONTH_SORTS, "year_month": "year_month_sort"},
        is_date_table=True,
    ),
    StarTable(MONTH_TABLE, DIM_MONTH_SQL, sort_by=_MONTH_SORTS),
    *(_small_dimension(name, column, values) for name, (column, values) in SMALL_DIMENSIONS.items()),
)
FACT_STAR = StarTable(FACT_TABLE, FACT_MONTH_SQL, hidden=_FACT_HIDDEN)
TABLES = {t.name: t for t in (FACT_STAR, *DIMENSIONS)}
# dim_month stays a file for reports built on it; in the project the calendar is dim_date alone, so that a month
# filter reaches the fact by one path.
MODEL_TABLES = tuple(name for name in TABLES if name != MONTH_TABLE.name)

RELATIONSHIPS = (
    Relationship("customer_key", "dim_customer", "customer_key"),
    # The one relationship on a date: it is what makes dim_date the date table of time intelligence.
    Relationship("report_month", DATE, DATE_COLUMN),
    *(Relationship(key_column(c), name, key_column(c)) for name, (c, _) in SMALL_DIMENSIONS.items()),
    # for migration visuals, with USERELATIONSHIP; inactive so that the tier filter has one path
    Relationship("prev_value_tier_key", "dim_value_tier", "value_tier_key", active=False),
)


def dimension_sql() -> dict[str, str]:
    """Every dimension file of the star schema (name without ``.parquet``) and the query that fills it."""
    return {t.name: t.sql for t in DIMENSIONS}
