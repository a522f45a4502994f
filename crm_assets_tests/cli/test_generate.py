"""The synthetic data generator: determinism, format, planted edge cases, persona coverage.

Persona coverage is checked with a small, plain pandas implementation of
business_rules.md sections 1-5 written here, independent of the warehouse
code: every value tier, lifecycle stage, lifecycle event and every r/f/m/t
score 1..5 must occur in some month of the default sample.
"""

from __future__ import annotations

import csv
import hashlib
import math
import re
from collections import Counter
from datetime import date, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from crm_assets.cli import generate as gen

TX_COLUMNS = ["invoice_id", "customer_id", "invoice_date", "product_id", "quantity", "revenue", "store_id"]
CUSTOMER_COLUMNS = [
    "customer_id",
    "customer_name",
    "customer_group",
    "city",
    "created_date",
    "email",
    "mobile_number",
    "opt_email",
    "opt_sms",
    "opt_phone",
]
PRODUCT_COLUMNS = ["product_id", "product_name", "brand", "category", "unit_size"]
DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}")


# --------------------------------------------------------------------------
# Reading the files back (Python's csv module only)
# --------------------------------------------------------------------------
def read_rows(path: Path) -> tuple[list[str], list[list[str]]]:
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    return rows[0], rows[1:]


def parse_date(text: str) -> date | None:
    text = text.strip()
    if not DATE_RE.fullmatch(text):
        return None
    try:
        return datetime.strptime(text, "%Y-%m-%d").date()
    except ValueError:
        return None


def parse_number(text: str) -> float | None:
    try:
        value = float(text.strip())
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def tx_problem(row: list[str]) -> str | None:
    """Why a transaction row would be rejected (source_files.md), or None."""
    if len(row) != 7:
        return f"{len(row)} fields"
    invoice, customer, day, product, quantity, revenue, _store = row
    for name, value in (
        ("invoice_id", invoice),
        ("customer_id", customer),
        ("invoice_date", day),
        ("product_id", product),
        ("quantity", quantity),
    ):
        if not value.strip():
            return f"missing {name}"
    if parse_date(day) is None:
        return "bad date"
    if parse_number(quantity) is None:
        return "bad quantity"
    if revenue.strip() and parse_number(revenue) is None:
        return "bad revenue"
    return None


def tx_files(folder: Path) -> list[Path]:
    return sorted(folder.glob("sales_transactions_*.csv"))


def load_transactions(folder: Path) -> tuple[pd.DataFrame, list[tuple[str, int, list[str]]]]:
    """Valid rows as a DataFrame (text columns) and the bad rows as (file, line number, fields)."""
    good, bad = [], []
    for path in tx_files(folder):
        header, rows = read_rows(path)
        assert header == TX_COLUMNS
        for number, row in enumerate(rows, start=2):
            if tx_problem(row) is None:
                good.append([path.name, number, *row])
            else:
                bad.append((path.name, number, row))
    frame = pd.DataFrame(good, columns=["file", "line", *TX_COLUMNS])
    return frame, bad


def load_master(path: Path, columns: list[str]) -> pd.DataFrame:
    header, rows = read_rows(path)
    assert header == columns
    assert all(len(r) == len(columns) for r in rows)
    return pd.DataFrame(rows, columns=columns)


