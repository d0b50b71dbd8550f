"""staging.daily_units and the matched units and period counts are built incrementally: a run on
top of earlier ones equals a fresh build."""

from __future__ import annotations

import polars as pl

from pipelines.warehouse import writer
from tests.helpers import catalog_copy, enrollment, prescription, query, run, tx, write_rows

TABLES = ("staging.daily_units", "marts.patient_periods", "marts.unmatched_transmissions")


def snapshot(warehouse) -> dict[str, pl.DataFrame]:
    return {table: query(warehouse, f"SELECT * FROM {table} ORDER BY ALL") for table in TABLES}


def assert_same(a: dict, b: dict) -> None:
    for table in TABLES:
        assert a[table].equals(b[table]), table


def base_landing(root):
    write_rows(root / "enrollments" / "e.csv", [enrollment("E1", "P1", "2025-01-01")])
    write_rows(
        root / "prescriptions" / "p.csv", [prescription("R1", "E1", "2025-01-01", "2025-12-31")]
    )
    write_rows(
        root / "transmissions" / "d1" / "t.jsonl",
        [
            tx("P1", "2025-01-02 09:00", eye="OD", distance_cm=40.0),
            tx("P1", "2025-01-03 09:00", eye="OS", distance_cm=50.0),
        ],
    )


def test_a_new_night_merges_into_existing_days(tmp_path):
    landing = tmp_path / "landing"
    base_landing(landing)
    incremental = tmp_path / "incremental.duckdb"
    run(landing, incremental, "2025-02-15")
    # next night: a valid test on a day that only had an invalid one, a new day, an unknown patient
    write_rows(
        landing / "transmissions" / "d2" / "t.jsonl",
        [
            tx("P1", "2025-01-03 20:00", eye="OS", distance_cm=40.0),
            tx("P1", "2025-01-10 09:00", eye="OD"),
            tx("PX", "2025-01-10 09:00", eye="OD"),
        ],
    )
    run(landing, incremental, "2025-02-15")
    fresh = tmp_path / "fresh.duckdb"
    run(landing, fresh, "2025-02-15")
    assert_same(snapshot(incremental), snapshot(fresh))
    units = query(
        incremental,
        "SELECT local_date, unit_eye, measure_type, readings, invalid_readings "
        "FROM staging.daily_units WHERE patient_id = 'P1' ORDER BY ALL",
    )
    # merged day: the invalid test of the first night and the valid one of the second
    assert units.row(1) == (units["local_date"][1], "OS", "visual_acuity", 2, 1)
    periods = query(
        incremental, "SELECT valid_units FROM marts.patient_periods WHERE period_index = 1"
    )
    assert periods["valid_units"].to_list() == [3]


def test_a_catalog_change_rebuilds(tmp_path, monkeypatch):
    landing = tmp_path / "landing"
    base_landing(landing)
    warehouse = tmp_path / "wh.duckdb"
    run(landing, warehouse, "2025-02-15")
    before = query(
        warehouse, "SELECT valid_units FROM marts.patient_periods WHERE period_index = 1"
    )
    assert before["valid_units"].to_list() == [1]  # 50 cm is outside 35-45
    catalog = catalog_copy(tmp_path, monkeypatch)
    activities = pl.read_csv(catalog / "activities.csv", infer_schema=False)
    activities.with_columns(distance_max_cm=pl.lit("55")).write_csv(catalog / "activities.csv")
    run(landing, warehouse, "2025-02-15")
    after = query(warehouse, "SELECT valid_units FROM marts.patient_periods WHERE period_index = 1")
    assert after["valid_units"].to_list() == [2]
    fresh = tmp_path / "fresh.duckdb"
    run(landing, fresh, "2025-02-15")
    assert_same(snapshot(warehouse), snapshot(fresh))


STEP_TABLES = (
    "ops.snapshot_period_units_enrollments",  # what the next night compares the enrollments with
    "staging.matched_units",
    "staging.unmatched_units",
    "staging.period_units",
    "staging.current_problems",
    "marts.patient_periods",
    "marts.unmatched_transmissions",
)

