"""R1-R7 on hand-made histories, run once through the asset graph (one scenario per enrollment).

Each enrollment below is one rule or edge of shared/domain/rules.md; the expected values are
worked out by hand in the comments, not computed by the code under test.
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import polars as pl
import pytest

from pipelines import config
from pipelines.models import MODELS_BY_KEY, build
from pipelines.warehouse import copy_warehouse, writer
from tests.helpers import (
    enrollment,
    periods_by_enrollment,
    prescription,
    query,
    run,
    tx,
    write_rows,
)

AS_OF = "2025-12-01"


def day(start: str, offset: int) -> str:
    return (date.fromisoformat(start) + timedelta(days=offset)).isoformat()


def eye_tests(patient: str, start: str, days: list[int], eyes=("OD", "OS"), **fields) -> list:
    """Visual-acuity tests at 10:00 Paris on start+d for each d and each eye."""
    return [tx(patient, f"{day(start, d)} 10:00", eye=eye, **fields) for d in days for eye in eyes]


def full_period(patient: str, start: str, period: int) -> list:
    """8 valid tests (4 days x 2 eyes) in period ``period`` (1-based) of an enrollment."""
    first = 30 * (period - 1)
    return eye_tests(patient, start, [first + 1, first + 8, first + 15, first + 22])


def year_rx(rx_id: str, enrollment_id: str, start: str) -> dict:
    return prescription(rx_id, enrollment_id, start, day(start, 364))


ENROLLMENTS: list[dict] = []
UPDATES: list[dict] = []  # a later enrollments file: new versions (end dates now known)
PRESCRIPTIONS: list[dict] = []
TX: list[dict] = []
LATE_TX: list[dict] = []  # a later arrival folder
OTHER_EXPLOITANT_TX: list[dict] = []  # the same tests also sent under a second exploitant


def scenario(eid: str, start: str, activity: str = "ODYSIGHT", rx: bool = True, **kw) -> str:
    patient = "P" + eid
    ENROLLMENTS.append(enrollment(eid, patient, start, activity_code=activity, **kw))
    if rx:
        PRESCRIPTIONS.append(year_rx("RX" + eid, eid, start))
    return patient


# S1 exactly 50 %: P1 4 tests -> sufficient (0.5); P2 3 tests -> insufficient but billable;
# P3 (ends on its 30th day, Mar 31: served in full) -> previous_period_insufficient.
p = scenario("S01", "2025-01-01", end_date="2025-03-31", end_reason="stopped")
TX += eye_tests(p, "2025-01-01", [2, 9]) + eye_tests(p, "2025-01-01", [31, 40, 50], eyes=("OD",))
TX += full_period(p, "2025-01-01", 3)

# S2 the same eye twice a day is one unit: OD twice on day 2, OS on day 2, both eyes day 9 -> 4.
p = scenario("S02", "2025-01-01")
TX += [tx(p, "2025-01-03 08:00", eye="OD"), tx(p, "2025-01-03 20:00", eye="OD")]
TX += eye_tests(p, "2025-01-01", [2], eyes=("OS",)) + eye_tests(p, "2025-01-01", [8])

# S3 calibration bounds are inclusive; just outside is invalid; missing is not evidence.
p = scenario("S03", "2025-01-01")
TX += [
    tx(p, "2025-01-02 10:00", eye="OD", distance_cm=35.0, ambient_lux=300.0),  # valid
    tx(p, "2025-01-02 10:00", eye="OS", distance_cm=45.0, ambient_lux=300.0),  # valid
    tx(p, "2025-01-03 10:00", eye="OD", distance_cm=40.0, ambient_lux=5.0),  # valid
    tx(p, "2025-01-03 10:00", eye="OS", distance_cm=40.0, ambient_lux=2000.0),  # valid
    tx(p, "2025-01-04 10:00", eye="OD"),  # valid: no calibration recorded
    tx(p, "2025-01-05 10:00", eye="OD", distance_cm=34.9, ambient_lux=300.0),  # invalid
    tx(p, "2025-01-05 10:00", eye="OS", distance_cm=45.1, ambient_lux=300.0),  # invalid
    tx(p, "2025-01-06 10:00", eye="OD", distance_cm=40.0, ambient_lux=4.9),  # invalid
    tx(p, "2025-01-06 10:00", eye="OS", distance_cm=40.0, ambient_lux=2000.1),  # invalid
    # an invalid and a valid test of the same eye and day: one valid unit, not invalid
    tx(p, "2025-01-07 09:00", eye="OD", distance_cm=60.0, ambient_lux=300.0),
    tx(p, "2025-01-07 10:00", eye="OD", distance_cm=40.0, ambient_lux=300.0),
]  # -> valid 6, invalid 4, completeness 6/8

# S4 March DST (Sun 30 Mar 2025, 02:00 -> 03:00): P1 = Mar 1..Mar 30, P2 from Mar 31.
p = scenario("S04", "2025-03-01")
TX += [
    tx(p, "2025-03-30 01:30", eye="OS"),  # before the change, +01:00 -> Mar 30, P1
    tx(p, "2025-03-30 23:30", eye="OD"),  # +02:00 = 21:30Z -> Mar 30, P1
    tx(p, "2025-03-31 00:30", eye="OD"),  # +02:00 = 22:30Z Mar 30 -> Mar 31, P2
    tx(p, "2025-03-30T21:45:00Z", eye="OS"),  # 23:45 Paris Mar 30 -> P1
    tx(p, "2025-03-30T22:15:00Z", eye="OS"),  # 00:15 Paris Mar 31 -> P2
]  # -> P1: OS Mar 30 (twice: one unit) + OD Mar 30 = 2 units; P2: OD + OS Mar 31 = 2 units

# S5 October DST (Sun 26 Oct 2025, 03:00 -> 02:00): P1 = Sep 27..Oct 26, P2 from Oct 27.
p = scenario("S05", "2025-09-27")
TX += [
    tx(p, "2025-10-26T02:30:00+02:00", eye="OD"),  # first 02:30 -> Oct 26, P1
    tx(p, "2025-10-26T02:30:00+01:00", eye="OS"),  # second 02:30 -> Oct 26, P1
    tx(p, "2025-10-26 23:30", eye="OD"),  # +01:00 = 22:30Z -> Oct 26, P1 (same unit as above)
    tx(p, "2025-10-27 00:30", eye="OD"),  # +01:00 = 23:30Z Oct 26 -> Oct 27, P2
    tx(p, "2025-10-26T23:15:00Z", eye="OS"),  # 00:15 Paris Oct 27 -> P2
]  # -> P1: 2 units (OD, OS on Oct 26); P2: 2 units

# S6 no data then recovery: P1 none -> no_data (+ reinforce); P2 full -> previous insufficient;
# P3 full -> billable.
p = scenario("S06", "2025-01-01")
TX += full_period(p, "2025-01-01", 2) + full_period(p, "2025-01-01", 3)

# S7 two insufficient periods: P1 2 units (billable, reinforce), P2 1 unit (blocked, stop).
p = scenario("S07", "2025-01-01")
TX += eye_tests(p, "2025-01-01", [3]) + eye_tests(p, "2025-01-01", [33], eyes=("OD",))

# S8 death in a period without data: P1 full, died on day 40 (P2 day 10) with no data -> due.
p = scenario("S08", "2025-01-01")
UPDATES.append(enrollment("S08", p, "2025-01-01", end_date="2025-02-10", end_reason="deceased"))
TX += full_period(p, "2025-01-01", 1)

# S9 death does not lift rule 4: P1 insufficient, died in P2 -> previous_period_insufficient.
p = scenario("S09", "2025-01-01", end_date="2025-02-10", end_reason="deceased")
TX += eye_tests(p, "2025-01-01", [3]) + eye_tests(p, "2025-01-01", [32, 35])

# S10 stop in mid-period: P1 full, stopped on P2 day 15 with full data -> not_completed.
p = scenario("S10", "2025-01-01")
UPDATES.append(enrollment("S10", p, "2025-01-01", end_date="2025-02-14", end_reason="stopped"))
TX += full_period(p, "2025-01-01", 1) + eye_tests(p, "2025-01-01", [31, 35, 38, 42])

# S11 transferred on the 30th day of P2: the period was served -> billable; no P3.
p = scenario("S11", "2025-01-01", end_date="2025-03-01", end_reason="transferred")
TX += full_period(p, "2025-01-01", 1) + full_period(p, "2025-01-01", 2)

# S12 prescription gap: A covers days 0..59 (P1, P2), B from day 65 -> P3 (day 60) no
# prescription, P4 (day 90) covered.
p = scenario("S12", "2025-01-01", rx=False)
PRESCRIPTIONS += [
    prescription("RXS12A", "S12", "2025-01-01", day("2025-01-01", 59)),
    prescription("RXS12B", "S12", day("2025-01-01", 65), day("2025-01-01", 400), "renewal"),
]
TX += [t for k in (1, 2, 3, 4) for t in full_period(p, "2025-01-01", k)]

# S13 trial then renewal: trial days 0..91 (92 days) covers P1..P4 (P4 starts day 90),
# renewal from day 92 covers P5 -> all billable.
p = scenario("S13", "2025-01-01", rx=False)
PRESCRIPTIONS += [
    prescription("RXS13T", "S13", "2025-01-01", day("2025-01-01", 91), "trial"),
    prescription("RXS13R", "S13", day("2025-01-01", 92), day("2025-01-01", 456), "renewal"),
]
TX += [t for k in (1, 2, 3, 4, 5) for t in full_period(p, "2025-01-01", k)]

# S14 over-long trial (130 days) counts for 92 days: P5 (day 120) -> no_prescription.
p = scenario("S14", "2025-01-01", rx=False)
PRESCRIPTIONS.append(prescription("RXS14T", "S14", "2025-01-01", day("2025-01-01", 129), "trial"))
TX += [t for k in (1, 2, 3, 4, 5) for t in full_period(p, "2025-01-01", k)]

# S15 open period and the as_of edge: start Oct 2 -> P1 Oct 2..31, P2 Nov 1..30 closed the day
# before as_of; P3 starts on as_of -> open. A test after as_of does not count.
p = scenario("S15", "2025-10-02")
TX += full_period(p, "2025-10-02", 1) + full_period(p, "2025-10-02", 2)
TX += [tx(p, "2025-12-01 09:00", eye="OD"), tx(p, "2025-12-05 09:00", eye="OS")]

# S16 daily line, exactly 50 %: P1 15 days with data (some days twice) -> sufficient;
# P2 14 days -> insufficient.
p = scenario("S16", "2025-01-01", activity="HEART_FAILURE")
TX += [tx(p, f"{day('2025-01-01', d)} 08:00", activity_code="HEART_FAILURE") for d in range(15)]
TX += [
    tx(
        p,
        f"{day('2025-01-01', d)} 19:00",
        activity_code="HEART_FAILURE",
        measure_type="blood_pressure",
    )
    for d in range(5)
]
TX += [tx(p, f"{day('2025-01-01', d)} 08:00", activity_code="HEART_FAILURE") for d in range(30, 44)]

# S17 Amsler grids and questionnaires never count: 4 acuity tests + 8 Amsler + 1 questionnaire.
p = scenario("S17", "2025-01-01")
TX += eye_tests(p, "2025-01-01", [2, 9])
TX += eye_tests(p, "2025-01-01", [3, 10, 17, 24], measure_type="amsler_grid")
TX += [tx(p, "2025-01-20 10:00", measure_type="questionnaire", eye=None)]

# S18 late arrival: P1's tests arrive 40 days later in another folder; they still count for P1.
p = scenario("S18", "2025-01-01")
LATE_TX += eye_tests(p, "2025-01-01", [2, 9, 16, 23], received_at="2025-02-15T10:00:00+01:00")

# S19 an enrollment ending before it starts: no period, a data-quality finding.
scenario("S19", "2025-05-01", end_date="2025-04-01", end_reason="stopped")

# S20 no prescription at all: every closed period no_prescription, a data-quality finding.
p = scenario("S20", "2025-01-01", rx=False)
TX += full_period(p, "2025-01-01", 1)

# S21 the same tests sent by two exploitants are the same units: 4 units (exactly 50 %), not 8.
p = scenario("S21", "2025-01-01")
TX += eye_tests(p, "2025-01-01", [1, 8])
OTHER_EXPLOITANT_TX += eye_tests(p, "2025-01-01", [1, 8], exploitant_id="EXP02")

# S22 every day of period 1, both eyes: 60 units, the last (day 30, OS) too; under a second
# exploitant, one eye of the 30th day and of the 31st (period 2's first): still 60 and 2 units,
# and only an invalid test of a unit the first exploitant sent valid: still valid. Day 42's OS
# is in period 2 (3 units).
p = scenario("S22", "2025-01-01")
TX += eye_tests(p, "2025-01-01", list(range(31))) + eye_tests(p, "2025-01-01", [41], eyes=("OS",))
OTHER_EXPLOITANT_TX += eye_tests(p, "2025-01-01", [29, 30], eyes=("OS",), exploitant_id="EXP02")
OTHER_EXPLOITANT_TX += [
    tx(p, "2025-01-11 11:00", eye="OD", exploitant_id="EXP02", distance_cm=90.0)  # invalid
]

# Unmatched: a patient with no enrollment, and an enrolled patient before the start date.
TX += eye_tests("PNOBODY", "2025-01-01", [1, 2])
TX += [tx("PS15", "2025-09-01 10:00", eye="OD")]


def write_landing(landing: Path) -> Path:
    """The landing folder of every scenario above (tests/test_spark.py runs it on Spark too)."""
    write_rows(landing / "enrollments" / "2025-01-01" / "enrollments.csv", ENROLLMENTS)
    write_rows(landing / "enrollments" / "2025-06-01" / "enrollments.parquet", UPDATES)
    write_rows(landing / "prescriptions" / "2025-01-01" / "prescriptions.csv", PRESCRIPTIONS)
    write_rows(landing / "transmissions" / "2025-01-01" / "EXP01.jsonl", TX)
    write_rows(landing / "transmissions" / "2025-01-01" / "EXP02.jsonl", OTHER_EXPLOITANT_TX)
    write_rows(landing / "transmissions" / "2025-02-15" / "EXP01.jsonl.gz", LATE_TX)
    return landing


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory):
    landing = write_landing(tmp_path_factory.mktemp("landing"))
    path = tmp_path_factory.mktemp("wh") / "warehouse.duckdb"
    run(landing, path, AS_OF)
    return path


@pytest.fixture(scope="module")
def periods(warehouse) -> dict[str, pl.DataFrame]:
    return periods_by_enrollment(warehouse)


def column(periods, eid: str, name: str) -> list:
    return periods[eid].sort("period_index")[name].to_list()


def test_nothing_was_quarantined(warehouse):
    assert query(warehouse, "SELECT count(*) AS n FROM ops.quarantine")["n"][0] == 0


def test_r2_periods_are_30_days_date_to_date(periods):
    s06 = periods["S06"].sort("period_index")
    assert s06["period_start"][0] == date(2025, 1, 1)
    assert s06["period_end"][0] == date(2025, 1, 30)
    assert s06["period_start"][1] == date(2025, 1, 31)
    assert (s06["period_end"] - s06["period_start"]).dt.total_days().to_list() == [29] * s06.height
    # as_of 2025-12-01: Jan 1 + 30*11 = Nov 27 -> the 12th period (Nov 27..Dec 26) is open
    assert s06.height == 12
    assert column(periods, "S06", "is_closed") == [True] * 11 + [False]


def test_r2_open_period_and_as_of_edge(periods):
    assert column(periods, "S15", "is_closed") == [True, True, False]
    assert column(periods, "S15", "period_start")[2] == date(2025, 12, 1)
    assert column(periods, "S15", "block_reason") == [None, None, "open"]
    # the test on as_of counts (provisionally), the one after as_of does not
    assert column(periods, "S15", "valid_units")[2] == 1


def test_r2_enrollment_end_bounds_periods(periods):
    assert column(periods, "S11", "period_index") == [1, 2]
    assert column(periods, "S11", "effective_end") == [date(2025, 1, 30), date(2025, 3, 1)]
    assert column(periods, "S08", "effective_end") == [date(2025, 1, 30), date(2025, 2, 10)]
    assert "S19" not in periods


def test_r3_a_unit_sent_by_two_exploitants_counts_once(periods):
    assert column(periods, "S21", "valid_units")[0] == 4
    assert column(periods, "S21", "completeness")[0] == 0.5


def test_r3_every_day_and_eye_of_a_period_is_its_own_unit(periods):
    """60 distinct units in one period, the last day's last eye too; the tests of the next
    period's first day count there."""
    assert column(periods, "S22", "valid_units")[:2] == [60, 3]
    assert column(periods, "S22", "invalid_units")[:2] == [0, 0]


