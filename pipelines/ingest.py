"""Landing files -> ``raw.*`` and ``ops.*``: validated, de-duplicated, nothing silently lost.

Every file under ``<landing>/<kind>/`` is identified by its content hash and read once. Each row
read ends up in exactly one place: loaded into ``raw.<kind>``, quarantined in ``ops.quarantine``
with a reason code, or counted as a duplicate; ``ops.ingested_files`` holds the reconciliation
per file. Files are loaded in batches, one transaction per batch: a run stopped in the middle
leaves no partial file, and running again gives the same warehouse.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import logging
import os
import stat
import zlib
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from pipelines import config, contract, lake
from pipelines.faults import fault
from pipelines.landing import SKIP_REASONS, ChangedWhileRead, LandingFile, read_bytes, survey
from pipelines.warehouse import quote, run_sql, scalar, sql_text, table_exists, transaction

log = logging.getLogger(__name__)

# Files are read and committed in batches of about this many weighted bytes: a format's weight
# is how many bytes of the batch one byte of its files counts for. About 4 million rows for
# Parquet, large enough to keep the per-batch de-duplication cheap; JSON lines are held in memory
# as text while they are parsed, so their batches are a quarter of that. Files are read one batch
# ahead (_read_ahead), so two batches are in memory: larger batches would take the JSON-lines full
# run past the memory target (docs/performance.md).
BATCH_BYTES = 1024 * 1024 * 1024
FORMAT_WEIGHT = {"jsonl": 4, "csv": 2, "parquet": 16}
GZIP_WEIGHT = 6
# Keys of the de-duplication, and whether a new payload for a known key is a new version.
DEDUP = {
    "transmissions": (("exploitant_id", "transmission_id"), False),
    "enrollments": (("enrollment_id",), True),
    "prescriptions": (("prescription_id",), True),
    "payments": (("line_id",), False),  # one answer per issued line (R12)
}
# Columns a kind's validation adds to the contract's fields and raw.<kind> stores.
STORED_EXTRAS = {"enrollments": ("sessions_per_week_sent",)}
# The quarantine reason of a new payload for a known key of a kind that has no versions.
CONFLICT_REASON = {"payments": "contradictory_payment"}


@dataclass
class KindSummary:
    files_new: int = 0
    files_known: int = 0  # seen by an earlier run with the same size and times: not read again
    files_unreadable: int = 0
    files_deferred: int = 0  # still being written (landing.py): read by a later run
    files_skipped: int = 0  # never read: hidden, temporary, links leading out... (skip_reason)
    rows_read: int = 0
    rows_loaded: int = 0
    rows_quarantined: int = 0
    duplicates_skipped: int = 0


@dataclass
class IngestSummary:
    kinds: dict[str, KindSummary] = field(default_factory=dict)
    files_outside_kinds: int = 0  # newly recorded paths outside every kind folder (skipped)

    def total(self, name: str) -> int:
        return sum(getattr(summary, name) for summary in self.kinds.values())


Progress = Callable[[str, int, int], None]


def ingest(
    con: duckdb.DuckDBPyConnection,
    landing: Path,
    kinds: Iterable[str] = contract.KINDS,
    batch_bytes: int = BATCH_BYTES,
    progress: Progress | None = None,
    arrival: date | None = None,
) -> IngestSummary:
    """Ingest every new landing file of ``kinds``; returns what was read and where it went.

    Every path under the landing folder is surveyed (pipelines/landing.py); those of ``kinds``
    and those outside every kind folder that no run has recorded yet are recorded, read or not.
    Transmissions are written to the lake (pipelines/lake.py) under the month of ``arrival``
    (the run's date; default today in Europe/Paris), whose small parts are then compacted.
    """
    if not table_exists(con, "ref.activities") or not table_exists(con, "ops.schema_migrations"):
        raise RuntimeError(
            "the catalog or the warehouse's tables are missing: run the reference asset "
            "(migrations, then catalog) first"
        )
    arrival = arrival or config.today_paris()
    lake.adopt(con, arrival)
    lake.recover(con)
    run_sql(con, "ingest/macros")
    set_ingest_parameters(con)
    surveyed = survey(landing, config.quiet_seconds())
    summary = IngestSummary()
    summary.files_outside_kinds = _record_unread(
        con, [f for f in surveyed if f.kind is None], KindSummary()
    )
    for kind in kinds:
        found = [f for f in surveyed if f.kind == kind]
        summary.kinds[kind] = _ingest_kind(con, found, kind, batch_bytes, progress, arrival)
        if kind in lake.KINDS:
            lake.compact(con, arrival)
    return summary


def set_ingest_parameters(con: duckdb.DuckDBPyConnection) -> None:
    """The contract's values the validation SQL reads (sql/ingest/validate_*.sql)."""
    low, high = contract.SESSIONS_PER_WEEK_RANGE
    con.execute("SET VARIABLE sessions_per_week_min = ?", [low])
    con.execute("SET VARIABLE sessions_per_week_max = ?", [high])
    con.execute("SET VARIABLE payment_statuses = ?", [list(contract.PAYMENT_STATUSES)])
    con.execute("SET VARIABLE id_max_length = ?", [contract.ID_MAX_LENGTH])
    # R1: later than this is a device clock or a typo (future_timestamp)
    con.execute(
        "SET VARIABLE future_limit = now() + to_hours(CAST(? AS BIGINT))",
        [config.FUTURE_TOLERANCE_HOURS],
    )


def _ingest_kind(
    con: duckdb.DuckDBPyConnection,
    found: list[LandingFile],
    kind: str,
    batch_bytes: int,
    progress: Progress | None,
    arrival: date,
) -> KindSummary:
    summary = KindSummary()
    # a file whose bytes could not be read at all (no hash: an I/O error, a file gone) is tried
    # again by the next run; one whose content was read and found damaged is not
    seen = set(
        con.execute(
            "SELECT path, size_bytes, mtime_ns, ctime_ns FROM ops.ingested_files "
            "WHERE kind = ? AND content_hash IS NOT NULL",
            [kind],
        ).fetchall()
    )
    readable = [f for f in found if f.to_read]
    _record_unread(con, [f for f in found if not f.to_read], summary)
    candidates = [f for f in readable if f.signature not in seen]
    summary.files_known = len(readable) - len(candidates)
    done = 0
    # contents already ingested: a file re-sent with the same bytes is hashed but not parsed
    for batch in _read_ahead(_batches(candidates, batch_bytes), frozenset(_ingested(con))):
        # Reading and validation happen outside the transaction, into a temporary table: a file
        # DuckDB cannot read then fails alone (recorded `unreadable`) instead of aborting the batch.
        try:
            records = _read_batch(con, kind, batch)
            with transaction(con):
                _record_batch(con, kind, records, summary, arrival)
                fault(f"ingest:recorded:{kind}")
            fault(f"ingest:committed:{kind}")
        finally:
            con.unregister("jsonl_lines")
        done += len(batch)
        log.info(
            "%s: %d/%d new files, %d rows read (%d loaded, %d quarantined, %d duplicates)",
            kind,
            done,
            len(candidates),
            summary.rows_read,
            summary.rows_loaded,
            summary.rows_quarantined,
            summary.duplicates_skipped,
        )
        if progress:
            progress(kind, done, len(candidates))
    return summary


def _record_unread(
    con: duckdb.DuckDBPyConnection, files: list[LandingFile], summary: KindSummary
) -> int:
    """Record the paths not read by this run (skipped, or deferred while they are written), once
    for each size and times: a run that finds them unchanged records nothing more. Returns how
    many were recorded."""
    if not files:
        return 0
    noted = set(
        con.execute(
            "SELECT path, size_bytes, mtime_ns, ctime_ns, status FROM ops.ingested_files "
            "WHERE status IN ('skipped', 'deferred')"
        ).fetchall()
    )
    first_id = scalar(con, "SELECT coalesce(max(file_id), 0) + 1 FROM ops.ingested_files")
    records = []
    for f in files:
        status = "deferred" if f.deferred else "skipped"
        if (*f.signature, status) in noted:
            continue
        record = _FileRecord(f, first_id + len(records), None, status=status)
        if f.deferred:
            record.error = f"written to less than {config.quiet_seconds():g} s ago"
        else:
            record.skip_reason = f.skip_reason
            record.error = SKIP_REASONS[f.skip_reason]
        records.append(record)
        log.warning("landing path %s not read: %s", f.relpath, record.error)
    if records:
        with transaction(con):
            _insert_file_rows(con, records)
    summary.files_deferred += sum(r.status == "deferred" for r in records)
    summary.files_skipped += sum(r.status == "skipped" for r in records)
    return len(records)


def _ingested(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """The contents already ingested: content hash -> the first file that held it."""
    return dict(
        con.execute(
            "SELECT content_hash, min(file_id) FROM ops.ingested_files "
            "WHERE content_hash IS NOT NULL AND status = 'ingested' GROUP BY ALL"
        ).fetchall()
    )


def _batches(files: list[LandingFile], batch_bytes: int) -> Iterable[list[LandingFile]]:
    batch: list[LandingFile] = []
    size = 0
    for f in files:
        weight = FORMAT_WEIGHT.get(f.fmt or "", 1)
        weight *= GZIP_WEIGHT if f.path.name.lower().endswith(".gz") else 1
        if batch and size + f.size * weight > batch_bytes:
            yield batch
            batch, size = [], 0
        batch.append(f)
        size += f.size * weight
    if batch:
        yield batch


READ_ERRORS = (OSError, EOFError, zlib.error, pa.ArrowException, duckdb.Error, ValueError)
# A gzip-compressed landing file, by its name.
GZIP_ENDING = ".gz"


@dataclass
class _Loaded:
    """A landing file as read from disk, before the warehouse is consulted (``_load``)."""

    file: LandingFile
    content_hash: str | None = None  # None: the file could not be read at all
    empty: bool = False
    rows: pa.Table | None = None  # JSON lines and CSV: what was read, without file_id yet
    notes: str | None = None  # what the reader noticed (a CSV separator, unknown columns)
    error: BaseException | None = None


def _load(f: LandingFile, ingested: frozenset[str]) -> _Loaded:
    """Read one file, hash its bytes and split JSON lines or CSV records (unless ``ingested``
    already holds that content: _read_batch records it ``same_content``); touches no
    connection."""
    loaded = _Loaded(f)
    try:
        data = read_bytes(f)
        loaded.content_hash = hashlib.sha256(data).hexdigest()
        loaded.empty = not data
        if f.fmt in ("jsonl", "csv") and data and loaded.content_hash not in ingested:
            text = gzip.decompress(data) if f.path.name.lower().endswith(GZIP_ENDING) else data
            if f.fmt == "jsonl":
                loaded.rows = _jsonl_lines(text, f.relpath)
            else:
                loaded.rows, notes = _csv_records(text, f.kind)
                loaded.notes = "; ".join(notes) or None
    except READ_ERRORS as exc:
        loaded.error = exc
    return loaded


def _read_ahead(
    batches: Iterable[list[LandingFile]], ingested: frozenset[str]
) -> Iterator[list[_Loaded]]:
    """The batches' files loaded one batch ahead in a background thread.

    Reading, hashing and splitting the next batch (I/O, hashlib, NumPy and Arrow, which all
    release the GIL) overlaps DuckDB's validation and writes of the current one; on the JSON-lines
    benchmark that was a third of the ingestion, spent waiting. Memory: two batches of files.
    """
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="landing-read") as pool:
        pending = None
        for batch in batches:
            ahead = pool.submit(lambda files=batch: [_load(f, ingested) for f in files])
            if pending is not None:
                yield pending.result()
            pending = ahead
        if pending is not None:
            yield pending.result()


@dataclass
class _FileRecord:
    """One landing path, as it will be recorded in ops.ingested_files."""

    file: LandingFile
    file_id: int
    content_hash: str | None
    status: str = "ingested"
    error: str | None = None
    same_content_as: int | None = None
    skip_reason: str | None = None
    notes: str | None = None

    def unreadable(self, exc: BaseException) -> None:
        self.status, self.error = "unreadable", f"{type(exc).__name__}: {exc}"[:500]
        if isinstance(exc, ChangedWhileRead):  # written to again: read once it is quiet
            self.status = "deferred"
        log.warning("landing file %s could not be read: %s", self.file.relpath, self.error)


def _read_batch(
    con: duckdb.DuckDBPyConnection, kind: str, files: list[_Loaded]
) -> list[_FileRecord]:
    """Read and validate the batch's files into the temp table ``validated``; one record per file.

    Parquet and JSON-lines files are not copied as text first: the temp view ``landing_batch``
    reads them where they are, and the validation is the only pass over their rows. CSV files
    (split in _load) and Parquet files read one by one after a failed scan go through the temp
    table ``landing_rows``.
    """
    columns = ", ".join(f"{name} VARCHAR" for name in contract.FIELDS[kind])
    con.execute(
        "CREATE OR REPLACE TEMP TABLE landing_rows (file_id INTEGER, source_file VARCHAR, "
        f"row_number BIGINT, raw VARCHAR, read_reason VARCHAR, parse_error VARCHAR, {columns})"
    )
    known_hashes = _ingested(con)
    first_id = scalar(con, "SELECT coalesce(max(file_id), 0) + 1 FROM ops.ingested_files")
    records, jsonl_parts, parquet = [], [], []
    for file_id, loaded in enumerate(files, start=first_id):
        f = loaded.file
        record = _FileRecord(f, file_id, loaded.content_hash, notes=loaded.notes)
        records.append(record)
        if loaded.content_hash is None:
            record.unreadable(loaded.error)
            continue
        if record.content_hash in known_hashes:
            record.status = "same_content"
            record.same_content_as = known_hashes[record.content_hash]
            continue
        known_hashes[record.content_hash] = file_id
        if loaded.empty:
            continue  # an empty file holds no rows
        if loaded.error is not None:
            record.unreadable(loaded.error)
            continue
        if record.notes:
            log.warning("landing file %s: %s", f.relpath, record.notes)
        try:
            if f.fmt == "jsonl":
                lines = loaded.rows  # split: its content was not in `ingested`, or it would be
                assert lines is not None  # same_content (known_hashes holds all of `ingested`)
                file_ids = pa.array(np.full(lines.num_rows, file_id, dtype=np.int32))
                jsonl_parts.append(lines.append_column("file_id", file_ids))
            elif f.fmt == "csv":
                assert loaded.rows is not None
                _insert_arrow(con, loaded.rows, file_id, f.relpath)
            elif _has_pattern(record):
                _insert_parquet_file(con, kind, record)
            else:
                parquet.append(record)
        except READ_ERRORS as exc:
            record.unreadable(exc)
    # the batch's JSON lines stay registered until the batch is recorded (_ingest_kind)
    con.register(
        "jsonl_lines",
        pa.concat_tables(jsonl_parts) if jsonl_parts else JSONL_LINES.empty_table(),
    )
    try:
        _validate(con, kind, _parquet_scan(con, kind, parquet), bool(jsonl_parts))
    except READ_ERRORS:
        if not parquet:
            raise
        # a Parquet file DuckDB cannot read: read them one by one, keep the readable ones
        for record in parquet:
            _insert_parquet_file(con, kind, record)
        _validate(con, kind, None, bool(jsonl_parts))
    _drop_changed_parquet(con, records)
    return records


def _drop_changed_parquet(con: duckdb.DuckDBPyConnection, records: list[_FileRecord]) -> None:
    """Parquet rows are scanned by a second open of the file, after its bytes were hashed: a file
    replaced or written to in between (or swapped for a link) has its rows dropped from the batch
    and is deferred, so that what is loaded is always what was hashed."""
    for record in records:
        if record.file.fmt != "parquet" or record.status != "ingested":
            continue
        f = record.file
        try:
            now = os.lstat(f.path)
            same = stat.S_ISREG(now.st_mode) and (
                now.st_size,
                now.st_mtime_ns,
                now.st_ctime_ns,
            ) == (f.size, f.mtime_ns, f.ctime_ns)
        except OSError:
            same = False
        if not same:
            con.execute("DELETE FROM validated WHERE file_id = ?", [record.file_id])
            record.unreadable(ChangedWhileRead(f"{f.relpath} changed while it was read"))
            record.content_hash = None  # not read: a later run hashes and reads it again


def _validate(
    con: duckdb.DuckDBPyConnection, kind: str, parquet_scan: str | None, jsonl: bool
) -> None:
    """``landing_batch`` (the batch's rows as text) -> the typed and judged ``validated``."""
    sources = ["SELECT * FROM landing_rows"]
    if parquet_scan:
        sources.append(parquet_scan)
    if jsonl:
        sources.append(_template("ingest/read_jsonl", kind))
    fields = contract.FIELDS[kind]
    as_read = ", ".join(f"{name} := {name}" for name in fields)
    con.execute(
        "CREATE OR REPLACE TEMP VIEW landing_batch AS SELECT *, "
        f"struct_pack({as_read}) AS as_read FROM (" + "\nUNION ALL BY NAME\n".join(sources) + "\n)"
    )
    run_sql(con, f"ingest/validate_{kind}")
    run_sql(con, "ingest/validated")


def _parquet_scan(
    con: duckdb.DuckDBPyConnection, kind: str, records: list[_FileRecord]
) -> str | None:
    """A query reading the batch's Parquet files as the contract's fields, as text."""
    if not records:
        return None
    paths = "[" + ", ".join(quote(str(r.file.path)) for r in records) + "]"
    scan = f"read_parquet({paths}, filename = true, file_row_number = true, union_by_name = true)"
    present = {row[0] for row in con.execute(f"DESCRIBE SELECT * FROM {scan}").fetchall()}
    con.execute(
        "CREATE OR REPLACE TEMP TABLE parquet_files AS SELECT * FROM (VALUES "
        + ", ".join(
            f"({quote(str(r.file.path))}, {r.file_id}, {quote(r.file.relpath)})" for r in records
        )
        + ") AS t(filename, file_id, source_file)"
    )
    return (
        "SELECT f.file_id::INTEGER AS file_id, f.source_file, p.file_row_number + 1 AS row_number, "
        f"{_parquet_projection(kind, present)} "
        f"FROM {scan} p JOIN parquet_files f USING (filename)"
    )


def _parquet_projection(kind: str, present: set[str]) -> str:
    """The contract's fields of a Parquet scan ``p`` as text, and the read columns."""
    return "NULL AS raw, NULL AS read_reason, NULL AS parse_error, " + ", ".join(
        f'CAST(p."{name}" AS VARCHAR) AS {name}' if name in present else f"NULL AS {name}"
        for name in contract.FIELDS[kind]
    )


# DuckDB expands these in a file name as a pattern; such files are opened by pyarrow instead.
GLOB_CHARACTERS = frozenset("*?[]{}")


def _has_pattern(record: _FileRecord) -> bool:
    return bool(GLOB_CHARACTERS & set(str(record.file.path)))


def _insert_parquet_file(con: duckdb.DuckDBPyConnection, kind: str, record: _FileRecord) -> None:
    """One Parquet file into ``landing_rows``; a file that cannot be read is recorded unreadable.
    A name with pattern characters is opened as it is (a file named ``*.parquet`` must not read
    its siblings)."""
    try:
        if not _has_pattern(record):
            con.execute(f"INSERT INTO landing_rows BY NAME {_parquet_scan(con, kind, [record])}")
            return
        with open(record.file.path, "rb") as handle:
            table = pq.read_table(handle)
        rows = pa.array(np.arange(table.num_rows, dtype=np.int64))
        con.register("parquet_file", table.append_column("file_row_number", rows))
        try:
            con.execute(
                "INSERT INTO landing_rows BY NAME SELECT ?::INTEGER AS file_id, ? AS source_file, "
                "p.file_row_number + 1 AS row_number, "
                f"{_parquet_projection(kind, set(table.column_names))} FROM parquet_file p",
                [record.file_id, record.file.relpath],
            )
        finally:
            con.unregister("parquet_file")
    except READ_ERRORS as exc:
        record.unreadable(exc)


def _insert_file_rows(con: duckdb.DuckDBPyConnection, records: list[_FileRecord]) -> None:
    """``records`` as new rows of ops.ingested_files (their rows counted by record.sql)."""
    files = pa.table(
        {
            "file_id": pa.array([r.file_id for r in records], pa.int32()),
            "kind": pa.array([r.file.kind for r in records], pa.string()),
            "path": [r.file.relpath for r in records],
            "format": pa.array([r.file.fmt for r in records], pa.string()),
            "content_hash": pa.array([r.content_hash for r in records], pa.string()),
            "size_bytes": pa.array([r.file.size for r in records], pa.int64()),
            "mtime_ns": pa.array([r.file.mtime_ns for r in records], pa.int64()),
            "ctime_ns": pa.array([r.file.ctime_ns for r in records], pa.int64()),
            "status": [r.status for r in records],
            "skip_reason": pa.array([r.skip_reason for r in records], pa.string()),
            "error": pa.array([r.error for r in records], pa.string()),
            "notes": pa.array([r.notes for r in records], pa.string()),
            "same_content_as": pa.array([r.same_content_as for r in records], pa.int32()),
        }
    )
    con.register("batch_files", files)
    try:
        con.execute(
            "INSERT INTO ops.ingested_files BY NAME SELECT *, 0 AS rows_read, 0 AS rows_loaded, "
            "0 AS rows_quarantined, 0 AS duplicates_skipped, now() AS ingested_at FROM batch_files"
        )
    finally:
        con.unregister("batch_files")


def _record_batch(
    con: duckdb.DuckDBPyConnection,
    kind: str,
    records: list[_FileRecord],
    summary: KindSummary,
    arrival: date,
) -> None:
    """Inside the batch's transaction: file rows, de-duplication of ``validated``, the writes
    (the loaded rows of a lake kind to a new part of the dataset, pipelines/lake.py)."""
    _insert_file_rows(con, records)
    summary.files_new += sum(r.status != "deferred" for r in records)
    summary.files_deferred += sum(r.status == "deferred" for r in records)
    summary.files_unreadable += sum(r.status == "unreadable" for r in records)
    con.execute(_template("ingest/contested", kind))
    kept = lake.kept_rows(con, kind) if kind in lake.KINDS else f"raw.{kind}"
    con.execute(_template("ingest/classify", kind, kept_rows=kept))
    con.execute(_template("ingest/loaded", kind))
    if kind in lake.KINDS:
        ids = [r.file_id for r in records]
        lake.append(con, kind, "SELECT * FROM batch_loaded", min(ids), max(ids), arrival)
    else:
        con.execute(f"INSERT INTO raw.{kind} BY NAME SELECT * FROM batch_loaded")
    con.execute(_template("ingest/record", kind))
    counts = con.execute(
        "SELECT coalesce(sum(rows_read), 0), coalesce(sum(rows_loaded), 0), "
        "coalesce(sum(rows_quarantined), 0), coalesce(sum(duplicates_skipped), 0) "
        "FROM batch_counts"
    ).fetchall()[0]
    summary.rows_read += counts[0]
    summary.rows_loaded += counts[1]
    summary.rows_quarantined += counts[2]
    summary.duplicates_skipped += counts[3]


def _template(name: str, kind: str, **names: str) -> str:
    """An ingest SQL template filled with the contract's names for ``kind`` (and ``names``)."""
    fields = contract.FIELDS[kind]
    key, versioned = DEDUP[kind]
    return sql_text(name).format(
        kind=kind,
        key=", ".join(key),
        versioned="true" if versioned else "false",
        conflict_reason=CONFLICT_REASON.get(kind, "conflicting_duplicate"),
        stored_keys=lake.KEYS_TABLE.get(kind, f"raw.{kind}"),
        paths=", ".join(f"'$.{name}'" for name in fields),
        columns=", ".join(f"fields[{i}] AS {name}" for i, name in enumerate(fields, start=1)),
        field_list=", ".join((*fields, *STORED_EXTRAS.get(kind, ()))),
        typed_fields=", ".join(f"{name} := d.{name}" for name in fields),
        **names,
    )


# the lines of a batch's JSON-lines files, as registered for sql/ingest/read_jsonl.sql
JSONL_LINES = pa.schema(
    [
        ("source_file", pa.string()),
        ("row_number", pa.int64()),
        ("raw", pa.large_string()),
        ("read_reason", pa.string()),  # set on the few lines already known bad
        ("line_error", pa.string()),
        ("file_id", pa.int32()),  # added once the batch numbers its files
    ]
)


def _split_lines(data: bytes) -> pa.LargeBinaryArray:
    """The lines of ``data``, each with its line end, as Arrow binaries over ``data`` itself (no
    copy, no Python loop per line)."""
    buffer = np.frombuffer(data, dtype=np.uint8)
    # a file whose lines end with a bare CR (old Mac spreadsheets) is split on it
    end = b"\r" if b"\n" not in data and b"\r" in data else b"\n"
    ends = np.flatnonzero(buffer == ord(end)) + 1
    if len(data) and data[-1:] != end:
        ends = np.append(ends, len(data))
    offsets = np.concatenate([[0], ends]).astype(np.int64)
    return pa.LargeBinaryArray.from_buffers(
        pa.large_binary(), len(offsets) - 1, [None, pa.py_buffer(offsets), pa.py_buffer(data)]
    )


def _decode(lines: pa.LargeBinaryArray) -> tuple[pa.Array, np.ndarray]:
    """The lines as text, and which of them are not UTF-8 (those decoded as Latin-1, so that
    their text can be kept and shown; invalid_encoding)."""
    try:
        return lines.cast(pa.large_string()), np.zeros(len(lines), dtype=bool)
    except pa.ArrowInvalid:
        pass
    texts, bad = [], []
    for value in lines.to_pylist():  # slow path, for a file that is not all UTF-8
        try:
            texts.append(value.decode("utf-8"))
            bad.append(False)
        except UnicodeDecodeError:
            texts.append(value.decode("latin-1"))
            bad.append(True)
    return pa.array(texts, pa.large_string()), np.array(bad, dtype=bool)


def _jsonl_lines(data: bytes, source_file: str) -> pa.Table:
    """The lines of a JSON-lines file as an Arrow table (no file_id yet). A last line without
    its line end is a record still being written unless it is a whole JSON object: it is
    ``incomplete_record``, never loaded, and the file's next version reads it whole."""
    lines = _split_lines(data)
    count = len(lines)
    text, bad = _decode(lines)
    reasons = np.where(bad, "invalid_encoding", None).astype(object)
    errors = np.where(bad, "not UTF-8 (kept as read in Latin-1)", None).astype(object)
    if count and not data.endswith((b"\n", b"\r")) and not _is_json_object(text[-1].as_py()):
        reasons[-1], errors[-1] = "incomplete_record", "the last line has no line end"
    return pa.table(
        {
            "source_file": pa.repeat(pa.scalar(source_file, pa.string()), count),
            "row_number": pa.array(np.arange(1, count + 1, dtype=np.int64)),
            "raw": text,
            "read_reason": pa.array(reasons, pa.string()),
            "line_error": pa.array(errors, pa.string()),
        },
        schema=JSONL_LINES.remove(JSONL_LINES.get_field_index("file_id")),
    )


def _is_json_object(line: str) -> bool:
    try:
        return isinstance(json.loads(line), dict)
    except ValueError:
        return False


BOM = "\ufeff".encode()
# Separators a CSV file may use: the contract's, and the one French spreadsheets write.
CSV_SEPARATORS = (",", ";", "\t")


def _csv_records(data: bytes, kind: str) -> tuple[pa.Table, list[str]]:
    """A CSV file's records as text columns of ``landing_rows`` (no file_id yet), and notes on
    what was noticed. Each record keeps its text when records are lines (no line break inside a
    quoted value): whatever its reason, a quarantined row shows what was sent.

    - Lines that are not UTF-8 are ``invalid_encoding`` (kept as read in Latin-1); the others
      are read.
    - The separator is the one of ``,``, ``;`` or tab that splits the header into the most
      contract fields; another than ``,`` is noted, and ``;`` (French spreadsheets) is read with
      a decimal comma.
    - A last record without its line end is ``incomplete_record``: the file may still be being
      written, and a truncated value (``3000`` cut to ``30``) must never be loaded.
    - A record with the wrong number of fields is ``malformed_record``.
    """
    fields = list(contract.FIELDS[kind])
    data = data.removeprefix(BOM)
    lines = _split_lines(data)
    text, bad = _decode(lines)
    stripped = pc.utf8_rtrim(text, characters="\r\n")
    filled = np.flatnonzero(np.asarray(pc.not_equal(stripped, "")))  # pyarrow skips empty lines
    if len(filled) == 0:
        return _rejected_records(fields, []), []
    header = stripped[int(filled[0])].as_py()
    separator, has_header, notes = _csv_header(header, fields)
    body = filled[1:]  # the lines of the records, when each record is a line
    body_bad = bad[body]
    readable = data
    if bad[filled].any():  # the lines that are UTF-8, under the header (as decoded)
        readable = header.encode() + b"\n" + b"".join(lines.take(body[~body_bad]).to_pylist())
    parsed, invalid = _parse_csv(readable, separator, fields)
    records = parsed.num_rows + len(invalid)
    invalid_at = np.array([number - 2 for number, _ in invalid], dtype=np.int64)  # header: 1
    valid_at = np.setdiff1d(np.arange(records), invalid_at)
    ordinal = np.arange(1, len(body) + 1, dtype=np.int64)  # the record number of each line
    if records == len(body) - int(body_bad.sum()):
        # one record per line: each row has its line's record number and text
        good, good_ordinal = body[~body_bad], ordinal[~body_bad]
        numbers, raw = good_ordinal[valid_at], stripped.take(good[valid_at]).cast(pa.string())
        rejected = [
            (good_ordinal[i], stripped[int(good[i])].as_py(), *WRONG_FIELD_COUNT)
            for i in invalid_at
        ]
        encoding = zip(ordinal[body_bad], body[body_bad], strict=True)
        last = len(body)
    else:
        # a quoted value holds a line break: rows are numbered as records, shown as their fields
        numbers, raw = valid_at + 1, pa.nulls(len(valid_at), pa.string())
        rejected = [(number - 1, line, *WRONG_FIELD_COUNT) for number, line in invalid]
        encoding = enumerate(body[body_bad], start=records + 1)
        last = records
    rejected += [(number, stripped[int(i)].as_py(), *NOT_UTF8) for number, i in encoding]
    if not has_header:
        # no header: its first line may be a record, counted (row 0) and kept, never dropped
        rejected.append((0, header, *NO_HEADER))
    parsed = parsed.append_column("row_number", pa.array(numbers, pa.int64()))
    parsed = parsed.append_column("raw", raw)
    if separator == ";":  # a decimal comma
        for name in contract.DECIMAL_FIELDS.get(kind, ()):
            column = parsed.column_names.index(name)
            parsed = parsed.set_column(column, name, pc.replace_substring(parsed[name], ",", "."))
    parsed = parsed.append_column("read_reason", pa.nulls(len(parsed), pa.string()))
    parsed = parsed.append_column("parse_error", pa.nulls(len(parsed), pa.string()))
    table = pa.concat_tables(
        [parsed, _rejected_records(fields, rejected).select(parsed.column_names)]
    )
    if last and not data.endswith((b"\n", b"\r")):
        is_last = pc.equal(table["row_number"], last)
        for name, value in INCOMPLETE:
            column = table.column_names.index(name)
            table = table.set_column(
                column, name, pc.if_else(is_last, pa.scalar(value), table[name])
            )
    return table, notes


WRONG_FIELD_COUNT = ("malformed_record", "wrong number of fields")
NOT_UTF8 = ("invalid_encoding", "not UTF-8 (kept as read in Latin-1)")
NO_HEADER = ("malformed_record", "no header: the first line holds none of the contract's fields")
INCOMPLETE = (
    ("read_reason", "incomplete_record"),
    ("parse_error", "the last record has no line end"),
)


def _csv_header(header: str, fields: list[str]) -> tuple[str, bool, list[str]]:
    """The separator the header uses, whether it holds any contract field (else the first line
    is no header), and notes on what it holds."""
    separator = max(CSV_SEPARATORS, key=lambda sep: len(set(_names(header, sep)) & set(fields)))
    names = _names(header, separator)
    notes = []
    if separator != ",":
        comma = ", read with a decimal comma" if separator == ";" else ""
        notes.append(f"separator {separator!r} instead of ','{comma}")
    has_header = bool(set(names) & set(fields))
    if not has_header:  # its text may be a record: never in notes or logs
        notes.append(f"the header holds none of the contract's fields ({len(names)} columns)")
    elif unknown := [name for name in names if name not in fields]:
        notes.append("columns not in the contract, ignored: " + ", ".join(unknown)[:200])
    return separator, has_header, notes


def _names(header: str, separator: str) -> list[str]:
    return [name.strip().strip('"') for name in header.split(separator)]


def _parse_csv(
    data: bytes, separator: str, fields: list[str]
) -> tuple[pa.Table, list[tuple[int, str]]]:
    """The records as text columns, and the (number, text) of those with a wrong number of
    fields (pyarrow numbers records from 1, the header being 1)."""

    def read(use_threads: bool, invalid: list) -> pa.Table:
        def on_invalid(row) -> str:
            invalid.append((row.number, row.text))
            return "skip"

        return pacsv.read_csv(
            io.BytesIO(data),
            read_options=pacsv.ReadOptions(use_threads=use_threads),
            parse_options=pacsv.ParseOptions(
                delimiter=separator, newlines_in_values=True, invalid_row_handler=on_invalid
            ),
            convert_options=pacsv.ConvertOptions(
                column_types={name: pa.string() for name in fields},
                include_columns=fields,
                include_missing_columns=True,
                strings_can_be_null=True,
                null_values=[""],  # "NA", "null", "NaN" are data, typed (or rejected) in SQL
            ),
        )

    invalid: list = []
    table = read(True, invalid)
    if invalid:  # the numbers of invalid records are only known when reading on one thread
        invalid = []
        table = read(False, invalid)
    return table, invalid


def _rejected_records(fields: list[str], rejected: list[tuple]) -> pa.Table:
    """Records rejected while read: (number, text, reason, error) as rows of landing_rows."""
    numbers, texts, reasons, errors = zip(*rejected, strict=True) if rejected else ((),) * 4
    return pa.table(
        {name: pa.nulls(len(rejected), pa.string()) for name in fields}
        | {
            "row_number": pa.array([int(n) for n in numbers], pa.int64()),
            "raw": pa.array(texts, pa.string()),
            "read_reason": pa.array(reasons, pa.string()),
            "parse_error": pa.array(errors, pa.string()),
        }
    )


def _insert_arrow(
    con: duckdb.DuckDBPyConnection, table: pa.Table, file_id: int, source_file: str
) -> None:
    con.register("landing_file", table)
    try:
        con.execute(
            "INSERT INTO landing_rows BY NAME SELECT ? AS file_id, ? AS source_file, * "
            "FROM landing_file",
            [file_id, source_file],
        )
    finally:
        con.unregister("landing_file")
