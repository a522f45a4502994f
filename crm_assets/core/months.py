"""Month arithmetic on partition keys (``YYYY-MM-01``): pure functions, no settings, no Dagster."""

from __future__ import annotations

from datetime import date, datetime


def month_key(value: str) -> str:
    """``YYYY-MM`` or ``YYYY-MM-DD`` -> partition key ``YYYY-MM-01``; ValueError otherwise."""
    text = value.strip()
    try:
        parsed = datetime.strptime(text[:7], "%Y-%m") if len(text) in (7, 10) else None
        if len(text) == 10:
            datetime.strptime(text, "%Y-%m-%d")
    except ValueError:
        parsed = None
    if parsed is None:
        raise ValueError(f"'{value}' is not a month (YYYY-MM)")
    return parsed.strftime("%Y-%m-01")


def key_to_date(key: str) -> date:
    return datetime.strptime(key, "%Y-%m-%d").date()


def key_of(day: date) -> str:
    """The partition key of ``day``'s month."""
    return f"{day.year:04d}-{day.month:02d}-01"


def month_start(day: date) -> date:
    return day.replace(day=1)


def add_months(day: date, months: int) -> date:
    """The first day of the month ``months`` after ``day``'s month (negative: before)."""
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)
