/* model
writes: [marts.file_active_semester, staging.file_active_semester]
group: file_active
then: price_semesters
step_reads: [ref.activities]
description: >-
  Semester average file active and the forfait-technique amount it sets for the next semester
  (R8, R9).
*/
-- staging.file_active_semester: reference semesters (R8) April-September (YYYY-S1) and
-- October-March (YYYY-S2, October of YYYY to March of YYYY+1). Average = sum of the six monthly
-- billable counts / 6 (a month with no patient counts as 0). The average sets the tariff of the
-- next semester (applies_to_semester), priced by pipelines/tariffs.py into
-- marts.file_active_semester. A semester not yet over on as_of is provisional.
CREATE OR REPLACE TABLE staging.file_active_semester AS
WITH labelled AS (
    SELECT *,
        CASE WHEN month(month) BETWEEN 4 AND 9 THEN year(month) ELSE
             CASE WHEN month(month) >= 10 THEN year(month) ELSE year(month) - 1 END END
            AS semester_year,
        CASE WHEN month(month) BETWEEN 4 AND 9 THEN 1 ELSE 2 END AS semester_half
    FROM marts.file_active_monthly
),
started AS (
    SELECT *,
        make_date(semester_year, CASE WHEN semester_half = 1 THEN 4 ELSE 10 END, 1)
            AS semester_start
    FROM labelled
)
SELECT
    semester_year || '-S' || semester_half AS semester,
    semester_start,
    CAST(semester_start + INTERVAL 6 MONTH - INTERVAL 1 DAY AS DATE) AS semester_end,
    exploitant_id, technique_code, icd11_level, tier,
    CAST(sum(billable_patients) / getvariable('semester_months') AS DECIMAL(18, 6))
        AS average_file_active,
    count(*) AS months_observed,
    CAST(semester_start + INTERVAL 6 MONTH - INTERVAL 1 DAY AS DATE) < getvariable('as_of')
        AS is_complete,
    CASE WHEN semester_half = 1 THEN semester_year || '-S2'
         ELSE (semester_year + 1) || '-S1' END AS applies_to_semester,
    CAST(semester_start + INTERVAL 6 MONTH AS DATE) AS applies_from,
    CAST(semester_start + INTERVAL 12 MONTH - INTERVAL 1 DAY AS DATE) AS applies_until
FROM started
GROUP BY ALL
ORDER BY exploitant_id, technique_code, icd11_level, semester;
