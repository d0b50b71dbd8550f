-- Monthly file active per exploitant and ICD-11 level: billable (sets the tariff) vs monitored.
SELECT month, exploitant_id, icd11_level, tier, coalesce(technique_code, '(none)') AS technique_code,
    billable_patients, monitored_patients
FROM marts.file_active_monthly
WHERE exploitant_id = getvariable('exploitant')
ORDER BY exploitant_id, icd11_level, month;
