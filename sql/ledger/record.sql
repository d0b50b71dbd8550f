-- Record a batch (pipelines/ledger.py, in the batch's transaction): its lines (the temp table
-- to_issue, sql/ledger/to_issue.sql) and, per period they bill or correct, the evidence of
-- effective use as the run decided it (R11): the period's decision, the counting rule and its
-- source, every unit (local day, and eye for eye-test lines) with the ids and source files of
-- the readings it counted, the data cut-off (as_of, the last file ingested) and the catalog's
-- version.
INSERT INTO ledger.issued_lines BY NAME
SELECT * EXCLUDE (batch_id), getvariable('batch_id') AS batch_id,
    getvariable('issued_at') AS issued_at
FROM to_issue;

CREATE OR REPLACE TEMP TABLE batch_periods AS
SELECT DISTINCT t.enrollment_id, t.period_index, t.patient_id, t.activity_code,
    t.date_of_care AS period_start
FROM to_issue t;

-- the readings counted for each unit of the batch's periods: transmissions of the patient and
-- line, of a type the enrollment's rule counts, measured on a day the period counts
CREATE OR REPLACE TEMP TABLE counted_readings AS
WITH rules AS (
    SELECT b.enrollment_id, b.period_index, b.patient_id, b.activity_code, p.period_start,
        p.counted_until, r.grain, m.measure_type
    FROM batch_periods b
    JOIN staging.periods p USING (enrollment_id, period_index)
    JOIN ref.counting_rules r
      ON r.activity_code = p.activity_code AND r.monitoring_profile = p.counting_profile
    JOIN ref.counting_measures m
      ON m.activity_code = p.activity_code AND m.monitoring_profile = p.counting_profile
),
readings AS (
    SELECT r.enrollment_id, r.period_index, r.period_start, r.counted_until, r.grain,
        t.transmission_id, t.source_file, t.eye, epoch_us(t.measured_at) AS utc_us
    FROM rules r
    JOIN raw.transmissions t
      ON t.patient_id = r.patient_id AND t.activity_code = r.activity_code
     -- a day on either side: the Paris day is settled below
     AND t.measured_at >= CAST(r.period_start - 1 AS TIMESTAMPTZ)
     AND t.measured_at < CAST(r.counted_until + 2 AS TIMESTAMPTZ)
    LEFT JOIN ref.measure_type_aliases a ON a.alias = t.measure_type
    WHERE coalesce(a.measure_type, t.measure_type) = r.measure_type
)
SELECT enrollment_id, period_index, local_date,
    CASE WHEN grain = 'eye_day' THEN coalesce(eye, '') ELSE '' END AS unit_eye,
    list(transmission_id ORDER BY transmission_id) AS transmission_ids,
    list(DISTINCT source_file ORDER BY source_file) AS source_files
FROM (
    SELECT d.*, ref.paris_date(d.utc_us, o.summer_start_us, o.summer_end_us,
                               o.standard_offset_us, o.summer_offset_us) AS local_date
    FROM readings d
    JOIN ref.paris_offsets o ON o.year = year(make_timestamp(d.utc_us))
)
WHERE local_date BETWEEN period_start AND counted_until
GROUP BY ALL;

INSERT INTO ledger.period_evidence BY NAME
WITH units AS (
    SELECT u.enrollment_id, u.period_index,
        list({'local_date': u.local_date, 'unit_eye': u.unit_eye, 'is_valid': u.is_valid,
              'valid_readings': u.valid_readings, 'failed_readings': u.failed_readings,
              'transmission_ids': c.transmission_ids, 'source_files': c.source_files}
             ORDER BY u.local_date, u.unit_eye) AS units
    FROM staging.unit_days u
    SEMI JOIN batch_periods b USING (enrollment_id, period_index)
    LEFT JOIN counted_readings c USING (enrollment_id, period_index, local_date, unit_eye)
    GROUP BY ALL
)
SELECT getvariable('batch_id') AS batch_id, b.enrollment_id, b.period_index, b.patient_id,
    b.activity_code, p.counting_profile,
    b.period_start, coalesce(p.period_end, b.period_start + getvariable('period_days') - 1)
        AS period_end,
    p.effective_end, p.expected_units, p.valid_units, p.invalid_units, p.data_status,
    coalesce(p.billable, false) AS billable,
    -- a period that no longer exists: the enrollment ended before it
    CASE WHEN p.enrollment_id IS NULL THEN 'after_enrollment_end' ELSE p.block_reason END
        AS block_reason,
    p.died_in_period,
    r.counted_measure_types || ': at least ' || r.min_per_day || ' a '
        || CASE WHEN r.grain = 'eye_day' THEN 'day and eye' ELSE 'day' END
        || ', ' || p.expected_units || ' expected per period' AS rule,
    r.status AS rule_status, r.source AS rule_source,
    getvariable('as_of') AS as_of,
    (SELECT max(ingested_at) FROM ops.ingested_files) AS last_ingested_at,
    (SELECT reference_hash FROM ref.version) AS catalog_version,
    coalesce(u.units, []) AS units,
    getvariable('issued_at') AS frozen_at
FROM batch_periods b
LEFT JOIN marts.patient_periods p USING (enrollment_id, period_index)
LEFT JOIN ref.counting_rules r
  ON r.activity_code = b.activity_code AND r.monitoring_profile = coalesce(p.counting_profile, '')
LEFT JOIN units u USING (enrollment_id, period_index);
