-- De-duplication of a validated batch, against itself and against raw.{kind}.
-- Placeholders: {kind}; {key}, the key columns; {versioned}: true when a new payload for a known
-- key is a new version (enrollments, prescriptions), false when it is a conflict (transmissions).
-- ({{ }} would be literal braces of this template.)
-- Rows are ordered by (file_id, row_number): the first occurrence is the one kept.
--   status: loaded | duplicate (exact repeat of what is kept) | quarantined (final_reason says why)
CREATE OR REPLACE TEMP TABLE classified AS
WITH candidates AS (
    SELECT *, hash({key}) AS key_hash FROM validated WHERE reason IS NULL
),
kept AS (  -- rows already kept whose key hash is in the batch (integer join, then exact keys)
    SELECT r.key_hash, {key}, r.payload_hash, r.file_id, r.row_number
    FROM raw.{kind} r
    SEMI JOIN candidates c USING (key_hash)
),
contested_hashes AS (
    -- keys that need a decision: seen twice in the batch, or already kept. Every other row is
    -- simply loaded, which spares the ordering work below for almost all rows. A hash
    -- collision only sends a few more rows through the exact logic.
    SELECT key_hash FROM candidates GROUP BY key_hash HAVING count(*) > 1
    UNION
    SELECT key_hash FROM kept
),
kept_key AS (
    -- the payload of the latest version kept for each key (for a non-versioned kind, the only one)
    SELECT {key}, arg_max(payload_hash, (file_id, row_number)) AS kept_hash FROM kept GROUP BY ALL
),
ranked AS (
    SELECT c.*,
        k.kept_hash,
        row_number() OVER (PARTITION BY {key}, c.payload_hash
                           ORDER BY c.file_id, c.row_number) AS payload_rank,
        first_value(c.payload_hash) OVER (PARTITION BY {key}
                                          ORDER BY c.file_id, c.row_number) AS first_payload,
        -- versioned kinds: the version just before this row (kept, or earlier in the batch)
        coalesce(lag(c.payload_hash) OVER (PARTITION BY {key} ORDER BY c.file_id, c.row_number),
                 k.kept_hash) AS previous_payload
    FROM (SELECT * FROM candidates SEMI JOIN contested_hashes USING (key_hash)) c
    LEFT JOIN kept_key k USING ({key})
),
decided AS (
    SELECT *,
        CASE
            WHEN {versioned} THEN  -- a repeat of the current version is a duplicate; A, B, A
                                   -- is three versions (the last one received wins)
                CASE WHEN payload_hash = previous_payload THEN 'duplicate' ELSE 'loaded' END
            WHEN payload_hash <> coalesce(kept_hash, first_payload) THEN 'quarantined'
            WHEN kept_hash IS NOT NULL OR payload_rank > 1 THEN 'duplicate'
            ELSE 'loaded'
        END AS status
    FROM ranked
)
SELECT * EXCLUDE (kept_hash, payload_rank, first_payload, previous_payload),
    CASE WHEN status = 'quarantined' THEN 'conflicting_duplicate' END AS final_reason,
    CASE WHEN status = 'quarantined' THEN 'differs from the row kept for this key' END
        AS final_detail
FROM decided
UNION ALL BY NAME
SELECT c.*, 'loaded' AS status, NULL AS final_reason, NULL AS final_detail
FROM candidates c
ANTI JOIN contested_hashes USING (key_hash)
UNION ALL BY NAME
SELECT *, NULL AS key_hash, 'quarantined' AS status, reason AS final_reason,
    detail AS final_detail
FROM validated
WHERE reason IS NOT NULL;
