-- R1 and the contract: type every field of the batch and give each bad row its reason
-- (the first that applies, in the order of pipelines/contract.py QUARANTINE_REASONS).
-- Identifiers are trimmed; other fields are taken as sent (an empty text is a missing value).
-- The view judged_batch; ingest/validated.sql keeps it as the temp table `validated`.
CREATE OR REPLACE TEMP VIEW judged_batch AS
WITH cleaned AS (
    SELECT
        file_id, source_file, row_number, raw, read_reason, parse_error, as_read,
        nullif(trim(transmission_id), '') AS transmission_id,
        nullif(trim(exploitant_id), '') AS exploitant_id,
        nullif(activity_code, '') AS activity_code,
        nullif(trim(patient_id), '') AS patient_id,
        nullif(measure_type, '') AS measure_type,
        upper(nullif(eye, '')) AS eye,
        nullif(measured_at, '') AS measured_at_text,
        nullif(received_at, '') AS received_at_text,
        nullif(value, '') AS value_text,
        nullif(unit, '') AS unit,
        nullif(distance_cm, '') AS distance_text,
        nullif(ambient_lux, '') AS lux_text
    FROM landing_batch
),
typed AS (
    SELECT o.*,
        timestamp_with_offset(measured_at_text) AS measured_at,
        timestamp_with_offset(received_at_text) AS received_at,
        try_cast(value_text AS DOUBLE) AS value,
        try_cast(distance_text AS DOUBLE) AS distance_cm,
        try_cast(lux_text AS DOUBLE) AS ambient_lux,
        a.activity_code IS NOT NULL AS known_activity,
        coalesce(m.needs_eye, false) AS needs_eye
    FROM cleaned o
    LEFT JOIN ref.activities a USING (activity_code)
    -- (a type sent under an older name is an eye test when its current one is)
    LEFT JOIN ref.measure_type_aliases al ON al.alias = o.measure_type
    LEFT JOIN ref.activity_measures m
      ON m.activity_code = o.activity_code
     AND m.measure_type = coalesce(al.measure_type, o.measure_type)
),
dated_years AS (  -- R1: the UTC instants ref.paris_offsets can date, [lo_us, hi_us)
    SELECT epoch_us(make_timestamp(min(year), 1, 1, 0, 0, 0)) AS lo_us,
           epoch_us(make_timestamp(max(year) + 1, 1, 1, 0, 0, 0)) AS hi_us
    FROM ref.paris_offsets
),
judged AS (
    SELECT typed.*,
        NOT (epoch_us(measured_at) >= lo_us AND epoch_us(measured_at) < hi_us) AS undatable,
        CASE WHEN ids_look_valid([transmission_id, exploitant_id, patient_id]) THEN ''
             ELSE concat_ws(', ',
                CASE WHEN NOT is_valid_id(transmission_id) THEN 'transmission_id' END,
                CASE WHEN NOT is_valid_id(exploitant_id) THEN 'exploitant_id' END,
                CASE WHEN NOT is_valid_id(patient_id) THEN 'patient_id' END) END AS bad_ids,
        concat_ws(', ',
            CASE WHEN measured_at IS NULL AND has_impossible_offset(measured_at_text)
                 THEN 'measured_at' END,
            CASE WHEN received_at IS NULL AND has_impossible_offset(received_at_text)
                 THEN 'received_at' END) AS impossible,
        concat_ws(', ',
            CASE WHEN is_future(measured_at) THEN 'measured_at' END,
            CASE WHEN is_future(received_at) THEN 'received_at' END) AS future,
        concat_ws(', ',
            CASE WHEN transmission_id IS NULL THEN 'transmission_id' END,
            CASE WHEN exploitant_id IS NULL THEN 'exploitant_id' END,
            CASE WHEN activity_code IS NULL THEN 'activity_code' END,
            CASE WHEN patient_id IS NULL THEN 'patient_id' END,
            CASE WHEN measure_type IS NULL THEN 'measure_type' END,
            CASE WHEN measured_at_text IS NULL THEN 'measured_at' END) AS missing,
        concat_ws(', ',
            CASE WHEN is_naive_timestamp(measured_at_text) THEN 'measured_at' END,
            CASE WHEN is_naive_timestamp(received_at_text) THEN 'received_at' END
        ) AS naive,
        concat_ws(', ',
            CASE WHEN measured_at IS NULL THEN 'measured_at' END,
            CASE WHEN received_at_text IS NOT NULL AND received_at IS NULL THEN 'received_at' END,
            CASE WHEN value_text IS NOT NULL AND NOT coalesce(isfinite(value), false) THEN 'value' END,
            CASE WHEN distance_text IS NOT NULL AND NOT coalesce(isfinite(distance_cm), false)
                 THEN 'distance_cm' END,
            CASE WHEN lux_text IS NOT NULL AND NOT coalesce(isfinite(ambient_lux), false)
                 THEN 'ambient_lux' END) AS badly_typed
    FROM typed, dated_years
)
SELECT
    file_id, source_file, row_number, raw, as_read,
    transmission_id, exploitant_id, activity_code, patient_id, measure_type, eye,
    measured_at, received_at, value, unit, distance_cm, ambient_lux,
    hash(exploitant_id, transmission_id) AS key_hash,  -- the de-duplication key (pipelines/ingest.py DEDUP)
    hash(activity_code, patient_id, measure_type, eye, measured_at, value, unit,
         distance_cm, ambient_lux) AS payload_hash,
    CASE
        WHEN parse_error IS NOT NULL THEN read_reason
        WHEN missing <> '' THEN 'missing_field'
        WHEN bad_ids <> '' THEN 'invalid_id'
        WHEN naive <> '' THEN 'timestamp_without_offset'
        WHEN impossible <> '' THEN 'invalid_timestamp'
        WHEN badly_typed <> '' THEN 'bad_type'
        WHEN future <> '' THEN 'future_timestamp'
        WHEN undatable THEN 'timestamp_out_of_range'
        WHEN NOT known_activity THEN 'unknown_activity'
        WHEN (needs_eye AND eye IS NULL) OR eye NOT IN ('OD', 'OS') THEN 'invalid_eye'
    END AS reason,
    CASE
        WHEN parse_error IS NOT NULL THEN parse_error
        WHEN missing <> '' THEN missing
        WHEN bad_ids <> '' THEN bad_ids
        WHEN naive <> '' THEN naive
        WHEN impossible <> '' THEN impossible
        WHEN badly_typed <> '' THEN badly_typed
        WHEN future <> '' THEN future
        WHEN undatable THEN 'measured_at'
        WHEN NOT known_activity THEN activity_code
        ELSE coalesce(eye, 'eye missing')
    END AS detail
FROM judged;
