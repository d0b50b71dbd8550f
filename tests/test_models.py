"""The model runner (pipelines/models.py): headers, dependencies read from the SQL, the one
incremental mechanism (fingerprints, full builds and their cascade, change feeds, snapshot
diffs, state) and the versioned migrations (pipelines/warehouse.py ``migrate``)."""

from __future__ import annotations

import dataclasses
from datetime import date
from pathlib import Path

import dagster as dg
import duckdb
import pytest
import sqlglot
from sqlglot import exp

from dagster_project.definitions import defs
from pipelines import models
from pipelines.config import SQL_DIR
from pipelines.models import DEPS, MODELS, MODELS_BY_KEY, build, discover, fingerprint, load_model
from pipelines.warehouse import migrate, writer
from tests.helpers import enrollment, prescription, query, run, tx, write_rows

AS_OF = date(2025, 3, 1)


def write_model(root: Path, name: str, header: str, sql: str) -> Path:
    path = root / "observance" / f"{name}.sql"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"/* model\n{header.strip()}\n*/\n{sql.strip()}\n", encoding="utf-8")
    return path


# --- dependencies come from the SQL --------------------------------------------------------------


def test_dependencies_are_read_from_the_sql():
    # the tables 05_patient_periods.sql reads, as the assets that write them
    assert DEPS["marts.patient_periods"] == (
        "ops.periods_pending",  # 04's change feed
        "ops.receipts_pending",  # 02's
        "ref.catalog",
        "staging.enrollments",
        "staging.period_units",
        "staging.periods",
        "staging.prescriptions",  # also compared by the runner
        "staging.receipt_days",
    )
    # a table written by a model is its own asset, not its model's main table
    assert DEPS["marts.unmatched_transmissions"] == ("staging.unmatched_units",)
    # what a Python step reads is declared in the header (step_reads)
    assert "ref.catalog" in DEPS["marts.file_active_semester"]


def tables_a_parser_sees(path: Path) -> set[str]:
    """The schema.table names sqlglot finds in a DuckDB SQL file (not the macros it defines or
    calls)."""
    names = set()
    for statement in sqlglot.parse(path.read_text(encoding="utf-8"), read="duckdb"):
        for table in statement.find_all(exp.Table) if statement else ():
            defines_a_macro = isinstance(table.parent, exp.UserDefinedFunction)
            if table.db and table.name and not defines_a_macro:
                names.add(f"{table.db}.{table.name}")
    return names


def test_the_dependencies_agree_with_a_sql_parser():
    """The tables the runner finds in each model's SQL (its dependencies, with what it writes)
    are those a SQL parser finds there, table for table."""
    for model in MODELS:
        assert tables_a_parser_sees(SQL_DIR / f"{model.sql}.sql") == model.named, model.sql


def test_every_table_a_model_writes_is_an_asset_and_every_dependency_exists():
    graph = defs.resolve_asset_graph()
    keys = {key.to_user_string().replace("/", ".") for key in graph.get_all_asset_keys()}
    for model in MODELS:
        assert set(model.writes) <= keys, model.sql
        assert set(DEPS[model.key]) <= keys, model.sql
        for table in model.writes:  # each with the model's dependencies
            node = graph.get(dg.AssetKey(table.split(".")))
            assert {k.to_user_string().replace("/", ".") for k in node.parent_keys} == set(
                DEPS[model.key]
            )


def test_models_are_in_a_build_order():
    for index, model in enumerate(MODELS):
        produced_later = {table for later in MODELS[index + 1 :] for table in later.writes}
        assert not model.reads & produced_later, model.sql


def test_a_table_no_asset_writes_is_refused(tmp_path):
    write_model(tmp_path, "01_x", "writes: [staging.x]\ngroup: g", "SELECT * FROM marts.nowhere")
    with pytest.raises(ValueError, match="marts.nowhere is read by a model but written by no"):
        discover(tmp_path)


def test_two_models_writing_one_table_are_refused(tmp_path):
    for name in ("01_a", "02_b"):
        write_model(tmp_path, name, "writes: [staging.x]\ngroup: g", "SELECT 1")
    with pytest.raises(ValueError, match="staging.x is written by"):
        discover(tmp_path)


