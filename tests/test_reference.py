"""R1 clock and the catalog: the Paris offsets table against zoneinfo, catalog validation."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import duckdb
import polars as pl
import pytest

from pipelines.catalog import (
    CatalogError,
    activity_measures,
    load_activities,
    load_counting_rules,
)
from pipelines.config import CATALOG_DIR
from pipelines.reference import paris_offsets
from pipelines.warehouse import run_sql
from tests.helpers import (
    catalog_copy,
    enrollment,
    prescription,
    query,
    run,
    tx,
    write_rows,
)

PARIS = ZoneInfo("Europe/Paris")


def sql_local_dates(instants: list[datetime]) -> list[date]:
    """The Paris date of each instant, by the macro the models use (ref.paris_date)."""
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.execute("CREATE SCHEMA ref")
    run_sql(con, "reference/macros")
    con.register("offsets", paris_offsets().to_arrow())
    con.register("instants", pl.DataFrame({"i": range(len(instants)), "t": instants}).to_arrow())
    rows = con.execute(
        """
        SELECT ref.paris_date(epoch_us(t), o.summer_start_us, o.summer_end_us,
                              o.standard_offset_us, o.summer_offset_us)
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
    assert (odysight["distance_min_cm"], odysight["distance_max_cm"]) == (35, 45)
    assert (odysight["lux_min"], odysight["lux_max"]) == (5, 2000)
    assert odysight["technique_code"] == "1665434"
    assert odysight["icd11_level"] == "9C"
    assert odysight["operator_code"] == "TVB"
    assert catalog.filter(pl.col("operator_code") == "TVA")["activity_code"].to_list() == [
        "CARDIAC_IMPLANT"
    ]
    assert catalog["source"].null_count() == 0


def rule(activity: str, profile: str = "") -> dict:
    rules = load_counting_rules()
    return rules.filter(
        (pl.col("activity_code") == activity) & (pl.col("monitoring_profile") == profile)
    ).row(0, named=True)


def test_counting_rules_are_the_rulebook_table():
    """rules.md R3, row by row: what counts, how much a day needs, what a period expects, the
    weekly transmission rule, the interruption alert's threshold, the status."""
    table = {
        (r["activity_code"], r["monitoring_profile"]): (
            r["counted_measure_types"],
            r["min_per_day"],
            r["grain"],
            r["expected_units"] or f"{r['default_sessions_per_week']}/week",
            r["max_transmission_gap_days"],
            r["interruption_alert_days"],
            r["status"][0],  # C(ONFIRMED) or A(SSUMPTION)
        )
        for r in load_counting_rules().iter_rows(named=True)
    }
    both = "glucose_sensor;glucose_capillary"
    vent, oxy, cap = "ventilation_hours", "oxygen_hours", "glucose_capillary"
    pressure = "blood_pressure;creatinine"
    diabetes = {
        "sensor": ("glucose_sensor", 4, "day", 30, 7, 3),
        "capillary_one_injection": (cap, 2, "day", 30, 7, 3),
        "capillary_multi_injection": (cap, 4, "day", 30, 7, 3),
        "": (both, 4, "day", 30, 7, 3),
    }
    assert table == {
        ("ODYSIGHT", ""): ("visual_acuity", 1, "eye_day", 8, None, 8, "C"),
        ("HEART_FAILURE", ""): ("weight", 1, "day", 30, None, 3, "C"),
        ("RESPIRATORY_FAILURE", "ventilation"): (vent, 1, "day", 30, None, 3, "C"),
        ("RESPIRATORY_FAILURE", "oxygen"): (oxy, 1, "day", 30, None, 3, "C"),
        ("RESPIRATORY_FAILURE", ""): (f"{vent};{oxy}", 1, "day", 30, None, 3, "A"),
        **{("DIABETES", p): (*v, "A" if p == "" else "C") for p, v in diabetes.items()},
        **{("GESTATIONAL_DIABETES", p): (*v, "A") for p, v in diabetes.items()},
        ("RENAL_FAILURE", "hemodialysis"): ("dialysis_session", 1, "day", "3/week", None, 4, "A"),
        ("RENAL_FAILURE", "peritoneal_dialysis"): (
            "weight;ultrafiltration",
            1,
            "day",
            30,
            None,
            3,
            "A",
        ),
        ("RENAL_FAILURE", "transplant"): (pressure, 1, "day", 30, None, 3, "A"),
        ("RENAL_FAILURE", "ckd_stage_4_5"): (pressure, 1, "day", 30, None, 3, "A"),
        ("RENAL_FAILURE", ""): (pressure, 1, "day", 30, None, 3, "A"),
        ("CARDIAC_IMPLANT", ""): ("device_report", 1, "day", 30, None, 3, "A"),
    }
    assert load_counting_rules()["source"].null_count() == 0


