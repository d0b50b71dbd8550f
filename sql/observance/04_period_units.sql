-- staging.matched_units: daily units matched to the enrollment of the same patient and activity
-- whose dates contain the day (R2); staging.unmatched_units: the daily units no enrollment
-- contains; staging.period_units: valid and invalid units per period (R2, R3).
--
-- Incremental, like daily_units, at the finest grain that stays exact:
-- * daily units new or changed since the last run (ops.units_pending, filled by
--   02_daily_units.sql) are matched again, and only the periods they fall in are counted again;
-- * an enrollment whose patient, activity or dates changed (compared with
--   staging.matched_enrollments, the enrollments the tables were built from) has its whole
--   (patient, activity) pair matched and counted again, before and after the change;
-- * periods holding units after the earlier of the previous and the current as_of are counted
--   again (the only units a new evaluation date can add or remove).
-- The periods counted again are listed in ops.periods_pending for 05_patient_periods.sql.
-- A change of the catalog, the Paris offsets or the period length rebuilds everything.
CREATE TABLE IF NOT EXISTS staging.matched_units (
    enrollment_id VARCHAR, patient_id VARCHAR, activity_code VARCHAR, exploitant_id VARCHAR,
    local_date DATE, unit_eye VARCHAR, has_valid BOOLEAN, has_invalid BOOLEAN,
    transmissions BIGINT, last_received_at TIMESTAMPTZ, period_index INTEGER
);
CREATE TABLE IF NOT EXISTS staging.unmatched_units (
    patient_id VARCHAR, activity_code VARCHAR, exploitant_id VARCHAR, local_date DATE,
    unit_eye VARCHAR, has_valid BOOLEAN, has_invalid BOOLEAN, transmissions BIGINT,
    last_received_at TIMESTAMPTZ
);
CREATE TABLE IF NOT EXISTS staging.period_units (
    enrollment_id VARCHAR, period_index INTEGER, valid_units BIGINT, invalid_units BIGINT,
    transmissions BIGINT,
    -- the period's last receipt (server clock; the day when received_at is missing) and last
    -- measured day, for the interruption alert (alerts/01_current_problems.sql)
    last_received_at TIMESTAMPTZ, last_local_date DATE
);
-- a warehouse built before the last-receipt columns gets them, and a rebuild (fingerprint below)
ALTER TABLE staging.period_units ADD COLUMN IF NOT EXISTS last_received_at TIMESTAMPTZ;
ALTER TABLE staging.period_units ADD COLUMN IF NOT EXISTS last_local_date DATE;
-- periods counted again since 05_patient_periods.sql last decided them
CREATE TABLE IF NOT EXISTS ops.periods_pending (enrollment_id VARCHAR, period_index INTEGER);
CREATE TABLE IF NOT EXISTS staging.matched_enrollments (
    enrollment_id VARCHAR, patient_id VARCHAR, activity_code VARCHAR, start_date DATE,
    end_date DATE
);

-- what the tables depend on beyond the data; `units-2`: the layout of staging.period_units
SET VARIABLE units_fingerprint =
    (SELECT reference_hash FROM ref.version) || ':' || getvariable('period_days') || ':units-2';
SET VARIABLE units_full = getvariable('units_fingerprint') IS DISTINCT FROM (
    SELECT reference_hash FROM ops.model_state WHERE model = 'period_units');
SET VARIABLE units_previous_as_of = (
    SELECT as_of FROM ops.model_state WHERE model = 'period_units');
DELETE FROM staging.matched_units WHERE getvariable('units_full');
DELETE FROM staging.unmatched_units WHERE getvariable('units_full');
DELETE FROM staging.period_units WHERE getvariable('units_full');
DELETE FROM staging.matched_enrollments WHERE getvariable('units_full');
-- counted again from scratch: so is every decision taken on the counts (05_patient_periods.sql)
DELETE FROM ops.periods_pending WHERE getvariable('units_full');
DELETE FROM ops.model_state WHERE model = 'patient_periods' AND getvariable('units_full');

CREATE OR REPLACE TEMP TABLE current_enrollments AS
SELECT enrollment_id, patient_id, activity_code, start_date, end_date FROM staging.enrollments;

CREATE OR REPLACE TEMP TABLE changed_enrollments AS
(SELECT * FROM current_enrollments EXCEPT SELECT * FROM staging.matched_enrollments)
UNION
(SELECT * FROM staging.matched_enrollments EXCEPT SELECT * FROM current_enrollments);

-- whole pairs to match again; single units to match again (outside those pairs). In full mode
-- every daily unit is matched again and the dirty sets below are not computed (getvariable is a
-- constant to DuckDB's planner: the branches it rules out are not run).
CREATE OR REPLACE TEMP TABLE dirty_pairs AS
SELECT patient_id, activity_code FROM changed_enrollments WHERE NOT getvariable('units_full');

-- the units matched again, each with the enrollments containing its day, or one row with a
-- null enrollment_id when none does (an unmatched unit)
CREATE OR REPLACE TEMP TABLE dirty_matches AS
WITH dirty_units AS (
    SELECT * FROM staging.daily_units WHERE getvariable('units_full')
    UNION ALL
    SELECT d.* FROM staging.daily_units d SEMI JOIN dirty_pairs USING (patient_id, activity_code)
    WHERE NOT getvariable('units_full')
    UNION ALL
    SELECT d.* FROM staging.daily_units d
    SEMI JOIN (SELECT DISTINCT * FROM ops.units_pending
               ANTI JOIN dirty_pairs USING (patient_id, activity_code)) p
      USING (patient_id, activity_code, exploitant_id, local_date, unit_eye)
    WHERE NOT getvariable('units_full')
)
SELECT e.enrollment_id, d.*,
    CAST((d.local_date - e.start_date) // getvariable('period_days') + 1 AS INTEGER) AS period_index
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
    SELECT enrollment_id FROM changed_enrollments
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
                             coalesce(getvariable('units_previous_as_of'), getvariable('as_of')))
)
SELECT * FROM dirty WHERE NOT getvariable('units_full');
INSERT INTO ops.periods_pending SELECT enrollment_id, period_index FROM dirty_periods;

