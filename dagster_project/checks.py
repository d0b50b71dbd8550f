"""Asset checks: thin wrappers over pipelines.checks (the logic and its tests live there)."""

import time
from collections.abc import Callable
from datetime import UTC, datetime

import dagster as dg

from dagster_project.resources import WarehouseResource
from pipelines import checks, contract
from pipelines.checks import CheckOutcome

SEVERITY = {"WARN": dg.AssetCheckSeverity.WARN, "ERROR": dg.AssetCheckSeverity.ERROR}


def _result(outcome: CheckOutcome) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        passed=outcome.passed,
        severity=SEVERITY[outcome.severity],
        description=outcome.description,
        metadata=outcome.metadata,
    )


def _check(
    asset: list[str],
    name: str,
    run: Callable[..., CheckOutcome],
    doc: str,
    blocking: bool = True,
    this_run_only: bool = False,
) -> dg.AssetChecksDefinition:
    """A check of ``asset``. Blocking (the default): when it fails with ERROR severity, nothing
    downstream of the asset is built in that run (docs/operations.md, "Checks that hold a run
    back"); a WARN never holds anything back. ``this_run_only``: ``run`` also gets the run's
    start time, to judge only what this run read."""

    @dg.asset_check(asset=dg.AssetKey(asset), name=name, description=doc, blocking=blocking)
    def _asset_check(
        context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource
    ) -> dg.AssetCheckResult:
        arguments = []
        if this_run_only:
            stats = context.instance.get_run_stats(context.run.run_id)
            arguments.append(datetime.fromtimestamp(stats.start_time or time.time(), UTC))
        with warehouse.writer() as con:
            con.begin()
            try:
                return _result(run(con, *arguments))
            finally:
                con.rollback()  # a check only reads; anything it might write is undone

    return _asset_check


def _ingest_checks(kind: str) -> list[dg.AssetChecksDefinition]:
    return [
        _check(
            ["raw", kind],
            "reconciliation",
            lambda con: checks.reconciliation(con, kind),
            "ERROR: every file's rows read = loaded + quarantined + duplicates.",
        ),
        _check(
            ["raw", kind],
            "quarantine_share",
            lambda con, since: checks.quarantine_share(
                con, kind, since=since, error=WARN_ONLY if kind in ANSWERS else None
            ),
            "Of the rows this run read: WARN above 1 %, "
            + (
                "never ERROR (the payer's answers: each bad one is quarantined for billing "
                "staff, the others applied)."
                if kind in ANSWERS
                else "ERROR above 10 % quarantined (configurable)."
            ),
            this_run_only=True,
        ),
    ]


# The payer's answers are reconciled one by one: a bad one never holds back the good ones.
ANSWERS = {"payments"}
WARN_ONLY = float("inf")


asset_checks = [
    *(check for kind in contract.KINDS for check in _ingest_checks(kind)),
    _check(
        ["raw", "transmissions"],
        "landing_freshness",
        checks.landing_freshness,
        "WARN when no transmissions file arrived for a day.",
        blocking=False,  # a WARN only: the night goes on with what arrived
    ),
    _check(
        ["marts", "patient_periods"],
        "periods_decided",
        checks.periods_decided,
        "ERROR: closed periods have a data status, billable ones no block reason.",
    ),
    _check(
        ["marts", "billing_lines"],
        "lines_paired",
        checks.lines_paired,
        "ERROR: no operator line without its exploitant line, and back.",
    ),
    _check(
        ["marts", "claim_status"],
        "ledger_consistent",
        checks.ledger_consistent,
        "ERROR: batches add up, line ids are unique, corrections refer to issued lines and "
        "cancellations are exact negatives.",
    ),
    _check(
        ["marts", "file_active_monthly"],
        "file_active_consistent",
        checks.file_active_consistent,
        "ERROR: file active never negative and equal to the billable periods it counts.",
    ),
]