def test_r2_the_period_length_is_a_parameter(warehouse, tmp_path, monkeypatch):
    """PERIOD_DAYS drives the cut and the count: with 42- or 43-day periods, S22's first period
    holds its 31 days of both eyes and day 42's OS (63 units); no length is too long to count."""
    copy = tmp_path / "warehouse.duckdb"
    copy_warehouse(warehouse, copy, link=True)
    with writer(copy) as con:
        for days in (42, 43):
            monkeypatch.setattr(config, "PERIOD_DAYS", days)
            # through the model runner: a new period length rebuilds the counts in full
            for key in ("staging.periods", "staging.period_units"):
                build(con, MODELS_BY_KEY[key], date.fromisoformat(AS_OF))
            units = con.sql(
                "SELECT valid_units FROM staging.period_units "
                "WHERE enrollment_id = 'S22' AND period_index = 1"
            ).fetchall()
            assert units == [(63,)]


def test_r3_r4_exactly_half_is_sufficient(periods):
    assert column(periods, "S01", "valid_units") == [4, 3, 8]
    assert column(periods, "S01", "completeness") == [0.5, 0.375, 1.0]
    assert column(periods, "S01", "data_status") == ["sufficient", "insufficient", "sufficient"]
    assert column(periods, "S01", "expected_units") == [8, 8, 8]


