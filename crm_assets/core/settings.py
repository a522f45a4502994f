"""Paths and defaults shared by the CLI and the Dagster definitions.

Every path comes from an environment variable with a default relative to the
project root (the folder holding ``pyproject.toml``), as listed in
``docs/configuration.md``. Command-line options override the variables.
"""

from __future__ import annotations

import codecs
import os
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dotenv import dotenv_values

from crm_assets.core.errors import CrmError
from crm_assets.core.months import month_key

ENV_INPUT_DIR = "CRM_INPUT_DIR"
ENV_WAREHOUSE = "CRM_WAREHOUSE"
ENV_OUTPUT_DIR = "CRM_OUTPUT_DIR"
ENV_FIRST_MONTH = "CRM_FIRST_MONTH"

DEFAULT_INPUT_DIR = "data/input"
DEFAULT_WAREHOUSE = "data/warehouse/crm.duckdb"
DEFAULT_OUTPUT_DIR = "data/output"
ENV_ENGINE = "CRM_ENGINE"
ENGINES = ("duckdb", "spark")
ENV_SPARK_WAREHOUSE = "CRM_SPARK_WAREHOUSE"
DEFAULT_SPARK_WAREHOUSE = "data/spark-warehouse"
DEFAULT_DAGSTER_HOME = ".dagster_home"
# settings of the project folder that Dagster's CLI and UI read (a .env in the folder they start in)
ENV_FILE = ".env"
ENV_FILE_EXAMPLE = ".env.example"
# First month of the calendar when CRM_FIRST_MONTH is unset and no transaction file is there to start it at its
# first month (see crm_assets/partitions.py).
DEFAULT_FIRST_MONTH = "2020-01"

# Dagster's own settings the project runs with, for the processes that start runs (``crm``, and through the
# Makefile and .env.example the UI and the daemon). A run of N months otherwise logs a "materialization planned"
# event per asset and month before it starts (18 x N events); with this one per asset, which Dagster's
# maintainers offer as the opt-in for single-run backfills (the months of a failed run then show as missing
# rather than failed in the UI).
DAGSTER_SETTINGS = {"DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS": "1"}


def project_root() -> Path:
    """The repository root for an editable install, else the working directory."""
    here = Path(__file__).resolve().parents[2]  # crm_assets/core/settings.py -> the repository
    if (here / "pyproject.toml").exists():
        return here
    return Path.cwd()


def _path(env: str, default: str) -> Path:
    value = os.environ.get(env, "").strip()
    if value:  # set blank (an empty ${VAR} of a compose file): unset
        return Path(value).expanduser().resolve()
    return project_root() / default


def input_dir() -> Path:
    return _path(ENV_INPUT_DIR, DEFAULT_INPUT_DIR)


def warehouse_path() -> Path:
    return _path(ENV_WAREHOUSE, DEFAULT_WAREHOUSE)


def output_dir() -> Path:
    return _path(ENV_OUTPUT_DIR, DEFAULT_OUTPUT_DIR)


def spark_warehouse_path() -> Path:
    return _path(ENV_SPARK_WAREHOUSE, DEFAULT_SPARK_WAREHOUSE)


def engine() -> str:
    """``CRM_ENGINE`` (blank or unset: duckdb); a CrmError names a value that is not an engine."""
    value = os.environ.get(ENV_ENGINE, "").strip() or ENGINES[0]
    if value not in ENGINES:
        raise CrmError(f"{ENV_ENGINE}={value} is not an engine: use one of {', '.join(ENGINES)}")
    return value


def dagster_home() -> Path:
    """``DAGSTER_HOME``, else the one the project's ``.env`` names (as Dagster's CLI reads it), else the default."""
    if not os.environ.get("DAGSTER_HOME", "").strip():
        recorded = (dotenv_values(project_root() / ENV_FILE).get("DAGSTER_HOME") or "").strip()
        if recorded:
            return Path(recorded).expanduser().resolve()
    return _path("DAGSTER_HOME", DEFAULT_DAGSTER_HOME)


def first_month() -> str:
    """``CRM_FIRST_MONTH`` (else the default) as ``YYYY-MM-01``; a CrmError names a value that is not a month."""
    value = os.environ.get(ENV_FIRST_MONTH, "").strip() or DEFAULT_FIRST_MONTH
    try:
        return month_key(value)
    except ValueError:
        raise CrmError(f"{ENV_FIRST_MONTH}={value} is not a month (YYYY-MM)") from None


