"""Dagster resources: thin wrappers over pipelines.config.Settings and pipelines.warehouse."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path

import dagster as dg
import duckdb
from pydantic import PrivateAttr

from pipelines import config, warehouse
from pipelines.config import Settings, today_paris


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


class LandingResource(dg.ConfigurableResource):
    """The landing folder of device files (env ``OBSERVANCE_LANDING``)."""

    path: str


class EvaluationDateResource(dg.ConfigurableResource):
    """The evaluation date ``as_of`` (R2); empty means today in Europe/Paris at run time."""

    as_of: str = ""

    def date(self) -> date:
        return date.fromisoformat(self.as_of) if self.as_of else today_paris()


def resources_for(settings: Settings, fixed_as_of: bool = True) -> dict[str, object]:
    """The resources of one run. The schedule leaves ``as_of`` open so each night uses its day."""
    return {
        "warehouse": WarehouseResource(path=str(settings.warehouse)),
        "landing": LandingResource(path=str(settings.landing)),
        "evaluation": EvaluationDateResource(
            as_of=settings.as_of.isoformat() if fixed_as_of else ""
        ),
    }
