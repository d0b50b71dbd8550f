"""The DuckDB warehouse: connections, the single-writer lock, schemas and the SQL runner.

DuckDB lets one process write at a time. Writers take an exclusive file lock next to the
warehouse (``<warehouse>.lock``, with ``filelock``) for the whole unit of work, so two runs
started together wait for each other instead of failing or interleaving; the holder writes who
it is and since when in ``<warehouse>.writer``, which a waiting writer shows at once. A writer
gives up after the lock timeout (``OBSERVANCE_LOCK_TIMEOUT``) with ``WarehouseBusy``. Readers
(report, notebooks, export) open the file read-only and never take the lock.

The file is attached under the name ``warehouse`` (whatever it is called: ``marts.duckdb``
would otherwise clash with the schema ``marts``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from datetime import date
from pathlib import Path

import duckdb
from filelock import FileLock, Timeout

from pipelines import config

log = logging.getLogger(__name__)

SCHEMAS = ("ref", "raw", "ops", "staging", "marts", "ledger")
# A DuckDB file opened by another process (a writer, or for a writer any reader) cannot be opened
# for a moment: readers retry for this long; writers wait for the lock and the file up to the
# lock timeout (config.lock_timeout_seconds).
READ_ONLY_RETRY_SECONDS = 60.0
ALIAS = "warehouse"  # the name the file is attached under in every connection
# A run's steps share one connection while the process stays below this resident size after a
# step (a night stays below it). Above it the connection is closed, which gives back the memory
# DuckDB and its allocator still hold: kept, it sits under the next big step of a full run and
# takes the run's peak past the memory target (docs/performance.md).
KEEP_OPEN_BELOW_RSS_BYTES = 1536 << 20
# DuckDB's vacuum: when it checkpoints a table whose row groups deletes have thinned, it merges
# them into fewer row groups, writing their rows again. The incremental models delete and insert
# rows every night, so every night's checkpoints would rewrite many rows that did not change
# (a sizeable share of the night, docs/performance.md). Vacuuming is off by
# default (configure); the models turn it on for one evaluation date every VACUUM_EVERY_DAYS
# (pace_vacuum). In between, deleted rows keep their place in the row groups, skipped by scans.
VACUUM_EVERY_DAYS = 7


def configure(con: duckdb.DuckDBPyConnection) -> None:
    # Timestamps are instants; SQL never relies on the session zone (R1 uses ref.paris_offsets).
    con.execute("SET TimeZone = 'UTC'")
    con.execute("SET memory_limit = ?", [config.memory_limit()])
    # Tables are never read in insertion order (every model sorts what it needs): letting DuckDB
    # write in any order makes large inserts markedly faster.
    con.execute("SET preserve_insertion_order = false")
    # no vacuum unless pace_vacuum says this evaluation date is a vacuum date
    con.execute("SET max_vacuum_tasks = 0")


# The raw dataset of a warehouse file (pipelines/lake.py): data/warehouse.duckdb ->
# data/warehouse.duckdb.raw/ (the whole file name: two warehouses never share a folder).
DATASET_SUFFIX = ".raw"


def dataset_folder(warehouse: Path) -> Path:
    """The raw dataset folder of the warehouse file ``warehouse`` (``x.duckdb`` ->
    ``x.duckdb.raw``)."""
    return warehouse.with_name(warehouse.name + DATASET_SUFFIX)


def search_path(warehouse: Path) -> str:
    """DuckDB's ``file_search_path`` for a connection to ``warehouse``: its raw dataset first
    (the relative paths of the view raw.transmissions), then the working directory (a user's
    own relative paths)."""
    return f"{dataset_folder(warehouse.absolute())},{Path.cwd()}"


def copy_warehouse(source: Path, target: Path, link: bool = False) -> Path:
    """Copy the warehouse file ``source`` (with its WAL) and its raw dataset to ``target``, for
    the tests and the benchmark; the caller makes sure no run writes it meanwhile (operators use
    ``backup``, which holds the writer lock). With
    ``link``, the dataset's parts are hard-linked where the file system allows it: they are
    never changed once written, so a link is as good as a copy and costs nothing."""
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)
    wal = source.with_name(source.name + ".wal")
    if wal.exists():
        shutil.copyfile(wal, target.with_name(target.name + ".wal"))
    dataset = dataset_folder(source)
    if dataset.exists():
        shutil.copytree(
            dataset, dataset_folder(target), copy_function=_link_or_copy if link else shutil.copy2
        )
    return target


def backup(warehouse: Path, folder: Path) -> Path:
    """A consistent copy of the warehouse (its file and its raw dataset's committed parts) in
    ``folder``, under the warehouse's own name; returns the copied file.

    It holds the writer lock while it copies, so a run starting meanwhile waits for it (up to
    the lock timeout) instead of changing what is being copied. The parts are hard-linked where
    ``folder`` is on the same file system (they never change once written: the snapshot is
    immediate and the lock is held for the file's copy alone), else copied. Everything written
    is readable by the owner and the group only, and synced; a backup that fails leaves
    nothing behind."""
    target = folder / warehouse.name
    if target.exists() or dataset_folder(target).exists():
        raise FileExistsError(f"{target} already exists: back up into a new folder")
    with writer(warehouse) as con:
        con.execute("CHECKPOINT")
        parts = []
        if table_exists(con, "ops.raw_parts"):
            parts = [row[0] for row in con.execute("SELECT path FROM ops.raw_parts").fetchall()]
        con.close()  # the file complete on disk, no WAL; the lock stays held
        missing = [p for p in parts if not (dataset_folder(warehouse) / p).is_file()]
        if missing:
            raise FileNotFoundError(
                f"{len(missing)} parts of the raw dataset are missing (first: {missing[0]}): "
                "this warehouse cannot be backed up whole"
            )
        try:
            folder.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(warehouse, target)
            os.chmod(target, config.FILE_MODE)
            for part in parts:
                copied = dataset_folder(target) / part
                copied.parent.mkdir(parents=True, exist_ok=True)
                _link_or_copy(str(dataset_folder(warehouse) / part), str(copied))
            for path in (target, *(dataset_folder(target) / p for p in parts)):
                sync(path)
        except BaseException:
            target.unlink(missing_ok=True)
            shutil.rmtree(dataset_folder(target), ignore_errors=True)
            raise
    return target


def sync(path: Path) -> None:
    """Flush a file to disk (written by DuckDB, copied, or linked), then its folder's entry."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
    folder = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)


def _link_or_copy(source: str, target: str) -> None:
    """A hard link (a part, never changed once written: a link shares its mode with the live
    file), else a copy readable by the owner and the group only."""
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)
        os.chmod(target, config.FILE_MODE)


