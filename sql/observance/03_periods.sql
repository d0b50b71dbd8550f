/* model
writes: [staging.periods]
group: observance
description: >-
  30-day periods from each enrollment start, open or closed (R2).
*/
-- staging.periods (R2): 30-day periods, date to date, from the enrollment start, until the
-- enrollment's end date or the evaluation date as_of, whichever comes first.
-- effective_end: the period's last day, or the end date when sooner; closed when before as_of.
-- Each period carries its enrollment's counting rule (R3): its counting_profile and the
-- expected_units of every period.
CREATE OR REPLACE TABLE staging.periods AS
WITH bounded AS (
    SELECT e.*,
        least(coalesce(e.end_date, getvariable('as_of')), getvariable('as_of')) AS last_day
    FROM staging.enrollments e
    WHERE e.end_date IS NULL OR e.end_date >= e.start_date   -- end before start: no period
),
numbered AS (
    SELECT b.*,
        unnest(range(1, date_diff('day', start_date, last_day) // getvariable('period_days') + 2))
            AS period_number
    FROM bounded b
    WHERE last_day >= start_date
)
SELECT enrollment_id, activity_code,  -- the enrollment's other fields: staging.enrollments
    counting_profile, expected_units,  -- the counting rule of R3 (01_enrollments.sql)
    CAST(period_number AS INTEGER) AS period_index,
    CAST(start_date + (period_index - 1) * getvariable('period_days') AS DATE) AS period_start,
    CAST(start_date + period_index * getvariable('period_days') - 1 AS DATE) AS period_end,
    least(period_end, coalesce(end_date, period_end)) AS effective_end,
    effective_end < getvariable('as_of') AS is_closed,
    -- the last day whose data counts for the period: its effective end, never after as_of
    least(effective_end, getvariable('as_of')) AS counted_until
FROM numbered;
