"""R7b: which version of an enrollment or prescription is in force. By recorded_at when sent,
else by arrival (files by modification time, then path; rows in file order); never by the path
alone: a root file and a dated sub-folder give the same answer."""

from __future__ import annotations

import os

import pytest

from tests.helpers import enrollment, prescription, query, run, write_rows

START = "2025-01-01"
AS_OF = "2025-04-15"
# the first version, then a death recorded on Feb 10 (period 2): periods 3 and 4 go away
FIRST = enrollment("E1", "P1", START, recorded_at="2025-01-01T09:00:00+01:00")
DEATH = enrollment(
    "E1",
    "P1",
    START,
    end_date="2025-02-10",
    end_reason="deceased",
    recorded_at="2025-02-11T08:30:00+01:00",
)
RX = prescription("R1", "E1", START, "2025-12-31")


def landing(root, first_path: str, second_path: str, first=FIRST, second=DEATH, mtimes=None):
    write_rows(root / "enrollments" / first_path, [first])
    write_rows(root / "enrollments" / second_path, [second])
    write_rows(root / "prescriptions" / "p.csv", [RX])
    if mtimes:  # arrival order by modification time (seconds since the epoch)
        for path, mtime in zip((first_path, second_path), mtimes, strict=True):
            os.utime(root / "enrollments" / path, (mtime, mtime))
    return root


def decided(tmp_path, name: str, root) -> list[tuple]:
    warehouse = tmp_path / f"{name}.duckdb"
    run(root, warehouse, AS_OF)
    return query(
        warehouse,
        "SELECT period_index, block_reason, end_date FROM marts.patient_periods "
        "ORDER BY period_index",
    ).rows()


@pytest.mark.parametrize("older_first", [True, False])
def test_recorded_at_decides_wherever_the_files_are(tmp_path, older_first):
    """The death (recorded later) is in force whether it sits at the root or in a dated
    sub-folder, and whichever file arrived last."""
    mtimes = (1_000, 2_000) if older_first else (2_000, 1_000)
    at_root = landing(tmp_path / "a", "e.csv", "2025-02-11/e.csv", mtimes=mtimes)
    in_folder = landing(tmp_path / "b", "2025-02-11/e.csv", "e.csv", mtimes=mtimes)
    assert decided(tmp_path, "a", at_root) == decided(tmp_path, "b", in_folder)
    periods = decided(tmp_path, "c", at_root)
    assert [p[0] for p in periods] == [1, 2]  # ended by the death on Feb 10


def test_without_recorded_at_the_later_arrival_wins(tmp_path):
    """No recorded_at: the file modified last is the later version, even when its path sorts
    first (a root file vs a dated sub-folder)."""
    first = {k: v for k, v in FIRST.items() if k != "recorded_at"}
    death = {k: v for k, v in DEATH.items() if k != "recorded_at"}
    # the death sits in the folder that sorts first but arrived first: the open version, at the
    # root, arrived later and wins
    root = landing(tmp_path / "l", "e.csv", "2025-02-11/e.csv", first, death, (2_000, 1_000))
    assert [p[0] for p in decided(tmp_path, "w", root)] == [1, 2, 3, 4]
    # the other way round: the death arrived later and ends the enrollment
    root = landing(tmp_path / "m", "e.csv", "2025-02-11/e.csv", first, death, (1_000, 2_000))
    assert [p[0] for p in decided(tmp_path, "x", root)] == [1, 2]


def test_same_recorded_at_with_other_content_is_ambiguous(tmp_path):
    """Two versions recorded at the same time: the later-ingested one is in force and a finding
    says so."""
    death = dict(DEATH, recorded_at=FIRST["recorded_at"])
    root = landing(tmp_path / "l", "e.csv", "later/e.csv", FIRST, death, (1_000, 2_000))
    warehouse = tmp_path / "w.duckdb"
    run(root, warehouse, AS_OF)
    findings = query(warehouse, "SELECT kind, entity_id FROM marts.data_quality_findings")
    assert ("ambiguous_version", "E1") in findings.rows()
    periods = query(warehouse, "SELECT count(*) AS n FROM marts.patient_periods")
    assert periods["n"][0] == 2  # the later-ingested version (the death)


def test_a_naive_recorded_at_is_quarantined(tmp_path):
    naive = dict(DEATH, recorded_at="2025-02-11T08:30:00")
    root = landing(tmp_path / "l", "e.csv", "later/e.csv", FIRST, naive, (1_000, 2_000))
    warehouse = tmp_path / "w.duckdb"
    run(root, warehouse, AS_OF)
    reasons = query(warehouse, "SELECT reason, detail FROM ops.quarantine")
    assert reasons.rows() == [("timestamp_without_offset", "recorded_at")]
