"""Warehouse locks and files as a user meets them: any file name, a busy warehouse said at once
and given up on with one line and exit status 75, nothing written world-readable."""

from __future__ import annotations

import stat
import subprocess
import sys

import duckdb
import pytest

from pipelines import config
from pipelines.warehouse import write_lock
from tests.helpers import query
from tests.test_concurrency import make_landing


def cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "cli.main", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**__import__("os").environ, "COLUMNS": "200"},
    )


def run_args(landing, warehouse, *extra: str) -> list[str]:
    return [
        "run",
        "--landing",
        str(landing),
        "--warehouse",
        str(warehouse),
        "--as-of",
        "2025-03-01",
        *extra,
    ]


@pytest.mark.parametrize("name", ["marts.duckdb", "raw.duckdb", "ops.duckdb", "ref.duckdb"])
def test_a_warehouse_named_like_a_schema_runs(tmp_path, name):
    landing = make_landing(tmp_path / "landing")
    done = cli(*run_args(landing, tmp_path / name))
    assert done.returncode == 0, done.stdout + done.stderr
    periods = query(tmp_path / name, "SELECT count(*) AS n FROM marts.patient_periods")
    assert periods["n"][0] > 0


def test_a_writer_waiting_for_another_says_who_and_gives_up_with_exit_75(tmp_path):
    landing = make_landing(tmp_path / "landing")
    warehouse = tmp_path / "w.duckdb"
    with write_lock(warehouse):
        done = cli(*run_args(landing, warehouse, "--lock-timeout", "1"))
    out = done.stdout + done.stderr
    assert done.returncode == config.EXIT_BUSY, out
    assert "being written by process" in out and "since" in out
    assert "Traceback" not in out
    assert out.count("error:") == 1


def test_an_open_reader_makes_a_writer_give_up_with_exit_75(tmp_path):
    landing = make_landing(tmp_path / "landing")
    warehouse = tmp_path / "w.duckdb"
    assert cli(*run_args(landing, warehouse)).returncode == 0
    held = duckdb.connect(str(warehouse), read_only=True)
    try:
        done = cli(*run_args(landing, warehouse, "--lock-timeout", "1"))
    finally:
        held.close()
    out = done.stdout + done.stderr
    assert done.returncode == config.EXIT_BUSY, out
    assert "in use by another process" in out and "Traceback" not in out


def test_files_a_run_writes_are_not_world_readable(tmp_path):
    landing = make_landing(tmp_path / "landing")
    warehouse = tmp_path / "out" / "w.duckdb"
    assert cli(*run_args(landing, warehouse)).returncode == 0
    written = [p for p in warehouse.parent.rglob("*") if p.is_file()]
    assert any(p.suffix == ".html" for p in written), written  # the report too
    for path in written:
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode & 0o007 == 0, f"{path.name} is {oct(mode)}"


def test_in_process_runs_send_no_telemetry():
    from dagster_project.runner import new_instance

    assert new_instance().telemetry_enabled is False