def test_a_cycle_is_refused(tmp_path):
    write_model(tmp_path, "01_a", "writes: [staging.a]\ngroup: g", "FROM staging.b")
    write_model(tmp_path, "02_b", "writes: [staging.b]\ngroup: g", "FROM staging.a")
    with pytest.raises(ValueError, match="cycle"):
        discover(tmp_path)


def test_the_build_order_follows_dependencies_not_names(tmp_path):
    write_model(tmp_path, "01_a", "writes: [staging.a]\ngroup: g", "FROM staging.b")
    write_model(tmp_path, "02_b", "writes: [staging.b]\ngroup: g", "FROM raw.transmissions")
    ordered, deps = discover(tmp_path)
    assert [m.key for m in ordered] == ["staging.b", "staging.a"]
    assert deps == {"staging.a": ("staging.b",), "staging.b": ("raw.transmissions",)}


@pytest.mark.parametrize(
    ("header", "sql", "message"),
    [
        ("writes: [staging.x]\ngroup: g\ncolour: red", "SELECT 1", "unknown header keys"),
        # only the runner sets these variables, and only for an incremental model
        ("writes: [staging.x]\ngroup: g", "SELECT getvariable('full_build')", "not incremental"),
        ("writes: [staging.x]\ngroup: g\nthen: nothing", "SELECT 1", "unknown step"),
        ("writes: [staging.x]\ngroup: g\nviews: [staging.y]", "SELECT 1", "its views must be"),
        (
            "writes: [staging.x]\ngroup: g\nincremental: true\nconsumes: [ops.units_pending]",
            "SELECT 1",
            "consumes a change feed its SQL does not read",
        ),
    ],
)
def test_a_wrong_header_is_refused(tmp_path, header, sql, message):
    write_model(tmp_path, "01_x", header, sql)
    with pytest.raises(ValueError, match=message):
        discover(tmp_path)


def test_names_in_comments_and_strings_are_not_dependencies(tmp_path):
    write_model(
        tmp_path,
        "01_x",
        "writes: [staging.x]\ngroup: g",
        "-- reads marts.nowhere\nSELECT 'marts.nowhere' FROM raw.enrollments /* marts.nope */",
    )
    _, deps = discover(tmp_path)
    assert deps == {"staging.x": ("raw.enrollments",)}


# --- the fingerprint -----------------------------------------------------------------------------


@pytest.fixture
def con(tmp_path):
    landing, warehouse = tmp_path / "landing", tmp_path / "wh.duckdb"
    write_rows(landing / "enrollments" / "e.csv", [enrollment("E1", "P1", "2025-01-01")])
    write_rows(
        landing / "prescriptions" / "p.csv",
        [prescription("R1", "E1", "2025-01-01", "2025-12-31")],
    )
    write_rows(
        landing / "transmissions" / "1" / "t.jsonl",
        [tx("P1", f"2025-01-{d:02d} 09:00", eye=eye) for d in (2, 3) for eye in ("OD", "OS")],
    )
    run(landing, warehouse, AS_OF)
    with writer(warehouse) as connection:
        yield connection


def test_the_fingerprint_follows_the_code_and_parameters_not_the_comments(
    con, monkeypatch, tmp_path
):
    model = MODELS_BY_KEY["staging.period_units"]
    before = fingerprint(con, model, AS_OF)
    assert fingerprint(con, model, date(2025, 4, 1)) == before  # as_of: previous_as_of's job
    copy = tmp_path / "sql" / f"{model.sql}.sql"
    copy.parent.mkdir(parents=True)
    text = (SQL_DIR / f"{model.sql}.sql").read_text(encoding="utf-8")
    copy.write_text(text.replace("\nCREATE", "\n-- a comment more\nCREATE", 1), encoding="utf-8")
    assert fingerprint(con, load_model(copy, tmp_path / "sql"), AS_OF) == before
    changed = dataclasses.replace(model, code=model.code.replace("//", "/"))
    assert fingerprint(con, changed, AS_OF) != before
    monkeypatch.setattr(models.config, "PERIOD_DAYS", 31)  # a parameter it reads
    assert fingerprint(con, model, AS_OF) != before
    monkeypatch.setattr(models.config, "PERIOD_DAYS", 30)
    monkeypatch.setattr(models.config, "UNPAID_AFTER_DAYS", 60)  # one it does not read
    assert fingerprint(con, model, AS_OF) == before


