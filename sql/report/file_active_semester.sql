-- Semester averages, the tranche they fall in, the distance to the next one, the amount they set.
SELECT semester, applies_to_semester, exploitant_id, icd11_level, tier,
    coalesce(technique_code, '(none)') AS technique_code, pricing,
    CAST(average_file_active AS DOUBLE) AS average_file_active, is_complete,
    CAST(tranche_lower AS DOUBLE) AS tranche_lower, CAST(tranche_upper AS DOUBLE) AS tranche_upper,
    CAST(patients_to_next_tranche AS DOUBLE) AS patients_to_next_tranche,
    CAST(technique_amount AS DOUBLE) AS technique_amount, schedule_note
FROM marts.file_active_semester
WHERE exploitant_id = getvariable('exploitant')
ORDER BY exploitant_id, icd11_level, semester;
