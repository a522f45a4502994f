"""The monthly HTML report ``reports/crm_summary_YYYY-MM.html`` (asset and ``crm report --format html``).

:func:`build_html_report` is the one builder, used by the ``reporting/summary_html``
asset and by ``crm report``. It is the workbook's summary for a browser or a
phone: one self-contained page (inline CSS, charts as inline SVG, no script,
no font, image or style sheet fetched from anywhere) with the month's KPIs
against M-1 and M-12, the value tier mix, the 24-month trends, lifecycle
stages and events, customer groups and cities, the tier migration matrix and
the cohort retention from month ``style.COHORT_FIRST_MONTH`` on.

The figures come from crm_assets/outputs/summary.py, the queries and
definitions the workbook uses too (``KPI_SQL``, ``TRENDS_SQL``, the cohort
window, ...), over the snapshot and the reporting views, so the page and the
workbook cannot disagree. Every query returns a few hundred rows at most; Python only shapes
them into HTML. Every text that comes from the data is escaped. The file is
written next to its target and moved into place with ``os.replace``.
"""

import html
import math
import os
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from dagster import AssetExecutionContext, BackfillPolicy, MaterializeResult, MetadataValue, asset

from crm_assets.core.columns import EXCEL_DECIMAL
from crm_assets.core.errors import CrmError
from crm_assets.core.months import add_months, key_to_date
from crm_assets.core.partitioned import add_month_metadata, month_window
from crm_assets.core.partitions import DECLARED
from crm_assets.core.resources import OutputFolder, Warehouse
from crm_assets.core.rules import EVENTS, STAGES, TIERS
from crm_assets.layers.reporting import customer_snapshot
from crm_assets.outputs import style
from crm_assets.outputs.style import COHORT_SCALE, COLOR_SCALE
from crm_assets.outputs.summary import (
    COHORT_SQL,
    EVENT_COLUMNS,
    KPIS,
    LIFECYCLE_SQL,
    REPORTS_FOLDER,
    SEGMENT_COLUMNS,
    SHARE,
    SHARE_KPIS,
    TIER_MIX_SQL,
    TREND_COLUMNS,
    UNITS_DEFINITION,
    cohort_window,
    held_months,
    kpi_values,
    months_written,
    require_month,
    require_views,
    segments,
    trends,
)
from crm_assets.outputs.summary import (
    change as figure_change,
)
from crm_assets.outputs.views import NO_TIER, view_assets

# The sections of the page, in order: (id, heading). The tests look for every heading.
SECTIONS = (
    ("kpis", "Key figures"),
    ("tiers", "Value tier mix"),
    ("trends", "Trends over 24 months"),
    ("lifecycle", "Lifecycle stages and events"),
    ("segments", "Customer groups and cities"),
    ("migration", "Value tier migration"),
    ("cohorts", "Cohort retention"),
)
# The KPIs shown as cards above the full table (keys of KPI_SQL).
HEADLINE_KPIS = ("evaluated", "active", "active_share", "units_month")
# Groups or cities listed one by one (largest first); the others are summed in one row.
SEGMENT_ROWS = 30
# Series colours of the trend charts (the tiers have theirs in style.TIER_COLOURS).
LINE_COLOURS = {"Active": "305496", "Evaluated": "9AA5B1", "units": "4E8F6A"}
EVENT_COLOURS = {"New": "2E8B57", "Lost": "C0392B", "Reactivated": "E08E0B"}
DASH = "\u2013"

