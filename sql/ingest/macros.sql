-- Typing helpers shared by sql/ingest/validate_*.sql (temporary macros of the run's connection).
-- R1: a timestamp is read only with its UTC offset (`Z`, `±HH:MM`, `±HHMM`, `±HH`), never
-- guessed; a text that would parse without one is `timestamp_without_offset`.
CREATE OR REPLACE TEMP MACRO has_utc_offset(t) AS regexp_matches(t,
    '^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?\s*([Zz]|[+-]\d{2}(:?\d{2})?)$');
-- R1: an offset that exists on Earth, from -12:00 to +14:00 with minutes below 60 (`+99:00`,
-- `+24:00` or `+01:99` would move the instant to another day: `invalid_timestamp`).
CREATE OR REPLACE TEMP MACRO has_real_offset(t) AS regexp_matches(t,
    '^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?\s*'
    '([Zz]|\+(0\d|1[0-3])(:?[0-5]\d)?|\+14(:?00)?|-(0\d|1[01])(:?[0-5]\d)?|-12(:?00)?)$');
CREATE OR REPLACE TEMP MACRO timestamp_with_offset(t) AS
    CASE WHEN has_real_offset(t) THEN try_cast(t AS TIMESTAMPTZ) END;
CREATE OR REPLACE TEMP MACRO is_naive_timestamp(t) AS
    NOT has_utc_offset(t) AND try_cast(t AS TIMESTAMP) IS NOT NULL;
CREATE OR REPLACE TEMP MACRO has_impossible_offset(t) AS
    has_utc_offset(t) AND NOT has_real_offset(t);
-- A timestamp later than the run's start plus the tolerance (pipelines/config.py
-- FUTURE_TOLERANCE_HOURS): a device clock or a typo, never counted (`future_timestamp`).
CREATE OR REPLACE TEMP MACRO is_future(ts) AS ts > getvariable('future_limit');
-- Identifiers (contract.ID_FIELDS): at most ID_MAX_LENGTH characters, none of them a control,
-- format or private character (NUL, line ends, tabs, bidirectional overrides): `invalid_id`.
-- `ids_look_valid` tests a row's identifiers at once (one pattern per row, the common case);
-- `is_valid_id` says which one failed.
CREATE OR REPLACE TEMP MACRO is_valid_id(x) AS
    x IS NULL OR (length(x) <= getvariable('id_max_length') AND NOT regexp_matches(x, '\p{C}'));
CREATE OR REPLACE TEMP MACRO ids_look_valid(ids) AS
    list_max(list_transform(ids, lambda x: coalesce(length(x), 0))) <= getvariable('id_max_length')
    AND NOT regexp_matches(concat_ws('', ids), '\p{C}');
