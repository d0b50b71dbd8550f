-- Metadata of marts.alerts: open alerts per kind.
SELECT
    count(*) FILTER (WHERE status = 'open') AS open_alerts,
    count(*) FILTER (WHERE status = 'open' AND kind = 'transmission_interrupted')
        AS open_transmission_interrupted,
    count(*) FILTER (WHERE status = 'open' AND kind = 'period_at_risk') AS open_period_at_risk,
    count(*) FILTER (WHERE status = 'open' AND kind = 'reinforce_recommended')
        AS open_reinforce_recommended,
    count(*) FILTER (WHERE status = 'open' AND kind = 'stop_required') AS open_stop_required,
    count(*) FILTER (WHERE status = 'open' AND kind = 'prescription_expiring')
        AS open_prescription_expiring,
    count(*) FILTER (WHERE status = 'resolved') AS resolved_alerts
FROM marts.alerts;
