"""The Dagster code location: the graph snapshot, a run on a real instance, schedule, sensor."""

from __future__ import annotations

import json
import os
from datetime import date
from pathlib import Path

import dagster as dg
import pytest

from dagster_project.definitions import defs
from dagster_project.resources import (
    SCHEDULED_EXECUTION_TIME_TAG,
    EvaluationDateResource,
    LandingResource,
    resources_for,
)
from dagster_project.runner import materialize_all
from dagster_project.schedules import landing_sensor, nightly_schedule
from pipelines.config import Settings, today_paris
from tests.helpers import enrollment, prescription, query, tx, write_rows

SNAPSHOT = Path(__file__).parent / "snapshots" / "asset_graph.json"


def graph_snapshot() -> dict:
    graph = defs.resolve_asset_graph()
    assets = {}
    for key in sorted(graph.get_all_asset_keys(), key=lambda k: k.to_user_string()):
        node = graph.get(key)
        assets[key.to_user_string()] = {
            "group": node.group_name,
            "deps": sorted(parent.to_user_string() for parent in node.parent_keys),
        }
    return {
        "assets": assets,
        "checks": sorted(check.to_user_string() for check in graph.asset_check_keys),
        "jobs": sorted(job.name for job in defs.jobs),
        "schedules": sorted(s.name for s in defs.schedules),
        "sensors": sorted(s.name for s in defs.sensors),
    }


def test_graph_matches_the_snapshot():
    """The asset graph cannot change unnoticed. After an intended change, refresh with
    UPDATE_SNAPSHOTS=1 pytest tests/test_definitions.py and review the diff."""
    current = graph_snapshot()
    if os.environ.get("UPDATE_SNAPSHOTS"):
        SNAPSHOT.write_text(json.dumps(current, indent=2) + "\n", encoding="utf-8")
    assert current == json.loads(SNAPSHOT.read_text(encoding="utf-8"))


def test_definitions_load_with_every_group():
    groups = {spec["group"] for spec in graph_snapshot()["assets"].values()}
    assert groups == {"ingest", "observance", "file_active", "billing", "reporting", "ledger"}
    assert defs.resolve_job_def("nightly").name == "nightly"  # resolves with its resources
    assert defs.resolve_sensor_def("landing_sensor").name == "landing_sensor"


def test_schedule_runs_nightly_at_2_in_paris():
    assert nightly_schedule.cron_schedule == "0 2 * * *"
    assert nightly_schedule.execution_timezone == "Europe/Paris"
    assert nightly_schedule.job_name == "nightly"


@pytest.fixture
def landing(tmp_path) -> Path:
    root = tmp_path / "landing"
    write_rows(root / "enrollments" / "e.csv", [enrollment("E1", "P1", "2025-01-01")])
    write_rows(
        root / "prescriptions" / "p.csv", [prescription("R1", "E1", "2025-01-01", "2025-12-31")]
    )
    write_rows(
        root / "transmissions" / "2025-01-10" / "t.jsonl",
        [tx("P1", f"2025-01-{d:02d} 09:00", eye=e) for d in (2, 9) for e in ("OD", "OS")],
    )
    return root


def test_sensor_triggers_on_new_files_only(landing):
    resources = {"landing": LandingResource(path=str(landing))}
    with dg.build_sensor_context(resources=resources) as context:
        first = landing_sensor(context)
        assert isinstance(first, dg.RunRequest)
        cursor = context.cursor
    with dg.build_sensor_context(cursor=cursor, resources=resources) as context:
        assert isinstance(landing_sensor(context), dg.SkipReason)  # nothing new: no re-trigger
    write_rows(landing / "transmissions" / "2025-01-11" / "t.jsonl", [tx("P1", "2025-01-10 09:00")])
    with dg.build_sensor_context(cursor=cursor, resources=resources) as context:
        again = landing_sensor(context)
        assert isinstance(again, dg.RunRequest)
        assert again.run_key != first.run_key


def test_full_materialization_on_a_dagster_instance(landing, tmp_path):
    warehouse = tmp_path / "warehouse.duckdb"
    settings = Settings(landing=landing, warehouse=warehouse, as_of=date(2025, 3, 1))
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n", encoding="utf-8")
    with dg.instance_for_test(temp_dir=str(home)) as instance:
        result = materialize_all(settings, instance=instance)
        assert result.success
        graph = defs.resolve_asset_graph()
        issuing = dg.AssetKey(["ledger", "issued_lines"])  # a person's decision, never nightly
        for key in graph.get_all_asset_keys():
            event = instance.get_latest_materialization_event(key)
            assert (event is None) == (key == issuing), key.to_user_string()
        evaluations = result.get_asset_check_evaluations()
        assert {e.asset_check_key for e in evaluations} == set(graph.asset_check_keys)
        failed = [e.asset_check_key.to_user_string() for e in evaluations if not e.passed]
        assert failed == []
        periods = instance.get_latest_materialization_event(
            dg.AssetKey(["marts", "patient_periods"])
        ).asset_materialization.metadata
        assert periods["billable_periods"].value == 1  # P1 sufficient; P2 no data
    assert (tmp_path / "reports" / "index.html").exists()
    assert query(warehouse, "SELECT count(*) AS n FROM marts.patient_periods")["n"][0] == 2


