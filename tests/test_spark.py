"""The Spark engine (OBSERVANCE_ENGINE=spark): the adapter's rules, the check that rejects what
it cannot map, and row-for-row parity with DuckDB on the rule scenarios and the demo landing.

The parity tests need Java 17 and PySpark (`make test` installs the `spark` extra, and Java
where there is none): without them they fail and say what to install, they are never skipped.
"""

from __future__ import annotations

import hashlib
import importlib
import os
import shutil
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path

import pytest
import sqlglot

from pipelines import config, dialect
from pipelines.models import MODELS
from pipelines.warehouse import copy_warehouse, sql_text
from tests import test_rules
from tests.conftest import DEMO_AS_OF, DEMO_END
from tests.helpers import issue, query, run
from tools.generate import generate_landing
from tools.parity import RUN_COLUMNS, compare, relations


@contextmanager
def engine(name: str) -> Iterator[None]:
    before = os.environ.get(config.ENV_ENGINE)
    os.environ[config.ENV_ENGINE] = name
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(config.ENV_ENGINE)
        else:
            os.environ[config.ENV_ENGINE] = before


def adapt(sql: str, **variables) -> str:
    adapter = dialect.Adapter(
        dialect.runner_variables(date(2026, 1, 5)) | variables, dialect.Macros.of_reference()
    )
    *macros, statement = dialect.parse(sql)
    for macro in macros:
        adapter.macros.define(macro)
    return adapter.spark_sql(adapter.adapt(statement))


# -- the adapter, without a JVM ----------------------------------------------------------------


def test_every_model_that_runs_on_spark_is_mapped():
    on_spark = [model for model in MODELS if model.engine != "duckdb"]
    assert len(on_spark) >= 12  # every model but the alert history's
    for model in on_spark:
        assert dialect.model_problems(sql_text(model.sql), date(2026, 1, 5)) == [], model.sql


def test_the_check_rejects_what_the_adapter_cannot_map():
    found = dialect.model_problems(
        """CREATE TABLE staging.x AS
        SELECT a.* EXCLUDE (b), CAST(unnest(range(3)) AS INTEGER) AS i,
            end_date - start_date AS days, list_cosine_similarity(c, c) AS s,
            count(DISTINCT (p, d)) AS n
        FROM a JOIN b ON b.k = coalesce((SELECT 1 FROM c WHERE c.k = a.k), 0)
        UNION ALL BY NAME SELECT 1;
        UPDATE staging.x SET a = 1;
        INSERT OR REPLACE INTO staging.x SELECT 1;""",
        date(2026, 1, 5),
    )
    expected = [
        "function list_cosine_similarity() has no Spark mapping",
        "* EXCLUDE / * REPLACE",
        "unnest() inside an expression",
        "date - date",
        "a row value (a, b)",
        "a subquery in a JOIN condition",
        "UNION BY NAME",
        "statement 2: UPDATE",
        "statement 3: INSERT OR REPLACE",
    ]
    for problem in expected:
        assert any(problem in line for line in found), (problem, found)


def test_the_alert_history_keeps_to_duckdb():
    (model,) = [m for m in MODELS if "ops.alert_history" in m.writes]
    assert model.engine == "duckdb"
    assert any("UPDATE" in p for p in dialect.model_problems(sql_text(model.sql), DEMO_AS_OF))


def test_variables_are_bound_as_typed_literals():
    sql = adapt(
        "SELECT getvariable('as_of') - 1, getvariable('sufficiency_threshold') * 2, "
        "getvariable('previous_as_of'), getvariable('local_timezone')"
    )
    assert sql == (
        "SELECT CAST('2026-01-05' AS DATE) - 1, CAST('0.5' AS DOUBLE) * 2, NULL, 'Europe/Paris'"
    )
    with pytest.raises(KeyError, match="nowhere"):
        adapt("SELECT getvariable('nowhere')")


