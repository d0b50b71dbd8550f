"""The Dagster code location: asset groups, checks, schedule, sensor and resources.

Groups: ingest -> observance -> file_active -> billing -> reporting (pipelines.models says which
SQL model belongs to which group). Resources come from the environment variables of the contract.
"""

import dagster as dg

from dagster_project.assets import ingest, ledger, models, reporting
from dagster_project.checks import asset_checks
from dagster_project.resources import resources_for
from dagster_project.schedules import (
    ingest_job,
    issue_job,
    landing_sensor,
    nightly_job,
    nightly_schedule,
)
from pipelines import config
from pipelines.config import Settings

all_assets = [*ingest.assets, *models.assets, *reporting.assets, *ledger.assets]

# On Spark a run holds one Spark session for all its models, so its steps run in one process
# (under the default multiprocess executor each step would start a JVM and a session of its own).
executor = dg.in_process_executor if config.engine() == "spark" else None

defs = dg.Definitions(
    assets=all_assets,
    asset_checks=asset_checks,
    jobs=[nightly_job, ingest_job, issue_job],
    schedules=[nightly_schedule],
    sensors=[landing_sensor],
    resources=resources_for(Settings.from_env(), fixed_as_of=False),
    executor=executor,
)
