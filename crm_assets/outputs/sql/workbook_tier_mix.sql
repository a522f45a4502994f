SELECT coalesce(value_tier, 'Not Active') AS tier,
    sum(customers) FILTER (report_month = ?) AS customers,
    sum(customers) FILTER (report_month = ?) AS customers_prev,
    sum(units_12m) FILTER (report_month = ?) AS units_12m
FROM reporting.segment_summary
WHERE report_month IN (?, ?)
GROUP BY 1
