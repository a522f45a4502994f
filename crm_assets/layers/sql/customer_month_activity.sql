SELECT partition_month, invoice_month AS activity_month, customer_id,
    coalesce(sum(units) FILTER (WHERE is_qualifying), 0) AS units,
    count(*) FILTER (WHERE is_qualifying) AS qualifying_lines,
    count(DISTINCT invoice_id) FILTER (WHERE is_qualifying) AS orders,
    min(invoice_date) FILTER (WHERE is_qualifying) AS first_consumable_date,
    max(invoice_date) FILTER (WHERE is_qualifying) AS last_consumable_date,
    min(invoice_date) FILTER (WHERE is_device AND quantity > 0) AS first_device_date,
    min(invoice_date) AS first_line_date
FROM enriched.transactions
WHERE is_evaluated AND partition_month BETWEEN ? AND ?
GROUP BY ALL
ORDER BY activity_month, customer_id
