CREATE SCHEMA IF NOT EXISTS raw;
CREATE TABLE IF NOT EXISTS raw.sales_transactions (
    source_file VARCHAR NOT NULL, line_number BIGINT NOT NULL,
    invoice_id VARCHAR, customer_id VARCHAR, invoice_date DATE, product_id VARCHAR,
    quantity DOUBLE, revenue DOUBLE, store_id VARCHAR, extra_columns VARCHAR,
    invoice_month DATE NOT NULL, partition_month DATE NOT NULL
);
CREATE TABLE IF NOT EXISTS raw.customers (
    source_file VARCHAR NOT NULL, line_number BIGINT NOT NULL,
    customer_id VARCHAR, customer_name VARCHAR, customer_group VARCHAR, city VARCHAR,
    created_date DATE, created_date_text VARCHAR, email VARCHAR, mobile_number VARCHAR,
    opt_email VARCHAR, opt_sms VARCHAR, opt_phone VARCHAR, extra_columns VARCHAR
);
CREATE TABLE IF NOT EXISTS raw.products (
    source_file VARCHAR NOT NULL, line_number BIGINT NOT NULL,
    product_id VARCHAR, product_name VARCHAR, brand VARCHAR, category VARCHAR,
    unit_size DOUBLE, unit_size_text VARCHAR, extra_columns VARCHAR
);
CREATE TABLE IF NOT EXISTS raw.rejected_rows (
    file_kind VARCHAR NOT NULL, source_file VARCHAR NOT NULL, line_number BIGINT NOT NULL,
    raw_line VARCHAR, reason VARCHAR NOT NULL
);
CREATE TABLE IF NOT EXISTS raw.file_months (
    source_file VARCHAR NOT NULL, file_digest VARCHAR NOT NULL, partition_month DATE NOT NULL,
    loaded BOOLEAN NOT NULL
);
CREATE TABLE IF NOT EXISTS raw.file_loads (
    file_kind VARCHAR NOT NULL, source_file VARCHAR NOT NULL, file_bytes BIGINT,
    rows_read BIGINT, rows_valid BIGINT, rows_rejected BIGINT, blank_lines BIGINT,
    loaded_at TIMESTAMP, file_digest VARCHAR
);
CREATE TABLE IF NOT EXISTS raw.file_profiles (
    source_file VARCHAR NOT NULL, file_digest VARCHAR NOT NULL,
    rows_read BIGINT NOT NULL, rows_valid BIGINT NOT NULL, rows_rejected BIGINT NOT NULL,
    invoice_month DATE, lines BIGINT, content_hash HUGEINT, last_invoice_date DATE
);
