"""Filtered customer lists for campaigns (``crm export``), with the consent rule and an audit trail.

An export is the month's snapshot rows that pass every filter given, with the
snapshot's columns, ``customer_name`` after ``customer_id``, and ``email`` and
``mobile_number`` last; decimals (units, AMC, AOS) are rounded to two places,
as the workbook shows them:

- each filter (``tier``, ``stage``, ``event``, ``status``, ``group``,
  ``city``, ``store``) keeps the rows whose value is one of the values given
  (OR within a filter); different filters combine with AND;
- ``store`` keeps customers with at least one transaction line (any product,
  any quantity) at one of the stores, dated on or before the last day of the
  month (point in time, like the snapshot);
- ``consent`` keeps customers who consented to at least one of the channels
  given (OR: one campaign over several channels);
- consent is the one in force: true in the month's snapshot **and** in the
  current customer master, so a withdrawal after the month was computed is
  honoured; the ``opt_*`` columns of the export show it;
- ``email`` is blank unless ``opt_email``; ``mobile_number`` is blank unless
  ``opt_sms`` or ``opt_phone``;
- in a CSV file, a name, group, city, e-mail or mobile number starting with
  ``=``, ``+``, ``-``, ``@``, a tab or a carriage return starts with an
  apostrophe, so that a spreadsheet shows it as text instead of running it as
  a formula (an xlsx cell is text already); a contact value that is ``+``
  and a phone number (digits, spaces, dashes, parentheses) stays as it is;
- with ``explain``, ``tier_explanation`` after ``value_tier``: the tier rule
  that matched and the one just above it that did not, from the rule
  declarations (core/ordered_rules.py) and the rules recorded for the month,
  computed in SQL for the whole list.

A list that matches nothing is refused (nothing written, nothing audited)
unless ``allow_empty``: an empty campaign list is more often a wrong filter
than an intended result.

Filter values are bound as SQL parameters (lists), never pasted into SQL
text. A value is matched ignoring case and resolved to its canonical
spelling; an unknown value is refused with the list of valid ones. Every
export is recorded in ``reporting.export_audit`` before the file appears
under its name.
"""

from __future__ import annotations

import errno
import getpass
import json
import os
import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import pyarrow.csv as pacsv
from openpyxl import Workbook

from crm_assets.core.columns import EXCEL_DECIMAL, schema_ddl
from crm_assets.core.errors import CrmError
from crm_assets.core.ordered_rules import VALUE_TIER, inputs_of
from crm_assets.core.rules import EVENTS, STAGES, STATUSES, TIERS, CrmRules
from crm_assets.layers import tables
from crm_assets.layers.reporting import SNAPSHOT_COLUMNS, SNAPSHOT_TABLE
from crm_assets.outputs.explain import ExplanationMismatch, RulesUsed, recorded_rules
from crm_assets.outputs.summary import require_month
from crm_assets.outputs.tables import EXPORT_AUDIT
from crm_assets.outputs.workbook import Sheet, save_workbook, text_widths, write_customer_list

SNAPSHOT = SNAPSHOT_TABLE.name
AUDIT_TABLE = EXPORT_AUDIT.name
CONTACT_COLUMNS = tuple(c.name for c in tables.CONTACT_COLUMNS)
_ID_AT = SNAPSHOT_COLUMNS.index("customer_id") + 1
EXPORT_COLUMNS = (
    *SNAPSHOT_COLUMNS[:_ID_AT],
    tables.NAME_COLUMN.name,
    *SNAPSHOT_COLUMNS[_ID_AT:],
    *CONTACT_COLUMNS,
)
EXPLANATION = tables.TIER_EXPLANATION_COLUMN.name
_TIER_AT = EXPORT_COLUMNS.index("value_tier") + 1
EXPLAINED_COLUMNS = (*EXPORT_COLUMNS[:_TIER_AT], EXPLANATION, *EXPORT_COLUMNS[_TIER_AT:])
# the tier rule's inputs in _base_sql: the exact figures of features.customer_features (the snapshot's are DOUBLE)
TIER_EXPLANATION_INPUTS = inputs_of(VALUE_TIER, "f", active="s.activity_status = 'Active'")
# the columns the workbook shows with two decimals: the export rounds their values the same way
ROUNDED = {c.name for c in SNAPSHOT_TABLE.columns if c.excel_format == EXCEL_DECIMAL}
CHANNELS = ("email", "sms", "phone")
FORMATS = {".csv": "csv", ".xlsx": "xlsx"}
UTF8_BOM = b"\xef\xbb\xbf"
ARROW_BATCH = 65_536

