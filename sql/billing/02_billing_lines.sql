/* model
writes: [marts.billing_lines, marts.billing_held, marts.billing_corrections, staging.due_lines, staging.lines_in_force]
group: billing
views: [marts.billing_lines, staging.lines_in_force]
metadata: metadata/billing_lines
description: >-
  Operator and exploitant lines per billable period, in claims of at most six consecutive
  periods: the lines in force in the ledger, the others ready or pending; periods waiting for a
  tariff are held; the corrections the ledger needs (R10, R11).
*/
-- marts.billing_lines (R10, R11): for every billable period, one operator line (TVA / TVB) and
-- one exploitant line (forfait technique), created together or not at all, grouped into claims
-- of at most claim_max_periods consecutive periods of one enrollment; marts.billing_held: the
-- billable periods waiting for a tariff; marts.billing_corrections: the corrections the ledger
-- needs (R11), issued by the next `observance issue`.
--
-- What was issued (ledger.issued_lines) is never changed here. A period with a line in force in
-- the ledger keeps that line and its claim; the other billable periods are grouped into claims
-- again at every run, from the decisions alone: the same landing files give the same claims in a
-- warehouse built in one run or night after night. A claim is *ready* once it can no longer grow
-- (it holds the maximum number of periods, the next period is closed and not billable or already
-- issued, or the enrollment has ended), else *pending*. The claim id is the enrollment id and the
-- index of the claim's first period.
--
-- staging.lines_in_force (a view): issued lines other than cancellations that no later line
-- corrects (a cancellation, a replacement or a re-issue refers to the line it corrects), with
-- their reconciled status (R12).
CREATE OR REPLACE VIEW staging.lines_in_force AS
SELECT l.*, s.status AS line_status, s.rejection_code, s.rejection_label
FROM ledger.issued_lines l
JOIN marts.claim_status s USING (line_id)
WHERE l.kind <> 'cancellation'
  AND l.line_id NOT IN (SELECT corrects_line_id FROM ledger.issued_lines
                        WHERE corrects_line_id IS NOT NULL);
CREATE OR REPLACE TEMP TABLE lines_in_force AS FROM staging.lines_in_force;

-- Billable periods with their two amounts: the operator forfait from the catalog, the forfait
-- technique in force on the period's first day (file active of the previous semester, R9).
CREATE OR REPLACE TEMP TABLE billable_periods AS
SELECT p.enrollment_id, p.patient_id, p.operator_id, p.exploitant_id, p.activity_code,
    p.period_index, p.period_start AS date_of_care, p.ald,
    a.operator_code, a.operator_amount, a.technique_code,
    s.technique_amount, s.schedule_note, s.applies_to_semester
FROM marts.patient_periods p
JOIN ref.activities a USING (activity_code)
LEFT JOIN marts.file_active_semester s
  ON s.exploitant_id = p.exploitant_id
 AND s.technique_code IS NOT DISTINCT FROM a.technique_code
 AND s.icd11_level = a.icd11_level AND s.tier = a.tier
 AND p.period_start BETWEEN s.applies_from AND s.applies_until
WHERE p.billable;

-- the periods with a line in force, and the claim they were issued in
CREATE OR REPLACE TEMP TABLE issued_periods AS
SELECT enrollment_id, period_index, min(claim_id) AS claim_id
FROM lines_in_force
GROUP BY ALL;

-- Periods that are billable but wait for a tariff: neither line is produced (GUIDE §7 pairing).
-- A period already issued does not wait: its lines are in force.
CREATE OR REPLACE TABLE marts.billing_held AS
SELECT enrollment_id, patient_id, exploitant_id, activity_code, period_index, date_of_care,
    'waiting_for_tariff' AS reason,
    coalesce(schedule_note, 'no forfait-technique amount for ' || coalesce(applies_to_semester,
             'this semester')) AS detail
FROM billable_periods
ANTI JOIN issued_periods USING (enrollment_id, period_index)
WHERE technique_amount IS NULL OR technique_code IS NULL;

