"""The build records: the code version, the months a master row reaches, and the one planner's soundness."""

from __future__ import annotations

import tempfile
from datetime import date
from pathlib import Path

import duckdb
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crm_assets.core import builds
from crm_assets.core.builds import find_stale
from crm_assets.core.code_digest import code_text_digest, version_of_code
from crm_assets.core.landing import plan_folder, read_state
from crm_assets.core.partitioned import MonthWindow
from crm_assets.core.rules import CrmRules
from crm_assets.layers.pipeline import build_all

from ..conftest import CUSTOMER_HEADER, PRODUCT_HEADER, TX_HEADER, lines, write

MODULE = '''
"""A layer."""
import duckdb
from crm_assets.core import rules

SQL = "SELECT 1 AS a"  # the statement


def build(con):
    """Build it."""
    return con.execute(SQL)
'''


def test_the_code_version_ignores_documentation_comments_imports_and_layout():
    base = code_text_digest(MODULE)
    moved = MODULE.replace("from crm_assets.core import rules", "from crm_assets.lib import rules")
    documented = MODULE.replace('"""Build it."""', '"""Build it, better said."""').replace("# the statement", "")
    laid_out = MODULE.replace("def build(con):", "def build(\n    con,\n):")
    assert code_text_digest(moved) == code_text_digest(documented) == code_text_digest(laid_out) == base


def test_the_code_version_follows_the_sql_and_the_code():
    base = code_text_digest(MODULE)
    assert code_text_digest(MODULE.replace("SELECT 1 AS a", "SELECT 2 AS a")) != base
    assert code_text_digest(MODULE.replace("return con.execute(SQL)", "return con.execute(SQL).fetchall()")) != base


def test_the_code_version_does_not_depend_on_the_order_or_place_of_the_modules():
    version = builds.code_version()
    assert version_of_code(tuple(reversed(builds.CODE_MODULES)), builds.CODE_PACKAGES) == version
    assert version_of_code(builds.CODE_MODULES[:-1], builds.CODE_PACKAGES) != version


# --- the months a master row reaches: a hand-worked case ------------------------------------------------------

PRODUCTS = ["P1,Pods,B,consumable,10", "P2,Beans,B,consumable,250", "D1,Machine,B,device,"]
CUSTOMERS = [
    "C1,Ann,Loyalty,Paris,2023-01-10,,,1,0,",  # created before the data: every month
    "C2,Bo,Loyalty,Lyon,2023-06-01,,,,,",  # created 2023-06, first line 2023-04: from 2023-04
    "C3,Cy,Loyalty,Nice,,,,,,",  # no creation date: every month
]
TX = [
    "A,C1,2023-01-15,P1,3,10,S1",
    "B,C2,2023-04-20,P1,2,5,S1",
    "C,C1,2023-05-30,P2,1,1,S1",  # P2 first sold in 2023-05
    "D,C1,2023-08-05,P1,1,1,S1",
]
MONTHS = [date(2023, m, 1) for m in range(1, 9)]


def landing(folder: Path, products=PRODUCTS, customers=CUSTOMERS) -> Path:
    write(folder / "products_master.csv", lines(PRODUCT_HEADER, *products))
    write(folder / "customers_master.csv", lines(CUSTOMER_HEADER, *customers))
    write(folder / "sales_transactions_2023.csv", lines(TX_HEADER, *TX))
    return folder


def built(folder: Path, warehouse: Path) -> None:
    con = duckdb.connect(str(warehouse))
    try:
        keys = tuple(f"{m:%Y-%m}-01" for m in MONTHS)
        build_all(con, folder, MonthWindow(MONTHS[0], MONTHS[-1], keys, MONTHS[0]), MONTHS[0], MONTHS[-1])
    finally:
        con.close()


def planned(folder: Path, warehouse: Path) -> builds.Staleness:
    """What the planner says of the folder against the warehouse."""
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        state = read_state(con)
        plan = plan_folder(folder, state, MONTHS[0])
        return find_stale(folder, state, plan, MONTHS[0], MONTHS[-1], CrmRules().version(), str(warehouse))
    finally:
        con.close()


def stale_after(tmp_path: Path, products=PRODUCTS, customers=CUSTOMERS) -> list[date]:
    folder = landing(tmp_path / "input")
    warehouse = tmp_path / "w.duckdb"
    built(folder, warehouse)
    landing(folder, products, customers)
    return planned(folder, warehouse).stale


