-- Completeness of closed periods per activity, in bins of 1/8 (counted here, not in the browser:
-- the report stays small at any scale). Bin 8 holds completeness = 1.
SELECT activity_code, least(floor(completeness * 8), 8) / 8 AS completeness_bin,
    count(*) AS periods
FROM marts.patient_periods
WHERE is_closed AND exploitant_id = getvariable('exploitant')
GROUP BY ALL
ORDER BY activity_code, completeness_bin;
