"""The column contract of every table the layers write: name, type, description (and list format).

Each layer's ``CREATE TABLE`` statements, Dagster's ``dagster/column_schema``
metadata, the Excel list formats and the tables of docs/warehouse.md (kept
true by a test) come from here. A new column is declared once, here, and
computed by its layer's SQL.
"""

from crm_assets.core.builds import MONTH_BUILDS, MONTH_SOURCES
from crm_assets.core.columns import (
    EXCEL_COUNT,
    EXCEL_DATE,
    EXCEL_DECIMAL,
    EXCEL_INTEGER,
    EXCEL_MONTH_KEY,
    EXCEL_TEXT,
    Column,
    Table,
    col,
)

_FILE = col("source_file VARCHAR NOT NULL", "Name of the file the line was read from.")
_LINE = col("line_number BIGINT NOT NULL", "Line of the file (the header is line 1).")
_EXTRA = col("extra_columns VARCHAR", "Columns beyond the contract, as JSON (blank when none).")
_PARTITION = col("partition_month DATE NOT NULL", "The calendar month whose partition holds the row.")
REPORT_MONTH = col("report_month DATE NOT NULL", "Report month (first day of the month).")
_CUSTOMER = col("customer_id VARCHAR NOT NULL", "Customer id as text, trimmed, as in the customer master.")

# raw

SALES_TRANSACTIONS = Table(
    "raw.sales_transactions",
    "The valid lines of the yearly transactions files, typed, with where each came from.",
    (
        _FILE,
        _LINE,
        col("invoice_id VARCHAR", "Invoice id as in the file."),
        col("customer_id VARCHAR", "Customer id as in the file."),
        col("invoice_date DATE", "Invoice date."),
        col("product_id VARCHAR", "Product id as in the file."),
        col("quantity DOUBLE", "Quantity (negative for returns)."),
        col("revenue DOUBLE", "Revenue of the line."),
        col("store_id VARCHAR", "Store id (blank when the file has none)."),
        _EXTRA,
        col("invoice_month DATE NOT NULL", "First day of the invoice month."),
        col(
            "partition_month DATE NOT NULL",
            "The partition holding the line: its invoice month, or the calendar's first month for older lines.",
        ),
    ),
    "valid file line",
)
RAW_CUSTOMERS = Table(
    "raw.customers",
    "The customer master as loaded: the valid lines, values as text except the parsed date.",
    (
        _FILE,
        _LINE,
        col("customer_id VARCHAR", "Customer id."),
        col("customer_name VARCHAR", "Name."),
        col("customer_group VARCHAR", "Customer group."),
        col("city VARCHAR", "City."),
        col(
            "created_date DATE",
            "Date the customer was created (blank when the file has none, or it is empty or not a valid date).",
        ),
        col("created_date_text VARCHAR", "created_date as written in the file."),
        col("email VARCHAR", "E-mail address."),
        col("mobile_number VARCHAR", "Mobile number."),
        col("opt_email VARCHAR", "E-mail consent as written in the file."),
        col("opt_sms VARCHAR", "SMS consent as written in the file."),
        col("opt_phone VARCHAR", "Phone consent as written in the file."),
        _EXTRA,
    ),
    "valid file line",
)
RAW_PRODUCTS = Table(
    "raw.products",
    "The product master as loaded.",
    (
        _FILE,
        _LINE,
        col("product_id VARCHAR", "Product id."),
        col("product_name VARCHAR", "Name."),
        col("brand VARCHAR", "Brand."),
        col("category VARCHAR", "Category (Consumable, Device, ...)."),
        col("unit_size DOUBLE", "Units per item (capsules per pack)."),
        col("unit_size_text VARCHAR", "unit_size as written in the file."),
        _EXTRA,
    ),
    "valid file line",
)
REJECTED_ROWS = Table(
    "raw.rejected_rows",
    "Every line read and not loaded, with the reason.",
    (
        col("file_kind VARCHAR NOT NULL", "sales_transactions, customers or products."),
        _FILE,
        _LINE,
        col("raw_line VARCHAR", "The line as read."),
        col("reason VARCHAR NOT NULL", "Why it was rejected (the column and the value)."),
    ),
    "rejected file line",
)
FILE_MONTHS = Table(
    "raw.file_months",
    "Which version of each transactions file every month's rows come from.",
    (
        _FILE,
        col("file_digest VARCHAR NOT NULL", "SHA-256 of the version last read."),
        col("partition_month DATE NOT NULL", "A month the file has lines of."),
        col(
            "loaded BOOLEAN NOT NULL",
            "The month's rows in the warehouse are that version's (false while a month holds an older version's rows).",
        ),
    ),
    "file and month",
)
FILE_LOADS = Table(
    "raw.file_loads",
    "The last load of each file: what was read, loaded and rejected.",
    (
        col("file_kind VARCHAR NOT NULL", "sales_transactions, customers or products."),
        _FILE,
        col("file_bytes BIGINT", "Size of the file."),
        col("rows_read BIGINT", "Data lines read."),
        col("rows_valid BIGINT", "Lines loaded."),
        col("rows_rejected BIGINT", "Lines rejected (raw.rejected_rows)."),
        col("blank_lines BIGINT", "Empty lines skipped."),
        col("loaded_at TIMESTAMP", "When the file was loaded."),
        col("file_digest VARCHAR", "SHA-256 of the version loaded."),
    ),
    "file",
)
FILE_PROFILES = Table(
    "raw.file_profiles",
    "The profile of every transactions file version read: the months of the data and the change detection come "
    "from it without reading an unchanged file again.",
    (
        _FILE,
        col("file_digest VARCHAR NOT NULL", "SHA-256 of the version."),
        col("rows_read BIGINT NOT NULL", "Data lines read."),
        col("rows_valid BIGINT NOT NULL", "Valid lines."),
        col("rows_rejected BIGINT NOT NULL", "Rejected lines."),
        col("invoice_month DATE", "An invoice month of the valid lines (blank for a file without one)."),
        col("lines BIGINT", "Valid lines of the month."),
        col("content_hash HUGEINT", "Sum of the month's row hashes."),
        col("last_invoice_date DATE", "Latest invoice date of the month's lines."),
    ),
    "transactions file version and invoice month",
)
RAW_TABLES = (
    SALES_TRANSACTIONS,
    RAW_CUSTOMERS,
    RAW_PRODUCTS,
    REJECTED_ROWS,
    FILE_MONTHS,
    FILE_LOADS,
    FILE_PROFILES,
    MONTH_SOURCES,
)
# what the layers after raw read, and the rejected rows: the tables the Spark engine gets a Parquet copy of (the
# load's own records stay in the landing file)
RAW_DATA_TABLES = (SALES_TRANSACTIONS, RAW_CUSTOMERS, RAW_PRODUCTS, REJECTED_ROWS, FILE_LOADS, MONTH_SOURCES)