# what each filter keeps, in words (the Export sheet of an .xlsx list, the one-line messages)
FILTER_WORDS = {
    "tier": "value tier",
    "stage": "lifecycle stage",
    "event": "lifecycle event of the month",
    "status": "activity status",
    "group": "customer group",
    "city": "city",
    "store": "bought at store (any line up to the month's end)",
}
# filter name -> snapshot column; ``store`` is a subquery on enriched.transactions
FILTER_COLUMNS = {
    "tier": "value_tier",
    "stage": "lifecycle_stage",
    "event": "lifecycle_event",
    "status": "activity_status",
    "group": "customer_group",
    "city": "city",
    "store": None,
}
FIXED_VALUES = {"tier": TIERS, "stage": STAGES, "event": EVENTS, "status": STATUSES}

CONSENT_RULE = (
    "email only when opt_email; mobile_number only when opt_sms or opt_phone; "
    "consent = flag true in the month's snapshot and in the current customer master"
)

AUDIT_DDL = schema_ddl("reporting", (EXPORT_AUDIT,))


def _base_sql(rules: CrmRules | None) -> str:
    """The month's list before filters; with ``rules``, the tier explanation after ``value_tier``.

    Effective consent: the month's flag and the current master's flag.
    """
    columns = EXPLAINED_COLUMNS if rules is not None else EXPORT_COLUMNS
    explanation, features = "", ""
    if rules is not None:
        explanation = (
            f",\n        {VALUE_TIER.explanation_sql(rules, TIER_EXPLANATION_INPUTS)} AS {EXPLANATION},"
            f"\n        {VALUE_TIER.first_match_sql(rules, TIER_EXPLANATION_INPUTS)} AS tier_explained"
        )
        # LEFT: the explanation never changes which customers are listed (a missing row is a disagreement)
        features = (
            "\n    LEFT JOIN features.customer_features f"
            " ON f.report_month = s.report_month AND f.customer_id = s.customer_id"
        )
    rounded = ", ".join(f"round({c}, 2) AS {c}" if c in ROUNDED else c for c in columns[: -len(CONTACT_COLUMNS)])
    return f"""
WITH base AS (
    SELECT s.* EXCLUDE (opt_email, opt_sms, opt_phone),
        s.opt_email AND coalesce(c.opt_email, false) AS opt_email,
        s.opt_sms AND coalesce(c.opt_sms, false) AS opt_sms,
        s.opt_phone AND coalesce(c.opt_phone, false) AS opt_phone,
        nullif(trim(c.email), '') AS contact_email, nullif(trim(c.mobile_number), '') AS contact_mobile,
        nullif(trim(c.customer_name), '') AS customer_name{explanation}
    FROM {SNAPSHOT} s LEFT JOIN enriched.customers c USING (customer_id){features}
    WHERE s.report_month = $month
)
SELECT {rounded},
    CASE WHEN opt_email THEN contact_email END AS email,
    CASE WHEN opt_sms OR opt_phone THEN contact_mobile END AS mobile_number
FROM base
"""


_CONDITIONS = {
    name: f"list_contains($filter_{name}::VARCHAR[], {column})" for name, column in FILTER_COLUMNS.items() if column
}
_CONDITIONS["store"] = (
    "customer_id IN (SELECT customer_id FROM enriched.transactions "
    "WHERE invoice_date <= last_day($month::DATE) AND list_contains($filter_store::VARCHAR[], store_id))"
)
_CONSENT_CONDITION = (
    "((list_contains($consent::VARCHAR[], 'email') AND opt_email)"
    " OR (list_contains($consent::VARCHAR[], 'sms') AND opt_sms)"
    " OR (list_contains($consent::VARCHAR[], 'phone') AND opt_phone))"
)


@dataclass
class ExportResult:
    path: Path
    month: date
    rows: int
    file_format: str
    filters: dict[str, list[str]] = field(default_factory=dict)
    consent: list[str] = field(default_factory=list)


def split_values(raw: Iterable[str] | None) -> list[str]:
    """Values of a repeatable, comma-separated option, trimmed, blanks dropped, order kept."""
    values: list[str] = []
    for item in raw or ():
        for part in str(item).split(","):
            part = part.strip()
            if part and part not in values:
                values.append(part)
    return values


