"""Shared fixtures: a small synthetic landing folder and its warehouse, built once per session."""

from __future__ import annotations

import os
from datetime import date

import pytest

from pipelines import config
from tests.helpers import run
from tools.generate import generate_landing

# Test files are complete when written: read at once, not after the landing's quiet period
# (the tests of the quiet period set it themselves). Subprocesses inherit it.
os.environ[config.ENV_QUIET_SECONDS] = "0"

DEMO_END = date(2025, 11, 30)
DEMO_AS_OF = date(2025, 12, 1)


@pytest.fixture(scope="session")
def demo_warehouse(tmp_path_factory):
    """The generator's landing data (dirty), run through the asset graph as of DEMO_AS_OF."""
    root = tmp_path_factory.mktemp("demo")
    generate_landing(root / "landing", patients=150, months=12, seed=7, end_date=DEMO_END)
    warehouse = root / "warehouse.duckdb"
    run(root / "landing", warehouse, DEMO_AS_OF)
    return warehouse
