-- De-duplication of a validated batch, first step: the key hashes that need a decision
-- (classify.sql makes it). Placeholders: {kind}; {stored_keys}, the keys of the rows kept
-- (raw.{kind} itself, or a table of its keys alone). ({{ }} would be literal braces of this
-- template.)
CREATE OR REPLACE TEMP TABLE contested_hashes AS
WITH candidates AS (
    SELECT key_hash FROM validated WHERE reason IS NULL
)
-- keys that need a decision: seen twice in the batch, or already kept. Every other valid row is
-- simply loaded, which spares the ordering work below for almost all rows. A hash collision only
-- sends a few more rows through the exact logic.
SELECT key_hash FROM candidates GROUP BY key_hash HAVING count(*) > 1
UNION
SELECT key_hash FROM {stored_keys} SEMI JOIN candidates USING (key_hash);

