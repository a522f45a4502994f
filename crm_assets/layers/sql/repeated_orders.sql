WITH in_window AS (
    SELECT DISTINCT customer_id, invoice_id FROM enriched.transactions
    WHERE is_evaluated AND is_qualifying AND partition_month BETWEEN ? AND ?
),
occurrences AS (
    SELECT DISTINCT t.partition_month, t.invoice_month, t.customer_id, t.invoice_id
    FROM enriched.transactions t SEMI JOIN in_window w USING (customer_id, invoice_id)
    WHERE t.is_evaluated AND t.is_qualifying AND t.partition_month <= ?
),
chained AS (
    SELECT *, lag(invoice_month) OVER (PARTITION BY customer_id, invoice_id ORDER BY invoice_month) AS previous_month
    FROM occurrences
)
SELECT partition_month, invoice_month AS activity_month, customer_id, invoice_id, previous_month
FROM chained
WHERE previous_month IS NOT NULL AND partition_month BETWEEN ? AND ?
