"""The raw layer's lake (pipelines/lake.py, issue 26): transmissions as a Parquet dataset next to
the warehouse file, committed with the reconciliation, compacted, recovered after a stop, moved
and backed up with the warehouse."""

from __future__ import annotations

import shutil
import stat
from datetime import date, timedelta
from pathlib import Path

import duckdb
import polars as pl
import pytest

import pipelines.ingest as ingest_module
from pipelines import lake
from pipelines.config import ENV_COMPACT_AT_PARTS
from pipelines.reference import load_reference
from pipelines.warehouse import backup, dataset_folder, migrate, reader, writer
from tests.helpers import query, tx, write_rows
from tests.test_ingest import lake_files, listed_parts

FIRST_NIGHT = date(2025, 3, 1)


def night(landing: Path, day: date, rows: int = 3, fmt: str = "jsonl") -> Path:
    """One arrival folder: ``rows`` new readings of patient P1 measured that day."""
    readings = [
        tx("P1", f"{day.isoformat()} 0{i}:00", transmission_id=f"T{day:%Y%m%d}-{i}")
        for i in range(rows)
    ]
    return write_rows(landing / "transmissions" / day.isoformat() / f"n.{fmt}", readings)


def ingest_on(landing: Path, warehouse: Path, arrival: date) -> ingest_module.IngestSummary:
    with writer(warehouse) as con:
        migrate(con)
        load_reference(con)
        return ingest_module.ingest(con, landing, ["transmissions"], arrival=arrival)


def transmissions(warehouse: Path) -> pl.DataFrame:
    return query(warehouse, "SELECT * FROM raw.transmissions ORDER BY file_id, row_number")


def parts(warehouse: Path) -> pl.DataFrame:
    return query(warehouse, "SELECT * FROM ops.raw_parts ORDER BY first_file_id")


def test_loaded_rows_are_parquet_parts_next_to_the_warehouse(tmp_path):
    landing, warehouse = tmp_path / "landing", tmp_path / "w.duckdb"
    night(landing, FIRST_NIGHT)
    night(landing, FIRST_NIGHT + timedelta(days=1), fmt="parquet")
    ingest_on(landing, warehouse, FIRST_NIGHT)
    kind = query(
        warehouse,
        "SELECT table_type FROM information_schema.tables "
        "WHERE table_schema = 'raw' AND table_name = 'transmissions'",
    )
    assert kind["table_type"].to_list() == ["VIEW"]
    listed = parts(warehouse)
    # the empty part of the new warehouse (it carries the column types) and one per batch
    assert listed["rows"].to_list() == [0, 6]
    assert listed["arrival_month"].unique().to_list() == ["2025-03"]
    assert transmissions(warehouse).height == 6
    files = lake_files(warehouse)
    assert files == listed_parts(warehouse)
    assert all(f.startswith("transmissions/arrival_month=2025-03/part-") for f in files)
    for name in files:  # health data: never readable by other users
        mode = (dataset_folder(warehouse) / name).stat().st_mode
        assert not mode & (stat.S_IROTH | stat.S_IWOTH)
    keys = query(warehouse, "SELECT count(*) AS n FROM raw.transmission_keys")
    assert keys["n"].item() == 6


def test_the_view_reads_the_parts_with_rows_the_largest_first(tmp_path):
    """DuckDB estimates a scan from its first file: the empty part listed first made the
    observance models build their hash tables on the transmissions (out of memory at B1)."""
    landing, warehouse = tmp_path / "landing", tmp_path / "w.duckdb"
    night(landing, FIRST_NIGHT, rows=2)
    ingest_on(landing, warehouse, FIRST_NIGHT)
    night(landing, FIRST_NIGHT + timedelta(days=1), rows=5)
    ingest_on(landing, warehouse, FIRST_NIGHT)
    listed = parts(warehouse)
    assert listed["rows"].to_list() == [0, 2, 5]
    view = query(warehouse, "SELECT sql FROM duckdb_views() WHERE view_name = 'transmissions'")
    text = view["sql"].item()
    empty, small, large = listed["path"].to_list()
    assert empty not in text and text.index(large) < text.index(small)


