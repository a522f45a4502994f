"""Deterministic synthetic CRM sample in the landing format (``crm generate``).

:func:`generate` writes the three input file kinds of ``source_files.md`` into
one folder:

- ``products_master.csv``: a fixed catalogue of a coffee business (beans,
  ground coffee and capsules as consumables; machines, accessories, spare
  parts, a gift card);
- ``customers_master.csv``: ``customers`` rows, one per customer;
- ``sales_transactions_<YEAR>.csv``: one file per calendar year of the month
  range ``start`` .. ``end``, lines in date order (planted malformed rows sit
  at the end of their month's block).

The same arguments always give byte-identical files: every random draw comes
from one ``numpy.random.default_rng(seed)`` in a fixed order, nothing depends
on today's date, the locale or thread timing, and the masters are written by
DuckDB with one thread and an explicit ``ORDER BY``. Generation is vectorized
(numpy + pyarrow); it loops over calendar months only, holding one month of
lines in memory at a time, so a million customers (tens of millions of lines)
take a few minutes in well under a GiB of memory.

Units are grams of coffee (``unit_size`` of every consumable is its pack
weight in grams, capsule packs included), so the default tier thresholds of
``business_rules.md`` read as grams per month (``t_high`` = 1 kg a month) and
grams per order (``a_high`` = 1.5 kg).

Personas
--------

Every customer gets one persona; the count of each is its share of
``customers`` (largest remainder; with 50+ customers each persona has at least
one member, ``anonymous_walk_in`` at least three). "Existing" customers start
buying in the first three months of the range, the others at a random month.

======================= ====== =========================== ==========================================================
persona                 share  groups                      behaviour -> what the business rules make of it
======================= ====== =========================== ==========================================================
``key_account``         2 %    Corporate, HoReCa           ~2.5 orders a month of 1 kg bags / 100-capsule boxes,
                                                           ~5 kg an order -> ``Diamond`` (o6 >= 6, AOS >= 1500,
                                                           AMC >= 1000), f_score 5, m_score 5
``bulk_buyer``          2 %    Corporate, HoReCa           ~0.7 big orders a month (~5 kg) -> ``Platinum``
                                                           (o6 3..5); ``Diamond`` in busy half-years, ``Gold`` in
                                                           quiet ones
``frequent_office``     2 %    HoReCa, Corporate           ~3 small orders a month (~0.7 kg) -> ``Platinum``
                                                           (AMC >= 1000 but AOS < 1500)
``office_gold``         6 %    Corporate, HoReCa, Retail   ~0.5 orders a month of ~1.1 kg -> mostly ``Gold``
``home_regular``        26 %   Loyalty, Retail, Online     an order every ~3 months of 1-2 bags or capsule packs ->
                                                           ``Silver`` / ``Gold`` / ``Bronze``; most own a machine
``home_light``          18 %   Retail, Online, Loyalty     an order every ~10 months -> ``Bronze``, often
                                                           ``Passive`` / ``At Risk``, sometimes ``Lost`` and
                                                           ``Reactivated`` by chance
``lapsing``             14 %   Retail, Loyalty, Online     buys like ``home_regular`` for 2-24 months, then stops
                                                           for good -> ``Passive`` / ``At Risk`` 6-11 months later,
                                                           event and stage ``Lost`` 12 months after the last order
``win_back``            6 %    Retail, Loyalty, Online     buys 3-12 months, is silent 12-19 whole months, buys
                                                           again -> event ``Reactivated`` (stage ``Active``)
``newcomer``            8 %    Retail, Loyalty, Online     first order in the last 12 months of the range ->
                                                           event ``New``, stage ``New``, t_score 1..3
``prospect``            10 %   Loyalty, Online, Retail     in the master, never buys -> stage ``Prospect``
``device_only``         5 %    Retail, Online              buys a machine (and now and then an accessory or spare
                                                           part), never a consumable -> stage ``Prospect``
``anonymous_walk_in``   1 %    ``General``                 store till accounts, ~5 orders a month each: loaded,
                                                           never evaluated (anonymous group)
======================= ====== =========================== ==========================================================

Orders carry 1-3 consumable lines (distinct products) with quantity 1 + a
Poisson draw; a few orders add an accessory, spare part or gift-card line, and
a customer's first order carries its machine when it owns one. Stores are
``S001`` .. (8 to 150 of them, one per ~100 customers); orders of ``Online``
customers have a blank ``store_id``. Revenue is quantity x list price x
(1 - the customer's discount), two decimals, negative for returns.

Planted edge cases
------------------

Fixed handfuls (independent of ``customers``; skipped only when the sample is
too small to hold them), spread over the months of the range; their exact
counts are in ``summary["planted"]``:

================================ ====== ==============================================================
edge case                        count  how
================================ ====== ==============================================================
returns (negative quantity)      ~0.15% a consumable line returned later in the same month, own invoice
                                        id, quantity -1..-q, negative revenue (rate-based)
zero quantity                    6      a consumable line with quantity 0 and revenue 0.00, own invoice
orphan customer ids              6      lines of ``C9900001`` .. ``C9900003`` (not in the customer master)
orphan product ids               4      lines of products ``P999`` and ``P404`` (not in the product master)
exact duplicate lines            8      a line written twice in a row, byte for byte
malformed transaction rows       7      one each: ``YYYY-02-30`` date, ``15/MM/YYYY`` date, quantity
                                        ``two``, empty ``customer_id``, empty ``product_id``, 5 fields
                                        instead of 7, 8 fields instead of 7 (file and line number of
                                        each in ``summary["planted"]["malformed"]``)
blank ``created_date``           5      one ``prospect`` (no entry date at all) and four buyers
consent spellings                all    per customer one of ``1/0`` (55 %), ``true/false`` (20 %),
                                        ``Yes/No`` (10 %), ``Y/n`` (10 %), all blank (5 %); ~3 % of
                                        single flags blank; ``maybe`` planted 3 times
names with ``,`` and ``"``       6      ``Dupont, Marie``, ``Lefèvre, Hugo``, ``Martin, Bernard & Fils``,
                                        ``Café "Le Central"``, ``Jean "JJ" Moreau``,
                                        ``Bistro "Chez Léa", Lyon`` (CSV-quoted)
``General`` spellings            3+     the anonymous accounts use `` general `` (once), ``GENERAL``
                                        (once) and ``General`` (the rest)
``007`` and ``7``                2      two distinct ``home_regular`` customers (ids are text)
mobile numbers                   all    ``+336...``, ``+324...``, ``06...``, ``04...`` (text, leading
                                        ``+`` or ``0``), ~8 % blank; ~10 % of emails blank
product categories               -      ``consumable``, ``device``, ``accessories``, ``spare_parts``,
                                        ``Refill`` (P013), `` Consumable `` (P014), ``gift_card`` (G001);
                                        devices, some accessories and spare parts have a blank
                                        ``unit_size``
blank ``store_id``               all    every line of an ``Online`` customer
================================ ====== ==============================================================
"""

from __future__ import annotations

import io
import os
import re
import unicodedata
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

