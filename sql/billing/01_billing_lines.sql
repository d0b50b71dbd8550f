-- marts.billing_lines (R10): for every billable period, one operator line (TVA / TVB) and one
-- exploitant line (forfait technique), created together or not at all, grouped into claims of at
-- most claim_max_periods consecutive periods of one enrollment.
--
-- Claim ids are stable: a claim is *ready* once it can no longer grow (it holds the maximum number
-- of periods, the next period is closed and not billable or already claimed, or the enrollment
-- has ended); its lines are then frozen in ops.claim_lines and never renumbered or repriced by a
-- later run. A claim that can still grow is *pending* and recomputed each run. The claim id is
-- the enrollment id and the index of the claim's first period.

CREATE TABLE IF NOT EXISTS ops.claim_lines (
    claim_id VARCHAR NOT NULL, claim_status VARCHAR NOT NULL, payee VARCHAR NOT NULL,
    enrollment_id VARCHAR NOT NULL, patient_id VARCHAR NOT NULL, operator_id VARCHAR NOT NULL,
    exploitant_id VARCHAR NOT NULL, activity_code VARCHAR NOT NULL, period_index INTEGER NOT NULL,
    date_of_care DATE NOT NULL, code VARCHAR NOT NULL, amount DECIMAL(10, 2) NOT NULL,
    amo_amount DECIMAL(10, 2) NOT NULL, patient_amount DECIMAL(10, 2) NOT NULL,
    ald BOOLEAN NOT NULL, frozen_at TIMESTAMPTZ
);

-- Billable periods not yet in a frozen claim, with their two amounts: the operator forfait from
-- the catalog, the forfait technique in force on the period's first day (file active of the
-- previous semester, R9). A frozen period is never claimed again, so later steps need only
-- these (at B1, ~190 k of 556 k billable periods). (A temporary table: only this model reads it.)
DROP TABLE IF EXISTS staging.billable_periods;  -- a table of earlier versions
CREATE OR REPLACE TEMP TABLE frozen_periods AS  -- each frozen period has one operator line
SELECT enrollment_id, period_index FROM ops.claim_lines WHERE payee = 'operator';
CREATE OR REPLACE TEMP TABLE billable_periods AS
SELECT p.enrollment_id, p.patient_id, p.operator_id, p.exploitant_id, p.activity_code,
    p.period_index, p.period_start AS date_of_care, p.ald,
    a.operator_code, a.operator_amount, a.technique_code,
    s.technique_amount, s.schedule_note, s.applies_to_semester
FROM marts.patient_periods p
ANTI JOIN frozen_periods f USING (enrollment_id, period_index)
JOIN ref.activities a USING (activity_code)
LEFT JOIN marts.file_active_semester s
  ON s.exploitant_id = p.exploitant_id
 AND s.technique_code IS NOT DISTINCT FROM a.technique_code
 AND s.icd11_level = a.icd11_level AND s.tier = a.tier
 AND p.period_start BETWEEN s.applies_from AND s.applies_until
WHERE p.billable;

-- Periods that are billable but wait for a tariff: neither line is produced (GUIDE §7 pairing).
CREATE OR REPLACE TABLE marts.billing_held AS
SELECT enrollment_id, patient_id, exploitant_id, activity_code, period_index, date_of_care,
    'waiting_for_tariff' AS reason,
    coalesce(schedule_note, 'no forfait-technique amount for ' || coalesce(applies_to_semester,
             'this semester')) AS detail
FROM billable_periods
WHERE technique_amount IS NULL OR technique_code IS NULL;

