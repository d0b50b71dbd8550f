-- Migration 5: the alert history (sql/alerts/02_alerts.sql), kept across runs and never rebuilt,
-- is created here with the other tables that cannot be rebuilt (before, by the model itself).
CREATE TABLE IF NOT EXISTS ops.alert_history (
    alert_id VARCHAR NOT NULL, enrollment_id VARCHAR NOT NULL, kind VARCHAR NOT NULL,
    audience VARCHAR NOT NULL, patient_id VARCHAR NOT NULL, operator_id VARCHAR NOT NULL,
    exploitant_id VARCHAR NOT NULL, activity_code VARCHAR NOT NULL,
    message_fr VARCHAR NOT NULL, message_en VARCHAR NOT NULL, reference_date DATE,
    first_seen DATE NOT NULL, last_seen DATE NOT NULL, resolved_at DATE
);
