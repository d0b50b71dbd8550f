-- The lines one `observance issue` records (pipelines/ledger.py): the ready lines and the
-- pending corrections of the payee, within the filters (null: all), never a line the ledger
-- already holds (issued twice before a run rebuilt the marts). In the columns of the issued file.
CREATE OR REPLACE TEMP TABLE to_issue AS
WITH candidates AS (
    SELECT line_id, 'original' AS kind, CAST(NULL AS VARCHAR) AS corrects_line_id,
        CAST(NULL AS VARCHAR) AS reason, CAST(NULL AS VARCHAR) AS cause,
        claim_id, payee, enrollment_id, patient_id, operator_id, exploitant_id, activity_code,
        period_index, date_of_care, code, amount, amo_amount, patient_amount, ald
    FROM marts.billing_lines
    WHERE line_status = 'ready'
    UNION ALL
    SELECT line_id, kind, corrects_line_id, reason, cause,
        claim_id, payee, enrollment_id, patient_id, operator_id, exploitant_id, activity_code,
        period_index, date_of_care, code, amount, amo_amount, patient_amount, ald
    FROM marts.billing_corrections
)
SELECT getvariable('batch_id') AS batch_id, c.*
FROM candidates c
WHERE c.payee = getvariable('issue_payee')
  AND (getvariable('issue_exploitant_id') IS NULL
       OR c.exploitant_id = getvariable('issue_exploitant_id'))
  AND (getvariable('issue_operator_id') IS NULL
       OR c.operator_id = getvariable('issue_operator_id'))
  AND c.line_id NOT IN (SELECT line_id FROM ledger.issued_lines);