def valid_values(con, name: str, month: date) -> list[str]:
    """The values a filter accepts for ``month``: spec spellings, or the values present that month."""
    if name in FIXED_VALUES:
        return list(FIXED_VALUES[name])
    if name in ("group", "city"):
        column = FILTER_COLUMNS[name]
        sql = f"SELECT DISTINCT {column} FROM {SNAPSHOT} WHERE report_month = ? AND {column} IS NOT NULL ORDER BY 1"
        return [v for (v,) in con.execute(sql, [month]).fetchall()]
    if name == "store":
        sql = (
            "SELECT DISTINCT t.store_id FROM enriched.transactions t "
            f"JOIN (SELECT customer_id FROM {SNAPSHOT} WHERE report_month = ?) s USING (customer_id) "
            "WHERE t.invoice_date <= last_day(?::DATE) AND t.store_id IS NOT NULL ORDER BY 1"
        )
        return [v for (v,) in con.execute(sql, [month, month]).fetchall()]
    raise ValueError(name)


def _listing(values: Sequence[str], limit: int = 40) -> str:
    shown = ", ".join(values[:limit]) if values else "(none)"
    return shown + (f", ... ({len(values)} in all)" if len(values) > limit else "")


def resolve(name: str, raw: Sequence[str], valid: Sequence[str], month: date | None = None) -> list[str]:
    """The canonical spellings of the option values ``raw`` (case-insensitive), in order, without repeats.

    Each raw value is either one valid value as a whole (a city whose name
    holds a comma) or a comma-separated list of them. CrmError names the
    first unknown value and lists the valid ones.
    """
    lookup = {v.lower(): v for v in valid}
    resolved: list[str] = []
    for item in raw:
        whole = str(item).strip()
        parts = [whole] if whole.lower() in lookup else split_values([item])
        for value in parts:
            canonical = lookup.get(value.lower())
            if canonical is None:
                when = f" in {month:%Y-%m}" if month is not None and name not in FIXED_VALUES else ""
                raise CrmError(f"--{name}: unknown value '{value}'{when}; valid values: {_listing(list(valid))}")
            if canonical not in resolved:
                resolved.append(canonical)
    return resolved


def explanation_mismatch(con, month: date, rules: CrmRules) -> None:
    """ExplanationMismatch when the tier rule, on the month's figures and ``rules``, does not give a customer's
    stored tier (the month was computed with other rules): an export must not send a sentence that contradicts
    its own value_tier column."""
    cte = _base_sql(rules).split("\nSELECT ", 1)[0]
    wrong, example, stored, explained = con.execute(
        f"{cte}\nSELECT count(*), min(customer_id), any_value(value_tier ORDER BY customer_id), "
        "any_value(tier_explained ORDER BY customer_id) FROM base WHERE tier_explained IS DISTINCT FROM value_tier",
        {"month": month},
    ).fetchone()
    if wrong:
        raise ExplanationMismatch(
            f"value tier of {wrong:,} customer(s) of {month:%Y-%m} (first {example}: stored {stored!r}, the rules give "
            f"{explained!r}) disagrees with the rules recorded for the month; was it computed with other rules?"
        )


def export_query(
    month: date, filters: Mapping[str, Sequence[str]], consent: Sequence[str], explain: CrmRules | None = None
) -> tuple[str, dict]:
    """The export's SQL and its named parameters; the SQL text depends only on which filters are used (and the
    rules, for the tier explanation with ``explain``)."""
    conditions = []
    params: dict = {"month": month}
    for name in FILTER_COLUMNS:
        values = filters.get(name)
        if values:
            conditions.append(_CONDITIONS[name])
            params[f"filter_{name}"] = list(values)
    if consent:
        conditions.append(_CONSENT_CONDITION)
        params["consent"] = list(consent)
    where = (" WHERE " + " AND ".join(conditions)) if conditions else ""
    return _base_sql(explain) + where + " ORDER BY customer_id", params


# Free text of the customer master that a spreadsheet opening the CSV would run as a formula when it starts
# with one of these (CSV injection): such a value gets a leading apostrophe, which Excel shows as text.
CSV_GUARDED = ("customer_name", "customer_group", "city")
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
# The contact columns, free text of the master too, get the same apostrophe, except a "+" followed by a phone
# number only (digits, spaces, dashes, parentheses): "+33 1 23 45 67 89" is what a mail or SMS tool must get.
CSV_GUARDED_CONTACTS = CONTACT_COLUMNS
PHONE_NUMBER = r"\+[0-9 ()-]*[0-9][0-9 ()-]*"


def _guard(column: str, starts: str, contact: bool) -> str:
    condition = f"left({column}, 1) IN ({starts})"
    if contact:  # "+" then a phone number only: as it is
        condition += f" AND NOT ({column} LIKE '+%' AND regexp_full_match({column}, '{PHONE_NUMBER}'))"
    return f"CASE WHEN {condition} THEN chr(39) || {column} ELSE {column} END AS {column}"


