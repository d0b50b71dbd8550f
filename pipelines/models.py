"""The SQL models of the warehouse, and the one place where incrementality lives.

A model is one SQL file under ``sql/{observance,file_active,billing,alerts}/`` that starts with a
header, a YAML block comment::

    /* model
    writes: [staging.period_units, staging.matched_units]   # the first is the main table
    group: observance
    incremental: true                                       # optional, default false
    consumes: [ops.units_pending]                           # optional: change feeds it empties
    compares: {staging.enrollments: [enrollment_id, end_date]}   # optional: snapshot diffs
    views: [staging.matched_units]                          # optional: written as views
    metadata: metadata/period_units                         # optional: shown per build
    then: price_semesters                                   # optional: a Python step after it
    step_reads: [ref.activities]                            # what that step reads
    engine: duckdb                                          # optional: never on Spark (below)
    description: One line for the asset catalog.
    */

Every table a model writes is an asset (dagster_project/assets/models.py); what it reads — its
dependencies — is read from its SQL (``schema.table`` names), never listed by hand.

A plain model rebuilds its tables every run, unless it reads only loaded data (raw.*, ref.*)
and none of it changed since its last build (``reads_only_loaded_data``). For an incremental
model the runner (``build``):

* computes its **fingerprint**: its SQL (comments aside) and that of the plain models it reads
  from, the reference data when they read ``ref.*``, and the values of the parameters they
  read. A model without state, or whose
  fingerprint changed, is built **in full**: the tables it writes are dropped first (its SQL
  creates them again, in their current shape) and every incremental model downstream of it loses
  its state, so it is built in full too;
* sets the variables its SQL reads: ``full_build``, ``previous_as_of`` (the evaluation date of
  its last build; null in full) and ``after_file_id`` (the last ingested file it has seen; 0 in
  full: rows of raw.* with a larger ``file_id`` are new);
* for each table it ``compares``, keeps a snapshot of the listed columns as of its last build and
  gives the SQL a temporary table ``<table>_changes``: the rows added, changed (both versions)
  or removed since (every row in full);
* after the SQL: empties the change feeds it ``consumes``, replaces the snapshots and records its
  state (ops.model_state) — in the same transaction as the model's own writes.

The model's SQL is only its rules: which keys its changes touch, and how to compute them.

With ``OBSERVANCE_ENGINE=spark`` the same SQL runs on Spark (pipelines/spark.py), in full; a
model whose header says ``engine: duckdb`` keeps to the warehouse whatever the engine: it
updates rows that cannot be rebuilt (ops.alert_history), which Spark's phase 1 does not do.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from functools import cached_property
from pathlib import Path

import duckdb
import yaml

from pipelines import config, contract
from pipelines.faults import fault
from pipelines.file_active import price_semesters
from pipelines.spark import SparkEngine, leave_spark
from pipelines.warehouse import (
    drop_relation,
    drop_table_become_view,
    pace_vacuum,
    parameters,
    row_count,
    run_sql,
    scalar,
    set_parameters,
    sql_text,
    table_exists,
    transaction,
)

log = logging.getLogger(__name__)

MODEL_FOLDERS = ("observance", "file_active", "billing", "alerts")
HEADER = re.compile(r"\A/\* model\r?\n(?P<yaml>.*?)\r?\n\*/\r?\n", re.S)
# a comment or a string literal (matched together: a literal may hold "--")
_COMMENT_OR_LITERAL = re.compile(r"--[^\n]*|/\*.*?\*/|'(?:[^']|'')*'", re.S)
_RELATION = re.compile(r"\b(ref|raw|ops|staging|marts|ledger)\.([a-z_][a-z0-9_]*)\b(?!\s*\()")
_VARIABLE = re.compile(r"getvariable\('([a-z_]+)'\)")
# The variables the runner sets for an incremental model (and only for one).
RUNNER_VARIABLES = ("full_build", "previous_as_of", "after_file_id")
# Python steps a model runs after its SQL, in the same transaction (``then:`` in its header).
STEPS: dict[str, Callable[[duckdb.DuckDBPyConnection], None]] = {
    "price_semesters": price_semesters,
}
# The assets that write the tables models read, other than models: the catalog writes every
# ref.* table, the ledger asset every ledger.* table, each ingestion asset its raw.* table;
# ingestion's own bookkeeping is written by every ingestion asset.
SOURCE_ASSETS = {"ref": "ref.catalog", "ledger": "ledger.issued_lines"}
INGESTION_BOOKKEEPING = frozenset({"ops.ingested_files", "ops.quarantine"})
RAW_ASSETS = frozenset(f"raw.{kind}" for kind in contract.KINDS)


@dataclass(frozen=True)
class Model:
    sql: str  # file under sql/, without .sql
    writes: tuple[str, ...]  # every table (or view) it writes; the first is its asset key
    group: str
    description: str = ""
    incremental: bool = False
    consumes: tuple[str, ...] = ()
    compares: dict[str, tuple[str, ...]] = field(default_factory=dict)
    views: tuple[str, ...] = ()
    metadata_sql: str | None = None
    then: str | None = None
    step_reads: tuple[str, ...] = ()
    engine: str = "any"  # "duckdb": runs on the warehouse whatever OBSERVANCE_ENGINE says
    code: str = ""  # the SQL without its comments (part of the fingerprint)

    @property
    def key(self) -> str:
        return self.writes[0]

    @property
    def name(self) -> str:
        """The model's name in ops.model_state: its main table without the schema."""
        return self.key.split(".")[1]

    @cached_property
    def named(self) -> frozenset[str]:
        """Every table or view its SQL names (outside comments and strings; not its macros)."""
        without_literals = _COMMENT_OR_LITERAL.sub(" ", self.code)
        return frozenset(
            f"{schema}.{table}" for schema, table in _RELATION.findall(without_literals)
        )

    @cached_property
    def reads(self) -> frozenset[str]:
        """What it reads and does not write: the tables its SQL names, those it compares and
        those its Python step reads."""
        return frozenset(
            (self.named | set(self.compares) | set(self.step_reads)) - set(self.writes)
        )

    @cached_property
    def variables(self) -> frozenset[str]:
        return frozenset(_VARIABLE.findall(self.code))

    @property
    def compares_snapshots(self) -> tuple[str, ...]:
        return tuple(snapshot_table(self, table) for table in self.compares)


