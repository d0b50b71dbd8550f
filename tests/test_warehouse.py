"""The run's shared connection (pipelines.warehouse.RunConnection): one connection for the steps
of a run while the process is small, nothing carried over from one step to the next, and a
fresh start after a failure or a large step."""

from __future__ import annotations

from datetime import date, timedelta

import duckdb
import pytest

from dagster_project.runner import materialize_all
from pipelines import models, warehouse
from pipelines.config import Settings
from pipelines.warehouse import RunConnection, reader
from tests.helpers import run
from tools.generate import generate_landing


@pytest.fixture
def small_process(monkeypatch):
    """The process counts as small whatever its size: the run's connection stays open."""
    monkeypatch.setattr(warehouse, "KEEP_OPEN_BELOW_RSS_BYTES", float("inf"))


def test_steps_share_one_connection_but_no_temporary_object(tmp_path, small_process):
    run = RunConnection(tmp_path / "w.duckdb")
    with run.writer() as first:
        first.execute("CREATE TABLE staging.kept AS SELECT 1 AS x")
        first.execute("CREATE TEMP TABLE scratch AS SELECT 1 AS x")
        first.execute("CREATE TEMP VIEW scratch_view AS SELECT * FROM scratch")
    with run.writer() as second:
        assert second is first
        temporary = second.execute(
            "SELECT (SELECT count(*) FROM duckdb_tables() WHERE temporary)"
            " + (SELECT count(*) FROM duckdb_views() WHERE temporary AND NOT internal)"
        ).fetchall()[0][0]
        assert temporary == 0
        assert second.execute("SELECT x FROM staging.kept").fetchall() == [(1,)]
    run.close()
    with reader(tmp_path / "w.duckdb") as con:  # closed: the process can read the file again
        assert con.execute("SELECT x FROM staging.kept").fetchall() == [(1,)]


def test_a_failed_step_leaves_a_fresh_connection_and_the_committed_work(tmp_path, small_process):
    run = RunConnection(tmp_path / "w.duckdb")
    with run.writer() as con:
        con.execute("CREATE TABLE staging.kept AS SELECT 1 AS x")
        failed = con
    with pytest.raises(duckdb.Error), run.writer() as con:
        con.begin()
        con.execute("INSERT INTO staging.kept VALUES (2)")
        con.execute("SELECT * FROM no_such_table")
    with run.writer() as con:
        assert con is not failed
        assert con.execute("SELECT x FROM staging.kept").fetchall() == [(1,)]
    run.close()


def test_work_a_step_left_uncommitted_is_rolled_back(tmp_path, small_process):
    run = RunConnection(tmp_path / "w.duckdb")
    with run.writer() as con:
        con.execute("CREATE TABLE staging.kept AS SELECT 1 AS x")
        con.begin()
        con.execute("INSERT INTO staging.kept VALUES (2)")
    with run.writer() as con:
        assert con.execute("SELECT x FROM staging.kept").fetchall() == [(1,)]
        con.begin()  # and the next step can open its own transaction
        con.commit()
    run.close()


def test_a_large_process_closes_the_connection_after_each_step(tmp_path, monkeypatch):
    monkeypatch.setattr(warehouse, "KEEP_OPEN_BELOW_RSS_BYTES", 0)
    run = RunConnection(tmp_path / "w.duckdb")
    with run.writer() as first:
        first.execute("CREATE TABLE staging.kept AS SELECT 1 AS x")
    with reader(tmp_path / "w.duckdb") as con:  # only possible once the writer is closed
        assert con.execute("SELECT x FROM staging.kept").fetchall() == [(1,)]
    with run.writer() as second:
        assert second is not first
    run.close()


def test_a_small_process_keeps_it_open(tmp_path, small_process):
    run = RunConnection(tmp_path / "w.duckdb")
    with run.writer():
        pass
    # the file is still open read-write in this process: it cannot also be opened read-only
    with pytest.raises(duckdb.Error):
        duckdb.connect(str(tmp_path / "w.duckdb"), read_only=True)
    run.close()


def test_a_run_opens_the_warehouse_once_for_writing(tmp_path, monkeypatch, small_process):
    landing = tmp_path / "landing"
    generate_landing(landing, patients=20, months=2, seed=3, end_date=date(2025, 3, 31))
    opened = []
    connect = warehouse._connect

    def counted(path, read_only, patience):
        opened.append("read-only" if read_only else "read-write")
        return connect(path, read_only, patience)

    monkeypatch.setattr(warehouse, "_connect", counted)
    run(landing, tmp_path / "w.duckdb", "2025-04-01")
    # every step and check through one read-write connection; the report alone reads read-only
    assert opened == ["read-write", "read-only"]


def test_the_end_of_a_run_closes_its_connection(tmp_path, small_process):
    """A run without the report (which closes the connection before reading) leaves the
    warehouse closed too: the resource's teardown closes it."""
    settings = Settings(tmp_path / "landing", tmp_path / "w.duckdb", date(2025, 4, 1))
    materialize_all(settings, selection=["ref/catalog"])
    with reader(settings.warehouse) as con:  # fails while this process still holds it
        assert con.execute("SELECT count(*) FROM ref.activities").fetchall()[0][0] > 0


