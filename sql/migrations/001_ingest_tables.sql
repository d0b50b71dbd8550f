-- Migration 1: the tables of the ingestion layer (contract: raw.*, ops.*), created once, never
-- dropped by a run. Migrations are applied in order, once each, by pipelines/warehouse.py
-- `migrate`; an applied migration is never edited (a change is a new file).
CREATE SCHEMA IF NOT EXISTS ref;
CREATE SCHEMA IF NOT EXISTS raw;
CREATE SCHEMA IF NOT EXISTS ops;
CREATE SCHEMA IF NOT EXISTS staging;
CREATE SCHEMA IF NOT EXISTS marts;
CREATE SCHEMA IF NOT EXISTS ledger;

CREATE TABLE IF NOT EXISTS ops.ingested_files (
    file_id               INTEGER PRIMARY KEY,
    kind                  VARCHAR,               -- transmissions | enrollments | prescriptions |
                                                 -- payments (null: outside every kind folder)
    path                  VARCHAR NOT NULL,      -- relative to the landing folder, as found
    format                VARCHAR,               -- jsonl | csv | parquet (null: not read)
    content_hash          VARCHAR,               -- sha256 of the file's bytes
    size_bytes            BIGINT NOT NULL,
    mtime_ns              BIGINT NOT NULL,
    ctime_ns              BIGINT,                -- status-change time (null: recorded before it was kept)
    status                VARCHAR NOT NULL,      -- ingested | same_content | unreadable |
                                                 -- deferred | skipped (docs/contract.md)
    skip_reason           VARCHAR,               -- why a skipped path is never read (landing.py)
    error                 VARCHAR,               -- why a file was not read
    notes                 VARCHAR,               -- what the reader noticed (a CSV separator)
    same_content_as       INTEGER,               -- file_id already holding the same bytes
    rows_read             BIGINT NOT NULL,
    rows_loaded           BIGINT NOT NULL,
    rows_quarantined      BIGINT NOT NULL,
    duplicates_skipped    BIGINT NOT NULL,
    ingested_at           TIMESTAMPTZ NOT NULL
);

CREATE TABLE IF NOT EXISTS ops.quarantine (
    file_id        INTEGER NOT NULL,
    source_file    VARCHAR NOT NULL,
    kind           VARCHAR NOT NULL,
    row_number     BIGINT NOT NULL,   -- 1-based record number in the file (JSONL: line number)
    reason         VARCHAR NOT NULL,  -- see pipelines/contract.py QUARANTINE_REASONS
    detail         VARCHAR,           -- which field, or which row it conflicts with
    raw_record     VARCHAR,           -- the record as read, as text
    quarantined_at TIMESTAMPTZ NOT NULL,
    resolved_by_file_id INTEGER       -- incomplete_record: the file's next version, read whole
);

CREATE TABLE IF NOT EXISTS raw.transmissions (
    transmission_id VARCHAR NOT NULL,
    exploitant_id   VARCHAR NOT NULL,
    activity_code   VARCHAR NOT NULL,
    patient_id      VARCHAR NOT NULL,
    measure_type    VARCHAR NOT NULL,
    eye             VARCHAR,
    measured_at     TIMESTAMPTZ NOT NULL,
    received_at     TIMESTAMPTZ,
    value           DOUBLE,
    unit            VARCHAR,
    distance_cm     DOUBLE,
    ambient_lux     DOUBLE,
    key_hash        UBIGINT NOT NULL,  -- hash of the de-duplication key
    payload_hash    UBIGINT NOT NULL,
    file_id         INTEGER NOT NULL,
    source_file     VARCHAR NOT NULL,
    row_number      BIGINT NOT NULL
);

-- Enrollments and prescriptions are snapshots: a re-sent row with new content (an end date now
-- known) is a new version; staging keeps the version in force (rules.md R7b: the latest
-- recorded_at, else the time its file was ingested; then file_id, row_number).
CREATE TABLE IF NOT EXISTS raw.enrollments (
    enrollment_id VARCHAR NOT NULL,
    patient_id    VARCHAR NOT NULL,
    activity_code VARCHAR NOT NULL,
    exploitant_id VARCHAR NOT NULL,
    operator_id   VARCHAR NOT NULL,
    start_date    DATE NOT NULL,
    end_date      DATE,
    end_reason    VARCHAR,
    ald           BOOLEAN NOT NULL,
    monitoring_profile VARCHAR,       -- rules.md R3 (null: not sent)
    sessions_per_week  INTEGER,       -- rules.md R3, hemodialysis (null: not sent, or invalid)
    sessions_per_week_sent VARCHAR,   -- the text sent when it was not a whole number from 1 to 7
    recorded_at   TIMESTAMPTZ,        -- rules.md R7b: when this version was recorded (null: not sent)
    key_hash      UBIGINT NOT NULL,
    payload_hash  UBIGINT NOT NULL,
    file_id       INTEGER NOT NULL,
    source_file   VARCHAR NOT NULL,
    row_number    BIGINT NOT NULL
);

CREATE TABLE IF NOT EXISTS raw.prescriptions (
    prescription_id VARCHAR NOT NULL,
    enrollment_id   VARCHAR NOT NULL,
    kind            VARCHAR NOT NULL,
    valid_from      DATE NOT NULL,
    valid_until     DATE NOT NULL,
    recorded_at     TIMESTAMPTZ,       -- rules.md R7b: when this version was recorded
    key_hash        UBIGINT NOT NULL,  -- hash of the de-duplication key
    payload_hash    UBIGINT NOT NULL,
    file_id         INTEGER NOT NULL,
    source_file     VARCHAR NOT NULL,
    row_number      BIGINT NOT NULL
);

-- R12: the payer's answer to each issued line (one per line; ledger.issued_lines.line_id)
CREATE TABLE IF NOT EXISTS raw.payments (
    line_id         VARCHAR NOT NULL,
    status          VARCHAR NOT NULL,  -- paid | partially_paid | rejected
    paid_amount     DECIMAL(10, 2),
    paid_on         DATE NOT NULL,
    rejection_code  VARCHAR,
    rejection_label VARCHAR,
    key_hash        UBIGINT NOT NULL,
    payload_hash    UBIGINT NOT NULL,
    file_id         INTEGER NOT NULL,
    source_file     VARCHAR NOT NULL,
    row_number      BIGINT NOT NULL
);

-- What each incremental model was last built from (pipelines/models.py): the last file folded
-- in, a fingerprint (reference_hash, renamed fingerprint by migration 004), the evaluation date.
CREATE TABLE IF NOT EXISTS ops.model_state (
    model VARCHAR PRIMARY KEY, after_file_id BIGINT NOT NULL, reference_hash VARCHAR NOT NULL,
    as_of DATE
);
