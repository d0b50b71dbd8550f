"""``observance bench``: benchmark B1 (issue 9), stage by stage, against a plain-scan floor.

For each input format it generates the synthetic landing folder once (cached under the work
folder), then, in a fresh process each time so that start-up and peak memory are measured
honestly:

* the **floor**: a plain DuckDB scan of the same raw files (row count and distinct patients);
* the **storage floor**: the same rows written as they are into a table of ``raw.transmissions``'
  columns, with no validation and no de-duplication: what any ingestion into that table pays;
* a **full run** through the Dagster asset graph, group by group (ingest, observance,
  file_active, billing, reporting), with rows/s for ingestion and each stage as a multiple of
  the floor, and the process's peak RSS;
* an **incremental night**: one new day of files on top of the full year, run again; several
  times (``NIGHTS``), each on a copy of the same warehouse, the median reported.

It is a measurement, not a test: nothing is asserted. Results go to ``<work>/results.json``.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from datetime import date, timedelta
from pathlib import Path

import duckdb
import polars as pl

from pipelines import config
from pipelines.lake import PARQUET_OPTIONS
from pipelines.spark import spark_folder
from pipelines.warehouse import configure, copy_warehouse, dataset_folder, reader, writer

GROUPS = ("ingest", "observance", "file_active", "billing", "reporting")
# the rules stage the issue names: the R4–R7 decisions per period (its inputs, the daily units
# and their match to periods, are the rest of the observance group)
RULES_STEP = "marts__patient_periods"
# runs of the incremental night, each from the same state (the machine's timing drifts by tens of
# percent within minutes: one run is not a measurement); the median is reported
NIGHTS = 3
NIGHT_SUFFIX = "-night"  # arrival folders added by the benchmark
B1 = {"patients": 100_000, "months": 12}
# Share of the diabetes enrollments on a continuous glucose sensor (a reading every 5 minutes)
# in the benchmark's landing: about one diabetes patient in twenty, ~1 000 at B1.
BENCH_CGM_SHARE = 0.05


@dataclass
class RunTiming:
    startup_s: float
    stages_s: dict[str, float]
    peak_rss_mb: float
    # each step (asset or check) of the runs, as Dagster timed it, e.g. `marts__patient_periods`
    steps_s: dict[str, float] = field(default_factory=dict)

    @property
    def beyond_startup_s(self) -> float:
        return sum(self.stages_s.values())

    @property
    def total_s(self) -> float:
        return self.startup_s + self.beyond_startup_s


@dataclass
class FormatResult:
    fmt: str
    transmissions: int
    landing_mb: float
    generate_s: float
    floor_s: float
    full: RunTiming
    incremental: RunTiming  # the median night
    incremental_rows: int
    # every night's time beyond start-up, in the order run (the last on the warehouse itself)
    nights_s: list[float] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    storage_floor_s: float = 0.0  # storage_floor(): the rows written into a DuckDB table
    lake_floor_s: float = 0.0  # storage_floor(into="parquet"): the same rows as the raw dataset
    # the pipeline's decisions after the full run, and the analyst scripts' (tools/analyst.py)
    decisions: dict[str, int] = field(default_factory=dict)
    analysts: list[dict] = field(default_factory=list)


def _landing(
    work: Path, fmt: str, patients: int, months: int, end: date, cgm_share: float
) -> tuple[Path, float]:
    """The cached landing folder of one format (generated once per parameters)."""
    from tools.generate import generate_landing

    root = work / f"{fmt}-{patients}-{months}-{end}-cgm{cgm_share:g}"
    marker = root / "generated.json"
    if marker.exists():
        return root / "landing", json.loads(marker.read_text())["seconds"]
    started = time.perf_counter()
    generate_landing(
        root / "landing",
        patients=patients,
        months=months,
        seed=1,
        end_date=end,
        formats=fmt,
        dirt=False,
        cgm_share=cgm_share,
    )
    seconds = time.perf_counter() - started
    marker.write_text(json.dumps({"seconds": seconds}))
    return root / "landing", seconds


def _pattern(landing: Path, fmt: str) -> str:
    ending = {"parquet": "parquet", "jsonl": "jsonl"}[fmt]
    return str(landing / "transmissions" / "**" / f"*.{ending}")


def floor(landing: Path, fmt: str) -> tuple[float, int]:
    """Seconds for a plain scan of the raw files: count and distinct patients.

    The scan runs twice and the second is timed: the first brings the files into the page cache,
    where the full run that follows finds them too (B1's 7 GB of JSON lines: 18.8-19 s from a
    cold cache, 4.1-5.8 s warm). JSON lines are read with the columns DuckDB detects: naming only
    ``patient_id`` (as the benchmark did until 2026-11-24) makes ``read_json`` skip every other
    key of every object, 26 s warm instead of 4-6 s, a floor far too high."""
    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")
    source = (
        f"read_parquet('{_pattern(landing, fmt)}')"
        if fmt == "parquet"
        else f"read_json('{_pattern(landing, fmt)}', format = 'newline_delimited')"
    )
    query = f"SELECT count(*), count(DISTINCT patient_id) FROM {source}"
    con.execute(query).fetchall()
    started = time.perf_counter()
    rows, _ = con.execute(query).fetchall()[0]
    return time.perf_counter() - started, rows


def storage_floor(landing: Path, fmt: str, scratch: Path, into: str = "table") -> tuple[float, int]:
    """Seconds for DuckDB to write the raw files' rows, fields cast to their types, with the
    two hashes the raw layer keeps: no validation, no de-duplication, no reconciliation.

    ``into="table"``: into a new warehouse's table of migration 001 (``raw.transmissions`` as
    it was before the raw dataset), checkpointed; ``into="parquet"``: as one zstd Parquet file,
    as the raw dataset's parts are written (pipelines/lake.py). Ingestion cannot be faster than
    its storage. JSON lines carry no row numbers (``read_json`` gives none), so they are stored
    as 0: a little less to write. Returns the seconds and the rows written."""
    from pipelines.contract import FIELDS
    from pipelines.ingest import DEDUP
    from pipelines.warehouse import migrate

    _remove_warehouse(scratch)
    con = duckdb.connect(str(scratch))
    try:
        configure(con)
        # DuckDB's read_json holds a large buffer per file it reads at once: with a low memory
        # limit (OBSERVANCE_MEMORY_LIMIT=1GB) it runs out of memory on a few dozen small files.
        # The pipeline never calls it (it splits JSON lines itself, pipelines/ingest.py).
        con.execute("RESET memory_limit")
        con.execute("SET enable_progress_bar = false")
        migrate(con)
        types = dict(
            con.execute(
                "SELECT column_name, data_type FROM information_schema.columns "
                "WHERE table_schema = 'raw' AND table_name = 'transmissions'"
            ).fetchall()
        )
        fields = FIELDS["transmissions"]
        key = DEDUP["transmissions"][0]  # the de-duplication key; the payload is the rest
        payload = [name for name in fields if name not in key]
        typed = ", ".join(f"CAST({name} AS {types[name]}) AS {name}" for name in fields)
        if fmt == "parquet":
            scan = (
                f"read_parquet('{_pattern(landing, fmt)}', filename = true, file_row_number = true)"
            )
            row_number = "file_row_number + 1"
        else:
            scan = (
                f"read_json('{_pattern(landing, fmt)}', format = 'newline_delimited', "
                "filename = true)"
            )
            row_number = "0"
        rows = (
            f"SELECT * EXCLUDE (filename), hash({', '.join(key)}) AS key_hash, "
            f"hash({', '.join(payload)}) AS payload_hash, 0 AS file_id, "
            "filename AS source_file "
            f"FROM (SELECT {typed}, filename, {row_number} AS row_number FROM {scan})"
        )
        part = scratch.with_suffix(".parquet")
        started = time.perf_counter()
        if into == "parquet":
            con.execute(f"COPY ({rows}) TO '{part}' ({PARQUET_OPTIONS})")
        else:
            con.execute(f"INSERT INTO raw.transmissions BY NAME {rows}")
            con.execute("CHECKPOINT")
        seconds = time.perf_counter() - started
        stored = f"read_parquet('{part}')" if into == "parquet" else "raw.transmissions"
        return seconds, con.execute(f"SELECT count(*) FROM {stored}").fetchall()[0][0]
    finally:
        con.close()
        _remove_warehouse(scratch)
        scratch.with_suffix(".parquet").unlink(missing_ok=True)


def add_one_night(landing: Path, fmt: str) -> int:
    """A new arrival folder: the last day's files again, one day later, with new ids."""
    from tools.generate import write_transmissions

    folders = (landing / "transmissions").iterdir()
    days = sorted(p for p in folders if p.is_dir() and not p.name.endswith(NIGHT_SUFFIX))
    last = days[-1]
    following = date.fromisoformat(last.name) + timedelta(days=1)
    target = landing / "transmissions" / f"{following.isoformat()}{NIGHT_SUFFIX}"
    rows = 0
    for path in sorted(last.iterdir()):
        frame = pl.read_parquet(path) if fmt == "parquet" else pl.read_ndjson(path)
        rows += write_transmissions(_shifted(frame, 1, "N-"), target / path.name)
    return rows


