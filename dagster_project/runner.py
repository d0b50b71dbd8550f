"""One execution path: materialize the asset graph in-process (CLI, tests, benchmark)."""

from __future__ import annotations

import dagster as dg

from dagster_project.checks import asset_checks
from dagster_project.definitions import all_assets
from dagster_project.resources import resources_for
from dagster_project.schedules import ISSUE_SELECTION, NIGHTLY_SELECTION
from pipelines.config import Settings

QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


def new_instance() -> dg.DagsterInstance:
    """The Dagster instance of in-process runs: ephemeral, in memory. Creating the first one in a
    process takes 0.5-0.8 s (it imports its SQL storage), so a process that times its runs (the
    benchmark) creates it at start-up and passes it to each run. Telemetry is off (the nightly
    deployment's instance says so in deploy/dagster.yaml)."""
    return dg.DagsterInstance.ephemeral(settings={"telemetry": {"enabled": False}})


def materialize_all(
    settings: Settings,
    selection: str | list[str] | None = None,
    instance: dg.DagsterInstance | None = None,
    quiet: bool = True,
    op_config: dict[str, dict] | None = None,
) -> dg.ExecuteInProcessResult:
    """Materialize the nightly graph (or ``selection``) for ``settings``; raises on failure.
    ``op_config`` gives assets their run config (``{"ledger__issued_lines": {...}}``)."""
    run_config = dict(QUIET) if quiet else {}
    if op_config:
        run_config["ops"] = {name: {"config": values} for name, values in op_config.items()}
    return dg.materialize(
        [*all_assets, *asset_checks],
        resources=resources_for(settings),
        selection=selection or NIGHTLY_SELECTION,
        instance=instance or new_instance(),
        run_config=run_config or None,
    )


def issue_batch(settings: Settings, **config: str | None) -> dg.ExecuteInProcessResult:
    """Issue one batch (``ledger/issued_lines``'s config: payee, out, filters, csv_style) and
    rebuild the billing marts that show it, as of the last run's evaluation date."""
    return materialize_all(
        settings,
        selection=ISSUE_SELECTION,
        op_config={"ledger__issued_lines": {k: v for k, v in config.items() if v is not None}},
    )