CREATE OR REPLACE TEMP TABLE new_claims AS
WITH candidates AS (  -- (keys only: the windows below then sort narrow rows)
    SELECT enrollment_id, period_index FROM billable_periods
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
SELECT b.*, c.first_index, c.last_index, c.periods_in_claim,
    c.enrollment_id || '-C' || lpad(CAST(c.first_index AS VARCHAR), 3, '0') AS claim_id,
    CASE
        WHEN c.periods_in_claim = getvariable('claim_max_periods') THEN 'ready'
        -- the next period is already in a frozen claim (e.g. this one waited for a late
        -- prescription): this claim cannot grow
        WHEN frozen.enrollment_id IS NOT NULL THEN 'ready'
        WHEN nxt.is_closed AND NOT (nxt.billable AND nb.enrollment_id IS NOT NULL
                                    AND nb.technique_amount IS NOT NULL) THEN 'ready'
        WHEN nxt.enrollment_id IS NULL AND e.end_date IS NOT NULL THEN 'ready'
        ELSE 'pending'
    END AS claim_status
FROM claims c
JOIN billable_periods b USING (enrollment_id, period_index)
JOIN staging.enrollments e USING (enrollment_id)
LEFT JOIN marts.patient_periods nxt
  ON nxt.enrollment_id = c.enrollment_id AND nxt.period_index = c.last_index + 1
LEFT JOIN billable_periods nb
  ON nb.enrollment_id = c.enrollment_id AND nb.period_index = c.last_index + 1
LEFT JOIN frozen_periods frozen
  ON frozen.enrollment_id = c.enrollment_id AND frozen.period_index = c.last_index + 1;

-- Two lines per period; 100 % AMO with ALD, else the AMO share and the rest for the patient/AMC.
CREATE OR REPLACE TEMP TABLE new_lines AS
WITH payees AS (
    SELECT n.*, 'operator' AS payee, n.operator_code AS code, n.operator_amount AS amount
    FROM new_claims n
    UNION ALL
    SELECT n.*, 'exploitant', n.technique_code, n.technique_amount
    FROM new_claims n
)
SELECT claim_id, claim_status, payee, enrollment_id, patient_id, operator_id, exploitant_id,
    activity_code, CAST(period_index AS INTEGER) AS period_index, date_of_care, code,
    CAST(amount AS DECIMAL(10, 2)) AS amount,
    CAST(CASE WHEN ald THEN amount
              ELSE round(amount * CAST(getvariable('amo_share') AS DECIMAL(4, 2)), 2) END
         AS DECIMAL(10, 2)) AS amo_amount,
    CAST(amount - amo_amount AS DECIMAL(10, 2)) AS patient_amount,
    ald,
    CASE WHEN claim_status = 'ready' THEN now() END AS frozen_at
FROM payees;

-- marts.billing_lines = the frozen lines (ops.claim_lines) and this run's pending ones. Kept up
-- to date instead of rewritten: a pending line is replaced only when it changed (a night changes
-- a few percent of them; replacing all 260 k pending lines of a B1 night cost 0.35 s plus 0.25 s
-- of checkpoint), and this run's ready lines are added, in the same transaction as
-- ops.claim_lines. When the mart does not hold exactly as many ready lines as ops.claim_lines
-- (first run, a copy edited by hand), it is rebuilt from ops.claim_lines first.
CREATE TABLE IF NOT EXISTS marts.billing_lines AS SELECT * FROM ops.claim_lines LIMIT 0;
SET VARIABLE billing_lines_rebuild =
    (SELECT count(*) FROM marts.billing_lines WHERE claim_status = 'ready')
    <> (SELECT count(*) FROM ops.claim_lines);
-- the pending lines this run computes again identically (every column but frozen_at, which a
-- pending line does not have) stay as they are; a null in a column would only make its line be
-- replaced like a changed one
CREATE OR REPLACE TEMP TABLE unchanged_lines AS
SELECT b.rowid AS mart_rowid, claim_id, payee, period_index
FROM marts.billing_lines b
JOIN new_lines n USING (
    claim_id, claim_status, payee, enrollment_id, patient_id, operator_id, exploitant_id,
    activity_code, period_index, date_of_care, code, amount, amo_amount, patient_amount, ald)
WHERE b.claim_status = 'pending' AND NOT getvariable('billing_lines_rebuild');
DELETE FROM marts.billing_lines
WHERE (claim_status = 'pending' OR getvariable('billing_lines_rebuild'))
  AND rowid NOT IN (SELECT mart_rowid FROM unchanged_lines);
INSERT INTO marts.billing_lines BY NAME
SELECT * FROM ops.claim_lines WHERE getvariable('billing_lines_rebuild');

INSERT INTO ops.claim_lines BY NAME SELECT * FROM new_lines WHERE claim_status = 'ready';
INSERT INTO marts.billing_lines BY NAME
SELECT n.* FROM new_lines n ANTI JOIN unchanged_lines USING (claim_id, payee, period_index);
