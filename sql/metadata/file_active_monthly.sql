-- Metadata of marts.file_active_monthly: billable file active of the last complete month, per
-- exploitant and ICD-11 level, as one text entry.
SELECT string_agg(exploitant_id || ' ' || icd11_level || ': ' || billable_patients, ', '
                  ORDER BY exploitant_id, icd11_level) AS billable_file_active_last_month,
    CAST(any_value(month) AS VARCHAR) AS last_complete_month
FROM marts.file_active_monthly
WHERE month = (SELECT max(month) FROM marts.file_active_monthly
               WHERE month < date_trunc('month', getvariable('as_of')));
