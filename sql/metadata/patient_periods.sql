-- Metadata of marts.patient_periods shown in the Dagster UI (one row; a column per entry).
SELECT
    count(*) FILTER (WHERE billable) AS billable_periods,
    count(*) FILTER (WHERE is_closed) AS closed_periods,
    count(*) FILTER (WHERE NOT is_closed) AS open_periods,
    count(*) FILTER (WHERE reinforce_recommended) AS reinforce_recommended,
    count(*) FILTER (WHERE stop_required) AS stop_required,
    count(*) FILTER (WHERE block_reason = 'not_completed') AS blocked_not_completed,
    count(*) FILTER (WHERE block_reason = 'no_prescription') AS blocked_no_prescription,
    count(*) FILTER (WHERE block_reason = 'previous_period_insufficient')
        AS blocked_previous_period_insufficient,
    count(*) FILTER (WHERE block_reason = 'no_data') AS blocked_no_data
FROM marts.patient_periods;
