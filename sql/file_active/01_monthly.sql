/* model
writes: [marts.file_active_monthly]
group: file_active
metadata: metadata/file_active_monthly
description: >-
  Billable and monitored patients per month, exploitant, code, ICD-11 level (R8).
*/
-- marts.file_active_monthly (R8): per calendar month and (exploitant, forfait-technique code,
-- ICD-11 level, tier):
--   billable_patients  distinct patients with a billable period whose first day (the "date des
--                      soins") falls in the month — the count that sets the tariff;
--   monitored_patients distinct patients with an enrollment active on at least one day of the
--                      month (up to as_of) — what an exploitant watches day to day.
-- Every month from the first enrollment to as_of is present for every key (0 when empty), and
-- so is each month of the reference semester before the first enrollment (an exploitant with no
-- patient yet has a file active of 0), so that the first semester of data has a tariff.
CREATE OR REPLACE TABLE marts.file_active_monthly AS
WITH enrollments AS (
    SELECT e.*, a.technique_code, a.icd11_level, a.tier
    FROM staging.enrollments e
    JOIN ref.activities a USING (activity_code)
    WHERE e.start_date <= getvariable('as_of')
      AND (e.end_date IS NULL OR e.end_date >= e.start_date)
),
keys AS (
    SELECT DISTINCT exploitant_id, technique_code, icd11_level, tier FROM enrollments
),
bounds AS (
    -- first month: the start of the reference semester before the first enrollment's semester
    SELECT
        CAST(date_trunc('month', min(start_date)) AS DATE) AS first_data_month,
        CAST(date_trunc('month', getvariable('as_of')) AS DATE) AS last_month
    FROM enrollments
),
months AS (
    SELECT CAST(first_day AS DATE) AS month
    FROM (
        SELECT unnest(generate_series(
            -- the April or October that opens the semester of first_data_month, minus 6 months
            CAST(first_data_month
                 - to_months(CAST((month(first_data_month) + 8) % 6 AS INTEGER))
                 - INTERVAL 6 MONTH AS DATE),
            last_month, INTERVAL 1 MONTH)) AS first_day
        FROM bounds
    )
),
billable AS (
    SELECT CAST(date_trunc('month', p.period_start) AS DATE) AS month,
        p.exploitant_id, a.technique_code, a.icd11_level, a.tier,
        count(DISTINCT p.patient_id) AS billable_patients
    FROM marts.patient_periods p
    JOIN ref.activities a USING (activity_code)
    WHERE p.billable
    GROUP BY ALL
),
monitored AS (
    SELECT m.month, e.exploitant_id, e.technique_code, e.icd11_level, e.tier,
        count(DISTINCT e.patient_id) AS monitored_patients
    FROM months m
    JOIN enrollments e
      ON e.start_date <= last_day(m.month)
     AND least(coalesce(e.end_date, getvariable('as_of')), getvariable('as_of')) >= m.month
    GROUP BY ALL
)
SELECT m.month, k.exploitant_id, k.technique_code, k.icd11_level, k.tier,
    coalesce(b.billable_patients, 0) AS billable_patients,
    coalesce(o.monitored_patients, 0) AS monitored_patients
FROM months m
CROSS JOIN keys k
LEFT JOIN billable b
  ON b.month = m.month AND b.exploitant_id = k.exploitant_id
 AND b.technique_code IS NOT DISTINCT FROM k.technique_code
 AND b.icd11_level = k.icd11_level AND b.tier = k.tier
LEFT JOIN monitored o
  ON o.month = m.month AND o.exploitant_id = k.exploitant_id
 AND o.technique_code IS NOT DISTINCT FROM k.technique_code
 AND o.icd11_level = k.icd11_level AND o.tier = k.tier
ORDER BY k.exploitant_id, k.technique_code, k.icd11_level, m.month;
