-- staging.enrollments, staging.prescriptions: the latest version of each record (R2, R7).
-- A re-sent enrollment with new content is a new version in raw; the last one received wins.

CREATE OR REPLACE TABLE staging.enrollments AS
SELECT enrollment_id, patient_id, activity_code, exploitant_id, operator_id,
       start_date, end_date, end_reason, ald
FROM raw.enrollments
QUALIFY row_number() OVER (PARTITION BY enrollment_id ORDER BY file_id DESC, row_number DESC) = 1;

-- R7: a prescription lasts at most prescription_max_days (a trial trial_max_days); longer ones
-- are reported by 07_data_quality.sql and only their first days count (covers_until).
CREATE OR REPLACE TABLE staging.prescriptions AS
WITH latest AS (
    SELECT prescription_id, enrollment_id, kind, valid_from, valid_until
    FROM raw.prescriptions
    QUALIFY row_number() OVER (PARTITION BY prescription_id
                               ORDER BY file_id DESC, row_number DESC) = 1
)
SELECT *,
    valid_until - valid_from + 1 AS length_days,
    CASE WHEN kind = 'trial' THEN getvariable('trial_max_days')
         ELSE getvariable('prescription_max_days') END AS max_days,
    least(valid_until, valid_from + CAST(max_days AS INTEGER) - 1) AS covers_until
FROM latest;
