"""The reference computations of the benchmark, written independently of ``crm_assets``.

Two plain-DuckDB ways to compute the monthly customer snapshot
(``reporting.customer_snapshot``: the same 32 columns, the same rules of
docs/business_rules.md with their default thresholds) straight from the
landing CSV files, without Dagster, staging, checks or metadata:

- ``floor``: ONE SQL statement for every month at once (the fastest a plain
  DuckDB query gets: a dense customer x month grid, running sums, ``lag``);
- ``loop``: the straightforward way: the valid lines loaded once into a
  table, then one query per report month that aggregates every line up to
  that month (``sum(...) FILTER (WHERE month in window)``,
  ``count(DISTINCT invoice_id)``).

Both only read what the rules need; they skip malformed lines the simple way
(the CSV reader's ``ignore_errors`` plus ``try_cast``), which on the
synthetic data drops exactly the lines the pipeline rejects. ``compare``
checks either result against a warehouse, column by column, so the ratios of
the benchmark compare equal work.

    python -m benchmarks.floor floor   --input DIR --db OUT.duckdb [--first YYYY-MM]
    python -m benchmarks.floor loop    --input DIR --db OUT.duckdb [--first YYYY-MM]
    python -m benchmarks.floor compare --db OUT.duckdb --warehouse crm.duckdb

Units are kept as exact integers of micro-units (``quantity x unit_size x
10^6``, rounded), so every sum and threshold test is exact, like the
pipeline's DECIMAL(38, 6); they become DOUBLE only in the output.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import duckdb

# Default rule values (docs/configuration.md), in micro-units where they compare with units.
MICRO = 1_000_000
T_HIGH, T_MID_HIGH, T_MID, A_HIGH = 1000, 200, 50, 1500
F_HIGH, F_MID = 6, 3
R_MAX = (0, 1, 2, 5)
F_MIN = (2, 4, 7, 12)
T_MIN = (4, 7, 13, 25)
ANONYMOUS = ("general",)
CONSENT_TRUE = ("1", "true", "yes", "y")

COLUMNS = (
    "report_month",
    "customer_id",
    "customer_group",
    "city",
    "m_total",
    "m1",
    "m6",
    "m12",
    "m13",
    "m24",
    "m25",
    "o6",
    "o12",
    "first_device_purchase_date",
    "first_consumable_purchase_date",
    "last_consumable_purchase_date",
    "months_since_last_purchase",
    "tenure_months",
    "avg_monthly_consumption",
    "avg_order_size",
    "activity_status",
    "value_tier",
    "prev_value_tier",
    "lifecycle_stage",
    "lifecycle_event",
    "r_score",
    "f_score",
    "m_score",
    "t_score",
    "opt_email",
    "opt_sms",
    "opt_phone",
)
DOUBLE_COLUMNS = ("m_total", "m1", "m6", "m12", "m13", "m24", "m25", "avg_monthly_consumption", "avg_order_size")


def _q(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _in(values) -> str:
    return ", ".join(_q(v) for v in values)


CSV = "header = true, all_varchar = true, delim = ',', quote = '\"', escape = '\"'"


def sources(input_dir: Path) -> str:
    """CTEs ``products``, ``customers`` (evaluated ones: known, not anonymous) and ``lines`` (their valid lines)."""
    products = _q(str(input_dir / "products_master.csv"))
    customers = _q(str(input_dir / "customers_master.csv"))
    transactions = _q(str(input_dir / "sales_transactions_*.csv"))
    consent = _in(CONSENT_TRUE)
    return f"""
    products AS (
        SELECT trim(product_id) AS product_id,
            CASE lower(trim(category)) WHEN 'refill' THEN 'consumable' ELSE lower(trim(category)) END AS category,
            try_cast(trim(unit_size) AS DOUBLE) AS unit_size
        FROM read_csv({products}, {CSV})
    ),
    customers AS (
        SELECT trim(customer_id) AS customer_id, trim(customer_group) AS customer_group, trim(city) AS city,
            CASE WHEN regexp_full_match(trim(created_date), '\\d{{4}}-\\d{{2}}-\\d{{2}}')
                 THEN try_cast(trim(created_date) AS DATE) END AS created_date,
            coalesce(lower(trim(opt_email)) IN ({consent}), false) AS opt_email,
            coalesce(lower(trim(opt_sms)) IN ({consent}), false) AS opt_sms,
            coalesce(lower(trim(opt_phone)) IN ({consent}), false) AS opt_phone
        FROM read_csv({customers}, {CSV})
        WHERE nullif(trim(customer_id), '') IS NOT NULL
          AND NOT coalesce(lower(trim(customer_group)) IN ({_in(ANONYMOUS)}), false)
    ),
    raw_lines AS (
        SELECT trim(invoice_id) AS invoice_id, trim(customer_id) AS customer_id, trim(product_id) AS product_id,
            CASE WHEN regexp_full_match(trim(invoice_date), '\\d{{4}}-\\d{{2}}-\\d{{2}}')
                 THEN try_cast(trim(invoice_date) AS DATE) END AS invoice_date,
            try_cast(trim(quantity) AS DOUBLE) AS quantity
        FROM read_csv({transactions}, {CSV}, ignore_errors = true,
                      columns = {{'invoice_id': 'VARCHAR', 'customer_id': 'VARCHAR', 'invoice_date': 'VARCHAR',
                                 'product_id': 'VARCHAR', 'quantity': 'VARCHAR', 'revenue': 'VARCHAR',
                                 'store_id': 'VARCHAR'}})
    ),
    lines AS (
        SELECT l.customer_id, l.invoice_id, l.invoice_date, date_trunc('month', l.invoice_date)::DATE AS month,
            p.category = 'consumable' AND l.quantity > 0 AS qualifying,
            p.category = 'device' AND l.quantity > 0 AS device,
            CASE WHEN p.category = 'consumable' AND l.quantity > 0
                 THEN round(l.quantity * p.unit_size * {MICRO})::BIGINT ELSE 0 END AS units
        FROM raw_lines l
        JOIN customers c ON c.customer_id = l.customer_id
        LEFT JOIN products p ON p.product_id = l.product_id
        WHERE l.invoice_date IS NOT NULL AND isfinite(l.quantity)
          AND nullif(l.invoice_id, '') IS NOT NULL AND nullif(l.product_id, '') IS NOT NULL
    )"""


def _tier(active: str, lines6: str, m6: str, o6: str) -> str:
    """Value tier on exact micro-units: AMC >= t as m6 >= 6 t, AOS >= a as m6 >= a o6."""
    return f"""CASE WHEN NOT ({active}) THEN NULL
        WHEN {lines6} = 0 THEN 'Passive'
        WHEN {m6} >= {6 * T_HIGH * MICRO} AND {m6} >= {A_HIGH * MICRO} * {o6} AND {o6} >= {F_HIGH} THEN 'Diamond'
        WHEN {m6} >= {6 * T_HIGH * MICRO} AND {o6} >= {F_MID} THEN 'Platinum'
        WHEN {m6} >= {6 * T_MID_HIGH * MICRO} THEN 'Gold'
        WHEN {m6} >= {6 * T_MID * MICRO} THEN 'Silver'
        WHEN {m6} > 0 THEN 'Bronze' END"""


def _finish(source: str) -> str:
    """From rows of ``source`` with the raw figures, the snapshot columns (m_score needs the month's Active rows)."""
    r_score = " ".join(f"WHEN since <= {m} THEN {5 - i}" for i, m in enumerate(R_MAX))
    f_score = " ".join(f"WHEN o12 >= {e} THEN {s}" for s, e in reversed(list(enumerate(F_MIN, start=2))))
    t_score = " ".join(f"WHEN tenure >= {e} THEN {s}" for s, e in reversed(list(enumerate(T_MIN, start=2))))
    return f"""
    figures AS (
        SELECT *, l12 > 0 AS active,
            CASE WHEN last_c IS NOT NULL THEN date_diff('month', last_c, report_month) END AS since,
            CASE WHEN first_c IS NOT NULL THEN date_diff('month', first_c, report_month) + 1 END AS tenure
        FROM {source}
    ),
    ranked AS (
        SELECT *,
            CASE WHEN active THEN count(*) OVER (PARTITION BY report_month, active ORDER BY m12
                RANGE BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) END AS k,
            CASE WHEN active THEN count(*) OVER (PARTITION BY report_month, active) END AS n
        FROM figures
    )
    SELECT report_month, customer_id, customer_group, city,
        m_total / {MICRO}::DOUBLE AS m_total, m1 / {MICRO}::DOUBLE AS m1, m6 / {MICRO}::DOUBLE AS m6,
        m12 / {MICRO}::DOUBLE AS m12, m13 / {MICRO}::DOUBLE AS m13, m24 / {MICRO}::DOUBLE AS m24,
        m25 / {MICRO}::DOUBLE AS m25, o6::BIGINT AS o6, o12::BIGINT AS o12,
        first_d AS first_device_purchase_date, first_c AS first_consumable_purchase_date,
        last_c AS last_consumable_purchase_date,
        since::INTEGER AS months_since_last_purchase, tenure::INTEGER AS tenure_months,
        m6 / {MICRO}::DOUBLE / 6 AS avg_monthly_consumption,
        CASE WHEN o6 > 0 THEN m6 / {MICRO}::DOUBLE / o6 END AS avg_order_size,
        CASE WHEN active THEN 'Active' ELSE 'Not Active' END AS activity_status,
        {_tier("active", "l6", "m6", "o6")} AS value_tier,
        {_tier("prev_entered AND prev_l12 > 0", "prev_l6", "prev_m6", "prev_o6")} AS prev_value_tier,
        CASE WHEN l_total = 0 THEN 'Prospect' WHEN l12 = 0 THEN 'Lost' WHEN tenure <= 12 THEN 'New'
             WHEN l6 = 0 THEN 'At Risk' ELSE 'Active' END AS lifecycle_stage,
        CASE WHEN l1 > 0 AND l_total = l1 THEN 'New'
             WHEN l12 = 0 AND l13 > 0 THEN 'Lost'
             WHEN l1 > 0 AND l13 = l1 AND l_total > l13 THEN 'Reactivated' END AS lifecycle_event,
        CASE WHEN active THEN (CASE {r_score} ELSE 1 END) END::INTEGER AS r_score,
        CASE WHEN active THEN (CASE {f_score} ELSE 1 END) END::INTEGER AS f_score,
        CASE WHEN active THEN (5 * k + n - 1) // n END::INTEGER AS m_score,
        CASE WHEN active THEN (CASE {t_score} ELSE 1 END) END::INTEGER AS t_score,
        opt_email, opt_sms, opt_phone
    FROM ranked"""


def floor_sql(input_dir: Path, first_month: str | None = None) -> str:
    """One statement: the snapshot of every month from the first month of data (or ``first_month``) to the last.

    A dense customer x month grid from the first month of data; ``C(M)`` is
    the running sum and a window of k months is ``C(M) - C(M-k)`` (two
    window passes over the grid, sorted on an integer customer number; names
    and flags join at the end). Orders: the month's distinct invoices, minus
    the invoices already counted in an earlier month of the window: an
    invoice seen in month m whose previous month was p is counted twice by the
    windows of k months ending in m .. p+k-1, so it adds one to a running
    "repeat" sum at m and takes it back at p+k.
    """
    report_from = f"greatest(min(month), {_q(first_month[:7] + '-01')}::DATE)" if first_month else "min(month)"

    def lag(column: str, k: int) -> str:
        return f"lag({column}, {k}, 0) OVER c"

    return f"""
    WITH {sources(input_dir)},
    span AS (SELECT min(month) AS first, max(month) AS last, {report_from} AS report_from FROM lines),
    months AS (SELECT unnest(generate_series(first, last, INTERVAL 1 MONTH))::DATE AS month FROM span),
    numbered AS (SELECT row_number() OVER () AS cid, * FROM customers),
    activity AS (
        SELECT customer_id, month, sum(units) AS units, count(*) FILTER (qualifying) AS lines,
            count(DISTINCT invoice_id) FILTER (qualifying) AS orders,
            min(invoice_date) FILTER (qualifying) AS first_c, max(invoice_date) FILTER (qualifying) AS last_c,
            min(invoice_date) FILTER (device) AS first_d, min(invoice_date) AS first_line
        FROM lines GROUP BY ALL
    ),
    invoice_months AS (
        SELECT customer_id, invoice_id, month,
            lag(month) OVER (PARTITION BY customer_id, invoice_id ORDER BY month) AS previous
        FROM (SELECT DISTINCT customer_id, invoice_id, month FROM lines WHERE qualifying)
    ),
    repeat_deltas AS (
        SELECT customer_id, month, sum(d6) AS d6, sum(d12) AS d12 FROM (
            SELECT customer_id, month, 1 AS d6, 1 AS d12 FROM invoice_months
            WHERE previous IS NOT NULL AND month < previous + INTERVAL 12 MONTH
            UNION ALL
            SELECT customer_id, (previous + INTERVAL 6 MONTH)::DATE, -1, 0 FROM invoice_months
            WHERE previous IS NOT NULL AND month < previous + INTERVAL 6 MONTH
            UNION ALL
            SELECT customer_id, (previous + INTERVAL 12 MONTH)::DATE, 0, -1 FROM invoice_months
            WHERE previous IS NOT NULL AND month < previous + INTERVAL 12 MONTH
        ) GROUP BY ALL
    ),
    per_month AS (
        SELECT coalesce(a.customer_id, r.customer_id) AS customer_id, coalesce(a.month, r.month) AS month,
            coalesce(a.units, 0) AS units, coalesce(a.lines, 0) AS lines, coalesce(a.orders, 0) AS orders,
            coalesce(r.d6, 0) AS d6, coalesce(r.d12, 0) AS d12, a.first_c, a.last_c, a.first_d, a.first_line
        FROM activity a FULL JOIN repeat_deltas r ON r.customer_id = a.customer_id AND r.month = a.month
    ),
    grid AS (
        SELECT n.cid, n.created_date, m.month AS report_month,
            coalesce(p.units, 0) AS units, coalesce(p.lines, 0) AS lines, coalesce(p.orders, 0) AS orders,
            coalesce(p.d6, 0) AS d6, coalesce(p.d12, 0) AS d12, p.first_c, p.last_c, p.first_d, p.first_line
        FROM numbered n CROSS JOIN months m
        LEFT JOIN per_month p ON p.customer_id = n.customer_id AND p.month = m.month
    ),
    running AS (
        SELECT cid, report_month,
            sum(units) OVER w AS cu, sum(lines) OVER w AS cl, sum(orders) OVER w AS co,
            sum(d6) OVER w AS r6, sum(d12) OVER w AS r12,
            min(first_c) OVER w AS first_c, max(last_c) OVER w AS last_c, min(first_d) OVER w AS first_d,
            created_date IS NULL OR created_date <= last_day(report_month)
                OR min(first_line) OVER w IS NOT NULL AS entered
        FROM grid
        WINDOW w AS (PARTITION BY cid ORDER BY report_month ROWS UNBOUNDED PRECEDING)
    ),
    windows AS (
        SELECT cid, report_month, first_c, last_c, first_d, entered,
            coalesce(lag(entered) OVER c, false) AS prev_entered,
            cu AS m_total, cu - {lag("cu", 1)} AS m1, cu - {lag("cu", 6)} AS m6, cu - {lag("cu", 12)} AS m12,
            cu - {lag("cu", 13)} AS m13, cu - {lag("cu", 24)} AS m24, cu - {lag("cu", 25)} AS m25,
            cl AS l_total, cl - {lag("cl", 1)} AS l1, cl - {lag("cl", 6)} AS l6, cl - {lag("cl", 12)} AS l12,
            cl - {lag("cl", 13)} AS l13,
            co - {lag("co", 6)} - r6 AS o6, co - {lag("co", 12)} - r12 AS o12,
            {lag("cu", 1)} - {lag("cu", 7)} AS prev_m6, {lag("cl", 1)} - {lag("cl", 7)} AS prev_l6,
            {lag("cl", 1)} - {lag("cl", 13)} AS prev_l12, {lag("co", 1)} - {lag("co", 7)} - {lag("r6", 1)} AS prev_o6
        FROM running
        WINDOW c AS (PARTITION BY cid ORDER BY report_month)
    ),
    reported AS (
        SELECT n.customer_id, n.customer_group, n.city, n.opt_email, n.opt_sms, n.opt_phone, w.*
        FROM windows w JOIN numbered n USING (cid)
        WHERE w.entered AND w.report_month >= (SELECT report_from FROM span)
    ),
    {_finish("reported")}
    """


def loop_lines_sql(input_dir: Path) -> str:
    return f"""
    CREATE OR REPLACE TABLE lines AS WITH {sources(input_dir)}
    SELECT * FROM lines
    """


def loop_customers_sql(input_dir: Path) -> str:
    return f"""
    CREATE OR REPLACE TABLE customers AS
    WITH {sources(input_dir).split("raw_lines AS")[0].rstrip().rstrip(",")}
    SELECT * FROM customers
    """


def loop_month_sql() -> str:
    """The snapshot of one month ($month, first day) from every line up to its end: one aggregate pass."""

    def window(k: int, shift: int = 0) -> str:
        return f"month BETWEEN $month - INTERVAL {k - 1 + shift} MONTH AND $month - INTERVAL {shift} MONTH"

    return f"""
    INSERT INTO snapshot BY NAME
    WITH agg AS (
        SELECT customer_id,
            sum(units) AS m_total, sum(units) FILTER ({window(1)}) AS m1, sum(units) FILTER ({window(6)}) AS m6,
            sum(units) FILTER ({window(12)}) AS m12, sum(units) FILTER ({window(13)}) AS m13,
            sum(units) FILTER ({window(24)}) AS m24, sum(units) FILTER ({window(25)}) AS m25,
            count(DISTINCT invoice_id) FILTER (qualifying AND {window(6)}) AS o6,
            count(DISTINCT invoice_id) FILTER (qualifying AND {window(12)}) AS o12,
            count(*) FILTER (qualifying) AS l_total, count(*) FILTER (qualifying AND {window(1)}) AS l1,
            count(*) FILTER (qualifying AND {window(6)}) AS l6, count(*) FILTER (qualifying AND {window(12)}) AS l12,
            count(*) FILTER (qualifying AND {window(13)}) AS l13,
            sum(units) FILTER ({window(6, 1)}) AS prev_m6,
            count(DISTINCT invoice_id) FILTER (qualifying AND {window(6, 1)}) AS prev_o6,
            count(*) FILTER (qualifying AND {window(6, 1)}) AS prev_l6,
            count(*) FILTER (qualifying AND {window(12, 1)}) AS prev_l12,
            min(invoice_date) FILTER (qualifying) AS first_c, max(invoice_date) FILTER (qualifying) AS last_c,
            min(invoice_date) FILTER (device) AS first_d, min(invoice_date) AS first_line
        FROM lines WHERE month <= $month
        GROUP BY customer_id
    ),
    month_rows AS (
        SELECT $month::DATE AS report_month, c.customer_id, c.customer_group, c.city,
            c.opt_email, c.opt_sms, c.opt_phone, a.first_c, a.last_c, a.first_d,
            coalesce(a.m_total, 0) AS m_total, coalesce(a.m1, 0) AS m1, coalesce(a.m6, 0) AS m6,
            coalesce(a.m12, 0) AS m12, coalesce(a.m13, 0) AS m13, coalesce(a.m24, 0) AS m24,
            coalesce(a.m25, 0) AS m25, coalesce(a.o6, 0) AS o6, coalesce(a.o12, 0) AS o12,
            coalesce(a.l_total, 0) AS l_total, coalesce(a.l1, 0) AS l1, coalesce(a.l6, 0) AS l6,
            coalesce(a.l12, 0) AS l12, coalesce(a.l13, 0) AS l13,
            c.created_date IS NULL OR c.created_date < $month::DATE OR a.first_line < $month::DATE AS prev_entered,
            coalesce(a.prev_m6, 0) AS prev_m6, coalesce(a.prev_o6, 0) AS prev_o6,
            coalesce(a.prev_l6, 0) AS prev_l6, coalesce(a.prev_l12, 0) AS prev_l12
        FROM customers c LEFT JOIN agg a USING (customer_id)
        WHERE c.created_date IS NULL OR c.created_date <= last_day($month::DATE) OR a.first_line IS NOT NULL
    ),
    {_finish("month_rows")}
    """


def create_empty_snapshot(con) -> None:
    con.execute(
        """
        CREATE OR REPLACE TABLE snapshot (
            report_month DATE, customer_id VARCHAR, customer_group VARCHAR, city VARCHAR,
            m_total DOUBLE, m1 DOUBLE, m6 DOUBLE, m12 DOUBLE, m13 DOUBLE, m24 DOUBLE, m25 DOUBLE,
            o6 BIGINT, o12 BIGINT, first_device_purchase_date DATE, first_consumable_purchase_date DATE,
            last_consumable_purchase_date DATE, months_since_last_purchase INTEGER, tenure_months INTEGER,
            avg_monthly_consumption DOUBLE, avg_order_size DOUBLE, activity_status VARCHAR, value_tier VARCHAR,
            prev_value_tier VARCHAR, lifecycle_stage VARCHAR, lifecycle_event VARCHAR,
            r_score INTEGER, f_score INTEGER, m_score INTEGER, t_score INTEGER,
            opt_email BOOLEAN, opt_sms BOOLEAN, opt_phone BOOLEAN
        )
        """
    )


def _connect(db: Path, memory_limit: str = ""):
    config = {"temp_directory": f"{db}.tmp"}
    if memory_limit:
        config["memory_limit"] = memory_limit
    return duckdb.connect(str(db), config=config)


def run_floor(input_dir: Path, db: Path, first_month: str | None, memory_limit: str = "") -> dict:
    con = _connect(db, memory_limit)
    started = time.perf_counter()
    con.execute(f"CREATE OR REPLACE TABLE snapshot AS {floor_sql(input_dir, first_month)}")
    rows, months = con.execute("SELECT count(*), count(DISTINCT report_month) FROM snapshot").fetchone()
    con.close()
    return {"rows": rows, "months": months, "queries": 1, "seconds": round(time.perf_counter() - started, 3)}


def run_loop(input_dir: Path, db: Path, first_month: str | None, memory_limit: str = "") -> dict:
    con = _connect(db, memory_limit)
    started = time.perf_counter()
    con.execute(loop_lines_sql(input_dir))
    con.execute(loop_customers_sql(input_dir))
    create_empty_snapshot(con)
    first, last = con.execute("SELECT min(month), max(month) FROM lines").fetchone()
    if first_month:
        first = max(first, __import__("datetime").date.fromisoformat(first_month[:7] + "-01"))
    months = [
        m
        for (m,) in con.execute(
            "SELECT unnest(generate_series(?::DATE, ?::DATE, INTERVAL 1 MONTH))::DATE", [first, last]
        ).fetchall()
    ]
    loaded = time.perf_counter() - started
    sql = loop_month_sql()
    for month in months:
        con.execute(sql, {"month": month})
    rows = con.execute("SELECT count(*) FROM snapshot").fetchone()[0]
    con.close()
    return {
        "rows": rows,
        "months": len(months),
        "queries": len(months) + 2,
        "load_seconds": round(loaded, 3),
        "seconds": round(time.perf_counter() - started, 3),
    }


def compare(db: Path, warehouse: Path) -> dict:
    """Rows of each side and rows that differ in any column (doubles within 1e-9 relative)."""
    con = duckdb.connect()
    con.execute(f"ATTACH {_q(str(db))} AS ref (READ_ONLY)")
    con.execute(f"ATTACH {_q(str(warehouse))} AS wh (READ_ONLY)")
    ref_rows = con.execute("SELECT count(*) FROM ref.snapshot").fetchone()[0]
    wh_rows = con.execute("SELECT count(*) FROM wh.reporting.customer_snapshot").fetchone()[0]
    tests = []
    for column in COLUMNS[2:]:
        if column in DOUBLE_COLUMNS:
            tests.append(
                f"(a.{column} IS NULL) <> (b.{column} IS NULL) OR abs(a.{column} - b.{column}) > "
                f"1e-9 * greatest(1, abs(b.{column}))"
            )
        else:
            tests.append(f"a.{column} IS DISTINCT FROM b.{column}")
    per_column = ", ".join(f"count(*) FILTER (WHERE {t}) AS {c}" for t, c in zip(tests, COLUMNS[2:]))
    row = con.execute(
        f"""
        SELECT count(*) FILTER (WHERE a.customer_id IS NULL) AS only_warehouse,
            count(*) FILTER (WHERE b.customer_id IS NULL) AS only_reference,
            count(*) FILTER (WHERE a.customer_id IS NOT NULL AND b.customer_id IS NOT NULL
                             AND ({" OR ".join(f"coalesce({t}, false)" for t in tests)})) AS differing,
            {per_column}
        FROM ref.snapshot a FULL JOIN wh.reporting.customer_snapshot b USING (report_month, customer_id)
        """
    ).fetchone()
    names = ["only_warehouse", "only_reference", "differing", *COLUMNS[2:]]
    result = dict(zip(names, row))
    return {
        "reference_rows": ref_rows,
        "warehouse_rows": wh_rows,
        "only_warehouse": result["only_warehouse"],
        "only_reference": result["only_reference"],
        "differing_rows": result["differing"],
        "differing_columns": {c: result[c] for c in COLUMNS[2:] if result[c]},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.floor", description=__doc__.split("\n\n")[0])
    parser.add_argument("mode", choices=("floor", "loop", "compare", "sql"))
    parser.add_argument("--input", type=Path)
    parser.add_argument("--db", type=Path, required=True)
    parser.add_argument("--first", default=None, help="first report month YYYY-MM (default: first month of data)")
    parser.add_argument("--warehouse", type=Path)
    parser.add_argument("--memory-limit", default="", help="DuckDB memory_limit, e.g. 8GB (default: DuckDB's)")
    args = parser.parse_args(argv)
    if args.mode == "sql":
        print(floor_sql(args.input or Path("INPUT"), args.first))
        return 0
    if args.mode == "compare":
        result = compare(args.db, args.warehouse)
    else:
        args.db.parent.mkdir(parents=True, exist_ok=True)
        for suffix in ("", ".wal"):
            Path(str(args.db) + suffix).unlink(missing_ok=True)
        run = run_floor if args.mode == "floor" else run_loop
        result = run(args.input.resolve(), args.db, args.first, args.memory_limit)
    print(json.dumps(result, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
