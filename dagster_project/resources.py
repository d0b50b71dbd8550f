"""Dagster resources: thin wrappers over pipelines.config.Settings and pipelines.warehouse."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path

import dagster as dg
import duckdb

from pipelines import warehouse
from pipelines.config import Settings, today_paris


class WarehouseResource(dg.ConfigurableResource):
    """The DuckDB warehouse file (env ``OBSERVANCE_WAREHOUSE``)."""

    path: str

    @contextmanager
    def writer(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A read-write connection under the single-writer lock."""
        with warehouse.writer(Path(self.path)) as con:
            yield con

    @contextmanager
    def reader(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A read-only connection."""
        with warehouse.reader(Path(self.path)) as con:
            yield con


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
