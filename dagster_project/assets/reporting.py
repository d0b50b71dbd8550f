"""Group ``reporting``: the exploitant report, written next to the warehouse."""

from pathlib import Path

import dagster as dg

from dagster_project.resources import WarehouseResource
from pipelines.config import REPORT_NAME
from pipelines.report import write_report


def report_path(warehouse: str) -> Path:
    return Path(warehouse).parent / REPORT_NAME


@dg.asset(
    key=["reports", "exploitant_report"],
    group_name="reporting",
    deps=[
        dg.AssetKey(["marts", "file_active_semester"]),
        dg.AssetKey(["marts", "billing_lines"]),
        dg.AssetKey(["marts", "alerts"]),
    ],
    kinds={"html", "plotly"},
    description="Self-contained HTML report for exploitants (reads the warehouse read-only).",
)
def exploitant_report(warehouse: WarehouseResource) -> dg.MaterializeResult:
    warehouse.release()  # the report opens the file read-only
    path = write_report(Path(warehouse.path), report_path(warehouse.path))
    return dg.MaterializeResult(
        metadata={"path": dg.MetadataValue.path(str(path.resolve())), "bytes": path.stat().st_size}
    )


assets = [exploitant_report]
