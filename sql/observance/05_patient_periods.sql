-- marts.patient_periods: one row per enrollment x 30-day period, with the decisions of
-- R4 (completeness, data_status), R5 (billable, block_reason), R6 (reinforce, stop), R7.
-- R4: exactly the threshold is sufficient ("inférieure à 50 %" is strict)
CREATE OR REPLACE TEMP MACRO data_status(valid_units, expected_units) AS
    CASE
        WHEN valid_units = 0 THEN 'no_data'
        WHEN valid_units < getvariable('sufficiency_threshold') * expected_units
            THEN 'insufficient'
        ELSE 'sufficient'
    END;
CREATE OR REPLACE TABLE marts.patient_periods AS
WITH covered AS (  -- R7: the periods whose first day a prescription (capped) covers
    SELECT DISTINCT p.enrollment_id, p.period_index
    FROM staging.periods p
    JOIN staging.prescriptions rx
      ON rx.enrollment_id = p.enrollment_id
     AND p.period_start BETWEEN rx.valid_from AND rx.covers_until
),
measured AS (
    SELECT p.*,
        a.expected_units,
        coalesce(u.valid_units, 0) AS valid_units,
        coalesce(u.invalid_units, 0) AS invalid_units,
        least(coalesce(u.valid_units, 0) / a.expected_units, 1.0) AS completeness,
        data_status(coalesce(u.valid_units, 0), a.expected_units) AS data_status,
        -- the previous period's status (periods are numbered 1, 2, ... without gaps)
        CASE WHEN p.period_index > 1
             THEN data_status(coalesce(previous.valid_units, 0), a.expected_units)
        END AS previous_data_status,
        c.period_index IS NOT NULL AS has_prescription
    FROM staging.periods p
    JOIN ref.activities a USING (activity_code)
    LEFT JOIN staging.period_units u USING (enrollment_id, period_index)
    LEFT JOIN staging.period_units previous
      ON previous.enrollment_id = p.enrollment_id AND previous.period_index = p.period_index - 1
    LEFT JOIN covered c ON c.enrollment_id = p.enrollment_id AND c.period_index = p.period_index
),
decided AS (  -- (the enrollment's fields joined last: DuckDB then builds its joins on the
               -- narrow period rows)
    SELECT m.*,
        e.patient_id, e.exploitant_id, e.operator_id, e.ald, e.start_date, e.end_date,
        e.end_reason,
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
    died_in_period, ended_in_period, has_prescription, ald, start_date, end_date, end_reason
FROM decided
ORDER BY enrollment_id, period_index;
