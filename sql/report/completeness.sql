-- Completeness of closed periods per activity.
SELECT activity_code, completeness, data_status
FROM marts.patient_periods
WHERE is_closed;
