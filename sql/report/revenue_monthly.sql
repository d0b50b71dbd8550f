-- Forfait-technique revenue per month: billable patients x the per-patient amount in force in
-- that month (set by the previous reference semester's average). Null where no tariff is known.
SELECT m.month, m.exploitant_id, m.icd11_level, m.billable_patients,
    CAST(s.technique_amount AS DOUBLE) AS technique_amount,
    m.billable_patients * CAST(s.technique_amount AS DOUBLE) AS revenue
FROM marts.file_active_monthly m
LEFT JOIN marts.file_active_semester s
  ON s.exploitant_id = m.exploitant_id
 AND s.technique_code IS NOT DISTINCT FROM m.technique_code
 AND s.icd11_level = m.icd11_level AND s.tier = m.tier
 AND m.month BETWEEN s.applies_from AND s.applies_until
WHERE m.exploitant_id = getvariable('exploitant')
  AND (m.billable_patients > 0 OR s.technique_amount IS NOT NULL)
ORDER BY m.exploitant_id, m.icd11_level, m.month;
