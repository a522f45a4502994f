"""The invariant, tried by random sequences: after any run that succeeds, whatever came before it, every month
the warehouse holds equals the reference implementation on the files as they are, and every layer equals a
clean build of those months.

A Hypothesis state machine edits the landing folder at random (lines of any month corrected, added, deleted;
defective lines; customers dropped, moved or re-dated; products moved between categories or resized; line
endings damaged; files renamed or removed; a master broken, then mended) and runs ``crm run``'s own path
(``runner.resolve_months`` and ``runner.run_pipeline``: the planner and an in-process Dagster run) plain,
narrow, ``--all``, or interrupted by a failure injected into a random layer. ``test_crash_safety.py`` kills
real ``crm run`` processes.

``CRM_STATEFUL_EXAMPLES``, ``CRM_STATEFUL_STEPS`` and ``CRM_STATEFUL_MONTHS`` make it longer (before a release:
``CRM_STATEFUL_EXAMPLES=30 CRM_STATEFUL_STEPS=25 CRM_STATEFUL_MONTHS=120``).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from datetime import date
from pathlib import Path
from unittest import mock

import duckdb
import pytest
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, precondition, rule

from crm_assets.cli import runner
from crm_assets.core.errors import CrmError
from crm_assets.core.months import add_months
from crm_assets.core.partitioned import MonthWindow
from crm_assets.core.partitions import load_calendar
from crm_assets.layers import enriched, features, lifecycle, reporting, rfmt
from crm_assets.layers.pipeline import build_all
from crm_assets.layers.reporting import SNAPSHOT_COLUMNS
from crm_assets.layers.tables import LAYER_TABLES

from .. import reference
from ..conftest import CUSTOMER_HEADER, PRODUCT_HEADER, TX_HEADER
from .test_rules_property import same

pytestmark = pytest.mark.slow

EXAMPLES = int(os.environ.get("CRM_STATEFUL_EXAMPLES", "4"))
STEPS = int(os.environ.get("CRM_STATEFUL_STEPS", "8"))
MONTHS = int(os.environ.get("CRM_STATEFUL_MONTHS", "18"))
START = date(2022, 1, 1)
END = add_months(START, MONTHS - 1)

CUSTOMER_IDS = ["C1", "C2", "C3", "C4", "C5"]
PRODUCT_IDS = ["P1", "P2", "D1"]
# the layers a failure can be injected into, as their assets call them
LAYER_STEPS = [
    (enriched, "build_customers"),
    (enriched, "build_transactions"),
    (features, "build_activity"),
    (features, "build_features"),
    (lifecycle, "build_lifecycle"),
    (rfmt, "build_rfmt"),
    (reporting, "build_snapshot"),
]
DEFECTS = ["Q,C1,2022-13-01,P1,1,1,S1", 'X,"C2,2022-03-01,P1,1,1,S1', "Y,C3,2022-04-01", "Z,C1,not a date,P1,1,1,S1"]
# tables that record when and by which run, not what
VOLATILE = {
    "reporting.snapshot_manifest",
    "reporting.snapshot_changes",
    "reporting.month_builds",
    "quality.check_results",
    "raw.file_months",
    "raw.file_loads",
    "raw.file_profiles",
}
LAYERS = {t.name for t in LAYER_TABLES}


class InjectedFailure(Exception):
    pass


def month_key(d: date) -> str:
    return f"{d:%Y-%m}-01"


def all_months() -> list[date]:
    return [add_months(START, i) for i in range(MONTHS)]


class Landing:
    """The landing folder as data: what the files say, and how they are written."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.products = {
            "P1": {"category": "consumable", "unit_size": "10"},
            "P2": {"category": "Refill", "unit_size": "2.5"},
            "D1": {"category": "device", "unit_size": ""},
        }
        self.customers = {
            cid: {
                "group": "General" if cid == "C5" else "Loyalty",
                "city": "Paris",
                "created": str(add_months(START, i)) if i % 2 == 0 else "",
            }
            for i, cid in enumerate(CUSTOMER_IDS)
        }
        self.lines: list[dict] = []  # valid lines, with the file (year and name) they are in
        self.defects: dict[str, list[tuple[int, str]]] = {}  # file name -> (position, defective line)
        self.names: dict[str, str] = {}  # year -> file name
        self.endings: dict[str, str] = {}  # file name -> "\n", "\r\n", "\r" or "mix"
        self.broken_master = False
        self.counter = 0

    def file_of(self, year: str) -> str:
        return self.names.setdefault(year, f"sales_transactions_{year}.csv")

    def add(self, customer: str, product: str, day: date, quantity: int) -> None:
        self.counter += 1
        invoice = f"I{self.counter % 7}"  # invoice ids repeat, within and across months
        self.lines.append(
            {
                "invoice_id": invoice,
                "customer_id": customer,
                "product_id": product,
                "date": day,
                "quantity": quantity,
                "file": self.file_of(str(day.year)),
            }
        )

    def write(self) -> None:
        for path in self.folder.glob("*.csv"):
            path.unlink()
        products = [f"{pid},name,brand,{p['category']},{p['unit_size']}" for pid, p in self.products.items()]
        if self.broken_master:
            products.append(products[0])  # a duplicate product id stops every run until it is mended
        self._write("products_master.csv", [PRODUCT_HEADER, *products], "\n")
        customers = [
            f"{cid},Name,{c['group']},{c['city']},{c['created']},e@x.org,+1 555,1,0,yes"
            for cid, c in self.customers.items()
        ]
        self._write("customers_master.csv", [CUSTOMER_HEADER, *customers], "\n")
        files = sorted({ln["file"] for ln in self.lines} | set(self.defects))
        for name in files:
            rows = [
                f"{ln['invoice_id']},{ln['customer_id']},{ln['date']},{ln['product_id']},{ln['quantity']},1,S1"
                for ln in self.lines
                if ln["file"] == name
            ]
            for position, defect in self.defects.get(name, []):
                rows.insert(min(position, len(rows)), defect)
            self._write(name, [TX_HEADER, *rows], self.endings.get(name, "\n"))

    def _write(self, name: str, rows: list[str], ending: str) -> None:
        if ending == "mix":
            text = "".join(row + ("\r\n", "\n", "\r")[i % 3] for i, row in enumerate(rows))
        else:
            text = ending.join(rows) + ending
        (self.folder / name).write_bytes(text.encode("utf-8"))

    # --- the reference's view of the same data ---

    def reference_rows(self, months: list[date]) -> dict:
        products = [
            {
                "product_id": pid,
                "category": p["category"],
                "unit_size": float(p["unit_size"]) if p["unit_size"] else None,
            }
            for pid, p in self.products.items()
        ]
        customers = [
            {
                "customer_id": cid,
                "customer_group": c["group"],
                "created_date": date.fromisoformat(c["created"]) if c["created"] else None,
                "opt_email": "1",
                "opt_sms": "0",
                "opt_phone": "yes",
            }
            for cid, c in self.customers.items()
        ]
        return reference.snapshot(products, customers, self.lines, months)


