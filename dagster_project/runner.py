"""One execution path: materialize the asset graph in-process (CLI, tests, benchmark)."""

from __future__ import annotations

import os

import dagster as dg

from dagster_project.checks import asset_checks
from dagster_project.definitions import all_assets
from dagster_project.resources import resources_for
from dagster_project.schedules import ISSUE_SELECTION, NIGHTLY_SELECTION, assets
from pipelines.config import Settings

# Dagster's own console log is silent in-process: a failed step is raised as StepFailed, a failed
# check is told by the caller (the CLI's one line each); the run's events stay in the instance.
QUIET = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}


def new_instance() -> dg.DagsterInstance:
    """The Dagster instance of in-process runs.

    With ``DAGSTER_HOME`` set (as `make dev` and production set it), the instance there: the CLI's
    runs are recorded in the same run history as the schedule's, and the UI shows them. Without,
    an ephemeral one in memory (tests, the benchmark). Creating the first one in a process is slow
    (it imports its SQL storage), so a process that times its runs (the benchmark)
    creates it at start-up and passes it to each run. Telemetry is off either way
    (deploy/dagster.yaml says so for the persistent instance)."""
    if os.environ.get("DAGSTER_HOME"):
        return dg.DagsterInstance.get()
    return dg.DagsterInstance.ephemeral(settings={"telemetry": {"enabled": False}})


def materialize_all(
    settings: Settings,
    selection: dg.AssetSelection | list[str] | None = None,
    instance: dg.DagsterInstance | None = None,
    quiet: bool = True,
    op_config: dict[str, dict] | None = None,
) -> dg.ExecuteInProcessResult:
    """Materialize the nightly graph (or ``selection``) for ``settings``.

    A failed step raises ``StepFailed``. A blocking check that fails with ERROR severity does
    not: what it held back is skipped, and ``failed_checks`` / ``held_back`` of the result say
    what and why (the CLI exits non-zero on them). ``op_config`` gives assets their run config
    (``{"ledger__issued_lines": {...}}``)."""
    run_config = dict(QUIET) if quiet else {}
    if op_config:
        run_config["ops"] = {name: {"config": values} for name, values in op_config.items()}
    result = dg.materialize(
        [*all_assets, *asset_checks],
        resources=resources_for(settings),
        selection=assets(*selection)
        if isinstance(selection, list)
        else selection or NIGHTLY_SELECTION,
        instance=instance or new_instance(),
        run_config=run_config or None,
        raise_on_error=False,
    )
    for event in result.get_step_failure_events():
        error = event.event_specific_data.error
        if error is None or error.cls_name != BLOCKED_BY_CHECK:
            raise StepFailed(event.step_key or "run", error)
    return result


# What Dagster raises in the step of a blocking check that failed with ERROR severity.
BLOCKED_BY_CHECK = "DagsterAssetCheckFailedError"


class StepFailed(RuntimeError):
    """A step of the run failed: its key and the error of the code it ran (``cause_name``,
    ``cause_message``), as Dagster recorded it."""

    def __init__(self, step_key: str, error) -> None:
        # Dagster wraps the code's exception in its own; keep the code's
        while error is not None and error.cls_name.startswith("Dagster") and error.cause:
            error = error.cause
        self.step_key = step_key
        self.cause_name = error.cls_name if error else "Error"
        message = (error.message if error else "").strip()
        self.cause_message = message.split(": ", 1)[-1] if ": " in message else message
        first = self.cause_message.splitlines()[0] if self.cause_message else ""
        super().__init__(f"{step_key}: {self.cause_name}: {first[:300]}")


def failed_checks(result: dg.ExecuteInProcessResult) -> list[str]:
    """One line per ERROR-severity check that failed in ``result``: asset, check, what it saw."""
    return [
        f"{evaluation.asset_key.to_user_string()} {evaluation.check_name}: {evaluation.description}"
        for evaluation in result.get_asset_check_evaluations()
        if not evaluation.passed and evaluation.severity == dg.AssetCheckSeverity.ERROR
    ]


def held_back(result: dg.ExecuteInProcessResult) -> list[str]:
    """The selected assets of ``result`` not built: a blocking check failed upstream of them."""
    planned = set(result.dagster_run.step_keys_to_execute or ())
    started = {event.step_key for event in result.all_events if event.is_step_start}
    return sorted(
        key.to_user_string()
        for definition in all_assets
        if definition.op.name in planned - started
        for key in definition.keys
    )


def issue_batch(settings: Settings, **config: str | None) -> dg.ExecuteInProcessResult:
    """Issue one batch (``ledger/issued_lines``'s config: payee, out, filters, csv_style) and
    rebuild the billing marts that show it, as of the last run's evaluation date."""
    return materialize_all(
        settings,
        selection=ISSUE_SELECTION,
        op_config={"ledger__issued_lines": {k: v for k, v in config.items() if v is not None}},
    )
