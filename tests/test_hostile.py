"""A dirty and hostile landing folder (issue 23): files still being written, links, hidden and
temporary files, FIFOs, pattern characters in names, impossible offsets, dates in 2099, hostile
ids, other separators and encodings. Every path is accounted for, nothing is read that should
not be, and a truncated record is never loaded (pipelines/landing.py, pipelines/ingest.py).

Locks, permissions and telemetry are in tests/test_locks.py; the formula escape of the files
written for people in tests/test_files.py.
"""

from __future__ import annotations

import os
import re
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

from pipelines import config, contract
from pipelines.landing import TEMPORARY_ENDINGS, survey
from pipelines.warehouse import sql_text
from tests.helpers import enrollment, query, tx, write_rows, write_text
from tests.test_ingest import csv_text, file_row, files, ingest_direct, jsonl

TX = "transmissions"


def quarantined(warehouse: Path, path: str) -> pl.DataFrame:
    return query(
        warehouse,
        "SELECT row_number, reason, detail, raw_record, resolved_by_file_id FROM ops.quarantine "
        "WHERE source_file = ? ORDER BY file_id, row_number",
        [path],
    )


def loaded(warehouse: Path, column: str = "transmission_id") -> list:
    frame = query(warehouse, f"SELECT {column} FROM raw.transmissions ORDER BY ALL")
    return frame[column].to_list()


def age(path: Path, seconds: float = 3600) -> None:
    """Make ``path`` look written ``seconds`` ago (as if its writer had long finished)."""
    past = time.time() - seconds
    os.utime(path, (past, past), follow_symlinks=False)


# -- 1. a file still being written


def test_a_file_written_within_the_quiet_period_is_deferred_then_read(tmp_path, monkeypatch):
    landing, warehouse = tmp_path / "landing", tmp_path / "w.duckdb"
    monkeypatch.setenv(config.ENV_QUIET_SECONDS, "60")
    fresh = write_text(landing / TX / "fresh.jsonl", jsonl([tx("P1", "2025-03-10 10:00")]))
    for _ in range(2):  # recorded once while it stays the same
        summary = ingest_direct(landing, warehouse, kinds=[TX])
    assert (summary.kinds[TX].files_new, loaded(warehouse)) == (0, [])
    row = file_row(warehouse, "transmissions/fresh.jsonl")
    assert (row["status"], row["content_hash"], row["rows_read"]) == ("deferred", None, 0)
    assert "60 s" in row["error"]

    age(fresh)
    ingest_direct(landing, warehouse, kinds=[TX])
    statuses = files(warehouse).filter(pl.col("path") == "transmissions/fresh.jsonl")["status"]
    assert statuses.to_list() == ["deferred", "ingested"]
    assert len(loaded(warehouse)) == 1


def test_a_csv_cut_mid_record_never_loads_the_cut_row(tmp_path):
    """The writer is still at work: `3000.0` lux is on disk as `30`. The cut row is
    incomplete_record; once the file is whole, its next version loads the true row and resolves
    the quarantined one (no conflicting_duplicate)."""
    landing, warehouse = tmp_path / "landing", tmp_path / "w.duckdb"
    rows = [
        tx("P1", f"2025-03-1{i} 10:00", transmission_id=f"L{i}", ambient_lux=3000.0)
        for i in range(3)
    ]
    whole = csv_text(rows)
    path = write_text(landing / TX / "live.csv", whole[: whole.rindex("3000.0") + 2])
    ingest_direct(landing, warehouse, kinds=[TX])
    assert loaded(warehouse) == ["L0", "L1"]
    cut = quarantined(warehouse, "transmissions/live.csv").row(0, named=True)
    assert (cut["row_number"], cut["reason"]) == (3, "incomplete_record")
    assert cut["raw_record"].endswith(",30")

    path.write_text(whole)  # the writer finishes
    ingest_direct(landing, warehouse, kinds=[TX])
    assert loaded(warehouse) == ["L0", "L1", "L2"]
    assert set(loaded(warehouse, "ambient_lux")) == {3000.0}
    after = quarantined(warehouse, "transmissions/live.csv")
    new_id = files(warehouse)["file_id"].max()
    assert after.select("reason", "resolved_by_file_id").rows() == [("incomplete_record", new_id)]
    assert file_row_last(warehouse, "transmissions/live.csv")["duplicates_skipped"] == 2


