"""R11 and R12: the claims ledger. What was issued never changes; later facts produce
corrections; the payer's answers are reconciled; the evidence is frozen with each batch.

The base history: E1 (heart failure, not ALD) and E2 (ODYSIGHT, ALD), both from 2025-01-01 with
full data, as of 2025-07-15: periods 1-6 (Jan 1 .. Jun 29) closed and billable, one ready claim
of six periods each; period 7 open.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest

from pipelines.evidence import write_evidence
from pipelines.faults import FAULT_ENV
from pipelines.models import drop_derived
from pipelines.warehouse import copy_warehouse, writer
from tests.helpers import (
    catalog_copy,
    enrollment,
    issue,
    prescription,
    query,
    run,
    tx,
    write_rows,
)

D = Decimal
# the quarantine reasons of the payer's answers, each exercised below, in file order (R12)
PAYMENT_REASONS = [
    "unknown_line",
    "overpayment",
    "inconsistent_payment",
    "invalid_status",
    "contradictory_payment",
]
AS_OF = "2025-07-15"
START = date(2025, 1, 1)


def base_landing(root: Path) -> Path:
    write_rows(
        root / "enrollments" / "e.csv",
        [
            enrollment(
                "E1",
                "P1",
                "2025-01-01",
                activity_code="HEART_FAILURE",
                recorded_at="2025-01-01T09:00:00+01:00",
            ),
            enrollment("E2", "P2", "2025-01-01", ald=True, recorded_at="2025-01-01T09:00:00+01:00"),
        ],
    )
    write_rows(
        root / "prescriptions" / "p.csv",
        [prescription(f"R{e}", e, "2025-01-01", "2025-12-31") for e in ("E1", "E2")],
    )
    days = [START + timedelta(days=d) for d in range(0, 200)]
    write_rows(
        root / "transmissions" / "t.jsonl",
        [tx("P1", f"{d} 08:00", activity_code="HEART_FAILURE") for d in days]
        + [tx("P2", f"{d} 10:00", eye=eye) for d in days[1::7] for eye in ("OD", "OS")],
    )
    return root


@pytest.fixture(scope="module")
def issued_base(tmp_path_factory) -> tuple[Path, Path]:
    """The base history run and both payees' lines issued (landing, warehouse)."""
    root = tmp_path_factory.mktemp("base")
    landing = base_landing(root / "landing")
    warehouse = root / "wh.duckdb"
    run(landing, warehouse, AS_OF)
    for payee in ("operator", "exploitant"):
        issue(landing, warehouse, payee, root / "billing" / f"{payee}-1.csv")
    return landing, warehouse


@pytest.fixture
def base(issued_base, tmp_path) -> tuple[Path, Path]:
    """A copy of the issued base, for a test to change."""
    landing, warehouse = issued_base
    shutil.copytree(landing, tmp_path / "landing")
    copy_warehouse(warehouse, tmp_path / "wh.duckdb", link=True)
    return tmp_path / "landing", tmp_path / "wh.duckdb"


def ledger(warehouse: Path) -> pl.DataFrame:
    return query(warehouse, "SELECT * FROM ledger.issued_lines ORDER BY line_id")


def corrections(warehouse: Path) -> pl.DataFrame:
    return query(warehouse, "SELECT * FROM marts.billing_corrections ORDER BY line_id")


def test_the_base_issues_both_payees_once(issued_base):
    _, warehouse = issued_base
    lines = ledger(warehouse)
    assert lines.height == 24  # 2 enrollments x 6 periods x 2 payees
    assert set(lines["kind"]) == {"original"}
    assert lines.filter(pl.col("enrollment_id") == "E1")["claim_id"].unique().to_list() == [
        "E1-C001"
    ]
    statuses = query(warehouse, "SELECT DISTINCT line_status FROM marts.billing_lines")
    assert statuses["line_status"].to_list() == ["issued"]
    batches = query(warehouse, "SELECT * FROM ledger.export_batches ORDER BY batch_id")
    assert batches["batch_id"].to_list() == ["B000001", "B000002"]
    assert batches["line_count"].to_list() == [12, 12]
    assert batches["total_amount"].to_list() == [D("336.00"), D("600.00")]  # 12 x 28, 12 x 50
    # the file is the batch, in French conventions (; and decimal comma, UTF-8 BOM)
    text = Path(batches["file_written"][0]).read_text(encoding="utf-8-sig")
    assert text.splitlines()[0].startswith("Lot;Ligne;Nature;Corrige la ligne")
    assert ";28,00;" in text
    assert oct(Path(batches["file_written"][0]).stat().st_mode & 0o777) == "0o640"


