-- Migration 6: the transmissions leave the warehouse file for a Parquet dataset next to it
-- (pipelines/lake.py). The table raw.transmissions stays until pipelines/lake.py `adopt` has
-- moved its rows into the dataset in one transaction, and then becomes a view of that name.

-- the parts of the dataset: written once, listed here in the transaction that commits them
CREATE TABLE IF NOT EXISTS ops.raw_parts (
    kind           VARCHAR NOT NULL,   -- transmissions
    path           VARCHAR NOT NULL,   -- relative to the dataset folder <warehouse file>.raw/
    arrival_month  VARCHAR NOT NULL,   -- YYYY-MM: the month its rows were ingested
    first_file_id  INTEGER NOT NULL,   -- the range of ops.ingested_files it holds rows of
    last_file_id   INTEGER NOT NULL,
    rows           BIGINT NOT NULL,
    written_at     TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (kind, path)
);

-- the de-duplication keys of every transmission kept (pipelines/ingest.py DEDUP): each batch is
-- checked against them without reading the dataset
CREATE TABLE IF NOT EXISTS raw.transmission_keys (
    key_hash UBIGINT NOT NULL,
    file_id  INTEGER NOT NULL
);
