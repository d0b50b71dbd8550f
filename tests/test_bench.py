"""A tiny smoke version of the benchmark (the real one is `make bench`): it runs end to end and
reports every stage. Timings are not asserted: speed is measured, not tested."""

from __future__ import annotations

import json

import pytest

from tests.helpers import query
from tools.bench import (
    BENCH_CGM_SHARE,
    GROUPS,
    RULES_STEP,
    report_lines,
    run_bench,
    run_out_of_core,
)


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    work = tmp_path_factory.mktemp("bench")
    return work, run_bench(work, formats=("parquet",), patients=40, months=2)


def test_bench_smoke(bench):
    work, results = bench
    (result,) = results
    assert result.transmissions > 0 and result.incremental_rows > 0
    assert set(result.full.stages_s) == set(GROUPS)
    assert result.full.peak_rss_mb > 0 and result.floor_s > 0 and result.storage_floor_s > 0
    saved = json.loads((work / "results.json").read_text())
    assert saved[0]["fmt"] == "parquet"
    table = "\n".join(report_lines(results))
    assert "incremental night" in table and "× floor" in table
    assert "storage floor: the rows written into a DuckDB table" in table
    assert "storage floor: the rows written as Parquet (zstd)" in table and result.lake_floor_s > 0


def test_the_analyst_scripts_reach_the_pipelines_decisions(bench):
    """tools/analyst.py, plain pandas and lazy polars, decide the same periods as the pipeline
    on the benchmark's landing (else comparing their times would mean nothing)."""
    work, (result,) = bench
    assert [run["engine"] for run in result.analysts] == ["pandas", "polars"]
    assert result.decisions["periods"] > 0 and result.decisions["billable"] > 0
    for run in result.analysts:
        assert (run["periods"], run["billable"]) == (
            result.decisions["periods"],
            result.decisions["billable"],
        ), run["engine"]
        assert run["seconds"] > 0 and run["peak_rss_mb"] > 0
    table = "\n".join(report_lines([result]))
    assert "its decisions = the pipeline's" in table and "≠" not in table


def test_a_year_of_nights_is_measured_with_and_without_compaction(bench):
    """Nine nights on the bench's warehouse: compacted, the eight small parts of the month are
    merged (and the empty one); never compacted, each night is a part of its own."""
    from tools.bench import run_year

    work, _ = bench
    year = run_year(work, nights=9, patients=40, months=2)
    compacted, never = year["compacted"], year["never compacted"]
    assert compacted["rows"] == never["rows"] > 0
    assert never["parts"] >= 9 + 1 and compacted["parts"] < never["parts"]
    assert json.loads((work / "year.json").read_text()) == year


@pytest.mark.parametrize("fmt", ["parquet", "jsonl"])
def test_the_storage_floor_writes_every_row_into_a_raw_transmissions_table(tmp_path, fmt):
    """The storage floor stores the landing rows as they are, in the warehouse's own table
    definition, and leaves no file behind."""
    from tools.bench import floor, storage_floor
    from tools.generate import generate_landing

    landing = tmp_path / "landing"
    generate_landing(landing, patients=5, months=1, seed=3, formats=fmt, dirt=False)
    seconds, stored = storage_floor(landing, fmt, tmp_path / "scratch.duckdb")
    assert seconds > 0 and stored == floor(landing, fmt)[1] > 0
    assert not list(tmp_path.glob("scratch*"))


def test_the_night_is_run_three_times_from_the_same_state_and_the_median_kept(bench):
    """Each night loads the same new rows (the copies start from the full run's warehouse), and
    the night reported is the middle one of the three."""
    work, (result,) = bench
    assert len(result.nights_s) == 3
    assert not list(work.glob("*night-copy*"))  # the copies and their lock files are gone
    assert sum(result.incremental.stages_s.values()) == pytest.approx(sorted(result.nights_s)[1])
    assert "median of 3" in "\n".join(report_lines([result]))


def test_bench_times_every_step_and_names_the_rules_stage(bench):
    """Each asset's own time is kept (from Dagster's step events), for the full run and the
    night, and the table shows the rules stage (`marts.patient_periods`) inside the observance
    group."""
    _, (result,) = bench
    assert RULES_STEP in result.full.steps_s and RULES_STEP in result.incremental.steps_s
    assert "raw__transmissions" in result.full.steps_s
    assert 0 < result.full.steps_s[RULES_STEP] <= result.full.stages_s["observance"]
    table = "\n".join(report_lines([result]))
    assert "the rules: `marts.patient_periods`" in table
    assert f"| {RULES_STEP} |" in table


def test_the_night_brings_new_transmissions(bench):
    """The incremental night must be new data (new ids), not re-sent duplicates."""
    work, results = bench
    night = query(
        work / "parquet-40-2.duckdb",
        "SELECT sum(rows_loaded) AS loaded, sum(rows_read) AS read FROM ops.ingested_files "
        "WHERE path LIKE '%-night/%'",
    ).row(0)
    assert night == (results[0].incremental_rows, results[0].incremental_rows)


def test_out_of_core_run_on_copies(bench):
    """Three copies of the smoke data: three times the rows, every copy new patients."""
    work, results = bench
    result = run_out_of_core(work, copies=3, patients=40, months=2)
    assert result["transmissions"] == 3 * results[0].transmissions
    warehouse = work / f"parquet-40-2-cgm{BENCH_CGM_SHARE:g}-x3" / "warehouse.duckdb"
    counts = query(
        warehouse,
        "SELECT count(*) AS n, count(DISTINCT patient_id) AS patients FROM raw.transmissions",
    ).row(0)
    single = query(
        work / "parquet-40-2.duckdb",
        "SELECT count(DISTINCT patient_id) AS patients FROM raw.transmissions "
        "WHERE source_file NOT LIKE '%-night/%'",
    ).row(0)
    assert counts == (result["transmissions"], 3 * single[0])
    assert result["peak_rss_mb"] > 0 and result["seconds"] > 0


def test_a_child_s_peak_memory_is_its_own_not_its_parent_s():
    """The benchmark runs each measured run in a child process and reports that child's peak
    RSS: memory the parent held when it started the child must not count."""
    import subprocess
    import sys

    held = bytearray(400 * 2**20)  # 400 MiB, touched
    for offset in range(0, len(held), 4096):
        held[offset] = 1
    code = "from tools.bench import peak_rss_mb; print(peak_rss_mb())"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert 0 < float(done.stdout) < 300
    assert len(held) == 400 * 2**20
