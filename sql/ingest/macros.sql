-- Typing helpers shared by sql/ingest/validate_*.sql (temporary macros of the run's connection).
-- R1: a timestamp is read only with its UTC offset (`Z`, `±HH:MM`, `±HHMM`, `±HH`), never
-- guessed; a text that would parse without one is `timestamp_without_offset`.
CREATE OR REPLACE TEMP MACRO has_utc_offset(t) AS regexp_matches(t,
    '^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?\s*([Zz]|[+-]\d{2}(:?\d{2})?)$');
CREATE OR REPLACE TEMP MACRO timestamp_with_offset(t) AS
    CASE WHEN has_utc_offset(t) THEN try_cast(t AS TIMESTAMPTZ) END;
CREATE OR REPLACE TEMP MACRO is_naive_timestamp(t) AS
    NOT has_utc_offset(t) AND try_cast(t AS TIMESTAMP) IS NOT NULL;
