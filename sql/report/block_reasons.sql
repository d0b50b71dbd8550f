-- Share of periods by decision, per activity (billable or the block reason).
SELECT activity_code, coalesce(block_reason, 'billable') AS decision, count(*) AS periods,
    count(*) / sum(count(*)) OVER (PARTITION BY activity_code) AS share
FROM marts.patient_periods
WHERE exploitant_id = getvariable('exploitant')
GROUP BY activity_code, decision
ORDER BY activity_code, decision;
