"""Groups ``observance`` (and later ones): one asset per SQL model of pipelines.models."""

import dagster as dg

from dagster_project.resources import EvaluationDateResource, WarehouseResource
from pipelines.models import MODELS, Model, build


def _key(name: str) -> dg.AssetKey:
    return dg.AssetKey(name.split("."))


def _model_asset(model: Model) -> dg.AssetsDefinition:
    @dg.asset(
        key=_key(model.key),
        deps=[_key(dep) for dep in model.deps],
        group_name=model.group,
        description=model.description,
        kinds={"duckdb", "sql"},
        metadata={"sql_file": f"sql/{model.sql}.sql"},
    )
    def _asset(
        warehouse: WarehouseResource, evaluation: EvaluationDateResource
    ) -> dg.MaterializeResult:
        as_of = evaluation.date()
        with warehouse.writer() as con:
            metadata = build(con, model, as_of)
        return dg.MaterializeResult(
            metadata={"as_of": as_of.isoformat()}
            | {name: value for name, value in metadata.items() if value is not None}
        )

    return _asset


assets = [_model_asset(model) for model in MODELS]
