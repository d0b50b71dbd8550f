/* model
writes: [staging.enrollments, staging.prescriptions]
group: observance
description: >-
  Latest version of each enrollment and prescription, with the counting rule of its line and
  monitoring profile (R3); capped prescription lengths (R7).
*/
-- staging.enrollments, staging.prescriptions: the latest version of each record (R2, R7), each
-- enrollment with the counting rule of its line and monitoring profile (R3).
-- A re-sent enrollment with new content is a new version in raw. R7b: the version in force is
-- the one with the latest time, its recorded_at or else the time its file was ingested; a tie
-- goes to the later-ingested file (files are ingested by modification time, then path), then
-- to the later row. Never the path alone.
--
-- R3: counting_profile is the monitoring profile sent when the line has that profile, else the
-- line's default row (''); expected_units is the rule's, or for a rule counting sessions
-- round(sessions_per_week x period_days / 7), the rule's default sessions when none is sent.
CREATE OR REPLACE TABLE staging.enrollments AS
WITH latest AS (
    SELECT enrollment_id, patient_id, activity_code, exploitant_id, operator_id,
           start_date, end_date, end_reason, ald, monitoring_profile, sessions_per_week,
           sessions_per_week_sent, recorded_at
    FROM raw.enrollments
    LEFT JOIN (SELECT file_id, ingested_at FROM ops.ingested_files) f USING (file_id)
    QUALIFY row_number() OVER (PARTITION BY enrollment_id ORDER BY
        coalesce(recorded_at, f.ingested_at) DESC, file_id DESC, row_number DESC) = 1
)
SELECT e.*,
    r.monitoring_profile AS counting_profile,
    CAST(coalesce(r.expected_units, round(
        coalesce(e.sessions_per_week, r.default_sessions_per_week)
        * getvariable('period_days') / 7)) AS INTEGER) AS expected_units
FROM latest e
LEFT JOIN ref.counting_rules p  -- the line's row for the profile sent, if it has one
  ON p.activity_code = e.activity_code AND p.monitoring_profile = e.monitoring_profile
JOIN ref.counting_rules r
  ON r.activity_code = e.activity_code
 AND r.monitoring_profile = coalesce(p.monitoring_profile, '');

-- R7: a prescription lasts at most prescription_max_days (a trial trial_max_days); longer ones
-- are reported by 07_data_quality.sql and only their first days count (covers_until).
CREATE OR REPLACE TABLE staging.prescriptions AS
WITH latest AS (
    SELECT prescription_id, enrollment_id, kind, valid_from, valid_until, recorded_at
    FROM raw.prescriptions
    LEFT JOIN (SELECT file_id, ingested_at FROM ops.ingested_files) f USING (file_id)
    QUALIFY row_number() OVER (PARTITION BY prescription_id ORDER BY
        coalesce(recorded_at, f.ingested_at) DESC, file_id DESC, row_number DESC) = 1
)
SELECT *,
    date_diff('day', valid_from, valid_until) + 1 AS length_days,
    CAST(CASE WHEN kind = 'trial' THEN getvariable('trial_max_days')
              ELSE getvariable('prescription_max_days') END AS INTEGER) AS max_days,
    least(valid_until, valid_from + CAST(max_days AS INTEGER) - 1) AS covers_until
FROM latest;
