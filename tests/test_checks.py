"""The check functions behind the asset checks, on a clean warehouse and broken copies of it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from pipelines import checks
from pipelines.warehouse import copy_warehouse, reader, writer
from tests.helpers import enrollment, prescription, run, tx, write_rows


@pytest.fixture(scope="module")
def clean(tmp_path_factory):
    landing = tmp_path_factory.mktemp("landing")
    write_rows(landing / "enrollments" / "e.csv", [enrollment("E1", "P1", "2025-01-01")])
    write_rows(
        landing / "prescriptions" / "p.csv", [prescription("R1", "E1", "2025-01-01", "2025-12-31")]
    )
    rows = [tx("P1", f"2025-01-{d:02d} 09:00", eye=e) for d in (2, 9, 16) for e in ("OD", "OS")]
    rows += [tx("P1", f"2025-02-{d:02d} 09:00", eye=e) for d in (2, 9, 16) for e in ("OD", "OS")]
    rows.append({"transmission_id": "BAD"})  # one quarantined row of 13
    write_rows(landing / "transmissions" / "t.jsonl", rows)
    path = tmp_path_factory.mktemp("wh") / "warehouse.duckdb"
    run(landing, path, "2025-03-15")
    return path


@pytest.fixture
def broken(clean, tmp_path):
    """A writable copy of the clean warehouse, to break."""
    path = tmp_path / "copy.duckdb"
    copy_warehouse(clean, path, link=True)
    with writer(path) as con:
        yield con


@pytest.fixture
def ok(clean):
    with reader(clean) as con:
        yield con


def test_clean_warehouse_passes(ok):
    for kind in ("transmissions", "enrollments", "prescriptions"):
        assert checks.reconciliation(ok, kind).passed
    assert checks.periods_decided(ok).passed
    assert checks.lines_paired(ok).passed
    assert checks.file_active_consistent(ok).passed
    assert checks.landing_freshness(ok).passed


def test_reconciliation_fails_on_a_file_that_does_not_balance(broken):
    broken.execute(
        "UPDATE ops.ingested_files SET rows_read = rows_read + 1 WHERE kind = 'transmissions'"
    )
    outcome = checks.reconciliation(broken, "transmissions")
    assert not outcome.passed and outcome.severity == "ERROR"
    assert outcome.metadata["unbalanced_files"] == 1


def test_reconciliation_fails_when_a_table_lost_rows(broken):
    # raw.transmissions is a view of the raw dataset (pipelines/lake.py): one row goes missing
    broken.execute("ALTER VIEW raw.transmissions RENAME TO transmissions_all")
    broken.execute(
        "CREATE VIEW raw.transmissions AS SELECT * FROM raw.transmissions_all "
        "WHERE transmission_id <> (SELECT min(transmission_id) FROM raw.transmissions_all)"
    )
    outcome = checks.reconciliation(broken, "transmissions")
    assert not outcome.passed and outcome.metadata["mismatched_files"] == 1


def test_quarantine_share_severities(ok):
    # 1 of 13 rows (7.7 %) quarantined: above the 1 % warning, below the 10 % error
    outcome = checks.quarantine_share(ok, "transmissions")
    assert not outcome.passed and outcome.severity == "WARN"
    assert checks.quarantine_share(ok, "transmissions", warn=0.05, error=0.07).severity == "ERROR"
    assert checks.quarantine_share(ok, "transmissions", warn=0.08, error=0.5).passed
    assert checks.quarantine_share(ok, "enrollments").passed


def test_periods_decided_catches_a_billable_period_with_a_reason(broken):
    broken.execute("UPDATE marts.patient_periods SET block_reason = 'no_data' WHERE billable")
    outcome = checks.periods_decided(broken)
    assert not outcome.passed and outcome.severity == "ERROR"


def test_periods_decided_catches_a_closed_period_without_status(broken):
    broken.execute("UPDATE marts.patient_periods SET data_status = NULL WHERE is_closed")
    assert not checks.periods_decided(broken).passed


def test_lines_paired_catches_an_orphan_line(broken):
    broken.execute("DELETE FROM staging.due_lines WHERE payee = 'exploitant'")
    outcome = checks.lines_paired(broken)
    assert not outcome.passed and outcome.metadata["unpaired_periods"] > 0


def test_lines_paired_catches_a_period_split_across_claims(broken):
    broken.execute(
        "UPDATE staging.due_lines SET claim_id = claim_id || '-other' WHERE payee = 'operator'"
    )
    assert not checks.lines_paired(broken).passed


def test_lines_paired_catches_a_line_without_claim(broken):
    broken.execute("UPDATE staging.due_lines SET claim_id = NULL WHERE payee = 'operator'")
    assert not checks.lines_paired(broken).passed


def test_file_active_consistency(broken):
    broken.execute(
        "UPDATE marts.file_active_monthly SET billable_patients = -1 "
        "WHERE month = DATE '2024-05-01'"
    )
    assert not checks.file_active_consistent(broken).passed


def test_file_active_consistency_catches_a_wrong_count(broken):
    broken.execute(
        "UPDATE marts.file_active_monthly SET billable_patients = billable_patients + 1 "
        "WHERE month = DATE '2025-01-01'"
    )
    assert not checks.file_active_consistent(broken).passed


def test_landing_freshness_warns_after_a_day(ok):
    later = datetime.now(UTC) + timedelta(hours=30)
    outcome = checks.landing_freshness(ok, now=later)
    assert not outcome.passed and outcome.severity == "WARN"
    assert outcome.metadata["hours_since_last_file"] >= 30


def test_a_failed_error_check_fails_the_run_and_holds_billing_back(tmp_path):
    """46 % of a delivery quarantined: `observance run` says which check failed and what it held
    back (nothing downstream of the transmissions is built on it), and exits 1. The next run,
    with nothing new to judge, builds them and exits 0."""
    from tests.test_ledger import cli

    landing, warehouse = tmp_path / "landing", tmp_path / "w.duckdb"
    write_rows(landing / "enrollments" / "e.csv", [enrollment("E1", "P1", "2025-01-01")])
    write_rows(
        landing / "prescriptions" / "p.csv", [prescription("R1", "E1", "2025-01-01", "2025-12-31")]
    )
    rows = [tx("P1", f"2025-01-{d:02d} 10:00") for d in range(1, 29)]
    rows += [{**tx("P1", "2025-02-01 10:00"), "measured_at": "2025-02-01T10:00"}] * 24
    write_rows(landing / "transmissions" / "t.jsonl", rows)
    args = ("run", "--landing", str(landing), "--warehouse", str(warehouse), "--as-of")

    failed = cli(*args, "2025-06-01")
    assert failed.returncode == 1, failed.stdout + failed.stderr
    text = " ".join(failed.stdout.split())
    assert "check failed: raw/transmissions quarantine_share: 46.15% of 52 rows" in text
    assert "held back (not built):" in text and "marts/billing_lines" in text
    # every table of a model held back, not only its main one
    assert "marts/billing_held" in text and "staging/matched_units" in text
    assert "1 ERROR check(s) failed" in text and "Traceback" not in failed.stdout + failed.stderr
    with reader(warehouse) as con:
        built = {row[0] for row in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
    assert "billing_lines" not in built and "patient_periods" not in built

    again = cli(*args, "2025-06-01")
    assert again.returncode == 0, again.stdout + again.stderr
    with reader(warehouse) as con:
        periods = con.execute("SELECT count(*) FROM marts.patient_periods").fetchall()[0][0]
    assert periods > 0


def test_the_quarantine_share_of_one_run(clean, broken):
    since = datetime.now(UTC)
    assert checks.quarantine_share(broken, "transmissions", since=since).metadata["rows_read"] == 0
    everything = checks.quarantine_share(broken, "transmissions")
    assert everything.metadata["rows_read"] == 13
