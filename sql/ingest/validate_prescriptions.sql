-- The contract's prescription fields, typed; each bad row gets its reason.
-- Over-long prescriptions are loaded and reported and capped by the rules (R7), not here.
-- The view judged_batch; ingest/validated.sql keeps it as the temp table `validated`.
CREATE OR REPLACE TEMP VIEW judged_batch AS
WITH cleaned AS (
    SELECT
        file_id, source_file, row_number, raw, read_reason, parse_error, as_read,
        nullif(trim(prescription_id), '') AS prescription_id,
        nullif(trim(enrollment_id), '') AS enrollment_id,
        lower(nullif(trim(kind), '')) AS kind,
        nullif(trim(valid_from), '') AS from_text,
        nullif(trim(valid_until), '') AS until_text,
        nullif(trim(recorded_at), '') AS recorded_text
    FROM landing_batch
),
typed AS (
    SELECT *,
        try_cast(from_text AS DATE) AS valid_from,
        try_cast(until_text AS DATE) AS valid_until,
        timestamp_with_offset(recorded_text) AS recorded_at
    FROM cleaned
),
judged AS (
    SELECT *,
        CASE WHEN ids_look_valid([prescription_id, enrollment_id]) THEN ''
             ELSE concat_ws(', ',
                CASE WHEN NOT is_valid_id(prescription_id) THEN 'prescription_id' END,
                CASE WHEN NOT is_valid_id(enrollment_id) THEN 'enrollment_id' END) END AS bad_ids,
        concat_ws(', ',
            CASE WHEN prescription_id IS NULL THEN 'prescription_id' END,
            CASE WHEN enrollment_id IS NULL THEN 'enrollment_id' END,
            CASE WHEN kind IS NULL THEN 'kind' END,
            CASE WHEN from_text IS NULL THEN 'valid_from' END,
            CASE WHEN until_text IS NULL THEN 'valid_until' END) AS missing,
        concat_ws(', ',
            CASE WHEN valid_from IS NULL THEN 'valid_from' END,
            CASE WHEN valid_until IS NULL THEN 'valid_until' END,
            CASE WHEN recorded_text IS NOT NULL AND recorded_at IS NULL
                 THEN 'recorded_at' END) AS badly_typed
    FROM typed
)
SELECT
    file_id, source_file, row_number, raw, as_read,
    prescription_id, enrollment_id, kind, valid_from, valid_until, recorded_at,
    hash(prescription_id) AS key_hash,  -- the de-duplication key (pipelines/ingest.py DEDUP)
    hash(enrollment_id, kind, valid_from, valid_until, recorded_at) AS payload_hash,
    CASE
        WHEN parse_error IS NOT NULL THEN read_reason
        WHEN missing <> '' THEN 'missing_field'
        WHEN bad_ids <> '' THEN 'invalid_id'
        WHEN is_naive_timestamp(recorded_text) THEN 'timestamp_without_offset'
        WHEN has_impossible_offset(recorded_text) THEN 'invalid_timestamp'
        WHEN badly_typed <> '' THEN 'bad_type'
        WHEN is_future(recorded_at) THEN 'future_timestamp'
        WHEN kind NOT IN ('trial', 'initial', 'renewal') THEN 'invalid_kind'
    END AS reason,
    CASE
        WHEN parse_error IS NOT NULL THEN parse_error
        WHEN missing <> '' THEN missing
        WHEN bad_ids <> '' THEN bad_ids
        WHEN is_naive_timestamp(recorded_text) THEN 'recorded_at'
        WHEN has_impossible_offset(recorded_text) THEN 'recorded_at'
        WHEN badly_typed <> '' THEN badly_typed
        WHEN is_future(recorded_at) THEN 'recorded_at'
        ELSE kind
    END AS detail
FROM judged;
