"""The activity catalog, its counting rules and the tariff schedule: data files, validated on load.

* ``activities.csv`` — one row per activity (generic line or brand-name device): billing codes,
  tier, ICD-11 level, the measure types its devices send, ODYSIGHT's calibration bounds.
* ``counting_rules.csv`` — how each line counts its data (rules.md R3), one row per activity and
  monitoring profile; the row whose ``monitoring_profile`` is empty is the line's *default* row,
  used when an enrollment sends no profile or one the line does not have.

Adding an activity or a profile is a new row in these files; no code change.
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
    "eye_measure_types": pl.String,
    "measure_types": pl.String,
    "distance_min_cm": pl.Float64,
    "distance_max_cm": pl.Float64,
    "lux_min": pl.Float64,
    "lux_max": pl.Float64,
    "source": pl.String,
}
COUNTING_RULE_SCHEMA = {
    "activity_code": pl.String,
    # empty in the file: the line's default row (no profile sent, or one the line does not have)
    "monitoring_profile": pl.String,
    "counted_measure_types": pl.String,  # ';'-separated
    "min_per_day": pl.Int32,  # counted measurements a local day (an eye's day) needs
    "grain": pl.String,  # a unit is a local day, or an (eye, local day)
    "expected_units": pl.Int32,  # per period; empty when derived from sessions a week
    "default_sessions_per_week": pl.Int32,  # when the enrollment sends no sessions_per_week
    "max_transmission_gap_days": pl.Int32,  # R3 weekly transmission: a longer gap is flagged
    "interruption_alert_days": pl.Int32,  # alert after this many days without a transmission
    "status": pl.String,
    "source": pl.String,
}
GRAINS = {"day", "eye_day"}
STATUSES = {"CONFIRMED", "ASSUMPTION"}
PRICINGS = {"flat", "modulated", "unknown"}
DEFAULT_PROFILE = ""  # monitoring_profile of a line's default counting row


class CatalogError(ValueError):
    """A catalog or schedule file that cannot be used as it is."""


def _raise_if(problems: list[str], path: Path) -> None:
    if problems:
        raise CatalogError(f"{path}: " + "; ".join(problems))


def load_activities(path: Path | None = None) -> pl.DataFrame:
    """The activity catalog, one row per activity, checked for the values the rules rely on."""
    path = path or catalog_dir() / "activities.csv"
    df = pl.read_csv(path, schema=ACTIVITY_SCHEMA)
    problems = []
    if df["activity_code"].is_duplicated().any():
        problems.append("duplicate activity_code")
    for column in ("activity_code", "icd11_level", "operator_code"):
        if df[column].null_count():
            problems.append(f"{column} is empty for some activity")
    if bad := set(df["pricing"].drop_nulls()) - PRICINGS:
        problems.append(f"unknown pricing {sorted(bad)} (expected one of {sorted(PRICINGS)})")
    if df["source"].null_count():
        problems.append("every activity needs a source")
    _raise_if(problems, path)
    return df


def load_counting_rules(
    path: Path | None = None, activities: pl.DataFrame | None = None
) -> pl.DataFrame:
    """The counting rules (R3), one row per (activity, monitoring profile), checked: every
    activity has exactly one default row, every row says what counts, how much of it a day
    needs, how many units a period expects, its status and its source."""
    path = path or catalog_dir() / "counting_rules.csv"
    activities = load_activities() if activities is None else activities
    df = pl.read_csv(path, schema=COUNTING_RULE_SCHEMA).with_columns(
        pl.col("monitoring_profile").fill_null(DEFAULT_PROFILE).str.strip_chars().str.to_lowercase()
    )
    problems = []
    if df.select("activity_code", "monitoring_profile").is_duplicated().any():
        problems.append("duplicate (activity_code, monitoring_profile)")
    for column in ("counted_measure_types", "min_per_day", "grain", "interruption_alert_days"):
        if df[column].null_count():
            problems.append(f"{column} is empty for some row")
    if bad := set(df["grain"].drop_nulls()) - GRAINS:
        problems.append(f"unknown grain {sorted(bad)} (expected one of {sorted(GRAINS)})")
    if bad := set(df["status"].fill_null("(empty)")) - STATUSES:
        problems.append(f"unknown status {sorted(bad)} (expected one of {sorted(STATUSES)})")
    if df["source"].null_count():
        problems.append("every counting rule needs a source")
    if (df["min_per_day"] < 1).any():
        problems.append("min_per_day must be at least 1")
    fixed, weekly = (
        df["expected_units"].is_not_null(),
        df["default_sessions_per_week"].is_not_null(),
    )
    if (fixed == weekly).any():
        problems.append("give either expected_units or default_sessions_per_week, not both")
    if (df["expected_units"] <= 0).any():
        problems.append("expected_units must be positive")
    if ((df["default_sessions_per_week"] < 1) | (df["default_sessions_per_week"] > 7)).any():
        problems.append("default_sessions_per_week must be between 1 and 7")
    codes = set(activities["activity_code"])
    if unknown := set(df["activity_code"]) - codes:
        problems.append(f"rules for activities not in the catalog: {sorted(unknown)}")
    defaults = set(df.filter(pl.col("monitoring_profile") == DEFAULT_PROFILE)["activity_code"])
    if missing := codes - defaults:
        problems.append(f"no default row (empty monitoring_profile) for {sorted(missing)}")
    _raise_if(problems, path)
    return df


def _split(column: str) -> pl.Expr:
    return pl.col(column).fill_null("").str.split(";")


def counting_measures(rules: pl.DataFrame | None = None) -> pl.DataFrame:
    """One row per (activity, monitoring profile, counted measure type)."""
    rules = load_counting_rules() if rules is None else rules
    return (
        rules.select("activity_code", "monitoring_profile", _split("counted_measure_types"))
        .explode("counted_measure_types")
        .rename({"counted_measure_types": "measure_type"})
        .filter(pl.col("measure_type") != "")
    )


def activity_measures(
    activities: pl.DataFrame | None = None, rules: pl.DataFrame | None = None
) -> pl.DataFrame:
    """One row per (activity, measure type) its devices send: whether some profile of the line
    counts it, and whether it needs an eye."""
    activities = load_activities() if activities is None else activities
    counted = counting_measures(rules).select("activity_code", "measure_type").unique()
    sent = activities.select(
        "activity_code", _split("measure_types").alias("measure_type"), _split("eye_measure_types")
    ).explode("measure_type")
    return (
        pl.concat([sent.select("activity_code", "measure_type"), counted])
        .unique(maintain_order=True)
        .filter(pl.col("measure_type") != "")
        .join(
            sent.select("activity_code", "eye_measure_types").unique("activity_code"),
            on="activity_code",
            how="left",
        )
        .join(
            counted.with_columns(is_counted=pl.lit(True)),
            on=["activity_code", "measure_type"],
            how="left",
        )
        .select(
            "activity_code",
            "measure_type",
            pl.col("is_counted").fill_null(False),
            pl.col("measure_type")
            .is_in(pl.col("eye_measure_types"))
            .fill_null(False)
            .alias("needs_eye"),
        )
    )