# the interruption alert's last receipt, kept per period in staging.period_units, against its
# definition over the matched units: the units up to as_of, server clock, else the day
LAST_RECEIPT_BY_PERIODS = """
    SELECT enrollment_id, max(last_received_at) AS received, max(last_local_date) AS measured
    FROM staging.period_units GROUP BY ALL ORDER BY ALL"""
LAST_RECEIPT_BY_UNITS = """
    SELECT enrollment_id,
        max(coalesce(last_received_at, CAST(local_date AS TIMESTAMPTZ))) AS received,
        max(local_date) AS measured
    FROM staging.matched_units WHERE local_date <= DATE '{as_of}' GROUP BY ALL ORDER BY ALL"""


def night_equals_fresh(landing, warehouse, as_of: str, step: str, tables) -> None:
    """Run a night on ``warehouse``, build a fresh warehouse from the same landing, and assert
    the tables are equal."""
    run(landing, warehouse, as_of)
    fresh = warehouse.with_name(f"fresh-{len(list(warehouse.parent.glob('fresh-*')))}.duckdb")
    run(landing, fresh, as_of)
    for table in tables:
        sql = f"SELECT * FROM {table} ORDER BY ALL"
        assert query(warehouse, sql).equals(query(fresh, sql)), (step, table)


def test_matching_and_period_counts_follow_every_kind_of_change(tmp_path):
    """Night after night -- new data, an evaluation date moving forward then back, enrollments
    corrected (an end date, a patient) -- the incremental tables equal a fresh build."""
    landing, warehouse = tmp_path / "landing", tmp_path / "incremental.duckdb"
    enrollments = [enrollment("E1", "P1", "2025-01-01"), enrollment("E2", "P2", "2025-01-15")]
    write_rows(landing / "enrollments" / "1" / "e.csv", enrollments)
    write_rows(
        landing / "prescriptions" / "p.csv",
        [
            prescription("R1", "E1", "2025-01-01", "2025-12-31"),
            prescription("R2", "E2", "2025-01-15", "2025-12-31"),
        ],
    )
    write_rows(
        landing / "transmissions" / "1" / "t.jsonl",
        [tx("P1", f"2025-01-{d:02d} 09:00", eye=eye) for d in (2, 9, 16) for eye in ("OD", "OS")]
        + [tx("P2", "2025-01-20 09:00"), tx("PX", "2025-01-20 09:00")]
        + [tx("P1", "2025-03-10 09:00")],  # after the first evaluation date
    )

    def night(as_of: str, step: str) -> None:
        night_equals_fresh(landing, warehouse, as_of, step, STEP_TABLES)
        by_periods = query(warehouse, LAST_RECEIPT_BY_PERIODS)
        assert by_periods.height > 0
        assert by_periods.equals(query(warehouse, LAST_RECEIPT_BY_UNITS.format(as_of=as_of))), step

    night("2025-02-15", "first")
    night("2025-03-20", "as_of forward: the March test now counts")
    write_rows(
        landing / "enrollments" / "2" / "e.csv",
        [
            enrollment("E1", "P1", "2025-01-01", end_date="2025-01-10", end_reason="stopped"),
            enrollment("E2", "PX", "2025-01-15"),  # E2 was PX's enrollment, not P2's
        ],
    )
    night("2025-03-20", "enrollments corrected")
    write_rows(
        landing / "transmissions" / "2" / "t.jsonl",
        [tx("P2", "2025-01-21 09:00"), tx("PX", "2025-01-21 09:00")]
        + [tx("PX", "2025-01-20 10:00", exploitant_id="EXP02")],  # same unit, other exploitant
    )

    def first_periods() -> list:
        sql = "SELECT enrollment_id, valid_units FROM marts.patient_periods WHERE period_index = 1"
        return query(warehouse, sql + " ORDER BY ALL").rows()

    night("2025-03-20", "new data")
    # E1 ended Jan 10: days 2 and 9, both eyes; E2 (PX): Jan 20 (sent twice) and Jan 21
    assert first_periods() == [("E1", 4), ("E2", 2)]
    night("2025-01-18", "as_of back")
    assert first_periods() == [("E1", 4), ("E2", 0)]