CSS = """
*{box-sizing:border-box}
html{-webkit-text-size-adjust:100%}
body{margin:0;background:#f4f6f8;color:#1f2933;font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif}
main{max-width:1120px;margin:0 auto;padding:12px}
header{padding:8px 4px 4px}
h1{font-size:1.55rem;margin:.2em 0}
h2{font-size:1.2rem;margin:0 0 .5em}
h3{font-size:1rem;margin:1em 0 .4em}
p{margin:.3em 0 .7em}
.note{color:#52606d;font-size:.9rem}
section{background:#fff;border:1px solid #d9dee5;border-radius:8px;padding:14px;margin:0 0 14px;min-width:0}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(150px,1fr));gap:10px;margin:0 0 12px}
.card{border:1px solid #d9dee5;border-radius:6px;padding:8px 10px}
.card .label{font-size:.85rem;color:#52606d}
.card .value{font-size:1.5rem;font-weight:600;font-variant-numeric:tabular-nums}
.card .delta{font-size:.8rem;color:#52606d}
.charts{display:grid;grid-template-columns:repeat(auto-fit,minmax(min(100%,330px),1fr));gap:14px}
figure{margin:0;min-width:0}
.pair{display:flex;flex-wrap:wrap;gap:0 28px;align-items:flex-start}
.pair>div{min-width:0;max-width:100%}
.pair>figure{flex:1 1 300px;max-width:480px}
figcaption{font-weight:600;font-size:.95rem;margin:0 0 4px}
svg{display:block;width:100%;height:auto;max-width:640px}
svg text{font-family:inherit}
.scroll{overflow-x:auto;max-width:100%;margin:0 0 8px}
table{border-collapse:collapse;font-variant-numeric:tabular-nums;font-size:.9rem}
th,td{padding:4px 8px;border-bottom:1px solid #e4e7eb;text-align:right;white-space:nowrap}
th:first-child,td:first-child{text-align:left}
tbody th{position:sticky;left:0;background:#fff}
.kpis tbody th{white-space:normal;min-width:10em}
thead th{background:#eef1f5;vertical-align:bottom}
tr.total td,tr.total th{font-weight:600;border-top:2px solid #9aa5b1}
.sw{display:inline-block;width:.8em;height:.8em;border-radius:2px;margin-right:.4em;vertical-align:-.05em;border:1px solid #0002}
.heat td.c{min-width:3.2em}
.cohorts td.c{padding:3px 4px;font-size:.8rem;min-width:2.6em;text-align:center}
.sw,.heat td.c,.cohorts td.c{-webkit-print-color-adjust:exact;print-color-adjust:exact}
@media (max-width:600px){main{padding:6px}section{padding:10px}h1{font-size:1.3rem}.card .value{font-size:1.25rem}}
@media print{
body{background:none;font-size:10pt}
main{max-width:none;padding:0}
section{border:none;border-radius:0;padding:0;margin:0 0 10pt}
thead th{background:none;border-bottom:1px solid #000}
.card{border-color:#999}
h2,h3,figcaption{break-after:avoid;page-break-after:avoid}
figure,table,svg,.card,.cards{break-inside:avoid;page-break-inside:avoid}
.scroll{overflow:visible}
.cohorts th,.cohorts td,.cohorts td.c{padding:1px 2px;min-width:0;font-size:5.5pt}
}
"""


@dataclass
class HtmlSummary:
    path: Path
    month: date
    customers: int
    sections: list[str]
    charts: int
    bytes: int


def html_path(output_dir: str | Path, month: date) -> Path:
    """``<output>/reports/crm_summary_YYYY-MM.html``, beside the workbook."""
    return Path(output_dir) / REPORTS_FOLDER / f"crm_summary_{month:%Y-%m}.html"


# --------------------------------------------------------------------------- formatting


def esc(value) -> str:
    return html.escape(str(value), quote=True)


def number(value, fmt: str | None = None) -> str:
    """A figure as the workbook's format shows it, with thousands separators; a dash for none."""
    if value is None:
        return DASH
    if fmt == SHARE:
        return f"{value:.1%}"
    if fmt == EXCEL_DECIMAL:
        return f"{value:,.2f}"
    return f"{round(value):,}"


def change(value, before, fmt: str | None, share: bool) -> tuple[str, str]:
    """The change and the change % (shares: percentage points and no %), signed."""
    absolute, relative = figure_change(value, before, share)
    if absolute is None:
        return DASH, DASH
    if share:
        text = f"{absolute:+.1f} pt"
    elif fmt == EXCEL_DECIMAL:
        text = f"{absolute:+,.2f}"
    else:
        text = f"{round(absolute):+,}"
    return text, (DASH if relative is None else f"{relative:+.1%}")