# enriched

ENRICHED_CUSTOMERS = Table(
    "enriched.customers",
    "The customer master cleaned: ids and groups trimmed, consent as booleans.",
    (
        _CUSTOMER,
        col("customer_name VARCHAR", "Name."),
        col("customer_group VARCHAR", "Customer group, trimmed."),
        col("city VARCHAR", "City."),
        col("created_date DATE", "Date the customer was created."),
        col("email VARCHAR", "E-mail address."),
        col("mobile_number VARCHAR", "Mobile number."),
        col("opt_email BOOLEAN NOT NULL", "E-mail consent (blank or unknown = false)."),
        col("opt_sms BOOLEAN NOT NULL", "SMS consent (blank or unknown = false)."),
        col("opt_phone BOOLEAN NOT NULL", "Phone consent (blank or unknown = false)."),
        col("is_anonymous BOOLEAN NOT NULL", "The anonymous (walk-in) customer: not evaluated."),
    ),
    "customer",
)
ENRICHED_TRANSACTIONS = Table(
    "enriched.transactions",
    "Every loaded transaction line with its product's category and units and the flags the rules use.",
    (
        _PARTITION,
        col("invoice_month DATE NOT NULL", "First day of the invoice month."),
        col("invoice_date DATE NOT NULL", "Invoice date."),
        _FILE,
        _LINE,
        col("invoice_id VARCHAR", "Invoice id, trimmed."),
        col("customer_id VARCHAR", "Customer id, trimmed."),
        col("product_id VARCHAR", "Product id, trimmed."),
        col("store_id VARCHAR", "Store id."),
        col("quantity DOUBLE", "Quantity."),
        col("revenue DOUBLE", "Revenue."),
        col("category VARCHAR", "Category of the product (blank for an unknown product)."),
        col("unit_size DOUBLE", "Units per item of the product."),
        col(
            "units DECIMAL(38,6)",
            "quantity x unit_size, rounded to 6 decimals, for consumable lines (blank otherwise).",
        ),
        col("is_known_customer BOOLEAN NOT NULL", "The customer is in the customer master."),
        col("is_known_product BOOLEAN NOT NULL", "The product is in the product master."),
        col("is_anonymous BOOLEAN NOT NULL", "The line is the anonymous customer's."),
        col("is_evaluated BOOLEAN NOT NULL", "A known, not anonymous customer."),
        col("is_consumable BOOLEAN NOT NULL", "The product is a consumable."),
        col("is_device BOOLEAN NOT NULL", "The product is a device."),
        col(
            "is_qualifying BOOLEAN NOT NULL",
            "A consumable line with quantity > 0 (the features count those of evaluated customers).",
        ),
    ),
    "loaded transaction line",
)
ENRICHED_TABLES = (ENRICHED_CUSTOMERS, ENRICHED_TRANSACTIONS)

