"""The claims ledger (rules.md R11, R12): issuing lines for billing software, once.

``issue`` takes the ready lines of one payee (``marts.billing_lines``) and the pending
corrections (``marts.billing_corrections``), records them in ``ledger.issued_lines`` /
``ledger.export_batches`` with the evidence of each period (``ledger.period_evidence``) in one
transaction, then writes the file (under a temporary name, renamed when whole). All or nothing:
a crash before the commit leaves nothing recorded and no file; a crash after it leaves the batch
recorded, and its file is written again, identically (the batch keeps its bytes' SHA-256), from
the ledger by the next ``issue`` (``complete_batches``). The ledger is never rebuilt nor changed.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import duckdb
import polars as pl

from pipelines.faults import fault
from pipelines.files import file_format, table_bytes, write_bytes
from pipelines.warehouse import run_sql, scalar, set_parameters, table_exists, transaction

log = logging.getLogger(__name__)

PAYEES = ("operator", "exploitant")
# The columns of a billing line written to a file, after its ids and statuses.
LINE_COLUMNS = (
    "payee",
    "enrollment_id",
    "patient_id",
    "operator_id",
    "exploitant_id",
    "activity_code",
    "period_index",
    "date_of_care",
    "code",
    "amount",
    "amo_amount",
    "patient_amount",
    "ald",
)
# The columns of an issued file, in this order (docs/contract.md).
ISSUED_COLUMNS = (
    "batch_id",
    "line_id",
    "kind",
    "corrects_line_id",
    "reason",
    "cause",
    "claim_id",
    *LINE_COLUMNS,
)
PARTIAL_SUFFIX = ".partial"


@dataclass(frozen=True)
class IssueSummary:
    batch_id: str
    path: Path
    lines: int
    corrections: int
    amount: Decimal
    completed: tuple[str, ...]  # earlier batches whose file this call wrote again


def last_as_of(con: duckdb.DuckDBPyConnection) -> date:
    """The evaluation date of the decisions in the warehouse (the last run's)."""
    as_of = (
        scalar(con, "SELECT as_of FROM ops.model_state WHERE model = 'patient_periods'")
        if table_exists(con, "ops.model_state")
        else None
    )
    if as_of is None:
        raise LookupError("the warehouse has no decisions yet: run `observance run` first")
    return as_of


def issue(
    con: duckdb.DuckDBPyConnection,
    payee: str,
    out: Path,
    exploitant: str | None = None,
    operator: str | None = None,
    csv_style: str = "french",
) -> IssueSummary:
    """Issue the ready lines and pending corrections of ``payee`` (and filters) to ``out``."""
    if payee not in PAYEES:
        raise ValueError(f"payee must be one of {PAYEES}, not {payee!r}")
    file_format(out)  # refuse a name that is neither .csv nor .parquet before anything
    if not table_exists(con, "marts.billing_lines"):
        raise LookupError("no billing lines yet: run `observance run` first")
    completed = complete_batches(con)
    as_of = last_as_of(con)
    filters = {"exploitant_id": exploitant, "operator_id": operator}
    con.execute("SET VARIABLE issue_payee = ?", [payee])
    for name, value in filters.items():
        con.execute(f"SET VARIABLE issue_{name} = ?", [value])
    batch_id = "B" + str(scalar(con, "SELECT count(*) + 1 FROM ledger.export_batches")).zfill(6)
    issued_at = datetime.now(UTC)
    con.execute("SET VARIABLE batch_id = ?", [batch_id])
    con.execute("SET VARIABLE issued_at = ?", [issued_at])
    set_parameters(con, as_of)  # the rule constants the evidence SQL reads
    run_sql(con, "ledger/to_issue")  # the temp table to_issue, in ISSUED_COLUMNS
    lines = con.sql(f"SELECT {', '.join(ISSUED_COLUMNS)} FROM to_issue ORDER BY line_id").pl()
    out = Path(out)
    content = table_bytes(lines, file_format(out), csv_style)
    fault("issue:file_prepared")
    filter_text = ", ".join(f"{k}={v}" for k, v in filters.items() if v)
    with transaction(con):
        con.execute(
            "INSERT INTO ledger.export_batches VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                batch_id,
                payee,
                filter_text,
                str(out.resolve()),
                csv_style,
                hashlib.sha256(content).hexdigest(),
                as_of,
                issued_at,
                lines.height,
                sum(lines["amount"].to_list(), Decimal("0.00")),
            ],
        )
        run_sql(con, "ledger/record")  # the lines and the evidence of their periods
        fault("issue:recorded")
    fault("issue:committed")
    _write_atomically(out, content)
    log.info("batch %s: %d lines of %s to %s", batch_id, lines.height, payee, out)
    return IssueSummary(
        batch_id=batch_id,
        path=out,
        lines=lines.height,
        corrections=lines.filter(pl.col("kind") != "original").height,
        amount=sum(lines["amount"].to_list(), Decimal("0.00")),
        completed=completed,
    )


def _write_atomically(target: Path, content: bytes) -> None:
    """Write under a temporary name, then rename: the file is whole or absent."""
    partial = target.with_name(target.name + PARTIAL_SUFFIX)
    write_bytes(partial, content)
    partial.replace(target)


def batch_lines(con: duckdb.DuckDBPyConnection, batch_id: str) -> pl.DataFrame:
    """The lines of a recorded batch, as its file holds them."""
    return con.sql(
        f"SELECT {', '.join(ISSUED_COLUMNS)} FROM ledger.issued_lines WHERE batch_id = ? "
        "ORDER BY line_id",
        params=[batch_id],
    ).pl()


def complete_batches(con: duckdb.DuckDBPyConnection) -> tuple[str, ...]:
    """Write again, from the ledger, the file of every recorded batch that is missing (an issue
    stopped between its commit and the renaming of its file); returns those batches."""
    done = []
    batches = con.execute(
        "SELECT batch_id, file_written, file_style, file_sha256 FROM ledger.export_batches "
        "ORDER BY batch_id"
    ).fetchall()
    for batch_id, path, style, content_hash in batches:
        target = Path(path)
        if target.exists():
            continue
        content = table_bytes(batch_lines(con, batch_id), file_format(target), style)
        if hashlib.sha256(content).hexdigest() != content_hash:
            raise RuntimeError(f"batch {batch_id}: the ledger does not give back its file {path}")
        _write_atomically(target, content)
        log.warning("batch %s: its file %s was missing and is written again", batch_id, target)
        done.append(batch_id)
    return tuple(done)


def keep_payments_file(payments: Path, landing: Path) -> str:
    """Copy a payer's answers file into the landing folder (``payments/reconcile/``), where the
    ingestion reads it like any other and the landing keeps it; returns its path there."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    target = Path(landing) / "payments" / "reconcile" / f"{stamp}-{Path(payments).name}"
    write_bytes(target, Path(payments).read_bytes())
    return target.relative_to(landing).as_posix()