def test_duplicates_are_found_across_nights_in_the_parts_that_hold_them(tmp_path):
    """A night that sends an earlier night's readings again: duplicates, found through the keys
    table; one whose payload differs: quarantined as a conflict. To compare payloads, only the
    parts holding the contested keys are read (lake.kept_rows), never the whole dataset."""
    landing, warehouse = tmp_path / "landing", tmp_path / "w.duckdb"
    first = night(landing, FIRST_NIGHT)
    ingest_on(landing, warehouse, FIRST_NIGHT)
    night(landing, FIRST_NIGHT + timedelta(days=1))
    ingest_on(landing, warehouse, FIRST_NIGHT)
    first_part, second_part = parts(warehouse)["path"].to_list()[1:]
    with writer(warehouse) as con:
        sent_again = "SELECT key_hash FROM raw.transmissions WHERE file_id = 1"
        con.execute(f"CREATE TEMP TABLE contested_hashes AS {sent_again}")
        view = con.execute(
            "SELECT sql FROM duckdb_views() WHERE view_name = ?",
            [lake.kept_rows(con, "transmissions")],
        ).fetchall()[0][0]
        assert first_part in view and second_part not in view
        assert con.execute("SELECT count(*) FROM kept_rows").fetchall()[0][0] == 3

    again = landing / "transmissions" / "again" / "n.jsonl"
    again.parent.mkdir(parents=True)
    lines = first.read_text().splitlines()
    again.write_text(lines[0] + "\n" + lines[1].replace("0.8", "0.9") + "\n")
    summary = ingest_on(landing, warehouse, FIRST_NIGHT)
    s = summary.kinds["transmissions"]
    assert (s.rows_read, s.rows_loaded, s.duplicates_skipped, s.rows_quarantined) == (2, 0, 1, 1)
    assert transmissions(warehouse).height == 6


def test_compaction_merges_a_months_small_parts_and_keeps_every_row(tmp_path, monkeypatch):
    monkeypatch.setenv(ENV_COMPACT_AT_PARTS, "3")
    landing, warehouse = tmp_path / "landing", tmp_path / "w.duckdb"
    seen = []
    for i in range(4):  # four nights of March
        day = FIRST_NIGHT + timedelta(days=i)
        night(landing, day)
        ingest_on(landing, warehouse, day)
        seen.append(parts(warehouse)["rows"].to_list())
        assert lake_files(warehouse) == listed_parts(warehouse)  # merged files deleted
    # three small parts (the new warehouse's empty one counts) are merged into one
    assert seen == [[0, 3], [6], [6, 3], [12]]
    assert parts(warehouse)["first_file_id"].to_list() == [0]
    rows = transmissions(warehouse)
    assert rows.height == 12 and rows["transmission_id"].n_unique() == 12
    # the merged part's own order: by file, then row (row groups then bound the nightly reads)
    merged = pl.read_parquet(dataset_folder(warehouse) / parts(warehouse)["path"].item())
    order = merged.select("file_id", "row_number").rows()
    assert order == sorted(order) and len(set(order)) == 12

    # a night of April: March is over, its two small parts become one
    april = date(2025, 4, 1)
    night(landing, april)
    ingest_on(landing, warehouse, april)
    months = parts(warehouse).group_by("arrival_month").agg(pl.len(), pl.col("rows").sum())
    assert sorted(months.rows()) == [("2025-03", 1, 12), ("2025-04", 1, 3)]
    assert transmissions(warehouse).height == 15


def test_a_stopped_runs_files_are_removed_and_others_left_alone(tmp_path):
    """What a stopped run leaves (a batch's part never committed, a half-written temporary
    file) is never read and is deleted by the next run; a file that is no leftover (a part of
    some other warehouse copied in by mistake) is left as it is, and never read either."""
    landing, warehouse = tmp_path / "landing", tmp_path / "w.duckdb"
    night(landing, FIRST_NIGHT)
    ingest_on(landing, warehouse, FIRST_NIGHT)
    root = dataset_folder(warehouse) / "transmissions"
    written = next(root.rglob("part-*1.parquet"))
    uncommitted = written.with_name("part-000000009-000000009.parquet")  # above every file_id
    foreign = written.with_name("part-000000000-000000001.parquet")  # not inside a listed part
    shutil.copy(written, uncommitted)
    shutil.copy(written, foreign)
    (root / lake.TEMPORARY).mkdir(exist_ok=True)
    (root / lake.TEMPORARY / "half.parquet").write_bytes(b"PAR1")  # stopped mid-write
    assert transmissions(warehouse).height == 3  # the view lists the committed parts only
    night(landing, FIRST_NIGHT + timedelta(days=1))
    ingest_on(landing, warehouse, FIRST_NIGHT)
    assert not uncommitted.exists() and not (root / lake.TEMPORARY / "half.parquet").exists()
    assert foreign.exists()
    assert lake_files(warehouse) - listed_parts(warehouse) == {
        str(foreign.relative_to(dataset_folder(warehouse)))
    }
    assert transmissions(warehouse).height == 6


def test_a_missing_part_stops_the_run_with_its_name(tmp_path):
    landing, warehouse = tmp_path / "landing", tmp_path / "w.duckdb"
    night(landing, FIRST_NIGHT)
    ingest_on(landing, warehouse, FIRST_NIGHT)
    lost = next(iter(sorted(listed_parts(warehouse))))
    (dataset_folder(warehouse) / lost).unlink()
    with pytest.raises(RuntimeError, match="parts of the raw dataset are missing") as raised:
        ingest_on(landing, warehouse, FIRST_NIGHT)
    assert lost in str(raised.value)


