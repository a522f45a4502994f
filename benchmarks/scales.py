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

    @property
    def months(self) -> int:
        (y0, m0), (y1, m1) = (map(int, self.start.split("-")), map(int, self.end.split("-")))
        return (y1 - y0) * 12 + m1 - m0 + 1

    def month_before_last(self) -> str:
        y, m = map(int, self.end.split("-"))
        index = y * 12 + m - 2
        return f"{index // 12:04d}-{index % 12 + 1:02d}"


# S is the default sample of ``crm generate`` (2,000 customers, 2021-01..2025-12). M, L and XL have ten
# years of history, so that L is about 10 million lines and XL 50 to 100 million.
SCALES: dict[str, Scale] = {
    "smoke": Scale("smoke", 50, "2025-10", "2025-12", "tiny run for the test suite"),
    "S": Scale("S", 2_000, "2021-01", "2025-12", "the default sample of `crm generate`"),
    "M": Scale("M", 20_000, "2016-01", "2025-12"),
    "L": Scale("L", 200_000, "2016-01", "2025-12"),
    "XL": Scale("XL", 1_000_000, "2016-01", "2025-12"),
}

GIB = 1024 * 1024  # kB

# (scale, label, step, measure, limit) with measure "wall_s", "tree_rss_kb" or "ratio_floor".
TARGETS = [
    ("L", "full backfill (`crm run`) wall time", "backfill", "wall_s", 60.0),
    ("L", "full backfill peak memory", "backfill", "tree_rss_kb", 4 * GIB),
    ("L", "one-month refresh wall time", "refresh", "wall_s", 10.0),
    ("L", "`crm run` / floor", "backfill", "ratio_floor", 2.0),
    ("XL", "full backfill wall time", "backfill", "wall_s", 15 * 60.0),
    ("XL", "full backfill peak memory", "backfill", "tree_rss_kb", 16 * GIB),
    ("XL", "generation wall time", "generate", "wall_s", 10 * 60.0),
]