def snapshot_table(model: Model, table: str) -> str:
    """Where the runner keeps ``model``'s snapshot of ``table`` (ops.snapshot_<model>_<table>)."""
    return f"ops.snapshot_{model.name}_{table.split('.')[1]}"


def changes_table(table: str) -> str:
    """The temporary table of the rows of ``table`` changed since the model's last build."""
    return f"{table.split('.')[1]}_changes"


def load_model(path: Path, sql_dir: Path = config.SQL_DIR) -> Model:
    """The model of ``path`` (a SQL file of a model folder, which must start with its header)."""
    text = path.read_text(encoding="utf-8")
    match = HEADER.match(text)
    if match is None:
        raise ValueError(f"{path}: a model starts with its header, /* model ... */")
    spec = yaml.safe_load(match["yaml"])
    known = {"writes", "group", "description", "incremental", "consumes", "compares", "views"}
    unknown = set(spec) - known - {"metadata", "then", "step_reads", "engine"}
    if unknown:
        raise ValueError(f"{path}: unknown header keys {sorted(unknown)}")
    return Model(
        sql=path.relative_to(sql_dir).with_suffix("").as_posix(),
        writes=tuple(spec["writes"]),
        group=spec["group"],
        description=" ".join(str(spec.get("description", "")).split()),
        incremental=bool(spec.get("incremental", False)),
        consumes=tuple(spec.get("consumes", ())),
        compares={table: tuple(columns) for table, columns in spec.get("compares", {}).items()},
        views=tuple(spec.get("views", ())),
        metadata_sql=spec.get("metadata"),
        then=spec.get("then"),
        step_reads=tuple(spec.get("step_reads", ())),
        engine=spec.get("engine", "any"),
        code=_COMMENT_OR_LITERAL.sub(_literal_only, text[match.end() :]),
    )


def _literal_only(match: re.Match) -> str:
    return match[0] if match[0].startswith("'") else " "


