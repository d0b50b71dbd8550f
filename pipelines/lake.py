"""The raw layer's lake: transmissions as a Parquet dataset next to the warehouse file.

Transmissions are by far the largest table (a reading a day per patient, 288 for a glucose
sensor). Copied into the DuckDB file, their storage alone took most of a full run; written
once as compressed Parquet they cost a fraction of that, and the same files are what a
distributed engine reads. Everything else (the other kinds, the reconciliation, the models,
the ledger) stays in the DuckDB file.

Layout, for the warehouse ``data/warehouse.duckdb``::

    data/warehouse.raw/transmissions/arrival_month=2026-12/part-000000012-000000020.parquet

* A **part** holds the rows loaded from a range of landing files (``file_id`` first..last): one
  per ingestion batch, or one per compaction. Parts are written once and never changed.
* ``ops.raw_parts`` lists the parts that exist; it is changed in the same DuckDB transaction as
  the rows' reconciliation (``ops.ingested_files``) and the de-duplication keys
  (``raw.transmission_keys``). That transaction is the commit point: a part is written and
  moved to its final name before it, and is part of the dataset only once it is committed.
* ``raw.transmissions`` is a view over the listed parts, made again in each of those
  transactions. Its paths are relative to the dataset folder, which every connection of the
  pipeline sets as DuckDB's ``file_search_path`` (``search_path``): the warehouse file and its
  ``.raw`` folder move together, and a copy opens as the original.
* ``recover`` (at the start of every ingestion and compaction) deletes what a stopped run left:
  parts written but not committed, parts compacted away but not yet deleted, temporary files.
  A listed part that is missing is an error: the dataset was damaged or copied incompletely.
* **Compaction** (``compact``): the nightly parts of an arrival month are merged into one part
  once ``config.compact_at_parts()`` of them are small, and all of a month's small parts once
  the month is over; so a year of nights leaves about one part per month.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import duckdb

from pipelines import config
from pipelines.faults import fault
from pipelines.warehouse import ALIAS, dataset_folder, scalar, table_exists

log = logging.getLogger(__name__)

# The kinds whose loaded rows live in the lake; the others stay tables of the warehouse file.
KINDS = ("transmissions",)
# The table each kind's de-duplication reads (pipelines/ingest.py, sql/ingest/classify.sql):
# the keys of every row kept, in the warehouse file, so that no batch reads the dataset for them.
KEYS_TABLE = {"transmissions": "raw.transmission_keys"}
PARTITION = "arrival_month"  # arrival_month=YYYY-MM: the month the rows were ingested
TEMPORARY = "_tmp"  # parts being written; a leading "_" hides it from Hive-style readers
# Parquet as written: zstd (smaller than snappy for about the same decoding speed in DuckDB).
PARQUET_OPTIONS = "FORMAT parquet, COMPRESSION zstd"


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


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


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
    parts = sorted(_listed(con, kind), key=lambda p: (-p.rows, p.first_file_id))
    paths = ", ".join(_quote(p.path) for p in parts if p.rows or p is parts[0])
    con.execute(
        f"CREATE OR REPLACE VIEW raw.{kind} AS SELECT * FROM read_parquet([{paths}], "
        "hive_partitioning = false)"
    )


def adopt(con: duckdb.DuckDBPyConnection, arrival: date) -> None:
    """Move the rows of a ``raw.<kind>`` table (a warehouse made before the lake, or a new one:
    migration 001 creates the table) into the lake, and make ``raw.<kind>`` the view. The
    first part written carries the table's column types, even when it holds no row; it is
    filed under the month of ``arrival``. One transaction per kind; called by every ingestion
    (pipelines/ingest.py) before it reads the landing."""
    for kind in KINDS:
        if _relation_kind(con, f"raw.{kind}") != "BASE TABLE":
            continue
        recover(con)
        con.begin()
        try:
            first, last = con.execute(
                f"SELECT coalesce(min(file_id), 0), coalesce(max(file_id), 0) FROM raw.{kind}"
            ).fetchall()[0]
            part = _write(con, kind, f"SELECT * FROM raw.{kind}", first, last, _month(arrival))
            con.execute(f"INSERT INTO {KEYS_TABLE[kind]} SELECT key_hash, file_id FROM raw.{kind}")
            _register(con, [part])
            con.execute(f"DROP TABLE raw.{kind}")
            _make_view(con, kind)
            con.commit()
        except BaseException:
            con.rollback()
            raise
        if part.rows:
            log.info("%d %s rows moved from the warehouse file to %s", part.rows, kind, part.path)


def _relation_kind(con: duckdb.DuckDBPyConnection, qualified: str) -> str | None:
    schema, name = qualified.split(".")
    return scalar(
        con,
        "SELECT table_type FROM information_schema.tables WHERE table_catalog = ? "
        "AND table_schema = ? AND table_name = ?",
        [ALIAS, schema, name],
    )


def _month(day: date) -> str:
    return day.strftime("%Y-%m")


def _write(
    con: duckdb.DuckDBPyConnection,
    kind: str,
    query: str,
    first_file_id: int,
    last_file_id: int,
    arrival_month: str,
) -> Part:
    """The rows of ``query`` as a new part, written under a temporary name and then moved to
    its final one (never visible half-written); registered by the caller's transaction."""
    root = _folder(con)
    relative = (
        f"{kind}/{PARTITION}={arrival_month}/part-{first_file_id:09d}-{last_file_id:09d}.parquet"
    )
    temporary = root / kind / TEMPORARY / Path(relative).name
    temporary.parent.mkdir(parents=True, exist_ok=True)
    rows = scalar(con, f"COPY ({query}) TO {_quote(str(temporary))} ({PARQUET_OPTIONS})")
    final = root / relative
    final.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(temporary, 0o640)
    os.replace(temporary, final)
    return Part(kind, relative, arrival_month, first_file_id, last_file_id, rows)