CREATE OR REPLACE TEMP TABLE new_claims AS
WITH candidates AS (  -- (keys only: the windows below then sort narrow rows)
    SELECT enrollment_id, period_index FROM billable_periods
    ANTI JOIN issued_periods USING (enrollment_id, period_index)
    WHERE technique_amount IS NOT NULL AND technique_code IS NOT NULL
),
islands AS (  -- runs of consecutive periods, then chunks of at most claim_max_periods
    SELECT *,
        period_index - row_number() OVER (PARTITION BY enrollment_id ORDER BY period_index)
            AS island
    FROM candidates
),
chunked AS (
    SELECT *,
        (row_number() OVER (PARTITION BY enrollment_id, island ORDER BY period_index) - 1)
            // getvariable('claim_max_periods') AS chunk
    FROM islands
),
claims AS (
    SELECT *,
        min(period_index) OVER (PARTITION BY enrollment_id, island, chunk) AS first_index,
        max(period_index) OVER (PARTITION BY enrollment_id, island, chunk) AS last_index,
        count(*) OVER (PARTITION BY enrollment_id, island, chunk) AS periods_in_claim
    FROM chunked
)
SELECT c.enrollment_id, c.period_index,
    c.enrollment_id || '-C' || lpad(CAST(c.first_index AS VARCHAR), 3, '0') AS claim_id,
    CASE
        WHEN c.periods_in_claim = getvariable('claim_max_periods') THEN 'ready'
        -- the next period is already issued (e.g. this one waited for a late prescription)
        WHEN issued.enrollment_id IS NOT NULL THEN 'ready'
        WHEN nxt.is_closed AND NOT (nxt.billable AND nb.enrollment_id IS NOT NULL
                                    AND nb.technique_amount IS NOT NULL) THEN 'ready'
        WHEN nxt.enrollment_id IS NULL AND e.end_date IS NOT NULL THEN 'ready'
        ELSE 'pending'
    END AS claim_status
FROM claims c
JOIN staging.enrollments e USING (enrollment_id)
LEFT JOIN marts.patient_periods nxt
  ON nxt.enrollment_id = c.enrollment_id AND nxt.period_index = c.last_index + 1
LEFT JOIN billable_periods nb
  ON nb.enrollment_id = c.enrollment_id AND nb.period_index = c.last_index + 1
LEFT JOIN issued_periods issued
  ON issued.enrollment_id = c.enrollment_id AND issued.period_index = c.last_index + 1;

-- staging.due_lines: both lines of every billable period with a claim, as due today (`ready`,
-- `pending`, or `issued` when a line of the period is in force; the id of a line to issue: the
-- claim, the payee, the period, and a rank when the ledger already holds lines of that period
-- and payee). 100 % AMO with ALD, else the AMO share and the rest for the patient/AMC.
CREATE OR REPLACE TABLE staging.due_lines AS
WITH claimed AS (
    SELECT b.*, n.claim_id, n.claim_status FROM billable_periods b JOIN new_claims n
        ON n.enrollment_id = b.enrollment_id AND n.period_index = b.period_index
    UNION ALL
    SELECT b.*, i.claim_id, 'issued' AS claim_status FROM billable_periods b JOIN issued_periods i
        ON i.enrollment_id = b.enrollment_id AND i.period_index = b.period_index
),
payees AS (
    SELECT c.*, 'operator' AS payee, c.operator_code AS code, c.operator_amount AS amount
    FROM claimed c
    UNION ALL
    SELECT c.*, 'exploitant', c.technique_code, c.technique_amount
    FROM claimed c
),
priced AS (
    SELECT claim_id, claim_status, payee, enrollment_id, patient_id, operator_id, exploitant_id,
        activity_code, CAST(period_index AS INTEGER) AS period_index, date_of_care, code,
        CAST(amount AS DECIMAL(10, 2)) AS amount,
        CAST(CASE WHEN ald THEN amount
                  ELSE round(amount * CAST(getvariable('amo_share') AS DECIMAL(4, 2)), 2) END
             AS DECIMAL(10, 2)) AS amo_amount,
        CAST(amount - amo_amount AS DECIMAL(10, 2)) AS patient_amount,
        ald
    FROM payees
),
earlier AS (  -- lines the ledger already holds for the period and payee (cancelled ones)
    SELECT enrollment_id, period_index, payee, count(*) AS lines
    FROM ledger.issued_lines WHERE kind <> 'cancellation'
    GROUP BY ALL
)
SELECT p.*,
    p.claim_id || '/' || CASE p.payee WHEN 'operator' THEN 'O' ELSE 'T' END
        || lpad(CAST(p.period_index AS VARCHAR), 3, '0')
        || CASE WHEN e.lines > 0 THEN '#' || (e.lines + 1) ELSE '' END AS line_id
FROM priced p
LEFT JOIN earlier e  -- (ON, not USING: Spark puts the USING columns first in p.*)
  ON e.enrollment_id = p.enrollment_id AND e.period_index = p.period_index
 AND e.payee = p.payee;

