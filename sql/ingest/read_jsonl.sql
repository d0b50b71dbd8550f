-- JSON lines as rows of landing_batch (pipelines/ingest.py _validate). `jsonl_lines(file_id,
-- source_file, row_number, raw, read_reason, line_error)` is the registered Arrow table of the batch's
-- lines (read_reason and line_error set on the few lines known bad as read: not UTF-8, a last line
-- without its line end); {paths} and {columns} come from the contract ({{ }} are literal braces of this template).
-- A line that is not a JSON object is kept whole with parse_error set (-> malformed_record).
-- `raw` is passed on as read: its line end is stripped only for the rows that keep it (copying
-- every line's text cost more than extracting its fields). `starts_with(raw, '{{')` settles
-- almost every line before the costlier trims are evaluated.
SELECT
    file_id,
    source_file,
    row_number,
    raw,
    coalesce(read_reason, 'malformed_record') AS read_reason,
    CASE
        WHEN line_error IS NOT NULL THEN line_error
        WHEN fields IS NULL
             OR NOT (starts_with(raw, '{{') OR starts_with(ltrim(raw, E' \t'), '{{'))
            THEN 'not a JSON object'
    END AS parse_error,
    {columns}
FROM (
    SELECT *, try(json_extract_string(raw, [{paths}])) AS fields
    FROM jsonl_lines
    WHERE starts_with(raw, '{{') OR trim(raw, E' \t\r\n') <> ''
)
