/* model
writes: [marts.unmatched_transmissions]
group: observance
description: >-
  Transmissions that match no enrollment, per exploitant and activity (R2).
*/
-- marts.unmatched_transmissions (R2): transmissions of a patient that match no enrollment of the
-- same patient and activity on that day. Kept in raw.transmissions, counted here, never dropped.
CREATE OR REPLACE TABLE marts.unmatched_transmissions AS
WITH patient_days AS (
    SELECT exploitant_id, activity_code, patient_id, local_date, sum(readings) AS readings
    FROM staging.unmatched_units
    GROUP BY ALL
)
SELECT exploitant_id, activity_code,
    count(DISTINCT patient_id) AS patients,
    count(*) AS patient_days,
    sum(readings) AS transmissions,
    min(local_date) AS first_date,
    max(local_date) AS last_date
FROM patient_days
GROUP BY ALL
ORDER BY exploitant_id, activity_code;