def test_only_visual_acuity_counts_for_odysight():
    measures = activity_measures().filter(pl.col("activity_code") == "ODYSIGHT")
    counted = dict(zip(measures["measure_type"], measures["is_counted"], strict=True))
    assert counted == {"visual_acuity": True, "amsler_grid": False, "questionnaire": False}


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda df: pl.concat([df, df.head(1)]), "duplicate activity_code"),
        (lambda df: df.with_columns(pricing=pl.lit("per_week")), "unknown pricing"),
        (lambda df: df.with_columns(source=pl.lit(None, pl.String)), "needs a source"),
    ],
)
def test_bad_catalog_is_rejected(tmp_path, change, message):
    bad = change(pl.read_csv(CATALOG_DIR / "activities.csv", infer_schema=False))
    bad.write_csv(tmp_path / "activities.csv")
    with pytest.raises(CatalogError, match=message):
        load_activities(tmp_path / "activities.csv")


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda df: pl.concat([df, df.head(1)]), "duplicate"),
        (lambda df: df.with_columns(grain=pl.lit("per_week")), "unknown grain"),
        (lambda df: df.with_columns(status=pl.lit("LIKELY")), "unknown status"),
        (lambda df: df.with_columns(min_per_day=pl.lit("0")), "min_per_day must be at least 1"),
        (lambda df: df.with_columns(expected_units=pl.lit("0")), "expected_units must be positive"),
        (lambda df: df.with_columns(default_sessions_per_week=pl.lit("3")), "not both"),
        (lambda df: df.with_columns(source=pl.lit(None, pl.String)), "needs a source"),
        (lambda df: df.filter(pl.col("activity_code") != "CARDIAC_IMPLANT"), "no default row"),
        (
            lambda df: pl.concat([df, df.head(1).with_columns(activity_code=pl.lit("NEW"))]),
            "not in the catalog",
        ),
    ],
)
def test_bad_counting_rules_are_rejected(tmp_path, change, message):
    bad = change(pl.read_csv(CATALOG_DIR / "counting_rules.csv", infer_schema=False))
    bad.write_csv(tmp_path / "counting_rules.csv")
    with pytest.raises(CatalogError, match=message):
        load_counting_rules(tmp_path / "counting_rules.csv")


def add_rows(path, template: dict, **changes) -> None:
    """Append a copy of ``template`` (a row of the CSV file) with ``changes``."""
    rows = pl.read_csv(path, infer_schema=False)
    new = pl.DataFrame([template | {k: str(v) for k, v in changes.items()}], schema=rows.schema)
    pl.concat([rows, new]).write_csv(path)


def test_adding_a_line_and_a_profile_needs_no_code_change(tmp_path, monkeypatch):
    """A new activity (with its default counting row) and a new profile of an existing line, in
    a catalog folder given by OBSERVANCE_CATALOG_DIR, are counted end to end."""
    catalog = catalog_copy(tmp_path, monkeypatch)
    activities = pl.read_csv(catalog / "activities.csv", infer_schema=False)
    diabetes = activities.filter(pl.col("activity_code") == "DIABETES").row(0, named=True)
    add_rows(
        catalog / "activities.csv",
        diabetes,
        activity_code="ONCOLOGY_TEST",
        measure_types="symptom_report;photo",
        eye_measure_types="photo",
    )
    rules = pl.read_csv(catalog / "counting_rules.csv", infer_schema=False)
    template = rules.filter(pl.col("activity_code") == "HEART_FAILURE").row(0, named=True)
    # a new line: a unit is a day with 2 symptom reports or photos, 4 a period; photos of both
    # eyes the same day are one unit (grain: day)
    add_rows(
        catalog / "counting_rules.csv",
        template,
        activity_code="ONCOLOGY_TEST",
        counted_measure_types="symptom_report;photo",
        min_per_day=2,
        expected_units=4,
        status="ASSUMPTION",
    )
    # a new heart-failure profile counting blood pressure, 10 days a period
    add_rows(
        catalog / "counting_rules.csv",
        template,
        monitoring_profile="pressure_only",
        counted_measure_types="blood_pressure",
        expected_units=10,
    )
    landing = tmp_path / "landing"
    write_rows(
        landing / "enrollments" / "e.csv",
        [
            enrollment("E1", "P1", "2025-01-01", activity_code="ONCOLOGY_TEST"),
            enrollment(
                "E2",
                "P2",
                "2025-01-01",
                activity_code="HEART_FAILURE",
                monitoring_profile="pressure_only",
            ),
        ],
    )
    write_rows(
        landing / "prescriptions" / "p.csv",
        [prescription(f"R{e}", e, "2025-01-01", "2025-12-31") for e in ("E1", "E2")],
    )
    onco = dict(activity_code="ONCOLOGY_TEST")
    write_rows(
        landing / "transmissions" / "t.jsonl",
        [
            # Jan 2: 2 symptom reports -> a unit; Jan 5: one report and one photo -> a unit;
            # Jan 9: photos of both eyes -> one unit (day grain), not two
            tx("P1", "2025-01-02 09:00", measure_type="symptom_report", **onco),
            tx("P1", "2025-01-02 18:00", measure_type="symptom_report", **onco),
            tx("P1", "2025-01-05 09:00", measure_type="symptom_report", **onco),
            tx("P1", "2025-01-05 09:30", measure_type="photo", eye="OS", **onco),
            tx("P1", "2025-01-09 09:00", measure_type="photo", **onco) | {"eye": "OD"},
            tx("P1", "2025-01-09 09:01", measure_type="photo", eye="OS", **onco),
            # Jan 12: one report only -> an invalid unit
            tx("P1", "2025-01-12 09:00", measure_type="symptom_report", **onco),
        ]
        + [
            tx(
                "P2",
                f"2025-01-{d:02d} 09:00",
                activity_code="HEART_FAILURE",
                measure_type="blood_pressure",
            )
            for d in range(1, 6)
        ],
    )
    warehouse = tmp_path / "wh.duckdb"
    run(landing, warehouse, "2025-02-15")
    first = query(
        warehouse,
        "SELECT enrollment_id, expected_units, valid_units, invalid_units, data_status "
        "FROM marts.patient_periods WHERE period_index = 1 ORDER BY enrollment_id",
    )
    assert first.rows() == [("E1", 4, 3, 1, "sufficient"), ("E2", 10, 5, 0, "sufficient")]
    assert query(warehouse, "SELECT count(*) AS n FROM ops.quarantine")["n"][0] == 0
    findings = query(warehouse, "SELECT kind FROM marts.data_quality_findings")
    assert "unknown_monitoring_profile" not in findings["kind"].to_list()
