"""Dagster resources: thin wrappers over pipelines.config.Settings and pipelines.warehouse."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime
from pathlib import Path

import dagster as dg
import duckdb
from pydantic import PrivateAttr

from pipelines import config, warehouse
from pipelines.config import Settings, today_paris
from pipelines.spark import SparkEngine


class WarehouseResource(dg.ConfigurableResource):
    """The DuckDB warehouse file (env ``OBSERVANCE_WAREHOUSE``).

    The steps of a run share one read-write connection (``pipelines.warehouse.RunConnection``),
    opened by the first step that needs it and closed when the run ends. Dagster sets a resource
    up once per run and process: once per run in-process (CLI, tests, benchmark), once per step
    under the multiprocess executor.
    """

    path: str
    _run: warehouse.RunConnection | None = PrivateAttr(default=None)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        config.restrict_new_files()  # the schedule's runs too: nothing written world-readable
        self._run = warehouse.RunConnection(Path(self.path))

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        if self._run is not None:
            self._run.close()

    @contextmanager
    def writer(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """The run's read-write connection, under the single-writer lock (outside a run: a
        connection of its own, closed on exit). The asset checks read through it too: a process
        cannot also open the file read-only."""
        if self._run is None:
            with warehouse.writer(Path(self.path)) as con:
                yield con
        else:
            with self._run.writer() as con:
                yield con

    def release(self) -> None:
        """Close the run's read-write connection, so that this process can open the file
        read-only (a later ``writer()`` opens it again)."""
        if self._run is not None:
            self._run.close()


class EngineResource(dg.ConfigurableResource):
    """The engine of the SQL models (env ``OBSERVANCE_ENGINE``): ``duckdb``, the default, runs
    them in the warehouse; ``spark`` on Apache Spark (pipelines/spark.py), its session started
    by the first model of the run and stopped when the run ends."""

    name: str = "duckdb"
    warehouse: str = ""
    _spark: SparkEngine | None = PrivateAttr(default=None)

    def spark(self) -> SparkEngine | None:
        """The run's Spark engine, or None on DuckDB."""
        if self.name != "spark":
            return None
        if self._spark is None:
            self._spark = SparkEngine(Path(self.warehouse))
        return self._spark

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        if self._spark is not None:
            self._spark.stop()


class LandingResource(dg.ConfigurableResource):
    """The landing folder of device files (env ``OBSERVANCE_LANDING``)."""

    path: str


class EvaluationDateResource(dg.ConfigurableResource):
    """The evaluation date ``as_of`` (R2); empty means the run's day in Europe/Paris: the day
    the schedule's tick was for, else the day the run was created. Every step of a run gets the
    same date, even a run that crosses midnight."""

    as_of: str = ""
    _run_day: date | None = PrivateAttr(default=None)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        self._run_day = None if self.as_of else run_day(context)

    def date(self) -> date:
        if self.as_of:
            return date.fromisoformat(self.as_of)
        return self._run_day or today_paris()


# The tag Dagster's scheduler puts on the runs of a tick: the time the tick was for (a missed
# tick run late keeps its own night).
SCHEDULED_EXECUTION_TIME_TAG = ".dagster/scheduled_execution_time"


def run_day(context: dg.InitResourceContext) -> date | None:
    """The Paris day of the run ``context`` belongs to (None outside a run)."""
    run = context.run
    if run is None:
        return None
    scheduled = run.tags.get(SCHEDULED_EXECUTION_TIME_TAG)
    if scheduled:
        return datetime.fromisoformat(scheduled).astimezone(config.PARIS).date()
    record = context.instance.get_run_record_by_id(run.run_id) if context.instance else None
    if record is None or record.create_timestamp is None:
        return None
    return record.create_timestamp.astimezone(config.PARIS).date()


def resources_for(settings: Settings, fixed_as_of: bool = True) -> dict[str, object]:
    """The resources of one run. The schedule leaves ``as_of`` open so each night uses its day."""
    return {
        "warehouse": WarehouseResource(path=str(settings.warehouse)),
        "landing": LandingResource(path=str(settings.landing)),
        "engine": EngineResource(name=config.engine(), warehouse=str(settings.warehouse)),
        "evaluation": EvaluationDateResource(
            as_of=settings.as_of.isoformat() if fixed_as_of else ""
        ),
    }