def compact(value: float) -> str:
    """An axis label: 1.2M, 350k, 980."""
    for limit, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= limit:
            return f"{value / limit:.3g}{suffix}"
    return f"{value:.3g}" if value != int(value) else f"{int(value):,}"


def nice_step(value: float) -> float:
    """The smallest 1, 2 or 5 x 10^k at least ``value`` (at least 1: the charts count customers and units)."""
    if value <= 1:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 5, 10):
        if step * power >= value:
            return step * power
    return 10 * power


def blend(colours: Sequence[str], t: float) -> str:
    """The colour at ``t`` (0..1) of a scale through ``colours`` (hex RGB), spaced evenly."""
    t = min(1.0, max(0.0, t))
    span = len(colours) - 1
    i = min(int(t * span), span - 1)
    local = t * span - i
    a, b = colours[i], colours[i + 1]
    rgb = [round(int(a[k : k + 2], 16) * (1 - local) + int(b[k : k + 2], 16) * local) for k in (0, 2, 4)]
    return "".join(f"{c:02X}" for c in rgb)


def table(header: Sequence[str], rows: Sequence[str], cls: str = "", caption: str = "") -> str:
    """A table in a box that scrolls sideways on a narrow screen; ``rows`` are ready ``<tr>`` strings."""
    head = "".join(f'<th scope="col">{h}</th>' for h in header)
    cap = f"<caption class='note'>{caption}</caption>" if caption else ""
    return (
        f'<div class="scroll"><table class="{cls}">{cap}<thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table></div>"
    )


def row(label: str, cells: Sequence[str], cls: str = "", attrs: str = "") -> str:
    klass = f' class="{cls}"' if cls else ""
    return f'<tr{klass}{attrs}><th scope="row">{label}</th>{"".join(f"<td>{c}</td>" for c in cells)}</tr>'


def swatch(colour: str) -> str:
    return f'<span class="sw" style="background:#{colour}" aria-hidden="true"></span>'


# --------------------------------------------------------------------------- SVG charts


