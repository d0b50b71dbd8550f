/* model
writes: [staging.period_units, staging.matched_units, staging.unmatched_units, staging.unit_days, ops.periods_pending]
group: observance
incremental: true
consumes: [ops.units_pending]
compares:
  staging.enrollments: [enrollment_id, patient_id, activity_code, start_date, end_date, counting_profile]
views: [staging.unit_days]
description: >-
  Daily units matched to enrollments and counted per period (R2, R3).
*/
-- staging.matched_units: daily units matched to the enrollment of the same patient and activity
-- whose dates contain the day (R2); staging.unmatched_units: the daily units no enrollment
-- contains; staging.period_units: valid and invalid units per period (R2, R3).
--
-- Incremental (pipelines/models.py), at the finest grain that stays exact:
-- * daily units new or changed since the last build (ops.units_pending, from 02_daily_units.sql)
--   are matched again, and only the periods they fall in are counted again;
-- * an enrollment whose patient, activity or dates changed (enrollments_changes: both versions,
--   from the runner's snapshot) has its whole (patient, activity) pair matched and counted again;
-- * periods holding units after the earlier of the previous and the current as_of are counted
--   again (the only units a new evaluation date can add or remove).
-- The periods counted again are listed in ops.periods_pending for 05_patient_periods.sql.
CREATE TABLE IF NOT EXISTS staging.matched_units (
    enrollment_id VARCHAR, patient_id VARCHAR, activity_code VARCHAR, exploitant_id VARCHAR,
    local_date DATE, unit_eye VARCHAR, measure_type VARCHAR, readings BIGINT,
    invalid_readings BIGINT, last_received_at TIMESTAMPTZ, period_index INTEGER
);
CREATE TABLE IF NOT EXISTS staging.unmatched_units AS FROM staging.daily_units LIMIT 0;
CREATE TABLE IF NOT EXISTS staging.period_units (
    enrollment_id VARCHAR, period_index INTEGER, valid_units BIGINT, invalid_units BIGINT,
    transmissions BIGINT,
    -- the period's last receipt (server clock; the day when received_at is missing) and last
    -- measured day, for the interruption alert (alerts/01_current_problems.sql)
    last_received_at TIMESTAMPTZ, last_local_date DATE
);
-- periods counted again since 05_patient_periods.sql last decided them
CREATE TABLE IF NOT EXISTS ops.periods_pending (enrollment_id VARCHAR, period_index INTEGER);
CREATE OR REPLACE TEMP TABLE current_enrollments AS
SELECT enrollment_id, patient_id, activity_code, start_date, end_date, counting_profile
FROM staging.enrollments;

-- whole pairs to match again; single units to match again (outside those pairs). In full mode
-- every daily unit is matched again and the dirty sets below are not computed (getvariable is a
-- constant to DuckDB's planner: the branches it rules out are not run).
CREATE OR REPLACE TEMP TABLE dirty_pairs AS
SELECT patient_id, activity_code FROM enrollments_changes WHERE NOT getvariable('full_build');

-- the units matched again, each with the enrollments containing its day, or one row with a
-- null enrollment_id when none does (an unmatched unit). The earliest day of the pending units
-- is a constant the scan of staging.daily_units (kept in date order) filters on first.
SET VARIABLE pending_from = coalesce((SELECT min(local_date) FROM ops.units_pending),
                                     DATE '9999-12-31');
CREATE OR REPLACE TEMP TABLE dirty_matches AS
WITH dirty_units AS (
    SELECT * FROM staging.daily_units WHERE getvariable('full_build')
    UNION ALL
    SELECT d.* FROM staging.daily_units d SEMI JOIN dirty_pairs USING (patient_id, activity_code)
    WHERE NOT getvariable('full_build')
    UNION ALL
    SELECT d.* FROM staging.daily_units d
    SEMI JOIN (SELECT DISTINCT * FROM ops.units_pending
               ANTI JOIN dirty_pairs USING (patient_id, activity_code)) p
      USING (patient_id, activity_code, exploitant_id, local_date, unit_eye, measure_type)
    WHERE NOT getvariable('full_build') AND d.local_date >= getvariable('pending_from')
)
SELECT e.enrollment_id, d.*,
    CAST(date_diff('day', e.start_date, d.local_date) // getvariable('period_days') + 1
         AS INTEGER) AS period_index
FROM dirty_units d
LEFT JOIN current_enrollments e
  ON e.patient_id = d.patient_id
 AND e.activity_code = d.activity_code
 AND d.local_date >= e.start_date
 AND d.local_date <= coalesce(e.end_date, DATE '9999-12-31');

-- Periods to count again: every period of an enrollment of a whole pair (old and new), the
-- periods of the units matched again, and those holding units after the earlier as_of.
CREATE OR REPLACE TEMP TABLE dirty_periods AS
WITH dirty_enrollments AS (
    SELECT enrollment_id FROM enrollments_changes
    UNION
    SELECT enrollment_id FROM current_enrollments
    SEMI JOIN dirty_pairs USING (patient_id, activity_code)
),
dirty AS (
    SELECT enrollment_id, period_index FROM staging.periods
    SEMI JOIN dirty_enrollments USING (enrollment_id)
    UNION
    SELECT enrollment_id, period_index FROM staging.period_units
    SEMI JOIN dirty_enrollments USING (enrollment_id)
    UNION
    SELECT enrollment_id, period_index FROM dirty_matches WHERE enrollment_id IS NOT NULL
    UNION
    SELECT enrollment_id, period_index FROM staging.matched_units
    WHERE local_date > least(getvariable('as_of'),
                             coalesce(getvariable('previous_as_of'), getvariable('as_of')))
)
SELECT * FROM dirty WHERE NOT getvariable('full_build');
INSERT INTO ops.periods_pending SELECT enrollment_id, period_index FROM dirty_periods;

-- daily units are never removed (a rebuild is the full mode), so the rows of both tables to
-- replace are exactly those of the units matched again (from their earliest day on)
SET VARIABLE rematched_from = coalesce((SELECT min(local_date) FROM dirty_matches),
                                       DATE '9999-12-31');
DELETE FROM staging.matched_units WHERE NOT getvariable('full_build') AND rowid IN (
    SELECT t.rowid FROM staging.matched_units t
    SEMI JOIN dirty_matches
        USING (patient_id, activity_code, exploitant_id, local_date, unit_eye, measure_type)
    WHERE t.local_date >= getvariable('rematched_from'));
INSERT INTO staging.matched_units BY NAME
SELECT * FROM dirty_matches WHERE enrollment_id IS NOT NULL;

DELETE FROM staging.unmatched_units WHERE NOT getvariable('full_build') AND rowid IN (
    SELECT t.rowid FROM staging.unmatched_units t
    SEMI JOIN dirty_matches
        USING (patient_id, activity_code, exploitant_id, local_date, unit_eye, measure_type)
    WHERE t.local_date >= getvariable('rematched_from'));
INSERT INTO staging.unmatched_units BY NAME
SELECT patient_id, activity_code, exploitant_id, local_date, unit_eye, measure_type, readings,
    invalid_readings, last_received_at
FROM dirty_matches WHERE enrollment_id IS NULL;

-- R3: the units of matched units, one row per unit of a period: a local day (an eye's day for
-- eye-test lines) with the counted readings of the enrollment's counting rule (ref.counting_rules:
-- its line and monitoring profile). The unit is valid when they reach the rule's daily minimum;
-- a day with counted readings below it, or whose tests all failed their calibration, is an
-- invalid unit. The same unit sent under two exploitants is still one unit: its readings are
-- those of the exploitant who sent the most (never the sum of copies). A unit counts for a
-- period only up to its effective end (R2) and never after as_of (staging.periods counted_until).
-- `matched` and `periods` name the relations to read (staging.matched_units and
-- staging.periods, or a night's periods to count again), so the counts and the view below apply
-- the same rule.
CREATE OR REPLACE MACRO staging.units_of(matched, periods) AS TABLE
WITH sent AS (
    SELECT u.enrollment_id, u.period_index, u.local_date,
        CASE WHEN r.grain = 'eye_day' THEN u.unit_eye ELSE '' END AS unit_eye,
        r.min_per_day, u.exploitant_id,
        sum(u.readings - u.invalid_readings) AS valid_readings,
        sum(u.invalid_readings) AS failed_readings
    FROM query_table(matched) u
    JOIN query_table(periods) p USING (enrollment_id, period_index)
    JOIN ref.counting_measures m
      ON m.activity_code = p.activity_code AND m.monitoring_profile = p.counting_profile
     AND m.measure_type = u.measure_type
    JOIN ref.counting_rules r
      ON r.activity_code = p.activity_code AND r.monitoring_profile = p.counting_profile
    WHERE u.local_date <= p.counted_until
    GROUP BY ALL
)
SELECT enrollment_id, period_index, local_date, unit_eye, min_per_day,
    max(valid_readings) AS valid_readings,  -- of the exploitant who sent the most
    max(failed_readings) AS failed_readings,
    max(valid_readings) >= min_per_day AS is_valid
FROM sent
GROUP BY enrollment_id, period_index, local_date, unit_eye, min_per_day;
-- staging.unit_days: every unit, as the counts saw them (for readers: notebooks, evidence)
CREATE OR REPLACE VIEW staging.unit_days AS
FROM staging.units_of('staging.matched_units', 'staging.periods');

DELETE FROM staging.period_units u USING dirty_periods d
WHERE u.enrollment_id = d.enrollment_id AND u.period_index = d.period_index;
-- the periods to count again (full mode: all) and the matched units from their earliest first
-- day on (a constant the scan filters on first: staging.matched_units is kept in rough date
-- order, so a night reads its last weeks, not the whole history)
CREATE OR REPLACE TEMP TABLE recounted_periods AS
SELECT * FROM staging.periods WHERE getvariable('full_build')
UNION ALL
SELECT p.* FROM staging.periods p SEMI JOIN dirty_periods USING (enrollment_id, period_index)
WHERE NOT getvariable('full_build');
SET VARIABLE dirty_from = coalesce((SELECT min(period_start) FROM recounted_periods),
                                   DATE '9999-12-31');
CREATE OR REPLACE TEMP VIEW recounted_units AS
SELECT * FROM staging.matched_units WHERE local_date >= getvariable('dirty_from');
INSERT INTO staging.period_units BY NAME
WITH transmitted AS (  -- every reading of the period, counted or not
    SELECT u.enrollment_id, u.period_index,
        sum(u.readings) AS transmissions,
        max(coalesce(u.last_received_at, CAST(u.local_date AS TIMESTAMPTZ))) AS last_received_at,
        max(u.local_date) AS last_local_date
    FROM recounted_units u
    JOIN recounted_periods p USING (enrollment_id, period_index)
    WHERE u.local_date <= p.counted_until
    GROUP BY ALL
),
units AS (FROM staging.units_of('recounted_units', 'recounted_periods')),
counts AS (
    SELECT enrollment_id, period_index,
        count(*) FILTER (WHERE is_valid) AS valid_units,
        count(*) FILTER (WHERE NOT is_valid) AS invalid_units
    FROM units
    GROUP BY ALL
)
SELECT t.enrollment_id, t.period_index,
    coalesce(c.valid_units, 0) AS valid_units, coalesce(c.invalid_units, 0) AS invalid_units,
    t.transmissions, t.last_received_at, t.last_local_date
FROM transmitted t
LEFT JOIN counts c USING (enrollment_id, period_index);