def test_the_full_build_prunes_the_incremental_branches():
    sql = adapt(
        "SELECT a FROM t WHERE getvariable('full_build') UNION ALL "
        "SELECT a FROM u SEMI JOIN v USING (a) WHERE NOT getvariable('full_build')"
    )
    assert sql == "SELECT a FROM t"
    assert adapt("DELETE FROM t WHERE NOT getvariable('full_build') AND rowid IN (SELECT 1)") == (
        "DELETE FROM t WHERE FALSE"
    )
    # a UNION (distinct) keeps both sides: dropping one would keep the other's duplicates
    assert "UNION" in adapt(
        "SELECT a FROM t UNION SELECT a FROM u WHERE NOT getvariable('full_build')"
    )
    # an aggregate without GROUP BY is one row even on no input: kept
    assert "UNION ALL" in adapt(
        "SELECT 1 AS n UNION ALL SELECT count(*) FROM u WHERE NOT getvariable('full_build')"
    )
    # the left branch names the union's columns: kept even when empty
    assert "UNION ALL" in adapt(
        "SELECT a AS x FROM u WHERE NOT getvariable('full_build') UNION ALL SELECT b AS y FROM t"
    )


def test_macros_are_inlined():
    sql = adapt("SELECT ref.paris_date(u, s, e, 3600000000, 7200000000) FROM x")
    assert sql == (
        "SELECT (CAST(TIMESTAMP_MICROS((u) + CASE WHEN (u) >= (s) AND (u) < (e) THEN "
        "(7200000000) ELSE (3600000000) END) AS DATE)) FROM x"
    )
    sql = adapt(
        "CREATE MACRO staging.pick(rel) AS TABLE SELECT k FROM query_table(rel) r WHERE r.k > 0;"
        "SELECT * FROM staging.pick('staging.periods') p"
    )
    assert sql == "SELECT * FROM (SELECT k FROM staging__periods AS r WHERE r.k > 0) AS p"


def test_format_prints_its_arguments_as_duckdb_does():
    # Spark's %s of a date prints its day number (20464): the rule casts to text first
    sql = adapt("SELECT format('Période {} : le {} (50 %)', n, d)")
    assert sql == (
        "SELECT FORMAT_STRING('Période %s : le %s (50 %%)', CAST(n AS STRING), CAST(d AS STRING))"
    )
    assert (
        adapt("SELECT format('a {} ' 'b', 1)")
        == "SELECT FORMAT_STRING('a %s b', CAST(1 AS STRING))"
    )


def test_relations_become_spark_views_and_functions_are_renamed():
    sql = adapt(
        "SELECT epoch_us(t.measured_at), CAST(timezone('Europe/Paris', s) AS DATE), "
        "x - to_months(2) FROM raw.transmissions t"
    )
    assert sql == (
        "SELECT UNIX_MICROS(t.measured_at), CAST(FROM_UTC_TIMESTAMP(s, 'Europe/Paris') AS DATE), "
        "x - MAKE_YM_INTERVAL(0, 2) FROM raw__transmissions AS t"
    )
    # what the adapter leaves to sqlglot is still Spark SQL Spark parses
    assert sqlglot.parse_one(sql, read="spark") is not None


def test_the_parity_tool_finds_a_changed_row_and_other_columns():
    import duckdb

    from tools.parity import _compare_one

    con = duckdb.connect()
    left, right = "(1, 'a'), (2, 'b'), (2, 'b')", "(1, 'a'), (2, 'b'), (3, 'c')"
    for side, rows in (("l", left), ("r", right)):
        con.execute(f"ATTACH ':memory:' AS {side}")
        con.execute(f"CREATE SCHEMA {side}.marts")
        con.execute(f"CREATE TABLE {side}.marts.t AS FROM (VALUES {rows}) v(k, v)")
    found = _compare_one(con, "marts.t")  # a duplicate on the left, another row on the right
    assert (found.only_left, found.only_right, found.left_rows, found.right_rows) == (1, 1, 3, 3)
    con.execute("CREATE TABLE l.marts.u AS SELECT 1 AS k, 2 AS v")
    con.execute("CREATE TABLE r.marts.u AS SELECT 2 AS v, 1 AS k")  # same values, other order
    assert "other columns" in str(_compare_one(con, "marts.u"))