def test_r3_one_unit_per_eye_per_day(periods):
    assert column(periods, "S02", "valid_units")[0] == 4


def test_r3_calibration_bounds(periods):
    assert column(periods, "S03", "valid_units")[0] == 6
    assert column(periods, "S03", "invalid_units")[0] == 4
    assert column(periods, "S03", "completeness")[0] == 0.75


def test_r3_amsler_and_questionnaire_do_not_count(periods):
    assert column(periods, "S17", "valid_units")[0] == 4


def test_r3_daily_line_exactly_half(periods):
    assert column(periods, "S16", "valid_units")[:2] == [15, 14]
    assert column(periods, "S16", "expected_units")[0] == 30
    assert column(periods, "S16", "data_status")[:2] == ["sufficient", "insufficient"]


def test_r1_midnight_across_march_dst(periods):
    assert column(periods, "S04", "valid_units")[:2] == [2, 2]


def test_r1_midnight_across_october_dst(periods):
    assert column(periods, "S05", "valid_units")[:2] == [2, 2]


def test_r1_paris_dates_of_boundary_tests(warehouse):
    dates = query(
        warehouse,
        "SELECT local_date, unit_eye, period_index FROM staging.matched_units "
        "WHERE enrollment_id = 'S05' ORDER BY local_date, unit_eye",
    )
    assert dates.rows() == [
        (date(2025, 10, 26), "OD", 1),
        (date(2025, 10, 26), "OS", 1),
        (date(2025, 10, 27), "OD", 2),
        (date(2025, 10, 27), "OS", 2),
    ]