def test_a_death_recorded_after_issue_cancels_the_periods_after_it(base, tmp_path):
    """E1's death on Apr 10 (period 4) is recorded in July: periods 5 and 6 no longer exist,
    both payees' lines of them are cancelled with the exact opposite amounts; period 4, the death
    period, stays due; nothing issued changes."""
    landing, warehouse = base
    before = ledger(warehouse)
    write_rows(
        landing / "enrollments" / "2025-07-16" / "death.csv",
        [
            enrollment(
                "E1",
                "P1",
                "2025-01-01",
                activity_code="HEART_FAILURE",
                end_date="2025-04-10",
                end_reason="deceased",
                recorded_at="2025-07-16T10:00:00+02:00",
            )
        ],
    )
    run(landing, warehouse, AS_OF)
    pending = corrections(warehouse)
    assert pending["line_id"].to_list() == [
        "E1-C001/O005/A",
        "E1-C001/O006/A",
        "E1-C001/T005/A",
        "E1-C001/T006/A",
    ]
    assert set(pending["kind"]) == {"cancellation"}
    assert set(pending["reason"]) == {"period_no_longer_billable"}
    assert set(pending["cause"]) == {"after_enrollment_end"}
    issued = before.set_sorted("line_id")
    for row in pending.iter_rows(named=True):
        original = issued.filter(pl.col("line_id") == row["corrects_line_id"]).row(0, named=True)
        assert (row["amount"], row["amo_amount"], row["patient_amount"]) == (
            -original["amount"],
            -original["amo_amount"],
            -original["patient_amount"],
        )
    e1 = query(
        warehouse,
        "SELECT DISTINCT period_index FROM marts.billing_lines "
        "WHERE enrollment_id = 'E1' ORDER BY 1",
    )
    assert e1["period_index"].to_list() == [1, 2, 3, 4]  # the death period stays due
    assert ledger(warehouse).equals(before)  # nothing issued changed
    for payee in ("operator", "exploitant"):
        issue(landing, warehouse, payee, tmp_path / f"corrections-{payee}.csv")
    assert corrections(warehouse).height == 0
    after = ledger(warehouse)
    assert after.height == before.height + 4
    assert after.filter(pl.col("line_id").is_in(before["line_id"].implode())).equals(before)
    net = (
        after.filter(pl.col("enrollment_id") == "E1")
        .group_by("period_index")
        .agg(pl.col("amount").sum())
        .sort("period_index")
    )
    assert net["amount"].to_list() == [D("78.00")] * 4 + [D("0.00")] * 2


def test_a_rebuild_after_issue_leaves_the_ledger_as_it_was(base):
    """Every derived table dropped (a new layout), the warehouse rebuilt from raw.*: the ledger
    is byte for byte the same and the billing lines are those issued."""
    landing, warehouse = base
    before_ledger = ledger(warehouse)
    before_lines = query(warehouse, "SELECT * FROM marts.billing_lines ORDER BY line_id")
    evidence = query(warehouse, "SELECT * FROM ledger.period_evidence ORDER BY ALL")
    with writer(warehouse) as con:
        drop_derived(con)
    run(landing, warehouse, AS_OF)
    assert ledger(warehouse).equals(before_ledger)
    assert query(warehouse, "SELECT * FROM ledger.period_evidence ORDER BY ALL").equals(evidence)
    assert query(warehouse, "SELECT * FROM marts.billing_lines ORDER BY line_id").equals(
        before_lines
    )
    assert corrections(warehouse).height == 0


