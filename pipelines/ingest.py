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
import logging
import zlib
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from pipelines import contract
from pipelines.warehouse import run_sql, scalar, sql_text, table_exists

log = logging.getLogger(__name__)

# Files are read and committed in batches of about this many weighted bytes: a format's weight
# is how many bytes of the batch one byte of its files counts for. About 4 million rows for
# Parquet, large enough to keep the per-batch de-duplication cheap; JSON lines are held in memory
# as text while they are parsed, so their batches are a quarter of that (256 MB, ~1 million
# rows). Files are read one batch ahead (_read_ahead), so two batches are in memory: the
# benchmark's JSON-lines full run peaks at 3.2–3.4 GB RSS (1 GB batches took it to 5.5 GB).
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


@dataclass(frozen=True)
class LandingFile:
    kind: str
    path: Path
    relpath: str
    fmt: str | None
    size: int
    mtime_ns: int
    # status-change time: any write to the file moves it and no tool can set it back, so a file
    # rewritten with the same size and a restored mtime still fails the path+size+times shortcut
    ctime_ns: int


@dataclass
class KindSummary:
    files_new: int = 0
    files_skipped: int = 0
    files_unreadable: int = 0
    rows_read: int = 0
    rows_loaded: int = 0
    rows_quarantined: int = 0
    duplicates_skipped: int = 0


@dataclass
class IngestSummary:
    kinds: dict[str, KindSummary] = field(default_factory=dict)

    def total(self, name: str) -> int:
        return sum(getattr(summary, name) for summary in self.kinds.values())


Progress = Callable[[str, int, int], None]


def discover(landing: Path, kind: str) -> list[LandingFile]:
    """Every regular file under ``<landing>/<kind>/``, in arrival order: by modification time,
    then path (rules.md R7b: a version sent later wins a tie, never by its path alone)."""
    root = landing / kind
    if not root.is_dir():
        return []
    found = []
    for path in (p for p in root.rglob("*") if p.is_file()):
        if path.name.startswith("."):
            continue
        stat = path.stat()
        found.append(
            LandingFile(
                kind=kind,
                path=path,
                relpath=path.relative_to(landing).as_posix(),
                fmt=contract.format_of(path.name),
                size=stat.st_size,
                mtime_ns=stat.st_mtime_ns,
                ctime_ns=stat.st_ctime_ns,
            )
        )
    return sorted(found, key=lambda f: (f.mtime_ns, f.relpath))


def ingest(
    con: duckdb.DuckDBPyConnection,
    landing: Path,
    kinds: Iterable[str] = contract.KINDS,
    batch_bytes: int = BATCH_BYTES,
    progress: Progress | None = None,
) -> IngestSummary:
    """Ingest every new landing file of ``kinds``; returns what was read and where it went."""
    if not table_exists(con, "ref.activities"):
        raise RuntimeError("ref.activities is missing: load the catalog (reference asset) first")
    run_sql(con, "ingest/schema")
    run_sql(con, "ingest/macros")
    set_ingest_parameters(con)
    summary = IngestSummary()
    for kind in kinds:
        summary.kinds[kind] = _ingest_kind(con, landing, kind, batch_bytes, progress)
    return summary


def set_ingest_parameters(con: duckdb.DuckDBPyConnection) -> None:
    """The contract's values the validation SQL reads (sql/ingest/validate_*.sql)."""
    low, high = contract.SESSIONS_PER_WEEK_RANGE
    con.execute("SET VARIABLE sessions_per_week_min = ?", [low])
    con.execute("SET VARIABLE sessions_per_week_max = ?", [high])
    con.execute("SET VARIABLE payment_statuses = ?", [list(contract.PAYMENT_STATUSES)])