def digest(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


# --------------------------------------------------------------------------
# Fixtures
# --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def default_sample(tmp_path_factory) -> tuple[Path, dict]:
    folder = tmp_path_factory.mktemp("default") / "input"
    summary = gen.generate(folder)
    return folder, summary


@pytest.fixture(scope="module")
def sample_frames(default_sample):
    folder, _ = default_sample
    tx, bad = load_transactions(folder)
    customers = load_master(folder / "customers_master.csv", CUSTOMER_COLUMNS)
    products = load_master(folder / "products_master.csv", PRODUCT_COLUMNS)
    return tx, bad, customers, products


# --------------------------------------------------------------------------
# Determinism
# --------------------------------------------------------------------------
def test_same_seed_gives_identical_files_and_other_seed_differs(tmp_path):
    a = gen.generate(tmp_path / "a", customers=300, seed=7)
    b = gen.generate(tmp_path / "b", customers=300, seed=7)
    c = gen.generate(tmp_path / "c", customers=300, seed=8)
    assert digest(tmp_path / "a") == digest(tmp_path / "b")
    assert {k: v for k, v in a.items() if k not in ("out_dir", "files")} == {
        k: v for k, v in b.items() if k not in ("out_dir", "files")
    }
    da, dc = digest(tmp_path / "a"), digest(tmp_path / "c")
    assert da.keys() == dc.keys()
    assert da["customers_master.csv"] != dc["customers_master.csv"]
    assert all(da[f] != dc[f] for f in da if f.startswith("sales_transactions_"))
    assert da["products_master.csv"] == dc["products_master.csv"]  # the catalogue is fixed
    assert c["customers"] == 300


def test_default_sample_is_reproducible(default_sample, tmp_path):
    folder, summary = default_sample
    again = gen.generate(tmp_path / "again")
    assert digest(folder) == digest(tmp_path / "again")
    assert again["planted"] == summary["planted"]


def test_regenerating_into_the_same_folder_overwrites(tmp_path):
    gen.generate(tmp_path / "x", customers=200, seed=3)
    first = digest(tmp_path / "x")
    gen.generate(tmp_path / "x", customers=200, seed=3)
    assert digest(tmp_path / "x") == first
    assert not list((tmp_path / "x").glob("*.tmp"))


# --------------------------------------------------------------------------
# Files, columns, month range
# --------------------------------------------------------------------------
def test_default_files_columns_and_summary(default_sample, sample_frames):
    folder, summary = default_sample
    names = sorted(p.name for p in folder.iterdir())
    assert names == ["customers_master.csv", "products_master.csv"] + [
        f"sales_transactions_{y}.csv" for y in range(2021, 2026)
    ]
    assert sorted(Path(f).name for f in summary["files"]) == names
    for path in folder.iterdir():
        raw = path.read_bytes()
        assert raw.endswith(b"\n") and b"\r" not in raw
        assert summary["lines"][path.name] == raw.count(b"\n")
        assert summary["rows"][path.name] == raw.count(b"\n") - 1
        assert summary["bytes"][path.name] == len(raw)
    first_lines = {p.name: p.read_text(encoding="utf-8").split("\n", 1)[0] for p in folder.iterdir()}
    assert first_lines["customers_master.csv"] == ",".join(CUSTOMER_COLUMNS)
    assert first_lines["products_master.csv"] == ",".join(PRODUCT_COLUMNS)
    assert all(first_lines[f] == ",".join(TX_COLUMNS) for f in names if f.startswith("sales_"))

    tx, bad, customers, products = sample_frames
    assert summary["customers"] == len(customers) == gen.DEFAULT_CUSTOMERS
    assert summary["products"] == len(products)
    assert summary["transactions"] == len(tx) + len(bad)
    assert 50_000 <= sum(summary["lines"].values()) <= 150_000
    assert sum(summary["personas"].values()) == gen.DEFAULT_CUSTOMERS
    assert customers.customer_id.is_unique and products.product_id.is_unique
    # every transaction file holds only its own year, in date order
    for name, part in tx.groupby("file"):
        year = int(name[len("sales_transactions_") : -4])
        dates = part.sort_values("line").invoice_date.tolist()
        assert all(d.startswith(f"{year}-") for d in dates)
        assert dates == sorted(dates)


def test_start_and_end_are_respected(tmp_path):
    folder = tmp_path / "range"
    summary = gen.generate(folder, customers=300, seed=1, start="2022-11", end="2024-02")
    assert summary["months"] == 16
    assert sorted(p.name for p in tx_files(folder)) == [f"sales_transactions_{y}.csv" for y in (2022, 2023, 2024)]
    tx, bad = load_transactions(folder)
    days = tx.invoice_date.map(parse_date)
    assert days.min() >= date(2022, 11, 1) and days.max() <= date(2024, 2, 29)
    months = {d[:7] for d in tx.invoice_date}
    assert months == {
        f"{y}-{m:02d}" for y, m in [(2022, 11), (2022, 12)] + [(2023, m) for m in range(1, 13)] + [(2024, 1), (2024, 2)]
    }
    assert len(bad) == summary["planted"]["malformed_rows"] == len(gen.MALFORMED_KINDS)
    customers = load_master(folder / "customers_master.csv", CUSTOMER_COLUMNS)
    created = customers.created_date[customers.created_date != ""].map(parse_date)
    assert created.notna().all() and created.max() <= date(2024, 2, 29)


def test_single_month_and_tiny_samples(tmp_path):
    one = gen.generate(tmp_path / "one", customers=1, seed=0, start="2024-02", end="2024-02")
    assert one["customers"] == 1 and one["months"] == 1
    assert [Path(f).name for f in one["files"]][-1] == "sales_transactions_2024.csv"
    customers = load_master(tmp_path / "one" / "customers_master.csv", CUSTOMER_COLUMNS)
    assert len(customers) == 1
    small = gen.generate(tmp_path / "small", customers=40, seed=5, start="2023-06", end="2023-08")
    tx, bad = load_transactions(tmp_path / "small")
    assert len(tx) > 0 and len(bad) == small["planted"]["malformed_rows"]


def test_out_dir_is_created(tmp_path):
    target = tmp_path / "a" / "b" / "c"
    gen.generate(target, customers=50, start="2025-01", end="2025-03")
    assert (target / "customers_master.csv").is_file()


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"customers": 0}, "customers"),
        ({"customers": -5}, "customers"),
        ({"customers": "10"}, "customers"),
        ({"customers": 2.5}, "customers"),
        ({"customers": True}, "customers"),
        ({"customers": gen.MAX_CUSTOMERS + 1}, "customers"),
        ({"seed": -1}, "seed"),
        ({"start": "2024-05", "end": "2024-04"}, "before"),
        ({"start": "2021-13"}, "start"),
        ({"start": "2021/01"}, "start"),
        ({"end": "2021-1"}, "end"),
        ({"end": ""}, "end"),
        ({"start": None}, "start"),
        ({"end": "2023-02-30"}, "end"),
    ],
)
def test_bad_arguments_raise_value_error(tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message) as info:
        gen.generate(tmp_path / "bad", **kwargs)
    assert "\n" not in str(info.value)
    assert not (tmp_path / "bad").exists() or not any((tmp_path / "bad").iterdir())