# features

CUSTOMER_MONTH_ACTIVITY = Table(
    "features.customer_month_activity",
    "The compact monthly aggregates every feature is computed from.",
    (
        _PARTITION,
        col("activity_month DATE NOT NULL", "The invoice month."),
        _CUSTOMER,
        col("units DECIMAL(38,6) NOT NULL", "Units of the qualifying lines."),
        col("qualifying_lines BIGINT NOT NULL", "Qualifying lines."),
        col("orders BIGINT NOT NULL", "Distinct invoices with a qualifying line."),
        col("first_consumable_date DATE", "First qualifying consumable purchase of the month."),
        col("last_consumable_date DATE", "Last qualifying consumable purchase of the month."),
        col("first_device_date DATE", "First device purchase of the month."),
        col("first_line_date DATE NOT NULL", "First line of the month."),
    ),
    "evaluated customer and invoice month",
)
REPEATED_ORDERS = Table(
    "features.repeated_orders",
    "Invoice ids a customer has in more than one month, so an order is counted once.",
    (
        _PARTITION,
        col("activity_month DATE NOT NULL", "The later month of the invoice."),
        _CUSTOMER,
        col("invoice_id VARCHAR NOT NULL", "The invoice id."),
        col("previous_month DATE NOT NULL", "The latest earlier month with the same invoice id."),
    ),
    "customer, invoice and month",
)
_UNITS = "DECIMAL(38,6) NOT NULL"
CUSTOMER_FEATURES = Table(
    "features.customer_features",
    "The consumption features of every evaluated customer (docs/business_rules.md), with the previous month's.",
    (
        REPORT_MONTH,
        _CUSTOMER,
        col("entry_date DATE", "The customer's entry date (the rules' first sign of the customer)."),
        col(f"m_total {_UNITS}", "Units over the whole history up to the end of the month."),
        col(f"m1 {_UNITS}", "Units in the report month."),
        col(f"m6 {_UNITS}", "Units in the 6 months ending with the report month."),
        col(f"m12 {_UNITS}", "Units in the 12 months ending with the report month."),
        col(f"m13 {_UNITS}", "Units in the 13 months ending with the report month."),
        col(f"m24 {_UNITS}", "Units in the 24 months ending with the report month."),
        col(f"m25 {_UNITS}", "Units in the 25 months ending with the report month."),
        col("o6 BIGINT NOT NULL", "Orders in 6 months."),
        col("o12 BIGINT NOT NULL", "Orders in 12 months."),
        col("lines_total BIGINT NOT NULL", "Qualifying lines over the whole history."),
        col("lines_m1 BIGINT NOT NULL", "Qualifying lines in the month."),
        col("lines_m6 BIGINT NOT NULL", "Qualifying lines in 6 months."),
        col("lines_m12 BIGINT NOT NULL", "Qualifying lines in 12 months."),
        col("lines_m13 BIGINT NOT NULL", "Qualifying lines in 13 months."),
        col("first_device_purchase_date DATE", "First device purchase."),
        col("first_consumable_purchase_date DATE", "First qualifying consumable purchase."),
        col("last_consumable_purchase_date DATE", "Last qualifying consumable purchase."),
        col("months_since_last_purchase INTEGER", "Calendar months from the last purchase to the report month."),
        col("tenure_months INTEGER", "Calendar months from the first purchase to the report month, both counted."),
        col("avg_monthly_consumption DOUBLE NOT NULL", "AMC = m6 / 6."),
        col("avg_order_size DOUBLE", "AOS = m6 / o6 (blank when o6 = 0)."),
        col("prev_entered BOOLEAN NOT NULL", "The customer had entered by the previous month."),
        col("prev_lines_m12 BIGINT NOT NULL", "lines_m12 of the previous month."),
        col("prev_lines_m6 BIGINT NOT NULL", "lines_m6 of the previous month."),
        col(f"prev_m6 {_UNITS}", "m6 of the previous month."),
        col("prev_o6 BIGINT NOT NULL", "o6 of the previous month."),
    ),
    "evaluated customer and report month",
)
FEATURES_TABLES = (CUSTOMER_MONTH_ACTIVITY, REPEATED_ORDERS, CUSTOMER_FEATURES)

