-- Open alerts, per operator (pseudonymous ids, counts and dates only).
SELECT operator_id, kind, audience, exploitant_id, enrollment_id, patient_id, first_seen,
    message_fr, message_en
FROM marts.alerts
WHERE status = 'open' AND exploitant_id = getvariable('exploitant')
ORDER BY operator_id, kind, enrollment_id;
