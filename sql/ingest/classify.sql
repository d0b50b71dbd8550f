-- De-duplication of a validated batch, against itself and against raw.{kind}.
-- Placeholders: {kind}; {key}, the key columns; {versioned}: true when a new payload for a known
-- key is a new version (enrollments, prescriptions), false when it is a conflict (transmissions).
-- Rows are ordered by (file_id, row_number): the first occurrence is the one kept.
--   status: loaded | duplicate (exact repeat of what is kept) | quarantined (final_reason says why)
CREATE OR REPLACE TEMP TABLE classified AS
WITH candidates AS (
    SELECT * FROM validated WHERE reason IS NULL
),
kept AS (
    SELECT {key}, r.payload_hash
    FROM raw.{kind} r
    SEMI JOIN (SELECT DISTINCT {key} FROM candidates) c USING ({key})
),
kept_payload AS (
    SELECT DISTINCT {key}, payload_hash, true AS payload_kept FROM kept
),
kept_key AS (
    -- for a non-versioned kind a key is kept at most once, so this is its payload
    SELECT {key}, any_value(payload_hash) AS kept_hash FROM kept GROUP BY ALL
),
ranked AS (
    SELECT c.*,
        coalesce(p.payload_kept, false) AS payload_kept,
        k.kept_hash,
        row_number() OVER (PARTITION BY {key}, c.payload_hash
                           ORDER BY c.file_id, c.row_number) AS payload_rank,
        first_value(c.payload_hash) OVER (PARTITION BY {key}
                                          ORDER BY c.file_id, c.row_number) AS first_payload
    FROM candidates c
    LEFT JOIN kept_payload p USING ({key}, payload_hash)
    LEFT JOIN kept_key k USING ({key})
),
decided AS (
    SELECT *,
        CASE
            WHEN {versioned} THEN
                CASE WHEN payload_kept OR payload_rank > 1 THEN 'duplicate' ELSE 'loaded' END
            WHEN payload_hash <> coalesce(kept_hash, first_payload) THEN 'quarantined'
            WHEN kept_hash IS NOT NULL OR payload_rank > 1 THEN 'duplicate'
            ELSE 'loaded'
        END AS status
    FROM ranked
)
SELECT * EXCLUDE (payload_kept, kept_hash, payload_rank, first_payload),
    CASE WHEN status = 'quarantined' THEN 'conflicting_duplicate' END AS final_reason,
    CASE WHEN status = 'quarantined' THEN 'differs from the row kept for this key' END
        AS final_detail
FROM decided
UNION ALL BY NAME
SELECT *, 'quarantined' AS status, reason AS final_reason, detail AS final_detail
FROM validated
WHERE reason IS NOT NULL;
