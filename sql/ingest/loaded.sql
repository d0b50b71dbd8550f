-- The rows of a validated and de-duplicated batch that are loaded (classify.sql decided the
-- contested ones), as the temp view batch_loaded that pipelines/ingest.py writes to raw.{kind}
-- (for transmissions: a new part of the lake, pipelines/lake.py). ({{ }} would be literal braces
-- of this template.)
CREATE OR REPLACE TEMP VIEW batch_loaded AS
SELECT {field_list}, key_hash, payload_hash, file_id, source_file, row_number
FROM validated
ANTI JOIN contested_hashes USING (key_hash)
WHERE reason IS NULL
UNION ALL BY NAME
SELECT {field_list}, key_hash, payload_hash, file_id, source_file, row_number
FROM decided
WHERE dedup_status = 'loaded';