def _find_dataset(con: duckdb.DuckDBPyConnection, warehouse: Path) -> None:
    if "," in str(warehouse.absolute()):  # DuckDB's separator of search folders
        raise ValueError(f"{warehouse}: a warehouse path cannot hold a comma")
    con.execute("SET file_search_path = ?", [search_path(warehouse)])


class WarehouseBusy(RuntimeError):
    """Another process kept the warehouse past the lock timeout (a run, a reader)."""


# the writer locks this process holds: taking one twice would wait for itself forever
_HELD_LOCKS: set[Path] = set()


def _holder(info: Path) -> str:
    """Who holds the writer lock, as its holder wrote it (pid, since, command)."""
    try:
        holder = json.loads(info.read_text(encoding="utf-8"))
        return f"process {holder['pid']} ({holder['command']}) since {holder['since']}"
    except (OSError, ValueError, KeyError):
        return "another process"


@contextmanager
def write_lock(warehouse: Path, timeout: float | None = None) -> Iterator[None]:
    """Hold the exclusive writer lock of ``warehouse``; wait for it up to ``timeout`` seconds
    (default: the configured lock timeout), saying at once who holds it."""
    warehouse.parent.mkdir(parents=True, exist_ok=True)
    lock_path = warehouse.with_name(warehouse.name + ".lock").resolve()
    info = warehouse.with_name(warehouse.name + ".writer")
    if lock_path in _HELD_LOCKS:
        raise RuntimeError(f"this process already writes to {warehouse}: close that first")
    timeout = config.lock_timeout_seconds() if timeout is None else timeout
    lock = FileLock(lock_path, mode=0o640)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        log.warning(
            "%s is being written by %s: waiting up to %.0f s", warehouse, _holder(info), timeout
        )
        try:
            lock.acquire(timeout=timeout)
        except Timeout:
            raise WarehouseBusy(
                f"{warehouse} is still being written by {_holder(info)} after {timeout:.0f} s"
                " (--lock-timeout)"
            ) from None
    _HELD_LOCKS.add(lock_path)
    try:
        info.write_text(
            json.dumps(
                {
                    "pid": os.getpid(),
                    "since": time.strftime("%Y-%m-%d %H:%M:%S %z"),
                    "command": " ".join(os.path.basename(a) for a in sys.argv[:3]),
                }
            ),
            encoding="utf-8",
        )
        yield
    finally:
        info.unlink(missing_ok=True)
        _HELD_LOCKS.discard(lock_path)
        lock.release()


