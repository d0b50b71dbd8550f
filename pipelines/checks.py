"""Data checks as plain functions over a warehouse connection (wrapped as Dagster asset checks).

Each returns a CheckOutcome: passed or not, the severity when it fails, a short description and
counts for the UI. They are tested on clean and deliberately broken data (tests/test_checks.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import duckdb

from pipelines import config
from pipelines.warehouse import scalar, table_exists


@dataclass(frozen=True)
class CheckOutcome:
    passed: bool
    severity: str  # "WARN" or "ERROR": what a failure means
    description: str
    metadata: dict[str, float | int | str] = field(default_factory=dict)


def _count(con: duckdb.DuckDBPyConnection, sql: str, params: list | None = None) -> int:
    return int(scalar(con, sql, params) or 0)


def _none_expected(count: int, what: str, key: str) -> CheckOutcome:
    """An ERROR check that passes when ``count`` rows break the invariant: none."""
    return CheckOutcome(
        passed=count == 0, severity="ERROR", description=f"{count} {what}", metadata={key: count}
    )


def reconciliation(con: duckdb.DuckDBPyConnection, kind: str) -> CheckOutcome:
    """Every file: rows read = loaded + quarantined + duplicates, and the tables agree."""
    unbalanced = _count(
        con,
        "SELECT count(*) FROM ops.ingested_files WHERE kind = ? "
        "AND rows_read <> rows_loaded + rows_quarantined + duplicates_skipped",
        [kind],
    )
    mismatched = _count(
        con,
        f"""
        SELECT count(*) FROM ops.ingested_files f
        LEFT JOIN (SELECT file_id, count(*) AS n FROM raw.{kind} GROUP BY ALL) r USING (file_id)
        LEFT JOIN (SELECT file_id, count(*) AS n FROM ops.quarantine GROUP BY ALL) q
            USING (file_id)
        WHERE f.kind = ? AND (f.rows_loaded <> coalesce(r.n, 0)
                              OR f.rows_quarantined <> coalesce(q.n, 0))
        """,
        [kind],
    )
    files = _count(con, "SELECT count(*) FROM ops.ingested_files WHERE kind = ?", [kind])
    return CheckOutcome(
        passed=unbalanced == 0 and mismatched == 0,
        severity="ERROR",
        description=f"{unbalanced} files do not balance, {mismatched} disagree with the tables",
        metadata={"files": files, "unbalanced_files": unbalanced, "mismatched_files": mismatched},
    )


def quarantine_share(
    con: duckdb.DuckDBPyConnection,
    kind: str,
    warn: float | None = None,
    error: float | None = None,
    since: datetime | None = None,
) -> CheckOutcome:
    """Share of rows read that went to quarantine: WARN above ``warn``, ERROR above ``error``.

    With ``since`` (the run's start), only the files this run read are judged: a bad delivery
    holds back the run that read it, and the next delivery is judged on its own."""
    default_warn, default_error = config.quarantine_shares()
    warn = default_warn if warn is None else warn
    error = default_error if error is None else error
    read, quarantined = con.execute(
        "SELECT coalesce(sum(rows_read), 0), coalesce(sum(rows_quarantined), 0) "
        "FROM ops.ingested_files WHERE kind = ? "
        "AND ingested_at >= coalesce(CAST(? AS TIMESTAMPTZ), '-infinity'::TIMESTAMPTZ)",
        [kind, since],
    ).fetchall()[0]
    share = quarantined / read if read else 0.0
    return CheckOutcome(
        passed=share <= warn,
        severity="ERROR" if share > error else "WARN",
        description=f"{share:.2%} of {read} rows quarantined (warn > {warn:.0%}, "
        f"error > {error:.0%})",
        metadata={"rows_read": int(read), "rows_quarantined": int(quarantined), "share": share},
    )


def periods_decided(con: duckdb.DuckDBPyConnection) -> CheckOutcome:
    """Every closed period has a data status; billable periods have no block reason and
    blocked ones have one."""
    bad = _count(
        con,
        """
        SELECT count(*) FROM marts.patient_periods
        WHERE (is_closed AND data_status IS NULL)
           OR (billable AND block_reason IS NOT NULL)
           OR (NOT billable AND block_reason IS NULL)
           OR (NOT is_closed AND billable)
        """,
    )
    return _none_expected(bad, "periods with an inconsistent decision", "inconsistent_periods")


def lines_paired(con: duckdb.DuckDBPyConnection) -> CheckOutcome:
    """No billing line without its pair (same enrollment, period and claim, the other payee)."""
    unpaired = _count(
        con,
        """
        SELECT count(*) FROM (
            SELECT enrollment_id, period_index
            FROM marts.billing_lines
            GROUP BY ALL
            HAVING count(*) FILTER (WHERE payee = 'operator') <> 1
                OR count(*) FILTER (WHERE payee = 'exploitant') <> 1
                -- one claim: no null claim id, and the smallest is the largest (cheaper than
                -- count(DISTINCT) over a million lines)
                OR count(claim_id) <> count(*) OR min(claim_id) <> max(claim_id)
        )
        """,
    )
    return _none_expected(unpaired, "periods with unpaired lines", "unpaired_periods")


def ledger_consistent(con: duckdb.DuckDBPyConnection) -> CheckOutcome:
    """The ledger adds up (R11): every batch's line count and total are its lines', every line
    id is unique, every correction refers to an issued line of the same period and payee, and a
    cancellation is the exact opposite of the line it cancels."""
    bad = _count(
        con,
        """
        SELECT
            (SELECT count(*) FROM ledger.export_batches b
             LEFT JOIN (SELECT batch_id, count(*) AS n, sum(amount) AS total
                        FROM ledger.issued_lines GROUP BY ALL) l USING (batch_id)
             WHERE b.line_count <> coalesce(l.n, 0) OR b.total_amount <> coalesce(l.total, 0))
          + (SELECT count(*) - count(DISTINCT line_id) FROM ledger.issued_lines)
          + (SELECT count(*) FROM ledger.issued_lines c
             LEFT JOIN ledger.issued_lines o ON o.line_id = c.corrects_line_id
             WHERE c.corrects_line_id IS NOT NULL
               AND (o.line_id IS NULL OR o.enrollment_id <> c.enrollment_id
                    OR o.period_index <> c.period_index OR o.payee <> c.payee
                    OR (c.kind = 'cancellation'
                        AND (c.amount, c.amo_amount, c.patient_amount)
                            <> (-o.amount, -o.amo_amount, -o.patient_amount))))
        """,
    )
    return _none_expected(bad, "ledger inconsistencies", "inconsistencies")


def file_active_consistent(con: duckdb.DuckDBPyConnection) -> CheckOutcome:
    """Monthly file active is never negative and equals the billable periods it counts."""
    bad = _count(
        con,
        """
        WITH counted AS (
            SELECT CAST(date_trunc('month', p.period_start) AS DATE) AS month, p.exploitant_id,
                a.technique_code, a.icd11_level, count(DISTINCT p.patient_id) AS n
            FROM marts.patient_periods p JOIN ref.activities a USING (activity_code)
            WHERE p.billable GROUP BY ALL
        )
        SELECT count(*) FROM marts.file_active_monthly m
        FULL JOIN counted c
          ON c.month = m.month AND c.exploitant_id = m.exploitant_id
         AND c.technique_code IS NOT DISTINCT FROM m.technique_code
         AND c.icd11_level = m.icd11_level
        WHERE m.billable_patients < 0 OR m.monitored_patients < 0
           OR coalesce(m.billable_patients, -1) <> coalesce(c.n, 0)
        """,
    )
    return _none_expected(bad, "monthly counts inconsistent", "inconsistent_months")


def landing_freshness(
    con: duckdb.DuckDBPyConnection, now: datetime | None = None, limit: timedelta | None = None
) -> CheckOutcome:
    """WARN when no transmissions file arrived (was ingested) within ``limit``."""
    now = now or datetime.now(UTC)
    limit = limit or config.freshness_limit()
    latest = (
        scalar(
            con,
            "SELECT max(ingested_at) FROM ops.ingested_files "
            "WHERE kind = 'transmissions' AND status = 'ingested'",
        )
        if table_exists(con, "ops.ingested_files")
        else None
    )
    if latest is None:
        return CheckOutcome(False, "WARN", "no transmissions file ever arrived")
    age = now - latest
    return CheckOutcome(
        passed=age <= limit,
        severity="WARN",
        description=f"last transmissions file arrived {age.total_seconds() / 3600:.1f} h ago",
        metadata={"hours_since_last_file": round(age.total_seconds() / 3600, 2)},
    )
