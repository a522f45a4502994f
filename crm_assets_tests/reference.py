"""A plain, independent Python implementation of business_rules.md, for property tests.

Written straight from the spec with loops and Fractions, deliberately unlike
the SQL: it walks every customer and month and every line. It is slow and
only meant for small random data sets.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date
from fractions import Fraction


@dataclass
class Rules:
    t_high: Fraction = Fraction(1000)
    t_mid_high: Fraction = Fraction(200)
    t_mid: Fraction = Fraction(50)
    a_high: Fraction = Fraction(1500)
    f_high: int = 6
    f_mid: int = 3
    anonymous: tuple[str, ...] = ("general",)


def month_index(d: date) -> int:
    return d.year * 12 + d.month - 1


def month_of(index: int) -> date:
    return date(index // 12, index % 12 + 1, 1)


def category(text: str | None) -> str | None:
    if text is None:
        return None
    c = text.strip().lower()
    return "consumable" if c == "refill" else c


def consent(text: str | None) -> bool:
    return text is not None and text.strip().lower() in ("1", "true", "yes", "y")


def r_score(months_since: int) -> int:
    if months_since == 0:
        return 5
    if months_since == 1:
        return 4
    if months_since == 2:
        return 3
    if 3 <= months_since <= 5:
        return 2
    return 1


def f_score(o12: int) -> int:
    if o12 >= 12:
        return 5
    if o12 >= 7:
        return 4
    if o12 >= 4:
        return 3
    if o12 >= 2:
        return 2
    return 1


def t_score(tenure: int) -> int:
    if tenure >= 25:
        return 5
    if tenure >= 13:
        return 4
    if tenure >= 7:
        return 3
    if tenure >= 4:
        return 2
    return 1


def tier(f: dict, rules: Rules) -> str | None:
    if f["m12"] <= 0:
        return None
    amc = f["m6"] / 6
    aos = f["m6"] / f["o6"] if f["o6"] else None
    if f["m6"] == 0:
        return "Passive"
    if amc >= rules.t_high and aos is not None and aos >= rules.a_high and f["o6"] >= rules.f_high:
        return "Diamond"
    if amc >= rules.t_high and f["o6"] >= rules.f_mid:
        return "Platinum"
    if amc >= rules.t_mid_high:
        return "Gold"
    if amc >= rules.t_mid:
        return "Silver"
    if amc > 0:
        return "Bronze"
    return None


def features(lines: list[dict], m: int, created: date | None) -> dict:
    """Section 4 for one customer (its lines, already filtered to the customer) at month index m."""
    upto = [ln for ln in lines if month_index(ln["date"]) <= m]
    qualifying = [ln for ln in upto if ln["category"] == "consumable" and ln["quantity"] > 0]

    def units(months_back: int | None) -> Fraction:
        return sum(
            (ln["units"] for ln in qualifying if months_back is None or month_index(ln["date"]) > m - months_back),
            Fraction(0),
        )

    def orders(months_back: int) -> int:
        return len({ln["invoice"] for ln in qualifying if month_index(ln["date"]) > m - months_back})

    devices = [ln["date"] for ln in upto if ln["category"] == "device" and ln["quantity"] > 0]
    first_c = min((ln["date"] for ln in qualifying), default=None)
    last_c = max((ln["date"] for ln in qualifying), default=None)
    first_line = min((ln["date"] for ln in upto), default=None)
    if created is None:
        entered = True  # known by a line, or unknown entry date: in every month
    else:
        entered = month_index(created) <= m or (first_line is not None and month_index(first_line) <= m)
    f = {
        "m_total": units(None),
        "m1": units(1),
        "m6": units(6),
        "m12": units(12),
        "m13": units(13),
        "m24": units(24),
        "m25": units(25),
        "o6": orders(6),
        "o12": orders(12),
        "first_device_purchase_date": min(devices, default=None),
        "first_consumable_purchase_date": first_c,
        "last_consumable_purchase_date": last_c,
        "months_since_last_purchase": None if last_c is None else m - month_index(last_c),
        "tenure_months": None if first_c is None else m - month_index(first_c) + 1,
        "entered": entered,
    }
    f["avg_monthly_consumption"] = f["m6"] / 6
    f["avg_order_size"] = f["m6"] / f["o6"] if f["o6"] else None
    return f


def snapshot(
    products: list[dict], customers: list[dict], lines: list[dict], months: list[date], rules: Rules | None = None
) -> dict[tuple[date, str], dict]:
    """Every snapshot row, keyed by (report month, customer_id)."""
    rules = rules or Rules()
    product_by_id = {p["product_id"].strip(): p for p in products}
    by_customer: dict[str, list[dict]] = {}
    for ln in lines:
        product = product_by_id.get(ln["product_id"].strip())
        cat = category(product["category"]) if product else None
        unit_size = Fraction(str(product["unit_size"])) if product and product["unit_size"] is not None else None
        by_customer.setdefault(ln["customer_id"].strip(), []).append(
            {
                "date": ln["date"],
                "invoice": ln["invoice_id"].strip(),
                "quantity": Fraction(str(ln["quantity"])),
                "category": cat,
                "units": Fraction(str(ln["quantity"])) * unit_size if cat == "consumable" else Fraction(0),
            }
        )
    result: dict[tuple[date, str], dict] = {}
    for month in months:
        m = month_index(month)
        rows = []
        for c in customers:
            cid = c["customer_id"].strip()
            group = (c["customer_group"] or "").strip().lower()
            if group in rules.anonymous:
                continue
            own = by_customer.get(cid, [])
            f = features(own, m, c["created_date"])
            if not f["entered"]:
                continue
            prev = features(own, m - 1, c["created_date"])
            active = f["m12"] > 0
            event = None
            if f["m1"] > 0 and f["m1"] == f["m_total"]:
                event = "New"
            elif f["m12"] == 0 and f["m13"] > 0:
                event = "Lost"
            elif f["m1"] > 0 and f["m1"] == f["m13"] and f["m_total"] > f["m13"]:
                event = "Reactivated"
            if f["m_total"] == 0:
                stage = "Prospect"
            elif f["m12"] == 0:
                stage = "Lost"
            elif f["tenure_months"] <= 12:
                stage = "New"
            elif f["m6"] == 0:
                stage = "At Risk"
            else:
                stage = "Active"
            row = dict(f)
            del row["entered"]
            row.update(
                customer_id=cid,
                report_month=month,
                activity_status="Active" if active else "Not Active",
                value_tier=tier(f, rules),
                prev_value_tier=tier(prev, rules) if prev["entered"] else None,
                lifecycle_stage=stage,
                lifecycle_event=event,
                r_score=r_score(f["months_since_last_purchase"]) if active else None,
                f_score=f_score(f["o12"]) if active else None,
                t_score=t_score(f["tenure_months"]) if active else None,
                opt_email=consent(c.get("opt_email")),
                opt_sms=consent(c.get("opt_sms")),
                opt_phone=consent(c.get("opt_phone")),
            )
            rows.append(row)
        active_m12 = [r["m12"] for r in rows if r["activity_status"] == "Active"]
        for r in rows:
            if r["activity_status"] == "Active":
                cume = Fraction(sum(1 for v in active_m12 if v <= r["m12"]), len(active_m12))
                r["m_score"] = math.ceil(5 * cume)
            else:
                r["m_score"] = None
            result[(month, r["customer_id"])] = r
    return result
