"""Alerts (issue 7): each kind, auto-resolution, and never twice for the same open problem."""

from __future__ import annotations

from datetime import date, timedelta

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from pipelines.warehouse import reader, row_count, writer
from tests.helpers import enrollment, paris, prescription, query, run, tx, write_rows


def eye_tests_on(patient: str, days: list[str], received: str | None = None) -> list:
    extra = {"received_at": paris(received)} if received else {}
    return [tx(patient, f"{d} 09:00", eye=eye, **extra) for d in days for eye in ("OD", "OS")]


def yearly(eid: str, start: str) -> dict:
    return prescription("R" + eid, eid, start, str(date.fromisoformat(start) + timedelta(days=364)))


SCENARIOS = {
    # enrollment: (patient, start, activity)
    "INT": ("PINT", "2025-05-01", "ODYSIGHT"),  # last receipt May 31: 10 days on Jun 10
    "EDGE": ("PEDGE", "2025-05-01", "ODYSIGHT"),  # last receipt Jun 2: 8 days, not more
    "LATE": ("PLATE", "2025-05-01", "ODYSIGHT"),  # measured May 20, received Jun 8
    "HF": ("PHF", "2025-05-01", "HEART_FAILURE"),  # daily until Jun 6: 4 days > 3
    "RISK": ("PRISK", "2025-05-16", "ODYSIGHT"),  # P1 May 16..Jun 14, 1 unit after 25 days
    "REACH": ("PREACH", "2025-05-12", "ODYSIGHT"),  # P1 May 12..Jun 10, 1 unit, 1 day left
    "FINE": ("PFINE", "2025-05-16", "ODYSIGHT"),  # 4 units already: not at risk
    "REINF": ("PREINF", "2025-05-01", "ODYSIGHT"),  # P1 closed with 2 units
    "STOP": ("PSTOP", "2025-04-01", "ODYSIGHT"),  # P1 2 units, P2 1 unit
    "RX": ("PRX", "2025-05-01", "ODYSIGHT"),  # prescription ends Jun 25, nothing after
    "RXOK": ("PRXOK", "2025-05-01", "ODYSIGHT"),  # trial ends Jun 20, renewal follows
    "TRIAL": ("PTRIAL", "2025-05-01", "ODYSIGHT"),  # trial ends Jun 30, nothing after
}


def first_landing(root):
    enrollments = [
        enrollment(eid, patient, start, activity_code=activity)
        for eid, (patient, start, activity) in SCENARIOS.items()
    ]
    rx = [
        yearly(eid, start)
        for eid, (_, start, _) in SCENARIOS.items()
        if eid not in ("RX", "RXOK", "TRIAL")
    ]
    rx += [
        prescription("RRX", "RX", "2025-05-01", "2025-06-25"),
        prescription("RRXOK1", "RXOK", "2025-05-01", "2025-06-20", kind="trial"),
        prescription("RRXOK2", "RXOK", "2025-06-21", "2026-06-20", kind="renewal"),
        prescription("RTRIAL", "TRIAL", "2025-05-01", "2025-06-30", kind="trial"),
    ]
    rows = eye_tests_on("PINT", ["2025-05-10", "2025-05-31"])
    rows += eye_tests_on("PEDGE", ["2025-05-10", "2025-06-02"])
    rows += eye_tests_on("PLATE", ["2025-05-20"], received="2025-06-08 12:00")
    rows += [
        tx("PHF", f"2025-{m:02d}-{d:02d} 08:00", activity_code="HEART_FAILURE")
        for m, last in ((5, 31), (6, 6))
        for d in range(1, last + 1)
    ]
    rows += [tx("PRISK", "2025-06-08 09:00", eye="OD"), tx("PREACH", "2025-06-09 09:00", eye="OD")]
    rows += eye_tests_on("PFINE", ["2025-06-01", "2025-06-08"])
    rows += eye_tests_on("PREINF", ["2025-05-10"]) + eye_tests_on("PREINF", ["2025-06-08"])
    rows += eye_tests_on("PSTOP", ["2025-04-10"]) + [tx("PSTOP", "2025-05-10 09:00", eye="OD")]
    rows += eye_tests_on("PSTOP", ["2025-06-08"])
    for patient in ("PRX", "PRXOK", "PTRIAL"):
        rows += eye_tests_on(patient, ["2025-05-10", "2025-05-20", "2025-06-01", "2025-06-08"])
    write_rows(root / "enrollments" / "e.csv", enrollments)
    write_rows(root / "prescriptions" / "p.csv", rx)
    write_rows(root / "transmissions" / "2025-06-09" / "t.jsonl", rows)