class Charts:
    """Numbers the charts of one page (their ids must be unique) and counts them."""

    def __init__(self) -> None:
        self.count = 0

    def _open(self, width: int, height: int, title: str, desc: str) -> str:
        self.count += 1
        ident = f"chart{self.count}"
        return (
            f'<svg viewBox="0 0 {width} {height}" role="img" aria-label="{esc(title)}" '
            f'aria-labelledby="{ident}t {ident}d">'
            f'<title id="{ident}t">{esc(title)}</title><desc id="{ident}d">{esc(desc)}</desc>'
        )

    def bars(self, title: str, items: Sequence[tuple[str, float, str]]) -> str:
        """Horizontal bars: one per (label, value, hex colour), the value written after each bar."""
        width, label_w, right, bar_h, gap = 400, 78, 64, 20, 8
        height = len(items) * (bar_h + gap) + gap
        top = max((v for _, v, _ in items), default=0) or 1
        desc = "; ".join(f"{label}: {number(v)}" for label, v, _ in items)
        parts = [self._open(width, height, title, desc)]
        for i, (label, value, colour) in enumerate(items):
            y = gap + i * (bar_h + gap)
            w = (width - label_w - right) * value / top
            parts.append(
                f'<text x="{label_w - 6}" y="{y + bar_h * 0.7:.1f}" font-size="12" text-anchor="end">{esc(label)}</text>'
                f'<rect x="{label_w}" y="{y}" width="{w:.1f}" height="{bar_h}" fill="#{colour}" stroke="#0003"/>'
                f'<text x="{label_w + w + 5:.1f}" y="{y + bar_h * 0.7:.1f}" font-size="12">{number(value)}</text>'
            )
        parts.append("</svg>")
        return "".join(parts)

    def trend(
        self,
        title: str,
        months: Sequence[date],
        series: Sequence[tuple[str, Sequence[float], str]],
        kind: str = "line",
    ) -> str:
        """Months along x; ``series`` of (name, values, hex colour) as lines, or as bars (the first series)."""
        width, height, left, right, top, bottom = 400, 230, 46, 10, 26, 26
        plot_w, plot_h = width - left - right, height - top - bottom
        # four grid steps of a round size up to the highest value
        peak = 4 * nice_step(max((v or 0 for _, values, _ in series for v in values), default=0) / 4)
        n = max(len(months), 1)
        step = plot_w / n

        def x(i: int) -> float:
            return left + step * (i + 0.5)

        def y(v: float) -> float:
            return top + plot_h * (1 - (v or 0) / peak)

        last = "; ".join(f"{name} {months[-1]:%b %Y}: {number(values[-1])}" for name, values, _ in series if values)
        desc = f"{len(months)} months to {months[-1]:%B %Y}. {last}" if months else "No month in that range."
        parts = [self._open(width, height, title, desc)]
        for k in range(5):  # horizontal grid lines and their labels
            v = peak * k / 4
            parts.append(
                f'<line x1="{left}" x2="{width - right}" y1="{y(v):.1f}" y2="{y(v):.1f}" stroke="#e4e7eb"/>'
                f'<text x="{left - 4}" y="{y(v) + 4:.1f}" font-size="10" text-anchor="end" fill="#52606d">{compact(v)}</text>'
            )
        every = 1 if n <= 8 else (3 if n <= 24 else 6)
        for i, m in enumerate(months):
            if (len(months) - 1 - i) % every == 0:  # label the report month and every few months before it
                parts.append(
                    f'<text x="{x(i):.1f}" y="{height - 8}" font-size="10" text-anchor="middle" fill="#52606d">'
                    f"{m:%b %y}</text>"
                )
        if kind == "bars":
            name, values, colour = series[0]
            for i, v in enumerate(values):
                parts.append(
                    f'<rect x="{x(i) - step * 0.35:.1f}" y="{y(v):.1f}" width="{step * 0.7:.1f}" '
                    f'height="{top + plot_h - y(v):.1f}" fill="#{colour}"/>'
                )
        else:
            for name, values, colour in series:
                points = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in enumerate(values))
                parts.append(f'<polyline points="{points}" fill="none" stroke="#{colour}" stroke-width="2"/>')
                if len(values) == 1:  # a single month is a point, not a line
                    parts.append(f'<circle cx="{x(0):.1f}" cy="{y(values[0]):.1f}" r="3" fill="#{colour}"/>')
        legend_x = left
        for name, _, colour in series:
            parts.append(
                f'<rect x="{legend_x}" y="6" width="10" height="10" fill="#{colour}"/>'
                f'<text x="{legend_x + 14}" y="15" font-size="11">{esc(name)}</text>'
            )
            legend_x += 22 + 6.5 * len(name)
        parts.append(
            f'<line x1="{left}" x2="{width - right}" y1="{top + plot_h}" y2="{top + plot_h}" stroke="#9aa5b1"/>'
        )
        parts.append("</svg>")
        return "".join(parts)


def figure(caption: str, svg: str) -> str:
    return f"<figure><figcaption>{esc(caption)}</figcaption>{svg}</figure>"


# --------------------------------------------------------------------------- the sections


