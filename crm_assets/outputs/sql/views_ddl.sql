CREATE SCHEMA IF NOT EXISTS reporting;
CREATE TABLE IF NOT EXISTS reporting.segment_summary (
    report_month DATE NOT NULL, activity_status VARCHAR NOT NULL, value_tier VARCHAR,
    lifecycle_stage VARCHAR NOT NULL, lifecycle_event VARCHAR, customer_group VARCHAR, city VARCHAR,
    customers BIGINT NOT NULL, units_month DOUBLE NOT NULL, units_12m DOUBLE NOT NULL, orders_12m BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS reporting.tier_migration (
    report_month DATE NOT NULL, from_tier VARCHAR NOT NULL, to_tier VARCHAR NOT NULL,
    from_order INTEGER NOT NULL, to_order INTEGER NOT NULL, customers BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS reporting.cohort_retention (
    report_month DATE NOT NULL, cohort_month DATE NOT NULL, months_since INTEGER NOT NULL,
    cohort_size BIGINT NOT NULL, active_customers BIGINT NOT NULL, share_active DOUBLE NOT NULL
);
CREATE TABLE IF NOT EXISTS reporting.contactable_customers (
    report_month DATE NOT NULL, channel VARCHAR NOT NULL, channel_order INTEGER NOT NULL,
    customers BIGINT NOT NULL, consented BIGINT NOT NULL, contactable BIGINT NOT NULL,
    contactable_active BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS reporting.device_attach (
    report_month DATE NOT NULL, customer_group VARCHAR, device_owners BIGINT NOT NULL,
    owners_with_consumable BIGINT NOT NULL, owners_without_consumable BIGINT NOT NULL, attach_rate DOUBLE
);