def csv_guarded(sql: str) -> str:
    """``sql`` with the free-text columns (``CSV_GUARDED``, ``CSV_GUARDED_CONTACTS``) guarded against being read as
    formulas: a value starting with a ``FORMULA_STARTS`` character gets a leading apostrophe, except a contact
    value that is ``+`` and a phone number."""
    starts = ", ".join(f"chr({ord(c)})" for c in FORMULA_STARTS)
    guards = ", ".join(
        [_guard(c, starts, False) for c in CSV_GUARDED] + [_guard(c, starts, True) for c in CSV_GUARDED_CONTACTS]
    )
    return f"SELECT * REPLACE ({guards}) FROM ({sql})"


def is_phone_number(value: str) -> bool:
    """``+`` then digits, spaces, dashes and parentheses only, one digit at least (``PHONE_NUMBER``)."""
    return re.fullmatch(PHONE_NUMBER, value) is not None


def formula_guarded(value: str | None, contact: bool = False) -> str | None:
    """What ``csv_guarded`` writes for ``value`` (of a contact column with ``contact``), in Python: for the
    tests and the documentation; the export itself does it in SQL."""
    if value is None or value[:1] not in FORMULA_STARTS:
        return value
    if contact and is_phone_number(value):
        return value
    return "'" + value


def _write_csv(con, sql: str, params: dict, tmp: Path) -> int:
    """UTF-8 with a byte-order mark (Excel then reads accents right), comma-separated, header first; free text
    that would start a formula starts with an apostrophe (CSV_GUARDED)."""
    rows = 0
    cursor = con.cursor()  # its own result: nothing else on ``con`` is left half-read
    try:
        reader = cursor.sql(csv_guarded(sql), params=params).to_arrow_reader(ARROW_BATCH)
        with open(tmp, "wb") as handle:
            handle.write(UTF8_BOM)
            with pacsv.CSVWriter(handle, reader.schema) as writer:
                for batch in reader:
                    writer.write_batch(batch)
                    rows += batch.num_rows
    finally:
        cursor.close()
    return rows


def _write_xlsx(
    con, sql: str, params: dict, tmp: Path, month: date, filters: dict, consent: list, rules: RulesUsed | None
) -> int:
    columns = EXPLAINED_COLUMNS if rules is not None else EXPORT_COLUMNS
    total = con.execute(f"SELECT count(*) FROM ({sql})", params).fetchall()[0][0]
    widths = text_widths(con, sql, params, columns)
    if rules is not None:  # the workbook's list columns do not hold it: its width is measured here
        widths[EXPLANATION] = con.execute(
            f"SELECT coalesce(max(length({EXPLANATION})), 0) FROM ({sql})", params
        ).fetchone()[0]
    wb = Workbook(write_only=True)
    result = write_customer_list(wb, con, sql, params, total, columns, "Customers", widths)
    about = Sheet(wb, "Export", [22, 90])
    about.title("Customer export", "What this list is and which rules made it.")
    for label, value in (
        ("Report month", month.strftime("%Y-%m")),
        ("Rows", total),
        ("Sheets", ", ".join(f"{t} ({n:,})" for t, n in result.sheets)),
        *filter_lines(filters, consent),
        ("Consent filter", consent_words(consent) if consent else "(none)"),
        ("Consent rule", CONSENT_RULE),
        *(
            [("Tier explanation", f"the value tier rule that matched and the one above it; rules {rules.source}")]
            if rules is not None
            else []
        ),
    ):
        about.append([label, value])
    save_workbook(wb, tmp, [result])
    return total


def filter_lines(filters: Mapping[str, Sequence[str]], consent: Sequence[str] = ()) -> list[tuple[str, str]]:
    """``("Filter: value tier", "Gold or Silver")`` per filter given, in the order of the options."""
    if not filters:
        return [("Filters", "(none)" if consent else "(none): every evaluated customer of the month")]
    return [(f"Filter: {FILTER_WORDS[name]}", " or ".join(values)) for name, values in filters.items() if values]


def consent_words(consent: Sequence[str]) -> str:
    return f"consented to {' or '.join(consent)}"


def describe_filters(filters: Mapping[str, Sequence[str]], consent: Sequence[str]) -> str:
    """The filters of an export in one line: ``value tier Gold or Silver; consented to email``."""
    parts = [f"{FILTER_WORDS[name]} {' or '.join(values)}" for name, values in filters.items() if values]
    if consent:
        parts.append(consent_words(consent))
    return "; ".join(parts) or "no filter"