# lifecycle, rfmt

CUSTOMER_LIFECYCLE = Table(
    "lifecycle.customer_lifecycle",
    "Activity status, lifecycle stage and event of every evaluated customer.",
    (
        REPORT_MONTH,
        _CUSTOMER,
        col("activity_status VARCHAR NOT NULL", "Active or Not Active."),
        col("lifecycle_stage VARCHAR NOT NULL", "Prospect, New, Active, At Risk or Lost."),
        col("lifecycle_event VARCHAR", "New, Lost or Reactivated (blank when nothing changed)."),
    ),
    "evaluated customer and report month",
)
LIFECYCLE_TABLES = (CUSTOMER_LIFECYCLE,)

CUSTOMER_RFMT = Table(
    "rfmt.customer_rfmt",
    "Value tier and RFMT scores of every evaluated customer.",
    (
        REPORT_MONTH,
        _CUSTOMER,
        col("value_tier VARCHAR", "Diamond, Platinum, Gold, Silver, Bronze or Passive (blank when Not Active)."),
        col("prev_value_tier VARCHAR", "The value tier of the previous month."),
        col("r_score INTEGER", "Recency score 1..5 (blank when Not Active)."),
        col("f_score INTEGER", "Frequency score 1..5 (blank when Not Active)."),
        col("m_score INTEGER", "Monetary (volume) score 1..5 (blank when Not Active)."),
        col("t_score INTEGER", "Tenure score 1..5 (blank when Not Active)."),
    ),
    "evaluated customer and report month",
)
RFMT_TABLES = (CUSTOMER_RFMT,)

# reporting

