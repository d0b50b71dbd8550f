"""One execution path: materialize the asset graph in-process (CLI, tests, benchmark)."""

from __future__ import annotations

import dagster as dg

from dagster_project.checks import asset_checks
from dagster_project.definitions import all_assets
from dagster_project.resources import resources_for
from pipelines.config import Settings

QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


def new_instance() -> dg.DagsterInstance:
    """The Dagster instance of in-process runs: ephemeral, in memory. Creating the first one in a
    process takes 0.5-0.8 s (it imports its SQL storage), so a process that times its runs (the
    benchmark) creates it at start-up and passes it to each run."""
    return dg.DagsterInstance.ephemeral()


def materialize_all(
    settings: Settings,
    selection: str | list[str] | None = None,
    instance: dg.DagsterInstance | None = None,
    quiet: bool = True,
) -> dg.ExecuteInProcessResult:
    """Materialize the whole graph (or ``selection``) for ``settings``; raises on failure."""
    return dg.materialize(
        [*all_assets, *asset_checks],
        resources=resources_for(settings),
        selection=selection,
        instance=instance or new_instance(),
        run_config=QUIET if quiet else None,
    )
