"""Helpers of the monthly assets: breakdown counts in one scan, parts of months."""

from __future__ import annotations

import random
from collections import Counter
from datetime import date

import duckdb

from crm_assets.core.partitioned import MonthWindow, counts_by_month_of, month_parts
from crm_assets.engines.duckdb import DuckDBEngine

JAN, FEB, MAR, APR = date(2024, 1, 1), date(2024, 2, 1), date(2024, 3, 1), date(2024, 4, 1)
WINDOW = MonthWindow(FEB, APR, ("2024-02-01", "2024-03-01", "2024-04-01"))


def table(rows) -> DuckDBEngine:
    con = duckdb.connect()
    con.execute("CREATE TABLE t (report_month DATE, tier VARCHAR, score INTEGER)")
    con.executemany("INSERT INTO t VALUES (?, ?, ?)", rows)
    return DuckDBEngine(con)


def test_breakdowns_in_one_scan_equal_counting_each_column():
    rng = random.Random(7)
    rows = [
        (rng.choice([JAN, FEB, MAR]), rng.choice(["Gold", "Silver", None]), rng.choice([1, 2, None]))
        for _ in range(300)
    ]
    got = counts_by_month_of(table(rows), "t", "report_month", WINDOW, ["tier", "score"])
    for column, index in (("tier", 1), ("score", 2)):
        expected = {"2024-02-01": {}, "2024-03-01": {}, "2024-04-01": {}}  # April: no row, still a key
        counted = Counter(
            (r[0].isoformat(), "(none)" if r[index] is None else str(r[index])) for r in rows if FEB <= r[0] <= APR
        )
        for (key, value), n in counted.items():
            expected[key][value] = n
        assert got[column] == expected, column


def test_month_parts_cover_the_window_in_whole_months_within_the_limit(monkeypatch):
    rows = [(FEB, "x", 1)] * 3 + [(MAR, "x", 1)] * 2 + [(APR, "x", 1)] * 4
    con = table(rows)
    monkeypatch.setattr(con, "rows_per_part", 5)
    assert month_parts(con, WINDOW, "t") == [(FEB, MAR), (APR, APR)]
    monkeypatch.setattr(con, "rows_per_part", 3)
    assert month_parts(con, WINDOW, "t") == [(FEB, FEB), (MAR, MAR), (APR, APR)]  # a month is never split
    monkeypatch.setattr(con, "rows_per_part", 100)
    assert month_parts(con, WINDOW, "t") == [(FEB, APR)]
    monkeypatch.setattr(con, "rows_per_part", None)  # an engine that spills by itself: the window at once
    assert month_parts(con, WINDOW, "t") == [(FEB, APR)]
