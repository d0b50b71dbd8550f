-- The batch as judged by validate_<kind>.sql (the view judged_batch), kept as the temp table
-- `validated` that classify.sql and record.sql read. A rejected row is kept as read: JSON lines
-- as their text (line end stripped), CSV and Parquet rows as their fields. The text of the other
-- rows is not kept (record.sql reads it back for a conflicting duplicate).
CREATE OR REPLACE TEMP TABLE validated AS
SELECT * EXCLUDE (as_read, raw),
    CASE WHEN reason IS NOT NULL
         THEN coalesce(rtrim(raw, E'\r\n'), CAST(to_json(as_read) AS VARCHAR)) END AS raw_record
FROM judged_batch;