def asset_of(relation: str, written: dict[str, Model]) -> str | None:
    """The asset that writes ``relation`` (None: ingestion's bookkeeping, which every ingestion
    asset writes); raises when no asset does."""
    if relation in written:
        return relation
    schema = relation.split(".")[0]
    if schema in SOURCE_ASSETS:
        return SOURCE_ASSETS[schema]
    if relation in RAW_ASSETS:
        return relation
    if relation in INGESTION_BOOKKEEPING:
        return None
    raise ValueError(f"{relation} is read by a model but written by no asset")


def reads_only_loaded_data(model: Model) -> bool:
    """A plain model whose every input is loaded data (raw.*, ref.*, and the ingestion time of
    the raw rows' files): the runner skips it when none of them changed since its last build."""
    return not model.incremental and all(
        relation.split(".")[0] in ("raw", "ref") or relation == "ops.ingested_files"
        for relation in model.reads
    )


def discover(
    sql_dir: Path = config.SQL_DIR,
) -> tuple[tuple[Model, ...], dict[str, tuple[str, ...]]]:
    """Every model, in a build order (by file name where the dependencies allow), and each
    model's dependencies as asset keys."""
    paths = sorted(p for folder in MODEL_FOLDERS for p in (sql_dir / folder).glob("*.sql"))
    models = [load_model(path, sql_dir) for path in paths]
    written: dict[str, Model] = {}
    for model in models:
        for table in model.writes:
            if table in written:
                raise ValueError(f"{table} is written by {written[table].sql} and {model.sql}")
            written[table] = model
    _unique_names(models)
    deps = {}
    for model in models:
        _validate(model)
        assets = {asset_of(relation, written) for relation in model.reads}
        deps[model.key] = tuple(sorted(asset for asset in assets if asset is not None))
    ordered: list[Model] = []
    while len(ordered) < len(models):
        ready = [
            m
            for m in models
            if m not in ordered
            and all(written[r] in ordered for r in m.reads if r in written and written[r] is not m)
        ]
        if not ready:
            raise ValueError("the models' dependencies form a cycle")
        ordered.append(ready[0])
    return tuple(ordered), deps


def _unique_names(models: list[Model]) -> None:
    """The runner's names (state rows, snapshots, temporary tables) must not collide."""
    names = [m.name for m in models if m.incremental or reads_only_loaded_data(m)] + ["vacuum"]
    snapshots = [t for m in models for t in m.compares_snapshots]
    for kind, found in (("state name", names), ("snapshot", snapshots)):
        if len(set(found)) < len(found):
            raise ValueError(f"two models share a {kind}: {sorted(found)}")
    for model in models:
        temporary = [changes_table(table) for table in model.compares]
        if len(set(temporary)) < len(temporary):
            raise ValueError(f"{model.sql} compares two tables of the same name")


def _validate(model: Model) -> None:
    runner = model.variables & set(RUNNER_VARIABLES)
    if runner and not model.incremental:
        raise ValueError(f"{model.sql} reads {sorted(runner)} but is not incremental")
    if not set(model.views) <= set(model.writes):
        raise ValueError(f"{model.sql}: its views must be among the tables it writes")
    if not set(model.consumes) <= model.reads:
        raise ValueError(f"{model.sql}: it consumes a change feed its SQL does not read")
    if model.then is not None and model.then not in STEPS:
        raise ValueError(f"{model.sql}: unknown step {model.then}")
    if model.engine not in ("any", "duckdb"):
        raise ValueError(f"{model.sql}: engine is 'duckdb' or left out")


MODELS, DEPS = discover()
MODELS_BY_KEY = {model.key: model for model in MODELS}


def plain_ancestors(model: Model) -> list[Model]:
    """The plain models ``model`` reads from, directly or through other plain models (an
    incremental ancestor stands for its own: its full build resets ``model``)."""
    writer = {table: m for m in MODELS for table in m.writes}
    found: list[Model] = []
    queue = [model]
    while queue:
        for table in sorted(queue.pop().reads):
            parent = writer.get(table)
            if parent is not None and not parent.incremental and parent not in found:
                found.append(parent)
                queue.append(parent)
    return found


def descendants(model: Model) -> list[Model]:
    """The models downstream of ``model``, at any distance."""
    tables, found = set(model.writes), []
    for other in MODELS[MODELS.index(model) + 1 :]:
        if other.reads & tables:
            found.append(other)
            tables.update(other.writes)
    return found