def _kpis(con, month: date, held: set[date]) -> str:
    prev, year_ago = add_months(month, -1), add_months(month, -12)
    by_month = kpi_values(con, month, held)
    now, before, last_year = by_month.get(month, {}), by_month.get(prev), by_month.get(year_ago)
    formats = {key: (label, fmt) for key, label, fmt, _ in KPIS}
    cards = []
    for key in HEADLINE_KPIS:
        label, fmt = formats[key]
        share = key in SHARE_KPIS
        deltas = []
        for other, name in ((before, "M-1"), (last_year, "M-12")):
            if other is not None:
                deltas.append(f"{change(now.get(key), other.get(key), fmt, share)[0]} vs {name}")
        cards.append(
            f'<div class="card" data-kpi="{key}"><div class="label">{esc(label)}</div>'
            f'<div class="value">{number(now.get(key), fmt)}</div>'
            f'<div class="delta">{esc("; ".join(deltas) or "no earlier month held")}</div></div>'
        )
    rows = []
    for key, label, fmt, definition in KPIS:
        share = key in SHARE_KPIS
        value = now.get(key)
        p = before.get(key) if before else None
        y = last_year.get(key) if last_year else None
        rows.append(
            row(
                f'<span title="{esc(definition)}">{esc(label)}</span>',
                [number(value, fmt), number(p, fmt), *change(value, p, fmt, share)]
                + [number(y, fmt), *change(value, y, fmt, share)],
                attrs=f' data-kpi="{key}"',
            )
        )
    notes = [
        f"{name} is not in the warehouse: its columns show {DASH}."
        for o, name in ((before, "M-1"), (last_year, "M-12"))
        if o is None
    ]
    header = [
        "KPI",
        f"{month:%b %Y}",
        f"{prev:%b %Y} (M-1)",
        "Change",
        "Change %",
        f"{year_ago:%b %Y} (M-12)",
        "Change",
        "Change %",
    ]
    return (
        f'<div class="cards">{"".join(cards)}</div>'
        + table(header, rows, "kpis")
        + "".join(f'<p class="note">{esc(n)}</p>' for n in notes)
        + '<p class="note">Changes of shares are in percentage points (pt); Change % is relative to the earlier month. '
        "Hover a KPI for its definition (docs/outputs.md).</p>"
    )


def _tier_mix(con, month: date, charts: Charts, held: set[date]) -> str:
    prev = add_months(month, -1)
    rows = {r[0]: r[1:] for r in con.execute(TIER_MIX_SQL, [month, prev, month, month, prev]).fetchall()}
    active = sum((r[0] or 0) for t, r in rows.items() if t != "Not Active")
    evaluated = sum((r[0] or 0) for r in rows.values())
    bars = [(tier, rows.get(tier, (0,))[0] or 0, style.TIER_COLOURS[tier]) for tier in TIERS]
    prev_held = prev in held  # else M-1's cells are blank, not 0
    out = []
    for tier in (*TIERS, "Not Active"):
        customers, customers_prev, units = (v or 0 for v in rows.get(tier, (0, 0, 0)))
        colour = style.TIER_COLOURS.get(tier, style.NO_TIER_COLOUR)
        out.append(
            row(
                swatch(colour) + esc(tier),
                [
                    number(customers),
                    number(customers / active, SHARE) if active and tier != "Not Active" else DASH,
                    number(customers / evaluated, SHARE) if evaluated else DASH,
                    number(customers_prev) if prev_held else DASH,
                    f"{customers - customers_prev:+,}" if prev_held else DASH,
                    number(units),
                ],
            )
        )
    out.append(row("Total", [number(evaluated), "", "", "", "", ""], "total"))
    chart = charts.bars(f"Active customers by value tier, {month:%b %Y}", bars)
    header = [
        "Value tier",
        "Customers",
        "Share of Active",
        "Share of evaluated",
        f"{prev:%b %Y}",
        "Change",
        "Units 12 m",
    ]
    return (
        '<div class="pair">'
        + figure(f"Active customers by value tier, {month:%B %Y}", chart)
        + f"<div>{table(header, out)}</div></div>"
        + '<p class="note">Active customers by RFMT value tier (business rules 5.2); Not Active customers have no tier.</p>'
    )


