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
from pipelines.warehouse import SCHEMAS, run_sql

PARIS = ZoneInfo("Europe/Paris")
EXPECTED = {"ODYSIGHT": 8, "HEART_FAILURE": 30}
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


@dataclass
class History:
    activity: str
    start: date
    end: date | None
    end_reason: str | None
    prescriptions: list[tuple[str, date, date]]
    transmissions: list[Tx]


# ---------------------------------------------------------------- the reference, in plain Python


def counts_as_valid(activity: str, t: Tx) -> bool | None:
    """True valid unit, False invalid test, None not a counted measure (R3)."""
    if activity == "HEART_FAILURE":
        return True if t.measure_type == "weight" else None
    if t.measure_type != "visual_acuity":
        return None
    ok_distance = t.distance_cm is None or DISTANCE_OK[0] <= t.distance_cm <= DISTANCE_OK[1]
    ok_lux = t.ambient_lux is None or LUX_OK[0] <= t.ambient_lux <= LUX_OK[1]
    return ok_distance and ok_lux


def reference(h: History, as_of: date) -> list[dict]:
    if h.end is not None and h.end < h.start:
        return []
    valid, tried = set(), set()
    for t in h.transmissions:
        local_day = t.instant.astimezone(PARIS).date()  # R1
        unit = (local_day, t.eye if h.activity == "ODYSIGHT" else "")
        verdict = counts_as_valid(h.activity, t)
        if verdict is not None:
            tried.add(unit)
            if verdict:
                valid.add(unit)
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
        expected = EXPECTED[h.activity]
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
            }
        )
        k += 1
    return rows


# ---------------------------------------------------------------- random histories

BASE = date(2024, 9, 1)
days = st.integers(min_value=0, max_value=330)


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
            measure = draw(st.sampled_from(["weight", "weight", "weight", "mood"]))
            eye, distance, lux = None, None, None
        items.append(Tx(instant, measure, eye, distance, lux))
    return items


@st.composite
def histories(draw) -> History:
    activity = draw(st.sampled_from(list(EXPECTED)))
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
        activity, start, end, reason, prescriptions, draw(transmissions(activity, start))
    )


# ---------------------------------------------------------------- the SQL side


def run_models(items: list[History], as_of: date) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    for schema in SCHEMAS:
        con.execute(f"CREATE SCHEMA {schema}")
    load_reference(con)
    run_sql(con, "ingest/schema")
    for i, h in enumerate(items):
        eid, patient = f"E{i}", f"P{i}"
        con.execute(
            "INSERT INTO raw.enrollments VALUES "
            "(?, ?, ?, 'X', 'OP', ?, ?, ?, false, 0, 0, 1, 'f', ?)",
            [eid, patient, h.activity, h.start, h.end, h.end_reason, i],
        )
        for j, (kind, valid_from, valid_until) in enumerate(h.prescriptions):
            con.execute(
                "INSERT INTO raw.prescriptions VALUES (?, ?, ?, ?, ?, 0, 0, 1, 'f', ?)",
                [f"RX{i}-{j}", eid, kind, valid_from, valid_until, j],
            )
        for j, t in enumerate(h.transmissions):
            con.execute(
                "INSERT INTO raw.transmissions VALUES "
                "(?, 'X', ?, ?, ?, ?, ?, NULL, 1.0, NULL, ?, ?, 0, 0, 1, 'f', ?)",
                [
                    f"T{i}-{j}",
                    h.activity,
                    patient,
                    t.measure_type,
                    t.eye,
                    t.instant,
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
