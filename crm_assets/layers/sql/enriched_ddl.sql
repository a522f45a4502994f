CREATE SCHEMA IF NOT EXISTS enriched;
CREATE TABLE IF NOT EXISTS enriched.customers (
    customer_id VARCHAR NOT NULL, customer_name VARCHAR, customer_group VARCHAR, city VARCHAR,
    created_date DATE, email VARCHAR, mobile_number VARCHAR,
    opt_email BOOLEAN NOT NULL, opt_sms BOOLEAN NOT NULL, opt_phone BOOLEAN NOT NULL,
    is_anonymous BOOLEAN NOT NULL
);
CREATE TABLE IF NOT EXISTS enriched.transactions (
    partition_month DATE NOT NULL, invoice_month DATE NOT NULL, invoice_date DATE NOT NULL,
    source_file VARCHAR NOT NULL, line_number BIGINT NOT NULL,
    invoice_id VARCHAR, customer_id VARCHAR, product_id VARCHAR, store_id VARCHAR,
    quantity DOUBLE, revenue DOUBLE, category VARCHAR, unit_size DOUBLE, units DECIMAL(38, 6),
    is_known_customer BOOLEAN NOT NULL, is_known_product BOOLEAN NOT NULL,
    is_anonymous BOOLEAN NOT NULL, is_evaluated BOOLEAN NOT NULL,
    is_consumable BOOLEAN NOT NULL, is_device BOOLEAN NOT NULL, is_qualifying BOOLEAN NOT NULL
);
