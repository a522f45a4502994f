"""The ordered rules of business_rules.md (status, value tier, stage, event, r/f/t score bins) declared once, as data.

A rule is a list of branches checked top to bottom; the first whose terms all hold gives its outcome (a SQL
``CASE``). A term is a SQL condition with its words when it holds and when it fails. Conditions and words are
templates over the rule's inputs (``{m6}``: a SQL expression the caller binds), the figures shown for them
(``{amc}``, ``{aos}``) and the thresholds of ``CrmRules`` (``{t_high}``, ``{r_score_max_months[0]}``). From one
declaration come:

- ``case_sql``: the ``CASE`` the pipeline stores;
- ``conditions_sql`` and ``first_match_sql``: each branch's condition alone, and the outcome of the first that
  holds (the explanation's own decision, compared with the stored value);
- ``explanation_sql``: a sentence naming the branch that matched with its numbers and the branch just above
  that did not, e.g. ``Gold: AMC 312.58 >= t_mid_high 200; not Platinum: AMC 312.58 < t_high 1000``.

Everything is SQL, so a whole list is explained in one statement. Decisions are the exact ones of the rules
(line counts for ``= 0``, ``m6 >= 6 * t`` on DECIMAL for ``AMC >= t``); AMC and AOS are only shown, rounded
down to two decimals so that the comparison written stays true (``CrmRules`` refuses a threshold with more).
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from dataclasses import dataclass

from crm_assets.core.rules import CrmRules

NONE_LABEL = "none"  # the words for a NULL outcome (no tier, no event, no score)
OTHERWISE = "otherwise"  # the words of a branch without terms: no branch above it holds
_NEGATED = {">=": "<", "<=": ">", ">": "<=", "<": ">="}


@dataclass(frozen=True)
class Term:
    sql: str  # a condition template
    holds: str  # words when it is true
    fails: str  # words when it is false or NULL


@dataclass(frozen=True)
class Branch:
    outcome: str | int | None
    terms: tuple[Term, ...] = ()  # AND-ed; none: the remaining case

    @property
    def label(self) -> str:
        return NONE_LABEL if self.outcome is None else str(self.outcome)


@dataclass(frozen=True)
class OrderedRule:
    name: str
    column: str  # the column holding its outcome
    inputs: tuple[str, ...]  # the placeholders the caller binds to SQL expressions
    branches: tuple[Branch, ...]

    def case_sql(self, rules: CrmRules | None, inputs: Mapping[str, str]) -> str:
        """The ``CASE`` of the rule, one ``WHEN`` per line (no ``ELSE`` unless the last branch has no terms)."""
        lines, last = [], self.branches[-1]
        for branch in self.branches:
            if branch.terms:
                lines.append(f"WHEN {self._condition(branch, rules, inputs)} THEN {_literal(branch.outcome)}")
        if not last.terms:
            lines.append(f"ELSE {_literal(last.outcome)}")
        return "(CASE\n        " + "\n        ".join(lines) + "\n    END)"

    def conditions_sql(self, rules: CrmRules | None, inputs: Mapping[str, str]) -> list[str]:
        """Each branch's condition alone, never NULL (a NULL condition does not match, as in a CASE)."""
        return [f"coalesce({self._condition(b, rules, inputs)}, false)" if b.terms else "true" for b in self.branches]

    def first_match_sql(self, rules: CrmRules | None, inputs: Mapping[str, str]) -> str:
        """The outcome of the first branch whose condition holds, decided on the conditions alone (not the CASE)."""
        outcomes = ", ".join(_literal(b.outcome) for b in self.branches)
        conditions = ", ".join(self.conditions_sql(rules, inputs))
        return f"([{outcomes}][list_position([{conditions}], true)])"

    def explanation_sql(self, rules: CrmRules | None, inputs: Mapping[str, str]) -> str:
        """The sentence of the branch that matched and of the one just above it that did not, as a SQL text."""
        lines = []
        for index, branch in enumerate(self.branches):
            holds = [_words(t.holds, rules, inputs) for t in branch.terms] or [_text(OTHERWISE)]
            parts = [_text(f"{branch.label}: "), _joined(holds)]
            if index:
                above = self.branches[index - 1]
                fails = [
                    f"CASE WHEN ({_render(t.sql, rules, inputs)}) IS NOT TRUE THEN {_words(t.fails, rules, inputs)} END"
                    for t in above.terms
                ]
                # a NULL branch above is a guard (Not Active): what reached this branch is its failing
                lead = "; " if above.outcome is None else f"; not {above.label}: "
                parts += [_text(lead), _joined(fails)]
            sentence = " || ".join(parts)
            if branch.terms:
                lines.append(f"WHEN {self._condition(branch, rules, inputs)} THEN {sentence}")
            else:
                lines.append(f"ELSE {sentence}")
        return "(CASE " + " ".join(lines) + " END)"

    def _condition(self, branch: Branch, rules: CrmRules | None, inputs: Mapping[str, str]) -> str:
        return " AND ".join(_render(t.sql, rules, inputs) for t in branch.terms)