@pytest.fixture(scope="module")
def history(tmp_path_factory):
    """Runs on Jun 10, Jun 10 again, Jun 12 (PINT sent data on Jun 11), Jun 25 (silent again)."""
    root = tmp_path_factory.mktemp("landing")
    first_landing(root)
    warehouse = tmp_path_factory.mktemp("wh") / "warehouse.duckdb"
    snapshots = {}
    run(root, warehouse, "2025-06-10")
    snapshots["jun10"] = alerts(warehouse)
    run(root, warehouse, "2025-06-10")
    snapshots["jun10_again"] = alerts(warehouse)
    back = eye_tests_on("PINT", ["2025-06-11"])
    write_rows(root / "transmissions" / "2025-06-11" / "t.jsonl", back)
    run(root, warehouse, "2025-06-12")
    snapshots["jun12"] = alerts(warehouse)
    run(root, warehouse, "2025-06-25")
    snapshots["jun25"] = alerts(warehouse)
    return snapshots


def alerts(warehouse) -> pl.DataFrame:
    return query(warehouse, "SELECT * FROM marts.alerts ORDER BY alert_id")


def open_kinds(frame: pl.DataFrame, enrollment_id: str) -> set[str]:
    rows = frame.filter((pl.col("enrollment_id") == enrollment_id) & (pl.col("status") == "open"))
    return set(rows["kind"])


def test_transmission_interrupted_after_the_threshold(history):
    jun10 = history["jun10"]
    assert "transmission_interrupted" in open_kinds(jun10, "INT")
    assert "transmission_interrupted" not in open_kinds(jun10, "EDGE")  # exactly 8 days
    assert "transmission_interrupted" in open_kinds(jun10, "HF")  # daily line: 3 days
    row = jun10.filter(
        (pl.col("enrollment_id") == "INT") & (pl.col("kind") == "transmission_interrupted")
    ).row(0, named=True)
    assert row["audience"] == "both"
    assert (
        row["message_en"] == "No transmission received for 10 days (last measurement: 2025-05-31)."
    )
    assert "10 jours" in row["message_fr"]


def test_interruption_is_judged_on_the_server_clock(history):
    # measured on May 20 (21 days before) but received on Jun 8: the feed is not interrupted
    assert "transmission_interrupted" not in open_kinds(history["jun10"], "LATE")


def test_period_at_risk(history):
    jun10 = history["jun10"]
    risk = jun10.filter((pl.col("enrollment_id") == "RISK") & (pl.col("kind") == "period_at_risk"))
    assert risk.height == 1
    assert risk["message_en"][0] == (
        "Period 1: 3 more valid units needed by 2025-06-14 (the current pace will not reach 50 %)."
    )
    reach = jun10.filter(
        (pl.col("enrollment_id") == "REACH") & (pl.col("kind") == "period_at_risk")
    )
    assert "can no longer be reached" in reach["message_en"][0]
    assert "period_at_risk" not in open_kinds(jun10, "FINE")


def test_reinforce_and_stop_alerts(history):
    jun10 = history["jun10"]
    assert "reinforce_recommended" in open_kinds(jun10, "REINF")
    assert "stop_required" in open_kinds(jun10, "STOP")
    assert "reinforce_recommended" not in open_kinds(jun10, "STOP")  # superseded by P2
    assert "stop_required" not in open_kinds(jun10, "REINF")


def test_prescription_expiring(history):
    jun10 = history["jun10"]
    rx = jun10.filter(
        (pl.col("enrollment_id") == "RX") & (pl.col("kind") == "prescription_expiring")
    )
    assert rx["message_en"].to_list() == ["Prescription valid until 2025-06-25 with no renewal."]
    assert rx["audience"].to_list() == ["operator"]
    assert "prescription_expiring" not in open_kinds(jun10, "RXOK")  # a renewal follows
    trial = jun10.filter(pl.col("enrollment_id") == "TRIAL")
    assert "Trial ends on 2025-06-30: review due." in trial["message_en"].to_list()
    assert "prescription_expiring" not in open_kinds(jun10, "FINE")  # a year to go


