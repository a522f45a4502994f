"""Why a customer is in its segment (``crm explain``): the month's figures and, per rule, the branch that matched.

Every rule is explained from its declaration in ``core/ordered_rules.py``, evaluated in DuckDB on the
customer's row of ``features.customer_features``, with the thresholds the warehouse recorded for the month in
``reporting.snapshot_manifest`` (the configured ``CrmRules`` when it recorded none). The explanation decides
on its own (the first branch whose condition holds) and is compared with the value stored by the pipeline:
a difference is an error, never a quiet wrong sentence. ``explain_sql`` serves one customer or, without a
customer, every customer of a range of months (the test over the whole sample).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date

from crm_assets.core.errors import CrmError
from crm_assets.core.months import add_months
from crm_assets.core.ordered_rules import (
    ACTIVITY_STATUS,
    LIFECYCLE_EVENT,
    LIFECYCLE_STAGE,
    M_SCORE_K,
    M_SCORE_N,
    NONE_LABEL,
    NOT_ACTIVE,
    VALUE_TIER,
    OrderedRule,
    hundredths_down,
    inputs_of,
    m_score_sql,
    m_score_words_sql,
    shown,
)
from crm_assets.core.rules import CrmRules
from crm_assets.layers import lifecycle, rfmt
from crm_assets.layers.tables import SNAPSHOT_MANIFEST
from crm_assets.outputs.workbook import require_month


class ExplanationMismatch(RuntimeError):
    """The rules, evaluated on the stored figures, do not give the stored value: the warehouse disagrees with them."""


@dataclass(frozen=True)
class Explained:
    key: str  # column prefix of EXPLAIN_SQL
    title: str
    rule: OrderedRule
    stored: str  # the stored value's column
    inputs: dict[str, str]


EXPLAINED = (
    Explained(
        "status", "activity status", ACTIVITY_STATUS, "l.activity_status", lifecycle.LIFECYCLE_INPUTS["activity_status"]
    ),
    Explained("tier", "value tier", VALUE_TIER, "r.value_tier", rfmt.TIER_INPUTS),
    Explained("prev_tier", "previous month's tier", VALUE_TIER, "r.prev_value_tier", rfmt.PREV_TIER_INPUTS),
    Explained(
        "stage", "lifecycle stage", LIFECYCLE_STAGE, "l.lifecycle_stage", lifecycle.LIFECYCLE_INPUTS["lifecycle_stage"]
    ),
    Explained(
        "event", "lifecycle event", LIFECYCLE_EVENT, "l.lifecycle_event", lifecycle.LIFECYCLE_INPUTS["lifecycle_event"]
    ),
    *(Explained(r.column, r.column, r, f"r.{r.column}", rfmt.SCORE_INPUTS[r.column]) for r in rfmt.SCORE_RULES),
)
# the previous month's status, from the previous month's figures like prev_value_tier
PREV_STATUS_INPUTS = inputs_of(ACTIVITY_STATUS, "f", lines_m12="f.prev_lines_m12")

# the figures printed, by line: (label, SQL text)
FIGURES = {
    "units": (
        ("m1", shown("f.m1")),
        ("m6", shown("f.m6")),
        ("m12", shown("f.m12")),
        ("m13", shown("f.m13")),
        ("m_total", shown("f.m_total")),
    ),
    "orders": (("o6", shown("f.o6")), ("o12", shown("f.o12"))),
    "qualifying lines": (
        ("lines_total", shown("f.lines_total")),
        ("lines_m1", shown("f.lines_m1")),
        ("lines_m6", shown("f.lines_m6")),
        ("lines_m12", shown("f.lines_m12")),
        ("lines_m13", shown("f.lines_m13")),
    ),
    "derived": (
        ("AMC = m6/6", hundredths_down("f.m6", "6")),
        ("AOS = m6/o6", hundredths_down("f.m6", "f.o6")),
        ("months since last purchase", shown("f.months_since_last_purchase")),
        ("tenure months", shown("f.tenure_months")),
    ),
}
PREVIOUS = (
    ("prev_lines_m12", shown("f.prev_lines_m12")),
    ("prev_lines_m6", shown("f.prev_lines_m6")),
    ("prev_m6", shown("f.prev_m6")),
    ("prev_o6", shown("f.prev_o6")),
)


def explain_sql(rules: CrmRules) -> str:
    """Per customer and month of ``$start..$end`` (one ``$customer``, or all when NULL): figures, and per rule
    the stored value (``<key>_stored``), the outcome of the first branch that holds (``<key>_explained``) and
    the sentence (``<key>_words``); for m_score, k and n."""
    columns = [
        f"{sql} AS {_alias(label)}" for label, sql in (*(f for group in FIGURES.values() for f in group), *PREVIOUS)
    ]
    for e in EXPLAINED:
        columns += [
            f"{e.stored} AS {e.key}_stored",
            f"{e.rule.first_match_sql(rules, e.inputs)} AS {e.key}_explained",
            f"{e.rule.explanation_sql(rules, e.inputs)} AS {e.key}_words",
        ]
    columns += [
        "f.prev_entered AS prev_entered",
        f"{ACTIVITY_STATUS.first_match_sql(None, PREV_STATUS_INPUTS)} AS prev_status",
        "r.m_score AS m_score_stored",
        f"CASE WHEN {rfmt.ACTIVE} THEN {m_score_sql('q.k', 'q.n')} END AS m_score_explained",
        f"CASE WHEN {rfmt.ACTIVE} THEN {m_score_words_sql('f.m12', 'q.k', 'q.n')} "
        f"ELSE '{NONE_LABEL}: {NOT_ACTIVE.holds}' END AS m_score_words",
    ]
    body = ",\n    ".join(columns)
    return f"""
