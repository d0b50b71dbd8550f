"""Group ``ledger``: issuing lines for billing software (R11), on demand, never by the schedule.

``ledger/issued_lines`` is materialized by ``observance issue`` with its run config, together
with the billing assets, which then show the batch. It reads the billing marts of the last run
(it cannot declare them upstream: they read the ledger).
"""

from pathlib import Path

import dagster as dg

from dagster_project.resources import WarehouseResource
from pipelines.ledger import issue


class IssueConfig(dg.Config):
    """One batch: the payee, the file to write, optional filters, the CSV style."""

    payee: str
    out: str
    exploitant: str | None = None
    operator: str | None = None
    csv_style: str = "french"


@dg.asset(
    key=["ledger", "issued_lines"],
    group_name="ledger",
    kinds={"duckdb"},
    description="Lines issued for billing (ledger.issued_lines, export_batches, period_evidence): "
    "appended by `observance issue`, never rebuilt (R11).",
)
def issued_lines(
    context: dg.AssetExecutionContext, config: IssueConfig, warehouse: WarehouseResource
) -> dg.MaterializeResult:
    with warehouse.writer() as con:
        summary = issue(
            con,
            config.payee,
            Path(config.out),
            exploitant=config.exploitant,
            operator=config.operator,
            csv_style=config.csv_style,
        )
    for batch in summary.completed:
        context.log.warning(f"batch {batch}: its missing file was written again from the ledger")
    return dg.MaterializeResult(
        metadata={
            "batch_id": summary.batch_id,
            "lines": summary.lines,
            "corrections": summary.corrections,
            "amount_eur": float(summary.amount),
            "path": dg.MetadataValue.path(str(summary.path.resolve())),
        }
    )


assets = [issued_lines]