def test_a_warehouse_with_an_earlier_layout_is_rebuilt(tmp_path):
    """A warehouse whose derived tables have an earlier layout (built before the layout was
    recorded, staging.period_units without its last-receipt columns, staging.daily_units
    without its counts) has them dropped and rebuilt from raw.*, equal to a fresh build;
    what cannot be rebuilt is kept (the files are not ingested again)."""
    landing, warehouse = tmp_path / "landing", tmp_path / "old.duckdb"
    base_landing(landing)
    run(landing, warehouse, "2025-01-05")
    with writer(warehouse) as con:  # back to an earlier layout
        con.execute("ALTER TABLE staging.period_units DROP COLUMN last_received_at")
        con.execute("ALTER TABLE staging.daily_units DROP COLUMN readings")
        con.execute("UPDATE ops.model_state SET fingerprint = 'built by an earlier version'")
        files = con.execute("SELECT count(*), max(ingested_at) FROM ops.ingested_files").fetchall()
    run(landing, warehouse, "2025-01-10")
    fresh = tmp_path / "fresh.duckdb"
    run(landing, fresh, "2025-01-10")
    for table in ("staging.period_units", "staging.current_problems", *TABLES):
        sql = f"SELECT * FROM {table} ORDER BY ALL"
        assert query(warehouse, sql).equals(query(fresh, sql)), table
    kept = query(warehouse, "SELECT count(*) AS n, max(ingested_at) AS at FROM ops.ingested_files")
    assert kept.rows() == files
    # E1 started Jan 1 and last sent on Jan 3: 7 silent days on Jan 10, under the 8-day threshold
    # (a null last receipt would count from the start: 9 days, a false alert)
    kinds = query(warehouse, "SELECT kind FROM staging.current_problems")
    assert "transmission_interrupted" not in kinds["kind"].to_list()


def test_a_period_counted_again_keeps_the_units_of_its_first_day(tmp_path):
    """A night's new unit makes its period be counted again from the matched units, read from
    the earliest first day of the periods counted again: the units of that day count too."""
    landing, warehouse = tmp_path / "landing", tmp_path / "incremental.duckdb"
    write_rows(
        landing / "enrollments" / "e.csv",
        [enrollment("E1", "P1", "2025-01-01"), enrollment("E2", "P2", "2025-01-11")],
    )
    write_rows(
        landing / "prescriptions" / "p.csv",
        [
            prescription("R1", "E1", "2025-01-01", "2025-12-31"),
            prescription("R2", "E2", "2025-01-11", "2025-12-31"),
        ],
    )
    first_days = [tx("P1", "2025-01-01 09:00", eye=eye) for eye in ("OD", "OS")]
    first_days += [tx("P2", "2025-01-11 09:00", eye=eye) for eye in ("OD", "OS")]
    write_rows(landing / "transmissions" / "d1" / "t.jsonl", first_days)
    run(landing, warehouse, "2025-01-20")
    write_rows(
        landing / "transmissions" / "d2" / "t.jsonl",
        [tx("P1", "2025-01-05 09:00"), tx("P2", "2025-01-15 09:00")],
    )
    run(landing, warehouse, "2025-01-20")
    fresh = tmp_path / "fresh.duckdb"
    run(landing, fresh, "2025-01-20")
    sql = "SELECT enrollment_id, valid_units FROM marts.patient_periods ORDER BY ALL"
    assert query(warehouse, sql).rows() == [("E1", 3), ("E2", 3)]
    assert_same(snapshot(warehouse), snapshot(fresh))