def test_a_change_to_a_plain_model_upstream_changes_the_fingerprint(con, monkeypatch):
    """staging.periods is rebuilt every run; if its SQL changes (how a period ends, say), the
    counts and decisions kept across runs must be rebuilt too."""
    before = {key: fingerprint(con, MODELS_BY_KEY[key], AS_OF) for key in INCREMENTAL}
    periods = MODELS_BY_KEY["staging.periods"]
    changed = dataclasses.replace(periods, code=periods.code.replace("- 1 AS DATE", "AS DATE"))
    assert changed.code != periods.code
    monkeypatch.setattr(models, "MODELS", tuple(changed if m is periods else m for m in MODELS))
    after = {key: fingerprint(con, MODELS_BY_KEY[key], AS_OF) for key in INCREMENTAL}
    assert after["staging.daily_units"] == before["staging.daily_units"]  # does not read it
    assert after["staging.period_units"] != before["staging.period_units"]
    assert after["marts.patient_periods"] != before["marts.patient_periods"]


INCREMENTAL = ("staging.daily_units", "staging.period_units", "marts.patient_periods")


def state(con) -> dict[str, tuple]:
    rows = con.execute("SELECT model, fingerprint, after_file_id, as_of FROM ops.model_state")
    return {row[0]: row[1:] for row in rows.fetchall()}


def test_a_full_build_resets_every_incremental_model_downstream(con):
    before = state(con)
    assert {"daily_units", "period_units", "patient_periods"} <= set(before)
    con.execute("UPDATE ops.model_state SET fingerprint = 'earlier' WHERE model = 'daily_units'")
    build(con, MODELS_BY_KEY["staging.daily_units"], AS_OF)
    after = state(con)
    assert after["daily_units"] == before["daily_units"]  # built in full, recorded again
    # its descendants lost their state: their next build is in full
    assert "period_units" not in after and "patient_periods" not in after
    tables = ("staging.period_units", "marts.patient_periods")
    kept = {t: con.execute(f"SELECT * FROM {t} ORDER BY ALL").fetchall() for t in tables}
    for key in ("staging.period_units", "marts.patient_periods"):
        build(con, MODELS_BY_KEY[key], AS_OF)
    assert state(con) == before
    for table in tables:  # rebuilt in full, to the same rows
        assert con.execute(f"SELECT * FROM {table} ORDER BY ALL").fetchall() == kept[table]


def test_a_full_build_drops_and_recreates_the_tables_it_writes(con):
    con.execute("ALTER TABLE staging.period_units DROP COLUMN last_local_date")
    con.execute("UPDATE ops.model_state SET fingerprint = 'earlier' WHERE model = 'period_units'")
    build(con, MODELS_BY_KEY["staging.period_units"], AS_OF)
    columns = [c[0] for c in con.execute("DESCRIBE staging.period_units").fetchall()]
    assert "last_local_date" in columns  # its current shape, from its SQL


def test_an_incremental_build_records_the_last_file_and_empties_what_it_consumes(con):
    last_file = con.execute("SELECT max(file_id) FROM ops.ingested_files").fetchall()[0][0]
    assert state(con)["daily_units"][1] == last_file
    con.execute(  # a day 02_daily_units.sql says changed
        "INSERT INTO ops.units_pending SELECT patient_id, activity_code, exploitant_id, "
        "local_date, unit_eye, measure_type FROM staging.daily_units LIMIT 1"
    )
    build(con, MODELS_BY_KEY["staging.period_units"], AS_OF)
    assert con.execute("SELECT count(*) FROM ops.units_pending").fetchall() == [(0,)]
    assert con.execute("SELECT count(*) FROM ops.periods_pending").fetchall()[0][0] > 0


