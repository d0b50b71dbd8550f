-- One exploitant's billing lines at a glance (R10-R12): ready to issue, issued, paid (in full or
-- in part), rejected.
SELECT
    (SELECT count(*) FROM marts.billing_lines
     WHERE exploitant_id = getvariable('exploitant') AND line_status = 'ready') AS ready,
    count(*) FILTER (WHERE kind <> 'cancellation') AS issued,
    count(*) FILTER (WHERE status IN ('paid', 'partially_paid')) AS paid,
    count(*) FILTER (WHERE status = 'rejected') AS rejected
FROM marts.claim_status
WHERE exploitant_id = getvariable('exploitant');
