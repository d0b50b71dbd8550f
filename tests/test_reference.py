"""R1 clock and the catalog: the Paris offsets table against zoneinfo, catalog validation."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import duckdb
import polars as pl
import pytest

from pipelines.catalog import CatalogError, activity_measures, load_activities
from pipelines.config import CATALOG_DIR
from pipelines.reference import paris_offsets
from tests.helpers import catalog_copy, enrollment, one_enrollment_landing, query, run, tx

PARIS = ZoneInfo("Europe/Paris")


def sql_local_dates(instants: list[datetime]) -> list[date]:
    """The Paris date of each instant, by the same expression as 02_daily_units.sql."""
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.register("offsets", paris_offsets().to_arrow())
    con.register("instants", pl.DataFrame({"i": range(len(instants)), "t": instants}).to_arrow())
    rows = con.execute(
        """
        SELECT CAST(make_timestamp(epoch_us(t) + CASE
                WHEN epoch_us(t) >= o.summer_start_us AND epoch_us(t) < o.summer_end_us
                THEN o.summer_offset_us ELSE o.standard_offset_us END) AS DATE)
        FROM instants LEFT JOIN offsets o ON o.year = year(make_timestamp(epoch_us(t)))
        ORDER BY i
        """
    ).fetchall()
    return [row[0] for row in rows]


def test_offsets_match_zoneinfo_on_random_instants():
    rng = random.Random(7)
    start = datetime(1995, 1, 1, tzinfo=UTC)
    instants = [
        start + timedelta(seconds=rng.randrange(0, 105 * 365 * 86400)) for _ in range(20000)
    ]
    assert sql_local_dates(instants) == [t.astimezone(PARIS).date() for t in instants]


def test_offsets_match_zoneinfo_around_every_change():
    instants = []
    for row in paris_offsets().iter_rows(named=True):
        for change in (row["summer_start_us"], row["summer_end_us"]):
            at = datetime.fromtimestamp(change / 1e6, UTC)
            instants += [at + timedelta(minutes=m) for m in range(-150, 151, 15)]
    # and the midnights of the change days
    assert sql_local_dates(instants) == [t.astimezone(PARIS).date() for t in instants]


def test_offsets_2025_changes_are_the_known_sundays():
    row = paris_offsets().filter(pl.col("year") == 2025).row(0, named=True)
    assert datetime.fromtimestamp(row["summer_start_us"] / 1e6, UTC) == datetime(
        2025, 3, 30, 1, tzinfo=UTC
    )
    assert datetime.fromtimestamp(row["summer_end_us"] / 1e6, UTC) == datetime(
        2025, 10, 26, 1, tzinfo=UTC
    )


def test_catalog_has_the_seven_activities_with_sources():
    catalog = load_activities()
    assert set(catalog["activity_code"]) == {
        "ODYSIGHT",
        "HEART_FAILURE",
        "RENAL_FAILURE",
        "DIABETES",
        "GESTATIONAL_DIABETES",
        "RESPIRATORY_FAILURE",
        "CARDIAC_IMPLANT",
    }
    odysight = catalog.filter(pl.col("activity_code") == "ODYSIGHT").row(0, named=True)
    assert odysight["expected_units"] == 8
    assert odysight["unit"] == "eye_test_day"
    assert (odysight["distance_min_cm"], odysight["distance_max_cm"]) == (35, 45)
    assert (odysight["lux_min"], odysight["lux_max"]) == (5, 2000)
    assert odysight["technique_code"] == "1665434"
    assert odysight["icd11_level"] == "9C"
    assert odysight["operator_code"] == "TVB"
    assert catalog.filter(pl.col("operator_code") == "TVA")["activity_code"].to_list() == [
        "CARDIAC_IMPLANT"
    ]
    generic = catalog.filter(pl.col("unit") == "day_with_data")
    assert generic["expected_units_is_assumption"].all()
    assert catalog["source"].null_count() == 0


def test_only_visual_acuity_counts_for_odysight():
    measures = activity_measures().filter(pl.col("activity_code") == "ODYSIGHT")
    counted = dict(zip(measures["measure_type"], measures["is_counted"], strict=True))
    assert counted == {"visual_acuity": True, "amsler_grid": False, "questionnaire": False}


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda df: pl.concat([df, df.head(1)]), "duplicate activity_code"),
        (lambda df: df.with_columns(unit=pl.lit("per_week")), "unknown unit"),
        (lambda df: df.with_columns(expected_units=pl.lit(0)), "expected_units must be positive"),
        (lambda df: df.with_columns(source=pl.lit(None, pl.String)), "needs a source"),
    ],
)
def test_bad_catalog_is_rejected(tmp_path, change, message):
    bad = change(pl.read_csv(CATALOG_DIR / "activities.csv", infer_schema=False))
    bad.write_csv(tmp_path / "activities.csv")
    with pytest.raises(CatalogError, match=message):
        load_activities(tmp_path / "activities.csv")


def test_adding_an_activity_needs_no_code_change(tmp_path, monkeypatch):
    """A new activity row in a catalog folder is picked up end to end."""
    catalog = catalog_copy(tmp_path, monkeypatch)
    rows = pl.read_csv(catalog / "activities.csv", infer_schema=False)
    new = rows.filter(pl.col("activity_code") == "DIABETES").with_columns(
        activity_code=pl.lit("ONCOLOGY_TEST"),
        counted_measure_types=pl.lit("symptom_report"),
        measure_types=pl.lit("symptom_report"),
        expected_units=pl.lit("4"),
    )
    pl.concat([rows, new]).write_csv(catalog / "activities.csv")

    days = ["2025-01-02 09:00", "2025-01-05 09:00"]
    landing = one_enrollment_landing(
        tmp_path / "landing",
        enrollment("E1", "P1", "2025-01-01", activity_code="ONCOLOGY_TEST"),
        [tx("P1", d, activity_code="ONCOLOGY_TEST", measure_type="symptom_report") for d in days],
    )
    warehouse = tmp_path / "wh.duckdb"
    run(landing, warehouse, "2025-02-15")
    first = query(warehouse, "SELECT * FROM marts.patient_periods ORDER BY period_index").row(
        0, named=True
    )
    assert (first["expected_units"], first["valid_units"], first["data_status"]) == (
        4,
        2,
        "sufficient",
    )
    assert query(warehouse, "SELECT count(*) AS n FROM ops.quarantine")["n"][0] == 0
