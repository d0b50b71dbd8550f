"""What an analyst would write instead of the pipeline: the R1–R5 decisions in one script.

Two versions of the same script, one in plain pandas and one in lazy polars, for the benchmark
(``observance bench``) to run on the same landing as the pipeline and in the same run. They read
the landing as it is (no validation, no de-duplication, nothing stored: the benchmark's landing
is clean), and decide per enrollment and 30-day period:

* R1 the Paris civil date of each reading (the time-zone conversion of the library);
* R2 the periods, date to date, until the enrollment's end or the evaluation date;
* R3 the valid units of the line's counting rule and profile (calibration for eye tests);
* R4 the data status; R5 the first block reason (death lets rules 2 and 5 pass).

Each prints one JSON line: periods, billable periods, seconds and peak RSS, so that the benchmark
can check it reached the pipeline's decisions before comparing times. Run as
``python -m tools.analyst {pandas|polars} <landing> <as_of>``.
"""

from __future__ import annotations

import json
import sys
import time
from datetime import date
from pathlib import Path

import polars as pl

from pipelines import config, contract
from pipelines.config import CATALOG_DIR
from tools.bench import peak_rss_mb

PARIS = "Europe/Paris"
DAYS = config.PERIOD_DAYS
COLUMNS = ["patient_id", "activity_code", "measure_type", "eye", "measured_at"]
CALIBRATION = ["distance_cm", "ambient_lux"]
ENROLLMENT = [
    "enrollment_id", "patient_id", "activity_code", "start_date", "end_date", "end_reason",
    "monitoring_profile", "sessions_per_week",
]  # fmt: skip


def _files(landing: Path, kind: str) -> list[Path]:
    """The kind's files, oldest arrival first (the benchmark's folders sort by date)."""
    return sorted(
        p for p in (landing / kind).rglob("*") if p.suffix in (".parquet", ".jsonl", ".csv")
    )


def _rules() -> pl.DataFrame:
    """The catalog's counting rules, one row per counted measure type, with calibration."""
    rules = pl.read_csv(CATALOG_DIR / "counting_rules.csv", infer_schema_length=0)
    activities = pl.read_csv(CATALOG_DIR / "activities.csv", infer_schema_length=0)
    return (
        rules.with_columns(
            pl.col("monitoring_profile").fill_null(""),
            pl.col("counted_measure_types").str.split(";"),
            pl.col("min_per_day", "expected_units", "default_sessions_per_week").cast(pl.Int64),
        )
        .explode("counted_measure_types")
        .rename({"counted_measure_types": "measure_type"})
        .join(
            activities.select(
                "activity_code",
                *[pl.col(c).cast(pl.Float64) for c in ("distance_min_cm", "distance_max_cm")],
                *[pl.col(c).cast(pl.Float64) for c in ("lux_min", "lux_max")],
            ),
            on="activity_code",
        )
    )


# ------------------------------------------------------------------------------- lazy polars


# JSON lines leave out the fields a reading does not have (a weight has no eye): read with the
# transmissions' fields, a missing one is null.
READING_SCHEMA = {name: pl.String for name in contract.FIELDS["transmissions"]} | {
    name: pl.Float64 for name in contract.DECIMAL_FIELDS["transmissions"]
}


def _scan(path: Path, kind: str) -> pl.LazyFrame:
    if path.suffix == ".parquet":
        return pl.scan_parquet(path)
    if path.suffix == ".jsonl":
        schema = READING_SCHEMA if kind == "transmissions" else None
        return pl.scan_ndjson(path, schema=schema, infer_schema_length=None)
    return pl.scan_csv(path, infer_schema_length=0)


def _latest(landing: Path, kind: str, key: str, columns: list[str]) -> pl.LazyFrame:
    """The kind's rows, the last version of each key (the files' order)."""
    frames = [
        _scan(p, kind).select(pl.col(c).cast(pl.String) for c in columns).with_columns(version=i)
        for i, p in enumerate(_files(landing, kind))
    ]
    return pl.concat(frames).sort("version").group_by(key).last()


