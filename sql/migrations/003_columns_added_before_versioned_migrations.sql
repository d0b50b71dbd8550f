-- Migration 3: the columns that warehouses created before versioned migrations may lack (each
-- statement does nothing where the column is already there).
-- warehouses created before the monitoring profile was sent: the columns are added (null: not
-- sent, which is what those rows said)
ALTER TABLE raw.enrollments ADD COLUMN IF NOT EXISTS monitoring_profile VARCHAR;
ALTER TABLE raw.enrollments ADD COLUMN IF NOT EXISTS sessions_per_week INTEGER;
ALTER TABLE raw.enrollments ADD COLUMN IF NOT EXISTS sessions_per_week_sent VARCHAR;
ALTER TABLE raw.enrollments ADD COLUMN IF NOT EXISTS recorded_at TIMESTAMPTZ;
ALTER TABLE raw.prescriptions ADD COLUMN IF NOT EXISTS recorded_at TIMESTAMPTZ;

-- warehouses created before ctime_ns was kept: the column is added (null: those files are hashed
-- once more, then recognised by their content)
ALTER TABLE ops.ingested_files ADD COLUMN IF NOT EXISTS ctime_ns BIGINT;

-- warehouses created before the landing protocol (issue 23): every path is recorded, paths
-- outside the kind folders without a kind, and a file type not read is `skipped` (unsupported)
ALTER TABLE ops.ingested_files ADD COLUMN IF NOT EXISTS skip_reason VARCHAR;
ALTER TABLE ops.ingested_files ADD COLUMN IF NOT EXISTS notes VARCHAR;
ALTER TABLE ops.ingested_files ALTER COLUMN kind DROP NOT NULL;
UPDATE ops.ingested_files SET status = 'skipped', skip_reason = 'unsupported'
WHERE status = 'unsupported';
ALTER TABLE ops.quarantine ADD COLUMN IF NOT EXISTS resolved_by_file_id INTEGER;

ALTER TABLE ops.model_state ADD COLUMN IF NOT EXISTS as_of DATE;