def file_row_last(warehouse: Path, path: str) -> dict:
    return files(warehouse).filter(pl.col("path") == path).row(-1, named=True)


def test_a_json_line_cut_mid_record_is_resolved_by_the_whole_file(tmp_path):
    landing, warehouse = tmp_path / "landing", tmp_path / "w.duckdb"
    whole = jsonl([tx("P1", "2025-03-10 10:00", transmission_id=f"J{i}") for i in range(2)])
    path = write_text(landing / TX / "live.jsonl", whole[:-20])
    ingest_direct(landing, warehouse, kinds=[TX])
    assert loaded(warehouse) == ["J0"]
    assert quarantined(warehouse, "transmissions/live.jsonl")["reason"].to_list() == [
        "incomplete_record"
    ]

    path.write_text(whole)
    ingest_direct(landing, warehouse, kinds=[TX])
    assert loaded(warehouse) == ["J0", "J1"]
    assert quarantined(warehouse, "transmissions/live.jsonl")["resolved_by_file_id"].item()


def test_a_whole_json_object_without_a_final_line_end_is_loaded(tmp_path):
    landing, warehouse = tmp_path / "landing", tmp_path / "w.duckdb"
    write_text(landing / TX / "a.jsonl", jsonl([tx("P1", "2025-03-10 10:00")]).rstrip("\n"))
    ingest_direct(landing, warehouse, kinds=[TX])
    assert len(loaded(warehouse)) == 1


def test_temporary_names_are_never_read(tmp_path):
    landing, warehouse = tmp_path / "landing", tmp_path / "w.duckdb"
    for ending in TEMPORARY_ENDINGS:
        write_text(landing / TX / f"a.jsonl{ending}", jsonl([tx("P1", "2025-03-10 10:00")]))
    ingest_direct(landing, warehouse, kinds=[TX])
    f = files(warehouse)
    assert f.select("status", "skip_reason").unique().rows() == [("skipped", "temporary_file")]
    assert f.height == len(TEMPORARY_ENDINGS)
    assert loaded(warehouse) == []


# -- 2, 4. links, hidden files, FIFOs: every path accounted for, nothing read from outside


@pytest.fixture
def odd_landing(tmp_path) -> tuple[Path, Path, Path]:
    landing, warehouse = tmp_path / "landing", tmp_path / "w.duckdb"
    secret = write_text(tmp_path / "outside" / "secret.jsonl", '{"root": "x:0:0"}\nnot data\n')
    inside = write_text(landing / "archive" / "kept.jsonl", jsonl([tx("P1", "2025-03-10 10:00")]))
    write_text(landing / TX / "good.jsonl", jsonl([tx("P2", "2025-03-10 10:00")]))
    (landing / TX / "secret.jsonl").symlink_to(secret)
    (landing / TX / "relative.jsonl").symlink_to(Path("..") / "archive" / inside.name)
    (landing / TX / "gone.jsonl").symlink_to(tmp_path / "nothing-here.jsonl")
    (landing / TX / "linked_folder").symlink_to(tmp_path / "outside", target_is_directory=True)
    (landing / TX / "loop").symlink_to(landing / TX, target_is_directory=True)
    write_text(landing / TX / ".EXP01.jsonl", jsonl([tx("P3", "2025-03-10 10:00")]))
    write_text(landing / TX / ".hidden" / "inner.jsonl", jsonl([tx("P4", "2025-03-10 10:00")]))
    write_text(landing / "stray.jsonl", jsonl([tx("P5", "2025-03-10 10:00")]))
    os.mkfifo(landing / TX / "pipe.jsonl")  # opening it to read would block the run
    return landing, warehouse, tmp_path / "outside"