def polars_decisions(landing: Path, as_of: date) -> dict[str, int]:
    rules = _rules().lazy()
    lines = rules.select("activity_code", profile="monitoring_profile").unique()
    enrollments = (
        _latest(landing, "enrollments", "enrollment_id", ENROLLMENT)
        .with_columns(
            pl.col("start_date", "end_date").str.to_date(),
            pl.col("sessions_per_week").cast(pl.Int64),
            profile=pl.col("monitoring_profile").fill_null("").str.strip_chars().str.to_lowercase(),
        )
        .join(lines.with_columns(known=True), on=["activity_code", "profile"], how="left")
        .with_columns(profile=pl.when(pl.col("known")).then("profile").otherwise(pl.lit("")))
        .with_columns(
            last_day=pl.min_horizontal(pl.col("end_date").fill_null(as_of), pl.lit(as_of))
        )
        .filter(pl.col("last_day") >= pl.col("start_date"))
    )
    rule = rules.group_by("activity_code", profile="monitoring_profile").first()
    enrollments = enrollments.join(rule, on=["activity_code", "profile"]).with_columns(
        expected=pl.coalesce(
            "expected_units",
            (pl.col("sessions_per_week").fill_null(pl.col("default_sessions_per_week")) * DAYS / 7)
            .round()
            .cast(pl.Int64),
        )
    )
    readings = pl.concat(
        [
            _scan(p, "transmissions").select(
                *COLUMNS, *[pl.col(c).cast(pl.Float64) for c in CALIBRATION]
            )
            for p in _files(landing, "transmissions")
        ],
        how="vertical_relaxed",
    ).with_columns(
        day=pl.col("measured_at")
        .str.to_datetime(time_zone="UTC")
        .dt.convert_time_zone(PARIS)
        .dt.date(),
    )

    def inside(value: str, low: str, high: str) -> pl.Expr:
        return pl.col(value).is_null() | (
            (pl.col(value) >= pl.col(low).fill_null(float("-inf")))
            & (pl.col(value) <= pl.col(high).fill_null(float("inf")))
        )

    units = (
        readings.join(
            enrollments.select(
                "enrollment_id",
                "patient_id",
                "activity_code",
                "profile",
                "start_date",
                "end_date",
                "last_day",
            ),
            on=["patient_id", "activity_code"],
        )
        .join(
            rules,
            left_on=["activity_code", "profile", "measure_type"],
            right_on=["activity_code", "monitoring_profile", "measure_type"],
        )
        .filter(
            pl.col("day").is_between("start_date", "last_day")
            & inside("distance_cm", "distance_min_cm", "distance_max_cm")
            & inside("ambient_lux", "lux_min", "lux_max")
        )
        .with_columns(
            unit_eye=pl.when(pl.col("grain") == "eye_day").then(pl.col("eye")).otherwise(pl.lit(""))
        )
        .group_by("enrollment_id", "day", "unit_eye", "start_date", "min_per_day")
        .agg(readings=pl.len())
        .filter(pl.col("readings") >= pl.col("min_per_day"))
        .group_by(
            "enrollment_id",
            period=(pl.col("day") - pl.col("start_date")).dt.total_days() // DAYS + 1,
        )
        .agg(valid=pl.len())
    )
    prescriptions = _latest(
        landing,
        "prescriptions",
        "prescription_id",
        ["enrollment_id", "kind", "valid_from", "valid_until"] + ["prescription_id"],
    ).with_columns(pl.col("valid_from", "valid_until").str.to_date())
    prescriptions = prescriptions.with_columns(
        covered_until=pl.min_horizontal(
            "valid_until",
            pl.col("valid_from")
            + pl.duration(
                days=pl.when(pl.col("kind") == "trial")
                .then(config.TRIAL_MAX_DAYS)
                .otherwise(config.PRESCRIPTION_MAX_DAYS)
                - 1
            ),
        )
    )
    periods = (
        enrollments.with_columns(
            period=pl.int_ranges(
                1, (pl.col("last_day") - pl.col("start_date")).dt.total_days() // DAYS + 2
            )
        )
        .explode("period")
        .with_columns(
            period_start=pl.col("start_date") + pl.duration(days=(pl.col("period") - 1) * DAYS),
            period_end=pl.col("start_date") + pl.duration(days=pl.col("period") * DAYS - 1),
        )
        .with_columns(
            effective_end=pl.min_horizontal(
                "period_end", pl.col("end_date").fill_null(pl.col("period_end"))
            )
        )
        .join(units, on=["enrollment_id", "period"], how="left")
        .with_columns(valid=pl.col("valid").fill_null(0))
        .with_columns(
            status=pl.when(pl.col("valid") == 0)
            .then(pl.lit("no_data"))
            .when(pl.col("valid") / pl.col("expected") < config.SUFFICIENCY_THRESHOLD)
            .then(pl.lit("insufficient"))
            .otherwise(pl.lit("sufficient")),
            died=(pl.col("end_reason") == "deceased")
            & pl.col("end_date").is_between("period_start", "period_end"),
        )
        .sort("enrollment_id", "period")
        .with_columns(previous=pl.col("status").shift(1).over("enrollment_id"))
    )
    covered = (
        periods.select("enrollment_id", "period", "period_start")
        .join(prescriptions, on="enrollment_id")
        .filter(pl.col("period_start").is_between("valid_from", "covered_until"))
        .select("enrollment_id", "period")
        .unique()
        .with_columns(covered=True)
    )
    decided = periods.join(covered, on=["enrollment_id", "period"], how="left").with_columns(
        block=pl.when(pl.col("effective_end") >= as_of)
        .then(pl.lit("open"))
        .when((pl.col("effective_end") < pl.col("period_end")) & ~pl.col("died").fill_null(False))
        .then(pl.lit("not_completed"))
        .when(pl.col("covered").is_null())
        .then(pl.lit("no_prescription"))
        .when(pl.col("previous").is_in(["insufficient", "no_data"]))
        .then(pl.lit("previous_period_insufficient"))
        .when((pl.col("status") == "no_data") & ~pl.col("died").fill_null(False))
        .then(pl.lit("no_data"))
    )
    counts = decided.select(periods=pl.len(), billable=pl.col("block").is_null().sum()).collect()
    return {"periods": counts["periods"][0], "billable": counts["billable"][0]}


