/* model
writes: [marts.data_quality_findings]
group: observance
description: >-
  Enrollment and prescription problems to fix upstream (R2, R3, R7, R7b).
*/
-- marts.data_quality_findings: problems in the reference data that users must fix upstream.
-- One row per finding: kind, the record it concerns, and a readable detail.
CREATE OR REPLACE TABLE marts.data_quality_findings AS
SELECT 'enrollment_end_before_start' AS kind, 'enrollment' AS entity, enrollment_id AS entity_id,
    enrollment_id, 'end_date ' || end_date || ' is before start_date ' || start_date AS detail
FROM staging.enrollments
WHERE end_date < start_date
UNION ALL
-- R3: a line with monitoring profiles and none sent, or a profile the line does not have: the
-- line's default counting row applies
SELECT CASE WHEN e.monitoring_profile IS NULL THEN 'missing_monitoring_profile'
            ELSE 'unknown_monitoring_profile' END,
    'enrollment', e.enrollment_id, e.enrollment_id,
    CASE WHEN e.monitoring_profile IS NULL THEN 'no monitoring_profile'
         ELSE 'monitoring_profile ' || e.monitoring_profile || ' is not a profile of '
              || e.activity_code END
    || ' (its profiles: ' || coalesce(p.profiles, 'none')
    || '): counted by the line''s default rule (R3)'
FROM staging.enrollments e
LEFT JOIN (SELECT activity_code,
                  string_agg(monitoring_profile, ', ' ORDER BY monitoring_profile) AS profiles
           FROM ref.counting_rules WHERE monitoring_profile <> '' GROUP BY ALL) p
  USING (activity_code)
WHERE e.counting_profile = ''
  AND (e.monitoring_profile IS NOT NULL OR p.profiles IS NOT NULL)
UNION ALL
-- R3: sessions a week sent but not a whole number from 1 to 7: the rule's default applies
SELECT 'invalid_sessions_per_week', 'enrollment', e.enrollment_id, e.enrollment_id,
    'sessions_per_week ''' || e.sessions_per_week_sent || ''' is not a whole number from 1 to 7: '
    || coalesce(r.default_sessions_per_week || ' sessions a week assumed',
                'not used by this line''s counting rule') || ' (R3)'
FROM staging.enrollments e
JOIN ref.counting_rules r
  ON r.activity_code = e.activity_code AND r.monitoring_profile = e.counting_profile
WHERE e.sessions_per_week_sent IS NOT NULL
UNION ALL
-- R7b: two versions of a record with the same recorded_at and different content; the later
-- ingested one is in force
SELECT 'ambiguous_version', kind, id, enrollment_id,
    versions || ' versions recorded at ' || strftime(recorded_at, '%Y-%m-%d %H:%M:%S')
        || ' UTC: the later-ingested one is in force'
FROM (
    SELECT 'enrollment' AS kind, enrollment_id AS id, enrollment_id, recorded_at,
        count(DISTINCT payload_hash) AS versions
    FROM raw.enrollments WHERE recorded_at IS NOT NULL
    GROUP BY ALL HAVING count(DISTINCT payload_hash) > 1
    UNION ALL
    SELECT 'prescription', prescription_id, any_value(enrollment_id), recorded_at,
        count(DISTINCT payload_hash)
    FROM raw.prescriptions WHERE recorded_at IS NOT NULL
    GROUP BY prescription_id, recorded_at HAVING count(DISTINCT payload_hash) > 1
)
UNION ALL
SELECT 'enrollment_without_prescription', 'enrollment', e.enrollment_id, e.enrollment_id,
    'no prescription at all: every period is blocked (no_prescription)'
FROM staging.enrollments e
ANTI JOIN staging.prescriptions rx USING (enrollment_id)
UNION ALL
SELECT 'prescription_too_long', 'prescription', prescription_id, enrollment_id,
    kind || ' of ' || length_days || ' days (max ' || max_days || '): only the days up to '
        || covers_until || ' count (R7)'
FROM staging.prescriptions
WHERE length_days > max_days
UNION ALL
SELECT 'prescription_end_before_start', 'prescription', prescription_id, enrollment_id,
    'valid_until ' || valid_until || ' is before valid_from ' || valid_from || ': covers nothing'
FROM staging.prescriptions
WHERE valid_until < valid_from
UNION ALL
SELECT 'prescription_unknown_enrollment', 'prescription', rx.prescription_id, rx.enrollment_id,
    'enrollment ' || rx.enrollment_id || ' is not in raw.enrollments'
FROM staging.prescriptions rx
ANTI JOIN staging.enrollments e USING (enrollment_id)
UNION ALL
SELECT 'overlapping_enrollments', 'enrollment', a.enrollment_id, a.enrollment_id,
    'overlaps ' || b.enrollment_id || ' (same patient and activity): its data count for both'
FROM staging.enrollments a
JOIN staging.enrollments b
  ON a.patient_id = b.patient_id AND a.activity_code = b.activity_code
 AND a.enrollment_id < b.enrollment_id
 AND a.start_date <= coalesce(b.end_date, DATE '9999-12-31')
 AND b.start_date <= coalesce(a.end_date, DATE '9999-12-31');