def test_every_path_under_the_landing_is_accounted_for(odd_landing):
    landing, warehouse, _ = odd_landing
    ingest_direct(landing, warehouse)
    f = files(warehouse)
    by_path = {row["path"]: (row["status"], row["skip_reason"]) for row in f.iter_rows(named=True)}
    assert by_path == {
        "archive/kept.jsonl": ("skipped", "not_in_a_kind_folder"),
        "stray.jsonl": ("skipped", "not_in_a_kind_folder"),
        "transmissions/good.jsonl": ("ingested", None),
        "transmissions/relative.jsonl": ("ingested", None),  # a link inside: read
        "transmissions/secret.jsonl": ("skipped", "outside_landing"),
        "transmissions/gone.jsonl": ("skipped", "broken_link"),
        "transmissions/linked_folder": ("skipped", "outside_landing"),
        "transmissions/loop": ("skipped", "linked_folder"),
        "transmissions/.EXP01.jsonl": ("skipped", "hidden_file"),
        "transmissions/.hidden": ("skipped", "hidden_folder"),
        "transmissions/pipe.jsonl": ("skipped", "not_a_regular_file"),
    }
    assert all(f.filter(pl.col("status") == "skipped")["error"].is_not_null())
    walked = {
        p.relative_to(landing).as_posix()
        for p in landing.rglob("*")
        if not p.is_dir() or p.is_symlink() or p.name.startswith(".")
    }
    walked = {p for p in walked if "/.hidden/" not in p}  # inside a hidden folder: not entered
    assert walked == set(by_path)
    assert sorted(loaded(warehouse, "patient_id")) == ["P1", "P2"]


def test_nothing_from_outside_the_landing_reaches_the_warehouse(odd_landing):
    landing, warehouse, _ = odd_landing
    ingest_direct(landing, warehouse)
    texts = query(warehouse, "SELECT raw_record FROM ops.quarantine")["raw_record"].to_list()
    assert not any("x:0:0" in (text or "") for text in texts)
    assert query(warehouse, "SELECT count(*) AS n FROM ops.quarantine")["n"].item() == 0


def test_skipped_paths_are_recorded_once(odd_landing):
    landing, warehouse, _ = odd_landing
    ingest_direct(landing, warehouse)
    before = files(warehouse).height
    summary = ingest_direct(landing, warehouse)
    assert files(warehouse).height == before
    assert (summary.files_outside_kinds, summary.kinds[TX].files_skipped) == (0, 0)


def test_the_survey_reads_nothing(odd_landing):
    """The survey only looks at names and metadata: a FIFO would block any open."""
    landing, _, _ = odd_landing
    found = {f.relpath: f for f in survey(landing)}
    assert found["transmissions/pipe.jsonl"].skip_reason == "not_a_regular_file"
    assert found["transmissions/relative.jsonl"].path == (landing / "archive/kept.jsonl").resolve()


# -- 5. names are taken literally


def test_pattern_characters_in_a_file_name_are_literal(tmp_path):
    landing, warehouse = tmp_path / "landing", tmp_path / "w.duckdb"
    for name, patient in (("*.parquet", "P1"), ("a.parquet", "P2"), ("b[1].parquet", "P3")):
        write_rows(landing / TX / name, [tx(patient, "2025-03-10 10:00")])
    write_rows(landing / TX / "?.jsonl", [tx("P4", "2025-03-10 10:00")])
    ingest_direct(landing, warehouse, kinds=[TX])
    f = files(warehouse)
    assert f["rows_read"].sum() == 4
    assert f.select("path", "status", "rows_loaded").sort("path").rows() == [
        ("transmissions/*.parquet", "ingested", 1),
        ("transmissions/?.jsonl", "ingested", 1),
        ("transmissions/a.parquet", "ingested", 1),
        ("transmissions/b[1].parquet", "ingested", 1),
    ]


# -- 3, 9. impossible offsets, future dates


@pytest.mark.parametrize(
    ("measured_at", "reason"),
    [
        ("2025-03-10T10:00:00+99:00", "invalid_timestamp"),
        ("2025-03-10T10:00:00+24:00", "invalid_timestamp"),
        ("2025-03-10T10:00:00+01:99", "invalid_timestamp"),
        ("2025-03-10T10:00:00-13:00", "invalid_timestamp"),
        ("2025-03-10T10:00:00+14:30", "invalid_timestamp"),
        ("2025-03-10T10:00:00+14:00", None),  # Kiribati
        ("2025-03-10T10:00:00-12:00", None),
        ("2025-03-10T10:00:00+05:45", None),  # Nepal
        ("2025-03-10T10:00:00+0100", None),
        ("2099-03-10T10:00:00+01:00", "future_timestamp"),
    ],
)
def test_offsets_and_future_dates(tmp_path, measured_at, reason):
    landing, warehouse = tmp_path / "landing", tmp_path / "w.duckdb"
    write_rows(landing / TX / "a.jsonl", [tx("P1", measured_at)])
    ingest_direct(landing, warehouse, kinds=[TX])
    rows = quarantined(warehouse, "transmissions/a.jsonl")
    assert rows["reason"].to_list() == ([reason] if reason else [])
    if reason:
        assert rows["detail"].item() == "measured_at"