def _trends(con, month: date, charts: Charts) -> str:
    rows = trends(con, month)
    if not rows:
        return '<p class="note">No month of the warehouse in the 24 months to the report month.</p>'
    months = [r["report_month"] for r in rows]
    column = lambda name: [r[name] or 0 for r in rows]  # noqa: E731 - one column of TREND_COLUMNS
    parts = [
        figure(
            "Active and evaluated customers",
            charts.trend(
                f"Active and evaluated customers, 24 months to {month:%b %Y}",
                months,
                [
                    ("Active", column("active"), LINE_COLOURS["Active"]),
                    ("Evaluated", column("evaluated"), LINE_COLOURS["Evaluated"]),
                ],
            ),
        ),
        figure(
            "Units bought per month",
            charts.trend(
                f"Units bought per month, 24 months to {month:%b %Y}",
                months,
                [("Units", column("units_month"), LINE_COLOURS["units"])],
                kind="bars",
            ),
        ),
        figure(
            "Lifecycle events per month",
            charts.trend(
                f"New, Lost and Reactivated customers per month, 24 months to {month:%b %Y}",
                months,
                [(event, column(EVENT_COLUMNS[event]), EVENT_COLOURS[event]) for event in EVENTS],
            ),
        ),
    ]
    shown = [c for c in TREND_COLUMNS[1:] if c[0] not in TIERS]  # the tiers have their own section
    body = [row(f"{r['report_month']:%b %Y}", [number(r[c], fmt) for c, _, fmt in shown]) for r in reversed(rows)]
    return (
        f'<div class="charts">{"".join(parts)}</div>'
        + "<h3>The figures, newest month first</h3>"
        + table([TREND_COLUMNS[0][1], *(heading for _, heading, _ in shown)], body)
    )


def _lifecycle(con, month: date, held: set[date]) -> str:
    prev, year_ago = add_months(month, -1), add_months(month, -12)
    totals: dict[tuple, float] = {}
    for m, stage, event, customers, units in con.execute(LIFECYCLE_SQL, [month, prev, year_ago]).fetchall():
        for key in ((m, "stage", stage), (m, "event", event), (m, "all", None)):
            totals[key] = totals.get(key, 0) + (customers or 0)
        totals[(m, "units", event)] = totals.get((m, "units", event), 0) + (units or 0)
    evaluated = totals.get((month, "all", None), 0)

    def held_count(m: date, kind: str, value) -> str:
        return number(totals.get((m, kind, value), 0)) if m in held else DASH

    events = [
        row(
            esc(e),
            [
                number(totals.get((month, "event", e), 0)),
                held_count(prev, "event", e),
                held_count(year_ago, "event", e),
                number(totals.get((month, "units", e), 0)),
                number(totals.get((month, "event", e), 0) / evaluated, SHARE) if evaluated else DASH,
            ],
        )
        for e in EVENTS
    ]
    stages = []
    for s in STAGES:
        n, p = totals.get((month, "stage", s), 0), totals.get((prev, "stage", s), 0)
        stages.append(
            row(
                esc(s),
                [
                    number(n),
                    number(n / evaluated, SHARE) if evaluated else DASH,
                    held_count(prev, "stage", s),
                    f"{n - p:+,}" if prev in held else DASH,
                ],
            )
        )
    stages.append(row("Total", [number(evaluated), "", "", ""], "total"))
    return (
        '<p class="note">Events: what changed during the month (business rules 5.3). '
        "Stages: where customers stand at its end (5.4).</p>"
        '<div class="pair"><div><h3>Events of the month</h3>'
        + table(
            ["Event", "Customers", f"{prev:%b %Y}", f"{year_ago:%b %Y}", "Units in month", "Share of evaluated"], events
        )
        + "</div><div><h3>Stages at the end of the month</h3>"
        + table(["Stage", "Customers", "Share", f"{prev:%b %Y}", "Change"], stages)
        + "</div></div>"
    )


def _segments(con, month: date) -> str:
    parts = []
    # the tiers per group are in the workbook; the page shows the tier mix once, above
    figures = [c for c in SEGMENT_COLUMNS[1:] if c[0] not in TIERS]
    for column, label in (("customer_group", "Customer group"), ("city", "City")):
        rows = segments(con, month, column)
        shown, rest = rows[:SEGMENT_ROWS], rows[SEGMENT_ROWS:]
        if rest:  # the others in one row: their sums (the workbook lists every one)
            other = {name: sum(r[name] or 0 for r in rest) for name, _, _ in figures}
            other["active_share"] = other["active"] / other["customers"] if other["customers"] else None
            shown.append({"segment": f"Other ({len(rest):,})", **other})
        body = [
            row(
                esc(r["segment"] if r["segment"] is not None else "(blank)"),
                [number(r[name], fmt) for name, _, fmt in figures],
            )
            for r in shown
        ]
        parts.append(f"<div><h3>By {label.lower()}</h3>" + table([label, *(h for _, h, _ in figures)], body) + "</div>")
    return f'<div class="pair">{"".join(parts)}</div>'


