"""Hand-worked business-rule tests on small fixtures (docs: business_rules.md).

Every expected value below is worked out by hand from the spec; the arithmetic
is in the comment next to it. Each module-scoped fixture runs the whole
pipeline once on a themed data set; the tests then read single snapshot rows.

Notation: M = report month; "6m window" = M-5..M, "12m" = M-11..M, etc.
Product ``U1`` has unit_size 1 so units = quantity; ``P1`` has unit_size 10.
Default thresholds in units of m6: AMC >= t  <=>  m6 >= 6 * t, so
t_high 1000 -> m6 >= 6000, t_mid_high 200 -> m6 >= 1200, t_mid 50 -> m6 >= 300.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date

import pytest

from crm_assets.core.rules import CrmRules

from ..pipeline import build, row

PRODUCTS = [
    "P1,Pods,B,consumable,10",
    "U1,Unit pods,B,consumable,1",
    "R1,Old refill,B,refill,10",
    "S1,Spaced,B, Consumable ,5",
    "K1,Caps,B,CONSUMABLE,1",
    "D1,Machine,B,device,",
    "A1,Case,B,accessories,10",
    "SP1,Gasket,B,spare_parts,10",
    "X1,Gift card,B,gift_card,10",
]


def D(text: str) -> date:
    return date.fromisoformat(text)


def cust(
    cid: str, group: str = "Loyalty", created: str = "2018-01-01", opts=("1", "1", "1"), city: str = "Paris"
) -> str:
    return f"{cid},Name {cid},{group},{city},{created},{cid}@x.org,+33100,{opts[0]},{opts[1]},{opts[2]}"


def txs(*lines: tuple) -> dict[str, list[str]]:
    """(invoice, customer, date, product, quantity) tuples -> ``{year: [csv lines]}``."""
    by_year: dict[str, list[str]] = defaultdict(list)
    for inv, cid, day, prod, qty in lines:
        by_year[day.strip()[:4]].append(f"{inv},{cid},{day},{prod},{qty},1.00,S1")
    return dict(by_year)


def _same(actual, expected) -> bool:
    if expected is None:
        return actual is None
    if isinstance(expected, bool):
        return actual is expected
    if isinstance(expected, float):
        return actual is not None and actual == pytest.approx(expected, abs=1e-6)
    return actual == expected


def check(r: dict | None, **expected) -> None:
    """Every given column of the row equals its expected value (all differences reported at once)."""
    assert r is not None, "no snapshot row"
    diffs = {k: {"actual": r[k], "expected": v} for k, v in expected.items() if not _same(r[k], v)}
    assert not diffs, f"{r['customer_id']} {r['report_month']}: {diffs}"


def months_of(rows: list[dict], customer: str) -> list[str]:
    return [r["report_month"].strftime("%Y-%m") for r in rows if r["customer_id"] == customer]


NULL_SCORES = dict(r_score=None, f_score=None, m_score=None, t_score=None)


# --------------------------------------------------------------------------------------------
# Section 8: the worked example, verbatim
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def worked(tmp_path_factory):
    return build(
        tmp_path_factory.mktemp("worked"),
        ["P1,Pods,B,consumable,10", "D1,Machine,B,device,"],
        ["C1,Ann,Loyalty,Paris,2023-01-10,a@x.org,+331,1,0,"],
        txs(
            ("A", "C1", "2023-01-15", "D1", 1),
            ("A", "C1", "2023-01-15", "P1", 3),
            ("B", "C1", "2023-02-20", "P1", 2),
            ("B", "C1", "2023-02-27", "P1", -1),
            ("C", "C1", "2023-06-30", "P1", 5),
            ("D", "C1", "2024-07-01", "P1", 1),
        ),
        "2023-01",
        "2024-07",
    )


WORKED_COMMON = dict(
    customer_id="C1",
    customer_group="Loyalty",
    city="Paris",
    first_device_purchase_date=D("2023-01-15"),
    first_consumable_purchase_date=D("2023-01-15"),
    opt_email=True,
    opt_sms=False,
    opt_phone=False,  # "1", "0", blank
)
WORKED = {
    # Jan: A P1 3*10 = 30; Feb: B 2*10 = 20 (B -1 return ignored). All windows hold Jan+Feb = 50.
    # o = {A, B} = 2; tenure (2023-2023)*12 + (2-1) + 1 = 2; AMC 50/6 = 8.33 < 50 -> Bronze;
    # Jan tier: m6 = 30 -> Bronze; stage New (tenure 2 <= 12); event: m1 20 != m_total 50, m12 > 0,
    # m1 20 != m13 50 -> NULL; r (0 months) 5, f (o12 2) 2, m 5 (only customer), t (tenure 2) 1.
    "2023-02": dict(
        m_total=50.0,
        m1=20.0,
        m6=50.0,
        m12=50.0,
        m13=50.0,
        m24=50.0,
        m25=50.0,
        o6=2,
        o12=2,
        last_consumable_purchase_date=D("2023-02-20"),
        months_since_last_purchase=0,
        tenure_months=2,
        avg_monthly_consumption=50 / 6,
        avg_order_size=25.0,
        activity_status="Active",
        value_tier="Bronze",
        prev_value_tier="Bronze",
        lifecycle_stage="New",
        lifecycle_event=None,
        r_score=5,
        f_score=2,
        m_score=5,
        t_score=1,
    ),
    # Jun: C 5*10 = 50 -> m_total 30+20+50 = 100, m1 50; 6m window 2023-01..06 = 100; o = {A,B,C} = 3;
    # tenure (6-1)+1 = 6; AMC 100/6 = 16.67; AOS 100/3 = 33.33 -> Bronze; May m6 (2022-12..2023-05) = 50
    # -> Bronze; stage New; event NULL (m1 50 != 100, m1 50 != m13 100); r 5, f (3) 2, m 5, t (6) 2.
    "2023-06": dict(
        m_total=100.0,
        m1=50.0,
        m6=100.0,
        m12=100.0,
        m13=100.0,
        m24=100.0,
        m25=100.0,
        o6=3,
        o12=3,
        last_consumable_purchase_date=D("2023-06-30"),
        months_since_last_purchase=0,
        tenure_months=6,
        avg_monthly_consumption=100 / 6,
        avg_order_size=100 / 3,
        activity_status="Active",
        value_tier="Bronze",
        prev_value_tier="Bronze",
        lifecycle_stage="New",
        lifecycle_event=None,
        r_score=5,
        f_score=2,
        m_score=5,
        t_score=2,
    ),
    # 2024-06: 6m 2024-01..06 = 0; 12m 2023-07..2024-06 = 0; 13m 2023-06..2024-06 = 50 (C);
    # 24m 2022-07..2024-06 = 100; 25m = 100; months since (2024-06) - (2023-06) = 12;
    # tenure 12 + (6-1) + 1 = 18; AMC 0; AOS NULL (o6 0); Not Active -> tier NULL, scores NULL;
    # May 2024: 12m 2023-06..2024-05 = 50 > 0, 6m 2023-12..2024-05 = 0 -> Passive;
    # stage Lost (m12 0); event Lost (m12 0, m13 50 > 0).
    "2024-06": dict(
        m_total=100.0,
        m1=0.0,
        m6=0.0,
        m12=0.0,
        m13=50.0,
        m24=100.0,
        m25=100.0,
        o6=0,
        o12=0,
        last_consumable_purchase_date=D("2023-06-30"),
        months_since_last_purchase=12,
        tenure_months=18,
        avg_monthly_consumption=0.0,
        avg_order_size=None,
        activity_status="Not Active",
        value_tier=None,
        prev_value_tier="Passive",
        lifecycle_stage="Lost",
        lifecycle_event="Lost",
        **NULL_SCORES,
    ),
    # 2024-07: D 1*10 = 10; m_total 110; 6m/12m/13m (2023-07..2024-07) = 10; 24m 2022-08..2024-07 = 110;
    # 25m = 110; o = {D} = 1; tenure 12 + (7-1) + 1 = 19; AMC 10/6 = 1.67; AOS 10 -> Bronze;
    # June Not Active -> prev NULL; stage: m12 > 0, tenure 19 > 12, m6 > 0 -> Active;
    # event: m1 10 != 110 (not New), m12 > 0 (not Lost), m1 10 = m13 10 and 110 > 10 -> Reactivated;
    # r 5, f (1) 1, m 5, t (19) 4.
    "2024-07": dict(
        m_total=110.0,
        m1=10.0,
        m6=10.0,
        m12=10.0,
        m13=10.0,
        m24=110.0,
        m25=110.0,
        o6=1,
        o12=1,
        last_consumable_purchase_date=D("2024-07-01"),
        months_since_last_purchase=0,
        tenure_months=19,
        avg_monthly_consumption=10 / 6,
        avg_order_size=10.0,
        activity_status="Active",
        value_tier="Bronze",
        prev_value_tier=None,
        lifecycle_stage="Active",
        lifecycle_event="Reactivated",
        r_score=5,
        f_score=1,
        m_score=5,
        t_score=4,
    ),
}


@pytest.mark.parametrize("month", sorted(WORKED))
def test_worked_example_every_column(worked, month):
    r = row(worked, month, "C1")
    check(r, **WORKED_COMMON, **WORKED[month])
    assert set(r) == set(WORKED_COMMON) | set(WORKED[month]) | {"report_month"}  # every column asserted


def test_worked_example_one_row_per_month_from_entry(worked):
    # created 2023-01-10, first line 2023-01-15 -> entry 2023-01: a row in each of the 19 months built
    assert len(months_of(worked, "C1")) == 19 and len(worked) == 19


# --------------------------------------------------------------------------------------------
# 5.2 value tiers, M = 2024-06 (6m window 2024-01..06, 12m window 2023-07..2024-06)
# --------------------------------------------------------------------------------------------

TIER_M = "2024-06"
MONTH_DAYS = ["2024-01-15", "2024-02-15", "2024-03-15", "2024-04-15", "2024-05-15", "2024-06-15"]


def _invoices(cid: str, quantities: list[int]) -> list[tuple]:
    """One U1 invoice per quantity, one per month from 2024-01 on."""
    return [(f"{cid}-{i}", cid, MONTH_DAYS[i], "U1", q) for i, q in enumerate(quantities)]


@pytest.fixture(scope="module")
def tiers(tmp_path_factory):
    lines = [
        *_invoices("DIA_EXACT", [1500] * 6),
        *_invoices("DIA_AOS_BELOW", [1499] * 6),
        *_invoices("DIA_O6_5", [1800] * 5),
        *_invoices("PLAT_EXACT", [2000] * 3),
        *_invoices("PLAT_O6_2", [3000] * 2),
        *_invoices("AMC_BELOW_HIGH", [2000, 2000, 1999]),
        ("HUGE-1", "HUGE", "2024-06-10", "U1", 100000),
        ("GOLD-1", "GOLD_EXACT", "2024-06-10", "U1", 1200),
        ("GOLDB-1", "GOLD_BELOW", "2024-06-10", "U1", 1199),
        ("SILV-1", "SILVER_EXACT", "2024-06-10", "U1", 300),
        ("SILVB-1", "SILVER_BELOW", "2024-06-10", "U1", 299),
        ("BRON-1", "BRONZE_MIN", "2024-01-01", "U1", 1),
        ("PM6-1", "PASSIVE_M6", "2023-12-20", "U1", 5000),
        ("PM11-1", "PASSIVE_M11", "2023-07-01", "U1", 10),
        ("NA-1", "NOT_ACTIVE_M12", "2023-06-30", "U1", 10),
    ]
    ids = sorted({line[1] for line in lines})
    return build(
        tmp_path_factory.mktemp("tiers"),
        PRODUCTS,
        [cust(c, created="2023-01-01") for c in ids],
        txs(*lines),
        "2023-06",
        "2024-06",
    )


def test_tier_diamond_at_exact_a_high_and_exact_f_high(tiers):
    # 6 invoices x 1500 = 9000: AMC 9000/6 = 1500 >= 1000, AOS 9000/6 = 1500 >= 1500 (exact), o6 6 >= 6 (exact)
    check(
        row(tiers, TIER_M, "DIA_EXACT"),
        m6=9000.0,
        o6=6,
        avg_monthly_consumption=1500.0,
        avg_order_size=1500.0,
        activity_status="Active",
        value_tier="Diamond",
    )


def test_tier_aos_just_below_a_high_is_platinum(tiers):
    # 6 x 1499 = 8994: AOS 1499 < 1500 -> not Diamond; AMC 1499 >= 1000 and o6 6 >= 3 -> Platinum
    check(row(tiers, TIER_M, "DIA_AOS_BELOW"), m6=8994.0, o6=6, avg_order_size=1499.0, value_tier="Platinum")


def test_tier_o6_f_high_minus_one_is_platinum(tiers):
    # 5 x 1800 = 9000: AMC 1500, AOS 1800, but o6 5 < f_high 6 -> not Diamond; o6 5 >= 3 -> Platinum
    check(row(tiers, TIER_M, "DIA_O6_5"), m6=9000.0, o6=5, avg_order_size=1800.0, value_tier="Platinum")


def test_tier_platinum_at_exact_t_high_and_exact_f_mid(tiers):
    # 3 x 2000 = 6000: AMC 6000/6 = 1000 = t_high; o6 3 = f_mid; AOS 2000 but o6 3 < 6 -> Platinum
    check(
        row(tiers, TIER_M, "PLAT_EXACT"),
        m6=6000.0,
        o6=3,
        avg_monthly_consumption=1000.0,
        avg_order_size=2000.0,
        value_tier="Platinum",
    )


def test_tier_o6_f_mid_minus_one_is_gold(tiers):
    # 2 x 3000 = 6000: AMC 1000 but o6 2 < f_mid 3 -> not Platinum; AMC 1000 >= 200 -> Gold
    check(row(tiers, TIER_M, "PLAT_O6_2"), m6=6000.0, o6=2, avg_monthly_consumption=1000.0, value_tier="Gold")


def test_tier_amc_just_below_t_high_is_gold(tiers):
    # 2000 + 2000 + 1999 = 5999: AMC 999.83 < 1000 (o6 3 would qualify) -> Gold
    check(row(tiers, TIER_M, "AMC_BELOW_HIGH"), m6=5999.0, o6=3, avg_monthly_consumption=5999 / 6, value_tier="Gold")


def test_tier_huge_single_order_is_not_diamond_or_platinum(tiers):
    # one invoice of 100000: AMC 16666.67, AOS 100000, but o6 1 < 6 and < 3 -> Gold
    check(
        row(tiers, TIER_M, "HUGE"),
        m6=100000.0,
        o6=1,
        avg_monthly_consumption=100000 / 6,
        avg_order_size=100000.0,
        value_tier="Gold",
    )


def test_tier_gold_at_exact_t_mid_high(tiers):
    # 1200 / 6 = 200 = t_mid_high -> Gold
    check(row(tiers, TIER_M, "GOLD_EXACT"), m6=1200.0, avg_monthly_consumption=200.0, value_tier="Gold")


def test_tier_just_below_t_mid_high_is_silver(tiers):
    # 1199 / 6 = 199.83 < 200; >= 50 -> Silver
    check(row(tiers, TIER_M, "GOLD_BELOW"), m6=1199.0, value_tier="Silver")


def test_tier_silver_at_exact_t_mid(tiers):
    # 300 / 6 = 50 = t_mid -> Silver
    check(row(tiers, TIER_M, "SILVER_EXACT"), m6=300.0, avg_monthly_consumption=50.0, value_tier="Silver")


def test_tier_just_below_t_mid_is_bronze(tiers):
    # 299 / 6 = 49.83 < 50; > 0 -> Bronze
    check(row(tiers, TIER_M, "SILVER_BELOW"), m6=299.0, value_tier="Bronze")


def test_tier_bronze_for_smallest_amount_at_start_of_6_month_window(tiers):
    # 1 unit on 2024-01-01 (M-5, first day of the 6m window): AMC 1/6 > 0 -> Bronze
    check(
        row(tiers, TIER_M, "BRONZE_MIN"), m6=1.0, avg_monthly_consumption=1 / 6, avg_order_size=1.0, value_tier="Bronze"
    )


@pytest.mark.parametrize(
    "customer, m12, months_since",
    [
        ("PASSIVE_M6", 5000.0, 6),  # 2023-12 = M-6: outside 6m (2024-01..06), inside 12m; 5000 units are irrelevant
        ("PASSIVE_M11", 10.0, 11),  # 2023-07 = M-11: first month of the 12m window
    ],
)
def test_tier_passive_when_bought_7_to_12_months_ago_only(tiers, customer, m12, months_since):
    # m6 = 0 and m12 > 0 -> Active, Passive; AMC 0; AOS NULL (o6 = 0); stage: tenure > 12? no:
    # PASSIVE_M6 tenure (2024-06)-(2023-12)+1 = 7, PASSIVE_M11 = 12 -> New
    check(
        row(tiers, TIER_M, customer),
        m6=0.0,
        m12=m12,
        o6=0,
        o12=1,
        avg_monthly_consumption=0.0,
        avg_order_size=None,
        activity_status="Active",
        value_tier="Passive",
        months_since_last_purchase=months_since,
    )


def test_not_active_has_null_tier_and_null_scores(tiers):
    # 2023-06-30 = M-12: outside 12m (2023-07..2024-06) -> Not Active; in 13m -> event Lost
    check(
        row(tiers, TIER_M, "NOT_ACTIVE_M12"),
        m12=0.0,
        m13=10.0,
        activity_status="Not Active",
        value_tier=None,
        lifecycle_stage="Lost",
        lifecycle_event="Lost",
        months_since_last_purchase=12,
        **NULL_SCORES,
    )


# --------------------------------------------------------------------------------------------
# 5.3 events and 5.4 stages (build 2022-01..2024-04)
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def lifecycle(tmp_path_factory):
    lines = [
        ("N-1", "EV_NEW", "2024-03-10", "P1", 1),
        ("L-1", "EV_LOST", "2023-03-15", "P1", 1),
        ("RA-1", "EV_REACT", "2022-01-10", "P1", 1),
        ("RA-2", "EV_REACT", "2023-02-05", "P1", 2),
        ("NR-1", "EV_NOT_REACT_12", "2022-01-10", "P1", 1),
        ("NR-2", "EV_NOT_REACT_12", "2023-01-05", "P1", 2),
        ("AR-1", "ST_AT_RISK_13", "2023-01-15", "P1", 1),
        ("AR-2", "ST_AT_RISK_13", "2023-06-15", "P1", 1),
        ("AC-1", "ST_ACTIVE_13", "2023-01-15", "P1", 1),
        ("AC-2", "ST_ACTIVE_13", "2024-01-10", "P1", 1),
    ]
    ids = sorted({line[1] for line in lines})
    return build(
        tmp_path_factory.mktemp("lifecycle"),
        PRODUCTS,
        [cust(c, created="2021-06-01") for c in ids],
        txs(*lines),
        "2022-01",
        "2024-04",
    )


def test_stage_prospect_before_first_consumable_purchase(lifecycle):
    # entered (created 2021-06) but m_total 0 -> Prospect, Not Active, no event
    check(
        row(lifecycle, "2024-02", "EV_NEW"),
        m_total=0.0,
        activity_status="Not Active",
        value_tier=None,
        lifecycle_stage="Prospect",
        lifecycle_event=None,
        tenure_months=None,
        **NULL_SCORES,
    )


def test_event_new_in_month_of_first_consumable_purchase(lifecycle):
    # m1 = 10 = m_total -> New; tenure 1 <= 12 -> stage New; t_score (1) 1
    check(
        row(lifecycle, "2024-03", "EV_NEW"),
        m1=10.0,
        m_total=10.0,
        tenure_months=1,
        lifecycle_event="New",
        lifecycle_stage="New",
        activity_status="Active",
        t_score=1,
        prev_value_tier=None,
    )


def test_event_new_only_in_the_first_purchase_month(lifecycle):
    # April: m1 0 -> not New; m12 > 0 -> not Lost -> NULL; tenure 2 -> stage New
    check(row(lifecycle, "2024-04", "EV_NEW"), m1=0.0, lifecycle_event=None, lifecycle_stage="New", tenure_months=2)


def test_stage_new_at_tenure_12_beats_passive(lifecycle):
    # EV_LOST at 2024-02: 12m 2023-03..2024-02 = 10, 6m 2023-09..2024-02 = 0 -> Active, Passive;
    # tenure (2024-2023)*12 + (2-3) + 1 = 12 <= 12 -> New (checked before At Risk)
    check(
        row(lifecycle, "2024-02", "EV_LOST"),
        tenure_months=12,
        activity_status="Active",
        value_tier="Passive",
        lifecycle_stage="New",
        lifecycle_event=None,
    )


def test_event_lost_when_last_purchase_leaves_12_month_window(lifecycle):
    # 2024-03: 12m 2023-04..2024-03 = 0, 13m 2023-03..2024-03 = 10 -> event Lost, stage Lost
    check(
        row(lifecycle, "2024-03", "EV_LOST"),
        m12=0.0,
        m13=10.0,
        activity_status="Not Active",
        lifecycle_event="Lost",
        lifecycle_stage="Lost",
        prev_value_tier="Passive",
        value_tier=None,
    )


def test_event_lost_only_in_first_not_active_month(lifecycle):
    # 2024-04: 13m 2023-04..2024-04 = 0 -> no event; stage stays Lost (m_total 10 > 0, m12 0)
    check(
        row(lifecycle, "2024-04", "EV_LOST"),
        m13=0.0,
        m25=10.0,
        lifecycle_event=None,
        lifecycle_stage="Lost",
        prev_value_tier=None,
    )


def test_event_lost_then_reactivated_after_12_silent_months(lifecycle):
    # 2023-01: 12m 2022-02..2023-01 = 0, 13m 2022-01..2023-01 = 10 -> Lost
    check(row(lifecycle, "2023-01", "EV_REACT"), lifecycle_event="Lost", lifecycle_stage="Lost")
    # 2023-02: m1 20; 13m 2022-02..2023-02 = 20 = m1; m_total 30 > 20 -> Reactivated;
    # tenure 12 + (2-1) + 1 = 14 > 12, m6 20 > 0 -> stage Active; Jan Not Active -> prev NULL
    check(
        row(lifecycle, "2023-02", "EV_REACT"),
        m1=20.0,
        m13=20.0,
        m_total=30.0,
        tenure_months=14,
        lifecycle_event="Reactivated",
        lifecycle_stage="Active",
        prev_value_tier=None,
        value_tier="Bronze",
    )


def test_not_reactivated_when_previous_purchase_exactly_12_months_before(lifecycle):
    # 2023-01: m1 20; 13m 2022-01..2023-01 = 10 + 20 = 30 != m1 -> not Reactivated; m_total 30 != m1 -> not New;
    # m12 (2022-02..2023-01) = 20 > 0 -> not Lost => NULL. Dec 2022 was Active (12m 2022-01..12 = 10),
    # its 6m 2022-07..12 = 0 -> prev Passive. tenure 12 + 0 + 1 = 13, m6 20 > 0 -> stage Active
    check(
        row(lifecycle, "2023-01", "EV_NOT_REACT_12"),
        m1=20.0,
        m12=20.0,
        m13=30.0,
        lifecycle_event=None,
        prev_value_tier="Passive",
        tenure_months=13,
        lifecycle_stage="Active",
    )
    check(
        row(lifecycle, "2022-12", "EV_NOT_REACT_12"), activity_status="Active", lifecycle_stage="New", tenure_months=12
    )


def test_stage_new_at_tenure_12_then_at_risk_at_tenure_13(lifecycle):
    # ST_AT_RISK_13 bought 2023-01 and 2023-06.
    # 2023-12: tenure (12-1)+1 = 12 -> New although 6m 2023-07..12 = 0
    check(row(lifecycle, "2023-12", "ST_AT_RISK_13"), tenure_months=12, m6=0.0, lifecycle_stage="New")
    # 2024-01: 12m 2023-02..2024-01 = 10 > 0; tenure 12 + 0 + 1 = 13; 6m 2023-08..2024-01 = 0 -> At Risk
    check(
        row(lifecycle, "2024-01", "ST_AT_RISK_13"),
        tenure_months=13,
        m12=10.0,
        m6=0.0,
        value_tier="Passive",
        lifecycle_stage="At Risk",
        lifecycle_event=None,
    )


def test_stage_active_at_tenure_13_with_purchase_in_6_months(lifecycle):
    # ST_ACTIVE_13 bought 2023-01-15 and 2024-01-10. 2023-12: tenure 12 -> New.
    check(row(lifecycle, "2023-12", "ST_ACTIVE_13"), tenure_months=12, lifecycle_stage="New")
    # 2024-01: tenure 13, 6m 2023-08..2024-01 = 10 > 0 -> Active; event: m1 10 != m13 (2023-01..2024-01) 20 -> NULL
    check(
        row(lifecycle, "2024-01", "ST_ACTIVE_13"),
        tenure_months=13,
        m6=10.0,
        m12=10.0,
        m13=20.0,
        lifecycle_stage="Active",
        lifecycle_event=None,
    )


# --------------------------------------------------------------------------------------------
# 3/4 windows and time (build 2022-02..2024-04)
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def windows(tmp_path_factory):
    lines = [
        # WIN: one U1 invoice per window edge, powers of two so every window sum is unique (M = 2024-03)
        ("Wa", "WIN", "2024-03-31", "U1", 1),  # M, last day of the month
        ("Wb", "WIN", "2024-02-29", "U1", 2),  # M-1, leap day
        ("Wc", "WIN", "2023-10-01", "U1", 4),  # M-5, first month of 6m
        ("Wd", "WIN", "2023-09-30", "U1", 8),  # M-6, just outside 6m
        ("We", "WIN", "2023-04-01", "U1", 16),  # M-11, first month of 12m
        ("Wf", "WIN", "2023-03-15", "U1", 32),  # M-12, in 13m not 12m
        ("Wg", "WIN", "2023-02-28", "U1", 64),  # M-13, in 24m/25m not 13m
        ("Wh", "WIN", "2022-04-30", "U1", 128),  # M-23, first month of 24m
        ("Wi", "WIN", "2022-03-01", "U1", 256),  # M-24, in 25m not 24m
        ("Wj", "WIN", "2022-02-28", "U1", 512),  # M-25, outside 25m
        ("Wk", "WIN", "2024-04-01", "U1", 1024),  # after M
        ("DJ1", "DECJAN", "2023-12-31", "U1", 1),
        ("DJ2", "DECJAN", "2024-01-01", "U1", 2),
        ("LP1", "LEAP", "2024-02-29", "U1", 5),
    ]
    customers = [
        cust("WIN", created="2021-01-01"),
        cust("DECJAN", created="2023-12-01"),
        cust("LEAP", created="2024-02-29"),
    ]
    return build(tmp_path_factory.mktemp("windows"), PRODUCTS, customers, txs(*lines), "2022-02", "2024-04")


def test_windows_each_edge_month_for_march_2024(windows):
    # M = 2024-03: m1 = a 1; 6m 2023-10..2024-03 = 1+2+4 = 7; 12m 2023-04.. = 7+8+16 = 31;
    # 13m 2023-03.. = 31+32 = 63; 24m 2022-04.. = 63+64+128 = 255; 25m 2022-03.. = 255+256 = 511;
    # m_total = 511 + 512 = 1023 (Wk dated 2024-04-01 is after M: excluded)
    # o6 {a,b,c} = 3; o12 {a..e} = 5; AMC 7/6; AOS 7/3; tenure (2024-2022)*12 + (3-2) + 1 = 26
    check(
        row(windows, "2024-03", "WIN"),
        m1=1.0,
        m6=7.0,
        m12=31.0,
        m13=63.0,
        m24=255.0,
        m25=511.0,
        m_total=1023.0,
        o6=3,
        o12=5,
        avg_monthly_consumption=7 / 6,
        avg_order_size=7 / 3,
        first_consumable_purchase_date=D("2022-02-28"),
        last_consumable_purchase_date=D("2024-03-31"),
        months_since_last_purchase=0,
        tenure_months=26,
    )


def test_windows_leap_day_month_february_2024(windows):
    # M = 2024-02: m1 = b 2 (2024-02-29); 6m 2023-09..2024-02 = 2+4+8 = 14; 12m 2023-03.. = 14+16+32 = 62;
    # 13m 2023-02.. = 62+64 = 126; 24m 2022-03.. = 126+128+256 = 510; 25m 2022-02.. = 510+512 = 1022 = m_total
    check(
        row(windows, "2024-02", "WIN"),
        m1=2.0,
        m6=14.0,
        m12=62.0,
        m13=126.0,
        m24=510.0,
        m25=1022.0,
        m_total=1022.0,
        last_consumable_purchase_date=D("2024-02-29"),
        months_since_last_purchase=0,
        tenure_months=25,
    )


def test_point_in_time_later_purchase_counts_only_from_its_month(windows):
    # M = 2024-04: m1 = k 1024; 6m 2023-11..2024-04 = 1024+1+2 = 1027; m_total = 1023 + 1024 = 2047
    check(
        row(windows, "2024-04", "WIN"),
        m1=1024.0,
        m6=1027.0,
        m_total=2047.0,
        last_consumable_purchase_date=D("2024-04-01"),
    )


def test_purchase_exactly_12_months_back_is_in_m13_not_m12(windows):
    # M = 2023-03 -> 12m 2022-04..2023-03; 13m 2022-03..2023-03. Lines <= 2023-03-31: f 32 (M), g 64 (M-1),
    # h 128 (M-11), i 256 (M-12), j 512 (M-13): m12 = 32+64+128 = 224, m13 = 224 + 256 = 480,
    # m24 (2021-04..) = m25 = m_total = 480 + 512 = 992
    check(row(windows, "2023-03", "WIN"), m1=32.0, m12=224.0, m13=480.0, m24=992.0, m25=992.0, m_total=992.0)


def test_purchase_exactly_13_and_24_months_back(windows):
    # M = 2024-03: g 2023-02 = M-13 -> not in 13m (63) but in 24m (255);
    # i 2022-03 = M-24 -> not in 24m but in 25m (511); j 2022-02 = M-25 only in m_total
    r = row(windows, "2024-03", "WIN")
    check(r, m13=63.0, m24=255.0, m25=511.0)
    assert r["m24"] - r["m13"] == 64 + 128  # g (M-13) and h (M-23)
    assert r["m25"] - r["m24"] == 256  # i (M-24)


def test_december_to_january_windows_cross_the_year(windows):
    # 2023-12: only DJ1 (2023-12-31, last day) -> m1 1, m_total 1, tenure 1, event New
    check(
        row(windows, "2023-12", "DECJAN"),
        m1=1.0,
        m6=1.0,
        m_total=1.0,
        o6=1,
        tenure_months=1,
        months_since_last_purchase=0,
        lifecycle_event="New",
        last_consumable_purchase_date=D("2023-12-31"),
    )
    # 2024-01: m1 = DJ2 2; 6m 2023-08..2024-01 = 1+2 = 3; o6 2; tenure (2024-2023)*12 + (1-12) + 1 = 2;
    # Dec tier: m6 1 -> Bronze
    check(
        row(windows, "2024-01", "DECJAN"),
        m1=2.0,
        m6=3.0,
        m12=3.0,
        m_total=3.0,
        o6=2,
        o12=2,
        tenure_months=2,
        months_since_last_purchase=0,
        last_consumable_purchase_date=D("2024-01-01"),
        first_consumable_purchase_date=D("2023-12-31"),
        lifecycle_event=None,
        prev_value_tier="Bronze",
    )


def test_december_to_january_months_since_and_tenure_later(windows):
    # 2024-03: months since (2024*12+3) - (2024*12+1) = 2 -> r 3; tenure 12 + (3-12) + 1 = 4
    check(row(windows, "2024-03", "DECJAN"), months_since_last_purchase=2, tenure_months=4, m1=0.0, m6=3.0, r_score=3)


def test_entry_month_has_first_row(windows):
    # DECJAN created 2023-12-01 and first line 2023-12-31 -> no row in 2023-11, rows 2023-12..2024-04
    assert months_of(windows, "DECJAN") == ["2023-12", "2024-01", "2024-02", "2024-03", "2024-04"]


def test_leap_day_purchase(windows):
    # 2024-02-29 counts in February: m1 5, tenure 1; March: m1 0, months since 1, tenure 2; April: 2 and 3
    check(
        row(windows, "2024-02", "LEAP"),
        m1=5.0,
        m_total=5.0,
        tenure_months=1,
        months_since_last_purchase=0,
        last_consumable_purchase_date=D("2024-02-29"),
        lifecycle_event="New",
    )
    check(row(windows, "2024-03", "LEAP"), m1=0.0, m6=5.0, months_since_last_purchase=1, tenure_months=2, r_score=4)
    check(row(windows, "2024-04", "LEAP"), months_since_last_purchase=2, tenure_months=3)


def test_purchase_on_the_31st_counts_in_its_month(windows):
    # Wa 2024-03-31 is M's m1 (1), not April's m1 (April m1 = 1024 only)
    assert row(windows, "2024-03", "WIN")["m1"] == 1.0
    assert row(windows, "2024-04", "WIN")["m1"] == 1024.0


# --------------------------------------------------------------------------------------------
# 1 qualifying lines and orders (build 2023-01..2024-02)
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def qualifying(tmp_path_factory):
    lines = [
        ("R1", "L_RET", "2024-01-10", "P1", 3),
        ("R2", "L_RET", "2024-01-20", "P1", -3),
        ("R3", "L_RET", "2024-02-05", "P1", -1),
        ("Z1", "L_ZERO", "2024-01-15", "P1", 0),
        ("Z2A", "L_ZERO2", "2024-01-05", "P1", 2),
        ("Z2B", "L_ZERO2", "2024-01-25", "P1", 0),
        ("DV0", "L_DEV", "2023-10-20", "D1", 0),
        ("DV1", "L_DEV", "2023-11-05", "D1", 1),
        ("DV2", "L_DEV", "2024-01-05", "D1", 1),
        ("CA1", "L_CAT", "2024-01-08", "A1", 5),
        ("CA1", "L_CAT", "2024-01-08", "SP1", 5),
        ("CA1", "L_CAT", "2024-01-08", "X1", 5),
        ("CA1", "L_CAT", "2024-01-08", "D1", 1),
        ("CA1", "L_CAT", "2024-01-08", "P1", 1),
        ("CA2", "L_CAT", "2024-01-20", "A1", 2),
        ("CA2", "L_CAT", "2024-01-20", "X1", 3),
        ("SPL", "L_SPELL", "2024-01-12", "R1", 2),
        ("SPL", "L_SPELL", "2024-01-12", "S1", 3),
        ("SPL", "L_SPELL", "2024-01-12", "K1", 7),
        ("O1", "L_ORD", "2023-01-31", "P1", 1),
        ("O2", "L_ORD", "2023-05-10", "P1", 1),
        ("O3", "L_ORD", "2023-08-01", "P1", 1),
        ("O4", "L_ORD", "2024-01-05", "P1", 1),
        ("O4", "L_ORD", "2024-01-05", "R1", 1),
        ("SPA", "L_SPAN", "2023-07-31", "P1", 1),  # one invoice with lines in two months
        ("SPA", "L_SPAN", "2023-08-01", "P1", 1),
        ("SPB", "L_SPAN", "2024-01-15", "P1", 1),
        ("SHARED", "L_SHARE1", "2024-01-10", "P1", 1),  # the same invoice id for two customers
        ("SHARED", "L_SHARE2", "2024-01-10", "P1", 2),
    ]
    customers = [
        cust(c, created="2022-12-01")
        for c in ("L_RET", "L_ZERO2", "L_DEV", "L_CAT", "L_SPELL", "L_ORD", "L_SPAN", "L_SHARE1", "L_SHARE2")
    ]
    customers.append(cust("L_ZERO", created=""))
    return build(tmp_path_factory.mktemp("qualifying"), PRODUCTS, customers, txs(*lines), "2023-01", "2024-02")


def test_return_is_ignored_and_original_purchase_counts(qualifying):
    # R1 +3*10 = 30 counts; R2 -3 ignored (not subtracted, not an order) -> m1 30, o6 1, AOS 30
    check(
        row(qualifying, "2024-01", "L_RET"),
        m1=30.0,
        m_total=30.0,
        o6=1,
        o12=1,
        avg_order_size=30.0,
        last_consumable_purchase_date=D("2024-01-10"),
        value_tier="Bronze",
    )


def test_return_in_a_later_month_changes_nothing(qualifying):
    # Feb: R3 -1 ignored -> m1 0, m_total 30; last purchase still 2024-01-10 -> months since 1
    check(
        row(qualifying, "2024-02", "L_RET"),
        m1=0.0,
        m_total=30.0,
        m6=30.0,
        o6=1,
        last_consumable_purchase_date=D("2024-01-10"),
        months_since_last_purchase=1,
    )


def test_zero_quantity_line_is_not_a_purchase_but_sets_entry(qualifying):
    # L_ZERO: blank created_date, only line 2024-01-15 qty 0: before 2024-01 the entry date is unknown
    # as of the month (point in time), so the customer is in every month built (2023-01..2024-02);
    # the zero line is no purchase
    assert months_of(qualifying, "L_ZERO") == [f"2023-{m:02d}" for m in range(1, 13)] + ["2024-01", "2024-02"]
    check(
        row(qualifying, "2024-01", "L_ZERO"),
        m_total=0.0,
        m1=0.0,
        o6=0,
        o12=0,
        tenure_months=None,
        first_consumable_purchase_date=None,
        last_consumable_purchase_date=None,
        lifecycle_stage="Prospect",
        activity_status="Not Active",
        lifecycle_event=None,
    )


def test_zero_quantity_line_is_not_an_order_nor_last_purchase(qualifying):
    # Z2A 2*10 = 20 counts; Z2B qty 0 on 2024-01-25 ignored -> o6 1, last 2024-01-05
    check(
        row(qualifying, "2024-01", "L_ZERO2"),
        m1=20.0,
        o6=1,
        avg_order_size=20.0,
        last_consumable_purchase_date=D("2024-01-05"),
    )


def test_device_only_customer_is_prospect(qualifying):
    # only device lines: first_device = first qty > 0 device line 2023-11-05 (DV0 qty 0 ignored);
    # no consumable: every figure 0, tenure/months since/dates NULL, Not Active, tier/scores NULL, Prospect
    check(
        row(qualifying, "2024-01", "L_DEV"),
        first_device_purchase_date=D("2023-11-05"),
        m_total=0.0,
        m1=0.0,
        m6=0.0,
        m12=0.0,
        m13=0.0,
        m24=0.0,
        m25=0.0,
        o6=0,
        o12=0,
        first_consumable_purchase_date=None,
        last_consumable_purchase_date=None,
        months_since_last_purchase=None,
        tenure_months=None,
        avg_monthly_consumption=0.0,
        avg_order_size=None,
        activity_status="Not Active",
        value_tier=None,
        prev_value_tier=None,
        lifecycle_stage="Prospect",
        lifecycle_event=None,
        **NULL_SCORES,
    )


def test_device_date_needs_positive_quantity_and_is_point_in_time(qualifying):
    # 2023-10: only DV0 (qty 0) -> NULL; 2023-11: DV1 -> 2023-11-05
    check(row(qualifying, "2023-10", "L_DEV"), first_device_purchase_date=None)
    check(row(qualifying, "2023-11", "L_DEV"), first_device_purchase_date=D("2023-11-05"))


def test_other_categories_are_ignored_and_device_line_only_sets_device_date(qualifying):
    # CA1: accessories, spare_parts, gift_card (unknown), device lines all ignored in units: only P1 1*10 = 10;
    # CA2 (accessories + unknown only) is not an order and not a purchase -> o6 1, last 2024-01-08
    check(
        row(qualifying, "2024-01", "L_CAT"),
        m1=10.0,
        m_total=10.0,
        o6=1,
        o12=1,
        avg_order_size=10.0,
        first_device_purchase_date=D("2024-01-08"),
        first_consumable_purchase_date=D("2024-01-08"),
        last_consumable_purchase_date=D("2024-01-08"),
    )


def test_refill_and_spaced_upper_case_consumable_spellings_count(qualifying):
    # refill R1 2*10 = 20; " Consumable " S1 3*5 = 15; CONSUMABLE K1 7*1 = 7 -> 42, one invoice -> o6 1
    check(row(qualifying, "2024-01", "L_SPELL"), m1=42.0, m_total=42.0, o6=1, avg_order_size=42.0)


def test_orders_are_distinct_invoices_in_6_and_12_month_windows(qualifying):
    # M = 2024-01: 6m 2023-08..2024-01 -> O3, O4 (2 lines = 1 order) -> o6 2; 12m 2023-02.. -> O2, O3, O4 = 3;
    # O1 (2023-01-31, M-12) only in 13m. m6 = 10 + (10 + 10) = 30; m12 = 30 + 10 = 40; m13 = m_total = 50;
    # AOS = 30 / 2 = 15
    check(
        row(qualifying, "2024-01", "L_ORD"),
        o6=2,
        o12=3,
        m1=20.0,
        m6=30.0,
        m12=40.0,
        m13=50.0,
        m_total=50.0,
        avg_order_size=15.0,
        avg_monthly_consumption=5.0,
    )


def test_invoice_spanning_two_months_is_one_order(qualifying):
    # SPA has qualifying lines on 2023-07-31 and 2023-08-01: one order.
    # 2023-08: o6 = o12 = {SPA} = 1; m1 10 (Aug line), m_total 20
    check(row(qualifying, "2023-08", "L_SPAN"), o6=1, o12=1, m1=10.0, m6=20.0, m_total=20.0, avg_order_size=20.0)
    # 2024-01: 6m 2023-08..2024-01 holds SPA's Aug line and SPB -> o6 2, m6 10 + 10 = 20;
    # 12m 2023-02..2024-01 holds both SPA lines and SPB -> o12 2, m12 30
    check(row(qualifying, "2024-01", "L_SPAN"), o6=2, o12=2, m6=20.0, m12=30.0, avg_order_size=10.0)
    # 2024-02: 6m 2023-09..2024-02 -> only SPB -> o6 1; 12m 2023-03..2024-02 -> SPA, SPB -> o12 2
    check(row(qualifying, "2024-02", "L_SPAN"), o6=1, o12=2, m6=10.0)


def test_invoice_id_shared_by_two_customers_is_one_order_each(qualifying):
    # "distinct invoice_id of the customer": SHARED is one order of L_SHARE1 (10) and one of L_SHARE2 (20)
    check(row(qualifying, "2024-01", "L_SHARE1"), o6=1, o12=1, m1=10.0)
    check(row(qualifying, "2024-01", "L_SHARE2"), o6=1, o12=1, m1=20.0)


# --------------------------------------------------------------------------------------------
# 2 who is evaluated (build 2024-01..2024-04)
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def who(tmp_path_factory):
    customers = [
        cust("GEN1", group="General", created="2023-12-01"),
        cust("GEN2", group=" general ", created="2023-12-01"),
        cust("GEN3", group="GENERAL", created="2023-12-01"),
        cust("007", created="2023-12-01"),
        cust("7", created="2023-12-01"),
        cust("K2", created="2023-12-01"),
        cust("OP", created="2023-12-01"),
        cust("MID", created="2024-03-15"),
        cust("EARLY_TX", created="2024-04-10"),
        cust("EARLY_ODD", created="2024-04-10"),
        cust("UNKNOWN", created=""),
        cust("BLANK_LATER", created=""),
    ]
    lines = [
        ("G1", "GEN1", "2024-01-10", "P1", 1),
        ("G2", "GEN2", "2024-01-10", "P1", 1),
        ("G3", "GEN3", "2024-01-10", "P1", 1),
        ("I007", "007", "2024-01-10", "P1", 1),
        ("I7", "7", "2024-01-11", "P1", 2),
        ("IK2", " K2 ", "2024-01-12", " P1 ", 3),
        ("OP1", "OP", "2024-01-05", "P404", 5),
        ("OP2", "OP", "2024-01-06", "P1", 1),
        ("ORPH", "C404", "2024-01-10", "P1", 9),
        ("MID1", "MID", "2024-04-02", "P1", 1),
        ("ET1", "EARLY_TX", "2024-02-05", "P1", 1),
        ("EO1", "EARLY_ODD", "2024-02-20", "P404", -1),
        ("BL1", "BLANK_LATER", "2024-03-05", "P1", 1),
    ]
    return build(tmp_path_factory.mktemp("who"), PRODUCTS, customers, txs(*lines), "2024-01", "2024-04")


@pytest.mark.parametrize("customer", ["GEN1", "GEN2", "GEN3"])
def test_anonymous_general_customers_get_no_rows(who, customer):
    # groups "General", " general ", "GENERAL" -> anonymous (trimmed, any case)
    assert months_of(who, customer) == []


def test_orphan_customer_gets_no_rows(who):
    # C404 is not in the customer master
    assert months_of(who, "C404") == []


def test_text_ids_007_and_7_are_different_customers(who):
    # 007: 1*10 = 10; 7: 2*10 = 20
    check(row(who, "2024-01", "007"), m1=10.0, o6=1)
    check(row(who, "2024-01", "7"), m1=20.0, o6=1)


def test_ids_are_compared_after_trimming(who):
    # line " K2 " / " P1 " matches customer K2 and product P1: 3*10 = 30
    check(row(who, "2024-01", "K2"), m1=30.0, o6=1)


def test_orphan_product_line_never_counts(who):
    # OP1 (P404, 5) is not in the product master -> only OP2 1*10 = 10, one order
    check(row(who, "2024-01", "OP"), m1=10.0, m_total=10.0, o6=1, first_consumable_purchase_date=D("2024-01-06"))


def test_customer_entering_mid_history_has_no_rows_before_entry(who):
    # created 2024-03-15, first line 2024-04-02 -> entry 2024-03
    assert months_of(who, "MID") == ["2024-03", "2024-04"]
    check(row(who, "2024-03", "MID"), lifecycle_stage="Prospect", m_total=0.0)
    check(row(who, "2024-04", "MID"), lifecycle_event="New", lifecycle_stage="New", m1=10.0)


def test_entry_by_first_transaction_earlier_than_created_date(who):
    # created 2024-04-10 but first line 2024-02-05 -> entry 2024-02
    assert months_of(who, "EARLY_TX") == ["2024-02", "2024-03", "2024-04"]
    check(row(who, "2024-02", "EARLY_TX"), lifecycle_event="New", m1=10.0)


def test_entry_by_any_line_even_unknown_product_and_return(who):
    # first line 2024-02-20 is P404 qty -1: still the entry date -> rows from 2024-02, a Prospect
    assert months_of(who, "EARLY_ODD") == ["2024-02", "2024-03", "2024-04"]
    check(row(who, "2024-02", "EARLY_ODD"), m_total=0.0, lifecycle_stage="Prospect")


def test_unknown_entry_date_is_in_every_month(who):
    # blank created_date and no transaction -> every month, Prospect, Not Active
    assert months_of(who, "UNKNOWN") == ["2024-01", "2024-02", "2024-03", "2024-04"]
    for month in ("2024-01", "2024-04"):
        check(row(who, month, "UNKNOWN"), lifecycle_stage="Prospect", activity_status="Not Active", m_total=0.0)


def test_blank_created_date_unknown_entry_until_first_transaction(who):
    # blank created_date, first line 2024-03-05. Point in time (section 3): as of Jan and Feb 2024 no
    # line exists yet, so the entry date is unknown then and the customer is in those months as a
    # Prospect (a line dated after M never changes M); from March the line is the entry date.
    assert months_of(who, "BLANK_LATER") == ["2024-01", "2024-02", "2024-03", "2024-04"]
    check(row(who, "2024-02", "BLANK_LATER"), m_total=0.0, lifecycle_stage="Prospect", lifecycle_event=None)
    check(row(who, "2024-03", "BLANK_LATER"), lifecycle_event="New", tenure_months=1)


def test_evaluated_customers_in_first_month(who):
    # Jan: 007, 7, K2, OP (created 2023-12), UNKNOWN, BLANK_LATER (no created date, no line yet:
    # unknown entry as of Jan); not GEN*, C404, MID, EARLY_*
    assert sorted(r["customer_id"] for r in who if r["report_month"] == D("2024-01-01")) == [
        "007",
        "7",
        "BLANK_LATER",
        "K2",
        "OP",
        "UNKNOWN",
    ]


# --------------------------------------------------------------------------------------------
# 5.5 r, f, t scores, M = 2024-12 (build 2022-12..2024-12)
# --------------------------------------------------------------------------------------------

R_CASES = {  # customer: (last purchase, months since, r_score)
    "R0": ("2024-12-10", 0, 5),
    "R1": ("2024-11-10", 1, 4),
    "R2": ("2024-10-10", 2, 3),
    "R3": ("2024-09-10", 3, 2),
    "R5": ("2024-07-10", 5, 2),
    "R6": ("2024-06-10", 6, 1),
    "R11": ("2024-01-10", 11, 1),
}
F_CASES = {1: 1, 2: 2, 3: 2, 4: 3, 6: 3, 7: 4, 11: 4, 12: 5}  # o12 -> f_score
T_CASES = {  # tenure: (first purchase, t_score); tenure = (2024 - y)*12 + (12 - m) + 1
    3: ("2024-10-05", 1),  # 0 + 2 + 1
    4: ("2024-09-05", 2),  # 0 + 3 + 1
    6: ("2024-07-05", 2),  # 0 + 5 + 1
    7: ("2024-06-05", 3),  # 0 + 6 + 1
    12: ("2024-01-05", 3),  # 0 + 11 + 1
    13: ("2023-12-05", 4),  # 12 + 0 + 1
    24: ("2023-01-05", 4),  # 12 + 11 + 1
    25: ("2022-12-05", 5),  # 24 + 0 + 1
}


@pytest.fixture(scope="module")
def scores(tmp_path_factory):
    lines = [(f"{c}-1", c, day, "U1", 1) for c, (day, _, _) in R_CASES.items()]
    for n in F_CASES:  # n invoices on 2024-12-01 .. 2024-12-n
        lines += [(f"F{n}-{i}", f"F{n}", f"2024-12-{i:02d}", "U1", 1) for i in range(1, n + 1)]
    for n, (first, _) in T_CASES.items():  # first purchase, and one in M to stay Active
        lines += [(f"T{n}-1", f"T{n}", first, "U1", 1), (f"T{n}-2", f"T{n}", "2024-12-15", "U1", 1)]
    ids = sorted({line[1] for line in lines})
    return build(
        tmp_path_factory.mktemp("scores"),
        PRODUCTS,
        [cust(c, created="2022-01-01") for c in ids],
        txs(*lines),
        "2022-12",
        "2024-12",
    )


@pytest.mark.parametrize("customer", sorted(R_CASES))
def test_r_score_bin_edges(scores, customer):
    _, since, expected = R_CASES[customer]
    check(
        row(scores, "2024-12", customer), months_since_last_purchase=since, activity_status="Active", r_score=expected
    )


@pytest.mark.parametrize("orders", sorted(F_CASES))
def test_f_score_bin_edges(scores, orders):
    check(row(scores, "2024-12", f"F{orders}"), o12=orders, o6=orders, f_score=F_CASES[orders])


@pytest.mark.parametrize("tenure", sorted(T_CASES))
def test_t_score_bin_edges(scores, tenure):
    check(row(scores, "2024-12", f"T{tenure}"), tenure_months=tenure, t_score=T_CASES[tenure][1])


# --------------------------------------------------------------------------------------------
# 5.5 m_score: ceil(5 * cume_dist(m12)) among that month's Active customers (build 2022-06..2024-06)
# --------------------------------------------------------------------------------------------

M_SCORE_LINES = [
    # 2022-06: 7 Active customers (A*); 2023-06: 5 (B*); 2024-06: 3 (C*). Each set is Not Active 12 months later.
    *[(f"A{i}", f"A{i}", "2022-06-10", "U1", q) for i, q in enumerate([10, 20, 20, 30, 50, 60, 60], 1)],
    *[(f"B{i}", f"B{i}", "2023-06-10", "U1", q) for i, q in enumerate([100, 200, 300, 400, 500], 1)],
    ("C1", "C1", "2023-08-10", "U1", 100),  # same m12 as C2 in 2024-06 (12m 2023-07..2024-06), bought earlier
    ("C2", "C2", "2024-06-10", "U1", 100),
    ("C3", "C3", "2024-06-11", "U1", 300),
]


@pytest.fixture(scope="module")
def m_scores(tmp_path_factory):
    ids = sorted({line[1] for line in M_SCORE_LINES}) + ["PROSPECT"]
    return build(
        tmp_path_factory.mktemp("mscore"),
        PRODUCTS,
        [cust(c, created="2022-01-01") for c in ids],
        txs(*M_SCORE_LINES),
        "2022-06",
        "2024-06",
    )


@pytest.mark.parametrize(
    "customer, expected",
    [
        ("A1", 1),  # m12 10: 1/7 <= -> ceil(5/7 = 0.71) = 1
        ("A2", 3),  # m12 20 (tie): 3/7 -> ceil(15/7 = 2.14) = 3
        ("A3", 3),  # same m12 as A2 -> same score
        ("A4", 3),  # m12 30: 4/7 -> ceil(20/7 = 2.86) = 3
        ("A5", 4),  # m12 50: 5/7 -> ceil(25/7 = 3.57) = 4
        ("A6", 5),  # m12 60 (tie): 7/7 -> 5
        ("A7", 5),
    ],
)
def test_m_score_seven_active_customers_with_ties(m_scores, customer, expected):
    # PROSPECT and all B*/C* (m12 = 0, Not Active) are not in the cume_dist population
    check(row(m_scores, "2022-06", customer), activity_status="Active", m_score=expected)


@pytest.mark.parametrize("k", [1, 2, 3, 4, 5])
def test_m_score_five_active_customers_exact_fifths(m_scores, k):
    # 2023-06: A* Not Active (12m 2022-07..2023-06 = 0); B1..B5 distinct -> cume_dist k/5 -> ceil(5k/5) = k
    check(row(m_scores, "2023-06", f"B{k}"), activity_status="Active", m12=100.0 * k, m_score=k)


def test_m_score_three_active_customers_with_tie(m_scores):
    # 2024-06: C1 = C2 = 100 -> 2/3 -> ceil(10/3 = 3.33) = 4; C3 300 -> 3/3 -> 5
    check(row(m_scores, "2024-06", "C1"), m12=100.0, m1=0.0, m_score=4)
    check(row(m_scores, "2024-06", "C2"), m12=100.0, m1=100.0, m_score=4)
    check(row(m_scores, "2024-06", "C3"), m12=300.0, m_score=5)


def test_m_score_null_when_not_active(m_scores):
    check(row(m_scores, "2023-06", "A1"), activity_status="Not Active", m_score=None)
    check(row(m_scores, "2022-06", "PROSPECT"), activity_status="Not Active", m_score=None)


# --------------------------------------------------------------------------------------------
# 5.6 prev_value_tier when M-1 is never materialized: only 2020-01 (first partition) is built,
# its history (2018-12..2019-12) is loaded with it.
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def prev(tmp_path_factory):
    lines = [
        ("PG1", "PV_GOLD", "2019-07-10", "U1", 1200),
        ("PN1", "PV_NULL", "2018-12-15", "U1", 5),
        ("PN2", "PV_NULL", "2020-01-10", "U1", 1),
        ("PP1", "PV_PASSIVE", "2019-03-10", "U1", 5),
        ("PP2", "PV_PASSIVE", "2020-01-20", "U1", 1),
        ("PS1", "PV_SILVER", "2019-12-01", "U1", 300),
        ("PS2", "PV_SILVER", "2020-01-05", "U1", 6000),
        *[(f"PD{m}", "PV_DIAMOND", f"2019-{m:02d}-10", "U1", 1500) for m in range(7, 13)],
        ("PE1", "PV_NOT_ENTERED", "2020-01-06", "U1", 1),
    ]
    customers = [cust(c, created="2018-01-01") for c in ("PV_GOLD", "PV_NULL", "PV_PASSIVE", "PV_SILVER", "PV_DIAMOND")]
    customers.append(cust("PV_NOT_ENTERED", created="2020-01-05"))
    return build(tmp_path_factory.mktemp("prev"), PRODUCTS, customers, txs(*lines), "2020-01", "2020-01")


def test_prev_tier_only_the_built_month_has_rows(prev):
    assert {r["report_month"] for r in prev} == {D("2020-01-01")}


def test_prev_tier_gold_when_m_minus_1_not_built(prev):
    # Dec 2019: 6m 2019-07..12 = 1200 -> AMC 200 -> Gold. Jan 2020: 6m 2019-08..2020-01 = 0, 12m > 0 -> Passive
    check(row(prev, "2020-01", "PV_GOLD"), value_tier="Passive", prev_value_tier="Gold")


def test_prev_tier_null_when_not_active_in_m_minus_1(prev):
    # Dec 2019: 12m 2019-01..12 = 0 (only 2018-12) -> Not Active -> NULL. Jan: 1 unit -> Bronze;
    # m1 1 = m13 (2019-01..2020-01) 1, m_total 6 > 1 -> Reactivated
    check(
        row(prev, "2020-01", "PV_NULL"),
        value_tier="Bronze",
        prev_value_tier=None,
        lifecycle_event="Reactivated",
        m_total=6.0,
    )


def test_prev_tier_passive(prev):
    # Dec 2019: 12m 2019-01..12 has 2019-03; 6m 2019-07..12 = 0 -> Passive. Jan: m6 1 -> Bronze
    check(row(prev, "2020-01", "PV_PASSIVE"), value_tier="Bronze", prev_value_tier="Passive")


def test_prev_tier_silver(prev):
    # Dec 2019: m6 300 -> AMC 50 -> Silver. Jan: m6 6300, AMC 1050 >= 1000 but o6 2 < 3 -> Gold
    check(row(prev, "2020-01", "PV_SILVER"), m6=6300.0, o6=2, value_tier="Gold", prev_value_tier="Silver")


def test_prev_tier_diamond(prev):
    # Dec 2019: 6 x 1500 in 2019-07..12 -> AMC 1500, AOS 1500, o6 6 -> Diamond.
    # Jan 2020: 6m 2019-08..2020-01 = 5 x 1500 = 7500, AMC 1250, o6 5 < 6 -> Platinum
    check(row(prev, "2020-01", "PV_DIAMOND"), m6=7500.0, o6=5, value_tier="Platinum", prev_value_tier="Diamond")


def test_prev_tier_null_when_not_yet_entered(prev):
    # created 2020-01-05, first line 2020-01-06 -> not entered in Dec 2019 -> NULL; now New, Bronze
    check(row(prev, "2020-01", "PV_NOT_ENTERED"), value_tier="Bronze", prev_value_tier=None, lifecycle_event="New")


# --------------------------------------------------------------------------------------------
# 7 consent flags (build 2024-01 only)
# --------------------------------------------------------------------------------------------

CONSENTS = {  # customer: ((opt_email, opt_sms, opt_phone) text, expected booleans)
    "CS01": (("1", "0", ""), (True, False, False)),
    "CS02": (("true", "false", "TRUE"), (True, False, True)),
    "CS03": (("False", "YES", "no"), (False, True, False)),
    "CS04": (("y", "n", "Y"), (True, False, True)),
    "CS05": (("N", "Yes", "yEs"), (False, True, True)),
    "CS06": (("maybe", "2", "-1"), (False, False, False)),
    "CS07": (("", "", ""), (False, False, False)),
    "CS08": (("ja", "on", "T"), (False, False, False)),
    "CS09": (("NO", "FALSE", "TrUe"), (False, False, True)),
}


@pytest.fixture(scope="module")
def consent(tmp_path_factory):
    customers = [cust(c, created="2023-01-01", opts=texts) for c, (texts, _) in CONSENTS.items()]
    return build(
        tmp_path_factory.mktemp("consent"),
        PRODUCTS,
        customers,
        txs(("I1", "CS01", "2024-01-10", "P1", 1)),
        "2024-01",
        "2024-01",
    )


@pytest.mark.parametrize("customer", sorted(CONSENTS))
def test_consent_flags(consent, customer):
    email, sms, phone = CONSENTS[customer][1]
    check(row(consent, "2024-01", customer), opt_email=email, opt_sms=sms, opt_phone=phone)


# --------------------------------------------------------------------------------------------
# configurable rules (build 2024-01..2024-06)
# --------------------------------------------------------------------------------------------

CUSTOM = CrmRules(
    t_high=100,
    t_mid_high=20,
    t_mid=5,
    a_high=150,
    f_high=2,
    f_mid=1,  # m6 thresholds 600 / 120 / 30
    anonymous_groups=["Staff"],
    r_score_max_months=[1, 2, 3, 4],
    f_score_min_orders=[3, 5, 8, 13],
    t_score_min_months=[2, 3, 4, 5],
)


@pytest.fixture(scope="module")
def custom(tmp_path_factory):
    lines = [
        ("CD1", "CR_DIA", "2024-01-10", "U1", 300),
        ("CD2", "CR_DIA", "2024-06-10", "U1", 300),
        ("CP1", "CR_PLAT", "2024-06-05", "U1", 600),
        *[(f"CA{m}", "CR_AOS", f"2024-{m:02d}-10", "U1", 149) for m in range(2, 7)],
        ("CG1", "CR_GOLD", "2024-06-05", "U1", 120),
        ("CS1", "CR_SILVER", "2024-06-05", "U1", 30),
        ("CB1", "CR_BRONZE", "2024-06-05", "U1", 29),
        ("CR1", "CR_R1", "2024-05-10", "U1", 10),
        ("CR5", "CR_R5", "2024-01-10", "U1", 10),
        ("ST1", "STAFF", "2024-06-05", "U1", 10),
        ("GE1", "GENERAL", "2024-06-05", "U1", 1),
    ]
    ids = ["CR_DIA", "CR_PLAT", "CR_AOS", "CR_GOLD", "CR_SILVER", "CR_BRONZE", "CR_R1", "CR_R5"]
    customers = [cust(c, created="2023-01-01") for c in ids]
    customers += [
        cust("STAFF", group=" STAFF ", created="2023-01-01"),
        cust("GENERAL", group="General", created="2023-01-01"),
    ]
    return build(tmp_path_factory.mktemp("custom"), PRODUCTS, customers, txs(*lines), "2024-01", "2024-06", CUSTOM)


@pytest.mark.parametrize(
    "customer, tier",
    [
        ("CR_DIA", "Diamond"),  # 300+300 = 600: AMC 100 >= 100, AOS 300 >= 150, o6 2 >= 2 (default: Silver)
        ("CR_PLAT", "Platinum"),  # 600 in 1 order: o6 1 < 2 -> not Diamond; o6 1 >= f_mid 1 (default: Silver)
        ("CR_AOS", "Platinum"),  # 5 x 149 = 745: AMC 124.2 >= 100, AOS 149 < 150 -> Platinum (default: Silver)
        ("CR_GOLD", "Gold"),  # 120 / 6 = 20 = t_mid_high (default: Bronze)
        ("CR_SILVER", "Silver"),  # 30 / 6 = 5 = t_mid (default: Bronze)
        ("CR_BRONZE", "Bronze"),  # 29 / 6 = 4.83 < 5
    ],
)
def test_custom_thresholds_move_tiers(custom, customer, tier):
    check(row(custom, "2024-06", customer), value_tier=tier)


def test_custom_score_edges(custom):
    # r edges [1,2,3,4]: months since 0 -> 5, 1 -> 5 (default 4), 5 -> 1 (default 2);
    # f edges [3,5,8,13]: o12 2 -> 1 (default 2); t edges [2,3,4,5]: tenure 6 (2024-01..06) -> 5 (default 2)
    check(row(custom, "2024-06", "CR_DIA"), o12=2, tenure_months=6, r_score=5, f_score=1, t_score=5)
    check(row(custom, "2024-06", "CR_R1"), months_since_last_purchase=1, r_score=5)
    check(row(custom, "2024-06", "CR_R5"), months_since_last_purchase=5, r_score=1)


def test_custom_anonymous_groups(custom):
    # anonymous_groups ["Staff"]: " STAFF " excluded; "General" is an ordinary customer now
    assert months_of(custom, "STAFF") == []
    check(row(custom, "2024-06", "GENERAL"), m1=1.0, value_tier="Bronze")