SNAPSHOT_TABLE = Table(
    "reporting.customer_snapshot",
    "The table users and reports rely on, for every materialized month. Values are spelled as in the business "
    "rules (`Active`, `Not Active`, `Passive`, `Diamond`, `Platinum`, `Gold`, `Silver`, `Bronze`, `Prospect`, "
    "`New`, `At Risk`, `Lost`, `Reactivated`).",
    (
        Column(
            "report_month",
            "DATE",
            "Report month (first day of the month).",
            EXCEL_MONTH_KEY,
            10,
            True,
            label="Report month",
        ),
        Column(
            "customer_id",
            "VARCHAR",
            "Customer id as text, trimmed, exactly as in the customer master (leading zeros kept).",
            EXCEL_TEXT,
            14,
            True,
            label="Customer id",
        ),
        Column(
            "customer_group",
            "VARCHAR",
            "Customer group from the customer master.",
            EXCEL_TEXT,
            16,
            label="Customer group",
        ),
        Column("city", "VARCHAR", "City from the customer master.", EXCEL_TEXT, 16, label="City"),
        Column(
            "m_total",
            "DOUBLE",
            "Units of qualifying consumable lines over the whole history up to the end of the month.",
            EXCEL_DECIMAL,
            12,
            True,
            label="Units, all history",
        ),
        Column("m1", "DOUBLE", "Units bought in the report month.", EXCEL_DECIMAL, 11, True, label="Units in month"),
        Column(
            "m6",
            "DOUBLE",
            "Units bought in the 6 months ending with the report month.",
            EXCEL_DECIMAL,
            11,
            True,
            label="Units 6 m",
        ),
        Column(
            "m12",
            "DOUBLE",
            "Units bought in the 12 months ending with the report month.",
            EXCEL_DECIMAL,
            11,
            True,
            label="Units 12 m",
        ),
        Column(
            "m13",
            "DOUBLE",
            "Units bought in the 13 months ending with the report month.",
            EXCEL_DECIMAL,
            11,
            True,
            label="Units 13 m",
        ),
        Column(
            "m24",
            "DOUBLE",
            "Units bought in the 24 months ending with the report month.",
            EXCEL_DECIMAL,
            11,
            True,
            label="Units 24 m",
        ),
        Column(
            "m25",
            "DOUBLE",
            "Units bought in the 25 months ending with the report month.",
            EXCEL_DECIMAL,
            11,
            True,
            label="Units 25 m",
        ),
        Column(
            "o6",
            "BIGINT",
            "Orders (distinct invoices with a qualifying line) in 6 months.",
            EXCEL_COUNT,
            8,
            True,
            label="Orders 6 m",
        ),
        Column("o12", "BIGINT", "Orders in 12 months.", EXCEL_COUNT, 8, True, label="Orders 12 m"),
        Column(
            "first_device_purchase_date",
            "DATE",
            "First device purchase (quantity > 0) up to the end of the month.",
            EXCEL_DATE,
            12,
            label="First device purchase",
        ),
        Column(
            "first_consumable_purchase_date",
            "DATE",
            "First qualifying consumable purchase.",
            EXCEL_DATE,
            12,
            label="First consumable purchase",
        ),
        Column(
            "last_consumable_purchase_date",
            "DATE",
            "Last qualifying consumable purchase up to the end of the month.",
            EXCEL_DATE,
            12,
            label="Last consumable purchase",
        ),
        Column(
            "months_since_last_purchase",
            "INTEGER",
            "Whole calendar months from the last purchase to the report month (0 = bought in the month; blank when never bought).",
            EXCEL_INTEGER,
            10,
            label="Months since last purchase",
        ),
        Column(
            "tenure_months",
            "INTEGER",
            "Calendar months from the first purchase to the report month, both ends counted (blank when never bought).",
            EXCEL_INTEGER,
            10,
            label="Tenure (months)",
        ),
        Column(
            "avg_monthly_consumption",
            "DOUBLE",
            "AMC = m6 / 6.",
            EXCEL_DECIMAL,
            12,
            True,
            label="Avg monthly units (AMC)",
        ),
        Column(
            "avg_order_size",
            "DOUBLE",
            "AOS = m6 / o6 (blank when o6 = 0).",
            EXCEL_DECIMAL,
            12,
            label="Avg order size (AOS)",
        ),
        Column(
            "activity_status",
            "VARCHAR",
            "Active when m12 > 0, else Not Active.",
            EXCEL_TEXT,
            12,
            True,
            label="Activity status",
        ),
        Column(
            "value_tier",
            "VARCHAR",
            "RFMT value tier of Active customers: Diamond, Platinum, Gold, Silver, Bronze, Passive (blank when Not Active).",
            EXCEL_TEXT,
            11,
            label="Value tier",
        ),
        Column(
            "prev_value_tier",
            "VARCHAR",
            "The value tier the same rules give for the previous month.",
            EXCEL_TEXT,
            11,
            label="Value tier M-1",
        ),
        Column(
            "lifecycle_stage",
            "VARCHAR",
            "Prospect, New, Active, At Risk or Lost at the end of the month.",
            EXCEL_TEXT,
            11,
            True,
            label="Lifecycle stage",
        ),
        Column(
            "lifecycle_event",
            "VARCHAR",
            "What changed in the month: New, Lost, Reactivated (blank when nothing did).",
            EXCEL_TEXT,
            11,
            label="Lifecycle event",
        ),
        Column(
            "r_score",
            "INTEGER",
            "Recency score 1..5 from months since the last purchase (Active only).",
            EXCEL_INTEGER,
            8,
            label="Recency score",
        ),
        Column(
            "f_score",
            "INTEGER",
            "Frequency score 1..5 from o12 (Active only).",
            EXCEL_INTEGER,
            8,
            label="Frequency score",
        ),
        Column(
            "m_score",
            "INTEGER",
            "Monetary (volume) score 1..5 from the rank of m12 among the month's Active customers.",
            EXCEL_INTEGER,
            8,
            label="Volume score",
        ),
        Column(
            "t_score",
            "INTEGER",
            "Tenure score 1..5 from tenure_months (Active only).",
            EXCEL_INTEGER,
            8,
            label="Tenure score",
        ),
        Column(
            "opt_email",
            "BOOLEAN",
            "Consent to e-mail (TRUE/FALSE; blank or unknown in the master = FALSE).",
            None,
            9,
            True,
            label="E-mail consent",
        ),
        Column("opt_sms", "BOOLEAN", "Consent to SMS (as opt_email).", None, 9, True, label="SMS consent"),
        Column("opt_phone", "BOOLEAN", "Consent to phone calls (as opt_email).", None, 9, True, label="Phone consent"),
    ),
    "evaluated customer and report month",
)
# The contact columns of a customer list (crm export), shown only with the customer's consent.
CONTACT_COLUMNS = (
    Column(
        "email",
        "VARCHAR",
        "E-mail address, only when the customer consented to e-mail; blank otherwise.",
        EXCEL_TEXT,
        26,
        label="E-mail",
    ),
    Column(
        "mobile_number",
        "VARCHAR",
        "Mobile number, only when the customer consented to SMS or phone; blank otherwise.",
        EXCEL_TEXT,
        16,
        label="Mobile number",
    ),
)
# The name on a customer list (crm export), beside the id: a list is read, and sent, by people.
NAME_COLUMN = Column(
    "customer_name", "VARCHAR", "Name, from the current customer master.", EXCEL_TEXT, 22, label="Customer name"
)
# crm export --explain, after value_tier: why the customer has its tier (the rule that matched, the one above)
TIER_EXPLANATION_COLUMN = Column(
    "tier_explanation",
    "VARCHAR",
    "Why the value tier: the rule that matched and the one just above it that did not, with the numbers.",
    EXCEL_TEXT,
    60,
    label="Why this tier",
)

