"""Fault injection (issue 23): a run killed at a point of the ingestion, of the models or of an
issue, then run again, leaves the warehouse a run never stopped leaves, table for table and row
for row (apart from the wall-clock times of the writes). The process dies at once
(``os._exit``, pipelines/faults.py): no handler, no rollback, no closing of the database.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from pipelines.config import ENV_COMPACT_AT_PARTS
from pipelines.faults import EXIT_FAULT, FAULT_ENV
from tests.helpers import query
from tests.test_ingest import lake_files, listed_parts
from tests.test_ledger import AS_OF, base_landing, cli

# written with the time of the write, which no re-run can give again, and the change time of a
# landing file (set by the file system when the test copies the landing)
WALL_CLOCK = {
    "ingested_at",
    "last_ingested_at",
    "quarantined_at",
    "issued_at",
    "frozen_at",
    "applied_at",
    "ctime_ns",
    "written_at",
}
SCHEMAS = ("raw", "ops", "ref", "staging", "marts", "ledger")


def observance(*args: str, landing: Path, warehouse: Path, fault: str | None = None):
    env = {k: v for k, v in os.environ.items() if k != FAULT_ENV}
    return cli(
        *args,
        "--landing",
        str(landing),
        "--warehouse",
        str(warehouse),
        # two small parts of the raw dataset are merged (pipelines/lake.py), so that a run
        # compacts and the fault can stop it there
        env=env | {ENV_COMPACT_AT_PARTS: "2"} | ({FAULT_ENV: fault} if fault else {}),
    )


def run_and_issue(landing: Path, warehouse: Path, fault: str | None = None):
    """`observance run`, then `observance issue` of the operator's lines; stops at the first
    command that fails."""
    done = observance("run", "--as-of", AS_OF, landing=landing, warehouse=warehouse, fault=fault)
    if done.returncode == 0:
        out = warehouse.parent / "billing" / "operator.csv"
        done = observance(
            "issue", "--payee", "operator", "--out", str(out),
            landing=landing, warehouse=warehouse, fault=fault,
        )  # fmt: skip
    return done


def contents(warehouse: Path) -> dict[str, pl.DataFrame]:
    """Every table and view of the warehouse, sorted, without its wall-clock columns."""
    names = query(
        warehouse,
        "SELECT table_schema || '.' || table_name AS name FROM information_schema.tables "
        f"WHERE table_catalog = 'warehouse' AND table_schema IN {SCHEMAS} ORDER BY name",
    )["name"]
    frames = {}
    for name in names:
        frame = query(warehouse, f"SELECT * FROM {name}")
        frame = frame.drop([c for c in frame.columns if c in WALL_CLOCK])
        if "file_written" in frame.columns:  # each test writes under its own folder
            frame = frame.with_columns(pl.col("file_written").str.extract(r"([^/]+)$"))
        frames[name] = frame.sort(frame.columns) if frame.columns else frame
    return frames


@pytest.fixture(scope="module")
def never_stopped(tmp_path_factory) -> tuple[Path, dict[str, pl.DataFrame]]:
    root = tmp_path_factory.mktemp("clean")
    landing = base_landing(root / "landing")
    done = run_and_issue(landing, root / "wh.duckdb")
    assert done.returncode == 0, done.stdout + done.stderr
    return landing, contents(root / "wh.duckdb")


@pytest.mark.parametrize(
    "point",
    [
        "ingest:recorded:transmissions",  # a batch written, not committed
        "lake:adopted:transmissions",  # a new warehouse's empty part written, not committed
        "lake:written:transmissions",  # a part written, not committed
        "lake:merged:transmissions",  # parts merged, the merge not committed
        "lake:compacted:transmissions",  # parts merged, the merged ones not deleted yet
        "ingest:committed:enrollments",  # between two batches
        "model:staging.period_units:written",
        "model:marts.patient_periods:written",
        "issue:file_prepared",
        "issue:recorded",
    ],
)
def test_a_run_killed_then_run_again_equals_a_run_never_stopped(never_stopped, tmp_path, point):
    landing, expected = never_stopped
    landing = Path(shutil.copytree(landing, tmp_path / "landing", symlinks=True))
    warehouse = tmp_path / "wh.duckdb"

    killed = run_and_issue(landing, warehouse, fault=point)
    assert killed.returncode == EXIT_FAULT, killed.stdout + killed.stderr
    again = run_and_issue(landing, warehouse)
    assert again.returncode == 0, again.stdout + again.stderr

    got = contents(warehouse)
    assert sorted(got) == sorted(expected)
    # nothing left in the raw dataset but its committed parts (pipelines/lake.py recover)
    assert lake_files(warehouse) == listed_parts(warehouse)
    for name, frame in expected.items():
        try:
            assert_frame_equal(got[name], frame, check_column_order=False)
        except AssertionError as exc:
            raise AssertionError(f"{name} differs after {point}") from exc
