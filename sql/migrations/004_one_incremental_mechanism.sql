-- Migration 4: incrementality moves into the model runner (pipelines/models.py). Its state is
-- a fingerprint per model; the fingerprints of earlier versions mean nothing to it, so every
-- incremental model is rebuilt in full by the next run. The bookkeeping tables the models kept
-- themselves go: the runner's snapshots (ops.snapshot_*) replace them.
DELETE FROM ops.model_state;
ALTER TABLE ops.model_state RENAME COLUMN reference_hash TO fingerprint;
DROP TABLE IF EXISTS staging.matched_enrollments;
DROP TABLE IF EXISTS staging.decided_enrollments;
DROP TABLE IF EXISTS staging.decided_prescriptions;
-- left by versions before the claims ledger (R11): claims frozen but never issued
DROP TABLE IF EXISTS ops.claim_lines;
