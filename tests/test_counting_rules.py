"""R3 per line and monitoring profile, and R4's denominator, on hand-made histories run once
through the asset graph (one scenario per enrollment).

Every enrollment starts on 2025-01-01: period 1 is Jan 1-30, period 2 Jan 31-Mar 1, period 3
Mar 2-31 (it holds the night of the March DST change), period 4 Apr 1-30 is open on AS_OF. The
expected values are worked out by hand in the comments, from shared/domain/rules.md R3.
"""

from __future__ import annotations

from datetime import date, timedelta

import polars as pl
import pytest

from tests.helpers import (
    enrollment,
    periods_by_enrollment,
    prescription,
    query,
    run,
    tx,
    write_rows,
)

AS_OF = "2025-04-15"
START = "2025-01-01"

ENROLLMENTS: list[dict] = []
PRESCRIPTIONS: list[dict] = []
TX: list[dict] = []


def day(offset: int) -> str:
    return (date.fromisoformat(START) + timedelta(days=offset)).isoformat()


def scenario(eid: str, activity: str, **fields) -> str:
    patient = "P" + eid
    ENROLLMENTS.append(enrollment(eid, patient, START, activity_code=activity, **fields))
    PRESCRIPTIONS.append(prescription("RX" + eid, eid, START, day(364)))
    return patient


def readings(patient, activity, measure, days, per_day, hour=8, **fields) -> list[dict]:
    """``per_day`` readings of ``measure`` an hour apart from ``hour``:00 Paris on each day."""
    return [
        tx(
            patient,
            f"{day(d)} {hour + i:02d}:00",
            activity_code=activity,
            measure_type=measure,
            **fields,
        )
        for d in days
        for i in range(per_day)
    ]


# C01 heart failure sends blood pressure every day but no weight: nothing counts -> no_data, and
# blood pressure is not an invalid unit either (it is not a counted type).
p = scenario("C01", "HEART_FAILURE")
TX += readings(p, "HEART_FAILURE", "blood_pressure", range(30), 1)

# C02 diabetes sensor: P1 3 readings a day every day -> 30 invalid units, no_data; P2 exactly 4
# a day on 15 days -> 15 valid, sufficient; P3 around the change to summer time (Sun Mar 30,
# 02:00 -> 03:00): 4 readings on Mar 29 the last at 23:58 (+01:00), 4 on Mar 30 the first at
# 00:02 (+01:00) and the last at 23:58 (+02:00, after the change), 4 on Mar 31 the first at 00:02
# (+02:00) -> 3 units. By UTC dates, or with a fixed +01:00, a 23:58 or 00:02 reading falls on
# the wrong day and a day holds 3 or 5 readings.
p = scenario("C02", "DIABETES", monitoring_profile="sensor")
TX += readings(p, "DIABETES", "glucose_sensor", range(30), 3)
TX += readings(p, "DIABETES", "glucose_sensor", range(30, 45), 4)
TX += (
    [
        tx(p, f"2025-03-29 {h}", activity_code="DIABETES", measure_type="glucose_sensor")
        for h in ("20:00", "21:00", "22:00", "23:58")
    ]
    + [
        tx(p, f"2025-03-30 {h}", activity_code="DIABETES", measure_type="glucose_sensor")
        for h in ("00:02", "08:00", "09:00", "23:58")
    ]
    + [
        tx(p, f"2025-03-31 {h}", activity_code="DIABETES", measure_type="glucose_sensor")
        for h in ("00:02", "08:00", "09:00", "10:00")
    ]
)

# C03 capillary, one injection a day: 2 finger-pricks a day on 15 days -> 15 valid, sufficient;
# one a day on 3 more days -> 3 invalid units.
p = scenario("C03", "DIABETES", monitoring_profile="capillary_one_injection")
TX += readings(p, "DIABETES", "glucose_capillary", range(15), 2)
TX += readings(p, "DIABETES", "glucose_capillary", range(15, 18), 1)

# C04 capillary, several injections (profile sent in another case, with spaces): the same
# 2 a day -> 15 invalid units, no_data.
p = scenario("C04", "DIABETES", monitoring_profile=" Capillary_Multi_Injection ")
TX += readings(p, "DIABETES", "glucose_capillary", range(15), 2)