# ------------------------------------------------------------------------------- plain pandas


def pandas_decisions(landing: Path, as_of: date) -> dict[str, int]:
    import pandas as pd

    def read(path: Path) -> pd.DataFrame:
        if path.suffix == ".parquet":
            return pd.read_parquet(path)
        if path.suffix == ".jsonl":  # fields a row does not have are left out
            frame = pd.read_json(path, lines=True, dtype=False)
            return frame.reindex(columns=sorted(set(frame.columns) | set(READING_SCHEMA)))
        return pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])

    def latest(kind: str, key: str) -> pd.DataFrame:
        frames = [read(p).assign(version=i) for i, p in enumerate(_files(landing, kind))]
        return pd.concat(frames).sort_values("version").groupby(key).last().reset_index()

    rules = _rules().to_pandas()
    day0 = pd.Timestamp(as_of)
    enrollments = latest("enrollments", "enrollment_id")
    for column in ("start_date", "end_date"):
        enrollments[column] = pd.to_datetime(enrollments[column])
    enrollments["profile"] = (
        enrollments["monitoring_profile"].fillna("").astype(str).str.strip().str.lower()
    )
    lines = rules[["activity_code", "monitoring_profile"]].drop_duplicates()
    lines = lines.rename(columns={"monitoring_profile": "profile"}).assign(known=True)
    enrollments = enrollments.merge(lines, on=["activity_code", "profile"], how="left")
    enrollments.loc[enrollments["known"].isna(), "profile"] = ""
    enrollments["last_day"] = enrollments["end_date"].fillna(day0).clip(upper=day0)
    enrollments = enrollments[enrollments["last_day"] >= enrollments["start_date"]]
    rule = rules.drop_duplicates(["activity_code", "monitoring_profile"])
    enrollments = enrollments.merge(
        rule,
        left_on=["activity_code", "profile"],
        right_on=["activity_code", "monitoring_profile"],
        suffixes=("", "_rule"),
    )
    sessions = pd.to_numeric(enrollments["sessions_per_week"]).fillna(
        enrollments["default_sessions_per_week"]
    )
    enrollments["expected"] = enrollments["expected_units"].fillna((sessions * DAYS / 7).round())

    readings = pd.concat([read(p) for p in _files(landing, "transmissions")], ignore_index=True)
    readings["day"] = (
        pd.to_datetime(readings["measured_at"], utc=True, format="ISO8601")
        .dt.tz_convert(PARIS)
        .dt.tz_localize(None)
        .dt.normalize()
    )
    merged = readings.merge(
        enrollments[
            ["enrollment_id", "patient_id", "activity_code", "profile", "start_date", "last_day"]
        ],
        on=["patient_id", "activity_code"],
    ).merge(
        rules,
        left_on=["activity_code", "profile", "measure_type"],
        right_on=["activity_code", "monitoring_profile", "measure_type"],
    )

    def inside(value: str, low: str, high: str) -> pd.Series:
        v = pd.to_numeric(merged[value])
        return v.isna() | (
            (v >= merged[low].fillna(-float("inf"))) & (v <= merged[high].fillna(float("inf")))
        )

    merged = merged[
        (merged["day"] >= merged["start_date"])
        & (merged["day"] <= merged["last_day"])
        & inside("distance_cm", "distance_min_cm", "distance_max_cm")
        & inside("ambient_lux", "lux_min", "lux_max")
    ]
    merged["unit_eye"] = merged["eye"].where(merged["grain"] == "eye_day", "").fillna("")
    units = merged.groupby(["enrollment_id", "day", "unit_eye", "start_date", "min_per_day"]).size()
    units = units.reset_index(name="readings")
    units = units[units["readings"] >= units["min_per_day"]]
    units["period"] = (units["day"] - units["start_date"]).dt.days // DAYS + 1
    valid = units.groupby(["enrollment_id", "period"]).size().rename("valid").reset_index()

    enrollments["periods"] = (
        enrollments["last_day"] - enrollments["start_date"]
    ).dt.days // DAYS + 1
    periods = enrollments.loc[enrollments.index.repeat(enrollments["periods"])].copy()
    periods["period"] = periods.groupby("enrollment_id").cumcount() + 1
    periods["period_start"] = periods["start_date"] + pd.to_timedelta(
        (periods["period"] - 1) * DAYS, unit="D"
    )
    periods["period_end"] = periods["period_start"] + pd.Timedelta(days=DAYS - 1)
    periods["effective_end"] = periods[["period_end", "end_date"]].min(axis=1)
    periods = periods.merge(valid, on=["enrollment_id", "period"], how="left")
    periods["valid"] = periods["valid"].fillna(0)
    completeness = periods["valid"] / periods["expected"]
    periods["status"] = "sufficient"
    periods.loc[completeness < config.SUFFICIENCY_THRESHOLD, "status"] = "insufficient"
    periods.loc[periods["valid"] == 0, "status"] = "no_data"
    periods["died"] = (periods["end_reason"] == "deceased") & periods["end_date"].between(
        periods["period_start"], periods["period_end"]
    )
    periods = periods.sort_values(["enrollment_id", "period"])
    periods["previous"] = periods.groupby("enrollment_id")["status"].shift(1)

    prescriptions = latest("prescriptions", "prescription_id")
    for column in ("valid_from", "valid_until"):
        prescriptions[column] = pd.to_datetime(prescriptions[column])
    longest = prescriptions["kind"].map(
        lambda k: config.TRIAL_MAX_DAYS if k == "trial" else config.PRESCRIPTION_MAX_DAYS
    )
    prescriptions["covered_until"] = pd.concat(
        [
            prescriptions["valid_until"],
            prescriptions["valid_from"] + pd.to_timedelta(longest - 1, unit="D"),
        ],
        axis=1,
    ).min(axis=1)
    pairs = periods[["enrollment_id", "period", "period_start"]].merge(
        prescriptions, on="enrollment_id"
    )
    pairs = pairs[pairs["period_start"].between(pairs["valid_from"], pairs["covered_until"])]
    covered = pairs[["enrollment_id", "period"]].drop_duplicates().assign(covered=True)
    periods = periods.merge(covered, on=["enrollment_id", "period"], how="left")
    periods["covered"] = periods["covered"].fillna(False).astype(bool)

    block = pd.Series(None, index=periods.index, dtype=object)
    rules_in_order = [
        ("open", periods["effective_end"] >= day0),
        ("not_completed", (periods["effective_end"] < periods["period_end"]) & ~periods["died"]),
        ("no_prescription", ~periods["covered"]),
        ("previous_period_insufficient", periods["previous"].isin(["insufficient", "no_data"])),
        ("no_data", (periods["status"] == "no_data") & ~periods["died"]),
    ]
    for reason, applies in reversed(rules_in_order):
        block[applies] = reason
    return {"periods": len(periods), "billable": int(block.isna().sum())}


def main() -> None:
    engine, landing, as_of = sys.argv[1], Path(sys.argv[2]), date.fromisoformat(sys.argv[3])
    start = time.perf_counter()
    decisions = (pandas_decisions if engine == "pandas" else polars_decisions)(landing, as_of)
    seconds = time.perf_counter() - start
    print(
        json.dumps({"engine": engine, "seconds": seconds, "peak_rss_mb": peak_rss_mb()} | decisions)
    )


if __name__ == "__main__":
    main()
