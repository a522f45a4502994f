/* No ORDER BY: a join promises no order, but its parallel chunks of features.customer_features (stored by month)
   keep each month's rows together (0 rows out of month order at 100k customers), which is what the month filters
   of the readers need; every reader that needs an order sorts. The sort took 40% of the statement at 100k. */
SELECT f.report_month, f.customer_id, c.customer_group, c.city,
    f.m_total::DOUBLE AS m_total, f.m1::DOUBLE AS m1, f.m6::DOUBLE AS m6, f.m12::DOUBLE AS m12,
    f.m13::DOUBLE AS m13, f.m24::DOUBLE AS m24, f.m25::DOUBLE AS m25, f.o6, f.o12,
    f.first_device_purchase_date, f.first_consumable_purchase_date, f.last_consumable_purchase_date,
    f.months_since_last_purchase, f.tenure_months, f.avg_monthly_consumption, f.avg_order_size,
    l.activity_status, r.value_tier, r.prev_value_tier, l.lifecycle_stage, l.lifecycle_event,
    r.r_score, r.f_score, r.m_score, r.t_score,
    coalesce(c.opt_email, false) AS opt_email, coalesce(c.opt_sms, false) AS opt_sms,
    coalesce(c.opt_phone, false) AS opt_phone
FROM features.customer_features f
INNER JOIN lifecycle.customer_lifecycle l USING (report_month, customer_id)
INNER JOIN rfmt.customer_rfmt r USING (report_month, customer_id)
LEFT JOIN enriched.customers c USING (customer_id)
WHERE f.report_month BETWEEN ? AND ?
