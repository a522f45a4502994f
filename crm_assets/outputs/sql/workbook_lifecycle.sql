SELECT report_month, lifecycle_stage, lifecycle_event, sum(customers) AS customers, sum(units_month) AS units_month
FROM reporting.segment_summary
WHERE report_month IN (?, ?, ?)
GROUP BY ALL