def _migration(con, month: date) -> str:
    cells = {
        (f, t): n
        for f, t, n in con.execute(
            "SELECT from_tier, to_tier, customers FROM reporting.tier_migration WHERE report_month = ?", [month]
        ).fetchall()
    }
    order = (*TIERS, NO_TIER)
    prev = add_months(month, -1)
    top = max(cells.values(), default=0) or 1
    scale = (COLOR_SCALE["start_color"], COLOR_SCALE["end_color"])
    colour = {**style.TIER_COLOURS, NO_TIER: style.NO_TIER_COLOUR}
    body = []
    for f in order:
        values = [cells.get((f, t), 0) for t in order]
        tds = "".join(f'<td class="c" style="background:#{blend(scale, v / top)}">{number(v)}</td>' for v in values)
        body.append(f'<tr><th scope="row">{swatch(colour[f])}{esc(f)}</th>{tds}<td>{number(sum(values))}</td></tr>')
    totals = [sum(cells.get((f, t), 0) for f in order) for t in order]
    body.append(row("Total M", [number(v) for v in totals] + [number(sum(totals))], "total"))
    stayed = sum(cells.get((t, t), 0) for t in TIERS)
    had_tier = sum(cells.get((f, t), 0) for f in TIERS for t in order)
    header = ["M-1 \\ M", *(swatch(colour[t]) + esc(t) for t in order), "Total M-1"]
    return (
        f'<p class="note">Rows: tier in {prev:%b %Y} (M-1); columns: tier in {month:%b %Y} (M). '
        f"{esc(NO_TIER)} = Not Active, or not yet entered in M-1. Darker green: more customers.</p>"
        + table(header, body, "heat")
        + f'<p class="note">Customers with a tier in M-1 who kept it in M: {stayed:,} of {had_tier:,}.</p>'
    )


def _cohorts(con, month: date) -> str:
    oldest, newest, since = cohort_window(month)
    first_since, last_since = since.start, since[-1]
    data = con.execute(COHORT_SQL, [add_months(oldest, first_since), month, oldest, newest, first_since]).fetchall()
    if not data:
        return (
            f'<p class="note">No first-purchase cohort of the warehouse has reached its month {first_since} '
            f"by {month:%B %Y}.</p>"
        )
    shares: dict[tuple[date, int], float] = {}
    sizes: dict[date, int] = {}
    for cohort, since, size, share in data:
        shares[(cohort, since)] = share
        sizes[cohort] = size  # the cohort's size as of its newest month here
    scale = (COHORT_SCALE["start_color"], COHORT_SCALE["mid_color"], COHORT_SCALE["end_color"])
    body = []
    for cohort in sorted(sizes, reverse=True):
        tds = []
        for since in range(first_since, last_since + 1):
            share = shares.get((cohort, since))
            tds.append(
                '<td class="c"></td>'
                if share is None
                else f'<td class="c" style="background:#{blend(scale, share)}">{share:.0%}</td>'
            )
        body.append(f'<tr><th scope="row">{cohort:%b %Y}</th><td>{number(sizes[cohort])}</td>{"".join(tds)}</tr>')
    header = ["Cohort", "Size", *(str(k) for k in range(first_since, last_since + 1))]
    return (
        '<p class="note">Cohort = month of the first consumable purchase; columns = months since; each cell = share of '
        f"the cohort Active in that month. Months 0-{first_since - 1} are 100% by definition (Active = units in the "
        f"last 12 months), so the table starts at month {first_since}. Red 0%, yellow 50%, green 100%.</p>"
        + table(header, body, "cohorts")
    )


# --------------------------------------------------------------------------- the page


