"""The data scales of the benchmark and the targets of the performance issue."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Scale:
    name: str
    customers: int
    start: str  # YYYY-MM
    end: str  # YYYY-MM
    note: str = ""
    seed: int = 42  # crm generate --seed

    @property
    def months(self) -> int:
        (y0, m0), (y1, m1) = (map(int, self.start.split("-")), map(int, self.end.split("-")))
        return (y1 - y0) * 12 + m1 - m0 + 1

    def month_before_last(self) -> str:
        y, m = map(int, self.end.split("-"))
        index = y * 12 + m - 2
        return f"{index // 12:04d}-{index % 12 + 1:02d}"


# S is the default sample of ``crm generate`` (2,000 customers, 2021-01..2025-12); "seed" has the shape of the
# seed system's own generated data (5,000 customers, about 140,000 lines, 60 months); "100k" is 100,000
# customers over the same five years (about 3 million lines). M, L and XL have ten years of history, so that L
# is about 10 million lines and XL 50 to 100 million.
SCALES: dict[str, Scale] = {
    "smoke": Scale("smoke", 50, "2025-10", "2025-12", "tiny run for the test suite"),
    "S": Scale("S", 2_000, "2021-01", "2025-12", "the default sample of `crm generate`"),
    "seed": Scale("seed", 5_000, "2021-01", "2025-12", "the shape of the seed system's own data"),
    "100k": Scale("100k", 100_000, "2021-01", "2025-12", "`crm generate --customers 100000 --seed 3`", seed=3),
    "M": Scale("M", 20_000, "2016-01", "2025-12"),
    "L": Scale("L", 200_000, "2016-01", "2025-12"),
    "XL": Scale("XL", 1_000_000, "2016-01", "2025-12"),
}

GIB = 1024 * 1024  # kB

# (scale, label, step, measure, limit) with measure "wall_s", "tree_rss_kb" or "ratio_floor".
TARGETS = [
    ("S", "`make run` on the default sample: full `crm run`", "backfill", "wall_s", 8.0),
    ("seed", "full `crm run` (5x faster than the seed's 72 s per-month SQLite build)", "backfill", "wall_s", 14.0),
    ("100k", "`crm run` / floor", "backfill", "ratio_floor", 2.0),
    ("100k", "full backfill peak memory", "backfill", "tree_rss_kb", 2 * GIB),
    ("L", "full backfill (`crm run`) wall time", "backfill", "wall_s", 60.0),
    ("L", "full backfill peak memory", "backfill", "tree_rss_kb", 3 * GIB),
    ("L", "one-month refresh wall time", "refresh", "wall_s", 10.0),
    ("L", "`crm run` / floor", "backfill", "ratio_floor", 2.0),
    ("XL", "full backfill wall time", "backfill", "wall_s", 15 * 60.0),
    ("XL", "full backfill peak memory", "backfill", "tree_rss_kb", 16 * GIB),
    ("XL", "generation wall time", "generate", "wall_s", 10 * 60.0),
]