def _ingest_kind(
    con: duckdb.DuckDBPyConnection,
    landing: Path,
    kind: str,
    batch_bytes: int,
    progress: Progress | None,
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
    found = discover(landing, kind)
    candidates = [f for f in found if (f.relpath, f.size, f.mtime_ns, f.ctime_ns) not in seen]
    summary.files_skipped = len(found) - len(candidates)
    done = 0
    # contents already ingested: a file re-sent with the same bytes is hashed but not parsed
    for batch in _read_ahead(_batches(candidates, batch_bytes), frozenset(_ingested(con))):
        # Reading and validation happen outside the transaction, into a temporary table: a file
        # DuckDB cannot read then fails alone (recorded `unreadable`) instead of aborting the batch.
        try:
            records = _read_batch(con, kind, batch)
            con.begin()
            try:
                _record_batch(con, kind, records, summary)
                con.commit()
            except BaseException:
                con.rollback()
                raise
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


@dataclass
class _Loaded:
    """A landing file as read from disk, before the warehouse is consulted (``_load``)."""

    file: LandingFile
    content_hash: str | None = None  # None: the file could not be read at all
    empty: bool = False
    lines: pa.Table | None = None  # JSON lines: the file's lines, without their file_id yet
    error: BaseException | None = None


def _load(f: LandingFile, ingested: frozenset[str]) -> _Loaded:
    """Read one file, hash its bytes and split JSON lines (unless ``ingested`` already holds
    that content: _read_batch records it ``same_content``); touches no connection."""
    loaded = _Loaded(f)
    try:
        data = f.path.read_bytes()
        loaded.content_hash = hashlib.sha256(data).hexdigest()
        loaded.empty = not data
        if f.fmt == "jsonl" and data and loaded.content_hash not in ingested:
            text = gzip.decompress(data) if f.path.name.lower().endswith(".gz") else data
            loaded.lines = _jsonl_lines(text, f.relpath)
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
    """One landing file of a batch, as it will be recorded in ops.ingested_files."""

    file: LandingFile
    file_id: int
    content_hash: str | None
    status: str = "ingested"
    error: str | None = None
    same_content_as: int | None = None

    def unreadable(self, exc: BaseException) -> None:
        self.status, self.error = "unreadable", f"{type(exc).__name__}: {exc}"[:500]
        log.warning("landing file %s could not be read: %s", self.file.relpath, self.error)


def _read_batch(
    con: duckdb.DuckDBPyConnection, kind: str, files: list[_Loaded]
) -> list[_FileRecord]:
    """Read and validate the batch's files into the temp table ``validated``; one record per file.

    Parquet and JSON-lines files are not copied as text first: the temp view ``landing_batch``
    reads them where they are, and the validation is the only pass over their rows. CSV files
    (read by pyarrow) and Parquet files read one by one after a failed scan go through the temp
    table ``landing_rows``.
    """
    columns = ", ".join(f"{name} VARCHAR" for name in contract.FIELDS[kind])
    con.execute(
        "CREATE OR REPLACE TEMP TABLE landing_rows (file_id INTEGER, source_file VARCHAR, "
        f"row_number BIGINT, raw VARCHAR, parse_error VARCHAR, {columns})"
    )
    known_hashes = _ingested(con)
    first_id = scalar(con, "SELECT coalesce(max(file_id), 0) + 1 FROM ops.ingested_files")
    records, jsonl_parts, parquet = [], [], []
    for file_id, loaded in enumerate(files, start=first_id):
        f = loaded.file
        record = _FileRecord(f, file_id, loaded.content_hash)
        records.append(record)
        if loaded.content_hash is None:
            record.unreadable(loaded.error)
            continue
        if f.fmt is None:
            record.status, record.error = "unsupported", "file type not read (docs/contract.md)"
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
        try:
            if f.fmt == "jsonl":
                lines = loaded.lines  # split: its content was not in `ingested`, or it would be
                assert lines is not None  # same_content (known_hashes holds all of `ingested`)
                file_ids = pa.array(np.full(lines.num_rows, file_id, dtype=np.int32))
                jsonl_parts.append(lines.append_column("file_id", file_ids))
            elif f.fmt == "csv":
                _insert_arrow(con, _read_csv(f), file_id, f.relpath)
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
    return records


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
    paths = "[" + ", ".join(_quote(str(r.file.path)) for r in records) + "]"
    scan = f"read_parquet({paths}, filename = true, file_row_number = true, union_by_name = true)"
    present = {row[0] for row in con.execute(f"DESCRIBE SELECT * FROM {scan}").fetchall()}
    projection = ", ".join(
        f'CAST(p."{name}" AS VARCHAR) AS {name}' if name in present else f"NULL AS {name}"
        for name in contract.FIELDS[kind]
    )
    con.execute(
        "CREATE OR REPLACE TEMP TABLE parquet_files AS SELECT * FROM (VALUES "
        + ", ".join(
            f"({_quote(str(r.file.path))}, {r.file_id}, {_quote(r.file.relpath)})" for r in records
        )
        + ") AS t(filename, file_id, source_file)"
    )
    return (
        "SELECT f.file_id::INTEGER AS file_id, f.source_file, p.file_row_number + 1 AS row_number, "
        f"NULL AS raw, NULL AS parse_error, {projection} "
        f"FROM {scan} p JOIN parquet_files f USING (filename)"
    )


def _insert_parquet_file(con: duckdb.DuckDBPyConnection, kind: str, record: _FileRecord) -> None:
    """One Parquet file into ``landing_rows``; a file DuckDB cannot read is recorded unreadable."""
    try:
        con.execute(f"INSERT INTO landing_rows BY NAME {_parquet_scan(con, kind, [record])}")
    except READ_ERRORS as exc:
        record.unreadable(exc)


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _record_batch(
    con: duckdb.DuckDBPyConnection, kind: str, records: list[_FileRecord], summary: KindSummary
) -> None:
    """Inside the batch's transaction: file rows, de-duplication of ``validated``, the writes."""
    files = pa.table(
        {
            "file_id": pa.array([r.file_id for r in records], pa.int32()),
            "kind": [kind] * len(records),
            "path": [r.file.relpath for r in records],
            "format": pa.array([r.file.fmt for r in records], pa.string()),
            "content_hash": [r.content_hash for r in records],
            "size_bytes": pa.array([r.file.size for r in records], pa.int64()),
            "mtime_ns": pa.array([r.file.mtime_ns for r in records], pa.int64()),
            "ctime_ns": pa.array([r.file.ctime_ns for r in records], pa.int64()),
            "status": [r.status for r in records],
            "error": pa.array([r.error for r in records], pa.string()),
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
    summary.files_new += len(records)
    summary.files_unreadable += sum(r.status == "unreadable" for r in records)
    con.execute(_template("ingest/classify", kind))
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


def _template(name: str, kind: str) -> str:
    """An ingest SQL template filled with the contract's names for ``kind``."""
    fields = contract.FIELDS[kind]
    key, versioned = DEDUP[kind]
    return sql_text(name).format(
        kind=kind,
        key=", ".join(key),
        versioned="true" if versioned else "false",
        conflict_reason=CONFLICT_REASON.get(kind, "conflicting_duplicate"),
        paths=", ".join(f"'$.{name}'" for name in fields),
        columns=", ".join(f"fields[{i}] AS {name}" for i, name in enumerate(fields, start=1)),
        field_list=", ".join((*fields, *STORED_EXTRAS.get(kind, ()))),
        typed_fields=", ".join(f"{name} := d.{name}" for name in fields),
    )


# the lines of a batch's JSON-lines files, as registered for sql/ingest/read_jsonl.sql
JSONL_LINES = pa.schema(
    [
        ("source_file", pa.string()),
        ("row_number", pa.int64()),
        ("raw", pa.large_string()),
        ("encoding_error", pa.string()),
        ("file_id", pa.int32()),  # added once the batch numbers its files
    ]
)


def _jsonl_lines(data: bytes, source_file: str) -> pa.Table:
    """The lines of a JSON-lines file as an Arrow table (no file_id yet), without a Python loop
    per line."""
    buffer = np.frombuffer(data, dtype=np.uint8)
    ends = np.flatnonzero(buffer == ord("\n")) + 1
    if len(data) and data[-1:] != b"\n":
        ends = np.append(ends, len(data))
    offsets = np.concatenate([[0], ends]).astype(np.int64)
    count = len(offsets) - 1
    lines = pa.LargeBinaryArray.from_buffers(
        pa.large_binary(), count, [None, pa.py_buffer(offsets), pa.py_buffer(data)]
    )
    errors = pa.nulls(count, pa.string())
    try:
        text = lines.cast(pa.large_string())
    except pa.ArrowInvalid:
        text, errors = _decode_lines_one_by_one(lines)
    return pa.table(
        {
            "source_file": pa.repeat(pa.scalar(source_file, pa.string()), count),
            "row_number": pa.array(np.arange(1, count + 1, dtype=np.int64)),
            "raw": text,
            "encoding_error": errors,
        },
        schema=JSONL_LINES.remove(JSONL_LINES.get_field_index("file_id")),
    )


def _decode_lines_one_by_one(lines: pa.LargeBinaryArray) -> tuple[pa.Array, pa.Array]:
    """Slow path for a file with invalid UTF-8: such lines are kept, marked malformed."""
    texts, errors = [], []
    for value in lines.to_pylist():
        try:
            texts.append(value.decode("utf-8"))
            errors.append(None)
        except UnicodeDecodeError:
            texts.append(value.decode("utf-8", errors="replace"))
            errors.append("invalid UTF-8")
    return pa.array(texts, pa.large_string()), pa.array(errors, pa.string())


def _read_csv(f: LandingFile) -> pa.Table:
    """A CSV file as text columns; rows with the wrong number of columns are kept as malformed."""
    fields = list(contract.FIELDS[f.kind])

    def read(use_threads: bool, bad: list) -> pa.Table:
        def on_invalid(row) -> str:
            bad.append((row.number, row.text))
            return "skip"

        return pacsv.read_csv(
            f.path,
            read_options=pacsv.ReadOptions(use_threads=use_threads),
            parse_options=pacsv.ParseOptions(
                newlines_in_values=True, invalid_row_handler=on_invalid
            ),
            convert_options=pacsv.ConvertOptions(
                column_types={name: pa.string() for name in fields},
                include_columns=fields,
                include_missing_columns=True,
                strings_can_be_null=True,
                null_values=[""],  # "NA", "null", "NaN" are data, typed (or rejected) in SQL
            ),
        )

    bad: list = []
    table = read(True, bad)
    if bad:  # row numbers of bad rows are only known when reading on one thread
        bad = []
        table = read(False, bad)
    # pyarrow numbers rows from 1 with the header as row 1; ours are data records from 1.
    bad_numbers = [number - 1 for number, _ in bad]
    total = table.num_rows + len(bad)
    good_numbers = np.setdiff1d(np.arange(1, total + 1), np.array(bad_numbers, dtype=np.int64))
    table = table.append_column("row_number", pa.array(good_numbers, pa.int64()))
    table = table.append_column("raw", pa.nulls(table.num_rows, pa.string()))
    table = table.append_column("parse_error", pa.nulls(table.num_rows, pa.string()))
    if bad:
        malformed = pa.table(
            {name: pa.nulls(len(bad), pa.string()) for name in fields}
            | {
                "row_number": pa.array(bad_numbers, pa.int64()),
                "raw": pa.array([text for _, text in bad], pa.string()),
                "parse_error": pa.array(["wrong number of columns"] * len(bad), pa.string()),
            }
        )
        table = pa.concat_tables([table, malformed.select(table.column_names)])
    return table


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