def test_the_future_starts_a_day_after_the_run(tmp_path):
    landing, warehouse = tmp_path / "landing", tmp_path / "w.duckdb"
    now = datetime.now(UTC)
    hours = config.FUTURE_TOLERANCE_HOURS
    write_rows(
        landing / TX / "a.jsonl",
        [
            tx("P1", (now + timedelta(hours=hours - 1)).isoformat(), transmission_id="SOON"),
            tx("P1", (now + timedelta(hours=hours + 1)).isoformat(), transmission_id="LATER"),
            tx("P1", "2025-03-10 10:00", received_at="2099-01-01T00:00:00Z", transmission_id="R"),
        ],
    )
    ingest_direct(landing, warehouse, kinds=[TX])
    assert loaded(warehouse) == ["SOON"]
    rows = quarantined(warehouse, "transmissions/a.jsonl")
    assert rows.select("reason", "detail").rows() == [
        ("future_timestamp", "measured_at"),
        ("future_timestamp", "received_at"),
    ]


def test_a_version_recorded_in_2099_is_quarantined(tmp_path):
    landing, warehouse = tmp_path / "landing", tmp_path / "w.duckdb"
    far = enrollment("E1", "P1", "2025-03-01", recorded_at="2099-01-01T00:00:00+01:00")
    write_rows(landing / "enrollments" / "e.csv", [far])
    ingest_direct(landing, warehouse, kinds=["enrollments"])
    rows = quarantined(warehouse, "enrollments/e.csv")
    assert rows.select("reason", "detail").rows() == [("future_timestamp", "recorded_at")]


# -- 6. hostile ids


@pytest.mark.parametrize(
    ("patient_id", "valid"),
    [
        ("P\x001", False),
        ("P\n1", False),
        ("P\r1", False),
        ("P\t1", False),
        ("P\u202e1", False),  # right-to-left override: shows another id than the one stored
        ("P" * 10_000, False),
        ("P" * 64, True),
        ("P" * 65, False),
        ("=cmd|' /C calc'!A0", True),  # printable: accepted, escaped in the files written
        ("Zoé-Ünïcode", True),
    ],
)
def test_ids_are_printable_and_bounded(tmp_path, patient_id, valid):
    landing, warehouse = tmp_path / "landing", tmp_path / "w.duckdb"
    write_rows(landing / TX / "a.jsonl", [tx(patient_id, "2025-03-10 10:00")])
    ingest_direct(landing, warehouse, kinds=[TX])
    rows = quarantined(warehouse, "transmissions/a.jsonl")
    if valid:
        assert loaded(warehouse, "patient_id") == [patient_id]
    else:
        assert rows.select("reason", "detail").rows() == [("invalid_id", "patient_id")]


# -- 9. separators, headers, encodings


def test_a_semicolon_csv_is_read_with_its_decimal_comma_and_noted(tmp_path):
    landing, warehouse = tmp_path / "landing", tmp_path / "w.duckdb"
    text = csv_text([tx("P1", "2025-03-10 10:00", value=0.8, ambient_lux=3000.5)])
    text = text.replace(",", ";").replace("0.8", "0,8").replace("3000.5", "3000,5")
    write_text(landing / TX / "excel.csv", "\ufeff" + text)  # as French Excel saves it
    ingest_direct(landing, warehouse, kinds=[TX])
    frame = query(warehouse, "SELECT value, ambient_lux FROM raw.transmissions")
    assert frame.rows() == [(0.8, 3000.5)]
    note = file_row(warehouse, "transmissions/excel.csv")["notes"]
    assert note == "separator ';' instead of ',', read with a decimal comma"


