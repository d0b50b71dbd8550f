"""The Dagster code location: asset groups, checks, schedule, sensor and resources."""

from __future__ import annotations

import dagster as dg

from dagster_project.assets import ingest, models
from dagster_project.resources import resources_for
from pipelines.config import Settings

all_assets = [*ingest.assets, *models.assets]

defs = dg.Definitions(
    assets=all_assets,
    resources=resources_for(Settings.from_env(), fixed_as_of=False),
)
