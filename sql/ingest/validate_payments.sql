-- The payer's answers to issued lines (rules.md R12), typed and checked against the ledger;
-- each bad row gets its reason. An amount may be written with a decimal comma (French billing
-- software) or a point, at most two decimals. A second answer for the same line is a duplicate
-- when identical, else contradictory_payment (ingest/classify.sql, pipelines/ingest.py).
-- The view judged_batch; ingest/validated.sql keeps it as the temp table `validated`.
CREATE OR REPLACE TEMP VIEW judged_batch AS
WITH cleaned AS (
    SELECT
        file_id, source_file, row_number, raw, read_reason, parse_error, as_read,
        nullif(trim(line_id), '') AS line_id,
        lower(nullif(trim(status), '')) AS status,
        nullif(replace(replace(trim(paid_amount), ' ', ''), ',', '.'), '') AS amount_text,
        nullif(trim(paid_on), '') AS paid_on_text,
        nullif(trim(rejection_code), '') AS rejection_code,
        nullif(trim(rejection_label), '') AS rejection_label
    FROM landing_batch
),
typed AS (
    SELECT c.*,
        CASE WHEN regexp_full_match(amount_text, '-?[0-9]+(\.[0-9]{1,2})?')
             THEN CAST(amount_text AS DECIMAL(10, 2)) END AS paid_amount,
        try_cast(paid_on_text AS DATE) AS paid_on,
        l.amount AS issued_amount
    FROM cleaned c
    LEFT JOIN ledger.issued_lines l USING (line_id)
),
judged AS (
    SELECT *,
        CASE WHEN is_valid_id(line_id) THEN '' ELSE 'line_id' END AS bad_ids,
        concat_ws(', ',
            CASE WHEN line_id IS NULL THEN 'line_id' END,
            CASE WHEN status IS NULL THEN 'status' END,
            CASE WHEN paid_on_text IS NULL THEN 'paid_on' END,
            CASE WHEN status IN ('paid', 'partially_paid') AND amount_text IS NULL
                 THEN 'paid_amount' END,
            CASE WHEN status = 'rejected' AND rejection_code IS NULL
                 THEN 'rejection_code' END) AS missing,
        concat_ws(', ',
            CASE WHEN amount_text IS NOT NULL AND paid_amount IS NULL THEN 'paid_amount' END,
            CASE WHEN paid_on IS NULL THEN 'paid_on' END) AS badly_typed,
        abs(paid_amount) > abs(issued_amount) AS overpaid,
        CASE status
            WHEN 'paid' THEN paid_amount <> issued_amount
            WHEN 'partially_paid' THEN paid_amount = 0 OR abs(paid_amount) >= abs(issued_amount)
            WHEN 'rejected' THEN coalesce(paid_amount <> 0, false)
        END AS inconsistent
    FROM typed
)
SELECT
    file_id, source_file, row_number, raw, as_read,
    line_id, status, paid_amount, paid_on, rejection_code, rejection_label,
    hash(line_id) AS key_hash,  -- the de-duplication key (pipelines/ingest.py DEDUP)
    hash(status, paid_amount, paid_on, rejection_code, rejection_label) AS payload_hash,
    CASE
        WHEN parse_error IS NOT NULL THEN read_reason
        WHEN missing <> '' THEN 'missing_field'
        WHEN bad_ids <> '' THEN 'invalid_id'
        WHEN badly_typed <> '' THEN 'bad_type'
        WHEN is_future(paid_on) THEN 'future_timestamp'
        WHEN NOT list_contains(getvariable('payment_statuses'), status) THEN 'invalid_status'
        WHEN issued_amount IS NULL THEN 'unknown_line'
        WHEN overpaid THEN 'overpayment'
        WHEN inconsistent THEN 'inconsistent_payment'
    END AS reason,
    CASE
        WHEN parse_error IS NOT NULL THEN parse_error
        WHEN missing <> '' THEN missing
        WHEN bad_ids <> '' THEN bad_ids
        WHEN badly_typed <> '' THEN badly_typed
        WHEN is_future(paid_on) THEN 'paid_on'
        WHEN NOT list_contains(getvariable('payment_statuses'), status) THEN status
        WHEN issued_amount IS NULL THEN line_id
        ELSE 'issued ' || issued_amount || ', answered ' || status || ' '
             || coalesce(CAST(paid_amount AS VARCHAR), 'without an amount')
    END AS detail
FROM judged;
