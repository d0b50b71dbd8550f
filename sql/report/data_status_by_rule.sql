-- Closed periods per line and monitoring profile, by data status (R3, R4), with the status of
-- the counting rule that decided them (CONFIRMED / ASSUMPTION).
SELECT p.activity_code, coalesce(p.counting_profile, '(default)') AS profile, r.status,
    count(*) AS closed_periods,
    count(*) FILTER (WHERE p.data_status = 'sufficient') AS sufficient,
    count(*) FILTER (WHERE p.data_status = 'insufficient') AS insufficient,
    count(*) FILTER (WHERE p.data_status = 'no_data') AS no_data,
    count(*) FILTER (WHERE p.billable) AS billable,
    count(*) FILTER (WHERE p.weekly_transmission_missed) AS weekly_missed
FROM marts.patient_periods p
JOIN ref.counting_rules r
  ON r.activity_code = p.activity_code
 AND r.monitoring_profile = coalesce(p.counting_profile, '')
WHERE p.is_closed
GROUP BY ALL
ORDER BY p.activity_code, profile;
