"""Landing files -> raw.* / ops.*: quarantine reasons, reconciliation, duplicates, formats, files,
idempotency and atomic loads (shared/contract.md, pipelines/ingest.py, sql/ingest/*.sql).

Most cases sit in one dirty landing folder run once through the asset graph (module fixture);
each test then asserts one thing about the resulting warehouse. Crash tests call
``pipelines.ingest.ingest`` directly on a writer connection.
"""

from __future__ import annotations

import csv
import errno
import gzip
import io
import json
import os
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb
import polars as pl
import pyarrow.parquet as pq
import pytest
from polars.testing import assert_frame_equal

import pipelines.ingest as ingest_module
from pipelines import contract
from pipelines.reference import load_reference
from pipelines.warehouse import copy_warehouse, dataset_folder, migrate, reader, writer
from tests.helpers import enrollment, prescription, query, run, tx, write_rows, write_text
from tests.test_ledger import PAYMENT_REASONS

AS_OF = "2025-06-01"
TX_FIELDS = contract.FIELDS["transmissions"]
CONFLICT = "differs from the row kept for this key"
NOT_UTF8 = "not UTF-8 (kept as read in Latin-1)"


# ---------------------------------------------------------------------------------------------
# helpers


def jsonl(rows: list) -> str:
    """JSON lines: a dict is dumped, a str is written as is (blank, broken JSON, ...)."""
    return "".join((row if isinstance(row, str) else json.dumps(row)) + "\n" for row in rows)


def csv_text(rows: list, fields=TX_FIELDS) -> str:
    """CSV with a header; a dict becomes one record, a list is written as its cells."""
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(fields)
    for row in rows:
        w.writerow(row if isinstance(row, list) else [row.get(name, "") for name in fields])
    return out.getvalue()


# What a run over the landing writes that these tests compare across runs: the ingestion tables
# and what the models derive from them (other marts may carry run timestamps of their own).
COMPARED = [
    "raw.transmissions",
    "raw.enrollments",
    "raw.prescriptions",
    "ops.ingested_files",
    "ops.quarantine",
    "staging.enrollments",
    "staging.prescriptions",
    "marts.patient_periods",
]


def snapshot(
    warehouse: Path, names: list[str] = COMPARED, drop=("ingested_at", "quarantined_at")
) -> dict[str, pl.DataFrame]:
    """Full, sorted contents of tables (without the wall-clock columns in ``drop``)."""
    out = {}
    with reader(warehouse) as con:
        for name in names:
            schema, table = name.split(".")
            cols = [
                f'"{c}"'
                for (c,) in con.execute(
                    "SELECT column_name FROM duckdb_columns() WHERE schema_name = ? "
                    "AND table_name = ? ORDER BY column_index",
                    [schema, table],
                ).fetchall()
                if c not in drop
            ]
            out[name] = con.sql(f"SELECT {', '.join(cols)} FROM {name} ORDER BY ALL").pl()
    return out


def assert_frames(left: pl.DataFrame, right: pl.DataFrame, name: str) -> None:
    try:
        assert_frame_equal(left, right)
    except AssertionError as exc:
        raise AssertionError(f"{name}: {exc}") from None


def assert_same(a: dict[str, pl.DataFrame], b: dict[str, pl.DataFrame]) -> None:
    assert a.keys() == b.keys()
    for name in a:
        assert_frames(a[name], b[name], name)


def files(warehouse: Path) -> pl.DataFrame:
    return query(warehouse, "SELECT * FROM ops.ingested_files ORDER BY file_id")


def file_row(warehouse: Path, path: str) -> dict:
    rows = files(warehouse).filter(pl.col("path") == path)
    assert rows.height == 1, f"{path}: {rows.height} rows in ops.ingested_files"
    return rows.row(0, named=True)


def run_dirty(landing: Path, warehouse: Path) -> None:
    """A run over a landing made dirty on purpose: its quarantine share (far above 10 %) must not
    hold the models back, since the tests look at them (docs/operations.md, blocking checks)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("OBSERVANCE_QUARANTINE_ERROR", "1")
        run(landing, warehouse, AS_OF)


def ingest_direct(landing: Path, warehouse: Path, **kw) -> ingest_module.IngestSummary:
    with writer(warehouse) as con:
        migrate(con)
        load_reference(con)
        return ingest_module.ingest(con, landing, **kw)


def lake_files(warehouse: Path) -> set[str]:
    """The files under the warehouse's raw dataset, relative to it."""
    root = dataset_folder(warehouse)
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


def listed_parts(warehouse: Path) -> set[str]:
    return set(query(warehouse, "SELECT path FROM ops.raw_parts")["path"])


