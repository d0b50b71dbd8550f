-- Metadata of marts.claim_status: issued lines per status.
SELECT
    count(*) AS issued_lines,
    count(*) FILTER (WHERE status = 'paid') AS paid,
    count(*) FILTER (WHERE status = 'partially_paid') AS partially_paid,
    count(*) FILTER (WHERE status = 'rejected') AS rejected,
    count(*) FILTER (WHERE status = 'unpaid_overdue') AS unpaid_overdue
FROM marts.claim_status;