def prepare_dagster_home() -> Path:
    """Create ``DAGSTER_HOME`` with the project's instance settings (``dagster_instance.yaml``) if it has none.

    A CrmError names ``DAGSTER_HOME`` when it is a file, or a folder that cannot be made or written."""
    home = dagster_home()
    if home.exists() and not home.is_dir():
        raise CrmError(
            f"DAGSTER_HOME={home} is a file, not a folder; point DAGSTER_HOME at a folder for the run history"
        )
    target = home / "dagster.yaml"
    source = project_root() / "dagster_instance.yaml"
    try:
        home.mkdir(parents=True, exist_ok=True)
        if not target.exists() and source.exists():
            target.write_text(source.read_text())
    except OSError as exc:
        raise CrmError(f"DAGSTER_HOME={home}: cannot hold the run history there ({exc.strerror or exc})") from None
    return home


def record_dagster_home(home: Path) -> Path | None:
    """Write ``DAGSTER_HOME=<home>`` into the project's ``.env`` (made from ``.env.example`` when there is none),
    unless it names one already: Dagster's CLI and UI (``dagster dev``, ``dg dev``) started in the project folder
    read that file, so they open the run history ``crm`` writes, not a temporary one. Returns the file written, None
    for an installed (not editable) package, which has no project folder."""
    root = project_root()
    if not (root / "pyproject.toml").exists():
        return None
    target, example = root / ENV_FILE, root / ENV_FILE_EXAMPLE
    source = target if target.exists() else example
    if not source.exists():
        lines = []
    elif (dotenv_values(source).get("DAGSTER_HOME") or "").strip():  # read as dagster_home() and Dagster read it
        return None
    else:
        lines = source.read_text().splitlines()
    target.write_text("\n".join([*lines, f"DAGSTER_HOME={home.resolve()}"]) + "\n")
    return target


ENV_SCHEDULE_TIMEZONE = "CRM_SCHEDULE_TIMEZONE"


def schedule_timezone() -> str:
    """The time zone of the monthly schedule and of the month ends it compares file times with (default UTC).

    A CrmError names a value that is not a time zone of the IANA database (``Europe/Paris``)."""
    value = os.environ.get(ENV_SCHEDULE_TIMEZONE, "").strip() or "UTC"
    if value.upper() == "UTC":
        return "UTC"
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise CrmError(
            f"{ENV_SCHEDULE_TIMEZONE}={value} is not a time zone; use a name of the IANA database, e.g. UTC, "
            "Europe/Paris, America/New_York"
        ) from None
    return value


ENV_WORKBOOK_MONTHS = "CRM_WORKBOOK_MONTHS"
ENV_WORKBOOK_LIST_ROWS = "CRM_WORKBOOK_LIST_ROWS"
# the counts of the output folder resource (core/resources.py: OutputFolder): a whole number >= 0 each
COUNT_SETTINGS = {
    ENV_WORKBOOK_MONTHS: "a number of months, 0 = every month",
    ENV_WORKBOOK_LIST_ROWS: "a number of rows",
}


def check_counts() -> None:
    """A CrmError names a count setting (``COUNT_SETTINGS``) set to something else than a whole number >= 0.

    Unset or blank: the default. Checked before a run starts, so that ``-5`` is refused, not taken as 0."""
    for variable, meaning in COUNT_SETTINGS.items():
        value = os.environ.get(variable, "").strip()
        if value and not (value.isascii() and value.isdigit()):
            raise CrmError(f"{variable}={value} is not a whole number >= 0 ({meaning})")


ENV_INPUT_ENCODING = "CRM_INPUT_ENCODING"
DEFAULT_INPUT_ENCODING = "utf-8"


def input_encoding() -> str:
    """The codec of the input CSV files (``CRM_INPUT_ENCODING``), normalized; a CrmError names an unknown one."""
    value = os.environ.get(ENV_INPUT_ENCODING, "").strip() or DEFAULT_INPUT_ENCODING
    try:
        return codecs.lookup(value).name
    except LookupError:
        raise CrmError(f"{ENV_INPUT_ENCODING}={value} is not a known encoding (e.g. utf-8, cp1252, latin-1)") from None