-- marts.billing_lines (a view): the line in force when issued, else the line due (the view
-- follows the ledger at once: a batch issued shows in it without a run; on Spark it is a table
-- as of the last build, which `observance issue` and `reconcile` rebuild)
CREATE OR REPLACE VIEW marts.billing_lines AS
SELECT coalesce(f.line_id, d.line_id) AS line_id,
    d.claim_id, d.claim_status,
    -- a line not issued of a period already issued for the other payee is ready at once
    CASE WHEN f.line_id IS NOT NULL THEN f.line_status
         WHEN d.claim_status = 'issued' THEN 'ready'
         ELSE d.claim_status END AS line_status,
    d.payee, d.enrollment_id, d.patient_id, d.operator_id, d.exploitant_id, d.activity_code,
    d.period_index, d.date_of_care,
    coalesce(f.code, d.code) AS code,
    coalesce(f.amount, d.amount) AS amount,
    coalesce(f.amo_amount, d.amo_amount) AS amo_amount,
    coalesce(f.patient_amount, d.patient_amount) AS patient_amount,
    d.ald, f.batch_id, f.issued_at
FROM staging.due_lines d
LEFT JOIN staging.lines_in_force f USING (enrollment_id, period_index, payee);

-- R11 corrections of the lines in force whose period is decided again on as_of (it would be
-- closed on as_of: a run for an earlier date corrects nothing it cannot see):
-- * the period is no longer billable (or no longer exists: the enrollment ended before it) ->
--   a cancellation, the exact opposite amounts; a rejected line was never paid: nothing to cancel;
-- * its amount changed (a tariff, a file active) -> a cancellation and a replacement at the new
--   amount (an amount now unknown changes nothing: the line stays as issued);
-- * it was rejected (R12) and is still due -> a re-issue at today's amount.
-- Each refers to the line it corrects, with its reason and the decision that caused it.
CREATE OR REPLACE TABLE marts.billing_corrections AS
WITH judged AS (
    SELECT f.line_id, f.claim_id, f.payee, f.enrollment_id, f.patient_id, f.operator_id,
        f.exploitant_id, f.activity_code, f.period_index, f.date_of_care, f.code, f.amount,
        f.amo_amount, f.patient_amount, f.ald, f.line_status, f.rejection_code,
        f.rejection_label,
        d.amount AS due_amount, d.amo_amount AS due_amo, d.patient_amount AS due_patient,
        d.code AS due_code, d.enrollment_id IS NOT NULL AS still_due,
        p.block_reason, p.end_reason, p.end_date,
        d.amount IS NOT NULL AND d.amount <> f.amount AS amount_changed
    FROM lines_in_force f
    LEFT JOIN staging.due_lines d USING (enrollment_id, period_index, payee)
    LEFT JOIN marts.patient_periods p USING (enrollment_id, period_index)
    WHERE f.date_of_care + getvariable('period_days') - 1 < getvariable('as_of')
),
cancelled AS (
    SELECT *,
        CASE WHEN NOT still_due THEN 'period_no_longer_billable' ELSE 'amount_changed' END
            AS reason,
        CASE
            WHEN still_due THEN 'amount ' || amount || ' -> ' || due_amount
            WHEN block_reason IS NOT NULL THEN block_reason
            ELSE 'after_enrollment_end'
        END AS cause
    FROM judged
    WHERE line_status <> 'rejected' AND (NOT still_due OR amount_changed)
)
SELECT line_id || '/A' AS line_id, claim_id, payee, enrollment_id, patient_id, operator_id,
    exploitant_id, activity_code, period_index, date_of_care, code,
    -amount AS amount, -amo_amount AS amo_amount, -patient_amount AS patient_amount, ald,
    'cancellation' AS kind, line_id AS corrects_line_id, reason, cause
FROM cancelled
UNION ALL
SELECT line_id || '/R', claim_id, payee, enrollment_id, patient_id, operator_id, exploitant_id,
    activity_code, period_index, date_of_care, due_code, due_amount, due_amo, due_patient, ald,
    'replacement', line_id, reason, cause
FROM cancelled
WHERE still_due
UNION ALL
SELECT line_id || '/E', claim_id, payee, enrollment_id, patient_id, operator_id, exploitant_id,
    activity_code, period_index, date_of_care, due_code, due_amount, due_amo, due_patient, ald,
    'reissue', line_id, 'rejected',
    'rejected ' || rejection_code || coalesce(': ' || rejection_label, '')
FROM judged
WHERE line_status = 'rejected' AND still_due
ORDER BY enrollment_id, period_index, payee, line_id;
