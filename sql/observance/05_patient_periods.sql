/* model
writes: [marts.patient_periods]
group: observance
incremental: true
consumes: [ops.periods_pending, ops.receipts_pending]
compares:
  staging.enrollments: ['*']
  staging.prescriptions: [enrollment_id, valid_from, covers_until]
metadata: metadata/patient_periods
description: >-
  One row per enrollment x period: completeness, billability, flags (R3-R7).
*/
-- marts.patient_periods: one row per enrollment x 30-day period, with the decisions of
-- R4 (completeness, data_status), R5 (billable, block_reason), R6 (reinforce, stop), R7.
--
-- Incremental (pipelines/models.py) at period grain: a night decides again only the periods
-- whose row can change, and leaves the others as they are:
-- * the periods counted again by 04_period_units.sql (ops.periods_pending), and the period after
--   each (its previous period's status);
-- * every period, before and after, of an enrollment whose fields or prescriptions changed
--   (enrollments_changes, prescriptions_changes: from the runner's snapshots);
-- * the periods ending on or after the earlier of the evaluation date of the last build and
--   this one (periods closed, added or removed by a new date);
-- * the periods holding a receipt day new since the last run (ops.receipts_pending, filled by
--   02_daily_units.sql: the weekly transmission gap).
-- (New rows are appended: query with ORDER BY.)
-- R4: exactly the threshold is sufficient ("inférieure à 50 %" is strict)
CREATE OR REPLACE TEMP MACRO data_status(valid_units, expected_units) AS
    CASE
        WHEN valid_units = 0 THEN 'no_data'
        WHEN valid_units < getvariable('sufficiency_threshold') * expected_units
            THEN 'insufficient'
        ELSE 'sufficient'
    END;
CREATE TABLE IF NOT EXISTS marts.patient_periods (
    enrollment_id VARCHAR, patient_id VARCHAR, activity_code VARCHAR, exploitant_id VARCHAR,
    operator_id VARCHAR, period_index INTEGER, period_start DATE, period_end DATE,
    effective_end DATE, is_closed BOOLEAN, expected_units INTEGER, valid_units BIGINT,
    invalid_units BIGINT, completeness DOUBLE, data_status VARCHAR, billable BOOLEAN,
    block_reason VARCHAR, reinforce_recommended BOOLEAN, stop_required BOOLEAN,
    died_in_period BOOLEAN, ended_in_period BOOLEAN, has_prescription BOOLEAN, ald BOOLEAN,
    start_date DATE, end_date DATE, end_reason VARCHAR, monitoring_profile VARCHAR,
    counting_profile VARCHAR, max_gap_days INTEGER, weekly_transmission_missed BOOLEAN
);
-- the enrollments whose fields or prescriptions changed since the last build
CREATE OR REPLACE TEMP TABLE changed_enrollments AS
SELECT enrollment_id FROM enrollments_changes
UNION
SELECT enrollment_id FROM prescriptions_changes;

-- the periods to decide again, by key (in full mode: none listed, every period is decided)
CREATE OR REPLACE TEMP TABLE redecided AS
WITH keys AS (
    SELECT enrollment_id, period_index, effective_end FROM staging.periods
    UNION ALL
    SELECT enrollment_id, period_index, effective_end FROM marts.patient_periods
),
redecided AS (
    SELECT enrollment_id, period_index FROM keys
    SEMI JOIN changed_enrollments USING (enrollment_id)
    UNION
    SELECT enrollment_id, period_index FROM keys
    WHERE effective_end >= least(getvariable('previous_as_of'), getvariable('as_of'))
    UNION
    SELECT enrollment_id, period_index FROM ops.periods_pending
    UNION
    SELECT enrollment_id, period_index + 1 FROM ops.periods_pending
    UNION
    SELECT p.enrollment_id, p.period_index
    FROM staging.periods p
    JOIN staging.enrollments e USING (enrollment_id)
    JOIN ops.receipts_pending r
      ON r.patient_id = e.patient_id AND r.activity_code = e.activity_code
     AND r.receipt_date BETWEEN p.period_start AND p.effective_end
)
SELECT * FROM redecided WHERE NOT getvariable('full_build');

CREATE OR REPLACE TEMP TABLE decisions AS
WITH periods AS (  -- the periods to decide
    SELECT * FROM staging.periods WHERE getvariable('full_build')
    UNION ALL
    SELECT p.* FROM staging.periods p SEMI JOIN redecided USING (enrollment_id, period_index)
    WHERE NOT getvariable('full_build')
),
receipts AS (  -- R3 weekly transmission: the days of the period, up to its effective end (an
              -- open period: up to the day before as_of), on which readings of a type its rule
              -- counts were received, and the days without any between them
    SELECT enrollment_id, period_index, receipt_date,
        date_diff('day', lag(receipt_date) OVER (PARTITION BY enrollment_id, period_index
                                                 ORDER BY receipt_date), receipt_date) - 1 AS gap
    FROM (
        SELECT DISTINCT p.enrollment_id, p.period_index, d.receipt_date
        FROM periods p
        JOIN ref.counting_rules r
          ON r.activity_code = p.activity_code AND r.monitoring_profile = p.counting_profile
        JOIN ref.counting_measures m
          ON m.activity_code = p.activity_code AND m.monitoring_profile = p.counting_profile
        JOIN staging.enrollments e USING (enrollment_id)
        JOIN staging.receipt_days d
          ON d.patient_id = e.patient_id AND d.activity_code = e.activity_code
         AND d.measure_type = m.measure_type
         AND d.receipt_date BETWEEN p.period_start
                                AND least(p.effective_end, getvariable('as_of') - 1)
        WHERE r.max_transmission_gap_days IS NOT NULL
    )
),
received AS (
    SELECT enrollment_id, period_index, min(receipt_date) AS first_receipt,
        max(receipt_date) AS last_receipt, coalesce(max(gap), 0) AS inner_gap
    FROM receipts
    GROUP BY ALL
),
covered AS (  -- R7: the periods whose first day a prescription (capped) covers
    SELECT DISTINCT p.enrollment_id, p.period_index
    FROM periods p
    JOIN staging.prescriptions rx
      ON rx.enrollment_id = p.enrollment_id
     AND p.period_start BETWEEN rx.valid_from AND rx.covers_until
),
measured AS (
    SELECT p.*,
        coalesce(u.valid_units, 0) AS valid_units,
        coalesce(u.invalid_units, 0) AS invalid_units,
        least(coalesce(u.valid_units, 0) / p.expected_units, 1.0) AS completeness,
        data_status(coalesce(u.valid_units, 0), p.expected_units) AS data_status,
        -- the previous period's status (periods are numbered 1, 2, ... without gaps)
        CASE WHEN p.period_index > 1
             THEN data_status(coalesce(previous.valid_units, 0), p.expected_units)
        END AS previous_data_status,
        c.period_index IS NOT NULL AS has_prescription,
        -- R3 weekly transmission: the longest run of days without a reception (see receipts)
        least(p.effective_end, getvariable('as_of') - 1) AS gap_window_end,
        CASE WHEN r.max_transmission_gap_days IS NOT NULL THEN
            CASE WHEN g.first_receipt IS NULL
                 THEN greatest(date_diff('day', p.period_start, gap_window_end) + 1, 0)
                 ELSE greatest(date_diff('day', p.period_start, g.first_receipt), g.inner_gap,
                               date_diff('day', g.last_receipt, gap_window_end))
            END
        END AS max_gap_days,
        max_gap_days > r.max_transmission_gap_days AS weekly_transmission_missed
    FROM periods p
    JOIN ref.counting_rules r
      ON r.activity_code = p.activity_code AND r.monitoring_profile = p.counting_profile
    LEFT JOIN staging.period_units u USING (enrollment_id, period_index)
    LEFT JOIN received g USING (enrollment_id, period_index)
    LEFT JOIN staging.period_units previous
      ON previous.enrollment_id = p.enrollment_id AND previous.period_index = p.period_index - 1
    LEFT JOIN covered c ON c.enrollment_id = p.enrollment_id AND c.period_index = p.period_index
),
decided AS (  -- (the enrollment's fields joined last: DuckDB then builds its joins on the
               -- narrow period rows)
    SELECT m.*,
        e.patient_id, e.exploitant_id, e.operator_id, e.ald, e.start_date, e.end_date,
        e.end_reason, e.monitoring_profile,
        -- R5 death exception: the patient died on a day of this period
        coalesce(e.end_reason = 'deceased'
                 AND e.end_date BETWEEN m.period_start AND m.period_end, false) AS died_in_period,
        -- R5 rule 2: the enrollment ended before the period's 30th day
        e.end_date IS NOT NULL AND e.end_date < m.period_end AS ended_in_period,
        -- R5, in the rulebook's order: the first reason that applies
        CASE
            WHEN NOT is_closed THEN 'open'
            WHEN ended_in_period AND NOT died_in_period THEN 'not_completed'
            WHEN NOT has_prescription THEN 'no_prescription'
            WHEN previous_data_status IN ('insufficient', 'no_data')
                THEN 'previous_period_insufficient'
            WHEN data_status = 'no_data' AND NOT died_in_period THEN 'no_data'
        END AS block_reason
    FROM measured m
    JOIN staging.enrollments e USING (enrollment_id)
)
SELECT
    enrollment_id, patient_id, activity_code, exploitant_id, operator_id,
    period_index, period_start, period_end, effective_end, is_closed,
    expected_units, valid_units, invalid_units, completeness, data_status,
    block_reason IS NULL AS billable,
    block_reason,
    -- R6: first period under 50 % -> reinforce; two consecutive closed periods under 50 % -> stop
    is_closed AND period_index = 1 AND data_status IN ('insufficient', 'no_data')
        AS reinforce_recommended,
    is_closed AND data_status IN ('insufficient', 'no_data')
        AND coalesce(previous_data_status IN ('insufficient', 'no_data'), false)
        AS stop_required,
    died_in_period, ended_in_period, has_prescription, ald, start_date, end_date, end_reason,
    monitoring_profile, nullif(counting_profile, '') AS counting_profile,
    CAST(max_gap_days AS INTEGER) AS max_gap_days, weekly_transmission_missed
FROM decided;

-- Only the rows that changed are written (many periods decided again come out unchanged): the rows of the periods decided again that changed or went away are deleted,
-- the new and changed ones inserted.
CREATE OR REPLACE TEMP TABLE unchanged AS
SELECT d.enrollment_id, d.period_index
FROM decisions d JOIN marts.patient_periods m USING (enrollment_id, period_index)
WHERE d IS NOT DISTINCT FROM m AND NOT getvariable('full_build');
DELETE FROM marts.patient_periods m
USING (FROM redecided ANTI JOIN unchanged USING (enrollment_id, period_index)) r
WHERE m.enrollment_id = r.enrollment_id AND m.period_index = r.period_index;
INSERT INTO marts.patient_periods BY NAME
SELECT d.* FROM decisions d ANTI JOIN unchanged USING (enrollment_id, period_index)
-- the periods still open last: those the next nights decide again are then kept together
ORDER BY NOT is_closed, enrollment_id, period_index;