-- daily units are never removed (a rebuild is the full mode), so the rows of both tables to
-- replace are exactly those of the units matched again
DELETE FROM staging.matched_units WHERE NOT getvariable('units_full') AND rowid IN (
    SELECT t.rowid FROM staging.matched_units t
    SEMI JOIN dirty_matches USING (patient_id, activity_code, exploitant_id, local_date, unit_eye));
INSERT INTO staging.matched_units BY NAME
SELECT * FROM dirty_matches WHERE enrollment_id IS NOT NULL;

DELETE FROM staging.unmatched_units WHERE NOT getvariable('units_full') AND rowid IN (
    SELECT t.rowid FROM staging.unmatched_units t
    SEMI JOIN dirty_matches USING (patient_id, activity_code, exploitant_id, local_date, unit_eye));
INSERT INTO staging.unmatched_units BY NAME
SELECT * EXCLUDE (enrollment_id, period_index) FROM dirty_matches WHERE enrollment_id IS NULL;

-- A unit counts for a period only up to its effective end (R2) and never after as_of. A unit is
-- (day, eye): the same test sent under two exploitants is still one unit (R3). Each unit is one
-- bit of the period's 128-bit mask, (day - period start) * 3 + eye; OR-ing the masks of the
-- period's rows and counting the bits counts each unit once, however many exploitants sent it,
-- in one aggregation per period instead of a first one per unit (11 M groups on B1, ~1.8 s).
-- A 42-day period uses bits 0..125; a longer period_days stops the run (bit 126 is the last a
-- HUGEINT shift allows).
DELETE FROM staging.period_units u USING dirty_periods d
WHERE u.enrollment_id = d.enrollment_id AND u.period_index = d.period_index;
-- the earliest first day of the periods to count again (their units are all on or after it):
-- a constant the scan of all matched units below filters on before looking their keys up. A
-- night counts recent periods again, so it reads a few weeks of units, not the whole history.
SET VARIABLE dirty_from = coalesce(
    (SELECT min(p.period_start) FROM staging.periods p SEMI JOIN dirty_periods d
     USING (enrollment_id, period_index)),
    DATE '9999-12-31');
INSERT INTO staging.period_units BY NAME
WITH counted AS (  -- full mode: every matched unit; else those of the periods to count again
    SELECT * FROM dirty_matches WHERE getvariable('units_full') AND enrollment_id IS NOT NULL
    UNION ALL
    SELECT u.* FROM staging.matched_units u SEMI JOIN dirty_periods USING (enrollment_id, period_index)
    WHERE NOT getvariable('units_full') AND u.local_date >= getvariable('dirty_from')
),
units AS (
    SELECT u.enrollment_id, u.period_index, u.local_date, u.has_valid, u.has_invalid,
        u.transmissions, coalesce(u.last_received_at, CAST(u.local_date AS TIMESTAMPTZ)) AS received,
        CAST(1 AS HUGEINT) << CAST((u.local_date - p.period_start) * 3 + CASE u.unit_eye
            WHEN '' THEN 0 WHEN 'OD' THEN 1 WHEN 'OS' THEN 2
            ELSE error('unit_eye is neither empty, OD nor OS: ' || coalesce(u.unit_eye, 'null'))
            END AS INTEGER)
            AS unit_bit
    FROM staging.periods p
    JOIN counted u USING (enrollment_id, period_index)
    WHERE u.local_date <= p.effective_end
      AND u.local_date <= getvariable('as_of')
      AND (getvariable('period_days') <= 42
           OR error('period_days above 42 does not fit the unit masks of 04_period_units.sql'))
),
masks AS (
    SELECT enrollment_id, period_index,
        coalesce(bit_or(unit_bit) FILTER (WHERE has_valid), 0) AS valid_mask,
        coalesce(bit_or(unit_bit) FILTER (WHERE has_invalid), 0) AS invalid_mask,
        sum(transmissions) AS transmissions,
        max(received) AS last_received_at,
        max(local_date) AS last_local_date
    FROM units
    GROUP BY ALL
)
SELECT enrollment_id, period_index,
    bit_count(valid_mask) AS valid_units,
    bit_count(invalid_mask & ~valid_mask) AS invalid_units,  -- units with no valid test
    transmissions, last_received_at, last_local_date
FROM masks;

-- the enrollments the tables now stand for: only the rows of changed enrollments are replaced
DELETE FROM staging.matched_enrollments
WHERE enrollment_id IN (SELECT enrollment_id FROM changed_enrollments);
INSERT INTO staging.matched_enrollments
SELECT * FROM current_enrollments
WHERE enrollment_id IN (SELECT enrollment_id FROM changed_enrollments);
DELETE FROM ops.units_pending;
INSERT OR REPLACE INTO ops.model_state (model, after_file_id, reference_hash, as_of)
VALUES ('period_units', 0, getvariable('units_fingerprint'), getvariable('as_of'));