def test_an_unexpected_header_keeps_every_row_as_sent(tmp_path):
    landing, warehouse = tmp_path / "landing", tmp_path / "w.duckdb"
    write_text(landing / TX / "other.csv", "id|who|when\n1|P1|2025-03-10\n2|P2|2025-03-11\n")
    ingest_direct(landing, warehouse, kinds=[TX])
    rows = quarantined(warehouse, "transmissions/other.csv")
    assert rows.select("row_number", "reason", "raw_record").rows() == [
        (0, "malformed_record", "id|who|when"),  # a header or a record: kept either way
        (1, "missing_field", "1|P1|2025-03-10"),
        (2, "missing_field", "2|P2|2025-03-11"),
    ]
    assert (
        "none of the contract's fields" in file_row(warehouse, "transmissions/other.csv")["notes"]
    )


def test_unknown_columns_are_noted(tmp_path):
    landing, warehouse = tmp_path / "landing", tmp_path / "w.duckdb"
    write_rows(landing / TX / "a.csv", [{**tx("P1", "2025-03-10 10:00"), "comment": "ok"}])
    ingest_direct(landing, warehouse, kinds=[TX])
    assert len(loaded(warehouse)) == 1
    assert file_row(warehouse, "transmissions/a.csv")["notes"] == (
        "columns not in the contract, ignored: comment"
    )


def test_a_latin1_csv_loads_its_good_rows_and_quarantines_the_others(tmp_path):
    landing, warehouse = tmp_path / "landing", tmp_path / "w.duckdb"
    rows = [
        tx("P1", "2025-03-10 10:00", transmission_id="OK1"),
        tx("Pé", "2025-03-10 11:00", transmission_id="BAD"),
        tx("P3", "2025-03-10 12:00", transmission_id="OK2"),
    ]
    write_text(landing / TX / "a.csv", "")
    (landing / TX / "a.csv").write_bytes(csv_text(rows).encode("latin-1"))
    ingest_direct(landing, warehouse, kinds=[TX])
    assert loaded(warehouse) == ["OK1", "OK2"]
    bad = quarantined(warehouse, "transmissions/a.csv").row(0, named=True)
    assert (bad["row_number"], bad["reason"]) == (2, "invalid_encoding")
    assert bad["raw_record"].startswith("BAD,EXP01,ODYSIGHT,Pé,")
    assert file_row(warehouse, "transmissions/a.csv")["status"] == "ingested"


def test_csv_rows_keep_their_line_whatever_the_reason(tmp_path):
    landing, warehouse = tmp_path / "landing", tmp_path / "w.duckdb"
    rows = [tx("P1", "2025-03-10T10:00:00+99:00"), tx("", "2025-03-10 10:00")]
    text = csv_text(rows)
    write_text(landing / TX / "a.csv", text)
    ingest_direct(landing, warehouse, kinds=[TX])
    lines = text.splitlines()[1:]
    assert quarantined(warehouse, "transmissions/a.csv")["raw_record"].to_list() == lines


@pytest.mark.parametrize("kind", contract.KINDS)
def test_every_id_field_is_checked_by_the_validation(kind):
    """contract.ID_FIELDS (documented) and the checks of sql/ingest/validate_<kind>.sql agree."""
    text = sql_text(f"ingest/validate_{kind}")
    checked = set(re.findall(r"is_valid_id\((\w+)\)", text))
    assert checked == set(contract.ID_FIELDS[kind])


# -- what the review found (issue 23 follow-up)


def test_a_name_that_is_not_utf8_is_recorded_not_fatal(tmp_path):
    landing, warehouse = tmp_path / "landing", tmp_path / "w.duckdb"
    write_text(landing / TX / "good.jsonl", jsonl([tx("P1", "2025-03-10 10:00")]))
    name = os.path.join(os.fsencode(landing / TX), b"r\xe9sultats.jsonl")
    with open(name, "wb") as handle:
        handle.write(jsonl([tx("P2", "2025-03-10 10:00")]).encode())
    ingest_direct(landing, warehouse, kinds=[TX])
    skipped = files(warehouse).filter(pl.col("skip_reason") == "undecodable_name")
    assert skipped["path"].to_list() == ["transmissions/r\\xe9sultats.jsonl"]
    assert loaded(warehouse, "patient_id") == ["P1"]


def test_a_path_gone_while_the_folder_is_listed_is_left_out(tmp_path, monkeypatch):
    import pipelines.landing as landing_module

    landing = tmp_path / "landing"
    write_text(landing / TX / "a.jsonl.part", "{}\n")
    write_text(landing / TX / "a.jsonl", "{}\n")
    real = landing_module._surveyed

    def renamed_meanwhile(entry, *args):
        if entry.name.endswith(".part"):
            raise FileNotFoundError(entry.path)  # renamed between the listing and its stat
        return real(entry, *args)

    monkeypatch.setattr(landing_module, "_surveyed", renamed_meanwhile)
    assert [f.relpath for f in survey(landing)] == ["transmissions/a.jsonl"]


