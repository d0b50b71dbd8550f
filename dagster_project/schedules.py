"""The nightly schedule, the landing sensor and the jobs they start."""

import dagster as dg

from dagster_project.resources import LandingResource
from pipelines import config
from pipelines.landing import survey

# issuing lines for billing is a person's decision (`observance issue`), never the schedule's
ISSUE_SELECTION = ["ledger/issued_lines", "marts/claim_status", "marts/billing_lines"]


def assets(*keys: str) -> dg.AssetSelection:
    """The assets ``keys`` ("schema/table") and the other tables their models write (a SQL model
    that writes several tables is built whole)."""
    return dg.AssetSelection.assets(
        *(key.split("/") for key in keys)
    ).required_multi_asset_neighbors()


NIGHTLY_SELECTION = dg.AssetSelection.all() - dg.AssetSelection.assets(["ledger", "issued_lines"])
nightly_job = dg.define_asset_job(
    "nightly",
    selection=NIGHTLY_SELECTION,
    description="The whole graph but the issuing of lines, every night.",
)
issue_job = dg.define_asset_job(
    "issue",
    selection=assets(*ISSUE_SELECTION),
    description="Issue a batch of lines (run config: payee, out, filters), then the billing "
    "marts that show it.",
)
ingest_job = dg.define_asset_job(
    "ingest_landing",
    selection=dg.AssetSelection.groups("ingest"),
    description="Ingest new landing files (started by the landing sensor).",
)

nightly_schedule = dg.ScheduleDefinition(
    name="nightly_02h_paris",
    job=nightly_job,
    cron_schedule="0 2 * * *",
    execution_timezone="Europe/Paris",
    default_status=dg.DefaultScheduleStatus.RUNNING
    if config.automation_on()
    else dg.DefaultScheduleStatus.STOPPED,
    description="Every night at 02:00 Europe/Paris; as_of is that night's Paris date.",
)


def newest_change_ns(landing: LandingResource) -> tuple[int, int]:
    """(newest change time in ns, number of files) of the files a run would read now.

    The change time (ctime) moves when a file is created or copied in, even when the copy keeps
    an old modification time, so it is a safe cursor. A file still in its quiet period is left
    out: once quiet, its change time is still after the cursor and starts a run.
    """
    from pathlib import Path

    ready = [f for f in survey(Path(landing.path), config.quiet_seconds()) if f.to_read]
    return max((f.ctime_ns for f in ready), default=0), len(ready)


@dg.sensor(
    job=ingest_job,
    minimum_interval_seconds=300,
    default_status=dg.DefaultSensorStatus.RUNNING
    if config.automation_on()
    else dg.DefaultSensorStatus.STOPPED,
    description="Starts an ingestion run when files newer than the cursor land.",
)
def landing_sensor(context: dg.SensorEvaluationContext, landing: LandingResource):
    newest, count = newest_change_ns(landing)
    cursor = int(context.cursor or 0)
    if newest <= cursor:
        return dg.SkipReason(f"no new file in {landing.path} ({count} files seen)")
    context.update_cursor(str(newest))
    return dg.RunRequest(run_key=f"landing-{newest}", tags={"trigger": "landing_sensor"})
