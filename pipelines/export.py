"""``observance export``: billing lines of one payee, in any state, as a file (CSV or Parquet).

Reads the warehouse read-only and records nothing: issuing lines for billing is ``observance
issue`` (pipelines/ledger.py). Lines of claims that may still grow (*pending*) are left out
unless asked (rules R10, R11, docs/rules.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path

import polars as pl

from pipelines.files import file_format, write_table
from pipelines.ledger import LINE_COLUMNS, PAYEES
from pipelines.warehouse import reader

EXPORT_COLUMNS = ("line_id", "line_status", "claim_id", "claim_status", *LINE_COLUMNS)


@dataclass(frozen=True)
class ExportSummary:
    path: Path
    lines: int
    claims: int
    amount: Decimal
    pending_lines_left_out: int
    periods_waiting_for_tariff: int


def export_lines(
    warehouse: Path,
    payee: str,
    date_from: date,
    date_to: date,
    out: Path,
    include_pending: bool = False,
    csv_style: str = "french",
    exploitant: str | None = None,
    operator: str | None = None,
) -> ExportSummary:
    """Write the lines of ``payee`` dated ``date_from``..``date_to`` (inclusive) to ``out``,
    of one exploitant or operator when given."""
    if payee not in PAYEES:
        raise ValueError(f"payee must be one of {PAYEES}, not {payee!r}")
    if date_from > date_to:
        raise ValueError(f"--from {date_from} is after --to {date_to}")
    file_format(out)
    window = [date_from, date_to, exploitant, exploitant, operator, operator]
    chosen = (
        "date_of_care BETWEEN ? AND ? AND (? IS NULL OR exploitant_id = ?) "
        "AND (? IS NULL OR operator_id = ?)"
    )
    with reader(warehouse) as con:
        lines = con.sql(
            f"SELECT {', '.join(EXPORT_COLUMNS)} FROM marts.billing_lines "
            f"WHERE payee = ? AND {chosen} ORDER BY claim_id, period_index",
            params=[payee, *window],
        ).pl()
        held = con.sql(
            "SELECT count(*) AS n FROM marts.billing_held WHERE date_of_care BETWEEN ? AND ? "
            "AND (? IS NULL OR exploitant_id = ?) AND (? IS NULL OR enrollment_id IN ("
            "SELECT enrollment_id FROM marts.patient_periods WHERE operator_id = ?))",
            params=window,
        ).pl()["n"][0]
    pending = lines.filter(pl.col("claim_status") == "pending").height
    if not include_pending:
        lines = lines.filter(pl.col("claim_status") != "pending")
    write_table(lines, out, csv_style)
    return ExportSummary(
        path=out,
        lines=lines.height,
        claims=lines["claim_id"].n_unique(),
        amount=sum(lines["amount"].to_list(), Decimal("0.00")),
        pending_lines_left_out=0 if include_pending else pending,
        periods_waiting_for_tariff=int(held),
    )