def test_decisions_are_taken_again_for_every_kind_of_change(tmp_path):
    """marts.patient_periods is decided again only for the periods that can have changed; night
    after night it equals a fresh build, for each way a period's row changes without new data in
    that period (each step fails if its case is left out of the periods decided again)."""
    landing, warehouse = tmp_path / "landing", tmp_path / "incremental.duckdb"
    tables = ("marts.patient_periods",)
    write_rows(
        landing / "enrollments" / "1" / "e.csv",
        [enrollment("E1", "P1", "2025-01-01"), enrollment("E2", "P2", "2025-01-01")],
    )
    write_rows(
        landing / "prescriptions" / "1" / "p.csv",
        [
            prescription("R1", "E1", "2025-01-01", "2025-12-31"),
            prescription("R2", "E2", "2025-02-15", "2025-12-31"),  # periods 1-2 not covered
        ],
    )
    period_1 = [tx("P1", "2025-01-02 09:00", eye=eye) for eye in ("OD", "OS")]
    period_2 = [
        tx(patient, f"2025-02-{day:02d} 09:00", eye=eye)
        for patient in ("P1", "P2")
        for day in (2, 9, 16, 23)
        for eye in ("OD", "OS")
    ]
    write_rows(landing / "transmissions" / "1" / "t.jsonl", period_1 + period_2)

    def period(enrollment_id: str, index: int) -> tuple:
        return query(
            warehouse,
            "SELECT is_closed, valid_units, has_prescription, billable, block_reason, operator_id "
            "FROM marts.patient_periods WHERE enrollment_id = ? AND period_index = ?",
            [enrollment_id, index],
        ).row(0)

    night_equals_fresh(landing, warehouse, "2025-03-20", "first", tables)
    # E1: 2 of 8 units in period 1, so period 2 (8 units) is blocked (R5)
    assert period("E1", 2)[3:5] == (False, "previous_period_insufficient")
    assert period("E2", 1)[2:5] == (False, False, "no_prescription")

    # late data for period 1 only: period 2's decision changes through its previous period
    write_rows(
        landing / "transmissions" / "2" / "t.jsonl",
        [tx("P1", "2025-01-09 09:00", eye=eye) for eye in ("OD", "OS")],
    )
    night_equals_fresh(landing, warehouse, "2025-03-20", "late data, previous period", tables)
    assert period("E1", 1)[1] == 4  # exactly 50 %: sufficient
    assert period("E1", 2)[3:5] == (True, None)

    # only the prescription changes: E2's first periods become covered (R7)
    write_rows(
        landing / "prescriptions" / "2" / "p.csv",
        [prescription("R2", "E2", "2025-01-01", "2025-12-31")],
    )
    night_equals_fresh(landing, warehouse, "2025-03-20", "prescription corrected", tables)
    assert period("E2", 1)[2:5] == (True, False, "no_data")

    # only a field the period counts do not use changes: the operator
    write_rows(
        landing / "enrollments" / "2" / "e.csv",
        [enrollment("E1", "P1", "2025-01-01", operator_id="OP02")],
    )
    night_equals_fresh(landing, warehouse, "2025-03-20", "operator corrected", tables)
    assert period("E1", 1)[5] == "OP02"

    # a later evaluation date closes period 3 (Mar 2-31, no data) and opens period 4
    night_equals_fresh(landing, warehouse, "2025-04-10", "as_of forward", tables)
    assert period("E1", 3)[0] is True
    # an earlier one opens period 3 again and removes period 4
    night_equals_fresh(landing, warehouse, "2025-03-10", "as_of back", tables)
    assert period("E1", 3)[0] is False
    assert query(warehouse, "SELECT count(*) AS n FROM ops.periods_pending")["n"].item() == 0


def test_counts_rebuilt_from_scratch_decide_every_period_again(tmp_path):
    """When the period counts are rebuilt from scratch (here: their state lost), every period is
    decided again, not only the recent ones: a closed period's wrong row is corrected."""
    landing, warehouse = tmp_path / "landing", tmp_path / "wh.duckdb"
    base_landing(landing)
    run(landing, warehouse, "2025-03-20")
    sql = "SELECT valid_units FROM marts.patient_periods WHERE period_index = 1"
    assert query(warehouse, sql)["valid_units"].to_list() == [1]
    with writer(warehouse) as con:
        con.execute("UPDATE marts.patient_periods SET valid_units = 99 WHERE period_index = 1")
        con.execute("DELETE FROM ops.model_state WHERE model = 'period_units'")
    run(landing, warehouse, "2025-03-20")
    assert query(warehouse, sql)["valid_units"].to_list() == [1]