DEFAULT_CUSTOMERS = 2000
DEFAULT_SEED = 42
DEFAULT_START = "2021-01"
DEFAULT_END = "2025-12"
MAX_CUSTOMERS = 5_000_000  # keeps memory bounded and the orphan ids out of the master's id range

TRANSACTION_COLUMNS = ("invoice_id", "customer_id", "invoice_date", "product_id", "quantity", "revenue", "store_id")
CUSTOMER_COLUMNS = (
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
)
PRODUCT_COLUMNS = ("product_id", "product_name", "brand", "category", "unit_size")

CUSTOMERS_FILE = "customers_master.csv"
PRODUCTS_FILE = "products_master.csv"

_EPOCH = date(1970, 1, 1)
_NEVER = 1 << 30  # a month index that is never reached

# --------------------------------------------------------------------------
# Product catalogue: id, name, brand, category (as spelled in the file),
# unit_size (grams; None = blank), list price.
# --------------------------------------------------------------------------
PRODUCTS: tuple[tuple[str, str, str, str, int | None, float], ...] = (
    ("P001", "Espresso Classico Beans 250 g", "Aroma Roasters", "consumable", 250, 6.90),
    ("P002", "Espresso Classico Beans 1 kg", "Aroma Roasters", "consumable", 1000, 22.90),
    ("P003", "Crema Gold Beans 500 g", "BeanWorks", "consumable", 500, 12.50),
    ("P004", "Crema Gold Beans 1 kg", "BeanWorks", "consumable", 1000, 23.50),
    ("P005", "Decaf Smooth Beans 250 g", "BeanWorks", "consumable", 250, 7.50),
    ("P006", "Classic Ground Coffee 250 g", "Nordic Brew", "consumable", 250, 5.90),
    ("P007", "Classic Ground Coffee 500 g", "Nordic Brew", "consumable", 500, 10.90),
    ("P008", "Lungo Capsules 10 pods (55 g)", "Aroma Roasters", "consumable", 55, 3.90),
    ("P009", "Ristretto Capsules 10 pods (55 g)", "Aroma Roasters", "consumable", 55, 3.90),
    ("P010", "Value Capsules 50 pods (275 g)", "Aroma Roasters", "consumable", 275, 17.50),
    ("P011", "Office Capsules 100 pods (550 g)", "BeanWorks", "consumable", 550, 32.00),
    ("P012", "XL Pods 16 pods (112 g)", "Nordic Brew", "consumable", 112, 5.20),
    ("P013", "House Blend Refill Bag 1 kg", "Nordic Brew", "Refill", 1000, 19.90),
    ("P014", "Decaf Pods 16 pods (112 g)", "Nordic Brew", " Consumable ", 112, 5.60),
    ("P015", "Barista Reserve Beans 1 kg", "Crema & Co", "consumable", 1000, 26.00),
    ("P016", "Organic Beans 500 g", "Crema & Co", "consumable", 500, 13.90),
    ("D001", "BeanWorks One Espresso Machine", "BeanWorks", "device", None, 349.00),
    ("D002", "Aroma Capsule Machine Mini", "Aroma Roasters", "device", None, 89.00),
    ("D003", "BeanWorks Office Bean-to-Cup Pro", "BeanWorks", "device", None, 1890.00),
    ("D004", "Nordic Pod Brewer XL", "Nordic Brew", "device", None, 119.00),
    ("A001", "Milk Frother", "BeanWorks", "accessories", None, 59.00),
    ("A002", "Espresso Cups, set of 6", "Crema & Co", "accessories", 6, 24.00),
    ("A003", "Capsule Holder Carousel", "Aroma Roasters", "accessories", None, 19.90),
    ("A004", "Insulated Travel Mug", "Nordic Brew", "accessories", 1, 14.90),
    ("SP01", "Water Tank 1.2 l", "BeanWorks", "spare_parts", None, 29.00),
    ("SP02", "Brew Group Seal Kit", "BeanWorks", "spare_parts", None, 12.50),
    ("SP03", "Drip Tray", "Aroma Roasters", "spare_parts", 1, 9.90),
    ("G001", "Gift Card 25", "House", "gift_card", None, 25.00),
)
ORPHAN_PRODUCT_IDS = ("P999", "P404")
ORPHAN_CUSTOMER_IDS = ("C9900001", "C9900002", "C9900003")
LEADING_ZERO_IDS = ("007", "7")

_PRODUCT_IDS = [p[0] for p in PRODUCTS]
_PIDX = {pid: i for i, pid in enumerate(_PRODUCT_IDS)}

POOLS: dict[str, tuple[str, ...]] = {
    "home": ("P001", "P005", "P006", "P008", "P009", "P012", "P014", "P010", "P016", "P013"),
    "office_bulk": ("P002", "P004", "P011", "P013", "P015"),
    "office_small": ("P001", "P003", "P006", "P007", "P010", "P016"),
    "mixed": ("P002", "P003", "P007", "P010", "P011"),
    "walk_in": ("P001", "P003", "P006", "P008", "P009", "P010", "P012"),
}
_ACCESSORIES = ("A001", "A002", "A003", "A004")
_SPARE_PARTS = ("SP01", "SP02", "SP03")
_GIFT_CARD = "G001"

# --------------------------------------------------------------------------
# Customers
# --------------------------------------------------------------------------
GROUPS = ("Retail", "Loyalty", "Corporate", "HoReCa", "Online")
_ONLINE = GROUPS.index("Online")
_CORPORATE = GROUPS.index("Corporate")
_HORECA = GROUPS.index("HoReCa")

CITIES = (
    ("Paris", 14),
    ("Lyon", 9),
    ("Marseille", 7),
    ("Lille", 6),
    ("Bordeaux", 6),
    ("Toulouse", 6),
    ("Nantes", 5),
    ("Strasbourg", 5),
    ("Nice", 4),
    ("Brussels", 9),
    ("Antwerp", 5),
    ("Ghent", 4),
    ("Liège", 3),
    ("Luxembourg", 4),
    ("Geneva", 5),
    ("Lausanne", 4),
    ("Montréal", 2),
    ("Québec", 2),
)
FIRST_NAMES = (
    "Marie",
    "Lucas",
    "Emma",
    "Léa",
    "Hugo",
    "Chloé",
    "Louis",
    "Camille",
    "Jules",
    "Sarah",
    "Noah",
    "Inès",
    "Arthur",
    "Zoé",
    "Thomas",
    "Julie",
    "Nicolas",
    "Anaïs",
    "Pierre",
    "Laura",
    "Maxime",
    "Elena",
    "Jan",
    "Sofie",
    "Lars",
    "Anna",
    "Mehdi",
    "Yasmine",
    "Karim",
    "Amélie",
    "Victor",
    "Manon",
)
LAST_NAMES = (
    "Martin",
    "Bernard",
    "Dubois",
    "Thomas",
    "Robert",
    "Richard",
    "Petit",
    "Durand",
    "Leroy",
    "Moreau",
    "Simon",
    "Laurent",
    "Lefèvre",
    "Michel",
    "Garcia",
    "Peeters",
    "Janssens",
    "Maes",
    "Müller",
    "Schmit",
    "Weber",
    "Fontaine",
    "Rousseau",
    "Vincent",
    "Faure",
    "Girard",
    "Bonnet",
    "Dupont",
    "Lambert",
    "Mercier",
    "Nguyen",
    "Benali",
    "Van Damme",
    "De Smet",
    "Rossi",
    "Keller",
)
_CORPORATE_NAMES = (
    ("", " Consulting"),
    ("", " Logistics"),
    ("", " Engineering"),
    ("", " Legal Partners"),
    ("", " Office Services"),
    ("Atelier ", ""),
    ("", " & Associés"),
    ("", " Studio"),
)
_HORECA_NAMES = (
    ("Hotel ", ""),
    ("Café ", ""),
    ("Bistro ", ""),
    ("", " Bakery"),
    ("Brasserie ", ""),
    ("", " Catering"),
    ("Restaurant ", ""),
    ("", " Coffee Bar"),
)
_MOBILE_PREFIXES = ("+336", "+337", "06", "07", "+324", "04")
_MOBILE_WEIGHTS = (0.3, 0.1, 0.3, 0.1, 0.1, 0.1)
_EMAIL_DOMAINS = ("example.com", "example.org", "example.net")

