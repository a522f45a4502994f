"""``crm explain`` and ``crm export --explain`` on the small hand-made warehouse of test_views.

Customer 007 in 2024-03 (P1 = 10 units): 100 in Jan, 50 in Feb, 10 in March -> m6 = m12 = m_total = 1600 units,
3 orders and 3 lines, last purchase in March, tenure Jan..Mar = 3. AMC 1600 / 6 = 266.67 (shown rounded down,
266.66): Gold. The month's Active customers are 007 (1600), 7 (30) and C3 (2000): n 3, k 2 for 007,
m_score ceil(10 / 3) = 4. February: m6 1500 (AMC 250, Gold) with 2 orders and 2 lines.
"""

from __future__ import annotations

import csv
import io

import openpyxl
import pytest

from crm_assets.cli.main import main
from crm_assets.core.resources import Warehouse
from crm_assets.core.rules import CrmRules
from crm_assets.outputs.exports import EXPLAINED_COLUMNS, export_customers

from ..outputs.test_views import MAR, small, warehouse_copy  # noqa: F401 - the module-scoped warehouse fixture

EXPECTED_007 = [
    "customer 007 (Ann), 2024-03",
    "units: m1 100, m6 1600, m12 1600, m13 1600, m_total 1600",
    "orders: o6 3, o12 3",
    "qualifying lines: lines_total 3, lines_m1 1, lines_m6 3, lines_m12 3, lines_m13 3",
    "derived: AMC = m6/6 266.66, AOS = m6/o6 533.33, months since last purchase 0, tenure months 3",
    "previous month 2024-02: status Active, tier Gold (prev_lines_m12 2, prev_lines_m6 2, prev_m6 1500, prev_o6 2)",
    "activity status Active: lines_m12 3 > 0",
    "value tier Gold: AMC 266.66 >= t_mid_high 200; not Platinum: AMC 266.66 < t_high 1000",
    "previous month's tier (on 2024-02's figures) Gold: AMC 250 >= t_mid_high 200; not Platinum: AMC 250 < t_high 1000 and o6 2 < f_mid 3",
    "lifecycle stage New: tenure_months 3 <= 12; not Lost: lines_m12 3 > 0",
    "lifecycle event none: otherwise; not Reactivated: lines_m13 3 > lines_m1 1 (bought in the 12 months before) "
    "and lines_total 3 = lines_m13 3 (no older history)",
    "r_score 5: months_since_last_purchase 0 <= r_score_max_months[0] 0; activity status Active",
    "f_score 2: o12 3 >= f_score_min_orders[0] 2; not 3: o12 3 < f_score_min_orders[1] 4",
    "m_score 4: m12 1600; k 2 of n 3 Active customers have m12 <= 1600; ceil(5 x 2 / 3) = 4",
    "t_score 1: otherwise; not 2: tenure_months 3 < t_score_min_months[0] 4",
]


def explain(warehouse, capsys, month="2024-03", customer="007"):
    code = main(["explain", "--month", month, "--customer", customer, "--warehouse", str(warehouse)])
    out, err = capsys.readouterr()
    return code, out.splitlines(), err


def test_explain_prints_the_hand_worked_reasons(small, capsys):  # noqa: F811
    code, lines, err = explain(small.warehouse, capsys)
    assert (code, err) == (0, "")
    rules_line = lines.pop(1)
    assert rules_line.startswith(
        f"rules: as recorded for 2024-03 in reporting.snapshot_manifest (version {CrmRules().version()}, run "
    )
    assert lines == EXPECTED_007


def test_without_recorded_rules_the_configured_ones_are_used_and_said(small, tmp_path, capsys):  # noqa: F811
    copy = warehouse_copy(small, tmp_path, "DELETE FROM reporting.snapshot_manifest WHERE report_month = '2024-03-01'")
    code, lines, _ = explain(copy, capsys)
    assert code == 0
    assert lines[1] == (
        f"rules: the configured rules (version {CrmRules().version()}): the warehouse records none for 2024-03"
    )
    assert lines[7] == EXPECTED_007[6]
    # the tier's sentence, with the thresholds of the rules used (the defaults: t_mid_high 200, t_high 1000)
    assert lines[8] == EXPECTED_007[7] and "t_mid_high 200" in lines[8]


def test_recorded_rules_are_used_and_a_disagreement_fails_loudly(small, tmp_path, capsys):  # noqa: F811
    # recorded t_mid_high 300: AMC 266.66 < 300 gives Silver, but the stored tier is Gold
    copy = warehouse_copy(
        small,
        tmp_path,
        "UPDATE reporting.snapshot_manifest SET rules = json_merge_patch(rules, '{\"t_mid_high\": 300}') "
        "WHERE report_month = '2024-03-01'",
    )
    code, lines, err = explain(copy, capsys)
    assert code == 1 and lines == []
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "tier of customer 007 in 2024-03: stored 'Gold' but the rules give 'Silver'" in err


