"""The Spark engine (``OBSERVANCE_ENGINE=spark``): the models' SQL files run on Apache Spark.

DuckDB stays the default and the reference; this runs the same asset graph and the same SQL
files on PySpark (local mode by default, a cluster with ``OBSERVANCE_SPARK_MASTER``), adapted by
pipelines/dialect.py. For one model, ``SparkEngine.build``:

1. gives Spark what the model reads: raw.transmissions from the parts ``ops.raw_parts`` lists
   (the raw Parquet dataset, never a glob of its folder); the tables a Spark build wrote, from
   their Parquet folders; anything else the warehouse holds (ref.*, the other raw.* tables,
   ledger.*, a table a DuckDB step wrote) exported to Parquet first;
2. runs the model's statements on Spark, in full (phase 1: ``full_build`` true): a table it
   creates or fills is written as Parquet under ``<warehouse>.spark/tables/<schema>.<table>/``,
   a temporary table under ``scratch/`` (materialised: a DuckDB temporary table is a copy, not a
   view), a variable it sets is computed on Spark and bound as a literal in what follows. A
   DELETE runs only where it deletes nothing (a full build's deletes are on empty tables: it
   is checked, never assumed), an UPDATE never (a model that updates rows is ``engine:
   duckdb``);
3. publishes the tables in the warehouse as views over those folders (``ops.spark_tables``
   lists them), so every reader (the ledger, reports, exports, checks, notebooks) reads them as
   before; in the same transaction the runner (pipelines/models.py) runs the model's Python
   step and records its state (a DuckDB build after a Spark one is a full build).

Spark never writes ledger.* or ops.alert_history: what was issued is written by DuckDB alone
(R11), and a Spark build cannot rewrite it.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
import warnings
from collections.abc import Callable
from datetime import date
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb
from sqlglot import exp

from pipelines import config, lake
from pipelines.dialect import Adapter, Macros, parse, runner_variables, view_name
from pipelines.warehouse import (
    drop_relation,
    quote,
    relation_kind,
    scalar,
    sql_text,
    transaction,
)

if TYPE_CHECKING:  # (pyspark is an optional dependency: imported when a session starts)
    from pyspark.sql import DataFrame, SparkSession

    from pipelines.models import Model

log = logging.getLogger(__name__)

LOG4J = Path(__file__).with_name("spark_log4j2.properties")  # errors only
SPARK_SUFFIX = ".spark"  # <warehouse file>.spark/: the Parquet folders of the Spark engine


def spark_folder(warehouse: Path) -> Path:
    return warehouse.absolute().with_name(warehouse.name + SPARK_SUFFIX)


def session_settings() -> dict[str, str]:
    """The Spark settings of every session (docs/operations.md lists the environment)."""
    cores = os.cpu_count() or 2
    return {
        "spark.master": config.spark_master(),
        "spark.app.name": "observance",
        # the meaning of the SQL: ANSI errors instead of silent nulls; instants in UTC (R1's
        # Paris dates come from ref.paris_offsets, the same table as on DuckDB)
        "spark.sql.ansi.enabled": "true",
        "spark.sql.session.timeZone": "UTC",
        "spark.driver.extraJavaOptions": f"-Duser.timezone=UTC -Dlog4j2.configurationFile={LOG4J}",
        "spark.executor.extraJavaOptions": "-Duser.timezone=UTC",
        # Parquet DuckDB reads as it wrote: timestamps in microseconds, UTC-adjusted
        "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
        "spark.sql.parquet.compression.codec": "zstd",
        "spark.hadoop.mapreduce.fileoutputcommitter.marksuccessfuljobs": "false",
        # Hadoop sets the mode of the files it writes itself (022 by default): health data are
        # never world-readable (config.FILE_UMASK)
        "spark.hadoop.fs.permissions.umask-mode": f"{config.FILE_UMASK:03o}",
        "spark.driver.memory": config.spark_driver_memory(),
        "spark.sql.shuffle.partitions": str(config.spark_shuffle_partitions(cores)),
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
    }


def start_session() -> SparkSession:
    """A Spark session with ``session_settings``; a clear error without PySpark or Java."""
    # PySpark checks the pandas it would use for pandas UDFs, which the engine has none of
    warnings.filterwarnings("ignore", "PySpark does not yet fully support pandas")
    try:
        from pyspark.sql import SparkSession
    except ImportError as error:
        raise RuntimeError(
            "OBSERVANCE_ENGINE=spark needs PySpark: `uv sync --extra spark` (make install "
            "installs it)"
        ) from error
    if not (os.environ.get("JAVA_HOME") or shutil.which("java")):
        raise RuntimeError(
            "OBSERVANCE_ENGINE=spark needs Java 17 (`java` on PATH or JAVA_HOME): on Debian, "
            "apt-get install openjdk-17-jre-headless"
        )
    builder = SparkSession.builder
    for key, value in session_settings().items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    return session


class SparkEngine:
    """Builds models on one Spark session (started on first use, stopped by ``stop``)."""

    def __init__(self, warehouse: Path) -> None:
        self.root = spark_folder(warehouse)

    @cached_property
    def session(self) -> SparkSession:
        return start_session()

    def stop(self) -> None:
        if "session" in self.__dict__:
            self.session.stop()
            del self.__dict__["session"]

    def build(
        self,
        con: duckdb.DuckDBPyConnection,
        model: Model,
        as_of: date,
        then: Callable[[duckdb.DuckDBPyConnection], None],
    ) -> None:
        """Run ``model`` on Spark and publish its tables in the warehouse (see the module);
        ``then`` runs in the transaction that publishes them (the model's Python step, the
        runner's state)."""
        _ModelRun(self, con, model, as_of).run(then)


class _ModelRun:
    """One model's statements on Spark."""

    def __init__(
        self, engine: SparkEngine, con: duckdb.DuckDBPyConnection, model: Model, as_of: date
    ) -> None:
        self.spark = engine.session
        self.root = engine.root
        self.con = con
        self.model = model
        self.macros = Macros.of_reference()
        self.adapter = Adapter(runner_variables(as_of), self.macros)
        self.created: dict[str, Path] = {}  # table (qualified, or a temporary name) -> folder
        self.schemas: dict[str, list[tuple[str, str]]] = {}  # its columns: (name, Spark type)

    # -- inputs ------------------------------------------------------------------------------
    def register_inputs(self) -> None:
        from pipelines.models import changes_table  # (models imports this module)

        for relation in sorted(self.model.reads | set(self.model.compares)):
            self._input(relation).createOrReplaceTempView(view_name(relation))
        for table, columns in self.model.compares.items():  # full build: every row is new
            changes = self.spark.sql(f"SELECT {', '.join(columns)} FROM {view_name(table)}")
            changes.createOrReplaceTempView(changes_table(table))

    def _input(self, relation: str) -> DataFrame:
        if relation == "raw.transmissions":
            paths = [_uri(path) for path in lake.part_paths(self.con, "transmissions")]
            return self.spark.read.parquet(*paths)
        folder = published(self.con, relation)
        if folder is not None:
            return self.spark.read.parquet(_uri(folder))
        target = self.root / "inputs" / f"{relation}.parquet"
        target.parent.mkdir(parents=True, exist_ok=True)
        self.con.execute(
            f"COPY (SELECT * FROM {relation}) TO {quote(str(target))} "
            "(FORMAT parquet, COMPRESSION zstd)"
        )
        return self.spark.read.parquet(_uri(target))

    # -- statements ---------------------------------------------------------------------------
    def run(self, then: Callable[[duckdb.DuckDBPyConnection], None]) -> None:
        for folder in ("tables", "scratch"):
            (self.root / folder).mkdir(parents=True, exist_ok=True)
        try:
            self.register_inputs()
            for statement in parse(sql_text(self.model.sql)):
                self.execute(statement)
            missing = [r for r in self.model.writes if r not in self.created]
            if missing and self.model.then is None:  # (else its Python step writes them)
                raise RuntimeError(f"{self.model.sql}: {', '.join(missing)} not written on Spark")
            self.publish(then)
        finally:  # (what a failed build wrote and never published goes too)
            for folder in ("scratch", "inputs"):  # (inputs: copies of patient-level tables)
                shutil.rmtree(self.root / folder, ignore_errors=True)
            for relation in self.model.writes:
                self._keep_published(relation)

    def execute(self, statement: exp.Expression) -> None:
        if isinstance(statement, exp.Create) and statement.kind == "MACRO":
            self.macros.define(statement)
        elif isinstance(statement, exp.Set):
            for item in statement.expressions:
                name = item.this.this.name
                query = self.adapter.spark_sql(self.adapter.adapt(item.this.expression))
                self.adapter.variables[name] = self.spark.sql(f"SELECT {query}").collect()[0][0]
        elif isinstance(statement, exp.Create) and statement.kind in ("TABLE", "VIEW"):
            self.create(statement)
        elif isinstance(statement, exp.Insert):
            self.insert(statement)
        elif isinstance(statement, exp.Delete):
            self.delete(statement)
        else:
            raise NotImplementedError(
                f"{self.model.sql}: {type(statement).__name__} does not run on Spark "
                "(a model that updates rows keeps `engine: duckdb`)"
            )

    def _sql(self, node: exp.Expression) -> DataFrame:
        return self.spark.sql(self.adapter.spark_sql(self.adapter.adapt(node)))

    def create(self, statement: exp.Create) -> None:
        target = statement.this
        table = target.this if isinstance(target, exp.Schema) else target
        name = f"{table.db}.{table.name}" if table.db else table.name
        properties = statement.args.get("properties")
        temporary = properties is not None and any(
            isinstance(p, exp.TemporaryProperty) for p in properties.expressions
        )
        # a temporary view: Spark binds it to the files of its inputs when it is created (a
        # DuckDB view reads them when it is read): no model writes a table after a view of it
        if statement.kind == "VIEW" and temporary:
            self._sql(statement.expression).createOrReplaceTempView(name)
            return
        if statement.args.get("exists") and name in self.created:
            return
        if isinstance(target, exp.Schema):  # CREATE TABLE t (columns)
            columns = [
                f"CAST(NULL AS {c.args['kind'].sql(dialect='spark')}) AS {c.name}"
                for c in target.expressions
            ]
            frame = self.spark.sql(f"SELECT {', '.join(columns)} WHERE false")
        else:
            frame = self._sql(statement.expression)
        # a view the model writes (marts.billing_lines...) is materialised like its tables
        self.write(name, frame, temporary, "overwrite")

    def insert(self, statement: exp.Insert) -> None:
        target = statement.this
        table = target.this if isinstance(target, exp.Schema) else target
        name = f"{table.db}.{table.name}" if table.db else table.name
        if name not in self.created:
            raise RuntimeError(f"{self.model.sql}: INSERT INTO {name}, not created on Spark")
        if statement.args.get("alternative") or statement.args.get("conflict"):
            raise NotImplementedError(f"{self.model.sql}: INSERT OR REPLACE does not run on Spark")
        columns = self.schemas[name]
        frame = self._sql(statement.expression)
        if statement.args.get("by_name"):
            if set(frame.columns) != {c for c, _ in columns}:  # DuckDB refuses a column more
                raise RuntimeError(f"{self.model.sql}: INSERT INTO {name} BY NAME: columns differ")
            frame = frame.select(*[c for c, _ in columns])
        elif isinstance(target, exp.Schema):
            listed = [c.name for c in target.expressions]
            frame = frame.toDF(*listed).select(*[c for c, _ in columns])
        else:
            frame = frame.toDF(*[c for c, _ in columns])
        frame = frame.selectExpr(*[f"CAST(`{c}` AS {t}) AS `{c}`" for c, t in columns])
        self.write(name, frame, name not in self.model.writes, "append")

    def delete(self, statement: exp.Delete) -> None:
        """A full build deletes nothing: checked by counting what the DELETE would delete."""
        probe = exp.select("count(*)").from_(statement.this.copy())
        for using in statement.args.get("using") or ():
            probe = probe.join(using.copy(), join_type="cross")
        where = statement.args.get("where")
        if where is not None:
            probe = probe.where(where.this.copy())
        doomed = self._sql(probe).collect()[0][0]
        if doomed:
            raise NotImplementedError(
                f"{self.model.sql}: a DELETE of {doomed} rows on Spark (phase 1 builds in full, "
                "where a model deletes nothing)"
            )

    def write(self, name: str, frame: DataFrame, temporary: bool, mode: str) -> None:
        """A table's rows into its folder: a temporary table's under scratch/; a model's table
        into a new version of its folder (``tables/<schema>.<table>/v<ns>/``), which readers of
        the warehouse see only once ``publish`` switches its view over (the version they read
        until then stays untouched)."""
        if name in self.created:
            folder = self.created[name]
        elif temporary:
            folder = self.root / "scratch" / name
        else:
            folder = self.root / "tables" / name / f"v{time.time_ns()}"
        frame.write.mode(mode).parquet(_uri(folder))
        self.created[name] = folder
        written = self.spark.read.parquet(_uri(folder))
        self.schemas[name] = [(f.name, f.dataType.simpleString()) for f in written.schema.fields]
        written.createOrReplaceTempView(name if temporary else view_name(name))

    # -- outputs ------------------------------------------------------------------------------
    def publish(self, then: Callable[[duckdb.DuckDBPyConnection], None]) -> None:
        """The model's tables as views of the warehouse over their folders, and ``then``, in
        one transaction."""
        written = [r for r in self.model.writes if r in self.created]
        with transaction(self.con):
            for relation in written:
                folder = self.created[relation]
                drop_relation(self.con, relation)
                self.con.execute(
                    f"CREATE VIEW {relation} AS SELECT * FROM "
                    f"read_parquet({quote(f'{folder}/*.parquet')}, hive_partitioning = false)"
                )
                self.con.execute(
                    "INSERT OR REPLACE INTO ops.spark_tables (relation, folder, written_at) "
                    "VALUES (?, ?, now())",
                    [relation, str(folder)],
                )
            then(self.con)

    def _keep_published(self, relation: str) -> None:
        """Delete the versions of ``relation`` the warehouse does not read (those replaced: no
        reader is left on them, DuckDB lets no other process read while a run writes; those
        of a build that failed)."""
        current = published(self.con, relation)
        for version in (self.root / "tables" / relation).glob("v*"):
            if version != current:
                shutil.rmtree(version, ignore_errors=True)


def _uri(path: Path) -> str:
    """A local path as Spark's file system takes it: explicitly local (``file://``: a cluster's
    default file system may be HDFS), not percent-encoded (Hadoop would read ``%3D`` as is)."""
    return f"file://{path.absolute()}"


def published(con: duckdb.DuckDBPyConnection, relation: str) -> Path | None:
    """The folder of ``relation`` when the warehouse reads it from a Spark build."""
    if relation_kind(con, relation) != "view":
        return None
    folder = scalar(con, "SELECT folder FROM ops.spark_tables WHERE relation = ?", [relation])
    return None if folder is None else Path(folder)


def leave_spark(con: duckdb.DuckDBPyConnection, model: Model) -> None:
    """Before a DuckDB build of ``model``: drop the views of its tables a Spark build published
    (the DuckDB build then starts in full: its state was forgotten when they were)."""
    listed = con.execute(
        "SELECT relation FROM ops.spark_tables WHERE list_contains(?, relation)",
        [list(model.writes)],
    ).fetchall()
    for (relation,) in listed:
        drop_relation(con, relation)
    if listed:
        con.execute(
            "DELETE FROM ops.spark_tables WHERE list_contains(?, relation)", [list(model.writes)]
        )