# C05 diabetes without a profile: the strictest reading, 4 glucose readings of either kind.
# 2 sensor + 2 capillary on 15 days -> 15 valid; 3 capillary on 5 more days -> 5 invalid (one
# injection's profile would count them). A missing_monitoring_profile finding.
p = scenario("C05", "DIABETES")
TX += readings(p, "DIABETES", "glucose_sensor", range(15), 2)
TX += readings(p, "DIABETES", "glucose_capillary", range(15), 2, hour=14)
TX += readings(p, "DIABETES", "glucose_capillary", range(15, 20), 3)

# C06 hemodialysis, sessions a week not sent: 3 by default -> round(3 x 30 / 7) = 13 expected.
# P1 7 sessions -> 7/13 sufficient; P2 6 sessions -> 6/13 < 0.5 insufficient. Weights and
# pressures of each session do not count.
p = scenario("C06", "RENAL_FAILURE", monitoring_profile="hemodialysis")
sessions = [0, 2, 4, 7, 9, 11, 14] + [30, 32, 35, 37, 39, 42]
TX += readings(p, "RENAL_FAILURE", "dialysis_session", sessions, 1)
TX += readings(p, "RENAL_FAILURE", "weight", range(60), 1, hour=12)
TX += readings(p, "RENAL_FAILURE", "blood_pressure", range(60), 1, hour=13)

# C07 hemodialysis 4 sessions a week -> round(4 x 30 / 7) = 17 expected; P1 8 sessions -> 8/17
# < 0.5 insufficient (it would be sufficient at 13).
p = scenario("C07", "RENAL_FAILURE", monitoring_profile="hemodialysis", sessions_per_week=4)
TX += readings(p, "RENAL_FAILURE", "dialysis_session", [0, 2, 4, 6, 7, 9, 11, 13], 1)

# C08 respiratory under oxygen: SpO2 every day of P1, oxygen hours on 10 days -> 10 valid.
p = scenario("C08", "RESPIRATORY_FAILURE", monitoring_profile="oxygen")
TX += readings(p, "RESPIRATORY_FAILURE", "spo2", range(30), 2)
TX += readings(p, "RESPIRATORY_FAILURE", "oxygen_hours", range(10), 1, hour=20)

# C09 respiratory under ventilation: ventilation hours on 15 days -> 15 valid; oxygen hours on
# 10 other days do not count for this profile.
p = scenario("C09", "RESPIRATORY_FAILURE", monitoring_profile="ventilation")
TX += readings(p, "RESPIRATORY_FAILURE", "ventilation_hours", range(15), 1)
TX += readings(p, "RESPIRATORY_FAILURE", "oxygen_hours", range(15, 25), 1)

# C10 weekly transmission (diabetes sensor): P1 data days 0-9 and 17-29, 7 days without
# (10-16) -> max_gap_days 7, not flagged; P2 data days 30-39 and 48-59, 8 days without (40-47)
# -> 8, flagged. P3 without data -> 30, flagged; P4 open on Apr 15 without data: Apr 1-14 -> 14,
# flagged and alerted.
p = scenario("C10", "DIABETES", monitoring_profile="sensor")
TX += readings(p, "DIABETES", "glucose_sensor", [*range(10), *range(17, 40), *range(48, 60)], 4)

# C11 diabetes sensor in P4 on Apr 1, 7 and 13: gaps of 5 days, the last day (Apr 14) 1 -> 5,
# no weekly alert. Readings below the daily minimum still count as transmitted days.
p = scenario("C11", "DIABETES", monitoring_profile="sensor")
TX += readings(p, "DIABETES", "glucose_sensor", [90, 96], 4)
TX += readings(p, "DIABETES", "glucose_sensor", [102], 2)

# C12 heart failure with a profile the line does not have: the default rule (weight) applies,
# an unknown_monitoring_profile finding. 15 weight days -> sufficient.
p = scenario("C12", "HEART_FAILURE", monitoring_profile="sensor")
TX += readings(p, "HEART_FAILURE", "weight", range(15), 1)

# C13 ODYSIGHT without a profile: the line has none, so no finding. 8 tests -> sufficient.
p = scenario("C13", "ODYSIGHT")
TX += [tx(p, f"{day(d)} 10:00", eye=eye) for d in (1, 8, 15, 22) for eye in ("OD", "OS")]

