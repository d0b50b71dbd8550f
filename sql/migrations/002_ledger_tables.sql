-- Migration 2: the claims ledger (rules.md R11, R12): what was issued for billing, never rebuilt from the
-- marts and never changed by a run. Only `observance issue` appends to it (pipelines/ledger.py),
-- one batch per call, in one transaction. Back it up apart from what can be rebuilt
-- (docs/operations.md).
CREATE TABLE IF NOT EXISTS ledger.export_batches (
    batch_id      VARCHAR PRIMARY KEY,      -- B000001, B000002, ... in issue order
    payee         VARCHAR NOT NULL,         -- operator | exploitant
    filters       VARCHAR NOT NULL,         -- the --exploitant / --operator filters, '' for none
    file_written  VARCHAR NOT NULL,         -- the file the batch was written to
    file_style    VARCHAR NOT NULL,         -- CSV style (french | international); Parquet by name
    file_sha256   VARCHAR NOT NULL,         -- of its bytes (an empty batch writes a header only)
    as_of         DATE NOT NULL,            -- the evaluation date of the decisions issued
    issued_at     TIMESTAMPTZ NOT NULL,
    line_count    INTEGER NOT NULL,
    total_amount  DECIMAL(12, 2) NOT NULL
);

CREATE TABLE IF NOT EXISTS ledger.issued_lines (
    line_id          VARCHAR PRIMARY KEY,   -- stable and unique; corrections extend it (/A, /R, /E)
    claim_id         VARCHAR NOT NULL,
    batch_id         VARCHAR NOT NULL,
    payee            VARCHAR NOT NULL,
    enrollment_id    VARCHAR NOT NULL,
    patient_id       VARCHAR NOT NULL,
    operator_id      VARCHAR NOT NULL,
    exploitant_id    VARCHAR NOT NULL,
    activity_code    VARCHAR NOT NULL,
    period_index     INTEGER NOT NULL,
    date_of_care     DATE NOT NULL,
    code             VARCHAR NOT NULL,
    amount           DECIMAL(10, 2) NOT NULL,  -- negative for a cancellation
    amo_amount       DECIMAL(10, 2) NOT NULL,
    patient_amount   DECIMAL(10, 2) NOT NULL,
    ald              BOOLEAN NOT NULL,
    kind             VARCHAR NOT NULL,      -- original | cancellation | replacement | reissue
    corrects_line_id VARCHAR,               -- null for originals
    reason           VARCHAR,               -- period_no_longer_billable | amount_changed | rejected
    cause            VARCHAR,               -- the decision behind it (block reason, amounts, code)
    issued_at        TIMESTAMPTZ NOT NULL
);

-- R11: the evidence of effective use of each issued period, frozen when a line of it is issued
-- (one row per batch and period; `units` lists every unit of the period as it was counted).
CREATE TABLE IF NOT EXISTS ledger.period_evidence (
    batch_id          VARCHAR NOT NULL,
    enrollment_id     VARCHAR NOT NULL,
    period_index      INTEGER NOT NULL,
    patient_id        VARCHAR NOT NULL,
    activity_code     VARCHAR NOT NULL,
    counting_profile  VARCHAR,
    period_start      DATE NOT NULL,
    period_end        DATE NOT NULL,
    effective_end     DATE,                  -- null: the period no longer exists
    expected_units    INTEGER,
    valid_units       BIGINT,
    invalid_units     BIGINT,
    data_status       VARCHAR,
    billable          BOOLEAN,
    block_reason      VARCHAR,
    died_in_period    BOOLEAN,
    rule              VARCHAR,               -- the counting rule applied (counted types, minimum)
    rule_status       VARCHAR,               -- CONFIRMED | ASSUMPTION
    rule_source       VARCHAR,
    as_of             DATE NOT NULL,         -- the data cut-off: the run's evaluation date
    last_ingested_at  TIMESTAMPTZ,           -- and the last file ingested before it
    catalog_version   VARCHAR NOT NULL,      -- ref.version of the run
    units             STRUCT(local_date DATE, unit_eye VARCHAR, is_valid BOOLEAN,
                             valid_readings BIGINT, failed_readings BIGINT,
                             transmission_ids VARCHAR[], source_files VARCHAR[])[],
    frozen_at         TIMESTAMPTZ NOT NULL
);