def test_the_warehouse_moves_and_is_backed_up_with_its_dataset(tmp_path, monkeypatch):
    landing, warehouse = tmp_path / "landing", tmp_path / "a" / "w.duckdb"
    night(landing, FIRST_NIGHT)
    ingest_on(landing, warehouse, FIRST_NIGHT)
    expected = transmissions(warehouse)

    stray = dataset_folder(warehouse) / lake.TEMPORARY / "left.parquet"
    stray.parent.mkdir(parents=True, exist_ok=True)
    stray.write_bytes(b"PAR1")  # a leftover: not copied
    copied = backup(warehouse, tmp_path / "backup")
    assert copied == tmp_path / "backup" / "w.duckdb"
    assert lake_files(copied) == listed_parts(copied) == listed_parts(warehouse)
    for path in (copied, *dataset_folder(copied).rglob("*.parquet")):
        assert not path.stat().st_mode & (stat.S_IROTH | stat.S_IWOTH), path
    with pytest.raises(FileExistsError):
        backup(warehouse, tmp_path / "backup")

    moved = tmp_path / "elsewhere" / "w.duckdb"
    moved.parent.mkdir()
    shutil.move(warehouse, moved)
    shutil.move(dataset_folder(warehouse), dataset_folder(moved))
    monkeypatch.chdir(tmp_path / "elsewhere")  # read from another working directory
    assert transmissions(moved).equals(expected)
    assert transmissions(copied).equals(expected)
    # the view's paths are relative to the dataset: a plain connection must be told where it is
    with duckdb.connect(str(moved), read_only=True) as con, pytest.raises(duckdb.IOException):
        con.execute("SELECT count(*) FROM raw.transmissions").fetchall()
    with reader(moved) as con:
        assert con.execute("SELECT count(*) FROM raw.transmissions").fetchall()[0][0] == 3


def test_an_older_warehouses_table_moves_into_the_dataset(tmp_path):
    """A warehouse made before the lake keeps its transmissions in a table: the first ingestion
    moves them into a part (one transaction), and they still count for de-duplication."""
    landing, warehouse = tmp_path / "landing", tmp_path / "w.duckdb"
    sent = night(landing, FIRST_NIGHT)
    with writer(warehouse) as con:
        migrate(con)
        load_reference(con)
        ingest_module.ingest(con, landing, ["transmissions"], arrival=FIRST_NIGHT)
        # as an older version left it: the rows in a table, no parts, no keys
        con.execute("CREATE TABLE raw.kept AS SELECT * FROM raw.transmissions")
        con.execute("DROP VIEW raw.transmissions")
        con.execute("ALTER TABLE raw.kept RENAME TO transmissions")
        con.execute("DELETE FROM ops.raw_parts")
        con.execute("DELETE FROM raw.transmission_keys")
    shutil.rmtree(dataset_folder(warehouse))
    resent = landing / "transmissions" / "resent" / "n.jsonl"
    resent.parent.mkdir()
    # the same rows in another order: other bytes, read, and every row a duplicate
    resent.write_text("\n".join(reversed(sent.read_text().splitlines())) + "\n")
    summary = ingest_on(landing, warehouse, FIRST_NIGHT)
    s = summary.kinds["transmissions"]
    assert (s.rows_loaded, s.duplicates_skipped) == (0, 3)
    assert parts(warehouse)["rows"].to_list() == [3]
    assert transmissions(warehouse).height == 3
    assert lake_files(warehouse) == listed_parts(warehouse)


def test_observance_backup_copies_the_warehouse_and_refuses_to_overwrite(tmp_path):
    from typer.testing import CliRunner

    from cli.main import app

    landing, warehouse = tmp_path / "landing", tmp_path / "w.duckdb"
    night(landing, FIRST_NIGHT)
    ingest_on(landing, warehouse, FIRST_NIGHT)
    args = ["backup", "--to", str(tmp_path / "b"), "--warehouse", str(warehouse)]
    done = CliRunner().invoke(app, args)
    assert done.exit_code == 0, done.output
    assert transmissions(tmp_path / "b" / "w.duckdb").equals(transmissions(warehouse))
    again = CliRunner().invoke(app, args)
    assert again.exit_code != 0 and "already exists" in again.output
    missing = CliRunner().invoke(app, ["backup", "--to", str(tmp_path / "c"), "--warehouse", "x"])
    assert missing.exit_code != 0 and "no warehouse" in missing.output


def test_a_backup_waits_for_the_writer_lock(tmp_path):
    """While a run holds the writer lock, `observance backup` waits for it and gives up with
    exit 75 after the lock timeout: it never copies a warehouse being written."""
    from pipelines.config import EXIT_BUSY
    from pipelines.warehouse import write_lock
    from tests.test_locks import cli

    landing, warehouse = tmp_path / "landing", tmp_path / "w.duckdb"
    night(landing, FIRST_NIGHT)
    ingest_on(landing, warehouse, FIRST_NIGHT)
    with write_lock(warehouse):
        done = cli("backup", "--to", str(tmp_path / "b"), "--warehouse", str(warehouse),
                   "--lock-timeout", "1")  # fmt: skip
    assert done.returncode == EXIT_BUSY, done.stdout + done.stderr
    assert not (tmp_path / "b" / "w.duckdb").exists()