# C14 the old `glucose` type is read as glucose_sensor: 4 a day on 15 days -> 15 valid.
p = scenario("C14", "DIABETES", monitoring_profile="sensor")
TX += readings(p, "DIABETES", "glucose", range(15), 4)

# C15 heart failure: exactly half (15 weight days) sufficient, 14 insufficient; weights twice a
# day count once.
p = scenario("C15", "HEART_FAILURE")
TX += readings(p, "HEART_FAILURE", "weight", range(15), 2)
TX += readings(p, "HEART_FAILURE", "weight", range(30, 44), 1)

# C16 diabetes sensor, data on days 0-21 of P1 and none after: the trailing 8 days (22-29)
# -> max_gap_days 8, flagged.
p = scenario("C16", "DIABETES", monitoring_profile="sensor")
TX += readings(p, "DIABETES", "glucose_sensor", range(22), 4)

# C17 diabetes sensor sent twice, under two exploitants (copies of the same readings, other
# transmission ids): 2 + 2 readings on days 0-14 are not 4 -> 15 invalid; on days 15-19 EXP01
# sends 4 and EXP02 1 -> 5 valid units, once each.
p = scenario("C17", "DIABETES", monitoring_profile="sensor")
for exploitant in ("EXP01", "EXP02"):
    TX += readings(p, "DIABETES", "glucose_sensor", range(15), 2, exploitant_id=exploitant)
TX += readings(p, "DIABETES", "glucose_sensor", range(15, 20), 4)
TX += readings(p, "DIABETES", "glucose_sensor", range(15, 20), 1, exploitant_id="EXP02")

# C18 respiratory without a profile: either usage record counts -> ventilation hours on 8 days
# and oxygen hours on 7 others -> 15 valid, sufficient; SpO2 alone does not count.
p = scenario("C18", "RESPIRATORY_FAILURE")
TX += readings(p, "RESPIRATORY_FAILURE", "ventilation_hours", range(8), 1)
TX += readings(p, "RESPIRATORY_FAILURE", "oxygen_hours", range(8, 15), 1)
TX += readings(p, "RESPIRATORY_FAILURE", "spo2", range(15, 30), 1)

# C19 renal without a profile: blood pressure or creatinine -> 10 + 5 days; dialysis sessions do
# not count under the default rule -> 15 valid of 30.
p = scenario("C19", "RENAL_FAILURE")
TX += readings(p, "RENAL_FAILURE", "blood_pressure", range(10), 1)
TX += readings(p, "RENAL_FAILURE", "creatinine", range(10, 15), 1)
TX += readings(p, "RENAL_FAILURE", "dialysis_session", range(15, 25), 1)

# C20 weekly transmission counts the days readings were received: readings measured every day of
# P1, received (received_at) in uploads on day 0 (day 0's), day 20 (days 1-20's) and day 29
# (the rest): 19 days without a reception (1-19), then 8 (21-28) -> max_gap_days 19, flagged.
p = scenario("C20", "DIABETES", monitoring_profile="sensor")
TX += [
    t | {"received_at": f"{day(0 if d == 0 else 20 if d <= 20 else 29)}T22:00:00+01:00"}
    for t in readings(p, "DIABETES", "glucose_sensor", range(30), 4)
    for d in [(date.fromisoformat(t["measured_at"][:10]) - date.fromisoformat(START)).days]
]

# Enrollments whose sessions a week are not a whole number from 1 to 7 are loaded as if none
# were sent (3 by default, 13 expected) and reported.
p = scenario("C21", "RENAL_FAILURE", monitoring_profile="hemodialysis", sessions_per_week="3.5")
TX += readings(p, "RENAL_FAILURE", "dialysis_session", [0, 2, 4, 7, 9, 11, 14], 1)
scenario("C22", "RENAL_FAILURE", monitoring_profile="hemodialysis", sessions_per_week=8)


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory):
    landing = tmp_path_factory.mktemp("landing")
    write_rows(landing / "enrollments" / "enrollments.csv", ENROLLMENTS)
    write_rows(landing / "prescriptions" / "prescriptions.csv", PRESCRIPTIONS)
    write_rows(landing / "transmissions" / "EXP01.jsonl", TX)
    path = tmp_path_factory.mktemp("wh") / "warehouse.duckdb"
    run(landing, path, AS_OF)
    return path


