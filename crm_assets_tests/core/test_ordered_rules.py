"""The ordered rules evaluated in DuckDB on hand-made rows: the CASE the pipeline stores, the explanation's own
first match and the sentence, at every boundary, each expected value and sentence worked out by hand.

Default thresholds: AMC >= t is m6 >= 6t, so t_high 1000 -> m6 >= 6000, t_mid_high 200 -> 1200, t_mid 50 -> 300;
Diamond also needs m6 >= 1500 * o6 and o6 >= 6, Platinum o6 >= 3. AMC and AOS are shown rounded down.
"""

from __future__ import annotations

import duckdb
import pytest

from crm_assets.core.errors import CrmError
from crm_assets.core.ordered_rules import (
    ACTIVITY_STATUS,
    F_SCORE,
    LIFECYCLE_EVENT,
    LIFECYCLE_STAGE,
    M_SCORE_K,
    M_SCORE_N,
    R_SCORE,
    T_SCORE,
    VALUE_TIER,
    OrderedRule,
    inputs_of,
    m_score_sql,
    m_score_words_sql,
)
from crm_assets.core.rules import CrmRules

TYPES = {
    "active": "BOOLEAN",
    "m6": "DECIMAL(38,6)",
    "m12": "DECIMAL(38,6)",
}


def evaluate(rule: OrderedRule, rules: CrmRules | None, **row) -> tuple:
    """(stored CASE, first match, sentence) of ``rule`` on one row of the given inputs."""
    inputs = inputs_of(rule, "t")
    values = ", ".join(f"CAST(? AS {TYPES.get(name, 'BIGINT')}) AS {name}" for name in rule.inputs)
    sql = (
        f"SELECT {rule.case_sql(rules, inputs)}, {rule.first_match_sql(rules, inputs)}, "
        f"{rule.explanation_sql(rules, inputs)} FROM (SELECT {values}) t"
    )
    with duckdb.connect() as con:
        return con.execute(sql, [row[name] for name in rule.inputs]).fetchone()


def check(rule, rules, expected, sentence, **row):
    stored, first, words = evaluate(rule, rules, **row)
    assert (stored, first, words) == (expected, expected, sentence)


TIER_CASES = [
    # Diamond: AMC 9000/6 = 1500 >= 1000, AOS 9000/6 = 1500 >= 1500, o6 6 >= 6
    (
        dict(active=True, lines_m6=6, m6="9000", o6=6),
        "Diamond",
        "Diamond: AMC 1500 >= t_high 1000 and AOS 1500 >= a_high 1500 and o6 6 >= f_high 6; "
        "not Passive: lines_m6 6 > 0",
    ),
    # exactly m6 = 6 * t_high = 6000 with o6 3: AMC 1000 reaches t_high; Diamond fails on o6 only (AOS 2000 >= 1500)
    (
        dict(active=True, lines_m6=3, m6="6000", o6=3),
        "Platinum",
        "Platinum: AMC 1000 >= t_high 1000 and o6 3 >= f_mid 3; not Diamond: o6 3 < f_high 6",
    ),
    # Diamond needs AOS: 9000/7 = 1285.714 -> shown 1285.71 < 1500
    (
        dict(active=True, lines_m6=7, m6="9000", o6=7),
        "Platinum",
        "Platinum: AMC 1500 >= t_high 1000 and o6 7 >= f_mid 3; not Diamond: AOS 1285.71 < a_high 1500",
    ),
    # just below 6 * t_high: 5999.999999 / 6 = 999.9999998 -> shown 999.99
    (
        dict(active=True, lines_m6=3, m6="5999.999999", o6=3),
        "Gold",
        "Gold: AMC 999.99 >= t_mid_high 200; not Platinum: AMC 999.99 < t_high 1000",
    ),
    # Platinum needs f_mid: AMC 1000 but o6 2 < 3
    (
        dict(active=True, lines_m6=2, m6="6000", o6=2),
        "Gold",
        "Gold: AMC 1000 >= t_mid_high 200; not Platinum: o6 2 < f_mid 3",
    ),
    # Gold exactly at 6 * 200 = 1200
    (
        dict(active=True, lines_m6=3, m6="1200", o6=3),
        "Gold",
        "Gold: AMC 200 >= t_mid_high 200; not Platinum: AMC 200 < t_high 1000",
    ),
    # Silver exactly at 6 * 50 = 300, o6 1: the Gold branch fails on AMC only
    (
        dict(active=True, lines_m6=1, m6="300", o6=1),
        "Silver",
        "Silver: AMC 50 >= t_mid 50; not Gold: AMC 50 < t_mid_high 200",
    ),
    # just below Silver: 299.99 / 6 = 49.998 -> shown 49.99
    (
        dict(active=True, lines_m6=1, m6="299.99", o6=1),
        "Bronze",
        "Bronze: m6 299.99 > 0; not Silver: AMC 49.99 < t_mid 50",
    ),
    # Passive: Active (bought within 12 months) but no line in 6 months
    (
        dict(active=True, lines_m6=0, m6="0", o6=0),
        "Passive",
        "Passive: lines_m6 0 = 0 (no purchase in 6 months); activity status Active",
    ),
    # Not Active: no tier, whatever the figures
    (dict(active=False, lines_m6=0, m6="0", o6=0), None, "none: activity status Not Active"),
]