def _shifted(readings: pl.DataFrame, days: int, prefix: str) -> pl.DataFrame:
    """``readings`` sent again ``days`` days later, their ids prefixed (new transmissions)."""
    return readings.with_columns(
        (pl.lit(prefix) + pl.col("transmission_id")).alias("transmission_id"),
        *(
            (pl.col(c).str.to_datetime(time_zone="UTC") + timedelta(days=days)).dt.strftime(
                "%Y-%m-%dT%H:%M:%SZ"
            )
            for c in ("measured_at", "received_at")
            if c in readings.columns
        ),
    )


# The plain pandas script holds every reading in memory as Python strings: run above this many
# enrollments it would take the machine's memory (the issue compares it at 10 000).
PANDAS_MAX_PATIENTS = 20_000


def analyst_engines(patients: int) -> tuple[str, ...]:
    """The analyst scripts the benchmark runs for this size (tools/analyst.py)."""
    return ("pandas", "polars") if patients <= PANDAS_MAX_PATIENTS else ("polars",)


def analyst_run(engine: str, landing: Path, as_of: date) -> dict:
    """One analyst script in a fresh process: its decisions, peak RSS and seconds, start-up
    included as for the pipeline's full run (``compute_s``: without it)."""
    command = [sys.executable, "-m", "tools.analyst", engine, str(landing), as_of.isoformat()]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    seconds = round(time.perf_counter() - started, 3)
    if done.returncode != 0:
        return {"engine": engine, "error": done.stderr.strip().splitlines()[-1][:300]}
    run = json.loads(done.stdout.strip().splitlines()[-1])
    return run | {"compute_s": round(run["seconds"], 3), "seconds": seconds}