def test_r5_insufficient_blocks_the_next_period(periods):
    assert column(periods, "S01", "billable") == [True, True, False]
    assert column(periods, "S01", "block_reason") == [None, None, "previous_period_insufficient"]


def test_r5_no_data_then_recovery(periods):
    assert column(periods, "S06", "block_reason")[:3] == [
        "no_data",
        "previous_period_insufficient",
        None,
    ]
    assert column(periods, "S06", "data_status")[:3] == ["no_data", "sufficient", "sufficient"]


def test_r5_death_in_a_period_without_data_is_due(periods):
    assert column(periods, "S08", "data_status") == ["sufficient", "no_data"]
    assert column(periods, "S08", "billable") == [True, True]
    assert column(periods, "S08", "died_in_period") == [False, True]


def test_r5_death_does_not_lift_previous_insufficient(periods):
    assert column(periods, "S09", "block_reason") == [None, "previous_period_insufficient"]


def test_r5_stop_in_mid_period_is_not_completed(periods):
    assert column(periods, "S10", "block_reason") == [None, "not_completed"]
    assert column(periods, "S10", "valid_units") == [8, 8]


def test_r5_end_on_the_30th_day_is_served(periods):
    assert column(periods, "S11", "billable") == [True, True]


def test_r7_prescription_gap(periods):
    assert column(periods, "S12", "block_reason")[:4] == [None, None, "no_prescription", None]


