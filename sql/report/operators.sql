-- The operators of the warehouse, with their patients.
SELECT operator_id, count(DISTINCT patient_id) AS patients
FROM marts.patient_periods
GROUP BY ALL
ORDER BY operator_id;
