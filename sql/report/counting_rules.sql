-- The counting rules the figures rest on (rules.md R3), with their status and source, and how
-- many of the warehouse's periods each one decided.
SELECT r.activity_code, coalesce(nullif(r.monitoring_profile, ''), '(none sent)') AS profile,
    replace(r.counted_measure_types, ';', ', ') AS counted_measure_types,
    r.min_per_day,
    CASE WHEN r.grain = 'eye_day' THEN 'eye and day' ELSE 'day' END AS unit,
    coalesce(CAST(r.expected_units AS VARCHAR),
             'sessions a week x 30 / 7 (' || r.default_sessions_per_week || ' by default)')
        AS expected_per_period,
    r.status, count(p.enrollment_id) AS periods, r.source
FROM ref.counting_rules r
JOIN marts.patient_periods p
  ON p.activity_code = r.activity_code AND coalesce(p.counting_profile, '') = r.monitoring_profile
 WHERE p.exploitant_id = getvariable('exploitant')
GROUP BY ALL
ORDER BY r.activity_code, profile;
