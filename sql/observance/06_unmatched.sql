/* model
writes: [marts.unmatched_transmissions]
group: observance
description: >-
  Transmissions that match no enrollment, per exploitant and activity (R2).
*/
-- marts.unmatched_transmissions (R2): transmissions of a patient that match no enrollment of the
-- same patient and activity on that day. Kept in raw.transmissions, counted here, never dropped.
CREATE OR REPLACE TABLE marts.unmatched_transmissions AS
SELECT d.exploitant_id, d.activity_code,
    count(DISTINCT d.patient_id) AS patients,
    count(DISTINCT (d.patient_id, d.local_date)) AS patient_days,
    sum(d.readings) AS transmissions,
    min(d.local_date) AS first_date,
    max(d.local_date) AS last_date
FROM staging.unmatched_units d
GROUP BY ALL
ORDER BY exploitant_id, activity_code;
