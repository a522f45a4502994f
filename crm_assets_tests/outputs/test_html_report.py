"""The monthly HTML report, parsed with the standard library's html.parser, and opened in headless Chromium.

Most tests read the page the pipeline wrote for 2024-03 on the small
hand-made warehouse of test_views (5 evaluated customers; 3 Active: 007
Gold, 7 Bronze, C3 Gold; 2 Prospects). The end-to-end tests build a
generated sample of 30 months, so that M-12 exists, numbers run into the
thousands and cohorts reach their month 12, and open its page in Chromium
at a desktop and a phone width. With ``CRM_UPDATE_DOC_IMAGES=1`` they also
write the picture of docs/outputs.md, ``docs/images/html_report.png``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from datetime import date
from html.parser import HTMLParser
from pathlib import Path

import duckdb
import pytest
from dagster import DagsterInstance, materialize

from crm_assets.cli import generate
from crm_assets.cli.main import main
from crm_assets.cli.runner import RANGE_END_TAG, RANGE_START_TAG
from crm_assets.core.errors import CrmError
from crm_assets.core.months import add_months
from crm_assets.core.resources import OutputFolder, Warehouse
from crm_assets.core.rules import TIERS
from crm_assets.outputs import html_report, style

from ..automation.test_e2e import CHROMIUM_FLAGS
from ..conftest import query
from ..pipeline import build, run_pipeline
from .test_views import FEB, JAN, MAR, small, warehouse_copy  # noqa: F401 - the module-scoped warehouse fixture

ROOT = Path(__file__).resolve().parents[2]
DOC_IMAGE = ROOT / "docs" / "images" / "html_report.png"
DOC_IMAGE_MAX_BYTES = 150_000
HEADINGS = [
    "Key figures",
    "Value tier mix",
    "Trends over 24 months",
    "Lifecycle stages and events",
    "Customer groups and cities",
    "Value tier migration",
    "Cohort retention",
]
DASH = "\u2013"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class Page(HTMLParser):
    """What the tests look at in a page: every tag, headings, SVGs (title, label, shapes), tables and text."""

    def __init__(self, text: str):
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict]] = []
        self.headings: list[tuple[str, str]] = []
        self.svgs: list[dict] = []
        self.tables: list[list[list[tuple[str, dict]]]] = []
        self.rows: dict[str, list[str]] = {}  # <tr data-kpi=...> -> its <td> texts
        self.styles: list[str] = []
        self.text: list[str] = []
        self._heading: list[str] | None = None
        self._cell: list[str] | None = None
        self._in: list[str] = []
        self.feed(text)
        self.close()

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append((tag, attrs))
        self._in.append(tag)
        if tag in ("h1", "h2"):
            self._heading = []
        elif tag == "svg":
            self.svgs.append({"attrs": attrs, "title": "", "shapes": [], "texts": []})
        elif tag in ("rect", "polyline", "circle") and self.svgs and "svg" in self._in:
            self.svgs[-1]["shapes"].append((tag, attrs))
        elif tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self.tables[-1].append([])
            self._row_key = attrs.get("data-kpi")
        elif tag in ("td", "th"):
            self._cell = []
            self._cell_attrs = attrs

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)
        self.handle_endtag(tag)

    def handle_endtag(self, tag):
        if tag in ("h1", "h2") and self._heading is not None:
            self.headings.append((tag, " ".join("".join(self._heading).split())))
            self._heading = None
        elif tag in ("td", "th") and self._cell is not None:
            text = " ".join("".join(self._cell).split())
            self.tables[-1][-1].append((text, {**self._cell_attrs, "tag": tag}))
            self._cell = None
        elif tag == "tr" and self._row_key:
            self.rows[self._row_key] = [t for t, a in self.tables[-1][-1] if a["tag"] == "td"]
            self._row_key = None
        while self._in and self._in.pop() != tag:
            pass

    def handle_data(self, data):
        self.text.append(data)
        if self._heading is not None:
            self._heading.append(data)
        if self._cell is not None:
            self._cell.append(data)
        current = self._in[-1] if self._in else None
        if current == "style":
            self.styles.append(data)
        elif current == "title" and "svg" in self._in:
            self.svgs[-1]["title"] += data
        elif current == "text" and "svg" in self._in:
            self.svgs[-1]["texts"].append(data)

    def table_with(self, first_header: str) -> list[list[tuple[str, dict]]]:
        """The table whose first header cell is ``first_header`` (its rows of (text, attrs) cells)."""
        for t in self.tables:
            if t and t[0] and t[0][0][0] == first_header:
                return t
        raise AssertionError(f"no table headed {first_header!r}")


def read(path: Path) -> Page:
    return Page(path.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def march(small):  # noqa: F811
    return read(small.output_dir / "reports" / "crm_summary_2024-03.html")


# --------------------------------------------------------------------------- the figures, worked out again


def expected_kpis(warehouse: Path, month: date) -> dict[str, str] | None:
    """The KPIs of ``month`` as the page should print them, straight from reporting.customer_snapshot
    (None: the month is not in the warehouse)."""
    rows = query(
        warehouse,
        """
        SELECT count(*), sum(CASE WHEN activity_status = 'Active' THEN 1 ELSE 0 END),
            sum(CASE WHEN lifecycle_event = 'New' THEN 1 ELSE 0 END),
            sum(CASE WHEN lifecycle_event = 'Lost' THEN 1 ELSE 0 END),
            sum(CASE WHEN lifecycle_event = 'Reactivated' THEN 1 ELSE 0 END),
            sum(CASE WHEN lifecycle_stage = 'At Risk' THEN 1 ELSE 0 END),
            sum(m1), sum(o6)
        FROM reporting.customer_snapshot WHERE report_month = ?
        """,
        [month],
    )
    evaluated, active, new, lost, reactivated, at_risk, units, orders = rows[0]
    if not evaluated:
        return None
    return {
        "evaluated": f"{evaluated:,}",
        "active": f"{active:,}",
        "active_share": f"{100 * active / evaluated:.1f}%",
        "new": f"{new:,}",
        "lost": f"{lost:,}",
        "reactivated": f"{reactivated:,}",
        "at_risk": f"{at_risk:,}",
        "units_month": f"{int(units + 0.5):,}",
        "orders_6m": f"{orders:,}",
    }


def assert_kpis_match_the_snapshot(page: Page, warehouse: Path, month: date) -> None:
    # columns of the KPI table: the month, M-1, change, change %, M-12, change, change %
    for column, other in ((0, month), (1, add_months(month, -1)), (4, add_months(month, -12))):
        expected = expected_kpis(warehouse, other)
        for key in ("evaluated", "active", "active_share", "new", "lost", "reactivated", "at_risk", "units_month"):
            want = expected[key] if expected else DASH
            assert page.rows[key][column] == want, (key, other)
        if expected:
            assert page.rows["orders_6m"][column] == expected["orders_6m"]


# --------------------------------------------------------------------------- the page of the small warehouse


def test_the_pipeline_writes_one_page_per_month_beside_the_workbooks_and_no_temporary_file(small):  # noqa: F811
    names = sorted(p.name for p in (small.output_dir / "reports").iterdir())
    assert [n for n in names if n.endswith(".html")] == [f"crm_summary_2024-0{m}.html" for m in (1, 2, 3)]
    assert all(n.startswith("crm_summary_") for n in names)  # no hidden temporary left


def test_every_section_heading_in_order_with_an_svg_per_chart(march):
    assert march.headings == [("h1", "CRM summary March 2024"), *(("h2", h) for h in HEADINGS)]
    assert [tag for tag, _ in march.tags if tag in ("section", "h2")] == ["section", "h2"] * len(HEADINGS)
    html_tag = next(attrs for tag, attrs in march.tags if tag == "html")
    assert html_tag["lang"] == "en"
    assert ("title", {}) in march.tags and "CRM summary March 2024" in "".join(march.text)
    viewport = [a for t, a in march.tags if t == "meta" and a.get("name") == "viewport"]
    assert viewport and "width=device-width" in viewport[0]["content"]
    titles = [svg["title"] for svg in march.svgs]
    assert len(titles) == 4
    for words in ("by value tier", "Active and evaluated", "Units bought per month", "Reactivated"):
        assert sum(words in t for t in titles) == 1, words
    for svg in march.svgs:
        assert svg["attrs"]["role"] == "img" and svg["attrs"]["aria-label"] == svg["title"]
        assert svg["shapes"], svg["title"]


def test_units_are_defined_where_they_first_appear(march):
    text = " ".join("".join(march.text).split())
    first = text.lower().index("units")
    assert text[first:].startswith("Units = quantity \u00d7 the product's unit size")
    assert "not items" in text[first : first + 160]


def test_kpis_are_the_snapshots_figures_against_m1_and_m12(small, march):  # noqa: F811
    assert_kpis_match_the_snapshot(march, small.warehouse, MAR)
    # and by hand: Active 3 in March and in February, New 0 against 1, units 100 against 2,500
    assert march.rows["active"][:4] == ["3", "3", "+0", "+0.0%"]
    assert march.rows["new"][:4] == ["0", "1", "-1", "-100.0%"]
    assert march.rows["units_month"][:2] == ["100", "2,500"]
    assert march.rows["active_share"][2:4] == ["+0.0 pt", DASH]
    assert "M-12 is not in the warehouse" in "".join(march.text)


def test_the_tier_mix_bars_have_the_tier_colours_and_the_tier_counts(small, march):  # noqa: F811
    # February: 007 Gold (Silver in January), 7 Bronze, C3 Gold (new)
    february = read(small.output_dir / "reports" / "crm_summary_2024-02.html")
    bars = [a for tag, a in february.svgs[0]["shapes"] if tag == "rect"]
    assert [b["fill"] for b in bars] == [f"#{style.TIER_COLOURS[t]}" for t in TIERS]
    widths = {t: float(b["width"]) for t, b in zip(TIERS, bars)}
    assert widths["Gold"] == pytest.approx(2 * widths["Bronze"]) and widths["Gold"] > 0
    assert widths["Diamond"] == widths["Platinum"] == widths["Silver"] == widths["Passive"] == 0
    counts = {"Gold": "2", "Bronze": "1"}  # the label and the value of each bar
    assert february.svgs[0]["texts"] == [t for tier in TIERS for t in (tier, counts.get(tier, "0"))]
    tiers = {r[0][0]: r[1][0] for r in march.table_with("Value tier")[1:]}
    assert tiers == {"Diamond": "0", "Platinum": "0", "Gold": "2", "Silver": "0", "Bronze": "1", "Passive": "0"} | {
        "Not Active": "2",
        "Total": "5",
    }


def test_the_migration_matrix_is_heat_coloured(march):
    matrix = march.table_with("M-1 \\ M")
    header = [text for text, _ in matrix[0]]
    assert header == ["M-1 \\ M", *TIERS, "(no tier)", "Total M-1"]
    cells = {row[0][0]: row[1:] for row in matrix[1:]}
    gold, no_tier = cells["Gold"], cells["(no tier)"]
    assert gold[TIERS.index("Gold")][0] == "2" and no_tier[len(TIERS)][0] == "2"
    assert cells["Total M"][-1][0] == "5"
    # the largest cell is the scale's green end, an empty cell its white start
    assert "background:#63BE7B" in gold[TIERS.index("Gold")][1]["style"]
    assert "background:#FFFFFF" in gold[0][1]["style"]
    # the row headers carry the tier colours
    swatches = [a["style"] for t, a in march.tags if t == "span" and a.get("class") == "sw"]
    for colour in style.TIER_COLOURS.values():
        assert f"background:#{colour}" in swatches


def test_cohorts_start_at_month_twelve(small, tmp_path):  # noqa: F811
    march_page = read(small.output_dir / "reports" / "crm_summary_2024-03.html")
    text = "".join(march_page.text)
    assert "No first-purchase cohort of the warehouse has reached its month 12" in text  # 3 months of data
    # a warehouse whose cohort view holds older cohorts: only months 12 on are shown, months 0-11 never
    copy = warehouse_copy(
        small,
        tmp_path,
        "INSERT INTO reporting.cohort_retention (report_month, cohort_month, months_since, cohort_size, "
        "active_customers, share_active) VALUES "
        "('2024-03-01', '2023-03-01', 12, 4, 2, 0.5), ('2024-03-01', '2023-01-01', 14, 4, 1, 0.25), "
        "('2024-02-01', '2023-01-01', 13, 4, 4, 1.0), ('2024-03-01', '2023-04-01', 11, 3, 3, 1.0)",
    )
    con = duckdb.connect(str(copy), read_only=True)
    try:
        html_report.build_html_report(con, MAR, tmp_path / "page.html")
    finally:
        con.close()
    table = read(tmp_path / "page.html").table_with("Cohort")
    header = [text for text, _ in table[0]]
    assert header[:3] == ["Cohort", "Size", "12"] and len(header) == 2 + style.COHORT_MONTHS
    rows = {r[0][0]: r for r in table[1:]}
    assert list(rows) == ["Mar 2023", "Jan 2023"]  # newest first; Apr 2023 has not reached month 12
    assert rows["Mar 2023"][2][0] == "50%" and "background:#FFEB84" in rows["Mar 2023"][2][1]["style"]
    assert [c[0] for c in rows["Jan 2023"][2:5]] == ["", "100%", "25%"]
    assert "background:#F8696B" not in rows["Jan 2023"][4][1]["style"]  # 25 %: between red and yellow


def test_nothing_is_fetched_from_anywhere(march, small):  # noqa: F811
    raw = (small.output_dir / "reports" / "crm_summary_2024-03.html").read_text(encoding="utf-8")
    for tag, attrs in march.tags:
        assert tag not in ("script", "link", "img", "iframe", "object", "embed")
        for name in ("src", "href", "srcset", "data", "action"):
            assert name not in attrs, (tag, attrs)
    assert not re.search(r"url\s*\(|@import|@font-face", raw)
    assert "http://" not in raw and "https://" not in raw


def test_text_from_the_data_is_escaped(small, tmp_path):  # noqa: F811
    city = "<script>alert('x')</script> & Co"
    group = 'Retail "<b>"'
    copy = warehouse_copy(
        small,
        tmp_path,
        f"UPDATE reporting.segment_summary SET city = '{city.replace(chr(39), chr(39) * 2)}' WHERE city = 'Lyon'",
        f"UPDATE reporting.segment_summary SET customer_group = '{group}' WHERE customer_group = 'Retail'",
    )
    con = duckdb.connect(str(copy), read_only=True)
    try:
        html_report.build_html_report(con, MAR, tmp_path / "page.html")
    finally:
        con.close()
    raw = (tmp_path / "page.html").read_text(encoding="utf-8")
    page = Page(raw)
    assert not [t for t, _ in page.tags if t in ("script", "b")]
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; Co" in raw
    cities = [r[0][0] for r in page.table_with("City")[1:]]
    groups = [r[0][0] for r in page.table_with("Customer group")[1:]]
    assert city in cities and "Paris" in cities and group in groups


def test_the_file_is_written_atomically(small, tmp_path, monkeypatch):  # noqa: F811
    path = tmp_path / "reports" / "page.html"
    path.parent.mkdir()
    path.write_text("the previous page")

    def refuse(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(html_report.os, "replace", refuse)
    con = duckdb.connect(str(small.warehouse), read_only=True)
    try:
        with pytest.raises(OSError, match="disk full"):
            html_report.build_html_report(con, MAR, path)
    finally:
        con.close()
    assert [p.name for p in path.parent.iterdir()] == ["page.html"] and path.read_text() == "the previous page"


def test_a_month_not_built_or_without_views_is_a_user_error(small, tmp_path):  # noqa: F811
    con = duckdb.connect(str(small.warehouse), read_only=True)
    try:
        with pytest.raises(CrmError, match=r"month 2023-12 is not in the warehouse \(months held: 2024-01..2024-03\)"):
            html_report.build_html_report(con, date(2023, 12, 1), tmp_path / "x.html")
    finally:
        con.close()
    copy = warehouse_copy(small, tmp_path, "DROP TABLE reporting.cohort_retention")
    con = duckdb.connect(str(copy), read_only=True)
    try:
        with pytest.raises(CrmError, match="reporting.cohort_retention not found"):
            html_report.build_html_report(con, MAR, tmp_path / "x.html")
    finally:
        con.close()
    assert not (tmp_path / "x.html").exists()


# --------------------------------------------------------------------------- crm report --format html


def test_crm_report_format_html(small, tmp_path, capsys, monkeypatch):  # noqa: F811
    monkeypatch.setenv("CRM_OUTPUT_DIR", str(tmp_path / "out"))
    assert main(["report", "--month", "2024-02", "--format", "html", "--warehouse", str(small.warehouse)]) == 0
    path = tmp_path / "out" / "reports" / "crm_summary_2024-02.html"
    out = capsys.readouterr().out
    assert f"wrote {path} (5 customers; 7 sections, 4 charts;" in out
    page = read(path)
    assert page.headings[0] == ("h1", "CRM summary February 2024")
    assert_kpis_match_the_snapshot(page, small.warehouse, FEB)
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no xlsx, no temporary
    mine = tmp_path / "mine.html"
    assert (
        main(
            [
                "report",
                "--month",
                "2024-01",
                "--format",
                "html",
                "--out",
                str(mine),
                "--warehouse",
                str(small.warehouse),
            ]
        )
        == 0
    )
    assert read(mine).headings[0] == ("h1", "CRM summary January 2024")


@pytest.mark.parametrize(
    "args, message",
    [
        (["--month", "2023-12"], "crm report: month 2023-12 is not in the warehouse (months held: 2024-01..2024-03)"),
        (
            ["--month", "2024-01", "--out", "report.xlsx"],
            "crm report: --out report.xlsx: the HTML report's file name must end with .html",
        ),
    ],
)
def test_crm_report_html_user_errors_are_one_line_and_exit_2(small, tmp_path, capsys, monkeypatch, args, message):  # noqa: F811
    monkeypatch.chdir(tmp_path)  # where a relative --out would land
    monkeypatch.setenv("CRM_OUTPUT_DIR", str(tmp_path / "out"))
    assert main(["report", *args, "--format", "html", "--warehouse", str(small.warehouse)]) == 2
    err = capsys.readouterr().err
    assert err.strip().splitlines() == [message]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dagster_home"]  # nothing written (conftest's home)


def test_crm_report_refuses_an_unknown_format(small, capsys):  # noqa: F811
    with pytest.raises(SystemExit) as exit_:
        main(["report", "--month", "2024-01", "--format", "pdf", "--warehouse", str(small.warehouse)])
    assert exit_.value.code == 2 and "invalid choice: 'pdf'" in capsys.readouterr().err


# --------------------------------------------------------------------------- the asset


def test_a_long_run_writes_the_newest_months_pages_and_removes_the_older_ones_it_recomputed(small, tmp_path):  # noqa: F811
    reports = tmp_path / "reports"
    reports.mkdir()
    (reports / "crm_summary_2024-01.html").write_text("figures of an earlier run")
    result = materialize(
        [html_report.summary_html],
        resources={
            "warehouse": Warehouse(database=str(small.warehouse)),
            "output_folder": OutputFolder(path=str(tmp_path), workbook_months=2),
        },
        instance=DagsterInstance.ephemeral(),
        tags={RANGE_START_TAG: "2024-01-01", RANGE_END_TAG: "2024-03-01"},
    )
    assert result.success
    assert sorted(p.name for p in reports.iterdir()) == ["crm_summary_2024-02.html", "crm_summary_2024-03.html"]
    by_month = {
        m.materialization.partition: m.materialization.metadata for m in result.get_asset_materialization_events()
    }
    assert "crm report --month 2024-01 --format html writes it" in by_month["2024-01-01"]["html report"].value
    assert by_month["2024-03-01"]["charts"].value == 4 and by_month["2024-03-01"]["rows"].value == 5


def test_a_month_computed_without_customers_gets_its_page(tmp_path):
    """January has only an anonymous customer's line: the month is computed, with no snapshot row."""
    build(
        tmp_path,
        ["P1,Pods,B,consumable,10"],
        ["C1,Ann,Loyalty,Paris,2024-02-10,a@x.org,,1,0,0", "G1,Till,General,Paris,2024-01-01,,,0,0,0"],
        {"2024": ["G,G1,2024-01-05,P1,1,1,S1", "A,C1,2024-02-12,P1,2,2,S1"]},
        "2024-01",
        "2024-02",
        workbook_months=0,
    )
    reports = tmp_path / "warehouse" / "output" / "reports"
    jan = read(reports / "crm_summary_2024-01.html")
    assert jan.rows["evaluated"][0] == "0" and jan.rows["active_share"][0] == DASH
    feb = read(reports / "crm_summary_2024-02.html")
    assert feb.rows["evaluated"][:2] == ["1", "0"] and feb.rows["new"][0] == "1"