def pipeline_decisions(warehouse: Path) -> dict[str, int]:
    """The periods the full run decided and how many are billable (as the analyst scripts
    count them)."""
    with reader(warehouse) as con:
        periods, billable = con.execute(
            "SELECT count(*), count(*) FILTER (WHERE billable) FROM marts.patient_periods"
        ).fetchall()[0]
    return {"periods": periods, "billable": billable}


def _timed_run(landing: Path, warehouse: Path, as_of: date, by_group: bool) -> RunTiming:
    """The asset graph in a fresh process (start-up and RSS included): group by group, or in
    one run as the nightly schedule does."""
    mode = "groups" if by_group else "whole"
    command = [sys.executable, "-m", "tools.bench", "--child", str(landing), str(warehouse)]
    command += [as_of.isoformat(), mode]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"benchmark run failed:\n{done.stderr[-3000:]}")
    return RunTiming(**json.loads(done.stdout.strip().splitlines()[-1]))


def peak_rss_mb() -> float:
    """This process's peak resident memory, in MiB.

    Linux: the high-water mark of the process's own memory (``VmHWM``). ``getrusage``'s
    ``ru_maxrss``, which the benchmark used until 2026-11-24, carries over the parent's peak
    across ``exec``: a child started by a parent holding 1.7 GB reported 1.7 GB. Elsewhere
    ``ru_maxrss`` is all there is."""
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _child(landing: str, warehouse: str, as_of: str, mode: str) -> None:
    started = time.perf_counter()
    import dagster as dg

    from dagster_project.runner import materialize_all, new_instance
    from pipelines.config import Settings

    settings = Settings(Path(landing), Path(warehouse), date.fromisoformat(as_of))
    instance = new_instance()
    startup = time.perf_counter() - started
    stages, steps = {}, {}
    for group in GROUPS if mode == "groups" else ("whole graph",):
        begin = time.perf_counter()
        selection = dg.AssetSelection.groups(group) if mode == "groups" else None
        result = materialize_all(settings, selection=selection, instance=instance)
        stages[group] = round(time.perf_counter() - begin, 3)
        for event in result.get_step_success_events():
            steps[event.step_key] = round(event.event_specific_data.duration_ms / 1000, 3)
    timing = {"startup_s": round(startup, 3), "stages_s": stages, "peak_rss_mb": peak_rss_mb()}
    print(json.dumps(timing | {"steps_s": steps}))