def test_r7_trial_then_renewal(periods):
    assert column(periods, "S13", "billable")[:5] == [True] * 5


def test_r7_overlong_trial_is_capped(periods, warehouse):
    assert column(periods, "S14", "block_reason")[:5] == [None, None, None, None, "no_prescription"]
    findings = query(
        warehouse,
        "SELECT kind FROM marts.data_quality_findings WHERE entity_id = 'RXS14T'",
    )
    assert findings["kind"].to_list() == ["prescription_too_long"]


def test_r7_no_prescription(periods, warehouse):
    assert column(periods, "S20", "block_reason")[0] == "no_prescription"
    kinds = query(
        warehouse, "SELECT kind, entity_id FROM marts.data_quality_findings ORDER BY ALL"
    ).rows()
    assert ("enrollment_without_prescription", "S20") in kinds
    assert ("enrollment_end_before_start", "S19") in kinds


def test_r6_reinforce_and_stop(periods):
    assert column(periods, "S07", "data_status")[:2] == ["insufficient", "insufficient"]
    assert column(periods, "S07", "block_reason")[:2] == [None, "previous_period_insufficient"]
    assert column(periods, "S07", "reinforce_recommended")[:2] == [True, False]
    assert column(periods, "S07", "stop_required")[:3] == [False, True, True]
    # no_data in P1 then sufficient: reinforce but never stop
    assert column(periods, "S06", "reinforce_recommended")[0] is True
    assert not any(column(periods, "S06", "stop_required")[:3])
    # sufficient P1: no reinforcement
    assert column(periods, "S01", "reinforce_recommended")[0] is False


def test_r6_open_period_never_flags(periods):
    open_rows = pl.concat(periods.values()).filter(~pl.col("is_closed"))
    assert not open_rows["stop_required"].any()
    assert not open_rows["reinforce_recommended"].any()
    assert not open_rows["billable"].any()


def test_late_arrival_counts_for_its_measurement_day(periods):
    assert column(periods, "S18", "valid_units")[0] == 8


def test_enrollment_update_replaces_the_first_version(periods):
    assert column(periods, "S08", "period_index") == [1, 2]  # ended by the later file


def test_unmatched_transmissions_are_reported(warehouse):
    unmatched = query(warehouse, "SELECT * FROM marts.unmatched_transmissions")
    assert unmatched["transmissions"].sum() == 5  # 4 of PNOBODY + 1 of PS15 before its start
    assert unmatched["patients"].sum() == 2