def test_out_dir_that_is_a_file_is_rejected(tmp_path):
    target = tmp_path / "file.txt"
    target.write_text("x")
    with pytest.raises(ValueError):
        gen.generate(target, customers=10)


# --------------------------------------------------------------------------
# Planted edge cases (default sample)
# --------------------------------------------------------------------------
def test_returns_zero_quantities_and_revenue(default_sample, sample_frames):
    _, summary = default_sample
    tx, _, _, products = sample_frames
    quantity = tx.quantity.astype(float)
    revenue = tx.revenue.astype(float)
    planted = summary["planted"]
    assert (quantity < 0).sum() == planted["returns"] > 0
    assert (revenue[quantity < 0] < 0).all()
    assert (quantity == 0).sum() == planted["zero_quantity"] == gen.N_ZERO_QUANTITY
    assert (revenue[quantity == 0] == 0).all()
    assert (revenue[quantity > 0] > 0).all()
    assert (quantity == quantity.round()).all()
    # returned products are consumables bought earlier by the same customer
    returns = tx[quantity < 0]
    bought = set(zip(tx.customer_id[quantity > 0], tx.product_id[quantity > 0]))
    assert all(pair in bought for pair in zip(returns.customer_id, returns.product_id))
    assert set(returns.product_id) <= set(products.product_id)


def test_orphans(default_sample, sample_frames):
    _, summary = default_sample
    tx, _, customers, products = sample_frames
    planted = summary["planted"]
    orphan_c = tx[~tx.customer_id.isin(customers.customer_id)]
    orphan_p = tx[~tx.product_id.isin(products.product_id)]
    assert len(orphan_c) == planted["orphan_customer_lines"] == gen.N_ORPHAN_CUSTOMER_LINES
    assert sorted(set(orphan_c.customer_id)) == planted["orphan_customer_ids"] == list(gen.ORPHAN_CUSTOMER_IDS)
    assert len(orphan_p) == planted["orphan_product_lines"] == gen.N_ORPHAN_PRODUCT_LINES
    assert set(orphan_p.product_id) == set(planted["orphan_product_ids"]) == set(gen.ORPHAN_PRODUCT_IDS)


def test_exact_duplicates(default_sample):
    folder, summary = default_sample
    extra = 0
    for path in tx_files(folder):
        counts = Counter(path.read_text(encoding="utf-8").splitlines()[1:])
        extra += sum(n - 1 for n in counts.values())
    assert extra == summary["planted"]["exact_duplicates"] == gen.N_DUPLICATES