def write_bytes(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def t(measured: str = "2025-03-10 10:00", patient: str = "P1", **kw) -> dict:
    return tx(patient, measured, **kw)


# ---------------------------------------------------------------------------------------------
# the dirty landing: one run, many assertions

A = "transmissions/2025-03-02/a.jsonl"
B = "transmissions/2025-03-02/b_utf8.jsonl"
TXT = "transmissions/2025-03-02/readme.txt"
C = "transmissions/2025-03-03/c.csv"
GZ_BAD = "transmissions/2025-03-03/corrupt.jsonl.gz"
D = "transmissions/2025-03-04/d.jsonl"
A_COPY = "transmissions/2025-03-05/a_copy.jsonl"
H = "transmissions/2025-03-06/hostile.jsonl"
NAIVE = "transmissions/parquet/naive.parquet"
TZ = "transmissions/parquet/tz.parquet"
ENR = "enrollments/2025-03-01/enrollments.csv"
RX = "prescriptions/2025-03-01/prescriptions.csv"
FORMATS = {  # same rows, one exploitant per format so they are not duplicates of each other
    "jsonl": ("transmissions/formats/f.jsonl", "EXP_JSONL"),
    "jsonl.gz": ("transmissions/formats/f.jsonl.gz", "EXP_GZ"),
    "csv": ("transmissions/formats/f.csv", "EXP_CSV"),
    "parquet": ("transmissions/formats/f.parquet", "EXP_PARQUET"),
}
FORMAT_ROWS = [
    tx(
        "PF",
        "2025-03-03 09:15",
        eye="OD",
        transmission_id="F1",
        value=0.35,
        unit="logMAR",
        distance_cm=40.5,
        ambient_lux=310.0,
        received_at="2025-03-03T08:20:00Z",
    ),
    tx(
        "PF",
        "2025-03-03 09:16",
        eye="OS",
        transmission_id="F2",
        value=0.4,
        unit="logMAR",
        distance_cm=38.0,
        ambient_lux=295.5,
        received_at="2025-03-03T10:21:00+02:00",
    ),
    tx("PF", "2025-03-04 09:00", measure_type="amsler_grid", eye="os", transmission_id="F3"),
    tx("PF", "2025-03-05 08:00", activity_code="HEART_FAILURE", transmission_id="F4", value=72.4),
]

A1 = t("2025-03-10 10:00", transmission_id="A1")
A2 = t("2025-03-11 10:00", transmission_id="A2", value=0.5)
A3 = t("2025-03-12 10:00", transmission_id="A3", value=0.6)
X1 = t("2025-03-13 10:00", transmission_id="X1", value=0.7)
NO_PATIENT = {k: v for k, v in t(transmission_id="M1").items() if k != "patient_id"}
# Line numbers of a.jsonl are the list positions + 1 (blank lines keep their number).
A_LINES = [
    A1,  # 1
    "",  # 2 blank: not a record
    '{"transmission_id": "BROKEN", "patient_id":',  # 3
    '["M0", "EXP01", "ODYSIGHT"]',  # 4 a JSON array, not an object
    NO_PATIENT,  # 5
    t(patient="", transmission_id="M2"),  # 6
    {**t(transmission_id="N1"), "measured_at": "2025-03-30T10:00:00"},  # 7
    t(transmission_id="V1", value="abc"),  # 8
    t(transmission_id="DI1", distance_cm="near"),  # 9
    {**t(transmission_id="Y1"), "measured_at": "yesterday"},  # 10
    t(transmission_id="UA1", activity_code="TELEPATHY"),  # 11
    t(transmission_id="E1", eye="XX"),  # 12
    t(transmission_id="E2", eye=None),  # 13 visual_acuity needs an eye
    "   ",  # 14 blank
    A1,  # 15 exact repeat in the same file
    A2,  # 16
    {**A2, "value": 0.9},  # 17 same key, other payload
    A3,  # 18
    X1,  # 19
    {**t(transmission_id="R1"), "received_at": "2025-03-10T09:00:00"},  # 20
    {**t(transmission_id="OLD"), "measured_at": "1970-01-01T00:00:00Z"},  # 21 no Paris date
    {**t(transmission_id="FAR"), "measured_at": "2101-01-01T00:00:00Z"},  # 22 no Paris date
    # 23: the last instant the Paris calendar dates, but later than the run (R1: future)
    {**t(transmission_id="LAST"), "measured_at": "2100-12-31T22:59:59+00:00"},
]
H_LINES = [
    t(transmission_id="H\x001"),  # 1 a NUL in an id
    {**t(transmission_id="H2"), "measured_at": "2025-03-10T10:00:00+99:00"},  # 2 no such offset
]
H_CUT = '{"transmission_id": "H3", "exploitant_id": "EXP01", "ambient_lux": 30'  # 3
B_GOOD = t(transmission_id="U8A")
B_BAD = b'{"transmission_id": "U8B", "patient_id": "P\xff\xfe1", "unit": "caf\xe9"}'
C_EXTRA = ["C2", "EXP01", "ODYSIGHT", "P1", "visual_acuity", "OD", A1["measured_at"]]
C_EXTRA += ["", "0.8", "", "", "", "one too many"]
C_ROWS = [
    X1,  # 1 same transmission as a.jsonl line 19, now as CSV: duplicate
    C_EXTRA,  # 2 extra column
    t(transmission_id="C3"),  # 3
    t(patient="", transmission_id="C4"),  # 4 empty patient_id
]
D_LINES = [A1, {**A3, "value": 0.1}, t(transmission_id="D3")]  # written with CRLF endings


def _naive_parquet(path: Path) -> None:
    frame = pl.DataFrame(
        [
            {**t(transmission_id="NV1", patient="PT"), "measured_at": datetime(2025, 3, 30, 10)},
            {**t(transmission_id="NV2", patient="PT"), "measured_at": datetime(2025, 3, 31, 9)},
        ]
    )
    frame.write_parquet(path)


def _tz_parquet(path: Path) -> None:
    rows = [
        {**t(transmission_id="TZ1", patient="PT"), "measured_at": datetime(2025, 3, 30, 1, 30)},
        {**t(transmission_id="TZ2", patient="PT"), "measured_at": datetime(2025, 3, 30, 10)},
    ]
    frame = pl.DataFrame(rows).with_columns(
        pl.col("measured_at").dt.replace_time_zone("Europe/Paris")
    )
    frame.write_parquet(path)


def build_dirty(landing: Path) -> None:
    write_text(landing / A, jsonl(A_LINES))
    write_bytes(landing / B, (json.dumps(B_GOOD) + "\n").encode() + B_BAD + b"\n")
    write_text(landing / TXT, "not data\n")
    write_text(landing / C, csv_text(C_ROWS))
    data = gzip.compress(jsonl([t(transmission_id="GZ1")] * 50).encode())
    write_bytes(landing / GZ_BAD, data[: len(data) // 2])
    write_bytes(landing / D, jsonl(D_LINES).replace("\n", "\r\n").encode())
    write_bytes(landing / A_COPY, (landing / A).read_bytes())
    write_text(landing / H, jsonl(H_LINES)[:-1] + "\n" + H_CUT)  # no line end: still written
    (landing / NAIVE).parent.mkdir(parents=True, exist_ok=True)
    _naive_parquet(landing / NAIVE)
    _tz_parquet(landing / TZ)
    for path, exploitant in FORMATS.values():
        write_rows(landing / path, [{**r, "exploitant_id": exploitant} for r in FORMAT_ROWS])
    write_rows(
        landing / ENR,
        [
            enrollment("EN1", "P1", "2025-03-01"),
            enrollment("EN2", "P2", "soon"),
            enrollment("EN3", "P3", "2025-03-01", activity_code="TELEPATHY"),
        ],
    )
    write_rows(
        landing / RX,
        [
            prescription("RX1", "EN1", "2025-03-01", "2025-12-31"),
            prescription("RX2", "EN1", "2025-03-01", "2025-12-31", kind="forever"),
            prescription("RX3", "EN1", "2025-03-01", "later"),
        ],
    )


@pytest.fixture(scope="module")
def dirty(tmp_path_factory) -> tuple[Path, Path]:
    base = tmp_path_factory.mktemp("dirty")
    landing, warehouse = base / "landing", base / "warehouse.duckdb"
    build_dirty(landing)
    run_dirty(landing, warehouse)
    return landing, warehouse


@pytest.fixture(scope="module")
def quarantine(dirty) -> pl.DataFrame:
    return query(dirty[1], "SELECT * FROM ops.quarantine ORDER BY file_id, row_number")


def jline(row) -> str:
    return row if isinstance(row, str) else json.dumps(row)


# name: (file, row_number, reason, detail, text the raw_record must hold; JSONL: equals the line)
EXPECTED = {
    "broken_json": (A, 3, "malformed_record", "not a JSON object", jline(A_LINES[2])),
    "json_array": (A, 4, "malformed_record", "not a JSON object", jline(A_LINES[3])),
    "missing_patient": (A, 5, "missing_field", "patient_id", jline(A_LINES[4])),
    "empty_patient": (A, 6, "missing_field", "patient_id", jline(A_LINES[5])),
    "naive_measured_at": (A, 7, "timestamp_without_offset", "measured_at", jline(A_LINES[6])),
    "value_abc": (A, 8, "bad_type", "value", jline(A_LINES[7])),
    "distance_near": (A, 9, "bad_type", "distance_cm", jline(A_LINES[8])),
    "measured_yesterday": (A, 10, "bad_type", "measured_at", jline(A_LINES[9])),
    "unknown_activity": (A, 11, "unknown_activity", "TELEPATHY", jline(A_LINES[10])),
    "eye_xx": (A, 12, "invalid_eye", "XX", jline(A_LINES[11])),
    "eye_missing": (A, 13, "invalid_eye", "eye missing", jline(A_LINES[12])),
    "conflict_same_file": (A, 17, "conflicting_duplicate", CONFLICT, jline(A_LINES[16])),
    "naive_received_at": (A, 20, "timestamp_without_offset", "received_at", jline(A_LINES[19])),
    "measured_1970": (A, 21, "timestamp_out_of_range", "measured_at", jline(A_LINES[20])),
    "measured_2101": (A, 22, "future_timestamp", "measured_at", jline(A_LINES[21])),
    "measured_2100": (A, 23, "future_timestamp", "measured_at", jline(A_LINES[22])),
    "nul_in_id": (H, 1, "invalid_id", "transmission_id", jline(H_LINES[0])),
    "offset_99": (H, 2, "invalid_timestamp", "measured_at", jline(H_LINES[1])),
    "cut_last_line": (H, 3, "incomplete_record", "the last line has no line end", H_CUT),
    "invalid_utf8": (B, 2, "invalid_encoding", NOT_UTF8, '"transmission_id": "U8B"'),
    "csv_extra_column": (C, 2, "malformed_record", "wrong number of fields", "C2,EXP01"),
    "csv_empty_patient": (C, 4, "missing_field", "patient_id", "C4,EXP01,ODYSIGHT,,visual_acuity"),
    "conflict_other_file": (D, 2, "conflicting_duplicate", CONFLICT, jline(D_LINES[1])),
    "parquet_naive_1": (NAIVE, 1, "timestamp_without_offset", "measured_at", "2025-03-30 10:00"),
    "parquet_naive_2": (NAIVE, 2, "timestamp_without_offset", "measured_at", "2025-03-31 09:00"),
    # CSV rows are kept as the line sent
    "enrollment_bad_date": (ENR, 2, "bad_type", "start_date", "EN2,P2,ODYSIGHT,EXP01,OP01,soon,"),
    "enrollment_unknown_activity": (ENR, 3, "unknown_activity", "TELEPATHY", "EN3,P3,TELEPATHY,"),
    "prescription_kind": (RX, 2, "invalid_kind", "forever", "RX2,EN1,forever,"),
    "prescription_bad_until": (RX, 3, "bad_type", "valid_until", ",2025-03-01,later"),
}


@pytest.mark.parametrize("case", sorted(EXPECTED))
def test_quarantine_case(quarantine, case):
    path, row_number, reason, detail, text = EXPECTED[case]
    rows = quarantine.filter((pl.col("source_file") == path) & (pl.col("row_number") == row_number))
    assert rows.height == 1, rows
    row = rows.row(0, named=True)
    assert (row["reason"], row["detail"]) == (reason, detail)
    assert row["kind"] == path.split("/")[0]
    if path.endswith(".jsonl") and text.startswith("{") and case != "invalid_utf8":
        assert row["raw_record"] == text  # the line as sent (CRLF stripped), byte for byte
    elif text is not None:
        assert text in row["raw_record"]


def test_quarantine_holds_exactly_the_expected_rows(quarantine):
    got = sorted(
        quarantine.select("source_file", "row_number", "reason", "detail").iter_rows(), key=str
    )
    want = sorted(((p, n, r, d) for p, n, r, d, _ in EXPECTED.values()), key=str)
    assert got == want


def test_every_reason_code_is_exercised():
    """Here for the landing rows; the payer's answers have theirs in tests/test_ledger.py."""
    exercised = {reason for _, _, reason, _, _ in EXPECTED.values()} | set(PAYMENT_REASONS)
    assert exercised == set(contract.REASON_CODES)


def test_malformed_raw_records_keep_the_original_text(quarantine):
    def raw(path, n):
        rows = quarantine.filter((pl.col("source_file") == path) & (pl.col("row_number") == n))
        return rows["raw_record"].item()

    assert raw(A, 3) == '{"transmission_id": "BROKEN", "patient_id":'
    assert raw(A, 4) == '["M0", "EXP01", "ODYSIGHT"]'
    assert raw(C, 2) == ",".join(C_EXTRA)
    # a line that is not UTF-8 is kept as read in Latin-1 (every byte is a character there)
    assert raw(B, 2) == B_BAD.decode("latin-1")


def test_loaded_transmissions_per_file(dirty):
    got = query(
        dirty[1],
        "SELECT source_file, list(transmission_id ORDER BY transmission_id) AS ids "
        "FROM raw.transmissions GROUP BY ALL",
    )
    got = dict(got.rows())
    formats = {path: ["F1", "F2", "F3", "F4"] for path, _ in FORMATS.values()}
    assert got == {
        A: ["A1", "A2", "A3", "X1"],
        B: ["U8A"],
        C: ["C3"],
        D: ["D3"],
        TZ: ["TZ1", "TZ2"],
        **formats,
    }


def test_conflicting_duplicate_keeps_the_first(dirty):
    rows = query(
        dirty[1],
        "SELECT transmission_id, value, source_file, row_number FROM raw.transmissions "
        "WHERE transmission_id IN ('A2', 'A3') ORDER BY 1",
    )
    assert rows.rows() == [("A2", 0.5, A, 16), ("A3", 0.6, A, 18)]


def test_enrollments_and_prescriptions_loaded(dirty):
    assert query(dirty[1], "SELECT enrollment_id FROM raw.enrollments").rows() == [("EN1",)]
    assert query(dirty[1], "SELECT prescription_id FROM raw.prescriptions").rows() == [("RX1",)]


# -- reconciliation


def test_reconciliation_per_file(dirty):
    f = query(
        dirty[1],
        """
        SELECT f.file_id, f.path, f.rows_read, f.rows_loaded, f.rows_quarantined,
            f.duplicates_skipped,
            (SELECT count(*) FROM raw.transmissions r WHERE r.file_id = f.file_id)
            + (SELECT count(*) FROM raw.enrollments r WHERE r.file_id = f.file_id)
            + (SELECT count(*) FROM raw.prescriptions r WHERE r.file_id = f.file_id) AS raw_rows,
            (SELECT count(*) FROM ops.quarantine q WHERE q.file_id = f.file_id) AS q_rows,
            (SELECT count(*) FROM ops.quarantine q
             WHERE q.file_id = f.file_id AND q.source_file <> f.path) AS q_wrong_path
        FROM ops.ingested_files f
        """,
    )
    assert f.height == 16
    for row in f.iter_rows(named=True):
        assert row["rows_read"] == (
            row["rows_loaded"] + row["rows_quarantined"] + row["duplicates_skipped"]
        ), row
        assert row["rows_loaded"] == row["raw_rows"], row
        assert row["rows_quarantined"] == row["q_rows"], row
        assert row["q_wrong_path"] == 0, row
    # nothing in raw or quarantine points at a file that is not recorded
    orphans = query(
        dirty[1],
        "SELECT count(*) AS n FROM (SELECT file_id FROM raw.transmissions UNION ALL "
        "SELECT file_id FROM raw.enrollments UNION ALL SELECT file_id FROM raw.prescriptions "
        "UNION ALL SELECT file_id FROM ops.quarantine) WHERE file_id NOT IN "
        "(SELECT file_id FROM ops.ingested_files WHERE status = 'ingested')",
    )
    assert orphans["n"].item() == 0


def records_in(path: Path) -> int:
    """Records of a landing file counted independently of the pipeline (non-blank lines)."""
    name = path.name
    if name.endswith(".parquet"):
        return pq.ParquetFile(path).metadata.num_rows
    data = path.read_bytes()
    if name.endswith(".gz"):
        data = gzip.decompress(data)
    lines = [line for line in data.split(b"\n") if line.strip()]
    return len(lines) - 1 if ".csv" in name else len(lines)


def test_rows_read_equals_lines_of_the_files(dirty):
    landing, warehouse = dirty
    f = files(warehouse).filter(pl.col("status") == "ingested")
    for path, rows_read in f.select("path", "rows_read").iter_rows():
        assert rows_read == records_in(landing / path), path
    total = sum(records_in(landing / p) for p in f["path"])
    assert f["rows_read"].sum() == total == len(A_LINES) - 2 + 2 + 4 + 3 + 4 + 16 + 3 + 3 + 3


def test_counts_of_the_dirty_files(dirty):
    def counts(path):
        r = file_row(dirty[1], path)
        return (r["rows_read"], r["rows_loaded"], r["rows_quarantined"], r["duplicates_skipped"])

    assert counts(A) == (21, 4, 16, 1)
    assert counts(B) == (2, 1, 1, 0)
    assert counts(C) == (4, 1, 2, 1)
    assert counts(D) == (3, 1, 1, 1)
    assert counts(NAIVE) == (2, 0, 2, 0)
    assert counts(TZ) == (2, 2, 0, 0)
    assert counts(H) == (3, 0, 3, 0)


# -- duplicates


def test_exact_repeats_are_counted_not_loaded_nor_quarantined(dirty, quarantine):
    a1 = query(
        dirty[1],
        "SELECT source_file, row_number FROM raw.transmissions WHERE transmission_id = 'A1'",
    )
    assert a1.rows() == [(A, 1)]  # line 15 (same file) and d.jsonl line 1 (later file) skipped
    assert file_row(dirty[1], A)["duplicates_skipped"] == 1
    assert file_row(dirty[1], D)["duplicates_skipped"] == 1
    assert quarantine.filter(pl.col("raw_record").str.contains('"A1"')).height == 0


def test_same_transmission_jsonl_then_csv_is_a_duplicate(dirty, quarantine):
    x1 = query(dirty[1], "SELECT source_file FROM raw.transmissions WHERE transmission_id = 'X1'")
    assert x1.rows() == [(A,)]
    assert file_row(dirty[1], C)["duplicates_skipped"] == 1
    assert quarantine.filter(pl.col("raw_record").str.contains('"X1"')).height == 0


def test_same_transmission_id_of_another_exploitant_is_no_duplicate(dirty):
    f1 = query(dirty[1], "SELECT exploitant_id FROM raw.transmissions WHERE transmission_id='F1'")
    assert sorted(f1["exploitant_id"]) == sorted(e for _, e in FORMATS.values())


# -- formats


def test_formats_load_identically(dirty):
    frames = {}
    for fmt, (path, exploitant) in FORMATS.items():
        frames[fmt] = query(
            dirty[1],
            "SELECT * EXCLUDE (source_file, file_id, row_number, exploitant_id, key_hash) "
            "FROM raw.transmissions WHERE exploitant_id = ? ORDER BY transmission_id",
            [exploitant],
        )
        r = file_row(dirty[1], path)
        assert (r["status"], r["rows_read"], r["rows_loaded"]) == ("ingested", 4, 4), fmt
    assert frames["jsonl"].height == len(FORMAT_ROWS)
    for fmt in ("jsonl.gz", "csv", "parquet"):
        assert_frames(frames[fmt], frames["jsonl"], fmt)
    # and what they all load is right
    f = frames["jsonl"].rows_by_key("transmission_id", named=True, unique=True)
    assert f["F1"]["measured_at"] == datetime(2025, 3, 3, 8, 15, tzinfo=UTC)
    assert f["F1"]["received_at"] == datetime(2025, 3, 3, 8, 20, tzinfo=UTC)
    assert (f["F1"]["value"], f["F1"]["unit"]) == (0.35, "logMAR")
    assert (f["F1"]["distance_cm"], f["F1"]["ambient_lux"]) == (40.5, 310.0)
    assert f["F2"]["received_at"] == datetime(2025, 3, 3, 8, 21, tzinfo=UTC)
    assert (f["F3"]["eye"], f["F3"]["measure_type"]) == ("OS", "amsler_grid")
    assert (f["F4"]["eye"], f["F4"]["activity_code"], f["F4"]["value"]) == (
        None,
        "HEART_FAILURE",
        72.4,
    )


def test_parquet_with_time_zone_loads_the_right_instant(dirty):
    rows = query(
        dirty[1],
        "SELECT transmission_id, measured_at FROM raw.transmissions WHERE source_file = ? "
        "ORDER BY 1",
        [TZ],
    )
    # Paris: 01:30 on 2025-03-30 is still winter time (+01), 10:00 is summer time (+02)
    assert rows.rows() == [
        ("TZ1", datetime(2025, 3, 30, 0, 30, tzinfo=UTC)),
        ("TZ2", datetime(2025, 3, 30, 8, 0, tzinfo=UTC)),
    ]


# -- files


def test_unsupported_file_is_recorded(dirty):
    r = file_row(dirty[1], TXT)
    assert (r["status"], r["skip_reason"], r["format"], r["rows_read"]) == (
        "skipped",
        "unsupported",
        None,
        0,
    )
    assert r["error"] == "a file type the pipeline does not read"


def test_corrupt_gzip_is_unreadable_and_the_run_goes_on(dirty):
    r = file_row(dirty[1], GZ_BAD)
    assert r["status"] == "unreadable"
    assert r["error"].startswith(("EOFError", "BadGzipFile", "OSError")), r["error"]
    assert (r["rows_read"], r["rows_loaded"], r["rows_quarantined"]) == (0, 0, 0)
    assert file_row(dirty[1], D)["rows_loaded"] == 1  # a later file of the same batch loaded


def test_identical_copy_is_same_content(dirty):
    original, copy = file_row(dirty[1], A), file_row(dirty[1], A_COPY)
    assert copy["status"] == "same_content"
    assert copy["content_hash"] == original["content_hash"]
    assert copy["same_content_as"] == original["file_id"]
    assert (copy["rows_read"], copy["rows_loaded"], copy["rows_quarantined"]) == (0, 0, 0)
    assert copy["duplicates_skipped"] == 0
    n = query(dirty[1], "SELECT count(*) AS n FROM ops.quarantine WHERE source_file = ?", [A_COPY])
    assert n["n"].item() == 0


def test_ingested_files_statuses(dirty):
    f = files(dirty[1])
    statuses = dict(zip(f["path"], f["status"], strict=True))
    assert statuses.pop(TXT) == "skipped"
    assert statuses.pop(GZ_BAD) == "unreadable"
    assert statuses.pop(A_COPY) == "same_content"
    assert set(statuses.values()) == {"ingested"}
    assert f["file_id"].to_list() == list(range(1, f.height + 1))


# -- idempotency


def test_second_run_changes_nothing(dirty, tmp_path):
    landing, warehouse = dirty
    before = snapshot(warehouse, drop=())
    again = copy_warehouse(warehouse, tmp_path / "again.duckdb")
    run_dirty(landing, again)
    after = snapshot(again, drop=())
    assert "marts.patient_periods" in before and before["marts.patient_periods"].height > 0
    assert before["ops.ingested_files"].height == after["ops.ingested_files"].height
    assert_same(before, after)


# ---------------------------------------------------------------------------------------------
# files re-sent over two runs; enrollment versions

T1 = "transmissions/2025-04-01/t1.jsonl"
T1_COPY = "transmissions/2025-04-02/t1_copy.jsonl"
T2 = "transmissions/2025-04-02/t2.jsonl"
ENR1 = "enrollments/2025-04-01/enrollments.csv"
ENR2 = "enrollments/2025-04-02/enrollments.csv"
ENR3 = "enrollments/2025-04-03/enrollments.csv"
RX1 = "prescriptions/2025-04-01/prescriptions.csv"
R1 = t("2025-04-01 10:00", transmission_id="R1")
R2 = t("2025-04-01 10:00", transmission_id="R2", eye="OS")
R3 = t("2025-04-02 10:00", transmission_id="R3")
R4 = t("2025-04-03 10:00", transmission_id="R4")
E1 = enrollment("E1", "P1", "2025-04-01")
E1_ENDED = enrollment("E1", "P1", "2025-04-01", end_date="2025-05-10", end_reason="stopped")
E2 = enrollment("E2", "P2", "2025-04-01")
E3 = enrollment("E3", "P3", "2025-04-01")
E3_ENDED = enrollment("E3", "P3", "2025-04-01", end_date="2025-04-20", end_reason="stopped")


@pytest.fixture(scope="module")
def resent(tmp_path_factory) -> dict:
    base = tmp_path_factory.mktemp("resent")
    landing, warehouse = base / "landing", base / "warehouse.duckdb"
    write_text(landing / T1, jsonl([R1, R2]))
    write_rows(landing / ENR1, [E1, E2, E3])
    write_rows(landing / RX1, [prescription("RXE1", "E1", "2025-04-01", "2026-03-31")])
    run(landing, warehouse, AS_OF)
    first = files(warehouse)
    # second arrival: a copy, a later file, the same path with new content, enrollment versions
    write_bytes(landing / T1_COPY, (landing / T1).read_bytes())
    write_text(landing / T2, jsonl([R1, R3]))
    # the same path rewritten with the same size and its old modification time restored (as a
    # copy tool preserving times would): still read again
    old = (landing / T1).stat()
    write_text(landing / T1, jsonl([R1, R4]))
    os.utime(landing / T1, ns=(old.st_atime_ns, old.st_mtime_ns))
    assert (landing / T1).stat().st_size == old.st_size
    write_rows(landing / ENR2, [E1_ENDED, E2, E3_ENDED])
    write_rows(landing / ENR3, [E3])  # the end date of E3 was a mistake: ongoing again
    run(landing, warehouse, AS_OF)
    return {
        "landing": landing,
        "warehouse": warehouse,
        "first": first,
        "second": files(warehouse),
    }


def test_first_run_of_resent(resent):
    first = resent["first"]
    assert sorted(first["path"]) == sorted([T1, ENR1, RX1])
    assert set(first["status"]) == {"ingested"}


def test_already_ingested_files_are_skipped(resent):
    first, second = resent["first"], resent["second"]
    # the untouched files of the first run got no new row; five new files were recorded
    assert_frame_equal(second.filter(pl.col("file_id") <= first.height), first)
    assert sorted(second["path"][first.height :]) == sorted([T1, T1_COPY, T2, ENR2, ENR3])
    assert second.filter(pl.col("path") == ENR1).height == 1
    assert second.filter(pl.col("path") == RX1).height == 1


def test_same_path_with_new_content_is_ingested_as_new(resent):
    versions = resent["second"].filter(pl.col("path") == T1).sort("file_id")
    assert versions["status"].to_list() == ["ingested", "ingested"]
    assert versions["content_hash"].n_unique() == 2
    new = versions.row(1, named=True)
    assert (new["rows_read"], new["rows_loaded"], new["duplicates_skipped"]) == (2, 1, 1)
    rows = query(
        resent["warehouse"],
        "SELECT transmission_id, file_id FROM raw.transmissions ORDER BY 1",
    )
    assert rows.rows() == [
        ("R1", versions["file_id"][0]),
        ("R2", versions["file_id"][0]),
        ("R3", file_row(resent["warehouse"], T2)["file_id"]),
        ("R4", new["file_id"]),
    ]


def test_copy_under_another_path_is_same_content(resent):
    first_t1 = resent["first"].filter(pl.col("path") == T1).row(0, named=True)
    copy = file_row(resent["warehouse"], T1_COPY)
    assert copy["status"] == "same_content"
    assert copy["same_content_as"] == first_t1["file_id"]
    assert copy["content_hash"] == first_t1["content_hash"]
    assert (copy["rows_read"], copy["rows_loaded"], copy["duplicates_skipped"]) == (0, 0, 0)


def test_a_resent_copy_is_hashed_but_not_parsed(tmp_path, monkeypatch):
    """Bytes already ingested by an earlier run: recorded same_content without splitting the
    file into lines (exploitants re-send whole days)."""
    landing, warehouse = tmp_path / "landing", tmp_path / "w.duckdb"
    text = jsonl([t(transmission_id=f"K{i}") for i in range(5)])
    write_text(landing / "transmissions/d1/a.jsonl", text)
    ingest_direct(landing, warehouse, kinds=["transmissions"])
    write_text(landing / "transmissions/d2/a.jsonl", text)
    write_text(landing / "transmissions/d2/b.jsonl", jsonl([t(transmission_id="K9")]))
    parsed = []
    split = ingest_module._jsonl_lines

    def counting(data, source_file):
        parsed.append(source_file)
        return split(data, source_file)

    monkeypatch.setattr(ingest_module, "_jsonl_lines", counting)
    ingest_direct(landing, warehouse, kinds=["transmissions"])

    assert parsed == ["transmissions/d2/b.jsonl"]
    copy = file_row(warehouse, "transmissions/d2/a.jsonl")
    assert (copy["status"], copy["rows_read"]) == ("same_content", 0)
    assert file_row(warehouse, "transmissions/d2/b.jsonl")["rows_loaded"] == 1


def test_exact_repeat_in_a_later_run_is_a_duplicate(resent):
    t2 = file_row(resent["warehouse"], T2)
    assert (t2["rows_read"], t2["rows_loaded"], t2["rows_quarantined"]) == (2, 1, 0)
    assert t2["duplicates_skipped"] == 1
    n = query(resent["warehouse"], "SELECT count(*) AS n FROM ops.quarantine")
    assert n["n"].item() == 0


def test_enrollment_versions(resent):
    wh = resent["warehouse"]
    raw = query(
        wh,
        "SELECT enrollment_id, end_date, end_reason, source_file FROM raw.enrollments "
        "WHERE enrollment_id IN ('E1', 'E2') ORDER BY enrollment_id, file_id",
    )
    assert raw.rows() == [
        ("E1", None, None, ENR1),
        ("E1", date(2025, 5, 10), "stopped", ENR2),
        ("E2", None, None, ENR1),  # re-sent unchanged: a duplicate, not a version
    ]
    staged = query(
        wh,
        "SELECT enrollment_id, end_date, end_reason FROM staging.enrollments "
        "WHERE enrollment_id IN ('E1', 'E2') ORDER BY 1",
    )
    assert staged.rows() == [("E1", date(2025, 5, 10), "stopped"), ("E2", None, None)]
    enr2 = file_row(wh, ENR2)
    assert (enr2["rows_read"], enr2["rows_loaded"], enr2["duplicates_skipped"]) == (3, 2, 1)
    assert enr2["rows_quarantined"] == 0


def test_enrollment_reverted_to_an_older_version_is_the_latest(resent):
    staged = query(
        resent["warehouse"],
        "SELECT end_date, end_reason FROM staging.enrollments WHERE enrollment_id = 'E3'",
    )
    assert staged.rows() == [(None, None)]


# ---------------------------------------------------------------------------------------------
# bad rows never stop a run


@pytest.fixture(scope="module")
def all_bad(tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("all_bad")
    landing, warehouse = base / "landing", base / "warehouse.duckdb"
    write_text(
        landing / "transmissions/bad.jsonl",
        jsonl(
            [
                "{not json",
                {**t(transmission_id="B1"), "measured_at": "2025-04-02T10:00:00"},
                t(transmission_id="B2", activity_code="NOPE"),
                t(transmission_id="B3", eye="LEFT"),
            ]
        ),
    )
    write_text(landing / "transmissions/bad.csv", csv_text([["x", "y"], ["1", "2", "3"]]))
    write_rows(landing / "enrollments/e.csv", [enrollment("E1", "P1", "2025-04-01")])
    write_rows(
        landing / "prescriptions/p.csv", [prescription("RX", "E1", "2025-04-01", "2026-03-31")]
    )
    run_dirty(landing, warehouse)
    return warehouse


def test_all_transmissions_bad_still_loads_enrollments(all_bad):
    assert query(all_bad, "SELECT count(*) AS n FROM raw.transmissions")["n"].item() == 0
    q = query(all_bad, "SELECT reason, count(*) AS n FROM ops.quarantine GROUP BY 1 ORDER BY 1")
    assert q.rows() == [
        ("invalid_eye", 1),
        ("malformed_record", 3),
        ("timestamp_without_offset", 1),
        ("unknown_activity", 1),
    ]
    assert query(all_bad, "SELECT enrollment_id FROM raw.enrollments").rows() == [("E1",)]
    assert query(all_bad, "SELECT enrollment_id FROM staging.enrollments").rows() == [("E1",)]
    periods = query(all_bad, "SELECT * FROM marts.patient_periods WHERE enrollment_id = 'E1'")
    assert periods.height > 0
    assert set(periods["valid_units"]) == {0}


# ---------------------------------------------------------------------------------------------
# atomic loads


def small_landing(landing: Path) -> None:
    write_text(landing / "transmissions/d1/a.jsonl", jsonl([A1, A2, "{oops", A1]))
    write_text(landing / "transmissions/d2/b.csv", csv_text([A3, {**A2, "value": 0.1}, X1]))
    write_text(landing / "transmissions/d3/c.jsonl", jsonl([A1, R3, "", R4]))
    write_rows(landing / "enrollments/e.csv", [enrollment("EN1", "P1", "2025-03-01")])
    write_rows(
        landing / "prescriptions/p.csv", [prescription("RX1", "EN1", "2025-03-01", "2025-12-31")]
    )


@pytest.fixture(scope="module")
def clean(tmp_path_factory) -> tuple[Path, Path]:
    """A landing and the warehouse of one clean run over it."""
    base = tmp_path_factory.mktemp("clean")
    landing, warehouse = base / "landing", base / "clean.duckdb"
    small_landing(landing)
    run_dirty(landing, warehouse)
    return landing, warehouse


def test_crash_in_a_batch_leaves_nothing_and_rerun_equals_clean(clean, tmp_path, monkeypatch):
    landing, clean_wh = clean
    crashed = tmp_path / "crashed.duckdb"
    real = ingest_module._template

    def crashing(name: str, kind: str, **names: str) -> str:
        text = real(name, kind, **names)
        if name == "ingest/record" and kind == "transmissions":
            # crash once raw, quarantine and ingested_files have been written in the transaction
            text += (
                "\nSELECT CASE WHEN (SELECT count(*) FROM raw.transmissions) > 0 "
                "AND (SELECT max(rows_read) FROM ops.ingested_files) > 0 "
                "THEN error('simulated crash') END;"
            )
        return text

    monkeypatch.setattr(ingest_module, "_template", crashing)
    with writer(crashed) as con:
        migrate(con)
        load_reference(con)
        with pytest.raises(duckdb.Error, match="simulated crash"):
            ingest_module.ingest(con, landing)
    monkeypatch.undo()
    for table in ("raw.transmissions", "ops.ingested_files", "ops.quarantine"):
        assert query(crashed, f"SELECT count(*) AS n FROM {table}")["n"].item() == 0, table
    run_dirty(landing, crashed)
    assert_same(snapshot(crashed), snapshot(clean_wh))


class Killed(BaseException):
    """Stands for the process being stopped (not an ordinary error)."""


def test_kill_during_second_batch_keeps_the_first_and_rerun_completes(clean, tmp_path):
    landing = clean[0]
    sizes = [p.stat().st_size for p in (landing / "transmissions").rglob("*") if p.is_file()]
    batch_bytes = max(sizes)  # one file per batch
    reference = tmp_path / "reference.duckdb"
    summary = ingest_direct(landing, reference, kinds=["transmissions"], batch_bytes=batch_bytes)
    assert summary.kinds["transmissions"].files_new == 3

    crashed = tmp_path / "crashed.duckdb"
    calls = []
    real = ingest_module._record_batch

    def killed_in_second_batch(con, kind, records, summary, arrival):
        calls.extend(r.file.relpath for r in records)
        real(con, kind, records, summary, arrival)  # every write of the batch is done...
        if len(calls) == 2:
            raise Killed(calls[-1])  # ...and the process dies before the commit

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(ingest_module, "_record_batch", killed_in_second_batch)
        with pytest.raises(Killed):
            ingest_direct(landing, crashed, kinds=["transmissions"], batch_bytes=batch_bytes)
    assert calls == ["transmissions/d1/a.jsonl", "transmissions/d2/b.csv"]
    kept = files(crashed)
    assert kept["path"].to_list() == ["transmissions/d1/a.jsonl"]
    sources = query(crashed, "SELECT DISTINCT source_file FROM raw.transmissions")
    assert sources["source_file"].to_list() == ["transmissions/d1/a.jsonl"]
    q = query(crashed, "SELECT DISTINCT source_file FROM ops.quarantine")
    assert q["source_file"].to_list() == ["transmissions/d1/a.jsonl"]
    # the second batch's part was written whole, but never committed: not in the view above,
    # and deleted by the next run (listed: the first batch's and the empty part of the new
    # warehouse, which carries the dataset's column types)
    orphans = lake_files(crashed) - listed_parts(crashed)
    assert len(listed_parts(crashed)) == 2 and len(orphans) == 1

    ingest_direct(landing, crashed, kinds=["transmissions"], batch_bytes=batch_bytes)
    assert lake_files(crashed) == listed_parts(crashed) and len(listed_parts(crashed)) == 4
    names = ["raw.transmissions", "ops.ingested_files", "ops.quarantine"]
    want = snapshot(reference, names)
    assert want["raw.transmissions"].height == 6  # A1 A2 | A3 X1 | R3 R4
    assert_same(snapshot(crashed, names), want)


# ---------------------------------------------------------------------------------------------
# record numbers and reader details


def test_csv_record_numbers_skip_header_and_blank_lines_and_span_quoted_newlines(tmp_path):
    landing, warehouse = tmp_path / "landing", tmp_path / "w.duckdb"
    text = csv_text(
        [
            t(transmission_id="Q1"),
            C_EXTRA,  # record 2
            t(transmission_id="Q3", unit="two\nlines"),  # record 3 spans two lines
            t(patient="", transmission_id="Q4"),  # record 4
        ]
    )
    lines = text.split("\n")
    text = "\n".join(lines[:3] + [""] + lines[3:])  # a blank line before record 3
    text += ",".join(["Q5", *C_EXTRA[1:]]) + "\n"  # record 5, malformed
    write_text(landing / "transmissions/q.csv", text)
    ingest_direct(landing, warehouse, kinds=["transmissions"])
    q = query(warehouse, "SELECT row_number, reason FROM ops.quarantine ORDER BY 1")
    assert q.rows() == [(2, "malformed_record"), (4, "missing_field"), (5, "malformed_record")]
    raw = query(
        warehouse, "SELECT transmission_id, row_number, unit FROM raw.transmissions ORDER BY 2"
    )
    assert raw.rows() == [("Q1", 1, None), ("Q3", 3, "two\nlines")]


def test_csv_gz_and_ndjson_are_read(tmp_path):
    landing, warehouse = tmp_path / "landing", tmp_path / "w.duckdb"
    data = gzip.compress(csv_text([t(transmission_id="G1")]).encode())
    write_bytes(landing / "transmissions/a.csv.gz", data)
    write_text(landing / "transmissions/b.ndjson", jsonl([t(transmission_id="N1")]))
    ingest_direct(landing, warehouse, kinds=["transmissions"])
    rows = query(warehouse, "SELECT transmission_id FROM raw.transmissions ORDER BY 1")
    assert rows.rows() == [("G1",), ("N1",)]


def test_corrupt_parquet_is_unreadable_and_the_run_goes_on(tmp_path):
    landing, warehouse = tmp_path / "landing", tmp_path / "w.duckdb"
    write_text(landing / "transmissions/a.jsonl", jsonl([t(transmission_id="OK1")]))
    write_text(landing / "transmissions/b.parquet", "this is not parquet\n")
    write_rows(landing / "enrollments/e.csv", [enrollment("EN1", "P1", "2025-03-01")])
    run(landing, warehouse, AS_OF)
    assert file_row(warehouse, "transmissions/b.parquet")["status"] == "unreadable"
    assert file_row(warehouse, "transmissions/b.parquet")["error"]
    ids = query(warehouse, "SELECT transmission_id FROM raw.transmissions")
    assert ids.rows() == [("OK1",)]


def test_parquet_with_damaged_pages_is_unreadable_and_its_batch_is_loaded(tmp_path):
    """A readable footer but damaged data pages: the batch's one-pass scan fails mid-way; the
    files are then read one by one, the damaged one recorded unreadable, the others loaded."""
    landing, warehouse = tmp_path / "landing", tmp_path / "w.duckdb"
    write_text(landing / "transmissions/a.jsonl", jsonl([t(transmission_id="J1")]))
    good = pl.DataFrame([t(transmission_id=f"G{i}") for i in range(50)])
    good.write_parquet(landing / "transmissions/b.parquet")
    damaged = landing / "transmissions/c.parquet"
    pl.DataFrame([t(transmission_id=f"D{i}") for i in range(50)]).write_parquet(
        damaged, compression="zstd"
    )
    data = bytearray(damaged.read_bytes())
    footer = int.from_bytes(data[-8:-4], "little")
    data[4 : len(data) - 8 - footer] = b"Z" * (len(data) - 12 - footer)  # every page
    damaged.write_bytes(bytes(data))
    assert duckdb.sql(f"DESCRIBE SELECT * FROM '{damaged}'").fetchall()  # the footer reads

    ingest_direct(landing, warehouse, kinds=["transmissions"])

    files = query(warehouse, "SELECT path, status, rows_read, rows_loaded FROM ops.ingested_files")
    by_path = {row[0]: row[1:] for row in files.rows()}
    assert by_path["transmissions/c.parquet"][0] == "unreadable"
    assert by_path["transmissions/a.jsonl"] == ("ingested", 1, 1)
    assert by_path["transmissions/b.parquet"] == ("ingested", 50, 50)
    loaded = query(warehouse, "SELECT count(*) AS n FROM raw.transmissions")
    assert loaded["n"].item() == 51


def test_a_file_that_failed_to_read_is_tried_again_by_the_next_run(tmp_path, monkeypatch):
    """An I/O error while reading the bytes is recorded (no hash) and does not stop the run; the
    next run reads the file again. A damaged file, read but not parsed, is not retried."""
    landing, warehouse = tmp_path / "landing", tmp_path / "w.duckdb"
    write_text(landing / "transmissions/a.jsonl", jsonl([t(transmission_id="A1")]))
    flaky = write_text(landing / "transmissions/b.jsonl", jsonl([t(transmission_id="B1")]))
    write_bytes(landing / "transmissions/c.jsonl.gz", b"not gzip at all")
    read_bytes = ingest_module.read_bytes

    def failing_once(f):
        if f.path == flaky:
            raise OSError(errno.EIO, "Input/output error")
        return read_bytes(f)

    monkeypatch.setattr(ingest_module, "read_bytes", failing_once)
    ingest_direct(landing, warehouse, kinds=["transmissions"])
    row = file_row(warehouse, "transmissions/b.jsonl")
    assert (row["status"], row["content_hash"]) == ("unreadable", None)
    assert "Input/output error" in row["error"]

    monkeypatch.setattr(ingest_module, "read_bytes", read_bytes)
    summary = ingest_direct(landing, warehouse, kinds=["transmissions"])
    assert summary.kinds["transmissions"].files_new == 1  # b only: c is damaged, not retried
    statuses = query(
        warehouse,
        "SELECT path, status FROM ops.ingested_files WHERE path LIKE '%b.jsonl' ORDER BY file_id",
    )
    assert statuses["status"].to_list() == ["unreadable", "ingested"]
    ids = query(warehouse, "SELECT transmission_id FROM raw.transmissions ORDER BY 1")
    assert ids["transmission_id"].to_list() == ["A1", "B1"]


def test_json_lines_edges_of_the_object_test_and_the_line_ends(tmp_path):
    """An object preceded by blanks or a tab is a record; blank lines are not records but keep
    their line numbers; a rejected CRLF line is kept without its line end."""
    landing, warehouse = tmp_path / "landing", tmp_path / "w.duckdb"
    lines = [
        "  " + json.dumps(t(transmission_id="S1")),
        "\t" + json.dumps(t(transmission_id="S2")),
        "   ",
        "",
        json.dumps(t(transmission_id="S5", patient="")),  # missing patient_id
        json.dumps(t(transmission_id="S6")),
    ]
    write_bytes(landing / "transmissions/s.jsonl", ("\r\n".join(lines) + "\r\n").encode())

    ingest_direct(landing, warehouse, kinds=["transmissions"])

    loaded = query(warehouse, "SELECT transmission_id, row_number FROM raw.transmissions")
    assert sorted(loaded.rows()) == [("S1", 1), ("S2", 2), ("S6", 6)]
    bad = query(warehouse, "SELECT row_number, reason, raw_record FROM ops.quarantine")
    assert bad.rows() == [(5, "missing_field", lines[4])]
    assert file_row(warehouse, "transmissions/s.jsonl")["rows_read"] == 4


def test_gzip_with_a_damaged_stream_is_unreadable_and_the_batch_is_loaded(tmp_path):
    """Bytes flipped inside the deflate stream (not a truncation): zlib's own error is a read
    error like the others."""
    landing, warehouse = tmp_path / "landing", tmp_path / "w.duckdb"
    write_text(landing / "transmissions/a.jsonl", jsonl([t(transmission_id="J1")]))
    text = jsonl([t(transmission_id=f"Z{i}", patient=f"P{i}") for i in range(400)]).encode()
    data = bytearray(gzip.compress(text))
    data[20:60] = bytes(range(40))
    write_bytes(landing / "transmissions/b.jsonl.gz", bytes(data))

    ingest_direct(landing, warehouse, kinds=["transmissions"])

    assert file_row(warehouse, "transmissions/b.jsonl.gz")["status"] == "unreadable"
    assert file_row(warehouse, "transmissions/a.jsonl")["rows_loaded"] == 1


def test_a_file_gone_before_it_is_read_is_unreadable_and_the_run_goes_on(tmp_path, monkeypatch):
    """Listed, then removed before the batch reads it (files are read one batch ahead)."""
    landing, warehouse = tmp_path / "landing", tmp_path / "w.duckdb"
    write_text(landing / "transmissions/a.jsonl", jsonl([t(transmission_id="J1")]))
    gone = write_text(landing / "transmissions/b.jsonl", jsonl([t(transmission_id="J2")]))
    listed = ingest_module.survey

    def survey_then_remove(root, quiet_seconds):
        found = listed(root, quiet_seconds)
        gone.unlink(missing_ok=True)
        return found

    monkeypatch.setattr(ingest_module, "survey", survey_then_remove)
    ingest_direct(landing, warehouse, kinds=["transmissions"])

    row = file_row(warehouse, "transmissions/b.jsonl")
    assert (row["status"], row["content_hash"]) == ("unreadable", None)
    assert "FileNotFoundError" in row["error"]
    assert file_row(warehouse, "transmissions/a.jsonl")["rows_loaded"] == 1


def test_csv_keeps_texts_that_look_like_null(tmp_path):
    landing, warehouse = tmp_path / "landing", tmp_path / "w.duckdb"
    rows = [
        t(transmission_id="K1", value="NaN"),  # not a finite number: bad_type
        t(patient="NA", transmission_id="K2"),  # a patient id, not a missing one
        t(transmission_id="K3", unit="null"),
    ]
    write_text(landing / "transmissions/a.jsonl", jsonl(rows))
    write_text(
        landing / "transmissions/b.csv", csv_text([{**r, "exploitant_id": "EXP02"} for r in rows])
    )
    ingest_direct(landing, warehouse, kinds=["transmissions"])
    by_file = query(
        warehouse,
        "SELECT source_file, list(row_number || ':' || reason ORDER BY row_number) AS q "
        "FROM ops.quarantine GROUP BY 1 ORDER BY 1",
    )
    assert by_file["q"].to_list() == [["1:bad_type"], ["1:bad_type"]]
    loaded = query(
        warehouse,
        "SELECT transmission_id, patient_id, unit FROM raw.transmissions ORDER BY ALL",
    )
    assert loaded.rows() == [("K2", "NA", None)] * 2 + [("K3", "P1", "null")] * 2
