-- Metadata of marts.billing_lines.
SELECT
    (SELECT count(*) FROM marts.billing_lines) AS lines,
    (SELECT count(*) FROM marts.billing_lines WHERE line_status = 'ready') AS ready_lines,
    (SELECT count(*) FROM marts.billing_lines WHERE line_status = 'pending') AS pending_lines,
    (SELECT count(*) FROM marts.billing_lines WHERE batch_id IS NOT NULL) AS issued_lines,
    (SELECT CAST(coalesce(sum(amount), 0) AS DOUBLE) FROM marts.billing_lines) AS amount_eur,
    (SELECT count(*) FROM marts.billing_corrections) AS corrections_pending,
    (SELECT count(*) FROM marts.billing_held) AS periods_waiting_for_tariff;