@pytest.fixture(scope="module")
def periods(warehouse) -> dict[str, pl.DataFrame]:
    return periods_by_enrollment(warehouse)


def column(periods, eid: str, name: str, count: int = 3) -> list:
    return periods[eid][name].to_list()[:count]


def test_nothing_is_quarantined(warehouse):
    assert query(warehouse, "SELECT count(*) AS n FROM ops.quarantine")["n"][0] == 0


def test_bad_sessions_per_week_fall_back_to_the_default_and_are_reported(periods, warehouse):
    assert column(periods, "C21", "expected_units", 1) == [13]
    assert column(periods, "C21", "valid_units", 1) == [7]
    assert column(periods, "C22", "expected_units", 1) == [13]
    findings = query(
        warehouse,
        "SELECT entity_id, detail FROM marts.data_quality_findings "
        "WHERE kind = 'invalid_sessions_per_week' ORDER BY entity_id",
    )
    assert findings["entity_id"].to_list() == ["C21", "C22"]
    assert "'3.5'" in findings["detail"][0] and "3 sessions a week assumed" in findings["detail"][0]


def test_default_rows_of_lines_with_profiles(periods):
    assert column(periods, "C18", "valid_units", 1) == [15]
    assert column(periods, "C18", "counting_profile", 1) == [None]
    assert column(periods, "C19", "valid_units", 1) == [15]
    assert column(periods, "C19", "data_status", 1) == ["sufficient"]


def test_the_weekly_gap_counts_days_of_reception(periods):
    assert column(periods, "C20", "valid_units", 1) == [30]
    assert column(periods, "C20", "max_gap_days", 1) == [19]
    assert column(periods, "C20", "weekly_transmission_missed", 1) == [True]


def test_heart_failure_without_weight_has_no_data(periods):
    assert column(periods, "C01", "valid_units", 1) == [0]
    assert column(periods, "C01", "invalid_units", 1) == [0]
    assert column(periods, "C01", "data_status", 1) == ["no_data"]
    assert column(periods, "C01", "block_reason", 1) == ["no_data"]


def test_heart_failure_fifteen_weight_days_are_half(periods):
    assert column(periods, "C15", "valid_units", 2) == [15, 14]
    assert column(periods, "C15", "expected_units", 2) == [30, 30]
    assert column(periods, "C15", "data_status", 2) == ["sufficient", "insufficient"]


def test_sensor_needs_four_readings_a_day(periods):
    assert column(periods, "C02", "valid_units", 2) == [0, 15]
    assert column(periods, "C02", "invalid_units", 2) == [30, 0]
    assert column(periods, "C02", "data_status", 2) == ["no_data", "sufficient"]
    assert column(periods, "C02", "block_reason", 2) == ["no_data", "previous_period_insufficient"]


def test_sensor_readings_split_at_paris_midnight_across_dst(periods):
    assert column(periods, "C02", "valid_units")[2] == 3
    assert column(periods, "C02", "invalid_units")[2] == 0


def test_copies_under_two_exploitants_are_not_added_up(periods):
    assert column(periods, "C17", "valid_units", 1) == [5]
    assert column(periods, "C17", "invalid_units", 1) == [15]


def test_capillary_profiles_need_two_or_four_readings(periods):
    assert column(periods, "C03", "valid_units", 1) == [15]
    assert column(periods, "C03", "invalid_units", 1) == [3]
    assert column(periods, "C03", "data_status", 1) == ["sufficient"]
    assert column(periods, "C04", "valid_units", 1) == [0]
    assert column(periods, "C04", "invalid_units", 1) == [15]
    assert column(periods, "C04", "monitoring_profile", 1) == ["capillary_multi_injection"]
    assert column(periods, "C04", "counting_profile", 1) == ["capillary_multi_injection"]


