-- Write a validated and de-duplicated batch, whose loaded rows (loaded.sql) are already written:
-- rejected rows to ops.quarantine, and the per-file reconciliation (rows read = loaded +
-- quarantined + duplicates) to ops.ingested_files. ({{ }} would be literal braces of this
-- template.)
INSERT INTO ops.quarantine BY NAME
SELECT file_id, source_file, '{kind}' AS kind, row_number, reason, detail, raw_record,
    now() AS quarantined_at
FROM validated WHERE reason IS NOT NULL
UNION ALL BY NAME
SELECT d.file_id, d.source_file, '{kind}' AS kind, d.row_number,
    '{conflict_reason}' AS reason, 'differs from the row kept for this key' AS detail,
    -- JSON lines keep their text (jsonl_lines: the batch's lines, pipelines/ingest.py); CSV and
    -- Parquet rows are shown as the fields typed
    coalesce(rtrim(l.raw, E'\r\n'), CAST(to_json(struct_pack({typed_fields})) AS VARCHAR))
        AS raw_record,
    now() AS quarantined_at
FROM (SELECT * FROM decided WHERE dedup_status = 'quarantined') d
LEFT JOIN jsonl_lines l ON l.file_id = d.file_id AND l.row_number = d.row_number;

CREATE OR REPLACE TEMP TABLE batch_counts AS
WITH read AS (
    SELECT file_id, count(*) AS rows_read, count(*) FILTER (WHERE reason IS NOT NULL) AS bad
    FROM validated GROUP BY file_id
),
contested AS (
    SELECT file_id,
        count(*) FILTER (WHERE dedup_status = 'duplicate') AS duplicates,
        count(*) FILTER (WHERE dedup_status = 'quarantined') AS conflicts
    FROM decided GROUP BY file_id
)
SELECT r.file_id, r.rows_read,
    r.rows_read - r.bad - coalesce(c.duplicates, 0) - coalesce(c.conflicts, 0) AS rows_loaded,
    r.bad + coalesce(c.conflicts, 0) AS rows_quarantined,
    coalesce(c.duplicates, 0) AS duplicates_skipped
FROM read r LEFT JOIN contested c USING (file_id);

UPDATE ops.ingested_files f
SET rows_read = c.rows_read,
    rows_loaded = c.rows_loaded,
    rows_quarantined = c.rows_quarantined,
    duplicates_skipped = c.duplicates_skipped
FROM batch_counts c
WHERE f.file_id = c.file_id;

-- A record that was incomplete (the file was still being written) is resolved by the file's next
-- version: the same path, recorded later with other bytes, and read.
UPDATE ops.quarantine q
SET resolved_by_file_id = f.file_id
FROM (
    SELECT i.file_id AS incomplete_in, min(g.file_id) AS file_id
    FROM (SELECT DISTINCT file_id, source_file FROM ops.quarantine
          WHERE reason = 'incomplete_record' AND resolved_by_file_id IS NULL) i
    JOIN ops.ingested_files cut ON cut.file_id = i.file_id
    JOIN ops.ingested_files g  -- a later version with other bytes, read
      ON g.path = i.source_file AND g.file_id > i.file_id
     AND g.status = 'ingested' AND g.content_hash <> cut.content_hash
    GROUP BY i.file_id
) f
WHERE q.reason = 'incomplete_record' AND q.resolved_by_file_id IS NULL
  AND q.file_id = f.incomplete_in;
