-- Metadata of marts.billing_lines.
SELECT
    (SELECT count(*) FROM marts.billing_lines) AS lines,
    (SELECT count(DISTINCT claim_id) FROM marts.billing_lines WHERE claim_status = 'ready')
        AS ready_claims,
    (SELECT count(DISTINCT claim_id) FROM marts.billing_lines WHERE claim_status = 'pending')
        AS pending_claims,
    (SELECT CAST(coalesce(sum(amount), 0) AS DOUBLE) FROM marts.billing_lines) AS amount_eur,
    (SELECT count(*) FROM marts.billing_held) AS periods_waiting_for_tariff;
