/* model
writes: [marts.alerts, ops.alert_history]
engine: duckdb  # it updates the alert history, which is never rebuilt (pipelines/models.py)
group: reporting
views: [marts.alerts]
metadata: metadata/alerts
description: >-
  Alerts for care teams and exploitants, kept across runs (first seen, last seen, resolved).
*/
-- marts.alerts: alerts kept across runs (ops.alert_history, sql/migrations/005). One alert per
-- open problem per enrollment and kind: seen again -> last_seen moves on; gone -> resolved_at =
-- as_of; back after being resolved -> a new alert (or, on the same as_of, the alert of that day
-- open again). Never raised twice for the same open problem, never a current problem without an
-- open alert.
--
-- seen again: last_seen moves on, and the message follows the problem. An open alert whose texts
-- changed is replaced (deleted, then inserted with its new values) rather than updated: DuckDB
-- rewrites updated texts several times slower. One whose texts did not change only has its
-- last_seen date updated (rewriting whole rows costs more at the checkpoint). alert_id is unique
-- (the insert below never repeats one), and only open alerts are touched.
CREATE OR REPLACE TEMP TABLE seen_again AS
SELECT h.* REPLACE (getvariable('as_of') AS last_seen, c.message_fr AS message_fr,
    c.message_en AS message_en, c.reference_date AS reference_date, c.audience AS audience),
    (h.message_fr, h.message_en, h.reference_date, h.audience)
        IS DISTINCT FROM (c.message_fr, c.message_en, c.reference_date, c.audience) AS changed
FROM ops.alert_history h
JOIN staging.current_problems c USING (enrollment_id, kind)
WHERE h.resolved_at IS NULL;

UPDATE ops.alert_history h
SET last_seen = getvariable('as_of')
FROM seen_again s
WHERE h.alert_id = s.alert_id AND h.resolved_at IS NULL AND NOT s.changed;

DELETE FROM ops.alert_history h USING seen_again s
WHERE h.alert_id = s.alert_id AND h.resolved_at IS NULL AND s.changed;

INSERT INTO ops.alert_history BY NAME SELECT * EXCLUDE (changed) FROM seen_again WHERE changed;

UPDATE ops.alert_history h
SET resolved_at = getvariable('as_of')
WHERE h.resolved_at IS NULL
  AND h.first_seen <= getvariable('as_of')
  AND NOT EXISTS (SELECT 1 FROM staging.current_problems c
                  WHERE c.enrollment_id = h.enrollment_id AND c.kind = h.kind);

-- resolved and back on the same evaluation date (e.g. a correction withdrawn): open again
UPDATE ops.alert_history h
SET resolved_at = NULL, message_fr = c.message_fr, message_en = c.message_en,
    reference_date = c.reference_date, audience = c.audience
FROM staging.current_problems c
WHERE h.alert_id = c.enrollment_id || ':' || c.kind || ':' || getvariable('as_of')
  AND h.resolved_at IS NOT NULL
  AND NOT EXISTS (SELECT 1 FROM ops.alert_history o
                  WHERE o.resolved_at IS NULL AND o.enrollment_id = c.enrollment_id
                    AND o.kind = c.kind);

INSERT INTO ops.alert_history BY NAME
SELECT c.enrollment_id || ':' || c.kind || ':' || getvariable('as_of') AS alert_id,
    c.enrollment_id, c.kind, c.audience, c.patient_id, c.operator_id, c.exploitant_id,
    c.activity_code, c.message_fr, c.message_en, c.reference_date,
    getvariable('as_of') AS first_seen, getvariable('as_of') AS last_seen, NULL AS resolved_at
FROM staging.current_problems c
WHERE NOT EXISTS (SELECT 1 FROM ops.alert_history h
                  WHERE h.resolved_at IS NULL AND h.enrollment_id = c.enrollment_id
                    AND h.kind = c.kind)
  AND NOT EXISTS (SELECT 1 FROM ops.alert_history h  -- the same run again: nothing new
                  WHERE h.alert_id = c.enrollment_id || ':' || c.kind || ':' || getvariable('as_of'));

-- marts.alerts is a view of the history: rewriting it as a table would cost every night a sort of
-- the whole history, which only grows.
CREATE OR REPLACE VIEW marts.alerts AS
SELECT alert_id, CASE WHEN resolved_at IS NULL THEN 'open' ELSE 'resolved' END AS status,
    kind, audience, enrollment_id, patient_id, operator_id, exploitant_id, activity_code,
    message_fr, message_en, reference_date, first_seen, last_seen, resolved_at
FROM ops.alert_history
ORDER BY status, operator_id, kind, enrollment_id;