def drop_derived(con: duckdb.DuckDBPyConnection) -> None:
    """Drop every table the models write and forget their state: the next run rebuilds them
    from raw.* (what cannot be rebuilt — raw.*, ledger.*, ops.alert_history, ingestion's
    bookkeeping — is kept)."""
    kept = {"ops.alert_history"}
    for model in MODELS:
        for table in (*model.writes, *model.compares_snapshots):
            if table not in kept:
                drop_relation(con, table)
    con.execute("DELETE FROM ops.model_state")
    con.execute("DELETE FROM ops.spark_tables")


def fingerprint(con: duckdb.DuckDBPyConnection, model: Model, as_of: date) -> str:
    """What an incremental model's tables depend on beyond the data: its SQL (comments aside)
    and what its header says it writes and compares, the SQL of the plain models it reads from
    (a change there changes what it reads), the reference data, the parameters all of them read
    (the evaluation date aside: the model follows it through ``previous_as_of``)."""
    values = parameters(as_of)
    sources = (model, *plain_ancestors(model))
    parts: list[object] = [model.writes, model.consumes, sorted(model.compares.items())]
    parts += [model.views, *(" ".join(source.code.split()) for source in sources)]
    if any(relation.startswith("ref.") for source in sources for relation in source.reads):
        parts.append(scalar(con, "SELECT reference_hash FROM ref.version"))
    variables = set().union(*(source.variables for source in sources)) & set(values)
    parts += [f"{name}={values[name]}" for name in sorted(variables - {"as_of"})]
    for table in model.compares:  # the shape of what is compared (its snapshot has that shape)
        parts.append(con.sql(f"SELECT * FROM {table} LIMIT 0").types)
    return hashlib.sha256("\n".join(map(str, parts)).encode()).hexdigest()[:32]


def _begin_incremental(con: duckdb.DuckDBPyConnection, model: Model, as_of: date) -> str:
    """Decide full or not, prepare the state, set the runner's variables; returns the
    fingerprint to record."""
    current = fingerprint(con, model, as_of)
    state = con.execute(
        "SELECT fingerprint, after_file_id, as_of FROM ops.model_state WHERE model = ?",
        [model.name],
    ).fetchall()
    full = not state or state[0][0] != current
    if full:
        for table in (*model.writes, *model.compares_snapshots):
            drop_relation(con, table)
        _forget_downstream(con, model)
        log.info("%s is built in full", model.key)
    con.execute("SET VARIABLE full_build = ?", [full])
    con.execute("SET VARIABLE previous_as_of = ?", [None if full else state[0][2]])
    con.execute("SET VARIABLE after_file_id = ?", [0 if full else state[0][1]])
    for table, columns in model.compares.items():
        listed, snapshot = ", ".join(columns), snapshot_table(model, table)
        con.execute(
            f"CREATE TABLE IF NOT EXISTS {snapshot} AS SELECT {listed} FROM {table} LIMIT 0"
        )
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE {changes_table(table)} AS "
            f"(SELECT {listed} FROM {table} EXCEPT SELECT * FROM {snapshot}) UNION ALL "
            f"(SELECT * FROM {snapshot} EXCEPT SELECT {listed} FROM {table})"
        )
    return current


def _end_incremental(
    con: duckdb.DuckDBPyConnection, model: Model, as_of: date, current: str
) -> None:
    for feed in model.consumes:
        con.execute(f"DELETE FROM {feed}")
    for table, columns in model.compares.items():
        if scalar(con, f"SELECT count(*) FROM {changes_table(table)}"):  # else it stands
            con.execute(
                f"CREATE OR REPLACE TABLE {snapshot_table(model, table)} AS "
                f"SELECT {', '.join(columns)} FROM {table}"
            )
    _record_state(con, model, as_of, current)


def _record_state(con: duckdb.DuckDBPyConnection, model: Model, as_of: date, current: str) -> None:
    con.execute(
        "INSERT OR REPLACE INTO ops.model_state (model, after_file_id, fingerprint, as_of) "
        "SELECT ?, coalesce(max(file_id), 0), ?, ? FROM ops.ingested_files",
        [model.name, current, as_of],
    )