def test_never_raised_twice_for_the_same_open_problem(history):
    first, again = history["jun10"], history["jun10_again"]
    assert first.equals(again)
    assert (
        first.filter(pl.col("status") == "open")
        .select("enrollment_id", "kind")
        .is_duplicated()
        .sum()
        == 0
    )
    # two days later the HF feed is still silent: the same alert, seen again
    hf = history["jun12"].filter(
        (pl.col("enrollment_id") == "HF") & (pl.col("kind") == "transmission_interrupted")
    )
    assert hf.height == 1
    assert (hf["first_seen"][0], hf["last_seen"][0]) == (date(2025, 6, 10), date(2025, 6, 12))
    assert hf["message_en"][0].startswith("No transmission received for 6 days")


def test_an_alert_seen_again_with_the_same_text_moves_its_last_seen(history):
    """An open alert seen again moves its last_seen, whether or not its text changed."""
    rx = history["jun12"].filter(
        (pl.col("enrollment_id") == "RX") & (pl.col("kind") == "prescription_expiring")
    )
    assert rx["message_en"].to_list() == ["Prescription valid until 2025-06-25 with no renewal."]
    assert (rx["status"][0], rx["first_seen"][0], rx["last_seen"][0]) == (
        "open",
        date(2025, 6, 10),
        date(2025, 6, 12),
    )


def test_alert_ids_are_unique_across_the_history(history):
    """02_alerts.sql replaces the open alerts seen again by alert_id: it must name one row."""
    for name, frame in history.items():
        assert frame.height > 0, name
        assert frame["alert_id"].is_unique().all(), name


def test_resolves_by_itself_when_data_returns(history):
    interrupted = history["jun12"].filter(
        (pl.col("enrollment_id") == "INT") & (pl.col("kind") == "transmission_interrupted")
    )
    assert interrupted["status"].to_list() == ["resolved"]
    assert interrupted["resolved_at"].to_list() == [date(2025, 6, 12)]


def test_a_problem_that_comes_back_opens_a_new_alert(history):
    interrupted = (
        history["jun25"]
        .filter((pl.col("enrollment_id") == "INT") & (pl.col("kind") == "transmission_interrupted"))
        .sort("first_seen")
    )
    assert interrupted["status"].to_list() == ["resolved", "open"]
    assert interrupted["alert_id"].n_unique() == 2
    assert interrupted["first_seen"].to_list() == [date(2025, 6, 10), date(2025, 6, 25)]


def test_a_problem_back_on_the_same_evaluation_date_is_open_again(tmp_path):
    """The prescription is extended (alert resolved) then the extension is withdrawn, all as of
    the same date: the alert is open again, never a problem without its alert."""
    root, warehouse = tmp_path / "landing", tmp_path / "wh.duckdb"
    write_rows(root / "enrollments/e.csv", [enrollment("RX", "PRX", "2025-05-01")])
    write_rows(root / "transmissions/t.jsonl", eye_tests_on("PRX", ["2025-06-05"]))

    def prescribe(name: str, until: str) -> list:
        write_rows(
            root / f"prescriptions/{name}.csv", [prescription("RRX", "RX", "2025-05-01", until)]
        )
        run(root, warehouse, "2025-06-10")
        frame = alerts(warehouse).filter(pl.col("kind") == "prescription_expiring")
        return frame["status"].to_list()

    assert prescribe("a", "2025-06-25") == ["open"]
    assert prescribe("b", "2025-12-31") == ["resolved"]
    assert prescribe("c", "2025-06-24") == ["open"]  # (c.csv with a.csv's bytes would be skipped)


def test_alerts_are_a_view_of_the_history_even_where_an_earlier_version_left_a_table(tmp_path):
    """marts.alerts is a view over ops.alert_history (never rewritten as the history grows). A
    warehouse where an earlier version kept it as a table gets the view on the next run, with
    the same alerts; and it is counted like a table (row_count, the run summary)."""
    root = tmp_path / "landing"
    first_landing(root)
    warehouse = tmp_path / "warehouse.duckdb"
    run(root, warehouse, "2025-06-10")
    before = alerts(warehouse)
    with writer(warehouse) as con:
        con.execute("DROP VIEW marts.alerts")
        con.execute("CREATE TABLE marts.alerts AS SELECT * FROM ops.alert_history")
    run(root, warehouse, "2025-06-10")
    kinds = query(
        warehouse,
        "SELECT (SELECT count(*) FROM duckdb_views() WHERE schema_name = 'marts' "
        "AND view_name = 'alerts') AS views, (SELECT count(*) FROM duckdb_tables() "
        "WHERE schema_name = 'marts' AND table_name = 'alerts') AS tables",
    ).row(0)
    assert kinds == (1, 0)
    assert_frame_equal(alerts(warehouse), before)
    with reader(warehouse) as con:
        assert row_count(con, "marts.alerts") == before.height > 0