# --------------------------------------------------------------------------- in headless Chromium


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    """A generated sample of 30 months (M-12 held, thousands of units, cohorts past month 12) and its page."""
    root = tmp_path_factory.mktemp("html_sample")
    generate.generate(root / "input", customers=400, start="2023-07", end="2025-12")
    warehouse = root / "warehouse" / "crm.duckdb"
    run_pipeline(root / "input", warehouse, "2023-07", "2025-12")
    return warehouse, warehouse.parent / "output" / "reports" / "crm_summary_2025-12.html"


def chromium(profile: Path, *args: str, timeout: int = 120) -> subprocess.CompletedProcess:
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    assert binary, "Debian's chromium package is required (installed by .ci/run)"
    return subprocess.run(
        [binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def assert_png(path: Path, min_bytes: int = 20_000) -> tuple[int, int]:
    """A PNG of more than ``min_bytes`` (not a blank page); returns its width and height."""
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE and len(data) > min_bytes, (path, len(data))
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


@pytest.mark.e2e
def test_the_sample_page_has_the_snapshots_kpis_and_every_section(sample):
    warehouse, page_path = sample
    page = read(page_path)
    assert_kpis_match_the_snapshot(page, warehouse, date(2025, 12, 1))
    assert "," in page.rows["units_month"][0] and DASH not in page.rows["evaluated"]  # thousands; M-12 is held
    assert [h for _, h in page.headings[1:]] == HEADINGS and len(page.svgs) == 4
    cohort_rows = page.table_with("Cohort")[1:]
    assert cohort_rows and cohort_rows[0][0][0] == "Dec 2024" and cohort_rows[0][2][0].endswith("%")


@pytest.mark.e2e
def test_chromium_renders_the_page_at_desktop_and_phone_width(sample, tmp_path):
    _, page_path = sample
    url = page_path.as_uri()
    dom = chromium(tmp_path / "p1", "--window-size=1280,900", "--dump-dom", url).stdout
    rendered = Page(dom)
    assert [h for _, h in rendered.headings] == ["CRM summary December 2025", *HEADINGS]
    assert len(rendered.svgs) == 4 and all(svg["title"] for svg in rendered.svgs)
    desktop = tmp_path / "desktop.png"
    chromium(tmp_path / "p2", "--hide-scrollbars", "--window-size=1280,2000", f"--screenshot={desktop}", url)
    assert assert_png(desktop) == (1280, 2000)

    # Headless Chromium keeps its window at least 500 px wide: the phone is a 390 px frame of a test page,
    # whose script (the report itself has none) measures the report's layout inside the frame.
    (tmp_path / "report.html").write_bytes(page_path.read_bytes())
    (tmp_path / "phone.html").write_text(
        '<!DOCTYPE html><html><body style="margin:0"><iframe id="f" src="report.html" '
        'style="width:390px;height:1600px;border:0"></iframe><script>'
        'document.getElementById("f").addEventListener("load", function () {'
        " var d = this.contentDocument, w = this.contentWindow;"
        ' document.body.setAttribute("data-layout", [w.innerWidth, d.documentElement.scrollWidth,'
        ' d.querySelectorAll("h2").length, d.querySelectorAll("svg").length].join(" ")); });'
        "</script></body></html>"
    )
    phone_url = (tmp_path / "phone.html").as_uri()
    flags = ("--allow-file-access-from-files", "--virtual-time-budget=10000", "--window-size=500,1600")
    dom = chromium(tmp_path / "p3", *flags, "--dump-dom", phone_url).stdout
    layout = re.search(r'data-layout="(\d+) (\d+) (\d+) (\d+)"', dom)
    assert layout, dom[-500:]
    viewport, page_width, sections, svgs = map(int, layout.groups())
    assert viewport == 390 and page_width <= viewport  # wide tables scroll inside their box, the page does not
    assert (sections, svgs) == (len(HEADINGS), 4)
    phone = tmp_path / "phone.png"
    chromium(tmp_path / "p4", *flags, f"--screenshot={phone}", phone_url)
    assert assert_png(phone) == (500, 1600)

    if os.environ.get("CRM_UPDATE_DOC_IMAGES") == "1":
        # 1,000 px wide: the page laid out 1,333 CSS px wide, drawn at 0.75, from its tier mix down (a frame
        # opened at #tiers: a headless screenshot does not follow a fragment of the page itself)
        (tmp_path / "doc.html").write_text(
            '<!DOCTYPE html><html><body style="margin:0;overflow:hidden"><iframe src="report.html#tiers" '
            'style="width:1333px;height:1120px;border:0;display:block"></iframe></body></html>'
        )
        chromium(
            tmp_path / "p5",
            "--hide-scrollbars",
            "--virtual-time-budget=10000",
            "--force-device-scale-factor=0.75",
            "--window-size=1333,1120",
            f"--screenshot={DOC_IMAGE}",
            (tmp_path / "doc.html").as_uri(),
        )
    assert assert_png(DOC_IMAGE)[0] == 1000 and DOC_IMAGE.stat().st_size < DOC_IMAGE_MAX_BYTES


def test_beyond_the_largest_cities_the_others_are_one_row_of_their_sums(small, tmp_path, monkeypatch):  # noqa: F811
    monkeypatch.setattr(html_report, "SEGMENT_ROWS", 1)
    con = duckdb.connect(str(small.warehouse), read_only=True)
    try:
        html_report.build_html_report(con, MAR, tmp_path / "page.html")
        cities = con.execute(
            "SELECT city, sum(customers) FROM reporting.segment_summary WHERE report_month = ? GROUP BY 1 "
            "ORDER BY 2 DESC, 1",
            [MAR],
        ).fetchall()
    finally:
        con.close()
    rows = [[cell[0] for cell in r] for r in read(tmp_path / "page.html").table_with("City")[1:]]
    assert len(cities) > 2 and [r[0] for r in rows] == [cities[0][0], f"Other ({len(cities) - 1})"]
    assert rows[1][1] == f"{sum(n for _, n in cities[1:]):,}"