def layer_tables(path: Path) -> dict[str, list[tuple]]:
    """Every table of the layers that the files decide, rows sorted (no run ids, no timestamps)."""
    con = duckdb.connect(str(path), read_only=True)
    try:
        dump = {}
        for schema, table in con.execute(
            "SELECT table_schema, table_name FROM information_schema.tables WHERE table_type = 'BASE TABLE' "
            "ORDER BY 1, 2"
        ).fetchall():
            name = f"{schema}.{table}"
            if name not in LAYERS or name in VOLATILE:
                continue
            dump[name] = con.execute(f"SELECT * FROM {name} ORDER BY ALL").fetchall()
        return dump
    finally:
        con.close()


class InvariantMachine(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        self.tmp = Path(tempfile.mkdtemp(prefix="crm-invariant-"))
        self.landing = Landing(self.tmp / "input")
        self.landing.folder.mkdir()
        self.warehouse = self.tmp / "warehouse" / "crm.duckdb"
        self.saved_env = {k: os.environ.get(k) for k in ("CRM_INPUT_DIR", "CRM_WAREHOUSE", "CRM_OUTPUT_DIR")}
        os.environ.update(
            CRM_INPUT_DIR=str(self.landing.folder),
            CRM_WAREHOUSE=str(self.warehouse),
            CRM_OUTPUT_DIR=str(self.tmp / "output"),
        )
        self.runs = 0
        self.succeeded_since_edit = False

    @initialize(seed=st.randoms(use_true_random=False))
    def land(self, seed):
        for month in all_months():
            for _ in range(seed.randint(1, 3)):
                day = month.replace(day=seed.randint(1, 28))
                self.landing.add(seed.choice(CUSTOMER_IDS), seed.choice(PRODUCT_IDS), day, seed.choice([1, 2, 5, -1]))
        self.landing.write()
        self.run_and_check("plain")

    def teardown(self):
        try:
            if not self.landing.broken_master:
                # whatever came before, one plain run leaves nothing stale: a second one builds nothing
                self.run_and_check("plain")
                again = runner.resolve_months(None, None, self.landing.folder, True)
                assert again.nothing, (again.first, again.last, again.why)
        finally:
            self.restore()

    def restore(self):
        for key, value in self.saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        shutil.rmtree(self.tmp, ignore_errors=True)

    # --- edits of the folder ---

    @rule(index=st.integers(0, 10_000), quantity=st.sampled_from([0, 1, 3, 40, -2]))
    def correct_a_line(self, index, quantity):
        if self.landing.lines:
            self.landing.lines[index % len(self.landing.lines)]["quantity"] = quantity
            self.landing.write()

    @rule(
        month=st.integers(0, 10_000),
        day=st.integers(1, 28),
        customer=st.sampled_from([*CUSTOMER_IDS, "C404"]),
        product=st.sampled_from([*PRODUCT_IDS, "P404"]),
        quantity=st.sampled_from([1, 2, 7, -1]),
    )
    def add_a_line(self, month, day, customer, product, quantity):
        self.landing.add(customer, product, all_months()[month % MONTHS].replace(day=day), quantity)
        self.landing.write()

    @rule(index=st.integers(0, 10_000))
    def delete_a_line(self, index):
        if len(self.landing.lines) > 1:
            self.landing.lines.pop(index % len(self.landing.lines))
            self.landing.write()

    @rule(position=st.integers(0, 50), defect=st.sampled_from(DEFECTS), year=st.integers(0, 10))
    def add_a_defective_line(self, position, defect, year):
        years = sorted({ln["file"] for ln in self.landing.lines})
        if years:
            self.landing.defects.setdefault(years[year % len(years)], []).append((position, defect))
            self.landing.write()

    @rule(
        customer=st.sampled_from(CUSTOMER_IDS),
        change=st.sampled_from(["drop", "city", "created", "group", "back"]),
        month=st.integers(0, 10_000),
    )
    def change_a_customer(self, customer, change, month):
        c = self.landing.customers
        if change == "drop":
            c.pop(customer, None)
        elif change == "back" and customer not in c:
            c[customer] = {"group": "Retail", "city": "Lyon", "created": ""}
        elif customer in c and change == "city":
            c[customer]["city"] = "Nice" if c[customer]["city"] != "Nice" else "Paris"
        elif customer in c and change == "created":
            c[customer]["created"] = str(all_months()[month % MONTHS].replace(day=15))
        elif customer in c and change == "group":
            c[customer]["group"] = "General" if c[customer]["group"] != "General" else "Loyalty"
        self.landing.write()

    @rule(product=st.sampled_from(PRODUCT_IDS), change=st.sampled_from(["device", "consumable", "size"]))
    def change_a_product(self, product, change):
        p = self.landing.products[product]
        if change == "device":
            p.update(category="device", unit_size="")
        elif change == "consumable":
            p.update(category="consumable", unit_size=p["unit_size"] or "4")
        elif p["category"] != "device":
            p["unit_size"] = "3" if p["unit_size"] != "3" else "12.5"
        self.landing.write()

    @rule(year=st.integers(0, 10), ending=st.sampled_from(["\r\n", "\r", "mix", "\n"]))
    def damage_line_endings(self, year, ending):
        files = sorted({ln["file"] for ln in self.landing.lines})
        if files:
            self.landing.endings[files[year % len(files)]] = ending
            self.landing.write()

    @rule(year=st.integers(0, 10))
    def rename_a_file(self, year):
        files = sorted({ln["file"] for ln in self.landing.lines})
        if files:
            old = files[year % len(files)]
            new = old.replace(".csv", "_v2.csv") if "_v2" not in old else old.replace("_v2", "")
            for ln in self.landing.lines:
                if ln["file"] == old:
                    ln["file"] = new
            self.landing.names = {y: (new if n == old else n) for y, n in self.landing.names.items()}
            for table in (self.landing.defects, self.landing.endings):
                if old in table:
                    table[new] = table.pop(old)
            self.landing.write()

    @rule(year=st.integers(0, 10))
    def remove_a_file(self, year):
        files = sorted({ln["file"] for ln in self.landing.lines})
        if len(files) > 1:
            gone = files[year % len(files)]
            self.landing.lines = [ln for ln in self.landing.lines if ln["file"] != gone]
            self.landing.defects.pop(gone, None)
            self.landing.write()

    @rule()
    def break_the_product_master(self):
        self.landing.broken_master = True
        self.landing.write()

    @precondition(lambda self: self.landing.broken_master)
    @rule()
    def mend_the_product_master(self):
        self.landing.broken_master = False
        self.landing.write()

    # --- runs ---

    @rule(
        kind=st.sampled_from(["plain", "narrow", "all"]),
        a=st.integers(0, 10_000),
        b=st.integers(0, 10_000),
    )
    def run(self, kind, a, b):
        self.run_and_check(kind, a, b)

    @rule(a=st.integers(0, 10_000), b=st.integers(0, 10_000))
    def run_narrow(self, a, b):
        self.run_and_check("narrow", a, b)

    @rule()
    def run_plain(self):
        self.run_and_check("plain")

    @rule(
        step=st.sampled_from(LAYER_STEPS),
        kind=st.sampled_from(["plain", "narrow"]),
        a=st.integers(0, 10_000),
        b=st.integers(0, 10_000),
    )
    def run_interrupted(self, step, kind, a, b):
        module, name = step

        def fail(*args, **kwargs):
            raise InjectedFailure(f"{module.__name__}.{name} interrupted")

        with mock.patch.object(module, name, fail):
            self.run_and_check(kind, a, b, expect_failure=True)

    def run_and_check(self, kind: str, a: int = 0, b: int = 0, expect_failure: bool = False) -> None:
        keys = [month_key(m) for m in all_months()]
        first, last = sorted([keys[a % len(keys)], keys[b % len(keys)]])
        requested = (first, last) if kind == "narrow" else (None, None)
        try:
            months = runner.resolve_months(*requested, self.landing.folder, True, everything=kind == "all")
        except CrmError:
            # the data no longer reaches the range, or a master is broken: nothing ran
            event(f"{kind} run refused before it started")
            return
        if months.nothing:
            event(f"{kind} run: nothing stale")
            self.check_warehouse()
            return
        outcome = runner.run_pipeline(months, allow_removals=True, quiet=True)
        self.runs += 1
        event(f"{kind} run{' (interrupted)' if expect_failure else ''}: {'succeeded' if outcome.success else 'failed'}")
        if self.landing.broken_master:
            assert not outcome.success, "a duplicate product id must stop the run"
            return
        if expect_failure:
            return  # the step may not have been reached (nothing stale before it): success or failure both do
        assert outcome.success, outcome.failures
        self.check_warehouse()

    # --- the invariant ---

    def held_months(self) -> list[date]:
        if not self.warehouse.exists():
            return []
        con = duckdb.connect(str(self.warehouse), read_only=True)
        try:
            rows = con.execute("SELECT DISTINCT report_month FROM reporting.customer_snapshot ORDER BY 1").fetchall()
            return [m for (m,) in rows]
        except duckdb.CatalogException:
            return []
        finally:
            con.close()

    def check_warehouse(self) -> None:
        """Every month held equals the reference on the files as they are, and every layer a clean build."""
        held = self.held_months()
        if not held:
            return
        con = duckdb.connect(str(self.warehouse), read_only=True)
        try:
            cur = con.execute("SELECT * FROM reporting.customer_snapshot")
            names = [d[0] for d in cur.description]
            got = {(r[0], r[1]): dict(zip(names, r)) for r in cur.fetchall()}
        finally:
            con.close()
        expected = self.landing.reference_rows(held)
        assert set(got) == set(expected), sorted(set(got) ^ set(expected))[:5]
        for key, want in expected.items():
            row = got[key]
            for column in SNAPSHOT_COLUMNS:
                if column == "customer_group":
                    continue
                if column == "city":
                    assert row[column] == self.landing.customers[key[1]]["city"], key
                    continue
                assert same(row[column], want[column]), (key, column, row[column], want[column])
        calendar = load_calendar()
        clean = self.tmp / f"clean{self.runs}" / "crm.duckdb"
        clean.parent.mkdir()
        con = duckdb.connect(str(clean))
        try:
            keys = tuple(month_key(m) for m in held)
            window = MonthWindow(held[0], held[-1], keys, calendar_start=calendar.first_month())
            build_all(con, self.landing.folder, window, calendar.first_month(), date.fromisoformat(calendar.keys()[-1]))
        finally:
            con.close()
        mine, theirs = layer_tables(self.warehouse), layer_tables(clean)
        differ = [t for t in sorted(set(mine) | set(theirs)) if mine.get(t) != theirs.get(t)]
        assert not differ, differ
        shutil.rmtree(clean.parent)


InvariantMachine.TestCase.settings = settings(
    max_examples=EXAMPLES,
    stateful_step_count=STEPS,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
test_the_warehouse_equals_a_clean_build_after_any_sequence = InvariantMachine.TestCase