def test_a_modification_time_in_the_future_does_not_defer_for_ever(tmp_path):
    landing = tmp_path / "landing"
    path = write_text(landing / TX / "a.jsonl", "{}\n")
    future = time.time() + 86_400
    os.utime(path, (future, future))
    later = time.time_ns() + 3_600 * 10**9  # an hour on: written an hour ago, dated tomorrow
    assert not survey(landing, quiet_seconds=60, now_ns=later)[0].deferred
    assert survey(landing, quiet_seconds=60)[0].deferred  # but just written: still quiet-waited


def test_a_csv_without_header_counts_its_first_line_and_never_logs_it(tmp_path, caplog):
    landing, warehouse = tmp_path / "landing", tmp_path / "w.duckdb"
    text = csv_text([tx("P1", "2025-03-10 10:00"), tx("P2", "2025-03-11 10:00")])
    write_text(landing / TX / "a.csv", text.split("\n", 1)[1])  # the header left out
    ingest_direct(landing, warehouse, kinds=[TX])
    row = file_row(warehouse, "transmissions/a.csv")
    assert (row["rows_read"], row["rows_quarantined"]) == (2, 2)
    first = quarantined(warehouse, "transmissions/a.csv").row(0, named=True)
    assert (first["row_number"], first["reason"]) == (0, "malformed_record")
    assert "P1" not in row["notes"] and "P1" not in caplog.text


def test_a_csv_with_bare_cr_line_ends_is_read_whole(tmp_path):
    landing, warehouse = tmp_path / "landing", tmp_path / "w.duckdb"
    text = csv_text([tx("P1", "2025-03-10 10:00"), tx("P2", "2025-03-11 10:00")])
    (landing / TX).mkdir(parents=True)
    (landing / TX / "mac.csv").write_bytes(text.replace("\n", "\r").encode())
    ingest_direct(landing, warehouse, kinds=[TX])
    assert sorted(loaded(warehouse, "patient_id")) == ["P1", "P2"]


def test_touching_a_cut_file_does_not_resolve_its_incomplete_record(tmp_path):
    landing, warehouse = tmp_path / "landing", tmp_path / "w.duckdb"
    whole = jsonl([tx("P1", "2025-03-10 10:00", transmission_id=f"J{i}") for i in range(2)])
    path = write_text(landing / TX / "live.jsonl", whole[:-20])
    ingest_direct(landing, warehouse, kinds=[TX])
    os.utime(path)  # a touch: read again, same bytes
    ingest_direct(landing, warehouse, kinds=[TX])
    assert files(warehouse)["status"].to_list() == ["ingested", "same_content"]
    cut = quarantined(warehouse, "transmissions/live.jsonl")
    assert cut["resolved_by_file_id"].to_list() == [None]


def test_a_parquet_file_replaced_between_its_hash_and_its_scan_is_deferred(tmp_path, monkeypatch):
    """Parquet rows come from a second open of the file: if it changed after its bytes were
    hashed, none of its rows is loaded and it is read again by a later run."""
    import pipelines.ingest as ingest_module

    landing, warehouse = tmp_path / "landing", tmp_path / "w.duckdb"
    path = write_rows(landing / TX / "a.parquet", [tx("P1", "2025-03-10 10:00")])
    real = ingest_module._validate

    def replaced_meanwhile(con, kind, scan, jsonl):
        write_rows(path, [tx("EVIL", "2025-03-10 10:00")])  # another content, same name
        return real(con, kind, scan, jsonl)

    monkeypatch.setattr(ingest_module, "_validate", replaced_meanwhile)
    ingest_direct(landing, warehouse, kinds=[TX])
    assert loaded(warehouse) == []
    assert file_row(warehouse, "transmissions/a.parquet")["status"] == "deferred"
    monkeypatch.undo()
    ingest_direct(landing, warehouse, kinds=[TX])
    assert loaded(warehouse, "patient_id") == ["EVIL"]  # the file as it now is, hashed and read
