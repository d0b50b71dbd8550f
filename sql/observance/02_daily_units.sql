/* model
writes: [staging.daily_units, staging.receipt_days, ops.units_pending, ops.receipts_pending]
group: observance
incremental: true
description: >-
  Readings per patient, Paris civil date, eye and counted measure type; calibration (R1, R3);
  the days counted readings were received (R3 weekly rule).
*/
-- staging.daily_units: transmissions at their finest grain, one row per patient, activity,
-- exploitant, Paris civil date, eye and counted measure type, with how many readings were sent
-- and how many of them failed their calibration (R1, R3).
--
-- R1: the civil date in Europe/Paris comes from ref.paris_offsets (built from the tz database):
-- the UTC year's summer-time interval tells the offset, and the date is integer arithmetic on
-- epoch microseconds, exact and much cheaper than a per-row time-zone conversion.
-- R3: which measure types count, and how many readings a day needs, depend on the enrollment's
-- monitoring profile (04_period_units.sql applies them); here a measure type keeps its own row
-- when some profile of the line counts it, the others share one row (measure_type ''), kept for
-- the transmission counts and the last receipt. An eye test whose recorded distance or light is
-- outside the catalog bounds fails its calibration (a missing value is not evidence of that).
--
-- Incremental (pipelines/models.py): raw.transmissions only grows, and these aggregates merge
-- (sum, max), so each run folds in only the rows of files ingested since the last build
-- (file_id > after_file_id). The days new or changed are listed in ops.units_pending for
-- 04_period_units.sql; a full build lists none (its consumers are built in full too).
CREATE TABLE IF NOT EXISTS staging.daily_units (
    patient_id VARCHAR, activity_code VARCHAR, exploitant_id VARCHAR, local_date DATE,
    unit_eye VARCHAR, measure_type VARCHAR, readings BIGINT, invalid_readings BIGINT,
    last_received_at TIMESTAMPTZ
);
-- daily units new or changed since 04_period_units.sql last matched them
CREATE TABLE IF NOT EXISTS ops.units_pending (
    patient_id VARCHAR, activity_code VARCHAR, exploitant_id VARCHAR, local_date DATE,
    unit_eye VARCHAR, measure_type VARCHAR
);
-- the units of the rows ingested since the last run
CREATE OR REPLACE TEMP VIEW transmitted_units AS
WITH instants AS (
    SELECT t.patient_id, t.activity_code, t.exploitant_id, t.measure_type, t.eye,
           t.distance_cm, t.ambient_lux, t.received_at,
           epoch_us(t.measured_at) AS utc_us
    FROM raw.transmissions t
    WHERE t.file_id > getvariable('after_file_id')
),
localised AS (
    SELECT i.patient_id, i.activity_code, i.exploitant_id,
        coalesce(al.measure_type, i.measure_type) AS measure_type,
        i.eye, i.distance_cm, i.ambient_lux, i.received_at, i.utc_us,
        ref.paris_date(utc_us, o.summer_start_us, o.summer_end_us, o.standard_offset_us,
                       o.summer_offset_us) AS local_date
    FROM instants i
    LEFT JOIN ref.paris_offsets o ON o.year = year(make_timestamp(i.utc_us))
    -- a type sent under an older name counts as its current one (raw keeps it as sent)
    LEFT JOIN ref.measure_type_aliases al ON al.alias = i.measure_type
),
judged AS (
    SELECT l.patient_id, l.activity_code, l.exploitant_id, l.local_date, l.received_at,
        coalesce(l.eye, '') AS unit_eye,
        CASE WHEN m.is_counted THEN l.measure_type ELSE '' END AS measure_type,
        (l.distance_cm IS NULL OR a.distance_min_cm IS NULL OR l.distance_cm >= a.distance_min_cm)
        AND (l.distance_cm IS NULL OR a.distance_max_cm IS NULL OR l.distance_cm <= a.distance_max_cm)
        AND (l.ambient_lux IS NULL OR a.lux_min IS NULL OR l.ambient_lux >= a.lux_min)
        AND (l.ambient_lux IS NULL OR a.lux_max IS NULL OR l.ambient_lux <= a.lux_max)
            AS calibration_ok
    FROM localised l
    JOIN ref.activities a USING (activity_code)
    LEFT JOIN ref.activity_measures m USING (activity_code, measure_type)
)
SELECT patient_id, activity_code, exploitant_id, local_date, unit_eye, measure_type,
    count(*) AS readings,
    count(*) FILTER (WHERE NOT calibration_ok) AS invalid_readings,
    max(received_at) AS last_received_at
FROM judged
GROUP BY ALL;

