"""Argument types shared by the ``crm`` subcommands: one-line errors for a bad month or count."""

from __future__ import annotations

import argparse
from datetime import date

from crm_assets.core.months import add_months, key_of, month_key


def month_arg(value: str) -> str:
    try:
        return month_key(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def positive_int(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise argparse.ArgumentTypeError(f"'{value}' is not a positive whole number")
    return number


def month_or_last(value: str) -> str:
    """A month, or ``last``: the last complete month (the month before today's)."""
    if value.strip().lower() == "last":
        return key_of(add_months(date.today(), -1))
    return month_arg(value)