@pytest.mark.parametrize("row, expected, sentence", TIER_CASES)
def test_value_tier_at_every_boundary(row, expected, sentence):
    check(VALUE_TIER, CrmRules(), expected, sentence, **row)


def test_tier_words_carry_the_configured_thresholds():
    # t_mid_high 300 -> Gold needs m6 >= 1800; 1500 / 6 = 250 is Silver now
    rules = CrmRules(t_mid_high=300.0, t_mid=40.5)
    check(
        VALUE_TIER,
        rules,
        "Silver",
        "Silver: AMC 250 >= t_mid 40.5; not Gold: AMC 250 < t_mid_high 300",
        active=True,
        lines_m6=2,
        m6="1500",
        o6=2,
    )


STAGE_CASES = [
    (dict(lines_total=0, lines_m12=0, lines_m6=0, tenure_months=None), "Prospect",
     "Prospect: lines_total 0 = 0 (never bought a consumable)"),
    (dict(lines_total=5, lines_m12=0, lines_m6=0, tenure_months=20), "Lost",
     "Lost: lines_m12 0 = 0 (no purchase in 12 months); not Prospect: lines_total 5 > 0"),
    # tenure 12 is still New, even silent for 6 months
    (dict(lines_total=3, lines_m12=3, lines_m6=0, tenure_months=12), "New",
     "New: tenure_months 12 <= 12; not Lost: lines_m12 3 > 0"),
    (dict(lines_total=3, lines_m12=3, lines_m6=0, tenure_months=13), "At Risk",
     "At Risk: lines_m6 0 = 0 (no purchase in 6 months); not New: tenure_months 13 > 12"),
    (dict(lines_total=3, lines_m12=3, lines_m6=2, tenure_months=13), "Active",
     "Active: otherwise; not At Risk: lines_m6 2 > 0"),
]  # fmt: skip


@pytest.mark.parametrize("row, expected, sentence", STAGE_CASES)
def test_lifecycle_stage_at_every_boundary(row, expected, sentence):
    check(LIFECYCLE_STAGE, None, expected, sentence, **row)


EVENT_CASES = [
    (dict(lines_total=2, lines_m1=2, lines_m12=2, lines_m13=2), "New",
     "New: lines_m1 2 > 0 (bought in the month) and lines_total 2 = lines_m1 2 (first purchase)"),
    (dict(lines_total=4, lines_m1=0, lines_m12=0, lines_m13=1), "Lost",
     "Lost: lines_m12 0 = 0 (no purchase in 12 months) and lines_m13 1 > 0 (bought 12 months ago); "
     "not New: lines_m1 0 = 0 and lines_total 4 > lines_m1 0 (bought before the month)"),
    (dict(lines_total=5, lines_m1=1, lines_m12=1, lines_m13=1), "Reactivated",
     "Reactivated: lines_m1 1 > 0 (bought in the month) and lines_m13 1 = lines_m1 1 (silent the 12 months "
     "before) and lines_total 5 > lines_m13 1 (older history); not Lost: lines_m12 1 > 0"),
    (dict(lines_total=5, lines_m1=1, lines_m12=3, lines_m13=3), None,
     "none: otherwise; not Reactivated: lines_m13 3 > lines_m1 1 (bought in the 12 months before)"),
    # buying again after 12 silent months, but no history older than 13 months: the first purchase is New
    (dict(lines_total=1, lines_m1=1, lines_m12=1, lines_m13=1), "New",
     "New: lines_m1 1 > 0 (bought in the month) and lines_total 1 = lines_m1 1 (first purchase)"),
]  # fmt: skip


@pytest.mark.parametrize("row, expected, sentence", EVENT_CASES)
def test_lifecycle_event_at_every_boundary(row, expected, sentence):
    check(LIFECYCLE_EVENT, None, expected, sentence, **row)


