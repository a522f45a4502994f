CREATE SCHEMA IF NOT EXISTS rfmt;
CREATE TABLE IF NOT EXISTS rfmt.customer_rfmt (
    report_month DATE NOT NULL, customer_id VARCHAR NOT NULL,
    value_tier VARCHAR, prev_value_tier VARCHAR,
    r_score INTEGER, f_score INTEGER, m_score INTEGER, t_score INTEGER
);