@pytest.mark.parametrize(
    "month, customer, message",
    [
        ("2024-03", "NOPE", "crm explain: customer 'NOPE' is not in the customer master\n"),
        ("2024-03", "G1", "crm explain: customer 'G1' is anonymous (group General): it is never evaluated\n"),
        ("2024-05", "007", "crm explain: month 2024-05 is not in the warehouse (months held: 2024-01..2024-03)\n"),
    ],
)
def test_unknown_customer_or_month_is_one_line_exit_2(small, capsys, month, customer, message):  # noqa: F811
    code, lines, err = explain(small.warehouse, capsys, month, customer)
    assert (code, lines, err) == (2, [], message)


TIER_EXPLANATIONS = {
    "007": "Gold: AMC 266.66 >= t_mid_high 200; not Platinum: AMC 266.66 < t_high 1000",
    "7": "Bronze: m6 30 > 0; not Silver: AMC 5 < t_mid 50",
    "C3": "Gold: AMC 333.33 >= t_mid_high 200; not Platinum: AMC 333.33 < t_high 1000 and o6 1 < f_mid 3",
    "C4": "none: activity status Not Active",
    "C5": "none: activity status Not Active",
}


def test_export_explain_adds_the_tier_sentence_after_value_tier(small, tmp_path, capsys):  # noqa: F811
    out = tmp_path / "list.csv"
    code = main(["export", "--month", "2024-03", "--explain", "--out", str(out), "--warehouse", str(small.warehouse)])
    assert code == 0, capsys.readouterr().err
    text = out.read_bytes().decode("utf-8-sig")
    header = text.splitlines()[0].replace('"', "").split(",")
    assert header == list(EXPLAINED_COLUMNS)
    assert header[header.index("value_tier") + 1] == "tier_explanation"
    rows = list(csv.DictReader(io.StringIO(text)))
    assert {r["customer_id"]: r["tier_explanation"] for r in rows} == TIER_EXPLANATIONS


def test_export_without_explain_has_no_sentence_and_xlsx_with_it_says_the_rules(small, tmp_path):  # noqa: F811
    plain = tmp_path / "plain.csv"
    export_customers(Warehouse(database=str(small.warehouse)), MAR, plain, {"tier": ["Gold"]})
    assert "tier_explanation" not in plain.read_text(encoding="utf-8-sig").splitlines()[0]
    out = tmp_path / "gold.xlsx"
    export_customers(Warehouse(database=str(small.warehouse)), MAR, out, {"tier": ["Gold"]}, explain=True)
    wb = openpyxl.load_workbook(out)
    rows = list(wb["Customers"].iter_rows(values_only=True))
    column = rows[0].index("tier_explanation")
    assert {r[1]: r[column] for r in rows[1:]} == {c: TIER_EXPLANATIONS[c] for c in ("007", "C3")}
    about = {r[0]: r[1] for r in wb["Export"].iter_rows(values_only=True) if r[0]}
    assert about["Tier explanation"].startswith(
        "the value tier rule that matched and the one above it; rules as recorded for 2024-03 in "
        f"reporting.snapshot_manifest (version {CrmRules().version()}"
    )


def test_an_export_with_explanations_refuses_rules_that_disagree_with_the_stored_tiers(small, tmp_path, capsys):  # noqa: F811
    """The same disagreement as above stops `crm export --explain` before anything is written: a list must not
    send "Silver: ..." beside value_tier Gold."""
    copy = warehouse_copy(
        small,
        tmp_path,
        "UPDATE reporting.snapshot_manifest SET rules = json_merge_patch(rules, '{\"t_mid_high\": 300}') "
        "WHERE report_month = '2024-03-01'",
    )
    out = tmp_path / "list.csv"
    code = main(["export", "--month", "2024-03", "--out", str(out), "--explain", "--warehouse", str(copy)])
    err = capsys.readouterr().err
    assert code == 1 and not out.exists() and list(tmp_path.glob(".list*")) == []
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "first 007: stored 'Gold', the rules give 'Silver'" in err


def test_a_customer_not_yet_entered_in_the_previous_month_has_no_previous_tier_and_says_why(small, capsys):  # noqa: F811
    code, lines, err = explain(small.warehouse, capsys, month="2024-01")
    assert (code, err) == (0, "")
    assert "previous month 2023-12: not entered yet" in lines
    assert "previous month's tier none: not entered yet in 2023-12" in lines