def test_the_engine_setting_is_checked(monkeypatch):
    monkeypatch.setenv(config.ENV_ENGINE, "Spark ")
    assert config.engine() == "spark"
    monkeypatch.setenv(config.ENV_ENGINE, "snowflake")
    with pytest.raises(ValueError, match="expected one of duckdb, spark"):
        config.engine()
    monkeypatch.delenv(config.ENV_ENGINE)
    assert config.engine() == "duckdb"


def test_on_spark_the_schedule_runs_one_process_with_the_spark_engine(monkeypatch):
    import dagster as dg

    import dagster_project.definitions as definitions

    monkeypatch.setenv(config.ENV_ENGINE, "spark")
    try:
        reloaded = importlib.reload(definitions)
        assert reloaded.executor is dg.in_process_executor  # one Spark session per run
        assert reloaded.defs.resources["engine"].name == "spark"
    finally:
        monkeypatch.delenv(config.ENV_ENGINE)
        assert importlib.reload(definitions).executor is None


# -- parity, on Spark --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def spark_ready() -> None:
    """Java and PySpark, or a failure that says what to install (never a skip)."""
    if not (os.environ.get("JAVA_HOME") or shutil.which("java")):
        pytest.fail(
            "the Spark parity tests need Java 17: `java` is not on PATH and JAVA_HOME is not "
            "set (Debian: apt-get install openjdk-17-jre-headless)"
        )
    try:
        import pyspark  # noqa: F401
    except ImportError:
        pytest.fail("the Spark parity tests need PySpark: uv sync --extra spark (make install)")


def build_both(landing: Path, root: Path, as_of: date) -> tuple[Path, Path]:
    warehouses = {}
    for name in config.ENGINES:
        warehouses[name] = root / name / "warehouse.duckdb"
        warehouses[name].parent.mkdir(parents=True)
        with engine(name):
            run(landing, warehouses[name], as_of)
    return warehouses["duckdb"], warehouses["spark"]


@pytest.fixture(scope="module")
def scenario_pair(spark_ready, tmp_path_factory) -> tuple[Path, Path]:
    landing = test_rules.write_landing(tmp_path_factory.mktemp("landing"))
    root = tmp_path_factory.mktemp("scenario")
    return build_both(landing, root, date.fromisoformat(test_rules.AS_OF))