# Consent spellings: (yes, no) per style; style 4 leaves the flags blank.
CONSENT_STYLES = (("1", "0"), ("true", "false"), ("Yes", "No"), ("Y", "n"), ("", ""))
_CONSENT_STYLE_SHARES = (0.55, 0.20, 0.10, 0.10, 0.05)
_CONSENT_RATES = (0.65, 0.45, 0.30)  # email, sms, phone
_CONSENT_UNKNOWN = "maybe"

COMMA_NAMES = ("Dupont, Marie", "Lefèvre, Hugo", "Martin, Bernard & Fils")
QUOTE_NAMES = ('Café "Le Central"', 'Jean "JJ" Moreau')
COMMA_QUOTE_NAMES = ('Bistro "Chez Léa", Lyon',)
GENERAL_SPELLINGS = (" general ", "GENERAL", "General")  # the rest of the anonymous accounts: General

# Fixed handfuls of planted transaction edge cases.
N_ZERO_QUANTITY = 6
N_ORPHAN_CUSTOMER_LINES = 6
N_ORPHAN_PRODUCT_LINES = 4
N_DUPLICATES = 8
N_BLANK_CREATED = 5
N_CONSENT_UNKNOWN = 3
RETURN_RATE = 0.0015
MALFORMED_KINDS = (
    "invalid_date",  # YYYY-02-30
    "date_format",  # 15/MM/YYYY
    "non_numeric_quantity",  # quantity "two"
    "missing_customer_id",
    "missing_product_id",
    "too_few_columns",  # 5 fields
    "too_many_columns",  # 8 fields
)


@dataclass(frozen=True)
class Persona:
    name: str
    share: float
    kind: str  # steady | churn | react | new | never | device_only | anonymous
    groups: tuple[float, ...]  # weights over GROUPS
    lam: float = 0.0  # orders per active month (Poisson mean)
    pool: str = ""  # consumable pool ("" = buys no consumables)
    extra_lines: int = 0  # up to this many more consumable lines per order ...
    p_extra: float = 0.0  # ... each with this probability
    qty: float = 0.0  # quantity = 1 + Poisson(qty)
    device_p: float = 0.0  # share owning a machine bought with the first order
    devices: tuple[str, ...] = ()
    discount: float = 0.0  # maximum discount
    existing: float = 0.6  # share already buying in the first three months


PERSONAS: tuple[Persona, ...] = (
    Persona(
        "key_account", 0.02, "steady", (0, 0, 0.6, 0.4, 0), 2.5, "office_bulk", 2, 0.5, 2.0, 0.5, ("D003",), 0.15, 0.8
    ),
    Persona(
        "bulk_buyer",
        0.02,
        "steady",
        (0, 0, 0.5, 0.5, 0),
        0.7,
        "office_bulk",
        2,
        0.5,
        2.0,
        0.5,
        ("D003", "D001"),
        0.12,
        0.7,
    ),
    Persona(
        "frequent_office",
        0.02,
        "steady",
        (0, 0, 0.3, 0.7, 0),
        3.0,
        "office_small",
        1,
        0.5,
        0.5,
        0.5,
        ("D001",),
        0.10,
        0.7,
    ),
    Persona(
        "office_gold",
        0.06,
        "steady",
        (0.3, 0, 0.4, 0.3, 0),
        0.5,
        "mixed",
        1,
        0.4,
        0.4,
        0.4,
        ("D003", "D001"),
        0.08,
        0.6,
    ),
    Persona(
        "home_regular",
        0.26,
        "steady",
        (0.35, 0.45, 0, 0, 0.2),
        0.32,
        "home",
        1,
        0.3,
        0.3,
        0.6,
        ("D001", "D002", "D004"),
    ),
    Persona("home_light", 0.18, "steady", (0.5, 0.2, 0, 0, 0.3), 0.1, "home", 0, 0.0, 0.2, 0.5, ("D002", "D004")),
    Persona(
        "lapsing", 0.14, "churn", (0.45, 0.3, 0, 0, 0.25), 0.35, "home", 1, 0.3, 0.3, 0.6, ("D001", "D002", "D004")
    ),
    Persona(
        "win_back", 0.06, "react", (0.45, 0.3, 0, 0, 0.25), 0.35, "home", 1, 0.3, 0.3, 0.6, ("D001", "D002", "D004")
    ),
    Persona(
        "newcomer",
        0.08,
        "new",
        (0.4, 0.35, 0, 0, 0.25),
        0.4,
        "home",
        1,
        0.3,
        0.3,
        0.6,
        ("D001", "D002", "D004"),
        0.0,
        0.0,
    ),
    Persona("prospect", 0.10, "never", (0.2, 0.4, 0, 0, 0.4)),
    Persona(
        "device_only", 0.05, "device_only", (0.6, 0, 0, 0, 0.4), 0.05, "", 0, 0.0, 0.0, 1.0, ("D001", "D002", "D004")
    ),
    Persona("anonymous_walk_in", 0.01, "anonymous", (1, 0, 0, 0, 0), 5.0, "walk_in", 2, 0.4, 0.8, 0.0, (), 0.0, 1.0),
)
PERSONA_NAMES = tuple(p.name for p in PERSONAS)
_P = {p.name: i for i, p in enumerate(PERSONAS)}
_MIN_PER_PERSONA = {"anonymous_walk_in": 3}

_ACCESSORY_RATE = 0.04
_SPARE_RATE = 0.015
_GIFT_RATE = 0.004
_HOME_STORE_RATE = 0.88


# --------------------------------------------------------------------------
# Arguments
# --------------------------------------------------------------------------
_MONTH_RE = re.compile(r"(\d{4})-(\d{2})(?:-(\d{2}))?")


def parse_month(value: object, name: str = "month") -> tuple[int, int]:
    """``YYYY-MM`` (or a ``YYYY-MM-DD`` date) -> (year, month); ValueError otherwise."""
    text = value.strip() if isinstance(value, str) else None
    match = _MONTH_RE.fullmatch(text) if text else None
    if match is None:
        raise ValueError(f"{name} '{value}' is not a month (YYYY-MM)")
    year, month = int(match.group(1)), int(match.group(2))
    try:
        date(year, month, int(match.group(3) or 1))
    except ValueError:
        raise ValueError(f"{name} '{value}' is not a month (YYYY-MM)") from None
    if year < 1971:
        raise ValueError(f"{name} '{value}' is before 1971")
    return year, month


