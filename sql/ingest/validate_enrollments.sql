-- The contract's enrollment fields, typed; each bad row gets its reason.
-- An end date before the start date is loaded and reported as a data-quality finding (R2).
-- The view judged_batch; ingest/validated.sql keeps it as the temp table `validated`.
CREATE OR REPLACE TEMP VIEW judged_batch AS
WITH cleaned AS (
    SELECT
        file_id, source_file, row_number, raw, read_reason, parse_error, as_read,
        nullif(trim(enrollment_id), '') AS enrollment_id,
        nullif(trim(patient_id), '') AS patient_id,
        nullif(trim(activity_code), '') AS activity_code,
        nullif(trim(exploitant_id), '') AS exploitant_id,
        nullif(trim(operator_id), '') AS operator_id,
        nullif(trim(start_date), '') AS start_text,
        nullif(trim(end_date), '') AS end_text,
        lower(nullif(trim(end_reason), '')) AS end_reason,
        lower(nullif(trim(ald), '')) AS ald_text,
        lower(nullif(trim(monitoring_profile), '')) AS monitoring_profile,
        nullif(trim(sessions_per_week), '') AS sessions_text,
        nullif(trim(recorded_at), '') AS recorded_text
    FROM landing_batch
),
typed AS (
    SELECT c.*,
        try_cast(start_text AS DATE) AS start_date,
        try_cast(end_text AS DATE) AS end_date,
        try_cast(ald_text AS BOOLEAN) AS ald,
        timestamp_with_offset(recorded_text) AS recorded_at,
        -- R3: a whole number of sessions a week in the contract's range ('3.0' is 3, '3.5' bad)
        try_cast(sessions_text AS DOUBLE) AS sessions_number,
        CASE WHEN sessions_number = floor(sessions_number)
              AND sessions_number BETWEEN getvariable('sessions_per_week_min')
                                      AND getvariable('sessions_per_week_max')
             THEN CAST(sessions_number AS INTEGER) END AS sessions_per_week,
        a.activity_code IS NOT NULL AS known_activity
    FROM cleaned c
    LEFT JOIN ref.activities a USING (activity_code)
),
judged AS (
    SELECT *,
        CASE WHEN ids_look_valid([enrollment_id, patient_id, exploitant_id, operator_id]) THEN ''
             ELSE concat_ws(', ',
                CASE WHEN NOT is_valid_id(enrollment_id) THEN 'enrollment_id' END,
                CASE WHEN NOT is_valid_id(patient_id) THEN 'patient_id' END,
                CASE WHEN NOT is_valid_id(exploitant_id) THEN 'exploitant_id' END,
                CASE WHEN NOT is_valid_id(operator_id) THEN 'operator_id' END) END AS bad_ids,
        concat_ws(', ',
            CASE WHEN enrollment_id IS NULL THEN 'enrollment_id' END,
            CASE WHEN patient_id IS NULL THEN 'patient_id' END,
            CASE WHEN activity_code IS NULL THEN 'activity_code' END,
            CASE WHEN exploitant_id IS NULL THEN 'exploitant_id' END,
            CASE WHEN operator_id IS NULL THEN 'operator_id' END,
            CASE WHEN start_text IS NULL THEN 'start_date' END,
            CASE WHEN ald_text IS NULL THEN 'ald' END) AS missing,
        concat_ws(', ',
            CASE WHEN start_date IS NULL THEN 'start_date' END,
            CASE WHEN end_text IS NOT NULL AND end_date IS NULL THEN 'end_date' END,
            CASE WHEN ald IS NULL THEN 'ald' END,
            CASE WHEN recorded_text IS NOT NULL AND recorded_at IS NULL
                 THEN 'recorded_at' END) AS badly_typed
    FROM typed
)
SELECT
    file_id, source_file, row_number, raw, as_read,
    enrollment_id, patient_id, activity_code, exploitant_id, operator_id,
    start_date, end_date, end_reason, ald, monitoring_profile, sessions_per_week, recorded_at,
    -- R3: sessions a week that are not a whole number from 1 to 7 are kept as sent, and the
    -- rule's default applies (a finding, 07_data_quality.sql): the row itself still counts
    CASE WHEN sessions_per_week IS NULL THEN sessions_text END AS sessions_per_week_sent,
    hash(enrollment_id) AS key_hash,  -- the de-duplication key (pipelines/ingest.py DEDUP)
    hash(patient_id, activity_code, exploitant_id, operator_id, start_date, end_date,
         end_reason, ald, monitoring_profile, sessions_text, recorded_at) AS payload_hash,
    CASE
        WHEN parse_error IS NOT NULL THEN read_reason
        WHEN missing <> '' THEN 'missing_field'
        WHEN bad_ids <> '' THEN 'invalid_id'
        WHEN is_naive_timestamp(recorded_text) THEN 'timestamp_without_offset'
        WHEN has_impossible_offset(recorded_text) THEN 'invalid_timestamp'
        WHEN badly_typed <> '' THEN 'bad_type'
        WHEN is_future(recorded_at) THEN 'future_timestamp'
        WHEN NOT known_activity THEN 'unknown_activity'
    END AS reason,
    CASE
        WHEN parse_error IS NOT NULL THEN parse_error
        WHEN missing <> '' THEN missing
        WHEN bad_ids <> '' THEN bad_ids
        WHEN is_naive_timestamp(recorded_text) THEN 'recorded_at'
        WHEN has_impossible_offset(recorded_text) THEN 'recorded_at'
        WHEN badly_typed <> '' THEN badly_typed
        WHEN is_future(recorded_at) THEN 'recorded_at'
        ELSE activity_code
    END AS detail
FROM judged;
