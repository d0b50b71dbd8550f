"""The activity catalog and the tariff schedule: data files, validated on load.

Adding an activity is a new row in ``activities.csv``; no code change.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from pipelines.config import catalog_dir

ACTIVITY_SCHEMA = {
    "activity_code": pl.String,
    "label": pl.String,
    "icd11_level": pl.String,
    "icd11_label": pl.String,
    "operator_level": pl.Int32,
    "operator_code": pl.String,
    "operator_amount": pl.Decimal(10, 2),
    "technique_code": pl.String,
    "technique_label": pl.String,
    "tier": pl.String,
    "technique_base_amount": pl.Decimal(10, 2),
    "pricing": pl.String,
    "unit": pl.String,
    "counted_measure_types": pl.String,
    "eye_measure_types": pl.String,
    "measure_types": pl.String,
    "expected_units": pl.Int32,
    "expected_units_is_assumption": pl.Boolean,
    "distance_min_cm": pl.Float64,
    "distance_max_cm": pl.Float64,
    "lux_min": pl.Float64,
    "lux_max": pl.Float64,
    "interruption_alert_days": pl.Int32,
    "source": pl.String,
}
UNITS = {"eye_test_day", "day_with_data"}
PRICINGS = {"flat", "modulated", "unknown"}


class CatalogError(ValueError):
    """A catalog or schedule file that cannot be used as it is."""


def load_activities(path: Path | None = None) -> pl.DataFrame:
    """The activity catalog, one row per activity, checked for the values the rules rely on."""
    path = path or catalog_dir() / "activities.csv"
    df = pl.read_csv(path, schema=ACTIVITY_SCHEMA)
    problems = []
    if df["activity_code"].is_duplicated().any():
        problems.append("duplicate activity_code")
    for column in ("activity_code", "icd11_level", "operator_code", "unit", "expected_units"):
        if df[column].null_count():
            problems.append(f"{column} is empty for some activity")
    if bad := set(df["unit"].drop_nulls()) - UNITS:
        problems.append(f"unknown unit {sorted(bad)} (expected one of {sorted(UNITS)})")
    if bad := set(df["pricing"].drop_nulls()) - PRICINGS:
        problems.append(f"unknown pricing {sorted(bad)} (expected one of {sorted(PRICINGS)})")
    if (df["expected_units"] <= 0).any():
        problems.append("expected_units must be positive")
    if df["source"].null_count():
        problems.append("every activity needs a source")
    if problems:
        raise CatalogError(f"{path}: " + "; ".join(problems))
    return df


def activity_measures(path: Path | None = None) -> pl.DataFrame:
    """One row per (activity, measure type) with whether it counts and whether it needs an eye."""

    def explode(column: str) -> pl.Expr:
        return pl.col(column).fill_null("").str.split(";")

    df = load_activities(path)
    rows = df.select(
        "activity_code",
        explode("measure_types").alias("measure_type"),
        explode("counted_measure_types").alias("counted"),
        explode("eye_measure_types").alias("eye"),
    ).explode("measure_type")
    return rows.select(
        "activity_code",
        "measure_type",
        pl.col("measure_type").is_in(pl.col("counted")).alias("is_counted"),
        pl.col("measure_type").is_in(pl.col("eye")).alias("needs_eye"),
    ).filter(pl.col("measure_type") != "")
