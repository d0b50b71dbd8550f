"""Differential test: random histories through the SQL models and through a plain Python
reference of R1-R7 written here from shared/domain/rules.md. They must agree row for row."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipelines.models import MODELS, build
from pipelines.reference import load_reference
from pipelines.warehouse import SCHEMAS, migrate

PARIS = ZoneInfo("Europe/Paris")
DISTANCE_OK = (35.0, 45.0)
LUX_OK = (5.0, 2000.0)
MAX_DAYS = {"trial": 92, "initial": 365, "renewal": 365}
BAD = ("insufficient", "no_data")


@dataclass
class Tx:
    instant: datetime
    measure_type: str
    eye: str | None
    distance_cm: float | None
    ambient_lux: float | None
    exploitant: str = "X"
    received: datetime | None = None  # received_at (the server's clock), when sent


@dataclass
class History:
    activity: str
    start: date
    end: date | None
    end_reason: str | None
    prescriptions: list[tuple[str, date, date]]
    transmissions: list[Tx]
    profile: str | None = None
    sessions_per_week: int | None = None


# ---------------------------------------------------------------- the reference, in plain Python

# rules.md R3, as read there: (line, profile) -> counted types, readings a day needs, per eye
GLUCOSE = {"glucose_sensor", "glucose_capillary"}
RULES: dict[tuple[str, str | None], tuple[set[str], int, bool]] = {
    ("ODYSIGHT", None): ({"visual_acuity"}, 1, True),
    ("HEART_FAILURE", None): ({"weight"}, 1, False),
    ("DIABETES", "sensor"): ({"glucose_sensor"}, 4, False),
    ("DIABETES", "capillary_one_injection"): ({"glucose_capillary"}, 2, False),
    ("DIABETES", "capillary_multi_injection"): ({"glucose_capillary"}, 4, False),
    ("DIABETES", None): (GLUCOSE, 4, False),
    ("GESTATIONAL_DIABETES", "sensor"): ({"glucose_sensor"}, 4, False),
    ("GESTATIONAL_DIABETES", None): (GLUCOSE, 4, False),
    ("RESPIRATORY_FAILURE", "oxygen"): ({"oxygen_hours"}, 1, False),
    ("RESPIRATORY_FAILURE", None): ({"ventilation_hours", "oxygen_hours"}, 1, False),
    ("RENAL_FAILURE", "hemodialysis"): ({"dialysis_session"}, 1, False),
    ("RENAL_FAILURE", None): ({"blood_pressure", "creatinine"}, 1, False),
}
# "au minimum hebdomadaire": more than 7 days without a reception is flagged
WEEKLY_LINES = {"DIABETES", "GESTATIONAL_DIABETES"}


def expected_units(h: History) -> int:
    """R3/R4: 8 eye tests, 30 days, or round(sessions a week x 30 / 7), 3 sessions by default."""
    if h.activity == "ODYSIGHT":
        return 8
    if h.profile == "hemodialysis":
        return round((h.sessions_per_week or 3) * 30 / 7)
    return 30


def calibrated(t: Tx) -> bool:
    ok_distance = t.distance_cm is None or DISTANCE_OK[0] <= t.distance_cm <= DISTANCE_OK[1]
    ok_lux = t.ambient_lux is None or LUX_OK[0] <= t.ambient_lux <= LUX_OK[1]
    return ok_distance and ok_lux


def longest_run_without(days: set[date], first: date, last: date) -> int:
    longest = run = 0
    while first <= last:
        run = 0 if first in days else run + 1
        longest = max(longest, run)
        first += timedelta(days=1)
    return longest


def reference(h: History, as_of: date) -> list[dict]:
    if h.end is not None and h.end < h.start:
        return []
    counted, minimum, per_eye = RULES[(h.activity, h.profile)]
    # per unit (Paris day, eye) and exploitant: counted readings, and those calibrated
    readings: dict[tuple, list[int]] = {}
    for t in h.transmissions:
        if t.measure_type not in counted:
            continue
        unit = (t.instant.astimezone(PARIS).date(), t.eye if per_eye else "")  # R1
        tally = readings.setdefault((unit, t.exploitant), [0, 0])
        tally[0] += 1
        tally[1] += calibrated(t)
    tried = {unit for unit, _ in readings}
    valid = {unit for (unit, _), (_, ok) in readings.items() if ok >= minimum}
    invalid = tried - valid
    last_day = min(h.end or as_of, as_of)
    rows: list[dict] = []
    k = 1
    while (start := h.start + timedelta(days=30 * (k - 1))) <= last_day:
        end = start + timedelta(days=29)
        effective = min(end, h.end) if h.end else end
        closed = effective < as_of

        def within(units, start=start, effective=effective):
            return sum(1 for d, _ in units if start <= d <= effective and d <= as_of)

        n_valid, n_invalid = within(valid), within(invalid)
        expected = expected_units(h)
        gap = None
        if h.activity in WEEKLY_LINES:  # the days counted readings were received (R3)
            data_days = {
                (t.received or t.instant).astimezone(PARIS).date()
                for t in h.transmissions
                if t.measure_type in counted
            }
            gap = longest_run_without(data_days, start, min(effective, as_of - timedelta(days=1)))
        if n_valid == 0:
            status = "no_data"
        elif n_valid / expected < 0.5:
            status = "insufficient"
        else:
            status = "sufficient"
        died = h.end_reason == "deceased" and h.end is not None and start <= h.end <= end
        ended = h.end is not None and h.end < end
        covered = any(
            vf <= start <= min(vu, vf + timedelta(days=MAX_DAYS[kind] - 1))
            for kind, vf, vu in h.prescriptions
        )
        previous = rows[-1]["data_status"] if rows else None
        if not closed:
            block = "open"
        elif ended and not died:
            block = "not_completed"
        elif not covered:
            block = "no_prescription"
        elif previous in BAD:
            block = "previous_period_insufficient"
        elif status == "no_data" and not died:
            block = "no_data"
        else:
            block = None
        rows.append(
            {
                "period_index": k,
                "period_start": start,
                "period_end": end,
                "effective_end": effective,
                "is_closed": closed,
                "valid_units": n_valid,
                "invalid_units": n_invalid,
                "data_status": status,
                "billable": block is None,
                "block_reason": block,
                "reinforce_recommended": closed and k == 1 and status in BAD,
                "stop_required": closed and status in BAD and previous in BAD,
                "expected_units": expected,
                "max_gap_days": gap,
                "weekly_transmission_missed": None if gap is None else gap > 7,
            }
        )
        k += 1
    return rows


# ---------------------------------------------------------------- random histories

BASE = date(2024, 9, 1)
days = st.integers(min_value=0, max_value=330)


SENT = {  # what each line's devices send in these histories: counted types and others
    "HEART_FAILURE": ["weight", "weight", "weight", "blood_pressure"],
    "DIABETES": ["glucose_sensor", "glucose_capillary", "insulin_dose"],
    "GESTATIONAL_DIABETES": ["glucose_sensor", "glucose_capillary", "insulin_dose"],
    "RESPIRATORY_FAILURE": ["oxygen_hours", "ventilation_hours", "spo2"],
    "RENAL_FAILURE": ["dialysis_session", "dialysis_session", "blood_pressure", "creatinine"],
}


@st.composite
def transmissions(draw, activity: str, start: date) -> list[Tx]:
    items = []
    for _ in range(draw(st.integers(0, 40))):
        offset = draw(st.integers(-3, 200))
        minute = draw(st.integers(0, 24 * 60 - 1))
        instant = datetime.combine(start, datetime.min.time(), UTC) + timedelta(
            days=offset, minutes=minute
        )
        if activity == "ODYSIGHT":
            measure = draw(st.sampled_from(["visual_acuity"] * 4 + ["amsler_grid"]))
            eye = draw(st.sampled_from(["OD", "OS"]))
            distance = draw(st.sampled_from([None, 34.9, 35.0, 40.0, 45.0, 45.1]))
            lux = draw(st.sampled_from([None, 4.9, 5.0, 300.0, 2000.0, 2000.1]))
        else:
            measure = draw(st.sampled_from(SENT[activity]))
            eye, distance, lux = None, None, None
        exploitant = draw(st.sampled_from(["X", "X", "Y"]))
        # received the same day, or in an upload up to 12 days later, or no received_at
        delay = draw(st.sampled_from([None, 0, 0, 1, 12]))
        # a few readings a day: the daily minimums (2, 4) are reached, or just missed
        for repeat in range(draw(st.integers(1, 4)) if "DIABETES" in activity else 1):
            moved = instant + timedelta(minutes=7 * repeat)
            received = None if delay is None else moved + timedelta(days=delay, minutes=5)
            items.append(Tx(moved, measure, eye, distance, lux, exploitant, received))
    return items


@st.composite
def histories(draw) -> History:
    activity, profile = draw(st.sampled_from(list(RULES)))
    sessions = draw(st.sampled_from([None, 1, 3, 4, 7])) if profile == "hemodialysis" else None
    start = BASE + timedelta(days=draw(days))
    end = None
    reason = None
    if draw(st.booleans()):
        end = start + timedelta(days=draw(st.integers(-5, 200)))
        reason = draw(st.sampled_from(["stopped", "deceased", "transferred"]))
    prescriptions = []
    for _ in range(draw(st.integers(0, 3))):
        kind = draw(st.sampled_from(list(MAX_DAYS)))
        valid_from = start + timedelta(days=draw(st.integers(-10, 150)))
        valid_until = valid_from + timedelta(days=draw(st.integers(-2, 450)))
        prescriptions.append((kind, valid_from, valid_until))
    return History(
        activity,
        start,
        end,
        reason,
        prescriptions,
        draw(transmissions(activity, start)),
        profile,
        sessions,
    )


# ---------------------------------------------------------------- the SQL side


def run_models(items: list[History], as_of: date) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    for schema in SCHEMAS:
        con.execute(f"CREATE SCHEMA {schema}")
    load_reference(con)
    migrate(con)
    for i, h in enumerate(items):
        eid, patient = f"E{i}", f"P{i}"
        con.execute(
            "INSERT INTO raw.enrollments BY NAME SELECT ? AS enrollment_id, ? AS patient_id, "
            "? AS activity_code, 'X' AS exploitant_id, 'OP' AS operator_id, ? AS start_date, "
            "? AS end_date, ? AS end_reason, false AS ald, ? AS monitoring_profile, "
            "? AS sessions_per_week, 0 AS key_hash, 0 AS payload_hash, 1 AS file_id, "
            "'f' AS source_file, ? AS row_number",
            [
                eid,
                patient,
                h.activity,
                h.start,
                h.end,
                h.end_reason,
                h.profile,
                h.sessions_per_week,
                i,
            ],
        )
        for j, (kind, valid_from, valid_until) in enumerate(h.prescriptions):
            con.execute(
                "INSERT INTO raw.prescriptions BY NAME SELECT ? AS prescription_id, "
                "? AS enrollment_id, ? AS kind, ? AS valid_from, ? AS valid_until, "
                "0 AS key_hash, 0 AS payload_hash, 1 AS file_id, 'f' AS source_file, "
                "? AS row_number",
                [f"RX{i}-{j}", eid, kind, valid_from, valid_until, j],
            )
        for j, t in enumerate(h.transmissions):
            con.execute(
                "INSERT INTO raw.transmissions VALUES "
                "(?, ?, ?, ?, ?, ?, ?, ?, 1.0, NULL, ?, ?, 0, 0, 1, 'f', ?)",
                [
                    f"T{i}-{j}",
                    t.exploitant,
                    h.activity,
                    patient,
                    t.measure_type,
                    t.eye,
                    t.instant,
                    t.received,
                    t.distance_cm,
                    t.ambient_lux,
                    j,
                ],
            )
    for model in MODELS:
        build(con, model, as_of)
    return con


COLUMNS = list(reference(History("ODYSIGHT", BASE, None, None, [], []), BASE)[0])


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    items=st.lists(histories(), min_size=1, max_size=6),
    as_of_offset=st.integers(min_value=0, max_value=420),
)
def test_sql_agrees_with_reference(items, as_of_offset):
    as_of = BASE + timedelta(days=as_of_offset)
    con = run_models(items, as_of)
    for i, h in enumerate(items):
        got = con.execute(
            f"SELECT {', '.join(COLUMNS)} FROM marts.patient_periods "
            "WHERE enrollment_id = ? ORDER BY period_index",
            [f"E{i}"],
        ).fetchall()
        expected = [tuple(row[c] for c in COLUMNS) for row in reference(h, as_of)]
        assert got == expected, f"enrollment E{i}: {h}"


def test_reference_knows_the_rulebook_edges():
    """The reference itself on one hand-checked history (so a wrong reference cannot hide)."""
    start = date(2025, 1, 1)
    tests = [
        Tx(datetime(2025, 1, d, 9, tzinfo=UTC), "visual_acuity", eye, 40.0, 300.0)
        for d in (2, 9)
        for eye in ("OD", "OS")
    ]
    h = History("ODYSIGHT", start, None, None, [("initial", start, date(2025, 12, 31))], tests)
    rows = reference(h, date(2025, 3, 5))
    assert [r["valid_units"] for r in rows] == [4, 0, 0]
    assert [r["max_gap_days"] for r in rows] == [None, None, None]
    assert [r["data_status"] for r in rows] == ["sufficient", "no_data", "no_data"]
    assert [r["block_reason"] for r in rows] == [None, "no_data", "open"]
    assert [r["stop_required"] for r in rows] == [False, False, False]


@pytest.mark.parametrize("offset", [0, 29, 30, 59, 60])
def test_reference_and_sql_agree_on_period_boundaries(offset):
    start = date(2025, 3, 1)
    instant = datetime.combine(start + timedelta(days=offset), datetime.min.time(), PARIS)
    items = [
        History(
            "ODYSIGHT",
            start,
            None,
            None,
            [("initial", start, date(2026, 2, 1))],
            [
                Tx(
                    instant.astimezone(UTC) + timedelta(minutes=m),
                    "visual_acuity",
                    "OD",
                    None,
                    None,
                )
                for m in (-30, 30)
            ],
        )
    ]
    con = run_models(items, date(2025, 6, 1))
    got = con.execute(
        f"SELECT {', '.join(COLUMNS)} FROM marts.patient_periods ORDER BY period_index"
    ).fetchall()
    assert got == [tuple(r[c] for c in COLUMNS) for r in reference(items[0], date(2025, 6, 1))]


def test_reference_knows_the_new_counting_rules():
    """The reference on hand-checked R3 histories: sensor days need 4 readings from one
    exploitant; hemodialysis expects round(sessions x 30 / 7); the weekly gap."""
    start = date(2025, 1, 1)
    rx = [("initial", start, date(2025, 12, 31))]

    def readings(day: int, count: int, exploitant: str = "X") -> list[Tx]:
        at = datetime(2025, 1, 1, 8, tzinfo=UTC) + timedelta(days=day)
        return [
            Tx(at + timedelta(hours=i), "glucose_sensor", None, None, None, exploitant)
            for i in range(count)
        ]

    # days 0-14: 4 readings (valid); day 15: 3 (invalid); day 16: 2 + 2 from two exploitants
    # (invalid); then nothing until day 29: gap of 13 days (16 is the last day with data)
    tests = [t for d in range(15) for t in readings(d, 4)] + readings(15, 3)
    tests += readings(16, 2) + readings(16, 2, "Y")
    sensor = History("DIABETES", start, None, None, rx, tests, "sensor")
    rows = reference(sensor, date(2025, 2, 5))
    assert [r["valid_units"] for r in rows] == [15, 0]
    assert [r["invalid_units"] for r in rows] == [2, 0]
    assert [r["max_gap_days"] for r in rows] == [13, 5]  # P2 open: Jan 31 .. Feb 4
    assert [r["weekly_transmission_missed"] for r in rows] == [True, False]
    dialysis = History("RENAL_FAILURE", start, None, None, rx, [], "hemodialysis", 4)
    assert reference(dialysis, date(2025, 2, 5))[0]["expected_units"] == 17
    dialysis.sessions_per_week = None
    assert reference(dialysis, date(2025, 2, 5))[0]["expected_units"] == 13