@contextmanager
def writer(warehouse: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-write connection, held under the writer lock, with the schemas in place."""
    with write_lock(warehouse):
        con = _connect(warehouse, read_only=False, patience=config.lock_timeout_seconds())
        try:
            configure(con)
            _find_dataset(con, warehouse)
            for schema in SCHEMAS:
                con.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
            yield con
        finally:
            con.close()


class RunConnection:
    """The read-write connection of one run, shared by the steps a process runs in turn.

    Opening, configuring and closing (checkpointing) a connection per step is a visible share
    of a night. Here the first ``writer()`` opens the connection under the
    writer lock and later ones reuse it; ``close()`` (the end of the run) releases both. Each
    step still commits its own work, and leaves no temporary table or view behind for the next
    one. A step that fails closes the connection, so the next step starts afresh; so does a step
    that leaves the process larger than KEEP_OPEN_BELOW_RSS_BYTES.

    One process cannot hold a file read-write and read-only at once: a step that reads
    through a read-only connection (the report) calls ``close()`` first. While the connection
    is open, readers in other processes wait (up to READ_ONLY_RETRY_SECONDS).

    Other session state does carry over: ``SET VARIABLE`` values, settings and temporary
    macros. Every model sets the variables it reads (``set_parameters``) and whether to vacuum
    (``pace_vacuum``), only ``configure`` changes other settings, and a macro is created
    (``CREATE OR REPLACE``) by the SQL that uses it.
    """

    def __init__(self, warehouse: Path) -> None:
        self.warehouse = warehouse
        self._con: duckdb.DuckDBPyConnection | None = None
        self._held = ExitStack()

    @contextmanager
    def writer(self) -> Iterator[duckdb.DuckDBPyConnection]:
        if self._con is None:
            self._con = self._held.enter_context(writer(self.warehouse))
        try:
            yield self._con
            _end_of_step(self._con)
        except BaseException:
            try:
                self.close()
            except Exception:  # keep the step's own error in front
                log.exception("closing the warehouse after a failed step failed too")
            raise
        if not resident_bytes() < KEEP_OPEN_BELOW_RSS_BYTES:
            self.close()

    def close(self) -> None:
        self._con = None
        self._held.close()


def resident_bytes() -> float:
    """The resident size of this process now (Linux; infinite where it cannot be read)."""
    try:
        with open("/proc/self/statm", encoding="ascii") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return float("inf")


def _end_of_step(con: duckdb.DuckDBPyConnection) -> None:
    """Leave the connection as a new one would be: work left uncommitted is rolled back (as
    closing did; every step commits its own), temporary objects are dropped."""
    with suppress(duckdb.TransactionException):  # no transaction open: the usual case
        con.rollback()
    drop_temporary(con)


def drop_temporary(con: duckdb.DuckDBPyConnection) -> None:
    """Drop the temporary views and tables a unit of work made (they hold memory until then)."""
    views = con.execute(
        "SELECT view_name FROM duckdb_views() WHERE temporary AND NOT internal"
    ).fetchall()
    tables = con.execute("SELECT table_name FROM duckdb_tables() WHERE temporary").fetchall()
    for (name,) in views:
        con.execute(f'DROP VIEW IF EXISTS temp.main."{name}"')
    for (name,) in tables:
        con.execute(f'DROP TABLE IF EXISTS temp.main."{name}"')


@contextmanager
def reader(warehouse: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-only connection (analysts, report, export): it can never change the warehouse."""
    if not warehouse.exists():
        raise FileNotFoundError(f"no warehouse at {warehouse}: run `observance run` first")
    con = _connect(warehouse, read_only=True, patience=READ_ONLY_RETRY_SECONDS)
    try:
        con.execute("SET TimeZone = 'UTC'")
        _find_dataset(con, warehouse)
        yield con
    finally:
        con.close()


# The storage format of a new warehouse file: DuckDB 1.4 (the long-term-support line), so that
# any client from 1.4.0 on (the pinned 2.x engine included) opens it; the engine's own default
# (v2.0.0) would lock out every 1.x client. A file keeps the format it was created with.
STORAGE_VERSION = "v1.4.0"


def _connect(warehouse: Path, read_only: bool, patience: float) -> duckdb.DuckDBPyConnection:
    """Open the file (attached as ALIAS), waiting up to ``patience`` seconds while another
    process has it open in a conflicting mode; says at once that it waits."""
    deadline = time.monotonic() + patience
    quoted = "'" + str(warehouse).replace("'", "''") + "'"
    waiting = False
    while True:
        con = duckdb.connect()
        options = " (READ_ONLY)" if read_only else ""
        if not read_only and not warehouse.exists():  # a new file: the chosen storage version
            options = f" (STORAGE_VERSION '{STORAGE_VERSION}')"
        try:
            con.execute(f"ATTACH {quoted} AS {ALIAS}{options}")
            con.execute(f"USE {ALIAS}")
            return con
        except duckdb.IOException as exc:
            con.close()
            held = str(exc).splitlines()[0]
            if time.monotonic() > deadline:
                raise WarehouseBusy(
                    f"{warehouse} stayed in use by another process: {held}"
                ) from None
            if not waiting:
                log.warning(
                    "%s is in use by another process, waiting up to %.0f s: %s",
                    warehouse,
                    patience,
                    held,
                )
                waiting = True
            time.sleep(0.2)


@contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """One transaction: committed when the block ends, rolled back when it raises."""
    con.begin()
    try:
        yield
        con.commit()
    except BaseException:
        con.rollback()
        raise


def sql_text(name: str) -> str:
    """The text of ``sql/<name>.sql``."""
    return (config.SQL_DIR / f"{name}.sql").read_text(encoding="utf-8")


def run_sql(con: duckdb.DuckDBPyConnection, name: str) -> None:
    """Run every statement of ``sql/<name>.sql`` (parameters come from ``set_parameters``)."""
    con.execute(sql_text(name))


def parameters(as_of: date) -> dict[str, object]:
    """The evaluation date and the named rule constants, as the SQL reads them
    (``getvariable('name')``)."""
    return {
        "as_of": as_of,
        "period_days": config.PERIOD_DAYS,
        "sufficiency_threshold": config.SUFFICIENCY_THRESHOLD,
        "prescription_max_days": config.PRESCRIPTION_MAX_DAYS,
        "trial_max_days": config.TRIAL_MAX_DAYS,
        "claim_max_periods": config.CLAIM_MAX_PERIODS,
        "semester_months": config.SEMESTER_MONTHS,
        "amo_share": config.AMO_SHARE_WITHOUT_ALD,
        "local_timezone": config.LOCAL_TIMEZONE,
        "pace_min_days": config.PACE_MIN_DAYS,
        "prescription_notice_days": config.PRESCRIPTION_NOTICE_DAYS,
        "unpaid_after_days": config.UNPAID_AFTER_DAYS,
    }


def set_parameters(con: duckdb.DuckDBPyConnection, as_of: date) -> None:
    """Expose the evaluation date and the named rule constants to SQL as variables."""
    for name, value in parameters(as_of).items():
        con.execute(f"SET VARIABLE {name} = ?", [value])


def pace_vacuum(con: duckdb.DuckDBPyConnection, as_of: date) -> bool:
    """Let the warehouse's checkpoints vacuum (the setting is global to the open database) when
    the run's evaluation date is a vacuum date, else turn vacuuming off; returns whether it is
    on. The last vacuum date is kept in ops.model_state under 'vacuum'. A date is a vacuum date
    when there is none yet, when it is that date (every run of it vacuums: a re-run, each step
    under the multiprocess executor), VACUUM_EVERY_DAYS or more after it, or before it (a
    backfill, or a mistyped date in the future, does not stop vacuuming for long)."""
    if not table_exists(con, "ops.model_state"):  # a new warehouse: nothing to pace yet
        con.execute("RESET max_vacuum_tasks")
        return True
    last = scalar(con, "SELECT as_of FROM ops.model_state WHERE model = 'vacuum'")
    due = last is None or not 0 < (as_of - last).days < VACUUM_EVERY_DAYS
    # recorded outside the model's transaction: kept even if the model fails, which is harmless
    # since every run with that date vacuums
    if due and as_of != last:
        con.execute(
            "INSERT OR REPLACE INTO ops.model_state (model, after_file_id, fingerprint, as_of) "
            "VALUES ('vacuum', 0, '', ?)",
            [as_of],
        )
    con.execute("RESET max_vacuum_tasks" if due else "SET max_vacuum_tasks = 0")
    return due


MIGRATIONS = "migrations"  # sql/migrations/NNN_what.sql


def migrate(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Apply the schema migrations (sql/migrations/NNN_*.sql) this warehouse has not had yet, in
    their order and in one transaction; returns the names applied. Each is recorded in
    ops.schema_migrations with a checksum of its text: a migration edited after it was applied
    is refused (a change is a new migration). The derived tables (staging.*, marts.*) need none:
    a model whose SQL changed is rebuilt in full by the model runner (pipelines/models.py)."""
    files = sorted((config.SQL_DIR / MIGRATIONS).glob("[0-9][0-9][0-9]_*.sql"))
    upgrade = table_exists(con, "ops.ingested_files")  # else a new warehouse: nothing to say
    with transaction(con):
        con.execute("CREATE SCHEMA IF NOT EXISTS ops")
        con.execute(
            "CREATE TABLE IF NOT EXISTS ops.schema_migrations (version INTEGER PRIMARY KEY, "
            "name VARCHAR NOT NULL, checksum VARCHAR NOT NULL, applied_at TIMESTAMPTZ NOT NULL)"
        )
        applied = dict(con.execute("SELECT name, checksum FROM ops.schema_migrations").fetchall())
        done = []
        for path in files:
            text = path.read_text(encoding="utf-8")
            checksum = hashlib.sha256(text.encode()).hexdigest()
            if path.stem in applied:
                if applied[path.stem] != checksum:
                    raise RuntimeError(
                        f"migration {path.name} changed after it was applied: "
                        "add a new migration instead"
                    )
                continue
            con.execute(text)
            con.execute(
                "INSERT INTO ops.schema_migrations VALUES (?, ?, ?, now())",
                [int(path.stem[:3]), path.stem, checksum],
            )
            done.append(path.stem)
    if done and upgrade:
        log.info("migrations applied: %s", ", ".join(done))
    return done


def drop_relation(con: duckdb.DuckDBPyConnection, qualified: str) -> None:
    """Drop the table or view ``schema.name``, if there is one."""
    kind = relation_kind(con, qualified)
    if kind is not None:
        con.execute(f"DROP {kind.upper()} {qualified}")


def quote(text: str) -> str:
    """A SQL string literal of ``text`` (a path where SQL takes no parameter: COPY, a view)."""
    return "'" + text.replace("'", "''") + "'"


def scalar(con: duckdb.DuckDBPyConnection, query: str, params: list | None = None):
    """The single value of a query (fetched whole: DuckDB keeps unfinished results open)."""
    rows = con.execute(query, params or []).fetchall()
    return rows[0][0] if rows else None


def relation_kind(con: duckdb.DuckDBPyConnection, qualified: str) -> str | None:
    """'table' or 'view' for ``schema.name`` in the warehouse, None when there is neither."""
    schema, name = qualified.split(".")
    rows = con.execute(
        "SELECT 'table' FROM duckdb_tables() WHERE schema_name = $1 AND table_name = $2 "
        "UNION ALL SELECT 'view' FROM duckdb_views() "
        "WHERE NOT internal AND schema_name = $1 AND view_name = $2",
        [schema, name],
    ).fetchall()
    return rows[0][0] if rows else None


def table_exists(con: duckdb.DuckDBPyConnection, qualified: str) -> bool:
    """Whether ``schema.name`` is a table or a view of the warehouse."""
    return relation_kind(con, qualified) is not None


def drop_table_become_view(con: duckdb.DuckDBPyConnection, qualified: str) -> None:
    """Drop the table ``schema.name`` if there is one: an earlier version kept as a table what
    is now a view (DuckDB cannot replace a table by a view, nor drop "a table or a view")."""
    if relation_kind(con, qualified) == "table":
        con.execute(f"DROP TABLE {qualified}")


def row_count(con: duckdb.DuckDBPyConnection, qualified: str) -> int:
    return scalar(con, f"SELECT count(*) FROM {qualified}") if table_exists(con, qualified) else 0
