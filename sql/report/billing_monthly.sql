-- Billing amounts per month of care and payee, and the periods waiting for a tariff.
SELECT CAST(date_trunc('month', date_of_care) AS DATE) AS month, payee,
    CAST(sum(amount) AS DOUBLE) AS amount, count(*) AS lines
FROM marts.billing_lines
WHERE exploitant_id = getvariable('exploitant')
GROUP BY ALL
UNION ALL
SELECT CAST(date_trunc('month', date_of_care) AS DATE), 'waiting_for_tariff', NULL, count(*)
FROM marts.billing_held
WHERE exploitant_id = getvariable('exploitant')
GROUP BY ALL
ORDER BY month, payee;