def inputs_fingerprint(con: duckdb.DuckDBPyConnection, model: Model, as_of: date) -> str:
    """What a model reading only loaded data was built from: its fingerprint, the evaluation
    date if it reads it, the rows of each raw table it reads (raw.* only grows: its row count
    and last file say whether rows came in; a raw row's file and its ingestion time are written
    with it, never changed) and the migrations applied (the only other writer of raw.*)."""
    parts = [fingerprint(con, model, as_of), as_of if "as_of" in model.variables else None]
    parts.append(scalar(con, "SELECT count(*) FROM ops.schema_migrations"))
    for table in sorted(relation for relation in model.reads if relation.startswith("raw.")):
        parts.append(con.execute(f"SELECT count(*), max(file_id) FROM {table}").fetchall())
    return hashlib.sha256("\n".join(map(str, parts)).encode()).hexdigest()[:32]


def _up_to_date(con: duckdb.DuckDBPyConnection, model: Model, current: str) -> bool:
    recorded = scalar(con, "SELECT fingerprint FROM ops.model_state WHERE model = ?", [model.name])
    return recorded == current and all(table_exists(con, table) for table in model.writes)


def build(
    con: duckdb.DuckDBPyConnection, model: Model, as_of: date, spark: SparkEngine | None = None
) -> dict[str, object]:
    """Run one model as of ``as_of``, in one transaction (on ``spark`` when given, unless the
    model keeps to DuckDB); returns the row count of each table it writes and the model's own
    metadata (counts only, never patient-level values)."""
    set_parameters(con, as_of)
    pace_vacuum(con, as_of)
    if spark is not None and model.engine != "duckdb":
        spark.build(con, model, as_of, lambda c: _after_spark(c, model, as_of))
        fault(f"model:{model.key}:written")
        return _counts(con, model)
    with transaction(con):
        leave_spark(con, model)
        skippable = reads_only_loaded_data(model)
        inputs = inputs_fingerprint(con, model, as_of) if skippable else None
        if inputs is not None and _up_to_date(con, model, inputs):
            log.info("%s is up to date: none of its inputs changed", model.key)
        else:
            current = _begin_incremental(con, model, as_of) if model.incremental else None
            for view in model.views:
                drop_table_become_view(con, view)
            run_sql(con, model.sql)
            if model.then is not None:
                STEPS[model.then](con)
            if current is not None:
                _end_incremental(con, model, as_of, current)
            if inputs is not None:
                _record_state(con, model, as_of, inputs)
        fault(f"model:{model.key}:written")
    return _counts(con, model)


# The fingerprint of a model built on Spark: no DuckDB build matches it (the next is full).
SPARK_FINGERPRINT = "built on spark"


def _after_spark(con: duckdb.DuckDBPyConnection, model: Model, as_of: date) -> None:
    """In the transaction that publishes a Spark build of ``model``: its Python step, and the
    runner's state — the model's evaluation date kept (``observance issue`` reads the last
    run's), with a fingerprint no DuckDB build matches; its incremental descendants' state
    forgotten, as a full DuckDB build does."""
    if model.then is not None:
        STEPS[model.then](con)
    if model.incremental or reads_only_loaded_data(model):
        _record_state(con, model, as_of, SPARK_FINGERPRINT)
    _forget_downstream(con, model)


def _forget_downstream(con: duckdb.DuckDBPyConnection, model: Model) -> None:
    """The incremental models downstream of ``model`` lose their state: built in full next."""
    downstream = [m.name for m in descendants(model) if m.incremental]
    if downstream:
        con.execute("DELETE FROM ops.model_state WHERE list_contains(?, model)", [downstream])


def _counts(con: duckdb.DuckDBPyConnection, model: Model) -> dict[str, object]:
    # (a view is counted by its metadata query, if at all: counting it runs it)
    tables = [table for table in model.writes if table not in model.views]
    counts: dict[str, object] = {f"{table}_rows": row_count(con, table) for table in tables}
    log.info("built %s (%s)", model.key, ", ".join(f"{k} {v}" for k, v in counts.items()))
    if model.metadata_sql:
        result = con.execute(sql_text(model.metadata_sql))
        names = [column[0] for column in result.description]
        counts |= dict(zip(names, result.fetchall()[0], strict=True))
    return counts