def test_absent_profile_takes_the_strictest_rule_and_is_reported(periods, warehouse):
    assert column(periods, "C05", "valid_units", 1) == [15]
    assert column(periods, "C05", "invalid_units", 1) == [5]
    assert column(periods, "C05", "monitoring_profile", 1) == [None]
    assert column(periods, "C05", "counting_profile", 1) == [None]
    findings = query(
        warehouse,
        "SELECT entity_id, kind FROM marts.data_quality_findings "
        "WHERE kind LIKE '%monitoring_profile' ORDER BY entity_id",
    )
    # C05, C18, C19 sent none on a line with profiles; C12 sent one its line does not have;
    # ODYSIGHT (C13) and heart failure without one (C01, C15) have no profiles to send
    assert findings.rows() == [
        ("C05", "missing_monitoring_profile"),
        ("C12", "unknown_monitoring_profile"),
        ("C18", "missing_monitoring_profile"),
        ("C19", "missing_monitoring_profile"),
    ]


def test_unknown_profile_counts_by_the_line_default(periods):
    assert column(periods, "C12", "valid_units", 1) == [15]
    assert column(periods, "C12", "monitoring_profile", 1) == ["sensor"]
    assert column(periods, "C12", "counting_profile", 1) == [None]


def test_hemodialysis_expects_sessions_per_week(periods):
    assert column(periods, "C06", "expected_units", 2) == [13, 13]
    assert column(periods, "C06", "valid_units", 2) == [7, 6]
    assert column(periods, "C06", "data_status", 2) == ["sufficient", "insufficient"]
    assert column(periods, "C07", "expected_units", 1) == [17]
    assert column(periods, "C07", "valid_units", 1) == [8]
    assert column(periods, "C07", "data_status", 1) == ["insufficient"]


def test_respiratory_profiles_count_their_usage_record(periods):
    assert column(periods, "C08", "valid_units", 1) == [10]
    assert column(periods, "C08", "data_status", 1) == ["insufficient"]
    assert column(periods, "C09", "valid_units", 1) == [15]
    assert column(periods, "C09", "data_status", 1) == ["sufficient"]


def test_weekly_transmission_gap(periods):
    assert column(periods, "C10", "max_gap_days", 4) == [7, 8, 30, 14]
    assert column(periods, "C10", "weekly_transmission_missed", 4) == [False, True, True, True]
    assert column(periods, "C10", "is_closed", 4) == [True, True, True, False]
    assert column(periods, "C16", "max_gap_days", 1) == [8]
    assert column(periods, "C16", "weekly_transmission_missed", 1) == [True]
    assert column(periods, "C11", "max_gap_days", 4)[3] == 5
    assert column(periods, "C11", "weekly_transmission_missed", 4)[3] is False
    # the flag does not block billing by itself (R3): C10's P2 billable on its own merits
    assert column(periods, "C10", "billable", 2) == [True, True]
    # lines without the weekly rule have no gap
    assert column(periods, "C15", "max_gap_days", 1) == [None]
    assert column(periods, "C15", "weekly_transmission_missed", 1) == [None]


def test_weekly_transmission_missed_is_alerted(warehouse):
    alerts = query(
        warehouse,
        "SELECT enrollment_id FROM marts.alerts "
        "WHERE kind = 'weekly_transmission_missed' AND status = 'open' ORDER BY ALL",
    )
    # open periods over 7 days without a counted reading: every diabetes enrollment without data
    # in April; not C11 (5 days at most)
    expected = ["C02", "C03", "C04", "C05", "C10", "C14", "C16", "C17", "C20"]
    assert alerts["enrollment_id"].to_list() == expected


def test_interruption_threshold_comes_from_the_counting_rule(warehouse):
    silent = query(
        warehouse,
        "SELECT enrollment_id, message_en FROM marts.alerts "
        "WHERE kind = 'transmission_interrupted' AND enrollment_id IN ('C11', 'C13')",
    )
    # C11's last reading was on Apr 13 (2 days before AS_OF, threshold 3): no alert; C13's on
    # Jan 23 (ODYSIGHT threshold 8): alerted
    assert silent["enrollment_id"].to_list() == ["C13"]


def test_old_glucose_type_is_read_as_glucose_sensor(periods, warehouse):
    """Counted as glucose_sensor; raw.transmissions keeps the type as sent (a warehouse loaded
    before the alias existed counts its old rows the same way)."""
    assert column(periods, "C14", "valid_units", 1) == [15]
    types = query(
        warehouse,
        "SELECT DISTINCT measure_type FROM raw.transmissions WHERE patient_id = 'PC14'",
    )
    assert types["measure_type"].to_list() == ["glucose"]
