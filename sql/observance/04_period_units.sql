-- staging.matched_units: daily units matched to the enrollment of the same patient and activity
-- whose dates contain the day (R2); staging.period_units: valid and invalid units per period.
CREATE OR REPLACE TABLE staging.matched_units AS
SELECT e.enrollment_id, d.*,
    CAST((d.local_date - e.start_date) // getvariable('period_days') + 1 AS INTEGER) AS period_index
FROM staging.daily_units d
JOIN staging.enrollments e
  ON e.patient_id = d.patient_id
 AND e.activity_code = d.activity_code
 AND d.local_date >= e.start_date
 AND d.local_date <= coalesce(e.end_date, DATE '9999-12-31');

-- A unit counts for a period only up to its effective end (R2) and never after as_of. A unit is
-- (day, eye): the same test sent under two exploitants is still one unit (R3).
CREATE OR REPLACE TABLE staging.period_units AS
WITH units AS (
    SELECT u.enrollment_id, u.period_index, u.local_date, u.unit_eye,
        bool_or(u.has_valid) AS has_valid,
        bool_or(u.has_invalid) AS has_invalid,
        sum(u.transmissions) AS transmissions
    FROM staging.periods p
    JOIN staging.matched_units u USING (enrollment_id, period_index)
    WHERE u.local_date <= p.effective_end
      AND u.local_date <= getvariable('as_of')
    GROUP BY ALL
)
SELECT enrollment_id, period_index,
    count(*) FILTER (WHERE has_valid) AS valid_units,
    count(*) FILTER (WHERE has_invalid AND NOT has_valid) AS invalid_units,
    sum(transmissions) AS transmissions
FROM units
GROUP BY ALL;