def test_a_run_for_an_earlier_date_corrects_nothing_it_cannot_see(base):
    """Run again as of Apr 15: periods 4-6 are not closed on that date, so their issued lines
    are not corrected, and the billing lines are the periods billable on that date."""
    landing, warehouse = base
    before = ledger(warehouse)
    run(landing, warehouse, "2025-04-15")
    assert corrections(warehouse).height == 0
    assert ledger(warehouse).equals(before)
    shown = query(warehouse, "SELECT max(date_of_care) AS last FROM marts.billing_lines")
    assert shown["last"][0] < date(2025, 4, 15)


def test_a_changed_amount_is_cancelled_and_replaced(base, tmp_path, monkeypatch):
    """The operator forfait of the catalog changes after issue: each issued operator line gets a
    cancellation and a replacement at the new amount; the exploitant's lines are untouched."""
    landing, warehouse = base
    catalog = catalog_copy(tmp_path, monkeypatch)
    activities = pl.read_csv(catalog / "activities.csv", infer_schema=False)
    activities.with_columns(
        operator_amount=pl.when(pl.col("activity_code") == "HEART_FAILURE")
        .then(pl.lit("30.00"))
        .otherwise("operator_amount")
    ).write_csv(catalog / "activities.csv")
    run(landing, warehouse, AS_OF)
    pending = corrections(warehouse)
    assert pending.height == 12  # E1's 6 operator lines: a cancellation and a replacement each
    assert set(pending["payee"]) == {"operator"} and set(pending["enrollment_id"]) == {"E1"}
    cancel = pending.filter(pl.col("kind") == "cancellation")
    replace = pending.filter(pl.col("kind") == "replacement")
    assert cancel["amount"].to_list() == [D("-28.00")] * 6
    assert replace["amount"].to_list() == [D("30.00")] * 6
    assert replace["amo_amount"].to_list() == [D("18.00")] * 6  # 60 %, not ALD
    assert set(pending["reason"]) == {"amount_changed"}
    assert set(pending["cause"]) == {"amount 28.00 -> 30.00"}
    issue(landing, warehouse, "operator", tmp_path / "op-2.csv")
    lines = query(
        warehouse,
        "SELECT line_id, amount FROM marts.billing_lines "
        "WHERE enrollment_id = 'E1' AND payee = 'operator' ORDER BY period_index",
    )
    assert lines["line_id"].to_list() == [f"E1-C001/O00{k}/R" for k in range(1, 7)]
    assert lines["amount"].to_list() == [D("30.00")] * 6
    assert corrections(warehouse).height == 0


def test_issuing_twice_with_nothing_new_writes_an_empty_batch(base, tmp_path):
    landing, warehouse = base
    before = ledger(warehouse)
    issue(landing, warehouse, "operator", tmp_path / "again.csv")
    batch = query(warehouse, "SELECT * FROM ledger.export_batches ORDER BY batch_id DESC LIMIT 1")
    assert batch["line_count"].to_list() == [0]
    assert batch["total_amount"].to_list() == [D("0.00")]
    assert (tmp_path / "again.csv").read_text(encoding="utf-8-sig").count("\n") == 1  # header
    assert ledger(warehouse).equals(before)


def payments(path: Path, rows: list[dict]) -> Path:
    fields = ("line_id", "status", "paid_amount", "paid_on", "rejection_code", "rejection_label")
    write_rows(path, [{f: row.get(f, "") for f in fields} for row in rows])
    return path


def cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """`observance <args>`, in a process of its own."""
    return subprocess.run(
        [sys.executable, "-m", "cli.main", *args],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )


def reconcile(landing: Path, warehouse: Path, file: Path) -> None:
    """`observance reconcile --payments FILE`, through the CLI."""
    done = cli(
        "reconcile",
        "--payments",
        str(file),
        "--landing",
        str(landing),
        "--warehouse",
        str(warehouse),
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_payments_are_reconciled_and_bad_answers_quarantined(base, tmp_path):
    landing, warehouse = base
    first = payments(
        tmp_path / "answers-1.csv",
        [
            {
                "line_id": "E1-C001/O001",
                "status": "paid",
                "paid_amount": "28.00",
                "paid_on": "2025-08-01",
            },
            {
                "line_id": "E1-C001/O002",
                "status": "partially_paid",
                "paid_amount": "10,50",
                "paid_on": "2025-08-01",
            },
            {
                "line_id": "E1-C001/O003",
                "status": "rejected",
                "paid_on": "2025-08-01",
                "rejection_code": "R02",
                "rejection_label": "Prescription absente",
            },
            {
                "line_id": "E9-C001/O001",
                "status": "paid",
                "paid_amount": "28.00",
                "paid_on": "2025-08-01",
            },  # no such line
            {
                "line_id": "E1-C001/O005",
                "status": "paid",
                "paid_amount": "30.00",
                "paid_on": "2025-08-01",
            },  # overpaid
            {
                "line_id": "E1-C001/O006",
                "status": "paid",
                "paid_amount": "20.00",
                "paid_on": "2025-08-01",
            },  # paid, but not in full
            {"line_id": "E1-C001/O004", "status": "refunded", "paid_on": "2025-08-01"},
        ],
    )
    reconcile(landing, warehouse, first)
    second = payments(
        tmp_path / "answers-2.csv",
        [
            {
                "line_id": "E1-C001/O001",
                "status": "paid",
                "paid_amount": "28.00",
                "paid_on": "2025-08-01",
            },  # the same answer again: a duplicate
            {
                "line_id": "E1-C001/O002",
                "status": "rejected",
                "paid_on": "2025-08-03",
                "rejection_code": "R01",
            },  # contradicts the first answer
        ],
    )
    reconcile(landing, warehouse, second)
    status = dict(query(warehouse, "SELECT line_id, status FROM marts.claim_status").rows())
    assert status["E1-C001/O001"] == "paid"
    assert status["E1-C001/O002"] == "partially_paid"
    assert status["E1-C001/O003"] == "rejected"
    assert status["E1-C001/O005"] == "issued" and status["E1-C001/O006"] == "issued"
    paid = query(
        warehouse, "SELECT paid_amount FROM marts.claim_status WHERE line_id = 'E1-C001/O002'"
    )
    assert paid["paid_amount"].to_list() == [D("10.50")]
    quarantined = query(
        warehouse,
        "SELECT reason, detail FROM ops.quarantine WHERE kind = 'payments' ORDER BY source_file, "
        "row_number",
    )
    assert quarantined["reason"].to_list() == PAYMENT_REASONS
    files = query(
        warehouse,
        "SELECT rows_read, rows_loaded, rows_quarantined, duplicates_skipped "
        "FROM ops.ingested_files WHERE kind = 'payments' ORDER BY file_id",
    )
    assert files.rows() == [(7, 3, 4, 0), (2, 0, 1, 1)]
    # the rejected line is re-issued, once
    pending = corrections(warehouse)
    assert pending.select("line_id", "kind", "corrects_line_id", "reason", "amount").rows() == [
        ("E1-C001/O003/E", "reissue", "E1-C001/O003", "rejected", D("28.00"))
    ]
    assert pending["cause"][0] == "rejected R02: Prescription absente"
    issue(landing, warehouse, "operator", tmp_path / "reissue.csv")
    assert corrections(warehouse).height == 0
    issue(landing, warehouse, "operator", tmp_path / "reissue-again.csv")
    reissued = query(
        warehouse, "SELECT count(*) AS n FROM ledger.issued_lines WHERE kind = 'reissue'"
    )
    assert reissued["n"][0] == 1
    line = query(
        warehouse,
        "SELECT line_id, line_status FROM marts.billing_lines "
        "WHERE enrollment_id = 'E1' AND payee = 'operator' AND period_index = 3",
    )
    assert line.rows() == [("E1-C001/O003/E", "issued")]


def test_unanswered_lines_become_overdue(base):
    landing, warehouse = base
    issued_on = query(warehouse, "SELECT min(issued_on) AS d FROM marts.claim_status")["d"][0]
    # a run dated 46 days after the issue: every line without an answer is overdue
    late = issued_on + timedelta(days=46)
    run(landing, warehouse, late.isoformat())
    statuses = query(warehouse, "SELECT DISTINCT status FROM marts.claim_status")
    assert statuses["status"].to_list() == ["unpaid_overdue"]


def issue_in_process(landing: Path, warehouse: Path, out: Path, fault: str | None):
    env = {k: v for k, v in os.environ.items() if k != FAULT_ENV}
    return cli(
        "issue",
        "--payee",
        "operator",
        "--out",
        str(out),
        "--landing",
        str(landing),
        "--warehouse",
        str(warehouse),
        env=env | ({FAULT_ENV: fault} if fault else {}),
    )


@pytest.mark.parametrize("point", ["issue:file_prepared", "issue:recorded", "issue:committed"])
def test_an_issue_killed_midway_is_all_or_nothing(tmp_path, point):
    """The process dies at a point of `observance issue`: before the commit nothing is recorded
    and no file is left under its name; after it, the batch is recorded and the next issue writes
    its file again, identically. Either way the next issue leaves every line issued once."""
    landing = base_landing(tmp_path / "landing")
    warehouse = tmp_path / "wh.duckdb"
    run(landing, warehouse, AS_OF)
    out = tmp_path / "billing" / "operator.csv"
    killed = issue_in_process(landing, warehouse, out, point)
    assert killed.returncode == 97, killed.stdout + killed.stderr
    recorded = query(warehouse, "SELECT count(*) AS n FROM ledger.issued_lines")["n"][0]
    assert recorded == (12 if point == "issue:committed" else 0)
    assert not out.exists()
    again = issue_in_process(landing, warehouse, tmp_path / "billing" / "operator-2.csv", None)
    assert again.returncode == 0, again.stdout + again.stderr
    lines = ledger(warehouse)
    assert lines.height == 12 and lines["line_id"].n_unique() == 12
    batches = query(
        warehouse,
        "SELECT batch_id, line_count, file_written, file_sha256 "
        "FROM ledger.export_batches ORDER BY batch_id",
    )
    assert batches["line_count"].to_list() == ([12, 0] if point == "issue:committed" else [12])
    first = Path(batches["file_written"][0])
    import hashlib

    assert hashlib.sha256(first.read_bytes()).hexdigest() == batches["file_sha256"][0]
    assert not list(tmp_path.rglob("*.partial"))


def test_evidence_of_a_claim(issued_base, tmp_path):
    """The evidence frozen with the batch: every unit of each period, the readings' ids and files,
    the rule and its source, the cut-off; a CSV and a one-page HTML."""
    _, warehouse = issued_base
    files = write_evidence(warehouse, tmp_path / "e2.csv", claim="E2-C001")
    assert files.periods == 12  # 6 periods, frozen by each payee's batch
    rows = pl.read_csv(files.csv, separator=";", encoding="utf8-lossy")  # French headers
    first = rows.filter((pl.col("Période") == 1) & (pl.col("Lot") == "B000001"))
    # weekly tests on days 1, 8, 15, 22, 29 of period 1, both eyes: 10 valid units
    assert first.height == 10 and set(first["Unité valide"]) == {"oui"}
    assert first["transmission_ids"].str.len_chars().min() > 0
    assert set(first["rule_status"]) == {"CONFIRMED"}
    page = files.html.read_text(encoding="utf-8")
    assert "SEED-ODYSIGHT" in page and "Données arrêtées au 2025-07-15" in page
    with pytest.raises(LookupError):
        write_evidence(warehouse, tmp_path / "x.csv", enrollment="E9")
