-- Migration 7: the tables a Spark build wrote (pipelines/spark.py), each published in the
-- warehouse as a view over its Parquet folder; a DuckDB build of the same model drops the view
-- and the row.
CREATE TABLE IF NOT EXISTS ops.spark_tables (
    relation VARCHAR PRIMARY KEY, folder VARCHAR NOT NULL, written_at TIMESTAMPTZ NOT NULL
);
