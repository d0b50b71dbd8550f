/* model
writes: [marts.claim_status]
group: billing
metadata: metadata/claim_status
description: >-
  Per issued line, the payer's answer: issued, paid, partially paid, rejected, unpaid overdue
  (R12).
*/
-- marts.claim_status (R12): per issued line, the payer's answer as reconciled. raw.payments
-- holds at most one answer per line (a second, contradictory one was quarantined at ingestion,
-- sql/ingest/validate_payments.sql). A line without an answer unpaid_after_days after its issue
-- date (Paris) is unpaid_overdue; a cancellation is never overdue.
CREATE OR REPLACE TABLE marts.claim_status AS
SELECT l.line_id, l.claim_id, l.batch_id, l.payee, l.enrollment_id, l.patient_id,
    l.operator_id, l.exploitant_id, l.period_index, l.date_of_care, l.code, l.amount, l.kind,
    CAST(timezone(getvariable('local_timezone'), l.issued_at) AS DATE) AS issued_on,
    CASE
        WHEN a.status IS NOT NULL THEN a.status
        WHEN l.kind <> 'cancellation'
             AND date_diff('day', issued_on, getvariable('as_of'))
                 > getvariable('unpaid_after_days') THEN 'unpaid_overdue'
        ELSE 'issued'
    END AS status,
    a.paid_amount, a.paid_on, a.rejection_code, a.rejection_label, a.source_file AS answer_file
FROM ledger.issued_lines l
LEFT JOIN raw.payments a USING (line_id)
ORDER BY l.line_id;
