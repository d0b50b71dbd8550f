"""Groups ``observance``, ``file_active``, ``billing``, ``reporting``: one asset per table a SQL
model writes (a multi-asset where one file writes several), its dependencies read from the SQL
(pipelines.models)."""

import dagster as dg

from dagster_project.resources import EngineResource, EvaluationDateResource, WarehouseResource
from pipelines.models import DEPS, MODELS, Model, build


def _key(name: str) -> dg.AssetKey:
    return dg.AssetKey(name.split("."))


def _model_asset(model: Model) -> dg.AssetsDefinition:
    deps = [_key(dep) for dep in DEPS[model.key]]
    specs = [
        dg.AssetSpec(
            _key(table),
            deps=deps,
            group_name=model.group,
            description=model.description if table == model.key else f"Written by {model.key}.",
            kinds={"duckdb", "sql"} if model.engine == "duckdb" else {"duckdb", "spark", "sql"},
            metadata={"sql_file": f"sql/{model.sql}.sql", "incremental": model.incremental},
        )
        for table in model.writes
    ]

    @dg.multi_asset(name=model.key.replace(".", "__"), specs=specs, can_subset=False)
    def _asset(
        warehouse: WarehouseResource, evaluation: EvaluationDateResource, engine: EngineResource
    ):
        as_of = evaluation.date()
        with warehouse.writer() as con:
            metadata = build(con, model, as_of, engine.spark())
        common = {"as_of": as_of.isoformat()}
        for table in model.writes:
            own = {k: v for k, v in metadata.items() if v is not None}
            if table != model.key:  # the model's counts go with its main table
                own = {k: v for k, v in own.items() if k == f"{table}_rows"}
            yield dg.MaterializeResult(asset_key=_key(table), metadata=common | own)

    return _asset


assets = [_model_asset(model) for model in MODELS]