-- A full build writes them straight into the table (nothing to merge, nothing to keep). A run that
-- adds to the table keeps them for the merge below.
-- (getvariable is a constant to DuckDB's planner: the statement that does not apply reads nothing.)
INSERT INTO staging.daily_units BY NAME
SELECT * FROM transmitted_units WHERE getvariable('full_build')
ORDER BY local_date;
CREATE OR REPLACE TEMP TABLE new_units AS
SELECT * FROM transmitted_units WHERE NOT getvariable('full_build');

-- days already present: merge the new transmissions into them; new days: insert as they are.
-- The earliest day of the new units: a constant the scans of staging.daily_units below filter
-- on before looking their keys up (a night's units are recent: a few days of history are read).
SET VARIABLE new_units_from = coalesce((SELECT min(local_date) FROM new_units), DATE '9999-12-31');
CREATE OR REPLACE TEMP TABLE merged_units AS
SELECT patient_id, activity_code, exploitant_id, local_date, unit_eye, measure_type,
    sum(readings) AS readings, sum(invalid_readings) AS invalid_readings,
    max(last_received_at) AS last_received_at
FROM (
    SELECT d.* FROM staging.daily_units d
    SEMI JOIN new_units n USING (patient_id, activity_code, exploitant_id, local_date, unit_eye, measure_type)
    WHERE d.local_date >= getvariable('new_units_from')
    UNION ALL
    SELECT n.* FROM new_units n
    SEMI JOIN (SELECT * FROM staging.daily_units
               WHERE local_date >= getvariable('new_units_from')) d
        USING (patient_id, activity_code, exploitant_id, local_date, unit_eye, measure_type)
)
WHERE NOT getvariable('full_build')
GROUP BY ALL;

DELETE FROM staging.daily_units d USING merged_units m
WHERE d.patient_id = m.patient_id AND d.activity_code = m.activity_code
  AND d.exploitant_id = m.exploitant_id AND d.local_date = m.local_date
  AND d.unit_eye = m.unit_eye AND d.measure_type = m.measure_type
  AND d.local_date >= getvariable('new_units_from');

INSERT INTO staging.daily_units BY NAME
SELECT patient_id, activity_code, exploitant_id, local_date, unit_eye, measure_type, readings,
    invalid_readings, last_received_at
FROM merged_units
UNION ALL
SELECT n.patient_id, n.activity_code, n.exploitant_id, n.local_date, n.unit_eye, n.measure_type,
    n.readings, n.invalid_readings, n.last_received_at
FROM new_units n
ANTI JOIN merged_units m USING (patient_id, activity_code, exploitant_id, local_date, unit_eye, measure_type);

INSERT INTO ops.units_pending
SELECT patient_id, activity_code, exploitant_id, local_date, unit_eye, measure_type FROM new_units
WHERE NOT getvariable('full_build');

-- R3 weekly transmission (the lines with max_transmission_gap_days): the Paris days on which
-- readings of a type such a line counts were received (received_at; the measurement's instant
-- when it is missing), per patient, line and type. The days new since the last run are listed
-- for 05_patient_periods.sql in ops.receipts_pending (a full build lists none: it decides all).
CREATE TABLE IF NOT EXISTS staging.receipt_days (
    patient_id VARCHAR, activity_code VARCHAR, measure_type VARCHAR, receipt_date DATE
);
CREATE TABLE IF NOT EXISTS ops.receipts_pending (
    patient_id VARCHAR, activity_code VARCHAR, receipt_date DATE
);
CREATE OR REPLACE TEMP TABLE new_receipts AS
WITH weekly AS (
    SELECT DISTINCT m.activity_code, m.measure_type
    FROM ref.counting_measures m
    JOIN ref.counting_rules r USING (activity_code)
    WHERE r.max_transmission_gap_days IS NOT NULL
),
received AS (
    SELECT t.patient_id, t.activity_code,
        coalesce(al.measure_type, t.measure_type) AS measure_type,
        epoch_us(coalesce(t.received_at, t.measured_at)) AS utc_us
    FROM raw.transmissions t
    LEFT JOIN ref.measure_type_aliases al ON al.alias = t.measure_type
    WHERE t.file_id > getvariable('after_file_id')
)
SELECT DISTINCT r.patient_id, r.activity_code, r.measure_type,
    ref.paris_date(r.utc_us, o.summer_start_us, o.summer_end_us, o.standard_offset_us,
                   o.summer_offset_us) AS receipt_date
FROM received r
SEMI JOIN weekly w USING (activity_code, measure_type)
JOIN ref.paris_offsets o ON o.year = year(make_timestamp(r.utc_us));
SET VARIABLE new_receipts_from = coalesce((SELECT min(receipt_date) FROM new_receipts),
                                          DATE '9999-12-31');
CREATE OR REPLACE TEMP TABLE added_receipts AS
SELECT * FROM new_receipts
EXCEPT
SELECT * FROM staging.receipt_days WHERE receipt_date >= getvariable('new_receipts_from');
INSERT INTO staging.receipt_days SELECT * FROM added_receipts ORDER BY receipt_date;
INSERT INTO ops.receipts_pending
SELECT DISTINCT patient_id, activity_code, receipt_date FROM added_receipts
WHERE NOT getvariable('full_build');