def _register(con: duckdb.DuckDBPyConnection, parts: list[Part]) -> None:
    con.executemany(
        "INSERT INTO ops.raw_parts (kind, path, arrival_month, first_file_id, last_file_id, "
        "rows, written_at) VALUES (?, ?, ?, ?, ?, ?, now())",
        [[p.kind, p.path, p.arrival_month, p.first_file_id, p.last_file_id, p.rows] for p in parts],
    )


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
        (_folder(con) / part.path).unlink()
        return 0
    con.execute(
        f"INSERT INTO {KEYS_TABLE[kind]} SELECT key_hash, file_id "
        f"FROM read_parquet({_quote(str(_folder(con) / part.path))})"
    )
    _register(con, [part])
    _make_view(con, kind)
    fault(f"lake:written:{kind}")
    return part.rows


def recover(con: duckdb.DuckDBPyConnection) -> list[Path]:
    """Delete the files of the lake that no committed part names (left by a stopped run);
    returns them. A listed part that is missing raises: the lake is incomplete."""
    if not table_exists(con, "ops.raw_parts"):
        return []
    root = _folder(con)
    listed = {root / path for (path,) in con.execute("SELECT path FROM ops.raw_parts").fetchall()}
    missing = sorted(str(p) for p in listed if not p.is_file())
    if missing:
        raise RuntimeError(
            f"{len(missing)} parts of the raw dataset are missing (first: {missing[0]}): the "
            f"folder {root} was damaged or copied without them; restore it from the backup "
            "taken with the warehouse file (docs/operations.md)"
        )
    left = [p for kind in KINDS for p in (root / kind).rglob("*") if p.is_file()]
    removed = [p for p in left if p not in listed]
    for path in removed:
        path.unlink()
        log.warning("removed %s: written by a run that stopped before committing it", path)
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
    paths = ", ".join(_quote(str(root / p.path)) for p in parts)
    first = min(p.first_file_id for p in parts)
    last = max(p.last_file_id for p in parts)
    con.begin()
    try:
        merged = _write(
            con,
            kind,
            f"SELECT * FROM read_parquet([{paths}], hive_partitioning = false) "
            "ORDER BY file_id, row_number",
            first,
            last,
            month,
        )
        con.executemany(
            "DELETE FROM ops.raw_parts WHERE kind = ? AND path = ?", [[kind, p.path] for p in parts]
        )
        _register(con, [merged])
        _make_view(con, kind)
        con.commit()
    except BaseException:
        con.rollback()
        raise
    fault(f"lake:compacted:{kind}")
    for part in parts:
        (root / part.path).unlink(missing_ok=True)
    log.info("%s, %s: %d parts merged into %s", kind, month, len(parts), merged.path)
    return merged
