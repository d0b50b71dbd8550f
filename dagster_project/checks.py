"""Asset checks: thin wrappers over pipelines.checks (the logic and its tests live there)."""

from collections.abc import Callable

import dagster as dg
import duckdb

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
    asset: list[str], name: str, run: Callable[[duckdb.DuckDBPyConnection], CheckOutcome], doc: str
) -> dg.AssetChecksDefinition:
    @dg.asset_check(asset=dg.AssetKey(asset), name=name, description=doc)
    def _asset_check(warehouse: WarehouseResource) -> dg.AssetCheckResult:
        with warehouse.writer() as con:
            con.begin()
            try:
                return _result(run(con))
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
            lambda con: checks.quarantine_share(con, kind),
            "WARN above 1 %, ERROR above 10 % of rows quarantined (configurable).",
        ),
    ]


asset_checks = [
    *(check for kind in contract.KINDS for check in _ingest_checks(kind)),
    _check(
        ["raw", "transmissions"],
        "landing_freshness",
        checks.landing_freshness,
        "WARN when no transmissions file arrived for a day.",
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