def test_malformed_rows(default_sample, sample_frames):
    _, summary = default_sample
    _, bad, _, _ = sample_frames
    planted = summary["planted"]["malformed"]
    assert summary["planted"]["malformed_rows"] == len(bad) == len(gen.MALFORMED_KINDS)
    assert sorted(p["kind"] for p in planted) == sorted(gen.MALFORMED_KINDS)
    assert [(f, n, ",".join(r)) for f, n, r in bad] == sorted((p["file"], p["line"], p["text"]) for p in planted)
    reasons = Counter(tx_problem(r) for _, _, r in bad)
    assert reasons == Counter(
        {
            "bad date": 2,
            "bad quantity": 1,
            "missing customer_id": 1,
            "missing product_id": 1,
            "5 fields": 1,
            "8 fields": 1,
        }
    )
    texts = [",".join(r) for _, _, r in bad]
    assert any(re.search(r",\d{4}-02-30,", t) for t in texts)
    assert any(re.search(r",\d{2}/\d{2}/\d{4},", t) for t in texts)
    assert len({f for f, _, _ in bad}) >= 3  # spread over several year files


def test_customer_master_edge_cases(default_sample, sample_frames):
    _, summary = default_sample
    tx, _, customers, _ = sample_frames
    planted = summary["planted"]
    assert (customers.created_date == "").sum() == planted["blank_created_date"] == gen.N_BLANK_CREATED
    assert customers.created_date[customers.created_date != ""].map(parse_date).notna().all()

    flags = set(customers.opt_email) | set(customers.opt_sms) | set(customers.opt_phone)
    assert {"1", "0", "true", "false", "Yes", "No", "Y", "n", "", "maybe"} <= flags
    assert planted["consent_unknown"] == 3

    names = customers.customer_name
    assert names.str.contains(",").sum() == planted["names_with_comma"] >= 3
    assert names.str.contains('"').sum() == planted["names_with_quote"] >= 2
    assert names.str.contains(",").mul(names.str.contains('"')).any()
    raw = (default_sample[0] / "customers_master.csv").read_text(encoding="utf-8")
    assert '"Bistro ""Chez Léa"", Lyon"' in raw  # properly CSV-quoted

    groups = set(customers.customer_group)
    assert {"Retail", "Loyalty", "Corporate", "HoReCa", "Online", "General", " general ", "GENERAL"} <= groups
    general = customers[customers.customer_group.str.strip().str.lower() == "general"]
    assert set(general.customer_group) == {"General", " general ", "GENERAL"}
    for spelling in (" general ", "GENERAL", "General"):
        ids = general.customer_id[general.customer_group == spelling]
        assert tx.customer_id.isin(ids).any(), spelling

    assert {"007", "7"} <= set(customers.customer_id)
    assert (tx.customer_id == "007").any() and (tx.customer_id == "7").any()
    assert customers.customer_id.str.fullmatch(r"C\d{6}|007|7").all()

    mobile = customers.mobile_number
    assert mobile.str.startswith("+").any() and mobile.str.startswith("0").any() and (mobile == "").any()
    assert mobile[mobile != ""].str.fullmatch(r"\+?\d{9,12}").all()
    assert (customers.email == "").any() and customers.email[customers.email != ""].str.contains("@").all()


def test_product_master_edge_cases(sample_frames):
    tx, _, _, products = sample_frames
    assert {"consumable", "device", "accessories", "spare_parts", "Refill", " Consumable ", "gift_card"} <= set(
        products.category
    )
    norm = products.category.str.strip().str.lower().replace({"refill": "consumable"})
    consumable = products[norm == "consumable"]
    assert (consumable.unit_size.astype(float) > 0).all()
    assert (products.unit_size[norm.isin(["device", "accessories"])] == "").any()
    # the odd spellings are really sold
    for category in ("Refill", " Consumable ", "gift_card", "device", "accessories", "spare_parts"):
        ids = products.product_id[products.category == category]
        assert tx.product_id.isin(ids).any(), category
    assert (tx.store_id == "").any() and tx.store_id[tx.store_id != ""].str.fullmatch(r"S\d{3}").all()


# --------------------------------------------------------------------------
# Persona coverage: an independent implementation of business_rules.md 1-5
# --------------------------------------------------------------------------
T_HIGH, T_MID_HIGH, T_MID, A_HIGH, F_HIGH, F_MID = 1000, 200, 50, 1500, 6, 3


def month_number(day: date) -> int:
    return day.year * 12 + day.month - 1


def bin_score(value: int, edges: list[tuple[int, int]]) -> int:
    """edges: (lowest value, score), ascending."""
    score = None
    for low, s in edges:
        if value >= low:
            score = s
    return score


F_EDGES = [(1, 1), (2, 2), (4, 3), (7, 4), (12, 5)]
T_EDGES = [(1, 1), (4, 2), (7, 3), (13, 4), (25, 5)]


