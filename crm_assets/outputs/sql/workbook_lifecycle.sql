SELECT report_month, lifecycle_stage, lifecycle_event, sum(customers), sum(units_month)
FROM reporting.segment_summary
WHERE report_month IN (?, ?, ?)
GROUP BY ALL