def test_profiles_sessions_and_receptions_are_followed_night_after_night(tmp_path):
    """A re-sent enrollment changing its monitoring profile or its sessions a week, and a late
    upload of readings measured in one closed period and received in the next: the incremental
    tables equal a fresh build each night."""
    landing, warehouse = tmp_path / "landing", tmp_path / "incremental.duckdb"
    write_rows(
        landing / "enrollments" / "1" / "e.csv",
        [
            enrollment(
                "D1", "Q1", "2025-01-01", activity_code="DIABETES", monitoring_profile="sensor"
            ),
            enrollment(
                "H1",
                "Q2",
                "2025-01-01",
                activity_code="RENAL_FAILURE",
                monitoring_profile="hemodialysis",
            ),
        ],
    )
    write_rows(
        landing / "prescriptions" / "p.csv",
        [prescription(f"R{e}", e, "2025-01-01", "2025-12-31") for e in ("D1", "H1")],
    )
    glucose = dict(activity_code="DIABETES", measure_type="glucose_capillary")
    write_rows(
        landing / "transmissions" / "1" / "t.jsonl",
        # D1: 2 finger-pricks a day on days 0-9 of P1 (a sensor counts none of them)
        [tx("Q1", f"2025-01-{d:02d} {h}:00", **glucose) for d in range(1, 11) for h in (10, 20)]
        # H1: 7 sessions in P1 (13 expected at 3 a week: sufficient)
        + [
            tx(
                "Q2",
                f"2025-01-{d:02d} 14:00",
                activity_code="RENAL_FAILURE",
                measure_type="dialysis_session",
            )
            for d in (1, 3, 5, 8, 10, 12, 15)
        ],
    )
    tables = (*STEP_TABLES, "staging.receipt_days")

    def periods(column: str, index: int = 1) -> list:
        sql = f"SELECT enrollment_id, {column} FROM marts.patient_periods WHERE period_index = "
        return query(warehouse, sql + f"{index} ORDER BY ALL").rows()

    night_equals_fresh(landing, warehouse, "2025-04-15", "first", tables)
    assert periods("valid_units") == [("D1", 0), ("H1", 7)]
    # a sensor counts no finger-pricks: no reception of a counted type in P1
    assert periods("max_gap_days") == [("D1", 30), ("H1", None)]
    write_rows(
        landing / "enrollments" / "2" / "e.csv",
        [
            enrollment(
                "D1",
                "Q1",
                "2025-01-01",
                activity_code="DIABETES",
                monitoring_profile="capillary_one_injection",
            ),
            enrollment(
                "H1",
                "Q2",
                "2025-01-01",
                activity_code="RENAL_FAILURE",
                monitoring_profile="hemodialysis",
                sessions_per_week=4,
            ),
        ],
    )
    night_equals_fresh(landing, warehouse, "2025-04-15", "profile and sessions", tables)
    assert periods("valid_units") == [("D1", 10), ("H1", 7)]
    assert periods("expected_units") == [("D1", 30), ("H1", 17)]
    assert periods("max_gap_days") == [("D1", 20), ("H1", None)]  # Jan 11-30 without reception
    assert periods("max_gap_days", 3) == [("D1", 30), ("H1", None)]
    # readings measured on Jan 28 (P1), uploaded late: received on Mar 10, in the closed P3 (a
    # night decides P1 again for its new unit, and P2 for its previous period, not P3)
    write_rows(
        landing / "transmissions" / "2" / "t.jsonl",
        [
            tx("Q1", f"2025-01-28 {h}:00", received_at="2025-03-10T22:00:00+01:00", **glucose)
            for h in (10, 20)
        ],
    )
    night_equals_fresh(landing, warehouse, "2025-04-15", "late upload", tables)
    assert periods("valid_units") == [("D1", 11), ("H1", 7)]
    # P3 (Mar 2 - 31): Mar 2 - 9 (8 days), then Mar 11 - 31 (21 days)
    assert periods("max_gap_days", 3) == [("D1", 21), ("H1", None)]