WITH ranked AS (
    SELECT report_month, customer_id, {M_SCORE_K} AS k, {M_SCORE_N} AS n
    FROM features.customer_features f JOIN lifecycle.customer_lifecycle l USING (report_month, customer_id)
    WHERE {rfmt.ACTIVE} AND f.report_month BETWEEN $start AND $end
)
SELECT f.report_month, f.customer_id,
    {body}
FROM features.customer_features f
JOIN lifecycle.customer_lifecycle l USING (report_month, customer_id)
JOIN rfmt.customer_rfmt r USING (report_month, customer_id)
LEFT JOIN ranked q USING (report_month, customer_id)
WHERE f.report_month BETWEEN $start AND $end AND ($customer IS NULL OR f.customer_id = $customer)
"""


EXPLAINED_KEYS = (*(e.key for e in EXPLAINED), "m_score")


def _alias(label: str) -> str:
    return "fig_" + "".join(ch if ch.isalnum() else "_" for ch in label)


@dataclass(frozen=True)
class RulesUsed:
    rules: CrmRules
    source: str  # where they come from, in words


def recorded_rules(con, month: date) -> RulesUsed:
    """The rules the warehouse recorded for ``month`` (its latest computation), else the configured ones."""
    row = None
    tables = {
        t for (t,) in con.execute("SELECT table_schema || '.' || table_name FROM information_schema.tables").fetchall()
    }
    if SNAPSHOT_MANIFEST.name in tables:
        row = con.execute(
            f"SELECT rules_version, rules::VARCHAR, run_id, computed_at FROM {SNAPSHOT_MANIFEST.name} "
            "WHERE report_month = ? ORDER BY computed_at DESC LIMIT 1",
            [month],
        ).fetchone()
    if row is None:
        rules = CrmRules()
        return RulesUsed(
            rules, f"the configured rules (version {rules.version()}): the warehouse records none for {month:%Y-%m}"
        )
    version, values, run_id, computed_at = row
    known = {k: v for k, v in json.loads(values).items() if k in CrmRules.model_fields}
    rules = CrmRules(**known)
    return RulesUsed(
        rules,
        f"as recorded for {month:%Y-%m} in {SNAPSHOT_MANIFEST.name} (version {version}, run {run_id[:8]}, "
        f"{computed_at:%Y-%m-%d %H:%M})",
    )


def _missing_customer(con, month: date, customer: str) -> CrmError:
    """Why ``customer`` has no row in ``month``, in one line."""
    found = con.execute(
        "SELECT customer_group, is_anonymous FROM enriched.customers WHERE customer_id = ?", [customer]
    ).fetchone()
    if found is None:
        return CrmError(f"customer '{customer}' is not in the customer master")
    group, anonymous = found
    if anonymous:
        return CrmError(f"customer '{customer}' is anonymous (group {group}): it is never evaluated")
    first = con.execute(
        "SELECT min(report_month) FROM features.customer_features WHERE customer_id = ?", [customer]
    ).fetchone()[0]
    since = f"its first month in the warehouse is {first:%Y-%m}" if first else "it has no month in the warehouse"
    return CrmError(f"customer '{customer}' has no row in {month:%Y-%m} (not entered yet: {since})")


def explain_customer(warehouse, month: date, customer: str) -> list[str]:
    """The lines ``crm explain`` prints for ``customer`` in ``month``; CrmError for an unknown customer or month."""
    customer = customer.strip()
    if not customer:
        raise CrmError("--customer: the customer id is blank")
    with warehouse.connect(read_only=True) as con:
        require_month(con, month)
        used = recorded_rules(con, month)
        cursor = con.execute(explain_sql(used.rules), {"start": month, "end": month, "customer": customer})
        names = [d[0] for d in cursor.description]
        row = cursor.fetchone()
        if row is None:
            raise _missing_customer(con, month, customer)
        name = con.execute(
            "SELECT nullif(trim(customer_name), '') FROM enriched.customers WHERE customer_id = ?", [customer]
        ).fetchone()
    values = dict(zip(names, row))
    check_agreement(values, month, customer)
    return render(values, month, customer, name[0] if name else None, used)


def check_agreement(values: dict, month: date, customer: str) -> None:
    """The explanation's own decision equals the stored value for every rule, and its sentence names it."""
    for key in EXPLAINED_KEYS:
        stored, explained, words = values[f"{key}_stored"], values[f"{key}_explained"], values[f"{key}_words"]
        label = NONE_LABEL if stored is None else str(stored)
        if explained != stored or not str(words).startswith(f"{label}:"):
            raise ExplanationMismatch(
                f"{key} of customer {customer} in {month:%Y-%m}: stored {stored!r} but the rules give {explained!r} "
                f"({words}); was the month computed with other rules?"
            )