def r_score(months_since: int) -> int:
    if months_since == 0:
        return 5
    if months_since == 1:
        return 4
    if months_since == 2:
        return 3
    if months_since <= 5:
        return 2
    return 1


def snapshots(folder: Path, first_month: str, last_month: str) -> pd.DataFrame:
    tx, _ = load_transactions(folder)
    customers = load_master(folder / "customers_master.csv", CUSTOMER_COLUMNS)
    products = load_master(folder / "products_master.csv", PRODUCT_COLUMNS)

    # 1. products: category normalized, units
    products["product_id"] = products.product_id.str.strip()
    category = products.category.str.strip().str.lower().replace({"refill": "consumable"})
    unit_size = dict(zip(products.product_id, pd.to_numeric(products.unit_size.replace("", np.nan))))
    consumables = set(products.product_id[category == "consumable"])

    # 2. who is evaluated
    customers["customer_id"] = customers.customer_id.str.strip()
    evaluated = customers[customers.customer_group.str.strip().str.lower() != "general"].copy()
    tx["customer_id"] = tx.customer_id.str.strip()
    tx["product_id"] = tx.product_id.str.strip()
    tx["invoice_id"] = tx.invoice_id.str.strip()
    tx["day"] = tx.invoice_date.map(parse_date)
    tx["month"] = tx.day.map(month_number)
    tx["quantity"] = tx.quantity.astype(float)
    # Entry date = min(created_date, first transaction line). Point in time (section 3): a line
    # dated after M never changes M, so a customer without a valid created_date has no known
    # entry date in the months before its first line and is in every month's snapshot.
    first_line = tx.groupby("customer_id").day.min()
    created = evaluated.created_date.map(parse_date)
    first_tx = evaluated.customer_id.map(first_line)
    entry = [
        min(d for d in (c, t) if isinstance(d, date)) if isinstance(c, date) else None
        for c, t in zip(created, first_tx)
    ]
    evaluated["entry_month"] = [month_number(d) if d else None for d in entry]

    qual = tx[tx.product_id.isin(consumables) & (tx.quantity > 0) & tx.customer_id.isin(evaluated.customer_id)].copy()
    qual["units"] = qual.quantity * qual.product_id.map(unit_size)

    out = []
    m_first = month_number(parse_date(first_month + "-01"))
    m_last = month_number(parse_date(last_month + "-01"))
    for M in range(m_first, m_last + 1):
        who = evaluated[evaluated.entry_month.isna() | (evaluated.entry_month <= M)][["customer_id"]].copy()
        upto = qual[qual.month <= M]

        def window(months: int) -> pd.Series:
            return upto[upto.month > M - months].groupby("customer_id").units.sum()

        f = who.set_index("customer_id")
        f["m_total"] = upto.groupby("customer_id").units.sum()
        for k in (1, 6, 12, 13, 24, 25):
            f[f"m{k}"] = window(k)
        f["o6"] = upto[upto.month > M - 6].groupby("customer_id").invoice_id.nunique()
        f["o12"] = upto[upto.month > M - 12].groupby("customer_id").invoice_id.nunique()
        f = f.fillna(0.0)
        f["first_m"] = upto.groupby("customer_id").month.min()
        f["last_m"] = upto.groupby("customer_id").month.max()
        f["months_since"] = M - f.last_m
        f["tenure"] = M - f.first_m + 1
        f["amc"] = f.m6 / 6
        f["aos"] = np.where(f.o6 > 0, f.m6 / f.o6.where(f.o6 > 0, 1), np.nan)

        active = f.m12 > 0
        f["status"] = np.where(active, "Active", "Not Active")
        tier = np.select(
            [
                f.m6 == 0,
                (f.amc >= T_HIGH) & (f.aos >= A_HIGH) & (f.o6 >= F_HIGH),
                (f.amc >= T_HIGH) & (f.o6 >= F_MID),
                f.amc >= T_MID_HIGH,
                f.amc >= T_MID,
                f.amc > 0,
            ],
            ["Passive", "Diamond", "Platinum", "Gold", "Silver", "Bronze"],
            default=None,
        )
        f["tier"] = np.where(active, tier, None)
        f["event"] = np.select(
            [
                (f.m1 > 0) & (f.m1 == f.m_total),
                (f.m12 == 0) & (f.m13 > 0),
                (f.m1 > 0) & (f.m1 == f.m13) & (f.m_total > f.m13),
            ],
            ["New", "Lost", "Reactivated"],
            default=None,
        )
        f["stage"] = np.select(
            [f.m_total == 0, f.m12 == 0, f.tenure <= 12, f.m6 == 0],
            ["Prospect", "Lost", "New", "At Risk"],
            default="Active",
        )
        f["r"] = [r_score(int(x)) if a else None for x, a in zip(f.months_since.fillna(-1), active)]
        f["f"] = [bin_score(int(x), F_EDGES) if a else None for x, a in zip(f.o12, active)]
        f["t"] = [bin_score(int(x), T_EDGES) if a else None for x, a in zip(f.tenure.fillna(0), active)]
        # cume_dist = k / n with k = how many Active customers have m12 <= this one's
        k = f.m12[active].rank(method="max").astype(int)
        n = int(active.sum())
        f["m"] = (-(-5 * k // n)).reindex(f.index)  # ceil(5 * k / n) in integers
        f["month"] = M
        out.append(f.reset_index())
    return pd.concat(out, ignore_index=True)


def test_independent_rules_on_a_hand_made_example(tmp_path):
    """The test implementation reproduces the worked example of business_rules.md section 8."""
    folder = tmp_path / "example"
    folder.mkdir()
    (folder / "products_master.csv").write_text(
        ",".join(PRODUCT_COLUMNS) + "\nP1,Pods,B,consumable,10\nD1,Machine,B,device,\n"
    )
    (folder / "customers_master.csv").write_text(
        ",".join(CUSTOMER_COLUMNS) + "\nC1,Ann,Loyalty,Paris,2023-01-10,a@x.org,+331,1,0,\n"
    )
    (folder / "sales_transactions_2023.csv").write_text(
        ",".join(TX_COLUMNS) + "\nA,C1,2023-01-15,D1,1,,\nA,C1,2023-01-15,P1,3,,\nB,C1,2023-02-20,P1,2,,\n"
        "B,C1,2023-02-27,P1,-1,,\nC,C1,2023-06-30,P1,5,,\nD,C1,2024-07-01,P1,1,,\n"
    )
    snap = snapshots(folder, "2023-01", "2024-07").set_index("month")

    def row(text: str) -> pd.Series:
        return snap.loc[month_number(parse_date(text + "-01"))]

    r = row("2023-02")
    assert (r.m_total, r.m1, r.m6, r.o6, r.tier, r.stage, r.event) == (50, 20, 50, 2, "Bronze", "New", None)
    assert (r.r, r.f, r.m, r.t) == (5, 2, 5, 1)
    r = row("2023-06")
    assert (r.m_total, r.o6, r.tier, r.stage, r.t) == (100, 3, "Bronze", "New", 2)
    r = row("2024-06")
    assert (r.m13, r.status, r.tier, r.stage, r.event) == (50, "Not Active", None, "Lost", "Lost")
    r = row("2024-07")
    assert (r.m_total, r.tier, r.stage, r.event) == (110, "Bronze", "Active", "Reactivated")
    assert (r.r, r.f, r.m, r.t) == (5, 1, 5, 4)


def test_default_sample_covers_every_tier_stage_event_and_score(default_sample):
    folder, summary = default_sample
    snap = snapshots(folder, summary["start"], summary["end"])
    # sanity: invariants of section 4
    assert (snap.m1 <= snap.m6).all() and (snap.m6 <= snap.m12).all() and (snap.m12 <= snap.m13).all()
    assert (snap.m13 <= snap.m24).all() and (snap.m24 <= snap.m25).all() and (snap.m25 <= snap.m_total).all()
    assert set(snap.tier.dropna()) == {"Passive", "Diamond", "Platinum", "Gold", "Silver", "Bronze"}
    assert set(snap.stage) == {"Prospect", "Lost", "New", "At Risk", "Active"}
    assert set(snap.event.dropna()) == {"New", "Lost", "Reactivated"}
    for score in ("r", "f", "m", "t"):
        assert set(snap[score].dropna().astype(int)) == {1, 2, 3, 4, 5}, score
    # each value is common enough to be a useful demo, not a one-off
    last = snap[snap.month == snap.month.max()]
    assert set(last.tier.dropna()) == {"Passive", "Diamond", "Platinum", "Gold", "Silver", "Bronze"}
    assert set(last.stage) == {"Prospect", "Lost", "New", "At Risk", "Active"}
    counts = snap.event.value_counts()
    assert counts["Reactivated"] >= 20 and counts["Lost"] >= 50
