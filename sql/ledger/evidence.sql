-- The evidence frozen for the issued periods of a claim ($claim) or an enrollment
-- ($enrollment), one row per batch and period, with the lines issued in that batch
-- (pipelines/evidence.py).
SELECT e.batch_id, b.issued_at, b.payee, e.enrollment_id, e.patient_id, e.activity_code,
    e.period_index, e.period_start, e.period_end, e.effective_end, e.counting_profile,
    e.expected_units, e.valid_units, e.invalid_units, e.data_status, e.billable,
    e.block_reason, e.died_in_period, e.rule, e.rule_status, e.rule_source, e.as_of,
    e.last_ingested_at, e.catalog_version,
    (SELECT string_agg(l.line_id || ' ' || l.kind || ' ' || l.amount, ', ' ORDER BY l.line_id)
     FROM ledger.issued_lines l
     WHERE l.batch_id = e.batch_id AND l.enrollment_id = e.enrollment_id
       AND l.period_index = e.period_index) AS lines,
    e.units
FROM ledger.period_evidence e
JOIN ledger.export_batches b USING (batch_id)
WHERE (e.enrollment_id, e.period_index) IN (
    SELECT enrollment_id, period_index FROM ledger.issued_lines
    WHERE claim_id = $claim OR enrollment_id = $enrollment)
ORDER BY e.enrollment_id, e.period_index, e.batch_id;
