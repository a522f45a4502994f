"""Outputs for Excel, the browser and Power BI: the assets that read reporting.customer_snapshot.

- ``reporting/segment_summary``, ``reporting/tier_migration``,
  ``reporting/cohort_retention``, ``reporting/contactable_customers``,
  ``reporting/device_attach`` (``views.py``): monthly aggregate tables;
- ``reporting/summary_workbook`` (``workbook.py``): the monthly Excel workbook
  ``reports/crm_summary_YYYY-MM.xlsx``;
- ``reporting/summary_html`` (``html_report.py``): the same month's summary as one
  self-contained web page ``reports/crm_summary_YYYY-MM.html``;
- ``powerbi/star_schema`` (``powerbi.py``): the Parquet star schema under ``powerbi/``.

Customer exports (``exports.py``) are a command, not an asset: they run on
demand with a user's filters (``crm export``). See docs/outputs.md.
"""

from crm_assets.outputs.html_report import html_assets
from crm_assets.outputs.powerbi import powerbi_assets
from crm_assets.outputs.views import view_assets
from crm_assets.outputs.workbook import workbook_assets

# The views are tables computed on the warehouse's engine; the others read the warehouse (through DuckDB on either
# engine) and write files.
reader_assets: list = [*workbook_assets, *html_assets, *powerbi_assets]
output_assets: list = [*view_assets, *reader_assets]