def _read_at_once() -> None:
    """The benchmark writes its landing files itself, complete: no quiet period unless set."""
    os.environ.setdefault(config.ENV_QUIET_SECONDS, "0")


def run_bench(
    work: Path,
    formats: tuple[str, ...] = ("parquet", "jsonl"),
    patients: int = B1["patients"],
    months: int = B1["months"],
    end: date = date(2025, 11, 30),
    nights_run: int = NIGHTS,
    cgm_share: float = BENCH_CGM_SHARE,
) -> list[FormatResult]:
    work.mkdir(parents=True, exist_ok=True)
    _read_at_once()
    results = []
    for fmt in formats:
        landing, generate_s = _landing(work, fmt, patients, months, end, cgm_share)
        remove_nights(landing)  # before the floor: it scans the year only, like the full run
        floor_s, rows = floor(landing, fmt)
        scratch = work / f"{fmt}-storage-floor.duckdb"
        storage_s, stored = storage_floor(landing, fmt, scratch)
        lake_s, in_lake = storage_floor(landing, fmt, scratch, into="parquet")
        if not stored == in_lake == rows:
            raise RuntimeError(f"the storage floors wrote {stored:,}, {in_lake:,} rows of {rows:,}")
        warehouse = work / f"{fmt}-{patients}-{months}.duckdb"
        _remove_warehouse(warehouse)
        full = _timed_run(landing, warehouse, end + timedelta(days=1), by_group=True)
        decisions = pipeline_decisions(warehouse)
        analysts = [
            analyst_run(engine, landing, end + timedelta(days=1))
            for engine in analyst_engines(patients)
        ]
        night_rows = add_one_night(landing, fmt)
        nights = _nights(landing, warehouse, end + timedelta(days=2), nights_run)
        size = sum(p.stat().st_size for p in (landing / "transmissions").rglob("*") if p.is_file())
        results.append(
            FormatResult(
                fmt,
                rows,
                round(size / 2**20, 1),
                round(generate_s, 1),
                round(floor_s, 3),
                full,
                sorted(nights, key=lambda night: night.beyond_startup_s)[len(nights) // 2],
                night_rows,
                [round(night.beyond_startup_s, 3) for night in nights],
                storage_floor_s=round(storage_s, 3),
                lake_floor_s=round(lake_s, 3),
                decisions=decisions,
                analysts=analysts,
            )
        )
    saved = work / "results.json"  # one entry per format, the latest measurement of each
    kept = json.loads(saved.read_text()) if saved.exists() else []
    kept = [entry for entry in kept if entry["fmt"] not in formats]
    saved.write_text(
        json.dumps(kept + [asdict(r) for r in results], indent=2, default=str), encoding="utf-8"
    )
    return results


def _nights(landing: Path, warehouse: Path, as_of: date, runs: int) -> list[RunTiming]:
    """The night ``runs`` times from the same state: all but the last on a copy of the warehouse,
    the last on the warehouse itself (left as the night leaves it); in the order run."""
    timings = []
    copy = warehouse.with_name(warehouse.stem + "-night-copy.duckdb")
    for _ in range(runs - 1):
        _remove_warehouse(copy)
        copy_warehouse(warehouse, copy, link=True)
        # the copy's 1.7 GB of dirty pages would otherwise be written back during the run, and the
        # night's commits wait for them (its ingestion step 1.1 s instead of 0.5 s)
        os.sync()
        timings.append(_timed_run(landing, copy, as_of, by_group=False))
        _remove_warehouse(copy)
        copy.with_name(copy.name + ".lock").unlink(missing_ok=True)  # its writer lock file
        os.sync()
    timings.append(_timed_run(landing, warehouse, as_of, by_group=False))
    return timings


def _remove_warehouse(warehouse: Path) -> None:
    for stale in (warehouse, warehouse.with_name(warehouse.name + ".wal")):
        stale.unlink(missing_ok=True)
    shutil.rmtree(dataset_folder(warehouse), ignore_errors=True)
    shutil.rmtree(spark_folder(warehouse), ignore_errors=True)


# The engines side by side (issue 27): enrollments without CGM lines (363 readings each over
# 12 months): 8 300 -> about 3 M readings, 83 000 -> about 30 M.
ENGINE_SIZES = (8_300, 83_000)


def run_engines(
    work: Path,
    sizes: tuple[int, ...] = ENGINE_SIZES,
    months: int = B1["months"],
    end: date = date(2025, 11, 30),
    cgm_share: float = 0.0,
) -> list[dict]:
    """The whole graph on DuckDB, then on Spark (local mode), from the same landing, group by
    group in a fresh process each; then the two warehouses compared row for row
    (tools/parity.py). Peak RSS is the Python process's: Spark's JVM is a process of its own
    (its heap is ``OBSERVANCE_SPARK_DRIVER_MEMORY``)."""
    from tools.parity import compare

    work.mkdir(parents=True, exist_ok=True)
    _read_at_once()
    results = []
    for patients in sizes:
        landing, _ = _landing(work, "parquet", patients, months, end, cgm_share)
        remove_nights(landing)
        _, rows = floor(landing, "parquet")
        timings, warehouses = {}, {}
        chosen = os.environ.get(config.ENV_ENGINE)
        for engine in config.ENGINES:
            warehouses[engine] = work / f"engines-{engine}-{patients}.duckdb"
            _remove_warehouse(warehouses[engine])
            os.environ[config.ENV_ENGINE] = engine  # (the child process's engine)
            try:
                timing = _timed_run(landing, warehouses[engine], end + timedelta(days=1), True)
            finally:
                os.environ.pop(config.ENV_ENGINE)
                if chosen is not None:
                    os.environ[config.ENV_ENGINE] = chosen
            timings[engine] = {
                "total_s": round(timing.total_s, 1),
                "models_s": round(sum(v for k, v in timing.stages_s.items() if k != "ingest"), 1),
                "stages_s": timing.stages_s,
                "peak_rss_mb": round(timing.peak_rss_mb),
            }
        compared, differences = compare(warehouses["duckdb"], warehouses["spark"])
        results.append(
            {
                "patients": patients,
                "transmissions": rows,
                "engines": timings,
                "relations_compared": len(compared),
                "differences": [str(d) for d in differences],
            }
        )
    saved = work / "engines.json"
    saved.write_text(json.dumps(results, indent=2), encoding="utf-8")
    return results


def replicate_landing(source: Path, target: Path, copies: int) -> None:
    """``copies`` copies of a Parquet landing folder, ids prefixed ``K<k>`` so that every copy is
    new patients, enrollments and transmissions: B1 x 10 is the 300 M-row out-of-core input.
    Written by DuckDB file to file, out of core, with the warehouse's session settings."""
    target.mkdir(parents=True)
    con = duckdb.connect()
    configure(con)
    prefixed = {
        "enrollments": ("enrollment_id", "patient_id"),
        "prescriptions": ("prescription_id", "enrollment_id"),
        "transmissions": ("transmission_id", "patient_id"),
    }
    for kind, ids in prefixed.items():
        for path in sorted((source / kind).rglob("*")):
            if not path.is_file() or path.name == "generated.json":
                continue
            reader = (
                f"read_csv('{path}', all_varchar = true)"
                if path.suffix == ".csv"
                else f"read_parquet('{path}')"
            )
            copies_sql = " UNION ALL ".join(
                "SELECT * REPLACE ("
                + ", ".join(f"'K{k}' || {column} AS {column}" for column in ids)
                + f") FROM {reader}"
                for k in range(copies)
            )
            out = target / path.relative_to(source)
            out.parent.mkdir(parents=True, exist_ok=True)
            con.execute(f"COPY ({copies_sql}) TO '{out}'")


def run_out_of_core(
    work: Path,
    copies: int = 10,
    patients: int = B1["patients"],
    months: int = B1["months"],
    end: date = date(2025, 11, 30),
    cgm_share: float = BENCH_CGM_SHARE,
) -> dict[str, float]:
    """The whole graph once on ``copies`` x the Parquet benchmark, in a fresh process: seconds,
    peak RSS and the warehouse size (the DuckDB memory limit makes it spill to disk), with the
    plain-scan floor of the same files."""
    _read_at_once()
    source, _ = _landing(work, "parquet", patients, months, end, cgm_share)
    remove_nights(source)
    root = work / f"parquet-{patients}-{months}-cgm{cgm_share:g}-x{copies}"
    landing, warehouse = root / "landing", root / "warehouse.duckdb"
    if not landing.exists():
        replicate_landing(source, landing, copies)
    floor_s, rows = floor(landing, "parquet")
    _remove_warehouse(warehouse)
    timing = _timed_run(landing, warehouse, end + timedelta(days=1), by_group=False)
    result = {
        "copies": copies,
        "transmissions": rows,
        "floor_s": round(floor_s, 2),
        "seconds": round(timing.total_s, 1),
        "peak_rss_mb": round(timing.peak_rss_mb),
        "warehouse_mb": round(warehouse.stat().st_size / 2**20),
        "dataset_mb": _folder_mb(dataset_folder(warehouse)),
    }
    (root / "results.json").write_text(json.dumps(result, indent=2), encoding="utf-8")
    return result


def _year_night(template: pl.DataFrame, day: int, folder: Path) -> int:
    """Night ``day`` of the simulated year: the template night's readings, ``day`` days later,
    with new ids (``Y<day>-``)."""
    from tools.generate import write_transmissions

    return write_transmissions(_shifted(template, day, f"Y{day}-"), folder / "night.parquet")


def _folder_mb(folder: Path) -> int:
    return round(sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 2**20)


def _scan_seconds(warehouse: Path, where: str = "", runs: int = 3) -> float:
    """The median time of a scan of raw.transmissions (count, distinct patients), warm."""
    times = []
    with reader(warehouse) as con:
        query = f"SELECT count(*), count(DISTINCT patient_id) FROM raw.transmissions {where}"
        con.execute(query).fetchall()
        for _ in range(runs):
            started = time.perf_counter()
            con.execute(query).fetchall()
            times.append(time.perf_counter() - started)
    return round(sorted(times)[len(times) // 2], 3)


def run_year(
    work: Path,
    nights: int = 365,
    patients: int = B1["patients"],
    months: int = B1["months"],
    end: date = date(2025, 11, 30),
    cgm_share: float = BENCH_CGM_SHARE,
) -> dict[str, dict]:
    """A year of nights on top of the full run's warehouse, with and without compaction: each
    night ingests one more day of readings (the landing's last day again, shifted, new ids)
    filed under its own date, then the raw dataset is measured: parts, size, a full scan and the
    scan a night's models make (the last night's files only). Needs the warehouse of an earlier
    `observance bench` of the same size (Parquet)."""
    from pipelines.ingest import ingest

    _read_at_once()
    source, _ = _landing(work, "parquet", patients, months, end, cgm_share)
    base = work / f"parquet-{patients}-{months}.duckdb"
    if not base.exists():
        raise FileNotFoundError(f"{base}: run `observance bench --formats parquet` first")
    days = sorted(p for p in (source / "transmissions").iterdir() if p.is_dir())
    template = pl.concat([pl.read_parquet(p) for p in sorted(days[-1].glob("*.parquet"))])
    results = {}
    for variant, compact in (("compacted", None), ("never compacted", "0")):
        root = work / f"year-{variant.replace(' ', '-')}"
        shutil.rmtree(root, ignore_errors=True)
        landing, warehouse = root / "landing", root / "warehouse.duckdb"
        copy_warehouse(base, warehouse, link=True)
        if compact is not None:
            os.environ[config.ENV_COMPACT_AT_PARTS] = compact
        else:
            os.environ.pop(config.ENV_COMPACT_AT_PARTS, None)
        seconds = []
        for day in range(1, nights + 1):
            arrival = end + timedelta(days=day)
            _year_night(template, day, landing / "transmissions" / arrival.isoformat())
            started = time.perf_counter()
            with writer(warehouse) as con:
                ingest(con, landing, ["transmissions"], arrival=arrival)
            seconds.append(time.perf_counter() - started)
        os.environ.pop(config.ENV_COMPACT_AT_PARTS, None)
        with reader(warehouse) as con:
            parts, rows = con.execute("SELECT count(*), sum(rows) FROM ops.raw_parts").fetchall()[0]
            last = con.execute("SELECT max(file_id) FROM ops.ingested_files").fetchall()[0][0]
        tenth = max(1, nights // 10)
        results[variant] = {
            "nights": nights,
            "parts": parts,
            "rows": rows,
            "dataset_mb": _folder_mb(dataset_folder(warehouse)),
            "first_nights_ingest_s": round(statistics.median(seconds[:tenth]), 3),
            "last_nights_ingest_s": round(statistics.median(seconds[-tenth:]), 3),
            "compaction_nights": sum(1 for s in seconds if s > 2 * statistics.median(seconds)),
            "full_scan_s": _scan_seconds(warehouse),
            "last_night_scan_s": _scan_seconds(warehouse, f"WHERE file_id > {last - 2}"),
        }
        shutil.rmtree(root, ignore_errors=True)
    (work / "year.json").write_text(json.dumps(results, indent=2), encoding="utf-8")
    return results


def remove_nights(landing: Path) -> None:
    """Remove the incremental nights of earlier benchmarks, so the full run is the year."""
    for night in (landing / "transmissions").glob(f"*{NIGHT_SUFFIX}"):
        shutil.rmtree(night)


def _row(r: FormatResult, stage: str, seconds: float, rate: bool = False) -> str:
    per_s = f"{r.transmissions / seconds:,.0f}" if rate and seconds else ""
    multiple = seconds / r.floor_s if r.floor_s else float("nan")
    return f"| {r.fmt} | {stage} | {seconds:.2f} | {per_s} | {multiple:.1f} |"


def report_lines(results: list[FormatResult]) -> list[str]:
    """The results as a Markdown table, each stage also as a multiple of the scan floor."""
    lines = ["| format | stage | seconds | rows/s | × floor |", "|---|---|---|---|---|"]
    for r in results:
        lines.append(_row(r, f"floor: plain scan of {r.transmissions:,} rows", r.floor_s))
        lines.append(
            _row(r, "storage floor: the rows written into a DuckDB table", r.storage_floor_s, True)
        )
        lines.append(
            _row(r, "storage floor: the rows written as Parquet (zstd)", r.lake_floor_s, True)
        )
        lines.append(_row(r, "start-up (imports, definitions, Dagster instance)", r.full.startup_s))
        for group, seconds in r.full.stages_s.items():
            lines.append(_row(r, group, seconds, rate=group == "ingest"))
            if group == "observance" and RULES_STEP in r.full.steps_s:
                rules = r.full.steps_s[RULES_STEP]
                lines.append(_row(r, "… of which the rules: `marts.patient_periods`", rules))
        lines.append(_row(r, "**full run**", r.full.total_s, rate=True))
        night = r.incremental.beyond_startup_s
        runs = ", ".join(f"{seconds:.2f}" for seconds in r.nights_s)
        lines.append(
            _row(
                r,
                f"incremental night, {r.incremental_rows:,} new rows, beyond start-up "
                f"(median of {len(r.nights_s)}: {runs})",
                night,
            )
        )
        lines.append(
            _row(r, "incremental night, start-up included", night + r.incremental.startup_s)
        )
        lines.append(
            f"| {r.fmt} | peak RSS full / incremental | "
            f"{r.full.peak_rss_mb:,.0f} / {r.incremental.peak_rss_mb:,.0f} MB | | |"
        )
        lines += _analyst_lines(r)
    return lines + _step_lines(results)


def _analyst_lines(r: FormatResult) -> list[str]:
    """The analyst scripts on the same landing: their time and memory, whether they reached
    the pipeline's decisions, and the pipeline's full run as a fraction of each."""
    lines = []
    for run in r.analysts:
        name = f"analyst script, {run['engine']} (tools/analyst.py)"
        if "error" in run:
            lines.append(f"| {r.fmt} | {name}: failed ({run['error']}) | | | |")
            continue
        same = (run["periods"], run["billable"]) == (
            r.decisions.get("periods"),
            r.decisions.get("billable"),
        )
        lines.append(_row(r, f"{name}, {run['peak_rss_mb']:,.0f} MB", run["seconds"]))
        lines.append(
            f"| {r.fmt} | … its decisions {'=' if same else '≠'} the pipeline's "
            f"({run['periods']:,} periods, {run['billable']:,} billable); the full run takes "
            f"{r.full.total_s / run['seconds']:.2f} × its time and "
            f"{r.full.peak_rss_mb / run['peak_rss_mb']:.2f} × its memory | | | |"
        )
    return lines


def _step_lines(results: list[FormatResult], shown: int = 12) -> list[str]:
    """Where the time goes: the slowest steps of each full run, with the same step's night."""
    lines = []
    for r in results:
        slowest = sorted(r.full.steps_s.items(), key=lambda item: -item[1])[:shown]
        if not slowest:
            continue
        lines += ["", f"| {r.fmt}: step | full run (s) | night (s) |", "|---|---|---|"]
        for step, seconds in slowest:
            night = r.incremental.steps_s.get(step)
            lines.append(f"| {step} | {seconds:.2f} | {'' if night is None else f'{night:.2f}'} |")
    return lines


if __name__ == "__main__":
    if len(sys.argv) == 6 and sys.argv[1] == "--child":
        os.environ.setdefault("DAGSTER_HOME", "")
        _child(*sys.argv[2:])
