"""The raw layer's lake: transmissions as a Parquet dataset next to the warehouse file.

Transmissions are by far the largest table (a reading a day per patient, 288 for a glucose
sensor). Copied into the DuckDB file, their storage alone took most of a full run; written
once as compressed Parquet they cost a fraction of that, and the same files are what a
distributed engine reads. Everything else (the other kinds, the reconciliation, the models,
the ledger) stays in the DuckDB file.

Layout, for the warehouse ``data/warehouse.duckdb``::

    data/warehouse.duckdb.raw/transmissions/arrival_month=2026-12/part-000000012-000000020.parquet

* A **part** holds the rows loaded from a range of landing files (``file_id`` first..last): one
  per ingestion batch, or one per compaction. Parts are written once and never changed.
* ``ops.raw_parts`` lists the parts that exist; it is changed in the same DuckDB transaction as
  the rows' reconciliation (``ops.ingested_files``) and the de-duplication keys
  (``raw.transmission_keys``). That transaction is the commit point: a part is written, synced
  and moved to its final name before it, and is part of the dataset only once it is committed.
  **The list is the dataset**: a reader lists ``ops.raw_parts`` (or reads the view), never the
  folder, which may hold a part a stopped run wrote and the next run deletes.
* ``raw.transmissions`` is a view over the listed parts, made again in each of those
  transactions. Its paths are relative to the dataset folder, which every connection of the
  pipeline sets as DuckDB's ``file_search_path`` (``search_path``): the warehouse file and its
  ``.raw`` folder move together, and a copy opens as the original.
* ``recover`` (at the start of every ingestion) deletes what a stopped run left, and only that:
  temporary files, parts of a batch that never committed (their first file_id is above every
  file ingested) and parts a committed compaction merged (their files lie inside a listed
  part's). Any other file it leaves alone and names: it is no part of this warehouse's data.
  A listed part that is missing is an error: the dataset was damaged or copied incompletely.
* **Compaction** (``compact``): the nightly parts of an arrival month are merged into one part
  once ``config.compact_at_parts()`` of them are small, and all of a month's small parts once
  the month is over; so a year of nights leaves a few parts per month (35 for B1's year).
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import duckdb

from pipelines import config
from pipelines.faults import fault
from pipelines.warehouse import (
    ALIAS,
    dataset_folder,
    quote,
    relation_kind,
    scalar,
    sync,
    table_exists,
    transaction,
)

log = logging.getLogger(__name__)

# The kinds whose loaded rows live in the lake; the others stay tables of the warehouse file.
KINDS = ("transmissions",)
# The table each kind's de-duplication reads (pipelines/ingest.py, sql/ingest/contested.sql):
# the keys of every row kept, in the warehouse file; a batch reads the dataset only for the keys
# it shares with kept rows (kept_rows), in the parts that hold them.
KEYS_TABLE = {"transmissions": "raw.transmission_keys"}
PARTITION = "arrival_month"  # arrival_month=YYYY-MM: the month the rows were ingested
TEMPORARY = "_tmp"  # parts being written; a leading "_" hides it from Hive-style readers
# Parquet as written: zstd (smaller than snappy for about the same decoding speed in DuckDB).
PARQUET_OPTIONS = "FORMAT parquet, COMPRESSION zstd"
PART_NAME = re.compile(r"part-(\d{9})-(\d{9})\.parquet")


@dataclass(frozen=True)
class Part:
    kind: str
    path: str  # relative to the dataset folder
    arrival_month: str
    first_file_id: int
    last_file_id: int
    rows: int


def _folder(con: duckdb.DuckDBPyConnection) -> Path:
    """The lake of the warehouse this connection writes."""
    path = scalar(con, "SELECT path FROM duckdb_databases() WHERE database_name = ?", [ALIAS])
    return dataset_folder(Path(path).absolute())


def _listed(con: duckdb.DuckDBPyConnection, kind: str) -> list[Part]:
    rows = con.execute(
        "SELECT kind, path, arrival_month, first_file_id, last_file_id, rows FROM ops.raw_parts "
        "WHERE kind = ? ORDER BY first_file_id",
        [kind],
    ).fetchall()
    return [Part(*row) for row in rows]


def _make_view(con: duckdb.DuckDBPyConnection, kind: str) -> None:
    """``raw.<kind>`` over the parts listed (in the caller's transaction). The parts that hold
    rows, the largest first: DuckDB estimates a scan's rows from the first file, and a plan
    made for an empty scan builds its hash tables on the transmissions (out of memory at B1).
    The empty part of a new warehouse is read only while there is no other."""
    paths = ", ".join(quote(p.path) for p in _read_parts(con, kind))
    con.execute(
        f"CREATE OR REPLACE VIEW raw.{kind} AS SELECT * FROM read_parquet([{paths}], "
        "hive_partitioning = false)"
    )


def _read_parts(con: duckdb.DuckDBPyConnection, kind: str) -> list[Part]:
    parts = sorted(_listed(con, kind), key=lambda p: (-p.rows, p.first_file_id))
    return [p for p in parts if p.rows or p is parts[0]]


def part_paths(con: duckdb.DuckDBPyConnection, kind: str) -> list[Path]:
    """The parts ``raw.<kind>`` reads, as absolute paths (for another engine: Spark)."""
    folder = _folder(con)
    return [folder / part.path for part in _read_parts(con, kind)]


def adopt(con: duckdb.DuckDBPyConnection, arrival: date) -> None:
    """Move the rows of a ``raw.<kind>`` table (a warehouse made before the lake, or a new one:
    migration 001 creates the table) into the lake, and make ``raw.<kind>`` the view. The
    first part written carries the table's column types, even when it holds no row; it is
    filed under the month of ``arrival``. One transaction per kind; called by every ingestion
    (pipelines/ingest.py) before it reads the landing."""
    for kind in KINDS:
        if relation_kind(con, f"raw.{kind}") != "table":
            continue
        recover(con)
        with transaction(con):
            first, last = con.execute(
                f"SELECT coalesce(min(file_id), 0), coalesce(max(file_id), 0) FROM raw.{kind}"
            ).fetchall()[0]
            part = _write(
                con, kind, f"SELECT * FROM raw.{kind}", first, last, _month(arrival), True
            )
            con.execute(f"INSERT INTO {KEYS_TABLE[kind]} SELECT key_hash, file_id FROM raw.{kind}")
            con.execute(f"DROP TABLE raw.{kind}")
            _relist(con, kind, [part])
            fault(f"lake:adopted:{kind}")
        if part.rows:
            log.info("%d %s rows moved from the warehouse file to %s", part.rows, kind, part.path)


def _month(day: date) -> str:
    return day.strftime("%Y-%m")


def _write(
    con: duckdb.DuckDBPyConnection,
    kind: str,
    query: str,
    first_file_id: int,
    last_file_id: int,
    arrival_month: str,
    keep_empty: bool = False,
) -> Part:
    """The rows of ``query`` as a new part, written under a temporary name, synced and then
    moved to its final one (never visible half-written, on disk before the commit that lists
    it); registered by the caller's transaction. A part with no rows is not kept unless
    ``keep_empty`` (its ``rows`` then say 0 and no file is left)."""
    root = _folder(con)
    name = f"part-{first_file_id:09d}-{last_file_id:09d}.parquet"
    relative = f"{kind}/{PARTITION}={arrival_month}/{name}"
    temporary = root / kind / TEMPORARY / name
    temporary.parent.mkdir(parents=True, exist_ok=True)
    rows = scalar(con, f"COPY ({query}) TO {quote(str(temporary))} ({PARQUET_OPTIONS})")
    if not rows and not keep_empty:
        temporary.unlink()
        return Part(kind, relative, arrival_month, first_file_id, last_file_id, 0)
    if scalar(con, "SELECT count(*) FROM ops.raw_parts WHERE path = ?", [relative]):
        temporary.unlink()  # file ids only grow: a listed name is never written again
        raise RuntimeError(f"{relative} is already a part of the raw dataset")
    os.chmod(temporary, config.FILE_MODE)
    sync(temporary)
    final = root / relative
    final.parent.mkdir(parents=True, exist_ok=True)
    os.replace(temporary, final)  # over a leftover of a stopped run, never over a listed part
    sync(final)
    return Part(kind, relative, arrival_month, first_file_id, last_file_id, rows)


def _relist(
    con: duckdb.DuckDBPyConnection, kind: str, added: list[Part], removed: list[Part] = ()
) -> None:
    """In the caller's transaction: ``added`` listed instead of ``removed``, the view made
    again over the list."""
    if removed:
        con.executemany(
            "DELETE FROM ops.raw_parts WHERE kind = ? AND path = ?",
            [[kind, p.path] for p in removed],
        )
    con.executemany(
        "INSERT INTO ops.raw_parts (kind, path, arrival_month, first_file_id, last_file_id, "
        "rows, written_at) VALUES (?, ?, ?, ?, ?, ?, now())",
        [[p.kind, p.path, p.arrival_month, p.first_file_id, p.last_file_id, p.rows] for p in added],
    )
    _make_view(con, kind)


def append(
    con: duckdb.DuckDBPyConnection,
    kind: str,
    query: str,
    first_file_id: int,
    last_file_id: int,
    arrival: date,
) -> int:
    """Inside the batch's transaction: the rows of ``query`` (a batch's loaded rows) as a new
    part, their keys, the part listed and the view made again. Returns the rows written."""
    columns = con.execute(f"DESCRIBE raw.{kind}").fetchall()
    typed = ", ".join(f'CAST("{name}" AS {type_}) AS "{name}"' for name, type_, *_ in columns)
    query = f"SELECT {typed} FROM ({query})"  # the types of the dataset's first part
    part = _write(con, kind, query, first_file_id, last_file_id, _month(arrival))
    if not part.rows:  # nothing loaded: no part
        return 0
    con.execute(
        f"INSERT INTO {KEYS_TABLE[kind]} SELECT key_hash, file_id "
        f"FROM read_parquet({quote(str(_folder(con) / part.path))})"
    )
    _relist(con, kind, [part])
    fault(f"lake:written:{kind}")
    return part.rows


def kept_rows(con: duckdb.DuckDBPyConnection, kind: str) -> str:
    """The temp view ``kept_rows``: the kept rows that share a key hash with the batch
    (``contested_hashes``, sql/ingest/contested.sql), read from the parts that hold their files
    only; returns its name for sql/ingest/classify.sql."""
    files = sorted(
        row[0]
        for row in con.execute(
            f"SELECT DISTINCT file_id FROM {KEYS_TABLE[kind]} SEMI JOIN contested_hashes "
            "USING (key_hash)"
        ).fetchall()
    )
    parts = [
        p for p in _listed(con, kind)
        if p.rows and any(p.first_file_id <= f <= p.last_file_id for f in files)
    ]  # fmt: skip
    if parts:
        paths = ", ".join(quote(p.path) for p in parts)
        ids = ", ".join(str(f) for f in files)
        source = f"read_parquet([{paths}], hive_partitioning = false) WHERE file_id IN ({ids})"
    else:  # none: the dataset's columns, no row
        source = f"read_parquet({quote(_listed(con, kind)[0].path)}) WHERE false"
    con.execute(f"CREATE OR REPLACE TEMP VIEW kept_rows AS SELECT * FROM {source}")
    return "kept_rows"


def recover(con: duckdb.DuckDBPyConnection) -> list[Path]:
    """Delete the files a stopped run left in the lake: temporary files, the parts of a batch
    that never committed, the parts a committed compaction merged; returns them. Called by
    every ingestion before it records anything (a batch that never committed is then the one
    whose file ids are above every file recorded). Other files
    no committed part names are left as they are, and named in the log. A listed part that is
    missing raises: the lake is incomplete."""
    if not table_exists(con, "ops.raw_parts"):
        return []
    root = _folder(con)
    listed = {
        root / path: (first, last)
        for path, first, last in con.execute(
            "SELECT path, first_file_id, last_file_id FROM ops.raw_parts"
        ).fetchall()
    }
    missing = sorted(str(p) for p in listed if not p.is_file())
    if missing:
        raise RuntimeError(
            f"{len(missing)} parts of the raw dataset are missing (first: {missing[0]}): the "
            f"folder {root} was damaged or copied without them; restore it from the backup "
            "taken with the warehouse file (docs/operations.md)"
        )
    committed = scalar(con, "SELECT coalesce(max(file_id), 0) FROM ops.ingested_files")
    removed = []
    for path in (p for kind in KINDS for p in (root / kind).rglob("*") if p.is_file()):
        if path in listed:
            continue
        named = PART_NAME.fullmatch(path.name)
        ids = (int(named[1]), int(named[2])) if named else None
        if path.parent.name == TEMPORARY or (ids and ids[0] > committed):
            why = "written by a run that stopped before committing it"
        elif ids and any(first <= ids[0] and ids[1] <= last for first, last in listed.values()):
            why = "merged into another part by a compaction"
        else:
            log.warning("%s is no part of this warehouse's raw dataset: left as it is", path)
            continue
        path.unlink()
        removed.append(path)
        log.warning("removed %s: %s", path, why)
    return removed


def compact(con: duckdb.DuckDBPyConnection, today: date) -> list[Part]:
    """Merge the small parts of each arrival month (config.SMALL_PART_ROWS): as many as
    config.compact_at_parts() or more, or two or more once the month is over. Returns the parts
    written."""
    written: list[Part] = []
    at_parts = config.compact_at_parts()
    if not at_parts:  # compaction turned off
        return written
    for kind in KINDS:
        small: dict[str, list[Part]] = {}
        for part in _listed(con, kind):
            if part.rows < config.SMALL_PART_ROWS:
                small.setdefault(part.arrival_month, []).append(part)
        for month, parts in sorted(small.items()):
            over = month < _month(today)
            if len(parts) >= at_parts or (over and len(parts) >= 2):
                written.append(_merge(con, kind, month, parts))
    return written


def _merge(con: duckdb.DuckDBPyConnection, kind: str, month: str, parts: list[Part]) -> Part:
    """One part in place of ``parts``: written, listed instead of them and the view made again
    in one transaction; their files deleted after it (recover deletes them if the run stops
    in between)."""
    root = _folder(con)
    paths = ", ".join(quote(str(root / p.path)) for p in parts)
    first = min(p.first_file_id for p in parts)
    last = max(p.last_file_id for p in parts)
    with transaction(con):
        merged = _write(
            con,
            kind,
            f"SELECT * FROM read_parquet([{paths}], hive_partitioning = false) "
            "ORDER BY file_id, row_number",
            first,
            last,
            month,
            keep_empty=True,
        )
        _relist(con, kind, [merged], parts)
        fault(f"lake:merged:{kind}")
    fault(f"lake:compacted:{kind}")
    for part in parts:
        (root / part.path).unlink(missing_ok=True)
    log.info("%s, %s: %d parts merged into %s", kind, month, len(parts), merged.path)
    return merged