def _check_int(value: object, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name} must be a whole number, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {value}")
    return int(value)


# --------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------
def _ascii(text: str) -> str:
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower().replace(" ", "")


def _allocate(total: int, shares: np.ndarray, minimums: np.ndarray) -> np.ndarray:
    """Integer counts summing to ``total``, proportional to ``shares`` (largest remainder)."""
    raw = shares / shares.sum() * total
    counts = np.floor(raw).astype(np.int64)
    if total >= 50:
        counts = np.maximum(counts, minimums)
    diff = total - int(counts.sum())
    if diff > 0:
        order = np.argsort(-(raw - np.floor(raw)), kind="stable")
        counts[order[np.arange(diff) % len(order)]] += 1
    elif diff < 0:
        counts[int(np.argmax(counts))] += diff
    return counts


def _spread(k: int, n: int, shift: int) -> np.ndarray:
    """Month indices of ``k`` planted items spread evenly over ``n`` months."""
    return (((np.arange(k) * n) // k + n // (2 * k) + shift) % n).astype(np.int64)


def _decimal_cents(cents: np.ndarray) -> pa.Array:
    """int64 cents -> decimal128(18, 2) without floating point."""
    cents = np.ascontiguousarray(cents, dtype=np.int64)
    words = np.empty((len(cents), 2), dtype=np.int64)
    words[:, 0] = cents
    words[:, 1] = np.where(cents < 0, -1, 0)
    return pa.Array.from_buffers(pa.decimal128(18, 2), len(cents), [None, pa.py_buffer(words.tobytes())])


def _join(*parts: object) -> pa.Array:
    return pc.binary_join_element_wise(*parts, "")


def _write_master(table: pa.Table, path: Path) -> None:
    """Write a master with minimal CSV quoting, rows in table order, deterministically."""
    tmp = path.with_name(path.name + ".tmp")
    con = duckdb.connect()
    try:
        con.execute("SET threads = 1")
        con.execute("SET preserve_insertion_order = true")
        with_rn = table.append_column("__rn", pa.array(np.arange(table.num_rows, dtype=np.int64)))
        con.register("master_rows", with_rn)
        cols = ", ".join(f'"{c}"' for c in table.column_names)
        target = str(tmp).replace("'", "''")
        con.execute(
            f"COPY (SELECT {cols} FROM master_rows ORDER BY __rn) TO '{target}' "
            "(FORMAT csv, HEADER true, DELIMITER ',', QUOTE '\"', ESCAPE '\"', NEW_LINE '\\n')"
        )
    finally:
        con.close()
    os.replace(tmp, path)


# --------------------------------------------------------------------------
# Masters
# --------------------------------------------------------------------------
def _products_table() -> pa.Table:
    return pa.table(
        {
            "product_id": pa.array([p[0] for p in PRODUCTS]),
            "product_name": pa.array([p[1] for p in PRODUCTS]),
            "brand": pa.array([p[2] for p in PRODUCTS]),
            "category": pa.array([p[3] for p in PRODUCTS]),
            "unit_size": pa.array([p[4] for p in PRODUCTS], type=pa.int64()),
        }
    )


@dataclass
class _Customers:
    ids: pa.Array  # customer ids, then the orphan ids
    persona: np.ndarray
    start: np.ndarray  # first buying month index (_NEVER: never)
    stop: np.ndarray  # first month index no longer buying (phase 1)
    restart: np.ndarray  # month index buying again until the end (_NEVER: never)
    lam: np.ndarray
    fav: np.ndarray
    device: np.ndarray  # product index of the machine bought with the first order, -1 none
    store: np.ndarray  # home store index
    online: np.ndarray
    discount: np.ndarray
    table: pa.Table
    planted: dict


def _build_customers(
    rng: np.random.Generator, n: int, n_months: int, month_days: np.ndarray, end_day: int, n_stores: int
) -> _Customers:
    shares = np.array([p.share for p in PERSONAS])
    minimums = np.array([_MIN_PER_PERSONA.get(p.name, 1) for p in PERSONAS])
    counts = _allocate(n, shares, minimums)
    persona = rng.permutation(np.repeat(np.arange(len(PERSONAS)), counts)).astype(np.int64)
    kind = np.array([p.kind for p in PERSONAS])[persona]

    # ---- timelines -------------------------------------------------------
    last_month = n_months - 1
    existing = rng.random(n) < np.array([p.existing for p in PERSONAS])[persona]
    early = rng.integers(0, min(3, n_months), n)
    start = np.where(existing, early, rng.integers(0, n_months, n))
    churn_start = np.where(existing, early, rng.integers(0, max(1, n_months - 13), n))
    react_start = np.where(existing, early, rng.integers(0, max(1, n_months - 33), n))
    new_start = rng.integers(max(0, n_months - 12), n_months, n)
    churn_len = rng.integers(2, 25, n)
    react_len = rng.integers(3, 13, n)
    react_gap = rng.integers(13, 21, n)
    stop = np.full(n, n_months, dtype=np.int64)
    restart = np.full(n, _NEVER, dtype=np.int64)
    start = np.where(kind == "churn", churn_start, start)
    stop = np.where(kind == "churn", np.minimum(churn_start + churn_len, n_months), stop)
    start = np.where(kind == "react", react_start, start)
    stop = np.where(kind == "react", np.minimum(react_start + react_len, n_months), stop)
    restart = np.where(
        (kind == "react") & (react_start + react_len - 1 + react_gap <= last_month),
        react_start + react_len - 1 + react_gap,
        restart,
    )
    start = np.where(kind == "new", new_start, start)
    start = np.where(kind == "anonymous", 0, start)
    start = np.where(kind == "never", _NEVER, start).astype(np.int64)

    lam = np.array([p.lam for p in PERSONAS])[persona] * np.clip(rng.lognormal(0.0, 0.3, n), 0.5, 2.0)
    fav = rng.integers(0, 1 << 20, n)
    group = np.empty(n, dtype=np.int64)
    for i, p in enumerate(PERSONAS):  # one draw per persona, not per customer
        members = np.flatnonzero(persona == i)
        weights = np.array(p.groups, dtype=float)
        group[members] = rng.choice(len(GROUPS), size=len(members), p=weights / weights.sum())
    anonymous = kind == "anonymous"
    online = (group == _ONLINE) & ~anonymous
    store = rng.integers(0, n_stores, n)
    store[anonymous] = np.arange(int(anonymous.sum())) % n_stores

    device = np.full(n, -1, dtype=np.int64)
    owns = rng.random(n) < np.array([p.device_p for p in PERSONAS])[persona]
    pick = rng.integers(0, 1 << 20, n)
    for i, p in enumerate(PERSONAS):
        if p.devices:
            sel = owns & (persona == i)
            options = np.array([_PIDX[d] for d in p.devices])
            device[sel] = options[pick[sel] % len(options)]
    max_disc = np.array([p.discount for p in PERSONAS])[persona]
    discount = np.floor(rng.random(n) * (max_disc * 100 + 1)) / 100

    # ---- attributes --------------------------------------------------------
    width = max(6, len(str(n)))
    ids = _join("C", pc.utf8_lpad(pc.cast(pa.array(np.arange(1, n + 1)), pa.string()), width, "0"))
    first_i = rng.integers(0, len(FIRST_NAMES), n)
    last_i = rng.integers(0, len(LAST_NAMES), n)
    first = pa.array(FIRST_NAMES).take(pa.array(first_i))
    last = pa.array(LAST_NAMES).take(pa.array(last_i))
    person = pc.binary_join_element_wise(first, last, " ")
    pattern = rng.integers(0, len(_CORPORATE_NAMES), n)
    corp = _join(
        pa.array([a for a, _ in _CORPORATE_NAMES]).take(pa.array(pattern)),
        last,
        pa.array([b for _, b in _CORPORATE_NAMES]).take(pa.array(pattern)),
    )
    horeca = _join(
        pa.array([a for a, _ in _HORECA_NAMES]).take(pa.array(pattern)),
        last,
        pa.array([b for _, b in _HORECA_NAMES]).take(pa.array(pattern)),
    )
    store_ids = _store_ids(n_stores)
    walk_in = _join("Walk-in customers ", store_ids.take(pa.array(store)))
    name = pc.if_else(pa.array(group == _CORPORATE), corp, person)
    name = pc.if_else(pa.array(group == _HORECA), horeca, name)
    name = pc.if_else(pa.array(anonymous), walk_in, name)

    group_names = pa.array(GROUPS).take(pa.array(group))
    city_w = np.array([w for _, w in CITIES], dtype=float)
    city = pa.array([c for c, _ in CITIES]).take(pa.array(rng.choice(len(CITIES), n, p=city_w / city_w.sum())))

    # created_date: before the first purchase (existing customers: years before the range)
    month0 = int(month_days[0])
    first_day = month_days[np.minimum(start, last_month)]
    created = first_day - rng.integers(0, 46, n)
    created = np.where(existing & (start < 3), month0 - rng.integers(30, 1500, n), created)
    late = rng.random(n) < 0.06
    created = np.where(late, first_day + rng.integers(0, 61, n), created)
    created = np.where(kind == "never", rng.integers(month0 - 365, end_day + 1, n), created)
    created = np.where(anonymous, month0 - rng.integers(400, 2500, n), created)
    created = np.minimum(created, end_day).astype(np.int32)

    first_ascii = pa.array([_ascii(x) for x in FIRST_NAMES]).take(pa.array(first_i))
    last_ascii = pa.array([_ascii(x) for x in LAST_NAMES]).take(pa.array(last_i))
    number = pc.cast(pa.array(rng.integers(1, 100, n)), pa.string())
    domain = pa.array(_EMAIL_DOMAINS).take(pa.array(rng.integers(0, len(_EMAIL_DOMAINS), n)))
    email = _join(first_ascii, ".", last_ascii, number, "@", domain)
    email_blank = (rng.random(n) < 0.10) | anonymous
    mw = np.array(_MOBILE_WEIGHTS)
    prefix = pa.array(_MOBILE_PREFIXES).take(pa.array(rng.choice(len(_MOBILE_PREFIXES), n, p=mw / mw.sum())))
    mobile = _join(prefix, pc.utf8_lpad(pc.cast(pa.array(rng.integers(0, 10**8, n)), pa.string()), 8, "0"))
    mobile_blank = (rng.random(n) < 0.08) | anonymous

    # consent flags
    style_counts = _allocate(n, np.array(_CONSENT_STYLE_SHARES), np.ones(len(CONSENT_STYLES), dtype=np.int64))
    style = rng.permutation(np.repeat(np.arange(len(CONSENT_STYLES)), style_counts))
    consent = rng.random((3, n)) < np.array(_CONSENT_RATES)[:, None]
    consent[:, anonymous] = False
    for s in range(len(CONSENT_STYLES)):  # make both spellings of every style appear
        members = np.flatnonzero(style == s)
        if len(members):
            consent[:, members[0]] = (True, False, False)
    flag_blank = rng.random((3, n)) < 0.03
    tokens = np.array(CONSENT_STYLES, dtype=object)
    flags = []
    for k in range(3):
        values = tokens[style, np.where(consent[k], 0, 1)]
        blank = flag_blank[k] | (style == len(CONSENT_STYLES) - 1)
        flags.append(pa.array(values, type=pa.string(), mask=blank))

    # ---- planted customer edge cases ---------------------------------------
    planted: dict = {}
    ids_np_mask = np.zeros(n, dtype=bool)
    regular = np.flatnonzero(persona == _P["home_regular"])
    zero_ids = regular[: len(LEADING_ZERO_IDS)]
    ids_np_mask[zero_ids] = True
    if ids_np_mask.any():
        ids = pc.replace_with_mask(ids, pa.array(ids_np_mask), pa.array(list(LEADING_ZERO_IDS[: len(zero_ids)])))
    planted["leading_zero_ids"] = list(LEADING_ZERO_IDS[: len(zero_ids)])

    special_names = COMMA_NAMES + QUOTE_NAMES + COMMA_QUOTE_NAMES
    candidates = np.flatnonzero(~anonymous)
    k = min(len(special_names), len(candidates))
    chosen = np.sort(rng.choice(candidates, size=k, replace=False)) if k else np.array([], dtype=np.int64)
    if k:
        # replace_with_mask fills the masked positions in ascending order
        name = pc.replace_with_mask(name, pa.array(np.isin(np.arange(n), chosen)), pa.array(list(special_names[:k])))
    planted["names_with_comma"] = sum("," in s for s in special_names[:k])
    planted["names_with_quote"] = sum('"' in s for s in special_names[:k])

    anon_idx = np.flatnonzero(anonymous)
    spell = np.full(len(anon_idx), len(GENERAL_SPELLINGS) - 1)
    spell[: min(len(anon_idx), len(GENERAL_SPELLINGS) - 1)] = np.arange(min(len(anon_idx), len(GENERAL_SPELLINGS) - 1))
    if len(anon_idx):
        spellings = pa.array(GENERAL_SPELLINGS).take(pa.array(spell))
        group_names = pc.replace_with_mask(group_names, pa.array(anonymous), spellings)
    planted["general_spellings"] = {s: int((spell == i).sum()) for i, s in enumerate(GENERAL_SPELLINGS)}

    blank_created = np.zeros(n, dtype=bool)
    prospects = np.flatnonzero(kind == "never")
    buyers = np.flatnonzero(~np.isin(kind, ("never", "anonymous")))
    if len(prospects):
        blank_created[prospects[0]] = True
    rest = N_BLANK_CREATED - int(blank_created.sum())
    if rest > 0 and len(buyers):
        blank_created[rng.choice(buyers, size=min(rest, len(buyers)), replace=False)] = True
    planted["blank_created_date"] = int(blank_created.sum())

    unknown = rng.choice(n, size=min(N_CONSENT_UNKNOWN, n), replace=False)
    for k_flag in range(3):
        rows = np.sort(unknown[k_flag::3])
        if len(rows):
            mask = np.isin(np.arange(n), rows)
            unknown_values = pa.array([_CONSENT_UNKNOWN] * len(rows))
            flags[k_flag] = pc.replace_with_mask(flags[k_flag], pa.array(mask), unknown_values)
    planted["consent_unknown"] = len(unknown)

    table = pa.table(
        {
            "customer_id": ids,
            "customer_name": name,
            "customer_group": group_names,
            "city": city,
            "created_date": pa.array(created, type=pa.date32(), mask=blank_created),
            "email": pc.if_else(pa.array(email_blank), pa.scalar(None, pa.string()), email),
            "mobile_number": pc.if_else(pa.array(mobile_blank), pa.scalar(None, pa.string()), mobile),
            "opt_email": flags[0],
            "opt_sms": flags[1],
            "opt_phone": flags[2],
        }
    )
    all_ids = pa.concat_arrays([ids, pa.array(list(ORPHAN_CUSTOMER_IDS))])
    return _Customers(all_ids, persona, start, stop, restart, lam, fav, device, store, online, discount, table, planted)


def _store_ids(n_stores: int) -> pa.Array:
    return _join("S", pc.utf8_lpad(pc.cast(pa.array(np.arange(1, n_stores + 1)), pa.string()), 3, "0"))


# --------------------------------------------------------------------------
# Transactions
# --------------------------------------------------------------------------
@dataclass
class _Lines:
    cust: np.ndarray  # index into _Customers.ids (>= n: orphan)
    day: np.ndarray  # 0-based day of month
    prod: np.ndarray  # index into the extended product list (>= len(PRODUCTS): orphan)
    qty: np.ndarray
    cents: np.ndarray
    store: np.ndarray  # -1: blank
    seq: np.ndarray  # invoice sequence number within the month

    @staticmethod
    def concat(parts: list["_Lines"]) -> "_Lines":
        return _Lines(
            *(
                np.concatenate([getattr(p, f) for p in parts]).astype(np.int64)
                for f in ("cust", "day", "prod", "qty", "cents", "store", "seq")
            )
        )

    def take(self, index: np.ndarray) -> "_Lines":
        return _Lines(
            self.cust[index],
            self.day[index],
            self.prod[index],
            self.qty[index],
            self.cents[index],
            self.store[index],
            self.seq[index],
        )

    def __len__(self) -> int:
        return len(self.cust)


def _pool_table() -> tuple[np.ndarray, np.ndarray, dict[str, int]]:
    names = list(POOLS)
    width = max(len(v) for v in POOLS.values())
    table = np.zeros((len(names) + 1, width), dtype=np.int64)
    lengths = np.ones(len(names) + 1, dtype=np.int64)
    for i, key in enumerate(names):
        table[i, : len(POOLS[key])] = [_PIDX[x] for x in POOLS[key]]
        lengths[i] = len(POOLS[key])
    return table, lengths, {k: i for i, k in enumerate(names)}


class _TransactionWriter:
    """Generates and writes the lines month by month, one file per year."""

    def __init__(
        self,
        rng: np.random.Generator,
        cust: _Customers,
        out: Path,
        months: list[tuple[int, int]],
        month_days: np.ndarray,
        n_stores: int,
    ) -> None:
        self.rng, self.c, self.out, self.months, self.month_days = rng, cust, out, months, month_days
        self.n = len(cust.persona)
        self.n_stores = n_stores
        self.store_ids = _store_ids(n_stores)
        self.product_ids = pa.array(_PRODUCT_IDS + list(ORPHAN_PRODUCT_IDS))
        prices = [p[5] for p in PRODUCTS] + [9.90] * len(ORPHAN_PRODUCT_IDS)
        self.price_cents = np.round(np.array(prices) * 100).astype(np.int64)
        self.is_consumable = np.array([p[3].strip().lower() in ("consumable", "refill") for p in PRODUCTS])
        self.pool_table, self.pool_len, pool_index = _pool_table()
        no_pool = len(pool_index)
        self.p_pool = np.array([pool_index.get(p.pool, no_pool) for p in PERSONAS])
        self.p_extra_n = np.array([p.extra_lines for p in PERSONAS])
        self.p_extra_p = np.array([p.p_extra for p in PERSONAS])
        self.p_qty = np.array([p.qty for p in PERSONAS])
        self.p_cons = np.array([bool(p.pool) for p in PERSONAS])
        self.accessories = np.array([_PIDX[x] for x in _ACCESSORIES])
        self.spares = np.array([_PIDX[x] for x in _SPARE_PARTS])
        self.home_consumables = np.array([_PIDX[x] for x in POOLS["home"]])
        self.anonymous = np.array([p.kind == "anonymous" for p in PERSONAS])[cust.persona]
        n_months = len(months)
        self.plan = {
            "zero_quantity": np.bincount(_spread(N_ZERO_QUANTITY, n_months, 1), minlength=n_months),
            "orphan_customer": np.bincount(_spread(N_ORPHAN_CUSTOMER_LINES, n_months, 2), minlength=n_months),
            "orphan_product": np.bincount(_spread(N_ORPHAN_PRODUCT_LINES, n_months, 3), minlength=n_months),
            "duplicates": np.bincount(_spread(N_DUPLICATES, n_months, 0), minlength=n_months),
        }
        self.malformed_month = _spread(len(MALFORMED_KINDS), n_months, 4)
        self.counts = {
            "returns": 0,
            "zero_quantity": 0,
            "orphan_customer_lines": 0,
            "orphan_product_lines": 0,
            "exact_duplicates": 0,
            "blank_store_id_lines": 0,
            "device_lines": 0,
        }
        self.malformed: list[dict] = []
        self.orphan_customers_used: set[int] = set()
        self.rows: dict[str, int] = {}
        self.files: list[Path] = []
        self._handle = None
        self._year = None
        self._tmp: Path | None = None
        self._final: Path | None = None

    # ---- file handling --------------------------------------------------
    def _open_year(self, year: int) -> None:
        self._close()
        self._final = self.out / f"sales_transactions_{year}.csv"
        self._tmp = self._final.with_name(self._final.name + ".tmp")
        self._handle = open(self._tmp, "wb")
        self._handle.write((",".join(TRANSACTION_COLUMNS) + "\n").encode())
        self._year = year
        self.rows[self._final.name] = 0

    def _close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            os.replace(self._tmp, self._final)
            self.files.append(self._final)
            self._handle = None

    # ---- one month -------------------------------------------------------
    def run(self) -> None:
        try:
            for m, (year, month) in enumerate(self.months):
                if year != self._year:
                    self._open_year(year)
                self._month(m, year, month)
        finally:
            self._close()

    def _month(self, m: int, year: int, month: int) -> None:
        rng, c = self.rng, self.c
        dim = int(self.month_days[m + 1] - self.month_days[m])
        active = ((c.start <= m) & (m < c.stop)) | (c.restart <= m)
        idx = np.flatnonzero(active)
        n_ord = rng.poisson(c.lam[idx])
        force = (c.start[idx] == m) | (c.restart[idx] == m)
        n_ord = np.where(force, np.maximum(n_ord, 1), n_ord)
        keep = n_ord > 0
        idx, n_ord, force = idx[keep], n_ord[keep], force[keep]
        oc = np.repeat(idx, n_ord)
        total = len(oc)
        first = np.zeros(total, dtype=bool)
        first[np.cumsum(n_ord) - n_ord] = force
        day = rng.integers(0, dim, total)
        with_device = first & (c.start[oc] == m) & (c.device[oc] >= 0)
        order = np.argsort(day, kind="stable")
        oc, day, with_device = oc[order], day[order], with_device[order]
        at_home = (rng.random(total) < _HOME_STORE_RATE) | self.anonymous[oc]
        store = np.where(at_home, c.store[oc], rng.integers(0, self.n_stores, total))
        store = np.where(c.online[oc], -1, store)

        # consumable lines: k distinct products of the persona's pool
        pers = c.persona[oc]
        pool = self.p_pool[pers]
        k = np.where(self.p_cons[pers], 1 + rng.binomial(self.p_extra_n[pers], self.p_extra_p[pers]), 0)
        k = np.minimum(k, self.pool_len[pool])
        line_order = np.repeat(np.arange(total), k)
        j = np.arange(len(line_order)) - np.repeat(np.cumsum(k) - k, k)
        base = np.where(rng.random(total) < 0.6, c.fav[oc], rng.integers(0, 1 << 20, total))
        cons_prod = self.pool_table[pool[line_order], (base[line_order] + j) % self.pool_len[pool[line_order]]]
        cons_qty = 1 + rng.poisson(self.p_qty[pers[line_order]])

        # other lines: machine with the first order, accessories, spare parts, gift cards
        acc = rng.random(total) < _ACCESSORY_RATE
        spare = rng.random(total) < _SPARE_RATE
        gift = rng.random(total) < _GIFT_RATE
        acc |= (k == 0) & ~with_device & ~spare & ~gift  # no empty orders
        acc_prod = self.accessories[rng.integers(0, len(self.accessories), total)]
        spare_prod = self.spares[rng.integers(0, len(self.spares), total)]
        parts_order = [
            np.flatnonzero(with_device),
            line_order,
            np.flatnonzero(acc),
            np.flatnonzero(spare),
            np.flatnonzero(gift),
        ]
        parts_prod = [
            c.device[oc[with_device]],
            cons_prod,
            acc_prod[acc],
            spare_prod[spare],
            np.full(int(gift.sum()), _PIDX[_GIFT_CARD]),
        ]
        parts_qty = [
            np.ones(int(with_device.sum()), dtype=np.int64),
            cons_qty,
            1 + rng.poisson(0.2, int(acc.sum())),
            np.ones(int(spare.sum()), dtype=np.int64),
            1 + rng.poisson(0.3, int(gift.sum())),
        ]
        rank = np.concatenate([np.full(len(p), r) for r, p in enumerate(parts_order)])
        lo = np.concatenate(parts_order).astype(np.int64)
        prod = np.concatenate(parts_prod).astype(np.int64)
        qty = np.concatenate(parts_qty).astype(np.int64)
        sub = np.concatenate([np.zeros(len(parts_order[0])), j, np.zeros(sum(len(p) for p in parts_order[2:]))])
        srt = np.lexsort((sub, rank, lo))
        lo, prod, qty, rank = lo[srt], prod[srt], qty[srt], rank[srt]
        self.counts["device_lines"] += int(with_device.sum())
        lines = _Lines(oc[lo], day[lo], prod, qty, self._cents(oc[lo], prod, qty), store[lo], lo)
        consumable_rows = np.flatnonzero(rank == 1)
        next_seq = total
        specials: list[_Lines] = []

        # returns (rate-based), later in the month, own invoice
        ret = consumable_rows[rng.random(len(consumable_rows)) < RETURN_RATE]
        if len(ret):
            src = lines.take(ret)
            back = -rng.integers(1, src.qty + 1)
            rday = np.minimum(src.day + rng.integers(0, 8, len(ret)), dim - 1)
            specials.append(
                _Lines(
                    src.cust,
                    rday,
                    src.prod,
                    back,
                    self._cents(src.cust, src.prod, back),
                    src.store,
                    next_seq + np.arange(len(ret)),
                )
            )
            next_seq += len(ret)
            self.counts["returns"] += len(ret)

        # zero quantities
        z = min(int(self.plan["zero_quantity"][m]), len(consumable_rows))
        if z:
            src = lines.take(rng.choice(consumable_rows, size=z, replace=False))
            nothing = np.zeros(z, dtype=np.int64)
            specials.append(_Lines(src.cust, src.day, src.prod, nothing, nothing, src.store, next_seq + np.arange(z)))
            next_seq += z
            self.counts["zero_quantity"] += z

        # orphan customers (ids after the master's) and orphan products
        oc_n = int(self.plan["orphan_customer"][m])
        if oc_n:
            who = self.n + (self.counts["orphan_customer_lines"] + np.arange(oc_n)) % len(ORPHAN_CUSTOMER_IDS)
            what = self.home_consumables[rng.integers(0, len(self.home_consumables), oc_n)]
            q = 1 + rng.poisson(1.0, oc_n)
            specials.append(
                _Lines(
                    who,
                    rng.integers(0, dim, oc_n),
                    what,
                    q,
                    q * self.price_cents[what],
                    rng.integers(0, self.n_stores, oc_n),
                    next_seq + np.arange(oc_n),
                )
            )
            next_seq += oc_n
            self.counts["orphan_customer_lines"] += oc_n
            self.orphan_customers_used.update(int(x) for x in np.unique(who))
        op_n = min(int(self.plan["orphan_product"][m]), total)
        if op_n:
            orders = rng.choice(total, size=op_n, replace=False)
            what = len(PRODUCTS) + (self.counts["orphan_product_lines"] + np.arange(op_n)) % len(ORPHAN_PRODUCT_IDS)
            q = np.ones(op_n, dtype=np.int64)
            specials.append(
                _Lines(
                    oc[orders],
                    day[orders],
                    what,
                    q,
                    self._cents(oc[orders], what, q),
                    store[orders],
                    next_seq + np.arange(op_n),
                )
            )
            next_seq += op_n
            self.counts["orphan_product_lines"] += op_n

        if specials:
            lines = _Lines.concat([lines, *specials])
            lines = lines.take(np.argsort(lines.day, kind="stable"))

        # exact duplicates: a line written twice in a row
        d = min(int(self.plan["duplicates"][m]), len(consumable_rows))
        if d:
            reps = np.ones(len(lines), dtype=np.int64)
            reps[rng.choice(np.flatnonzero(lines.qty > 0), size=d, replace=False)] = 2
            lines = lines.take(np.repeat(np.arange(len(lines)), reps))
            self.counts["exact_duplicates"] += d

        self._write(lines, m, year, month, next_seq)

    def _cents(self, cust: np.ndarray, prod: np.ndarray, qty: np.ndarray) -> np.ndarray:
        disc = np.where(cust < self.n, self.c.discount[np.minimum(cust, self.n - 1)], 0.0)
        return np.round(qty * self.price_cents[prod] * (1.0 - disc)).astype(np.int64)

    def _invoice_ids(self, seq: np.ndarray, year: int, month: int, width: int) -> pa.Array:
        return _join(f"INV{year:04d}{month:02d}", pc.utf8_lpad(pc.cast(pa.array(seq + 1), pa.string()), width, "0"))

    def _write(self, lines: _Lines, m: int, year: int, month: int, next_seq: int) -> None:
        n_malformed = int((self.malformed_month == m).sum())
        width = max(6, len(str(next_seq + n_malformed + 1)))
        if len(lines):
            store_null = lines.store < 0
            self.counts["blank_store_id_lines"] += int(store_null.sum())
            table = pa.table(
                {
                    "invoice_id": self._invoice_ids(lines.seq, year, month, width),
                    "customer_id": self.c.ids.take(pa.array(lines.cust)),
                    "invoice_date": pa.array((self.month_days[m] + lines.day).astype(np.int32), type=pa.date32()),
                    "product_id": self.product_ids.take(pa.array(lines.prod)),
                    "quantity": pa.array(lines.qty, type=pa.int64()),
                    "revenue": _decimal_cents(lines.cents),
                    "store_id": self.store_ids.take(pa.array(np.maximum(lines.store, 0), mask=store_null)),
                }
            )
            buffer = io.BytesIO()
            pacsv.write_csv(
                table, buffer, pacsv.WriteOptions(include_header=False, quoting_style="none", batch_size=1 << 16)
            )
            self._handle.write(buffer.getbuffer())
            self.rows[self._final.name] += len(lines)
        kinds = [MALFORMED_KINDS[i] for i in np.flatnonzero(self.malformed_month == m)]
        for i, kind in enumerate(kinds):  # a handful of rows in the whole sample
            invoice = f"INV{year:04d}{month:02d}{next_seq + i + 1:0{width}d}"
            text = self._malformed_line(kind, lines, year, month, invoice)
            self._handle.write((text + "\n").encode())
            self.rows[self._final.name] += 1
            self.malformed.append(
                {"file": self._final.name, "line": self.rows[self._final.name] + 1, "kind": kind, "text": text}
            )

    def _malformed_line(self, kind: str, lines: _Lines, year: int, month: int, invoice: str) -> str:
        if len(lines):
            pick = int(self.rng.integers(0, len(lines)))
            cust = self.c.ids[int(lines.cust[pick])].as_py()
            day = int(lines.day[pick]) + 1
        else:
            cust, day = self.c.ids[0].as_py(), 1
        day_text = f"{year:04d}-{month:02d}-{day:02d}"
        good = [invoice, cust, day_text, "P001", "2", "13.80", "S001"]
        if kind == "invalid_date":
            good[2] = f"{year:04d}-02-30"
        elif kind == "date_format":
            good[2] = f"{day:02d}/{month:02d}/{year:04d}"
        elif kind == "non_numeric_quantity":
            good[4] = "two"
        elif kind == "missing_customer_id":
            good[1] = ""
        elif kind == "missing_product_id":
            good[3] = ""
        elif kind == "too_few_columns":
            good = good[:5]
        elif kind == "too_many_columns":
            good = good + ["EXTRA"]
        return ",".join(good)


# --------------------------------------------------------------------------
# Public entry point
# --------------------------------------------------------------------------
def generate(
    out_dir,
    customers: int = DEFAULT_CUSTOMERS,
    seed: int = DEFAULT_SEED,
    start: str = DEFAULT_START,
    end: str = DEFAULT_END,
) -> dict:
    """Write the synthetic sample into ``out_dir`` (created if missing); return a summary.

    The files of the sample are overwritten; other files in the folder are left
    alone. ValueError (one line) for bad arguments.

    Summary keys: ``files`` (paths written), ``lines`` (physical lines per file
    name, header included, as ``wc -l`` counts them), ``rows`` (data rows per
    file name), ``bytes`` (size per file name), ``customers``, ``products``,
    ``transactions`` (all transaction rows, malformed ones included),
    ``months``, ``start``, ``end``, ``seed``, ``personas`` (customers per
    persona) and ``planted`` (the planted edge cases and their counts; see the
    module docstring).
    """
    customers = _check_int(customers, "customers", 1)
    if customers > MAX_CUSTOMERS:
        raise ValueError(f"customers must be at most {MAX_CUSTOMERS:,}, got {customers:,}")
    seed = _check_int(seed, "seed", 0)
    y0, m0 = parse_month(start, "start")
    y1, m1 = parse_month(end, "end")
    if (y1, m1) < (y0, m0):
        raise ValueError(f"end month {y1:04d}-{m1:02d} is before start month {y0:04d}-{m0:02d}")
    n_months = (y1 - y0) * 12 + (m1 - m0) + 1
    if n_months > 1200:
        raise ValueError(f"the month range {start}..{end} is longer than 100 years")
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ValueError(f"{out} exists and is not a folder")
    out.mkdir(parents=True, exist_ok=True)

    months = [((y0 * 12 + m0 - 1 + i) // 12, (y0 * 12 + m0 - 1 + i) % 12 + 1) for i in range(n_months + 1)]
    month_days = np.array([(date(y, m, 1) - _EPOCH).days for y, m in months], dtype=np.int64)
    months = months[:n_months]
    end_day = int(month_days[-1] - 1)

    rng = np.random.default_rng(seed)
    n_stores = int(np.clip(customers // 100, 8, 150))
    cust = _build_customers(rng, customers, n_months, month_days, end_day, n_stores)
    _write_master(_products_table(), out / PRODUCTS_FILE)
    _write_master(cust.table, out / CUSTOMERS_FILE)

    writer = _TransactionWriter(rng, cust, out, months, month_days, n_stores)
    writer.run()

    files = [out / PRODUCTS_FILE, out / CUSTOMERS_FILE, *writer.files]
    rows = {PRODUCTS_FILE: len(PRODUCTS), CUSTOMERS_FILE: customers, **writer.rows}
    planted = dict(cust.planted)
    planted.update(writer.counts)
    planted["orphan_customer_ids"] = sorted(ORPHAN_CUSTOMER_IDS[i - customers] for i in writer.orphan_customers_used)
    planted["orphan_product_ids"] = list(ORPHAN_PRODUCT_IDS[: writer.counts["orphan_product_lines"]])
    planted["malformed_rows"] = len(writer.malformed)
    planted["malformed"] = writer.malformed
    planted["category_spellings"] = sorted({p[3] for p in PRODUCTS})
    counts = np.bincount(cust.persona, minlength=len(PERSONAS))
    return {
        "out_dir": str(out),
        "files": [str(f) for f in files],
        "lines": {name: count + 1 for name, count in rows.items()},
        "rows": rows,
        "bytes": {f.name: f.stat().st_size for f in files},
        "customers": customers,
        "products": len(PRODUCTS),
        "transactions": sum(writer.rows.values()),
        "months": n_months,
        "start": f"{y0:04d}-{m0:02d}",
        "end": f"{y1:04d}-{m1:02d}",
        "seed": seed,
        "personas": {p.name: int(x) for p, x in zip(PERSONAS, counts)},
        "planted": planted,
    }