def render(con, month: date) -> tuple[str, int, int]:
    """The page of ``month`` as text, its customers and its number of charts (CrmError for a month not built)."""
    customers = require_month(con, month)
    require_views(con, month, customers)
    charts = Charts()
    # the months of the warehouse, read once: a comparison month not among them is blank, not 0
    held = set(held_months(con))
    bodies = {  # built in page order, so the charts are numbered as they appear
        "kpis": _kpis(con, month, held),
        "tiers": _tier_mix(con, month, charts, held),
        "trends": _trends(con, month, charts),
        "lifecycle": _lifecycle(con, month, held),
        "segments": _segments(con, month),
        "migration": _migration(con, month),
        "cohorts": _cohorts(con, month),
    }
    sections = "".join(
        f'<section id="{key}" aria-labelledby="h-{key}"><h2 id="h-{key}">{esc(heading)}</h2>{bodies[key]}</section>'
        for key, heading in SECTIONS
    )
    page = (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>CRM summary {month:%B %Y}</title><style>{CSS}</style></head><body><main>"
        f"<header><h1>CRM summary {month:%B %Y}</h1>"
        f'<p class="note">{customers:,} evaluated customers; figures of {month:%B %Y} against the previous month '
        "(M-1) and the same month a year earlier (M-12), from reporting.customer_snapshot and the reporting views. "
        f"{esc(UNITS_DEFINITION)}</p></header>"
        f"{sections}"
        '<footer class="note"><p>The Excel workbook of the same month has every figure of this page, their definitions '
        "and the customer list (docs/outputs.md).</p></footer>"
        "</main></body></html>\n"
    )
    return page, customers, charts.count


def write_atomically(text: str, path: Path) -> int:
    """Write ``text`` (UTF-8) under a hidden name next to ``path`` and move it into place; returns the size."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{uuid.uuid4().hex[:8]}.tmp.html")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    except PermissionError as exc:
        tmp.unlink(missing_ok=True)
        raise CrmError(f"{path}: cannot be written ({exc.strerror})") from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path.stat().st_size


def build_html_report(con, month: date, path: str | Path) -> HtmlSummary:
    """Write the HTML report of ``month`` (first day) to ``path`` from the warehouse of ``con``."""
    path = Path(path)
    page, customers, charts = render(con, month)
    size = write_atomically(page, path)
    return HtmlSummary(path, month, customers, [heading for _, heading in SECTIONS], charts, size)


@asset(
    key_prefix="reporting",
    group_name="outputs",
    kinds={"duckdb", "html"},
    partitions_def=DECLARED,
    backfill_policy=BackfillPolicy.single_run(),
    deps=[customer_snapshot, *view_assets],
)
def summary_html(
    context: AssetExecutionContext, warehouse: Warehouse, output_folder: OutputFolder
) -> MaterializeResult:
    """The monthly HTML report ``reports/crm_summary_YYYY-MM.html`` under the output folder, beside the workbook.

    One self-contained page (inline SVG charts, no script, nothing fetched):
    KPIs against M-1 and M-12, tier mix, 24-month trends, lifecycle, groups and
    cities, the tier migration matrix and cohort retention. Like the workbook,
    a run writes the newest ``output_folder.workbook_months`` months (0 = every
    month) and removes the older months' files it recomputed;
    ``crm report --format html`` writes any month.
    """
    window = month_window(context)
    keep = output_folder.workbook_months
    written, rows, extra = months_written(
        window,
        keep,
        lambda month: html_path(output_folder.folder, month),
        "html report",
        "crm report --month {month} --format html",
    )
    total_bytes = 0
    with warehouse.connect(read_only=True) as con:
        for key in written:
            month = key_to_date(key)
            summary = build_html_report(con, month, html_path(output_folder.folder, month))
            rows[key] = summary.customers
            extra[key] = {
                "bytes": summary.bytes,
                "charts": summary.charts,
                "path": MetadataValue.path(str(summary.path)),
            }
            total_bytes += summary.bytes
    add_month_metadata(context, window, rows, {}, extra=extra)
    return MaterializeResult(
        metadata={
            "months": window.months,
            "reports": len(written),
            "bytes": total_bytes,
            "folder": MetadataValue.path(str(output_folder.folder / REPORTS_FOLDER)),
        }
    )


html_assets = [summary_html]
