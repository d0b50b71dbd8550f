-- One operator's open alerts (pseudonymous ids, counts and dates only).
SELECT operator_id, kind, audience, exploitant_id, enrollment_id, patient_id, first_seen,
    message_fr, message_en
FROM marts.alerts
WHERE status = 'open' AND operator_id = getvariable('operator')
ORDER BY kind, enrollment_id;