def test_the_changes_of_a_compared_table_hold_both_versions(con):
    model = MODELS_BY_KEY["staging.period_units"]
    con.execute("UPDATE staging.enrollments SET end_date = DATE '2025-01-10'")
    con.begin()
    models._begin_incremental(con, model, AS_OF)
    changes = con.execute(
        "SELECT enrollment_id, end_date FROM enrollments_changes ORDER BY end_date NULLS LAST"
    ).fetchall()
    con.rollback()
    assert changes == [("E1", date(2025, 1, 10)), ("E1", None)]  # the new version, the old one


def test_a_rebuild_from_raw_equals_the_tables_kept_night_after_night(tmp_path):
    """Three nights (new data, a corrected enrollment, a later date), then every derived table
    dropped and rebuilt by the runner from raw.*: the same rows."""
    landing, warehouse = tmp_path / "landing", tmp_path / "wh.duckdb"
    write_rows(landing / "enrollments" / "1" / "e.csv", [enrollment("E1", "P1", "2025-01-01")])
    write_rows(
        landing / "prescriptions" / "p.csv", [prescription("R1", "E1", "2025-01-01", "2025-12-31")]
    )
    write_rows(landing / "transmissions" / "1" / "t.jsonl", [tx("P1", "2025-01-02 09:00")])
    run(landing, warehouse, "2025-02-01")
    write_rows(landing / "transmissions" / "2" / "t.jsonl", [tx("P1", "2025-02-03 09:00")])
    run(landing, warehouse, "2025-02-15")
    write_rows(
        landing / "enrollments" / "2" / "e.csv",
        [enrollment("E1", "P1", "2025-01-01", end_date="2025-02-20", end_reason="stopped")],
    )
    run(landing, warehouse, AS_OF)
    tables = [t for m in MODELS for t in m.writes if t != "ops.alert_history"]
    with writer(warehouse) as con:
        before = {t: con.execute(f"SELECT * FROM {t} ORDER BY ALL").fetchall() for t in tables}
        assert before["staging.period_units"] and before["marts.patient_periods"]
        models.drop_derived(con)
        assert state(con) == {}
        for model in MODELS:
            build(con, model, AS_OF)
        for table in tables:
            assert con.execute(f"SELECT * FROM {table} ORDER BY ALL").fetchall() == before[table], (
                table
            )


# --- migrations ----------------------------------------------------------------------------------


def test_migrations_are_applied_once_in_order(tmp_path):
    with writer(tmp_path / "wh.duckdb") as con:
        names = [path.stem for path in sorted((SQL_DIR / "migrations").glob("*.sql"))]
        assert migrate(con) == names
        assert migrate(con) == []  # nothing left to apply
        recorded = con.execute("SELECT name FROM ops.schema_migrations ORDER BY version")
        assert [row[0] for row in recorded.fetchall()] == names
        columns = [c[0] for c in con.execute("DESCRIBE ops.model_state").fetchall()]
        assert columns == ["model", "after_file_id", "fingerprint", "as_of"]


def test_an_applied_migration_that_changed_is_refused(tmp_path):
    with writer(tmp_path / "wh.duckdb") as con:
        migrate(con)
        con.execute("UPDATE ops.schema_migrations SET checksum = 'x' WHERE version = 2")
        with pytest.raises(RuntimeError, match="002_ledger_tables.sql changed after it was"):
            migrate(con)