def test_the_schedule_leaves_as_of_to_the_night(tmp_path):
    resources = resources_for(
        Settings(tmp_path, tmp_path / "w.duckdb", date(2025, 1, 1)), fixed_as_of=False
    )
    assert resources["evaluation"].as_of == ""


def test_cli_runs_are_recorded_in_the_instance_of_dagster_home(landing, tmp_path, monkeypatch):
    """With DAGSTER_HOME set (`make dev`, production), `observance run` records its run where the
    UI and the schedule's runs are."""
    from tests.test_ledger import cli

    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n", encoding="utf-8")
    env = {**os.environ, "DAGSTER_HOME": str(home)}
    warehouse = str(tmp_path / "w.duckdb")
    args = ("run", "--landing", str(landing), "--warehouse", warehouse, "--as-of", "2025-03-01")
    done = cli(*args, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    with dg.DagsterInstance.get() as instance:
        runs = instance.get_runs()
        assert len(runs) == 1 and runs[0].status == dg.DagsterRunStatus.SUCCESS
        assert instance.get_latest_materialization_event(dg.AssetKey(["marts", "alerts"]))


def test_the_schedule_and_sensor_start_only_where_automation_is_on(monkeypatch):
    """`make dev` opens the UI without starting a write; production sets OBSERVANCE_AUTOMATION."""
    import importlib

    import dagster_project.schedules as schedules

    monkeypatch.delenv("OBSERVANCE_AUTOMATION", raising=False)
    stopped = importlib.reload(schedules)
    assert stopped.nightly_schedule.default_status == dg.DefaultScheduleStatus.STOPPED
    assert stopped.landing_sensor.default_status == dg.DefaultSensorStatus.STOPPED
    monkeypatch.setenv("OBSERVANCE_AUTOMATION", "on")
    running = importlib.reload(schedules)
    assert running.nightly_schedule.default_status == dg.DefaultScheduleStatus.RUNNING
    assert running.landing_sensor.default_status == dg.DefaultSensorStatus.RUNNING
    monkeypatch.delenv("OBSERVANCE_AUTOMATION")
    importlib.reload(schedules)


def test_the_dg_command_line_loads_the_project(tmp_path):
    """`dg check defs` and `dg list defs` (pyproject.toml [tool.dg]) load the definitions."""
    import subprocess
    import sys

    venv = Path(sys.executable).parent.parent
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n", encoding="utf-8")
    env = {
        **os.environ,
        "VIRTUAL_ENV": str(venv),
        "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
        "DAGSTER_HOME": str(home),
        "COLUMNS": "200",
    }
    root = Path(__file__).resolve().parent.parent
    said = {}
    for command in ("check", "list"):
        done = subprocess.run(
            [str(venv / "bin" / "dg"), command, "defs"],
            cwd=root, env=env, capture_output=True, text=True, timeout=300, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr
        said[command] = done.stdout
    assert "All definitions loaded successfully" in said["check"]
    assert "nightly_02h_paris" in said["list"] and "landing_sensor" in said["list"]


@pytest.mark.parametrize(
    ("tags", "expected"),
    [
        # the schedule's tick for 2025-03-30 02:00 Paris (00:00 UTC, the night of the DST change)
        ({SCHEDULED_EXECUTION_TIME_TAG: "2025-03-30T00:00:00+00:00"}, date(2025, 3, 30)),
        # 23:30 UTC on March 29 is already March 30 in Paris (01:30 CET)
        ({SCHEDULED_EXECUTION_TIME_TAG: "2025-03-29T23:30:00+00:00"}, date(2025, 3, 30)),
        # no tick (a run started by hand or by the sensor): the day it was created
        ({}, None),
    ],
)
def test_an_open_evaluation_date_is_the_run_s_day_for_every_step(tags, expected):
    """as_of left open (the deployed definitions): each step gets the day of the schedule's tick,
    the same for every step of the run, even one that ends after midnight."""
    seen = []

    @dg.asset
    def first(evaluation: EvaluationDateResource) -> None:
        seen.append(evaluation.date())

    @dg.asset(deps=[first])
    def second(evaluation: EvaluationDateResource) -> None:
        seen.append(evaluation.date())

    result = dg.materialize(
        [first, second],
        resources={"evaluation": EvaluationDateResource(as_of="")},
        tags=tags,
        instance=dg.DagsterInstance.ephemeral(),
    )
    assert result.success
    expected = expected or today_paris()
    assert seen == [expected, expected]


def test_the_schedule_tag_is_dagster_s_own():
    """The tag the scheduler sets on a tick's runs (an internal name of Dagster's, checked here
    so that an upgrade renaming it fails a test rather than every night's date)."""
    from dagster._core.storage.tags import SCHEDULED_EXECUTION_TIME_TAG as dagsters

    assert dagsters == SCHEDULED_EXECUTION_TIME_TAG
