-- One operator's forfaits (payee operator, R10-R12) per month of care: lines ready to issue,
-- issued, paid, rejected, and the amounts issued and paid.
WITH lines AS (
    SELECT CAST(date_trunc('month', date_of_care) AS DATE) AS month,
        count(*) FILTER (WHERE line_status = 'ready') AS ready_lines,
        sum(amount) FILTER (WHERE line_status = 'ready') AS ready_amount
    FROM marts.billing_lines
    WHERE payee = 'operator' AND operator_id = getvariable('operator')
    GROUP BY ALL
),
answered AS (
    SELECT CAST(date_trunc('month', date_of_care) AS DATE) AS month,
        count(*) FILTER (WHERE kind <> 'cancellation') AS issued_lines,
        sum(amount) AS issued_amount,
        count(*) FILTER (WHERE status IN ('paid', 'partially_paid')) AS paid,
        count(*) FILTER (WHERE status = 'rejected') AS rejected,
        coalesce(sum(paid_amount), 0) AS paid_amount
    FROM marts.claim_status
    WHERE payee = 'operator' AND operator_id = getvariable('operator')
    GROUP BY ALL
)
SELECT month, coalesce(ready_lines, 0) AS ready_lines,
    coalesce(ready_amount, 0) AS ready_amount,
    coalesce(issued_lines, 0) AS issued_lines, coalesce(issued_amount, 0) AS issued_amount,
    coalesce(paid, 0) AS paid, coalesce(rejected, 0) AS rejected,
    coalesce(paid_amount, 0) AS paid_amount
FROM lines FULL JOIN answered USING (month)
ORDER BY month;