def thresholds(rules: CrmRules | None) -> dict[str, str]:
    """Every number of ``rules`` as its SQL literal, by placeholder: ``t_high``, ``r_score_max_months[0]``...

    ``None`` for a rule without thresholds (status, stage, event).
    """
    values: dict[str, str] = {}
    if rules is None:
        return values
    for name, value in rules.as_dict().items():
        if isinstance(value, list):
            if all(isinstance(v, int | float) for v in value):
                values.update({f"{name}[{i}]": _num(v) for i, v in enumerate(value)})
        elif isinstance(value, int | float):
            values[name] = _num(value)
    return values


def _num(value: float) -> str:
    return repr(float(value)) if not float(value).is_integer() else str(int(value))


def _literal(value: str | int | None) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, int):
        return str(value)
    return _text(value)


def _text(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _joined(parts: list[str]) -> str:
    return parts[0] if len(parts) == 1 else f"concat_ws(' and ', {', '.join(parts)})"


def _fields(template: str):
    """``(literal text, placeholder or None)`` pairs of a template."""
    return [(literal, field) for literal, field, _, _ in string.Formatter().parse(template)]


def _render(template: str, rules: CrmRules | None, inputs: Mapping[str, str]) -> str:
    """A condition template with each input replaced by its SQL and each threshold by its literal."""
    values = thresholds(rules)
    out = []
    for literal, field in _fields(template):
        out.append(literal)
        if field is not None:
            out.append(values[field] if field in values else inputs[field])
    return "".join(out)


def shown(expr: str) -> str:
    """A number as text without trailing zeros (``312.5``, ``6``), from its exact DECIMAL value."""
    return f"coalesce(rtrim(rtrim(CAST(CAST({expr} AS DECIMAL(38,6)) AS VARCHAR), '0'), '.'), 'n/a')"


def hundredths_down(numerator: str, divisor: str) -> str:
    """``numerator / divisor`` rounded down to two decimals, in integers (floor(floor(100x) / d) = floor(100x / d))."""
    return shown(f"CAST(CAST(floor({numerator} * 100) AS HUGEINT) // nullif({divisor}, 0) AS DECIMAL(38,0)) * 0.01")


# figures shown in the words but decided on otherwise: AMC >= t is decided as m6 >= 6t, AOS >= a as m6 >= a * o6
_SHOWN = {
    "amc": lambda inputs: hundredths_down(inputs["m6"], "6"),
    "aos": lambda inputs: hundredths_down(inputs["m6"], inputs["o6"]),
}


def _words(template: str, rules: CrmRules | None, inputs: Mapping[str, str]) -> str:
    """A words template as a SQL text: thresholds written in, inputs and shown figures as their values."""
    values = thresholds(rules)
    parts, pending = [], ""
    for literal, field in _fields(template):
        pending += literal
        if field is None:
            continue
        if field in values:
            pending += values[field]
            continue
        if pending:
            parts.append(_text(pending))
            pending = ""
        parts.append(_SHOWN[field](inputs) if field in _SHOWN else shown(inputs[field]))
    if pending:
        parts.append(_text(pending))
    return "(" + " || ".join(parts) + ")"


def compare(left: str, op: str, right: str, left_words: str, right_words: str) -> Term:
    """The term ``left op right`` with the words ``left_words op right_words`` and their negation."""
    return Term(
        f"{left} {op} {right}", f"{left_words} {op} {right_words}", f"{left_words} {_NEGATED[op]} {right_words}"
    )


def count_is_zero(name: str, meaning: str = "") -> Term:
    """``lines = 0`` on a line count (never negative, so its negation is ``> 0``)."""
    note = f" ({meaning})" if meaning else ""
    return Term(f"{{{name}}} = 0", f"{name} {{{name}}} = 0{note}", f"{name} {{{name}}} > 0")


def count_positive(name: str, meaning: str = "") -> Term:
    note = f" ({meaning})" if meaning else ""
    return Term(f"{{{name}}} > 0", f"{name} {{{name}}} > 0{note}", f"{name} {{{name}}} = 0")


def _amc_at_least(threshold: str) -> Term:
    return compare("{m6}", ">=", f"6 * {{{threshold}}}", "AMC {amc}", f"{threshold} {{{threshold}}}")


NOT_ACTIVE = Term("NOT ({active})", "activity status Not Active", "activity status Active")

ACTIVITY_STATUS = OrderedRule(
    "activity status",
    "activity_status",
    ("lines_m12",),
    (Branch("Active", (count_positive("lines_m12"),)), Branch("Not Active")),
)

VALUE_TIER = OrderedRule(
    "value tier",
    "value_tier",
    ("active", "lines_m6", "m6", "o6"),
    (
        Branch(None, (NOT_ACTIVE,)),
        Branch("Passive", (count_is_zero("lines_m6", "no purchase in 6 months"),)),
        Branch(
            "Diamond",
            (
                _amc_at_least("t_high"),
                compare("{m6}", ">=", "{a_high} * {o6}", "AOS {aos}", "a_high {a_high}"),
                compare("{o6}", ">=", "{f_high}", "o6 {o6}", "f_high {f_high}"),
            ),
        ),
        Branch("Platinum", (_amc_at_least("t_high"), compare("{o6}", ">=", "{f_mid}", "o6 {o6}", "f_mid {f_mid}"))),
        Branch("Gold", (_amc_at_least("t_mid_high"),)),
        Branch("Silver", (_amc_at_least("t_mid"),)),
        Branch("Bronze", (compare("{m6}", ">", "0", "m6 {m6}", "0"),)),
    ),
)

NEW_MONTHS = 12  # a customer is New up to this tenure (business_rules.md: "tenure up to 12 months")

LIFECYCLE_STAGE = OrderedRule(
    "lifecycle stage",
    "lifecycle_stage",
    ("lines_total", "lines_m12", "lines_m6", "tenure_months"),
    (
        Branch("Prospect", (count_is_zero("lines_total", "never bought a consumable"),)),
        Branch("Lost", (count_is_zero("lines_m12", "no purchase in 12 months"),)),
        Branch(
            "New",
            (compare("{tenure_months}", "<=", str(NEW_MONTHS), "tenure_months {tenure_months}", str(NEW_MONTHS)),),
        ),
        Branch("At Risk", (count_is_zero("lines_m6", "no purchase in 6 months"),)),
        Branch("Active"),
    ),
)

# m12 > 0 <=> lines_m12 > 0;  m1 = m_total <=> lines_total = lines_m1;
# m1 = m13 <=> lines_m13 = lines_m1;  m_total > m13 <=> lines_total > lines_m13.
LIFECYCLE_EVENT = OrderedRule(
    "lifecycle event",
    "lifecycle_event",
    ("lines_total", "lines_m1", "lines_m12", "lines_m13"),
    (
        Branch(
            "New",
            (
                count_positive("lines_m1", "bought in the month"),
                Term(
                    "{lines_total} = {lines_m1}",
                    "lines_total {lines_total} = lines_m1 {lines_m1} (first purchase)",
                    "lines_total {lines_total} > lines_m1 {lines_m1} (bought before the month)",
                ),
            ),
        ),
        Branch(
            "Lost",
            (
                count_is_zero("lines_m12", "no purchase in 12 months"),
                count_positive("lines_m13", "bought 12 months ago"),
            ),
        ),
        Branch(
            "Reactivated",
            (
                count_positive("lines_m1", "bought in the month"),
                Term(
                    "{lines_m13} = {lines_m1}",
                    "lines_m13 {lines_m13} = lines_m1 {lines_m1} (silent the 12 months before)",
                    "lines_m13 {lines_m13} > lines_m1 {lines_m1} (bought in the 12 months before)",
                ),
                Term(
                    "{lines_total} > {lines_m13}",
                    "lines_total {lines_total} > lines_m13 {lines_m13} (older history)",
                    "lines_total {lines_total} = lines_m13 {lines_m13} (no older history)",
                ),
            ),
        ),
        Branch(None),
    ),
)


def _score(name: str, column: str, edges: str, op: str, scores: tuple[int, ...], indexes: tuple[int, ...]):
    """A score of the Active: ``column op edges[i]`` gives ``scores[j]`` for the j-th index i, else 1."""
    bins = tuple(
        Branch(
            score,
            (
                compare(
                    f"{{{column}}}", op, f"{{{edges}[{i}]}}", f"{column} {{{column}}}", f"{edges}[{i}] {{{edges}[{i}]}}"
                ),
            ),
        )
        for score, i in zip(scores, indexes)
    )
    return OrderedRule(name, name, ("active", column), (Branch(None, (NOT_ACTIVE,)), *bins, Branch(1)))


R_SCORE = _score("r_score", "months_since_last_purchase", "r_score_max_months", "<=", (5, 4, 3, 2), (0, 1, 2, 3))
F_SCORE = _score("f_score", "o12", "f_score_min_orders", ">=", (5, 4, 3, 2), (3, 2, 1, 0))
T_SCORE = _score("t_score", "tenure_months", "t_score_min_months", ">=", (5, 4, 3, 2), (3, 2, 1, 0))

# m_score = ceil(5 * cume_dist) computed in integers: k = Active customers of the month with m12 at most this
# one's (peers included), n = Active customers of the month; ceil(5k / n) = (5k + n - 1) // n.
M_SCORE_K = "count(*) OVER (PARTITION BY report_month ORDER BY m12 RANGE BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)"
M_SCORE_N = "count(*) OVER (PARTITION BY report_month)"


def m_score_sql(k: str, n: str) -> str:
    return f"((5 * {k} + {n} - 1) // {n})::INTEGER"


def m_score_words_sql(m12: str, k: str, n: str) -> str:
    """``4: m12 150; k 1203 of n 1800 Active customers have m12 <= 150; ceil(5 x 1203 / 1800) = 4``, as SQL."""
    score, k_text, n_text = (f"CAST({e} AS VARCHAR)" for e in (m_score_sql(k, n), k, n))
    m12_text = shown(m12)
    return (
        f"({score} || ': m12 ' || {m12_text} || '; k ' || {k_text} || ' of n ' || {n_text} || "
        f"' Active customers have m12 <= ' || {m12_text} || '; ceil(5 x ' || {k_text} || ' / ' || {n_text} || "
        f"') = ' || {score})"
    )


SCORE_RULES = (R_SCORE, F_SCORE, T_SCORE)
ORDERED_RULES = (ACTIVITY_STATUS, VALUE_TIER, LIFECYCLE_STAGE, LIFECYCLE_EVENT, *SCORE_RULES)


def inputs_of(rule: OrderedRule, alias: str, **given: str) -> dict[str, str]:
    """Each input of ``rule`` bound to the column of its name of ``alias``, unless given."""
    return {name: given.get(name, f"{alias}.{name}") for name in rule.inputs}