SNAPSHOT_MANIFEST = Table(
    "reporting.snapshot_manifest",
    "Every computation of a month of the snapshot, append-only: a change of thresholds always leaves a trace.",
    (
        REPORT_MONTH,
        col("run_id VARCHAR NOT NULL", "The Dagster run."),
        col("computed_at TIMESTAMP NOT NULL", "When."),
        col("rules_version VARCHAR NOT NULL", "Hash of the rule values."),
        col("rules JSON NOT NULL", "The rule values."),
        col("customers BIGINT NOT NULL", "Rows of the month."),
    ),
    "report month and run",
)
SNAPSHOT_CHANGES = Table(
    "reporting.snapshot_changes",
    "When a month already in the snapshot is computed again: what changed (late data made visible).",
    (
        REPORT_MONTH,
        col("run_id VARCHAR NOT NULL", "The Dagster run."),
        col("computed_at TIMESTAMP NOT NULL", "When."),
        col("previous_customers BIGINT NOT NULL", "Rows before."),
        col("customers BIGINT NOT NULL", "Rows after."),
        col("added BIGINT NOT NULL", "Customers new in the month."),
        col("removed BIGINT NOT NULL", "Customers gone from the month."),
        col("changed_status BIGINT NOT NULL", "Customers whose activity status changed."),
        col("changed_tier BIGINT NOT NULL", "Customers whose value tier changed."),
        col("changed_event BIGINT NOT NULL", "Customers whose lifecycle event changed."),
        col("changed_stage BIGINT NOT NULL", "Customers whose lifecycle stage changed."),
        col("changed_any BIGINT NOT NULL", "Customers with any column changed."),
    ),
    "report month and recomputation",
)
REPORTING_TABLES = (SNAPSHOT_TABLE, SNAPSHOT_MANIFEST, SNAPSHOT_CHANGES, MONTH_BUILDS)
LAYER_TABLES = (*RAW_TABLES, *ENRICHED_TABLES, *FEATURES_TABLES, *LIFECYCLE_TABLES, *RFMT_TABLES, *REPORTING_TABLES)
