"""R8/R9 through the asset graph: monthly and semester file active, amounts, and the report."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import polars as pl
import pytest

from tests.helpers import enrollment, prescription, query, run, tx, write_rows

AS_OF = "2025-12-01"


def daily(patient: str, start: str, first: int, last: int, activity="HEART_FAILURE") -> list:
    begin = date.fromisoformat(start)
    return [
        tx(patient, f"{begin + timedelta(days=d)} 08:00", activity_code=activity, exploitant_id=exp)
        for d in range(first, last)
        for exp in [("EXP01" if activity == "HEART_FAILURE" else "EXP02")]
    ]


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory):
    landing = tmp_path_factory.mktemp("landing")
    # A: heart failure from Jan 1, data every day: periods start Jan 1, Jan 31, Mar 2, Apr 1,
    #    May 1, May 31, Jun 30, Jul 30, Aug 29, Sep 28, Oct 28, Nov 27 (open on Dec 1).
    # B: heart failure from Apr 10, data for two periods (Apr 10, May 10), then nothing.
    # C: ODYSIGHT at another exploitant (flat PECAN amount); D: cardiac implant (no tariff).
    enrollments = [
        enrollment("EA", "PA", "2025-01-01", activity_code="HEART_FAILURE"),
        enrollment("EB", "PB", "2025-04-10", activity_code="HEART_FAILURE"),
        enrollment("EC", "PC", "2025-06-01", exploitant_id="EXP02"),
        enrollment(
            "ED", "PD", "2025-05-01", activity_code="CARDIAC_IMPLANT", exploitant_id="EXP03"
        ),
    ]
    rx = [
        prescription("R" + e["enrollment_id"], e["enrollment_id"], e["start_date"], "2026-06-01")
        for e in enrollments
    ]
    rows = daily("PA", "2025-01-01", 0, 334) + daily("PB", "2025-04-10", 0, 60)
    rows += [
        tx("PC", f"{date(2025, 6, 1) + timedelta(days=d)} 09:00", eye=eye, exploitant_id="EXP02")
        for d in range(0, 180, 7)
        for eye in ("OD", "OS")
    ]
    rows += [
        tx(
            "PD",
            f"{date(2025, 5, 1) + timedelta(days=d)} 09:00",
            activity_code="CARDIAC_IMPLANT",
            measure_type="device_report",
            exploitant_id="EXP03",
        )
        for d in range(0, 200)
    ]
    write_rows(landing / "enrollments" / "e.csv", enrollments)
    write_rows(landing / "prescriptions" / "p.csv", rx)
    write_rows(landing / "transmissions" / "t.parquet", rows)
    path = tmp_path_factory.mktemp("wh") / "warehouse.duckdb"
    run(landing, path, AS_OF)
    return path


def monthly(warehouse, exploitant: str) -> pl.DataFrame:
    return query(
        warehouse,
        "SELECT * FROM marts.file_active_monthly WHERE exploitant_id = ? ORDER BY month",
        [exploitant],
    )


def test_monthly_billable_counts_by_date_of_care(warehouse):
    hf = monthly(warehouse, "EXP01")
    counts = dict(zip(hf["month"].cast(pl.String), hf["billable_patients"], strict=True))
    assert counts["2025-01-01"] == 1  # A: Jan 1 and Jan 31, one patient
    assert counts["2025-02-01"] == 0  # the February dip: no period of A starts in February
    assert counts["2025-03-01"] == 1
    assert counts["2025-04-01"] == 2  # A Apr 1, B Apr 10
    assert counts["2025-05-01"] == 2  # A May 1 and May 31, B May 10
    assert counts["2025-06-01"] == 1  # B Jun 9: no data -> not billable
    assert counts["2025-11-01"] == 0  # A Nov 27 is open on Dec 1
    assert hf["icd11_level"].unique().to_list() == ["BD10-BD1Z"]
    assert hf["technique_code"].unique().to_list() == ["1612544"]


def test_monthly_counts_cover_the_reference_semester_before_the_data(warehouse):
    hf = monthly(warehouse, "EXP01")
    assert hf["month"].min() == date(2024, 4, 1)  # 2024-S1, before 2024-S2 holding January
    assert hf["month"].max() == date(2025, 12, 1)
    assert hf.height == 21
    assert hf.filter(pl.col("month") < date(2025, 1, 1))["billable_patients"].sum() == 0


def test_monitored_patients(warehouse):
    hf = monthly(warehouse, "EXP01")
    monitored = dict(zip(hf["month"].cast(pl.String), hf["monitored_patients"], strict=True))
    assert monitored["2025-03-01"] == 1
    assert monitored["2025-04-01"] == 2
    assert monitored["2025-12-01"] == 2  # B still enrolled, without data


def test_semester_average_and_the_semester_it_applies_to(warehouse):
    semesters = query(
        warehouse,
        "SELECT * FROM marts.file_active_semester WHERE exploitant_id = 'EXP01' ORDER BY semester",
    )
    by_label = {row["semester"]: row for row in semesters.iter_rows(named=True)}
    # 2025-S1 = Apr..Sep 2025: 2 + 2 + 1 + 1 + 1 + 1 = 8 -> 8 / 6
    s1 = by_label["2025-S1"]
    assert s1["average_file_active"] == Decimal("1.333333")
    assert s1["applies_to_semester"] == "2025-S2"
    assert s1["applies_from"] == date(2025, 10, 1)
    assert s1["is_complete"] is True
    assert s1["technique_amount"] == Decimal("50.00")  # far below 5 000
    assert s1["patients_to_next_tranche"] == Decimal("4998.666667")
    # 2024-S2 = Oct 2024..Mar 2025: Jan 1 + Mar 1 = 2 -> 2 / 6, sets 2025-S1
    assert by_label["2024-S2"]["average_file_active"] == Decimal("0.333333")
    assert by_label["2024-S2"]["applies_to_semester"] == "2025-S1"
    assert by_label["2025-S2"]["is_complete"] is False


def test_pecan_flat_and_unknown_tariffs(warehouse):
    rows = query(
        warehouse,
        "SELECT exploitant_id, technique_code, technique_amount, schedule_note "
        "FROM marts.file_active_semester WHERE semester = '2025-S1' ORDER BY exploitant_id",
    ).rows()
    assert rows[1][:3] == ("EXP02", "1665434", Decimal("50.00"))
    assert rows[2][0] == "EXP03" and rows[2][1] is None and rows[2][2] is None
    assert "no forfait-technique tariff" in rows[2][3]


def test_file_active_is_never_negative_and_matches_periods(warehouse):
    check = query(
        warehouse,
        """
        SELECT count(*) AS n FROM marts.file_active_monthly m
        WHERE billable_patients < 0 OR billable_patients <> (
            SELECT count(DISTINCT p.patient_id) FROM marts.patient_periods p
            WHERE p.billable AND p.exploitant_id = m.exploitant_id
              AND date_trunc('month', p.period_start) = m.month)
        """,
    )
    assert check["n"][0] == 0