@pytest.mark.parametrize(
    "lines_m12, expected, sentence",
    [(1, "Active", "Active: lines_m12 1 > 0"), (0, "Not Active", "Not Active: otherwise; not Active: lines_m12 0 = 0")],
)
def test_activity_status(lines_m12, expected, sentence):
    check(ACTIVITY_STATUS, None, expected, sentence, lines_m12=lines_m12)


SCORE_CASES = [
    # r_score: largest months since the last purchase for 5, 4, 3, 2 = 0, 1, 2, 5
    (R_SCORE, 0, 5, "5: months_since_last_purchase 0 <= r_score_max_months[0] 0; activity status Active"),
    (R_SCORE, 1, 4, "4: months_since_last_purchase 1 <= r_score_max_months[1] 1; "
     "not 5: months_since_last_purchase 1 > r_score_max_months[0] 0"),
    (R_SCORE, 5, 2, "2: months_since_last_purchase 5 <= r_score_max_months[3] 5; "
     "not 3: months_since_last_purchase 5 > r_score_max_months[2] 2"),
    (R_SCORE, 6, 1, "1: otherwise; not 2: months_since_last_purchase 6 > r_score_max_months[3] 5"),
    # f_score: smallest o12 for 2, 3, 4, 5 = 2, 4, 7, 12
    (F_SCORE, 1, 1, "1: otherwise; not 2: o12 1 < f_score_min_orders[0] 2"),
    (F_SCORE, 3, 2, "2: o12 3 >= f_score_min_orders[0] 2; not 3: o12 3 < f_score_min_orders[1] 4"),
    (F_SCORE, 11, 4, "4: o12 11 >= f_score_min_orders[2] 7; not 5: o12 11 < f_score_min_orders[3] 12"),
    (F_SCORE, 12, 5, "5: o12 12 >= f_score_min_orders[3] 12; activity status Active"),
    # t_score: smallest tenure for 2, 3, 4, 5 = 4, 7, 13, 25
    (T_SCORE, 3, 1, "1: otherwise; not 2: tenure_months 3 < t_score_min_months[0] 4"),
    (T_SCORE, 12, 3, "3: tenure_months 12 >= t_score_min_months[1] 7; not 4: tenure_months 12 < t_score_min_months[2] 13"),
    (T_SCORE, 13, 4, "4: tenure_months 13 >= t_score_min_months[2] 13; not 5: tenure_months 13 < t_score_min_months[3] 25"),
]  # fmt: skip


@pytest.mark.parametrize("rule, value, expected, sentence", SCORE_CASES)
def test_score_bin_edges(rule, value, expected, sentence):
    check(rule, CrmRules(), expected, sentence, active=True, **{rule.inputs[1]: value})


@pytest.mark.parametrize("rule", [R_SCORE, F_SCORE, T_SCORE])
def test_scores_of_the_not_active_are_null(rule):
    check(rule, CrmRules(), None, "none: activity status Not Active", active=False, **{rule.inputs[1]: 3})


def test_m_score_is_ceil_5k_over_n_with_its_words():
    # business_rules.md: m12 10, 10, 20, 30, 30, 30, 90 -> k 2, 2, 3, 6, 6, 6, 7 of n 7 -> 2, 2, 3, 5, 5, 5, 5
    values = ", ".join(f"(DATE '2025-01-01', {m}::DECIMAL(38,6))" for m in (10, 10, 20, 30, 30, 30, 90))
    sql = f"""
        SELECT m12, {m_score_sql("k", "n")}, {m_score_words_sql("m12", "k", "n")}
        FROM (SELECT m12, {M_SCORE_K} AS k, {M_SCORE_N} AS n FROM (VALUES {values}) t(report_month, m12))
        ORDER BY m12
    """
    with duckdb.connect() as con:
        rows = con.execute(sql).fetchall()
    assert [r[1] for r in rows] == [2, 2, 3, 5, 5, 5, 5]
    assert rows[2][2] == "3: m12 20; k 3 of n 7 Active customers have m12 <= 20; ceil(5 x 3 / 7) = 3"
    assert rows[6][2] == "5: m12 90; k 7 of n 7 Active customers have m12 <= 90; ceil(5 x 7 / 7) = 5"


@pytest.mark.parametrize("name, value", [("t_mid_high", 199.995), ("t_high", 1000.001), ("a_high", 1500.125)])
def test_a_threshold_with_a_third_decimal_is_refused(name, value):
    """An explanation shows AMC and AOS rounded down to hundredths; with a third decimal in a threshold it could
    write "AMC 199.99 >= t_mid_high 199.995", so such a threshold is refused with one line naming it."""
    with pytest.raises(CrmError, match=f"rules: {name} must have at most two decimals, got {value}"):
        CrmRules(**{name: value}).validate_values()
    CrmRules(**{name: round(value, 2)}).validate_values()
