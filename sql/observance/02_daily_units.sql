-- staging.daily_units: transmissions at their finest grain, one row per patient, activity,
-- exploitant, Paris civil date and unit eye (R1, R3).
--
-- R1: the civil date in Europe/Paris comes from ref.paris_offsets (built from the tz database):
-- the UTC year's summer-time interval tells the offset, and the date is integer arithmetic on
-- epoch microseconds, exact and much cheaper than a per-row time-zone conversion.
-- R3: only the activity's counted measure types make units; an ODYSIGHT test whose recorded
-- distance or light is outside the catalog bounds is invalid (a missing value is not); one unit
-- per (patient, eye, day) for eye tests, one per (patient, day) for the other lines.
CREATE OR REPLACE TABLE staging.daily_units AS
WITH instants AS (
    SELECT t.patient_id, t.activity_code, t.exploitant_id, t.measure_type, t.eye,
           t.distance_cm, t.ambient_lux, t.received_at,
           epoch_us(t.measured_at) AS utc_us
    FROM raw.transmissions t
),
localised AS (
    SELECT i.*,
        CAST(make_timestamp(utc_us + CASE
            WHEN utc_us >= o.summer_start_us AND utc_us < o.summer_end_us
            THEN o.summer_offset_us ELSE o.standard_offset_us END) AS DATE) AS local_date
    FROM instants i
    LEFT JOIN ref.paris_offsets o ON o.year = year(make_timestamp(i.utc_us))
),
judged AS (
    SELECT l.patient_id, l.activity_code, l.exploitant_id, l.local_date, l.received_at,
        CASE WHEN a.unit = 'eye_test_day' THEN coalesce(l.eye, '') ELSE '' END AS unit_eye,
        coalesce(m.is_counted, false) AS is_counted,
        (l.distance_cm IS NULL OR a.distance_min_cm IS NULL OR l.distance_cm >= a.distance_min_cm)
        AND (l.distance_cm IS NULL OR a.distance_max_cm IS NULL OR l.distance_cm <= a.distance_max_cm)
        AND (l.ambient_lux IS NULL OR a.lux_min IS NULL OR l.ambient_lux >= a.lux_min)
        AND (l.ambient_lux IS NULL OR a.lux_max IS NULL OR l.ambient_lux <= a.lux_max)
            AS calibration_ok
    FROM localised l
    JOIN ref.activities a USING (activity_code)
    LEFT JOIN ref.activity_measures m USING (activity_code, measure_type)
)
SELECT patient_id, activity_code, exploitant_id, local_date, unit_eye,
    bool_or(is_counted AND calibration_ok) AS has_valid,
    bool_or(is_counted AND NOT calibration_ok) AS has_invalid,
    count(*) AS transmissions,
    max(received_at) AS last_received_at
FROM judged
GROUP BY ALL;
