CREATE SCHEMA IF NOT EXISTS lifecycle;
CREATE TABLE IF NOT EXISTS lifecycle.customer_lifecycle (
    report_month DATE NOT NULL, customer_id VARCHAR NOT NULL,
    activity_status VARCHAR NOT NULL, lifecycle_stage VARCHAR NOT NULL, lifecycle_event VARCHAR
);
