-- Metadata of marts.billing_lines (one pass over the view).
SELECT count(*) AS lines,
    count(*) FILTER (WHERE line_status = 'ready') AS ready_lines,
    count(*) FILTER (WHERE line_status = 'pending') AS pending_lines,
    count(*) FILTER (WHERE batch_id IS NOT NULL) AS issued_lines,
    CAST(coalesce(sum(amount), 0) AS DOUBLE) AS amount_eur,
    (SELECT count(*) FROM marts.billing_corrections) AS corrections_pending,
    (SELECT count(*) FROM marts.billing_held) AS periods_waiting_for_tariff
FROM marts.billing_lines;
