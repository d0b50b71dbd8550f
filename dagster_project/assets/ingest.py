"""Group ``ingest``: the catalog into ``ref.*`` and the landing files into ``raw.*`` / ``ops.*``."""

from pathlib import Path

import dagster as dg

from dagster_project.resources import (
    EvaluationDateResource,
    LandingResource,
    WarehouseResource,
)
from pipelines import contract
from pipelines.ingest import ingest
from pipelines.reference import load_reference
from pipelines.warehouse import migrate

GROUP = "ingest"


@dg.asset(key=["ref", "catalog"], group_name=GROUP, kinds={"duckdb"})
def reference(warehouse: WarehouseResource) -> dg.MaterializeResult:
    """The activity catalog, its counting rules and the Europe/Paris offsets as ``ref.*`` tables
    (the warehouse's tables created or migrated first)."""
    with warehouse.writer() as con:
        migrate(con)
        counts = load_reference(con)
    return dg.MaterializeResult(metadata={f"{name}_rows": n for name, n in counts.items()})


def _ingest_asset(kind: str) -> dg.AssetsDefinition:
    @dg.asset(
        key=["raw", kind],
        group_name=GROUP,
        deps=[
            reference,
            *([dg.AssetKey(["ledger", "issued_lines"])] if kind == "payments" else []),
        ],
        kinds={"duckdb"},
        description=f"Validated, de-duplicated {kind} from the landing folder "
        "(bad rows in ops.quarantine, reconciliation in ops.ingested_files).",
    )
    def _asset(
        context: dg.AssetExecutionContext,
        warehouse: WarehouseResource,
        landing: LandingResource,
        evaluation: EvaluationDateResource,
    ) -> dg.MaterializeResult:
        def progress(kind: str, done: int, total: int) -> None:
            context.log.info(f"{kind}: {done}/{total} new files ingested")

        with warehouse.writer() as con:
            # the run's date files the new transmissions under their arrival month (lake.py)
            summary = ingest(
                con, Path(landing.path), [kind], progress=progress, arrival=evaluation.date()
            )
            total_rows = con.execute(f"SELECT count(*) FROM raw.{kind}").fetchall()[0][0]
        s = summary.kinds[kind]
        return dg.MaterializeResult(
            metadata={
                "new_files": s.files_new,
                "unreadable_files": s.files_unreadable,
                "deferred_files": s.files_deferred,
                "skipped_paths": s.files_skipped,
                "rows_read": s.rows_read,
                "rows_loaded": s.rows_loaded,
                "rows_quarantined": s.rows_quarantined,
                "duplicates_skipped": s.duplicates_skipped,
                "table_rows": total_rows,
            }
        )

    _asset.__name__ = f"raw_{kind}"
    return _asset


raw_assets = [_ingest_asset(kind) for kind in contract.KINDS]
assets = [reference, *raw_assets]
