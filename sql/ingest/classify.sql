-- De-duplication of a validated batch, against itself and against raw.{kind}: the decisions
-- for the few rows whose key is contested (contested.sql: dedup_status loaded | duplicate |
-- quarantined); every other valid row is loaded as it is (loaded.sql).
-- Placeholders: {kind}; {kept_rows}, the rows kept that may share a key with the batch (raw.{kind},
-- or for the raw dataset the few parts that hold them, pipelines/lake.py kept_rows); {key}, the
-- key columns; {versioned}: true when a new payload for a known
-- key is a new version (enrollments, prescriptions), false when it is a conflict (transmissions).
-- ({{ }} would be literal braces of this template.)
-- Rows are ordered by (file_id, row_number): the first occurrence is the one kept.
CREATE OR REPLACE TEMP TABLE decided AS
WITH contested AS (
    SELECT * FROM validated SEMI JOIN contested_hashes USING (key_hash) WHERE reason IS NULL
),
kept_key AS (
    -- the payload of the latest version kept for each key (for a non-versioned kind, the only one)
    SELECT {key}, arg_max(payload_hash, (file_id, row_number)) AS kept_hash
    FROM {kept_rows} SEMI JOIN contested_hashes USING (key_hash)
    GROUP BY ALL
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
    FROM contested c
    LEFT JOIN kept_key k USING ({key})
)
SELECT * EXCLUDE (kept_hash, payload_rank, first_payload, previous_payload),
    CASE
        WHEN {versioned} THEN  -- a repeat of the current version is a duplicate; A, B, A
                               -- is three versions (the last one received wins)
            CASE WHEN payload_hash = previous_payload THEN 'duplicate' ELSE 'loaded' END
        WHEN payload_hash <> coalesce(kept_hash, first_payload) THEN 'quarantined'
        WHEN kept_hash IS NOT NULL OR payload_rank > 1 THEN 'duplicate'
        ELSE 'loaded'
    END AS dedup_status
FROM ranked;
