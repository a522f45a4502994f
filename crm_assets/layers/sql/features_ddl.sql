CREATE SCHEMA IF NOT EXISTS features;
CREATE TABLE IF NOT EXISTS features.customer_month_activity (
    partition_month DATE NOT NULL, activity_month DATE NOT NULL, customer_id VARCHAR NOT NULL,
    units DECIMAL(38, 6) NOT NULL, qualifying_lines BIGINT NOT NULL, orders BIGINT NOT NULL,
    first_consumable_date DATE, last_consumable_date DATE, first_device_date DATE, first_line_date DATE NOT NULL
);
CREATE TABLE IF NOT EXISTS features.repeated_orders (
    partition_month DATE NOT NULL, activity_month DATE NOT NULL, customer_id VARCHAR NOT NULL,
    invoice_id VARCHAR NOT NULL, previous_month DATE NOT NULL
);
CREATE TABLE IF NOT EXISTS features.customer_features (
    report_month DATE NOT NULL, customer_id VARCHAR NOT NULL, entry_date DATE,
    m_total DECIMAL(38, 6) NOT NULL, m1 DECIMAL(38, 6) NOT NULL, m6 DECIMAL(38, 6) NOT NULL,
    m12 DECIMAL(38, 6) NOT NULL, m13 DECIMAL(38, 6) NOT NULL, m24 DECIMAL(38, 6) NOT NULL, m25 DECIMAL(38, 6) NOT NULL,
    o6 BIGINT NOT NULL, o12 BIGINT NOT NULL,
    lines_total BIGINT NOT NULL, lines_m1 BIGINT NOT NULL, lines_m6 BIGINT NOT NULL,
    lines_m12 BIGINT NOT NULL, lines_m13 BIGINT NOT NULL,
    first_device_purchase_date DATE, first_consumable_purchase_date DATE, last_consumable_purchase_date DATE,
    months_since_last_purchase INTEGER, tenure_months INTEGER,
    avg_monthly_consumption DOUBLE NOT NULL, avg_order_size DOUBLE,
    prev_entered BOOLEAN NOT NULL, prev_lines_m12 BIGINT NOT NULL, prev_lines_m6 BIGINT NOT NULL,
    prev_m6 DECIMAL(38, 6) NOT NULL, prev_o6 BIGINT NOT NULL
);