def test_nothing_changed_nothing_is_stale(tmp_path):
    assert stale_after(tmp_path) == []


def test_a_customer_reaches_the_months_from_its_creation_or_first_line(tmp_path):
    moved = [CUSTOMERS[0], CUSTOMERS[1].replace("Lyon", "Rome"), CUSTOMERS[2]]
    assert stale_after(tmp_path, customers=moved) == MONTHS[3:]  # 2023-04 on


def test_a_dropped_customer_without_a_creation_date_reaches_every_month(tmp_path):
    assert stale_after(tmp_path, customers=CUSTOMERS[:2]) == MONTHS


def test_a_product_reaches_the_months_from_its_first_sale(tmp_path):
    resized = [PRODUCTS[0], "P2,Beans,B,consumable,500", PRODUCTS[2]]
    assert stale_after(tmp_path, products=resized) == MONTHS[4:]  # 2023-05 on


def test_a_product_name_reaches_no_month(tmp_path):
    renamed = [*PRODUCTS[:2], "D1,Machine 2,B,device,"]  # a name reaches no figure
    assert stale_after(tmp_path, products=renamed) == []


def test_a_contact_reaches_its_months_by_being_there_not_by_its_text(tmp_path):
    # reporting.contactable_customers counts who has an e-mail address or a mobile number, not which
    mailed = [CUSTOMERS[0].replace(",,,1,0,", ",ann@x.org,+331,1,0,"), *CUSTOMERS[1:]]
    assert stale_after(tmp_path / "a", customers=mailed) == MONTHS
    remailed = [CUSTOMERS[0].replace(",,,1,0,", ",ann@y.org,+332,1,0,"), *CUSTOMERS[1:]]
    folder = landing(tmp_path / "b" / "input", customers=mailed)
    warehouse = tmp_path / "b" / "w.duckdb"
    built(folder, warehouse)
    landing(folder, customers=remailed)
    stale = planned(folder, warehouse)
    assert stale.stale == [] and stale.files_stale  # the new address is loaded, no month rebuilt


# --- soundness: a month the planner does not call stale is the month a clean build writes ---------------------

master_change = st.one_of(
    st.tuples(st.just("customers"), st.integers(0, 2), st.sampled_from(["drop", "city", "created", "group"])),
    st.tuples(st.just("products"), st.integers(0, 2), st.sampled_from(["device", "size", "consumable", "name"])),
)


def changed(kind: str, index: int, how: str) -> tuple[list[str], list[str]]:
    products, customers = list(PRODUCTS), list(CUSTOMERS)
    if kind == "customers":
        fields = customers[index].split(",")
        if how == "drop":
            customers.pop(index)
            return products, customers
        column = {"city": 3, "created": 4, "group": 2}[how]
        fields[column] = {"city": "Oslo", "created": "2023-07-02", "group": "General"}[how]
        customers[index] = ",".join(fields)
    else:
        fields = products[index].split(",")
        if how == "device":
            fields[3:5] = ["device", ""]
        elif how == "size":
            fields[4] = "40" if fields[3] == "consumable" else ""
        elif how == "consumable":
            fields[3:5] = ["consumable", "5"]
        else:
            fields[1] = "Renamed"
        products[index] = ",".join(fields)
    return products, customers


def snapshot_by_month(warehouse: Path) -> dict[date, list[tuple]]:
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        rows = con.execute("SELECT * FROM reporting.customer_snapshot ORDER BY ALL").fetchall()
    finally:
        con.close()
    by_month: dict[date, list[tuple]] = {m: [] for m in MONTHS}
    for row in rows:
        by_month[row[0]].append(row)
    return by_month


@settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck))
@given(changes=st.lists(master_change, min_size=1, max_size=3))
def test_every_month_a_master_change_alters_is_stale(changes):
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        folder = landing(tmp / "input")
        warehouse = tmp / "w.duckdb"
        built(folder, warehouse)
        before = snapshot_by_month(warehouse)
        products, customers = list(PRODUCTS), list(CUSTOMERS)
        for kind, index, how in changes:
            new_products, new_customers = changed(kind, index % 3, how)
            products = new_products if kind == "products" else products
            customers = new_customers if kind == "customers" else customers
        landing(folder, products, customers)
        stale = planned(folder, warehouse)
        clean = tmp / "clean.duckdb"
        built(folder, clean)
        after = snapshot_by_month(clean)
        for month in MONTHS:
            if month not in stale.stale:
                assert before[month] == after[month], (month, changes)
