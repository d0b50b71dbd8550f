-- The billing loop per month of care and payee (R11, R12): what was issued, answered, paid,
-- rejected, overdue, and the corrections waiting to be issued.
WITH issued AS (
    SELECT CAST(date_trunc('month', date_of_care) AS DATE) AS month, payee,
        count(*) FILTER (WHERE kind <> 'cancellation') AS issued_lines,
        sum(amount) AS issued_amount,
        count(*) FILTER (WHERE status = 'paid') AS paid,
        count(*) FILTER (WHERE status = 'partially_paid') AS partially_paid,
        count(*) FILTER (WHERE status = 'rejected') AS rejected,
        count(*) FILTER (WHERE status = 'unpaid_overdue') AS overdue,
        coalesce(sum(paid_amount), 0) AS paid_amount
    FROM marts.claim_status
    WHERE exploitant_id = getvariable('exploitant')
    GROUP BY ALL
),
pending AS (
    SELECT CAST(date_trunc('month', date_of_care) AS DATE) AS month, payee,
        count(*) AS corrections_pending, sum(amount) AS corrections_amount
    FROM marts.billing_corrections
    WHERE exploitant_id = getvariable('exploitant')
    GROUP BY ALL
),
ready AS (
    SELECT CAST(date_trunc('month', date_of_care) AS DATE) AS month, payee,
        count(*) AS ready_lines
    FROM marts.billing_lines WHERE line_status = 'ready' AND exploitant_id = getvariable('exploitant')
    GROUP BY ALL
)
SELECT month, payee,
    coalesce(ready_lines, 0) AS ready_lines,
    coalesce(issued_lines, 0) AS issued_lines,
    CAST(coalesce(issued_amount, 0) AS VARCHAR) AS issued_eur,
    coalesce(paid, 0) AS paid, coalesce(partially_paid, 0) AS partially_paid,
    coalesce(rejected, 0) AS rejected, coalesce(overdue, 0) AS overdue,
    CAST(coalesce(paid_amount, 0) AS VARCHAR) AS paid_eur,
    coalesce(corrections_pending, 0) AS corrections_pending,
    CAST(coalesce(corrections_amount, 0) AS VARCHAR) AS corrections_eur
FROM issued
FULL JOIN pending USING (month, payee)
FULL JOIN ready USING (month, payee)
ORDER BY month, payee;
