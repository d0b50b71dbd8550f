-- Write a classified batch: loaded rows to raw.{kind}, rejected rows to ops.quarantine, and the
-- per-file reconciliation (rows read = loaded + quarantined + duplicates) to ops.ingested_files.
INSERT INTO raw.{kind} BY NAME
SELECT {field_list}, key_hash, payload_hash, file_id, source_file, row_number
FROM classified
WHERE status = 'loaded';

INSERT INTO ops.quarantine BY NAME
SELECT c.file_id, c.source_file, '{kind}' AS kind, c.row_number,
    c.final_reason AS reason, c.final_detail AS detail,
    -- JSON lines keep their text; CSV and Parquet rows are shown as the fields as read
    coalesce(c.raw, CAST(to_json(struct_pack({raw_fields})) AS VARCHAR)) AS raw_record,
    now() AS quarantined_at
FROM (SELECT * FROM classified WHERE status = 'quarantined') c
JOIN landing_batch b USING (file_id, row_number);

UPDATE ops.ingested_files f
SET rows_read = c.rows_read,
    rows_loaded = c.rows_loaded,
    rows_quarantined = c.rows_quarantined,
    duplicates_skipped = c.duplicates_skipped
FROM (
    SELECT file_id,
        count(*) AS rows_read,
        count(*) FILTER (WHERE status = 'loaded') AS rows_loaded,
        count(*) FILTER (WHERE status = 'quarantined') AS rows_quarantined,
        count(*) FILTER (WHERE status = 'duplicate') AS duplicates_skipped
    FROM classified
    GROUP BY file_id
) c
WHERE f.file_id = c.file_id;
