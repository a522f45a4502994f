"""The column contract of every table the outputs write (the monthly aggregates and the export audit).

The ``CREATE TABLE`` statements, Dagster's ``dagster/column_schema`` metadata
and the tables of docs/warehouse.md come from here, as for the layers
(``crm_assets/layers/tables.py``).
"""

from crm_assets.core.columns import Table, col
from crm_assets.layers.tables import REPORT_MONTH

_CUSTOMERS = col("customers BIGINT NOT NULL", "Customers of the segment.")

SEGMENT_SUMMARY = Table(
    "reporting.segment_summary",
    "Customers and volumes per status, tier, stage, event, group and city.",
    (
        REPORT_MONTH,
        col("activity_status VARCHAR NOT NULL", "Active or Not Active."),
        col("value_tier VARCHAR", "Value tier (blank when Not Active)."),
        col("lifecycle_stage VARCHAR NOT NULL", "Lifecycle stage."),
        col("lifecycle_event VARCHAR", "Lifecycle event of the month (blank when none)."),
        col("customer_group VARCHAR", "Customer group."),
        col("city VARCHAR", "City."),
        _CUSTOMERS,
        col("units_month DOUBLE NOT NULL", "Units bought in the month (sum of m1)."),
        col("units_12m DOUBLE NOT NULL", "Units bought in 12 months (sum of m12)."),
        col("orders_12m BIGINT NOT NULL", "Orders in 12 months (sum of o12)."),
    ),
    "report month and segment",
)
TIER_MIGRATION = Table(
    "reporting.tier_migration",
    "Customers moving from last month's value tier to this month's.",
    (
        REPORT_MONTH,
        col("from_tier VARCHAR NOT NULL", "Value tier of the previous month (a placeholder when it had none)."),
        col("to_tier VARCHAR NOT NULL", "Value tier of the month (a placeholder when it has none)."),
        col("from_order INTEGER NOT NULL", "Sort order of from_tier."),
        col("to_order INTEGER NOT NULL", "Sort order of to_tier."),
        _CUSTOMERS,
    ),
    "report month, tier of last month and tier of the month",
)
COHORT_RETENTION = Table(
    "reporting.cohort_retention",
    "Of the customers who first bought in a month, how many are Active in the report month.",
    (
        REPORT_MONTH,
        col("cohort_month DATE NOT NULL", "Month of the first consumable purchase."),
        col("months_since INTEGER NOT NULL", "Months from the cohort month to the report month."),
        col("cohort_size BIGINT NOT NULL", "Customers of the cohort."),
        col("active_customers BIGINT NOT NULL", "Of them, Active in the report month."),
        col("share_active DOUBLE NOT NULL", "active_customers / cohort_size."),
    ),
    "report month and cohort",
)
CONTACTABLE_CUSTOMERS = Table(
    "reporting.contactable_customers",
    "Customers reachable on each channel: with consent and a contact detail.",
    (
        REPORT_MONTH,
        col("channel VARCHAR NOT NULL", "email, sms, phone, or any of them."),
        col("channel_order INTEGER NOT NULL", "Sort order of the channel."),
        col("customers BIGINT NOT NULL", "Customers of the month."),
        col("consented BIGINT NOT NULL", "Of them, with consent to the channel."),
        col("contactable BIGINT NOT NULL", "Consented and with the contact detail the channel needs."),
        col("contactable_active BIGINT NOT NULL", "Contactable and Active."),
    ),
    "report month and channel",
)
DEVICE_ATTACH = Table(
    "reporting.device_attach",
    "Device owners and how many of them buy consumables.",
    (
        REPORT_MONTH,
        col("customer_group VARCHAR", "Customer group."),
        col("device_owners BIGINT NOT NULL", "Customers who bought a device (first_device_purchase_date set)."),
        col("owners_with_consumable BIGINT NOT NULL", "Of them, with a consumable purchase ever (m_total > 0)."),
        col("owners_without_consumable BIGINT NOT NULL", "Of them, without."),
        col("attach_rate DOUBLE", "owners_with_consumable / device_owners."),
    ),
    "report month and customer group",
)
VIEW_TABLES = (SEGMENT_SUMMARY, TIER_MIGRATION, COHORT_RETENTION, CONTACTABLE_CUSTOMERS, DEVICE_ATTACH)

EXPORT_AUDIT = Table(
    "reporting.export_audit",
    "Every `crm export`: when, with which filters, how many rows, into which file, under which consent rule.",
    (
        col("exported_at TIMESTAMP NOT NULL", "When."),
        col("report_month DATE NOT NULL", "The month exported."),
        col("filters JSON NOT NULL", "The filters given."),
        col("rows BIGINT NOT NULL", "Customers written."),
        col("file VARCHAR NOT NULL", "The file written."),
        col("file_format VARCHAR NOT NULL", "csv or xlsx."),
        col("consent_rule VARCHAR NOT NULL", "The consent rule applied."),
        col("exported_by VARCHAR", "The user who ran it."),
    ),
    "export",
)
OUTPUT_TABLES = (*VIEW_TABLES, EXPORT_AUDIT)
