"""Group ``reporting``: the exploitants' reports and their index, next to the warehouse."""

from pathlib import Path

import dagster as dg

from dagster_project.resources import WarehouseResource
from pipelines.config import REPORT_FOLDER, report_lang
from pipelines.report import write_reports


def report_folder(warehouse: str) -> Path:
    return Path(warehouse).parent / REPORT_FOLDER


@dg.asset(
    key=["reports", "exploitant_report"],
    group_name="reporting",
    deps=[
        dg.AssetKey(["marts", "file_active_semester"]),
        dg.AssetKey(["marts", "billing_lines"]),
        dg.AssetKey(["marts", "alerts"]),
    ],
    kinds={"html", "plotly"},
    description="One self-contained HTML report per exploitant (its own data only), in French "
    "by default, and their index (reads the warehouse read-only).",
)
def exploitant_report(warehouse: WarehouseResource) -> dg.MaterializeResult:
    warehouse.release()  # the report opens the file read-only
    index, *pages = write_reports(
        Path(warehouse.path), report_folder(warehouse.path), report_lang()
    )
    return dg.MaterializeResult(
        metadata={
            "index": dg.MetadataValue.path(str(index.resolve())),
            "reports": len(pages),
            "bytes": sum(page.stat().st_size for page in pages),
        }
    )


assets = [exploitant_report]
