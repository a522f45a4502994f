SELECT {column} AS segment, sum(customers) AS customers,
    coalesce(sum(customers) FILTER (activity_status = 'Active'), 0) AS active,
    coalesce(sum(customers) FILTER (activity_status = 'Active'), 0) / sum(customers) AS active_share,
    coalesce(sum(customers) FILTER (lifecycle_event = 'New'), 0) AS new,
    coalesce(sum(customers) FILTER (lifecycle_event = 'Lost'), 0) AS lost,
    sum(units_month) AS units_month, sum(units_12m) AS units_12m,
    {tiers}
FROM reporting.segment_summary
WHERE report_month = ?
GROUP BY segment
ORDER BY customers DESC, segment ASC