def record_audit(con, result: ExportResult) -> None:
    con.execute(AUDIT_DDL)
    filters = dict(result.filters)
    if result.consent:
        filters["consent"] = result.consent
    try:
        user = getpass.getuser()
    except Exception:  # noqa: BLE001 - no login name in some containers
        user = None
    con.execute(
        f"INSERT INTO {AUDIT_TABLE} VALUES (current_timestamp::TIMESTAMP, ?, ?::JSON, ?, ?, ?, ?, ?)",
        [
            result.month,
            json.dumps(filters, ensure_ascii=False),
            result.rows,
            str(result.path),
            result.file_format,
            CONSENT_RULE + (f"; --consent {' OR '.join(result.consent)}" if result.consent else ""),
            user,
        ],
    )


def export_customers(
    warehouse,
    month: date,
    out: str | Path,
    filters: Mapping[str, Sequence[str] | None] | None = None,
    consent: Sequence[str] | None = None,
    allow_empty: bool = False,
    explain: bool = False,
    replace: bool = True,
) -> ExportResult:
    """Write the filtered list of ``month`` to ``out`` (.csv or .xlsx) and record it in the audit table.

    ``filters`` maps a filter name to its raw option values (repeatable,
    comma-separated); ``consent`` lists channels. The file is written next
    to ``out``, the export recorded, then the file moved into place. ``explain`` adds the column
    ``tier_explanation`` after ``value_tier``, with the rules the month was computed with. Without ``replace``
    (``crm export`` without ``--force``) an existing ``out`` is refused before anything is written or audited,
    and the final move never replaces a file that appeared meanwhile.
    """
    out = Path(out)
    file_format = FORMATS.get(out.suffix.lower())
    if file_format is None:
        raise CrmError(f"--out {out}: the file name must end with .csv or .xlsx")
    unknown = set(filters or {}) - set(FILTER_COLUMNS)
    if unknown:
        raise CrmError(f"unknown filter {sorted(unknown)[0]}; filters: {', '.join(FILTER_COLUMNS)}")
    channels = resolve("consent", list(consent or []), CHANNELS)
    resolved: dict[str, list[str]] = {}
    with warehouse.connect(read_only=True) as con:
        require_month(con, month)
        for name in FILTER_COLUMNS:
            raw = list((filters or {}).get(name) or [])
            if raw:
                resolved[name] = resolve(name, raw, valid_values(con, name, month), month)
        rules = recorded_rules(con, month) if explain else None
        if rules is not None:
            explanation_mismatch(con, month, rules.rules)
        sql, params = export_query(month, resolved, channels, rules.rules if rules else None)
        if not allow_empty and not con.execute(f"SELECT 1 FROM ({sql}) LIMIT 1", params).fetchall():
            raise CrmError(
                f"no customer of {month:%Y-%m} matches ({describe_filters(resolved, channels)}); "
                f"nothing written to {out} (--allow-empty writes the empty list)"
            )
        if not replace and (out.exists() or out.is_symlink()):  # the arguments are right: nothing else to say
            raise CrmError(f"--out {out}: the file exists; --force replaces it")
        out.parent.mkdir(parents=True, exist_ok=True)
        # a hidden name next to the target (same file system: the final move is atomic), created
        # with the usual permissions (not mkstemp's owner-only ones)
        tmp = out.with_name(f".{out.stem}.{uuid.uuid4().hex[:8]}.tmp{out.suffix}")
        try:
            if file_format == "csv":
                rows = _write_csv(con, sql, params, tmp)
            else:
                rows = _write_xlsx(con, sql, params, tmp, month, resolved, channels, rules)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
    result = ExportResult(out.resolve(), month, rows, file_format, resolved, channels)
    try:
        with warehouse.connect() as con:
            record_audit(con, result)
        _move_into_place(tmp, out, replace)
    except FileExistsError:
        tmp.unlink(missing_ok=True)
        raise CrmError(f"--out {out}: the file exists; --force replaces it") from None
    except PermissionError:
        tmp.unlink(missing_ok=True)
        raise CrmError(f"--out {out}: cannot be replaced (is it open in Excel?)") from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return result


def _move_into_place(tmp: Path, out: Path, replace: bool) -> None:
    """``tmp`` becomes ``out``; without ``replace``, FileExistsError when ``out`` exists, checked in the same step
    as the move (a hard link, which fails on an existing name) where the file system has hard links."""
    if replace:
        os.replace(tmp, out)
        return
    try:
        os.link(tmp, out)
    except FileExistsError:
        raise
    except OSError:  # no hard links here: check, then move
        if out.exists() or out.is_symlink():
            raise FileExistsError(errno.EEXIST, "File exists", str(out)) from None
        os.replace(tmp, out)
        return
    tmp.unlink(missing_ok=True)
