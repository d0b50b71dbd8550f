-- Rejected lines by the payer's reason (R12), for billing staff to correct and re-issue.
SELECT payee, rejection_code, any_value(rejection_label) AS rejection_label, count(*) AS lines,
    CAST(sum(amount) AS VARCHAR) AS amount_eur
FROM marts.claim_status
WHERE status = 'rejected' AND exploitant_id = getvariable('exploitant')
GROUP BY ALL
ORDER BY payee, lines DESC, rejection_code;
