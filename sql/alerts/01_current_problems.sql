/* model
writes: [staging.current_problems]
group: reporting
description: >-
  Problems open on as_of: interruption, period at risk, reinforce, stop, prescription expiring.
*/
-- staging.current_problems: the problems open on as_of, one row per enrollment and kind, with
-- the audience and a message in French and in English (counts and dates only, no measurement).
-- GUIDE §7 and ODYSIGHT §III.3.a: operator and exploitant inform each other of an interruption
-- without delay; the care team acts (accompagnement thérapeutique) before a period is lost.
CREATE OR REPLACE TABLE staging.current_problems AS
WITH active AS (  -- enrollments running on as_of, with the counting rule of their line and profile
    SELECT e.*, r.interruption_alert_days, r.grain, r.max_transmission_gap_days
    FROM staging.enrollments e
    JOIN ref.counting_rules r
      ON r.activity_code = e.activity_code AND r.monitoring_profile = e.counting_profile
    WHERE e.start_date <= getvariable('as_of')
      AND (e.end_date IS NULL OR e.end_date >= getvariable('as_of'))
),
received AS (  -- last receipt (server clock; the device clock when received_at is missing):
                -- staging.period_units keeps it per period, over the units up to as_of
    SELECT enrollment_id,
        max(last_received_at) AS last_received_at,
        max(last_local_date) AS last_measured_date
    FROM staging.period_units
    GROUP BY ALL
),
interrupted AS (
    SELECT a.*, r.last_measured_date,
        date_diff('day', coalesce(
            CAST(timezone(getvariable('local_timezone'), r.last_received_at) AS DATE),
            a.start_date), getvariable('as_of')) AS silent_days
    FROM active a
    LEFT JOIN received r USING (enrollment_id)
),
current_period AS (  -- the open period of each active enrollment, and what it still needs
    SELECT p.*, a.max_transmission_gap_days,
        CAST(ceil(getvariable('sufficiency_threshold') * p.expected_units) AS INTEGER)
            AS units_needed_total,
        date_diff('day', getvariable('as_of'), p.effective_end) + 1 AS days_left,
        date_diff('day', p.period_start, getvariable('as_of')) AS days_elapsed,
        CASE WHEN a.grain = 'eye_day' THEN 2 ELSE 1 END AS max_units_per_day
    FROM marts.patient_periods p
    JOIN active a USING (enrollment_id)
    WHERE NOT p.is_closed
),
at_risk AS (
    SELECT *,
        units_needed_total - valid_units AS units_missing,
        units_missing > days_left * max_units_per_day AS out_of_reach,
        days_elapsed >= getvariable('pace_min_days')
            AND valid_units + valid_units / days_elapsed * days_left < units_needed_total
            AS behind_pace
    FROM current_period
),
latest_closed AS (  -- the last closed period of each active enrollment (a max and a join:
                    -- a window over these wide rows costs several times as much)
    SELECT p.enrollment_id, p.period_index, p.period_end, p.valid_units, p.expected_units,
        p.reinforce_recommended, p.stop_required
    FROM marts.patient_periods p
    JOIN (
        SELECT enrollment_id, max(period_index) AS period_index
        FROM marts.patient_periods
        SEMI JOIN active USING (enrollment_id)
        WHERE is_closed
        GROUP BY ALL
    ) last USING (enrollment_id, period_index)
),
prescriptions AS (  -- the prescription covering as_of, and whether another one follows it
    SELECT a.enrollment_id, rx.prescription_id, rx.kind, rx.covers_until,
        EXISTS (
            SELECT 1 FROM staging.prescriptions nx
            WHERE nx.enrollment_id = rx.enrollment_id AND nx.prescription_id <> rx.prescription_id
              AND nx.valid_from <= rx.covers_until + 1 AND nx.covers_until > rx.covers_until
        ) AS has_follow_up
    FROM active a
    JOIN staging.prescriptions rx
      ON rx.enrollment_id = a.enrollment_id
     AND getvariable('as_of') BETWEEN rx.valid_from AND rx.covers_until
    QUALIFY row_number() OVER (PARTITION BY a.enrollment_id ORDER BY rx.covers_until DESC) = 1
),
problems AS (
    SELECT enrollment_id, 'transmission_interrupted' AS kind, 'both' AS audience,
        format('Aucune transmission reçue depuis {} jours (dernière mesure : {}).', silent_days,
               coalesce(CAST(last_measured_date AS VARCHAR), 'aucune')) AS message_fr,
        format('No transmission received for {} days (last measurement: {}).', silent_days,
               coalesce(CAST(last_measured_date AS VARCHAR), 'none')) AS message_en,
        last_measured_date AS reference_date
    FROM interrupted
    WHERE silent_days > interruption_alert_days
    UNION ALL
    SELECT enrollment_id, 'period_at_risk', 'operator',
        format('Période {} : encore {} données valides nécessaires d''ici le {} ({}).',
               period_index, units_missing, effective_end,
               CASE WHEN out_of_reach THEN 'objectif de 50 % hors d''atteinte'
                    ELSE 'rythme actuel insuffisant' END),
        format('Period {}: {} more valid units needed by {} ({}).',
               period_index, units_missing, effective_end,
               CASE WHEN out_of_reach THEN '50 % can no longer be reached'
                    ELSE 'the current pace will not reach 50 %' END),
        effective_end
    FROM at_risk
    WHERE units_missing > 0 AND (out_of_reach OR behind_pace)
    UNION ALL
    -- R3 (lines with a weekly minimum, diabetes): the open period already went longer than the weekly minimum without
    -- a counted reading; resolved when the period closes
    SELECT enrollment_id, 'weekly_transmission_missed', 'both',
        format('Période {} : {} jours consécutifs sans mesure prise en compte (transmission au '
               'minimum hebdomadaire : {} jours au plus).', period_index, max_gap_days,
               max_transmission_gap_days),
        format('Period {}: {} days in a row without a counted reading (at least weekly '
               'transmission: {} days at most).', period_index, max_gap_days,
               max_transmission_gap_days),
        effective_end
    FROM current_period
    WHERE weekly_transmission_missed
    UNION ALL
    SELECT enrollment_id, 'reinforce_recommended', 'both',
        format('Période 1 sous 50 % ({} / {}) : télésurveillance renforcée recommandée.',
               valid_units, expected_units),
        format('Period 1 under 50 % ({} / {}): reinforced monitoring recommended.',
               valid_units, expected_units),
        period_end
    FROM latest_closed
    WHERE reinforce_recommended
    UNION ALL
    SELECT enrollment_id, 'stop_required', 'both',
        format('Périodes {} et {} sous 50 % : la télésurveillance doit être arrêtée.',
               period_index - 1, period_index),
        format('Periods {} and {} under 50 %: telemonitoring must be stopped.',
               period_index - 1, period_index),
        period_end
    FROM latest_closed
    WHERE stop_required
    UNION ALL
    SELECT enrollment_id, 'prescription_expiring', 'operator',
        CASE WHEN kind = 'trial'
             THEN format('Fin de la période d''essai le {} : réévaluation à prévoir.', covers_until)
             ELSE format('Prescription valable jusqu''au {} sans renouvellement.', covers_until) END,
        CASE WHEN kind = 'trial'
             THEN format('Trial ends on {}: review due.', covers_until)
             ELSE format('Prescription valid until {} with no renewal.', covers_until) END,
        covers_until
    FROM prescriptions
    WHERE date_diff('day', getvariable('as_of'), covers_until)
          <= getvariable('prescription_notice_days')
      AND NOT has_follow_up
)
SELECT p.*, e.patient_id, e.operator_id, e.exploitant_id, e.activity_code
FROM problems p
JOIN staging.enrollments e USING (enrollment_id);