def test_a_warehouse_from_before_versioned_migrations_is_brought_up_to_date(tmp_path):
    """A warehouse as the version before versioned migrations left it (its table definitions,
    its layout tag, its models' own bookkeeping tables, tests/fixtures/, no record of
    migrations): migrated in place, then a run gives what a new warehouse gives."""
    landing, old, new = tmp_path / "landing", tmp_path / "old.duckdb", tmp_path / "new.duckdb"
    write_rows(landing / "enrollments" / "e.csv", [enrollment("E1", "P1", "2025-01-01")])
    write_rows(landing / "transmissions" / "1" / "t.jsonl", [tx("P1", "2025-01-02 09:00")])
    fixture = Path(__file__).parent / "fixtures" / "warehouse_before_migrations.sql"
    with writer(old) as con:
        for name in ("001_ingest_tables", "002_ledger_tables", "003_columns_added_before_"):
            path = next((SQL_DIR / "migrations").glob(f"{name}*.sql"))
            con.execute(path.read_text(encoding="utf-8"))  # not recorded, as that version did
        con.execute(fixture.read_text(encoding="utf-8"))
    with writer(old) as con:
        assert migrate(con)[0] == "001_ingest_tables"
        assert con.execute("SELECT count(*) FROM ops.model_state").fetchall() == [(0,)]
        leftovers = con.execute(
            "SELECT count(*) FROM duckdb_tables() "
            "WHERE table_name IN ('matched_enrollments', 'decided_prescriptions')"
        )
        assert leftovers.fetchall() == [(0,)]
        assert migrate(con) == []
    for warehouse in (old, new):
        run(landing, warehouse, AS_OF)
    for table in ("marts.patient_periods", "staging.period_units", "ops.model_state"):
        sql = f"SELECT * FROM {table} ORDER BY ALL"
        assert query(old, sql).equals(query(new, sql)), table


def test_a_migration_that_fails_applies_nothing(tmp_path, monkeypatch):
    folder = tmp_path / "sql"
    (folder / "migrations").mkdir(parents=True)
    (folder / "migrations" / "001_ok.sql").write_text("CREATE TABLE ops.a (x INTEGER);")
    (folder / "migrations" / "002_bad.sql").write_text("ALTER TABLE ops.nowhere ADD COLUMN y INT;")
    monkeypatch.setattr(models.config, "SQL_DIR", folder)
    with writer(tmp_path / "wh.duckdb") as con:
        with pytest.raises(duckdb.CatalogException):
            migrate(con)
        tables = con.execute("SELECT table_name FROM duckdb_tables() WHERE schema_name = 'ops'")
        assert tables.fetchall() == []  # neither 001's table nor the bookkeeping table


def test_no_model_sql_alters_a_table():
    """Schema changes live in sql/migrations, not in the models."""
    for model in MODELS:
        assert "ALTER TABLE" not in model.code.upper(), model.sql


def test_every_incremental_model_records_its_state(tmp_path):
    landing, warehouse = tmp_path / "landing", tmp_path / "wh.duckdb"
    write_rows(landing / "enrollments" / "e.csv", [enrollment("E1", "P1", "2025-01-01")])
    run(landing, warehouse, AS_OF)
    names = query(warehouse, "SELECT model FROM ops.model_state ORDER BY model")["model"]
    kept = [m.name for m in MODELS if m.incremental or models.reads_only_loaded_data(m)]
    assert names.to_list() == sorted([*kept, "vacuum"])
    assert "enrollments" in kept  # 01_enrollments.sql reads only raw.* and ref.*


def test_a_model_reading_only_loaded_data_is_skipped_until_rows_come_in(tmp_path):
    """staging.enrollments is built again only when enrollment or prescription rows came in (or
    its SQL, the catalog or a parameter changed): a night of transmissions leaves it be."""
    landing, warehouse = tmp_path / "landing", tmp_path / "wh.duckdb"
    write_rows(landing / "enrollments" / "1" / "e.csv", [enrollment("E1", "P1", "2025-01-01")])
    run(landing, warehouse, AS_OF)
    with writer(warehouse) as con:  # a mark a rebuild would wipe out
        con.execute("UPDATE staging.enrollments SET operator_id = 'MARK'")
    write_rows(landing / "transmissions" / "1" / "t.jsonl", [tx("P1", "2025-01-02 09:00")])
    run(landing, warehouse, "2025-03-02")
    sql = "SELECT operator_id FROM staging.enrollments"
    assert query(warehouse, sql)["operator_id"].to_list() == ["MARK"]  # skipped
    write_rows(landing / "enrollments" / "2" / "e.csv", [enrollment("E2", "P2", "2025-01-01")])
    run(landing, warehouse, "2025-03-02")
    assert "MARK" not in query(warehouse, sql)["operator_id"].to_list()  # rebuilt