@pytest.fixture(scope="module")
def demo_pair(spark_ready, tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("demo_spark")
    generate_landing(root / "landing", patients=150, months=12, seed=7, end_date=DEMO_END)
    return build_both(root / "landing", root, DEMO_AS_OF)


MAIN_MARTS = (
    "marts.patient_periods",
    "marts.file_active_monthly",
    "marts.file_active_semester",
    "marts.billing_lines",
    "marts.alerts",
    "marts.unmatched_transmissions",
    "marts.data_quality_findings",
    "staging.unit_days",
)


@pytest.mark.parametrize("pair", ["scenario_pair", "demo_pair"])
def test_spark_builds_the_same_marts_row_for_row(pair, request):
    duckdb_side, spark_side = request.getfixturevalue(pair)
    rows, differences = compare(duckdb_side, spark_side)
    assert differences == [], "\n".join(map(str, differences))
    # and the other way round (the comparison is a multiset difference both ways already; this
    # guards the tool itself)
    assert compare(spark_side, duckdb_side)[1] == []
    assert all(rows[mart] > 0 for mart in MAIN_MARTS), rows
    # the Spark side did run on Spark: its tables are views over Parquet written by Spark
    spark_tables = query(spark_side, "SELECT relation, folder FROM ops.spark_tables")
    on_spark = {t for m in MODELS if m.engine != "duckdb" for t in m.writes}
    assert set(spark_tables["relation"]) == on_spark - {"marts.file_active_semester"}
    assert query(duckdb_side, "SELECT count(*) AS n FROM ops.spark_tables")["n"][0] == 0


def test_spark_files_are_not_world_readable(demo_pair):
    _, spark_side = demo_pair
    folder = spark_side.with_name(spark_side.name + ".spark")
    files = [p for p in folder.rglob("*") if p.is_file()]
    assert files
    assert all(p.stat().st_mode & stat.S_IRWXO == 0 for p in files), [
        (p, oct(p.stat().st_mode)) for p in files if p.stat().st_mode & stat.S_IRWXO
    ][:3]


def ledger_digest(warehouse: Path) -> str:
    frame = query(warehouse, "SELECT * FROM ledger.issued_lines ORDER BY line_id")
    return hashlib.sha256(frame.write_csv().encode()).hexdigest()


def test_a_spark_run_never_rewrites_issued_lines(scenario_pair, tmp_path):
    """Issue a batch on DuckDB, run on Spark: the ledger is byte for byte the same, the billing
    marts show the issued lines as a DuckDB run does; then back to DuckDB, which rebuilds."""
    duckdb_side, _ = scenario_pair
    landing = tmp_path / "landing"
    test_rules.write_landing(landing)
    warehouse = copy_warehouse(duckdb_side, tmp_path / "wh" / "warehouse.duckdb")
    issue(landing, warehouse, "operator", tmp_path / "operator-1.csv")
    issued = ledger_digest(warehouse)
    assert query(warehouse, "SELECT count(*) AS n FROM ledger.issued_lines")["n"][0] > 0
    reference = copy_warehouse(warehouse, tmp_path / "ref" / "warehouse.duckdb")
    as_of = date.fromisoformat(test_rules.AS_OF)
    with engine("spark"):
        run(landing, warehouse, as_of)
    assert ledger_digest(warehouse) == issued
    with engine("duckdb"):
        run(landing, reference, as_of)
    assert compare(reference, warehouse)[1] == []
    statuses = query(
        warehouse, "SELECT count(*) AS n FROM marts.billing_lines WHERE batch_id IS NOT NULL"
    )
    assert statuses["n"][0] > 0
    # billing staff issue on a warehouse built on Spark: the next batch, the first one unchanged
    with engine("spark"):
        issue(landing, warehouse, "exploitant", tmp_path / "exploitant-1.csv")
    assert (tmp_path / "exploitant-1.csv").stat().st_size > 0
    payees = query(warehouse, "SELECT DISTINCT payee FROM ledger.issued_lines ORDER BY 1")
    assert payees["payee"].to_list() == ["exploitant", "operator"]
    first = query(
        warehouse, "SELECT * FROM ledger.issued_lines WHERE payee = 'operator' ORDER BY line_id"
    )
    before = query(reference, "SELECT * FROM ledger.issued_lines ORDER BY line_id")
    assert first.equals(before)
    with engine("duckdb"):
        issue(landing, reference, "exploitant", tmp_path / "exploitant-ref.csv")
    lines = "SELECT * EXCLUDE (batch_id, issued_at) FROM ledger.issued_lines ORDER BY line_id"
    assert query(warehouse, lines).equals(query(reference, lines))
    issued = ledger_digest(warehouse)
    # (from here the two ledgers differ by the time each issued its second batch)
    when = RUN_COLUMNS | {"issued_at", "batch_id"}
    # back on DuckDB: the Spark views are dropped and rebuilt as tables, in full
    with engine("duckdb"):
        run(landing, warehouse, as_of)
    assert query(warehouse, "SELECT count(*) AS n FROM ops.spark_tables")["n"][0] == 0
    kinds = query(
        warehouse,
        "SELECT count(*) AS n FROM duckdb_views() WHERE NOT internal "
        "AND sql LIKE '%read_parquet%' AND schema_name <> 'raw'",
    )
    assert kinds["n"][0] == 0
    assert compare(reference, warehouse, when)[1] == []
    assert ledger_digest(warehouse) == issued


def test_the_benchmark_times_both_engines_on_one_landing(spark_ready, tmp_path):
    from tools.bench import run_engines

    (result,) = run_engines(tmp_path, sizes=(40,), months=2)
    assert result["transmissions"] > 0
    assert set(result["engines"]) == set(config.ENGINES)
    for timing in result["engines"].values():
        assert 0 < timing["models_s"] < timing["total_s"]
        assert set(timing["stages_s"]) >= {"ingest", "observance", "billing"}
    assert result["relations_compared"] == len(relations())
    assert result["differences"] == []
    assert (tmp_path / "engines.json").exists()