def test_a_second_writer_in_the_same_process_fails_instead_of_waiting_forever(tmp_path):
    run = RunConnection(tmp_path / "w.duckdb")
    with (
        run.writer(),
        pytest.raises(RuntimeError, match="already writes"),
        warehouse.writer(tmp_path / "w.duckdb"),
    ):
        pass
    run.close()
    with warehouse.writer(tmp_path / "w.duckdb") as con:  # released: free again
        con.execute("SELECT 1")


def _vacuum_setting(con: duckdb.DuckDBPyConnection) -> int:
    return con.execute("SELECT current_setting('max_vacuum_tasks')").fetchall()[0][0]


def test_vacuum_runs_on_one_evaluation_date_a_week(tmp_path):
    with warehouse.writer(tmp_path / "w.duckdb") as con:
        assert warehouse.pace_vacuum(con, date(2025, 3, 1))  # no bookkeeping table yet
        warehouse.migrate(con)
        start = date(2025, 3, 3)
        # the first date and a re-run of it; one and six days later; seven days later (the new
        # vacuum date) and the day after
        days = (3, 3, 4, 9, 10, 11)
        decisions = [warehouse.pace_vacuum(con, date(2025, 3, day)) for day in days]
        assert decisions == [True, True, False, False, True, False]
        assert _vacuum_setting(con) == 0  # the last one turned it off
        assert warehouse.pace_vacuum(con, date(2025, 3, 10))  # the vacuum date again: all its runs
        assert _vacuum_setting(con) > 0
        last = con.execute("SELECT as_of FROM ops.model_state WHERE model = 'vacuum'").fetchall()
        assert last == [(start + timedelta(days=warehouse.VACUUM_EVERY_DAYS),)]
        # a date before the last vacuum date (a backfill, or after a mistyped future date)
        # vacuums and becomes the vacuum date, so the week counts from it
        assert warehouse.pace_vacuum(con, date(2025, 3, 5))
        assert not warehouse.pace_vacuum(con, date(2025, 3, 11))
        assert warehouse.pace_vacuum(con, date(2025, 3, 12))


def _vacuums_at_checkpoint(con: duckdb.DuckDBPyConnection, vacuum: bool) -> int:
    """Row groups half emptied by deletes, a few rows appended, then a checkpoint: how many
    merges of row groups (vacuums) DuckDB's checkpoint log shows."""
    con.execute("CREATE OR REPLACE TABLE staging.thinned AS SELECT range AS x FROM range(400000)")
    con.execute("CHECKPOINT")
    con.execute("DELETE FROM staging.thinned WHERE x % 2 = 0")
    con.execute("INSERT INTO staging.thinned SELECT range FROM range(1000)")
    con.execute("RESET max_vacuum_tasks" if vacuum else "SET max_vacuum_tasks = 0")
    con.execute("CALL truncate_duckdb_logs()")
    con.execute("CHECKPOINT")
    return con.execute(
        "SELECT count(*) FROM duckdb_logs WHERE type = 'Checkpoint' AND message LIKE '%vacuum%'"
    ).fetchall()[0][0]


def test_without_vacuum_a_checkpoint_merges_no_row_group(tmp_path):
    """What pace_vacuum relies on: max_vacuum_tasks = 0 stops DuckDB rewriting row groups
    thinned by deletes at a checkpoint, and the default lets it merge them."""
    with warehouse.writer(tmp_path / "w.duckdb") as con:
        con.execute("CALL enable_logging(level = 'debug')")
        assert _vacuums_at_checkpoint(con, vacuum=False) == 0
        assert _vacuums_at_checkpoint(con, vacuum=True) > 0


def test_a_run_vacuums_on_its_first_date_and_not_the_next_day(tmp_path, monkeypatch):
    landing = tmp_path / "landing"
    generate_landing(landing, patients=5, months=1, seed=3, end_date=date(2025, 3, 31))
    decided = []

    def spied(con, as_of):
        decided.append(warehouse.pace_vacuum(con, as_of))
        return decided[-1]

    monkeypatch.setattr(models, "pace_vacuum", spied)
    for as_of, vacuum in (("2025-04-01", True), ("2025-04-02", False)):
        decided.clear()
        run(landing, tmp_path / "w.duckdb", as_of)
        assert len(decided) == len(models.MODELS)  # every model decided, the same way
        assert set(decided) == {vacuum}
        with reader(tmp_path / "w.duckdb") as con:
            recorded = con.execute("SELECT as_of FROM ops.model_state WHERE model = 'vacuum'")
            assert recorded.fetchall() == [(date(2025, 4, 1),)]


def test_vacuum_is_off_on_a_new_connection(tmp_path):
    """Ingestion, which does not pace it, never vacuums what earlier nights left."""
    with warehouse.writer(tmp_path / "w.duckdb") as con:
        assert _vacuum_setting(con) == 0


def test_a_new_warehouse_opens_in_any_duckdb_from_the_lts_line(tmp_path):
    """Created in DuckDB 1.4's storage format (warehouse.STORAGE_VERSION), not the engine's own
    default: clients from 1.4.0 on open it."""
    with warehouse.writer(tmp_path / "w.duckdb") as con:
        con.execute("CREATE TABLE t AS SELECT 1 AS a")
        tags = con.execute(
            "SELECT tags FROM duckdb_databases() WHERE database_name = 'warehouse'"
        ).fetchall()[0][0]
    assert tags["storage_version"].startswith(warehouse.STORAGE_VERSION)