def render(values: dict, month: date, customer: str, name: str | None, used: RulesUsed) -> list[str]:
    previous = f"{add_months(month, -1):%Y-%m}"
    lines = [
        f"customer {customer}" + (f" ({name})" if name else "") + f", {month:%Y-%m}",
        f"rules: {used.source}",
    ]
    for group, figures in FIGURES.items():
        lines.append(f"{group}: " + ", ".join(f"{label} {values[_alias(label)]}" for label, _ in figures))
    if values["prev_entered"]:
        prev = ", ".join(f"{label} {values[_alias(label)]}" for label, _ in PREVIOUS)
        lines.append(
            f"previous month {previous}: status {values['prev_status']}, tier {values['prev_tier_stored'] or NONE_LABEL} ({prev})"
        )
    else:
        lines.append(f"previous month {previous}: not entered yet")
    rows = [(e.title, values[f"{e.key}_words"]) for e in EXPLAINED]
    # the previous month's tier is decided on that month's figures, which its sentence names as AMC, o6, ...
    at_prev = next(i for i, e in enumerate(EXPLAINED) if e.key == "prev_tier")
    title = rows[at_prev][0]
    if values["prev_entered"]:
        rows[at_prev] = (f"{title} (on {previous}'s figures)", rows[at_prev][1])
    else:
        rows[at_prev] = (title, f"{NONE_LABEL}: not entered yet in {previous}")
    at = next(i for i, e in enumerate(EXPLAINED) if e.key == "f_score") + 1
    rows.insert(at, ("m_score", values["m_score_words"]))
    lines += [f"{title} {words}" for title, words in rows]
    return lines
