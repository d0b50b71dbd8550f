-- JSON lines as rows of landing_batch (pipelines/ingest.py _validate). `jsonl_lines(file_id,
-- source_file, row_number, raw, encoding_error)` is the registered Arrow table of the batch's
-- lines; {paths} and {columns} come from the contract ({{ }} are literal braces of this template).
-- A line that is not a JSON object is kept whole with parse_error set (-> malformed_record).
-- `raw` is passed on as read: its line end is stripped only for the rows that keep it (copying
-- every line's text cost more than extracting its fields). `starts_with(raw, '{{')` settles
-- almost every line before the costlier trims are evaluated.
SELECT
    file_id,
    source_file,
    row_number,
    raw,
    CASE
        WHEN encoding_error IS NOT NULL THEN encoding_error
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
