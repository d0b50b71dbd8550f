"""R10 through the asset graph: paired lines, claims of up to six periods, amounts, stability."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest

from pipelines.export import export_lines
from tests.helpers import (
    catalog_copy,
    enrollment,
    issue,
    one_enrollment_landing,
    prescription,
    query,
    run,
    tx,
    write_rows,
)

D = Decimal


def weekly_eye_tests(patient: str, start: str, days: int) -> list:
    begin = date.fromisoformat(start)
    return [
        tx(patient, f"{begin + timedelta(days=d)} 09:00", eye=eye)
        for d in range(1, days, 7)
        for eye in ("OD", "OS")
    ]


def daily(patient: str, start: str, days: range) -> list:
    begin = date.fromisoformat(start)
    return [
        tx(patient, f"{begin + timedelta(days=d)} 08:00", activity_code="HEART_FAILURE")
        for d in days
    ]


def heart_failure_run(
    tmp_path: Path, number: str, start: str, days: int, as_of: str, ald: bool = False
) -> tuple[Path, Path]:
    """One heart-failure enrollment (E<number>, patient P<number>) measured every day of its
    first ``days`` days, run as of ``as_of``: its landing folder and warehouse."""
    landing = one_enrollment_landing(
        tmp_path / "landing",
        enrollment(f"E{number}", f"P{number}", start, activity_code="HEART_FAILURE", ald=ald),
        daily(f"P{number}", start, range(0, days)),
    )
    warehouse = tmp_path / "wh.duckdb"
    run(landing, warehouse, as_of)
    return landing, warehouse


def landing_for(root, until_day: int):
    """E1: ODYSIGHT, not ALD, adherent; E2: heart failure, ALD, data in P1, P2, P5, P6 only;
    E3: ODYSIGHT, died in P2 without data; E4: cardiac implant (no forfait-technique tariff)."""
    enrollments = [
        enrollment("E1", "P1", "2025-01-01"),
        enrollment("E2", "P2", "2025-01-01", activity_code="HEART_FAILURE", ald=True),
        enrollment("E3", "P3", "2025-01-01", end_date="2025-02-10", end_reason="deceased"),
        enrollment("E4", "P4", "2025-01-01", activity_code="CARDIAC_IMPLANT"),
    ]
    rx = [
        prescription("R" + e["enrollment_id"], e["enrollment_id"], "2025-01-01", "2025-12-31")
        for e in enrollments
    ]
    rows = weekly_eye_tests("P1", "2025-01-01", until_day)
    rows += daily("P2", "2025-01-01", range(0, 60)) + daily("P2", "2025-01-01", range(120, 180))
    rows += weekly_eye_tests("P3", "2025-01-01", 30)
    rows += [
        tx(
            "P4",
            f"{date(2025, 1, 1) + timedelta(days=d)} 09:00",
            activity_code="CARDIAC_IMPLANT",
            measure_type="device_report",
        )
        for d in range(0, 200)
    ]
    write_rows(root / "enrollments" / "e.csv", enrollments)
    write_rows(root / "prescriptions" / "p.csv", rx)
    write_rows(root / "transmissions" / f"t{until_day}.jsonl", rows)
    return root


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory):
    landing = landing_for(tmp_path_factory.mktemp("landing"), 330)
    path = tmp_path_factory.mktemp("wh") / "warehouse.duckdb"
    run(landing, path, "2025-12-01")
    return path


def lines(warehouse, where="true") -> pl.DataFrame:
    return query(
        warehouse,
        f"SELECT * FROM marts.billing_lines WHERE {where} ORDER BY enrollment_id, period_index, "
        "payee",
    )


def test_every_billable_period_has_both_lines(warehouse):
    pairs = query(
        warehouse,
        """
        SELECT p.enrollment_id, p.period_index,
            count(*) FILTER (WHERE l.payee = 'operator') AS operator_lines,
            count(*) FILTER (WHERE l.payee = 'exploitant') AS exploitant_lines
        FROM marts.patient_periods p
        LEFT JOIN marts.billing_lines l USING (enrollment_id, period_index)
        WHERE p.billable AND p.activity_code <> 'CARDIAC_IMPLANT'
        GROUP BY ALL
        """,
    )
    assert pairs.height > 0
    assert pairs["operator_lines"].to_list() == [1] * pairs.height
    assert pairs["exploitant_lines"].to_list() == [1] * pairs.height
    orphans = query(
        warehouse,
        "SELECT count(*) AS n FROM marts.billing_lines l ANTI JOIN marts.patient_periods p "
        "ON p.enrollment_id = l.enrollment_id AND p.period_index = l.period_index AND p.billable",
    )
    assert orphans["n"][0] == 0


def test_six_period_series_then_a_new_claim(warehouse):
    e1 = lines(warehouse, "enrollment_id = 'E1' AND payee = 'operator'")
    # as of Dec 1: P1..P11 closed and billable, P12 (Nov 27..) open
    assert e1["period_index"].to_list() == list(range(1, 12))
    assert e1["claim_id"].to_list() == ["E1-C001"] * 6 + ["E1-C007"] * 5
    assert e1["claim_status"].to_list() == ["ready"] * 6 + ["pending"] * 5
    assert e1["date_of_care"][0] == date(2025, 1, 1)
    assert e1["date_of_care"][6] == date(2025, 1, 1) + timedelta(days=180)


def test_a_gap_starts_a_new_claim(warehouse):
    e2 = lines(warehouse, "enrollment_id = 'E2' AND payee = 'operator'")
    # P1, P2 billable; P3 no_data; P4, P5 previous insufficient (data again from P5);
    # P6 billable; P7 no data
    assert e2["period_index"].to_list() == [1, 2, 6]
    assert e2["claim_id"].to_list() == ["E2-C001", "E2-C001", "E2-C006"]
    assert set(e2["claim_status"]) == {"ready"}


def test_amounts_ald_and_not_ald(warehouse):
    e1 = lines(warehouse, "enrollment_id = 'E1' AND period_index = 1")
    by_payee = {row["payee"]: row for row in e1.iter_rows(named=True)}
    assert (by_payee["operator"]["code"], by_payee["operator"]["amount"]) == ("TVB", D("28.00"))
    assert by_payee["operator"]["amo_amount"] == D("16.80")
    assert by_payee["operator"]["patient_amount"] == D("11.20")
    assert (by_payee["exploitant"]["code"], by_payee["exploitant"]["amount"]) == (
        "1665434",
        D("50.00"),
    )
    assert (by_payee["exploitant"]["amo_amount"], by_payee["exploitant"]["patient_amount"]) == (
        D("30.00"),
        D("20.00"),
    )
    e2 = lines(warehouse, "enrollment_id = 'E2' AND period_index = 1")
    for row in e2.iter_rows(named=True):  # ALD: 100 % AMO
        assert row["amo_amount"] == row["amount"] and row["patient_amount"] == D("0.00")
    assert set(e2["code"]) == {"TVB", "1612544"}


def test_death_period_line(warehouse):
    e3 = lines(warehouse, "enrollment_id = 'E3'")
    assert e3.filter(pl.col("payee") == "operator")["period_index"].to_list() == [1, 2]
    assert e3["date_of_care"].max() == date(2025, 1, 31)
    assert set(e3["claim_status"]) == {"ready"}  # the enrollment ended: the claim is complete


def test_unknown_tariff_holds_both_lines(warehouse):
    assert lines(warehouse, "enrollment_id = 'E4'").height == 0
    held = query(warehouse, "SELECT * FROM marts.billing_held WHERE enrollment_id = 'E4'")
    assert held.height == 7  # data for 200 days: P1..P7 billable, P8 no data
    assert set(held["reason"]) == {"waiting_for_tariff"}
    assert "no forfait-technique tariff" in held["detail"][0]


def issue_all(landing: Path, warehouse: Path, tmp_path: Path, name: str) -> None:
    """Issue the ready lines of both payees (the ledger then holds them)."""
    for payee in ("operator", "exploitant"):
        issue(landing, warehouse, payee, tmp_path / f"{name}-{payee}.csv")


def test_claims_come_from_the_decisions_alone(tmp_path):
    """Without a ledger, the claims are the decisions' own: a warehouse grown night after night
    and one built in a single run on the same files hold the same lines; ready claims do not
    change when later periods are added."""
    landing = landing_for(tmp_path / "landing", 330)
    warehouse = tmp_path / "wh.duckdb"
    run(landing, warehouse, "2025-12-01")
    first = lines(warehouse)
    run(landing, warehouse, "2025-12-01")
    assert lines(warehouse).equals(first)
    # a month later, with more data: ready claims are unchanged, the pending one grows to six
    landing_for(landing, 400)
    run(landing, warehouse, "2026-01-10")
    later = lines(warehouse)
    ready_before = first.filter(pl.col("claim_status") == "ready").drop("batch_id", "issued_at")
    assert later.join(ready_before, on=list(ready_before.columns), how="semi").height == (
        ready_before.height
    )
    e1 = later.filter((pl.col("enrollment_id") == "E1") & (pl.col("payee") == "operator"))
    assert e1.filter(pl.col("period_index") == 12)["claim_id"].to_list() == ["E1-C007"]
    assert e1.filter(pl.col("claim_id") == "E1-C007")["claim_status"].to_list() == ["ready"] * 6
    fresh = tmp_path / "fresh.duckdb"
    run(landing, fresh, "2026-01-10")
    assert later.equals(lines(fresh))


def test_a_late_prescription_bills_the_gap_in_a_claim_of_its_own(tmp_path):
    """P2 had no prescription; P1 and P3 were issued in their claims. The renewal arrives late:
    P2 becomes billable and its claim is ready at once, since P3 is already issued."""
    enrolled = enrollment("E5", "P5", "2025-01-01")
    landing = one_enrollment_landing(
        tmp_path / "landing", enrolled, weekly_eye_tests("P5", "2025-01-01", 90)
    )  # P1..P3 full (Jan 1..Mar 31), P4 (Apr 1..30) no data
    write_rows(
        landing / "prescriptions" / "p.csv",
        [
            prescription("RA", "E5", "2025-01-01", "2025-01-30"),
            prescription("RB", "E5", "2025-03-02", "2025-12-31", kind="renewal"),
        ],
    )
    warehouse = tmp_path / "wh.duckdb"
    run(landing, warehouse, "2025-05-15")
    first = lines(warehouse, "payee = 'operator'")
    assert first["claim_id"].to_list() == ["E5-C001", "E5-C003"]
    assert first["claim_status"].to_list() == ["ready", "ready"]
    issue_all(landing, warehouse, tmp_path, "first")

    write_rows(
        landing / "prescriptions" / "late.csv",
        [prescription("RG", "E5", "2025-01-31", "2025-03-01", kind="renewal")],
    )
    run(landing, warehouse, "2025-05-15")
    later = lines(warehouse, "payee = 'operator'")
    assert later["claim_id"].to_list() == ["E5-C001", "E5-C002", "E5-C003"]
    assert later["claim_status"].to_list() == ["issued", "ready", "issued"]


def test_a_schedule_starting_mid_semester_prices_the_periods_it_covers(tmp_path):
    """The base rates start on 2023-07-01, inside the semester Apr..Sep 2023: periods starting
    before wait for a tariff, the ones from July on are billed at the base rate."""
    _, warehouse = heart_failure_run(tmp_path, "6", "2023-04-02", 180, "2023-10-15", ald=True)
    # P1 Apr 2, P2 May 2, P3 Jun 1: before the schedule; P4 Jul 1, P5 Jul 31, P6 Aug 30: in it
    held = query(warehouse, "SELECT period_index, detail FROM marts.billing_held ORDER BY 1")
    assert held["period_index"].to_list() == [1, 2, 3]
    assert "2023-04-01" in held["detail"][0]
    billed = lines(warehouse, "payee = 'exploitant'")
    assert billed["period_index"].to_list() == [4, 5, 6]
    assert billed["amount"].to_list() == [D("50.00")] * 3
    parts = query(
        warehouse,
        "SELECT applies_from, applies_until, technique_amount FROM marts.file_active_semester "
        "WHERE applies_to_semester = '2023-S1' ORDER BY applies_from",
    ).rows()
    assert parts == [
        (date(2023, 4, 1), date(2023, 6, 30), None),
        (date(2023, 7, 1), date(2023, 9, 30), D("50.00")),
    ]


def test_amo_split_uses_exact_cents(tmp_path, monkeypatch):
    """A forfait of 45.83 € without ALD: 60 % = 27.498 -> 27.50 AMO, 18.33 patient."""
    catalog = catalog_copy(tmp_path, monkeypatch)
    schedule = pl.read_csv(catalog / "tariff_schedule.csv", infer_schema=False)
    schedule = schedule.with_columns(
        rate=pl.when(pl.col("tier") == "organisational").then(pl.lit("45.83")).otherwise("rate"),
        floor=pl.when(pl.col("tier") == "organisational").then(pl.lit("20.83")).otherwise("floor"),
    )
    schedule.write_csv(catalog / "tariff_schedule.csv")
    _, warehouse = heart_failure_run(tmp_path, "9", "2025-01-01", 30, "2025-02-15")
    row = lines(warehouse, "payee = 'exploitant'").row(0, named=True)
    assert (row["amount"], row["amo_amount"], row["patient_amount"]) == (
        D("45.83"),
        D("27.50"),
        D("18.33"),
    )


def test_export_csv_and_parquet(warehouse, tmp_path):
    summary = export_lines(
        warehouse, "operator", date(2025, 1, 1), date(2025, 12, 31), tmp_path / "op.csv"
    )
    # read back as French Excel does: `;`, decimal comma, French headers
    exported = pl.read_csv(tmp_path / "op.csv", separator=";", infer_schema=False)
    ready = lines(warehouse, "payee = 'operator' AND claim_status = 'ready'")
    assert summary.lines == exported.height == ready.height
    assert set(exported["Bénéficiaire"]) == {"operator"}
    amounts = [D(text.replace(",", ".")) for text in exported["Montant (€)"]]
    assert sum(amounts, D("0")) == summary.amount
    assert set(exported["ALD"]) <= {"oui", "non"}
    assert summary.pending_lines_left_out == 5
    text = (tmp_path / "op.csv").read_bytes()
    assert text.startswith("\ufeff".encode()) and b";" in text.splitlines()[0]
    assert summary.periods_waiting_for_tariff == 7
    assert summary.amount == sum(ready["amount"].to_list(), D("0"))
    both = export_lines(
        warehouse,
        "exploitant",
        date(2025, 1, 1),
        date(2025, 1, 31),
        tmp_path / "ex.parquet",
        include_pending=True,
    )
    frame = pl.read_parquet(tmp_path / "ex.parquet")
    assert both.lines == frame.height
    assert frame["date_of_care"].max() <= date(2025, 1, 31)
    # for machines: `,`, decimal point, the technical names
    export_lines(
        warehouse, "operator", date(2025, 1, 1), date(2025, 12, 31), tmp_path / "op-intl.csv",
        csv_style="international",
    )  # fmt: skip
    machine = pl.read_csv(tmp_path / "op-intl.csv", infer_schema=False)
    assert sum((D(a) for a in machine["amount"]), D("0")) == summary.amount
    assert set(machine["ald"]) <= {"true", "false"}


def test_export_filters_and_dates(warehouse, tmp_path):
    everything = export_lines(
        warehouse, "operator", date(2025, 1, 1), date(2025, 12, 31), tmp_path / "all.csv"
    )
    exploitants = pl.read_csv(tmp_path / "all.csv", separator=";")["Exploitant"].unique()
    one = exploitants[0]
    only = export_lines(
        warehouse, "operator", date(2025, 1, 1), date(2025, 12, 31), tmp_path / "one.csv",
        exploitant=one,
    )  # fmt: skip
    assert set(pl.read_csv(tmp_path / "one.csv", separator=";")["Exploitant"]) <= {one}
    assert 0 < only.lines <= everything.lines
    with pytest.raises(ValueError, match="--from 2025-12-31 is after --to 2025-01-01"):
        export_lines(
            warehouse, "operator", date(2025, 12, 31), date(2025, 1, 1), tmp_path / "x.csv"
        )
    with pytest.raises(ValueError, match="payee"):
        export_lines(warehouse, "patient", date(2025, 1, 1), date(2025, 2, 1), tmp_path / "x.csv")


def test_an_issued_claim_is_neither_repriced_nor_held_when_its_tariff_disappears(
    tmp_path, monkeypatch
):
    """P1-P6 are issued in one claim. The tariff tables then lose every amount (the schedule
    moved seven years later): the issued lines stay as they were, no correction is made on an
    amount now unknown, and they are not listed as waiting for a tariff; only P7, closed since,
    waits."""
    catalog = catalog_copy(tmp_path, monkeypatch)
    landing, warehouse = heart_failure_run(tmp_path, "7", "2025-01-01", 225, "2025-07-15", ald=True)
    ready = lines(warehouse)
    assert ready["claim_status"].to_list() == ["ready"] * 12
    assert ready["period_index"].unique().sort().to_list() == [1, 2, 3, 4, 5, 6]
    issue_all(landing, warehouse, tmp_path, "b")
    issued = lines(warehouse)
    assert issued["claim_status"].to_list() == ["issued"] * 12

    schedule = pl.read_csv(catalog / "tariff_schedule.csv", infer_schema=False)
    schedule.with_columns(
        pl.col("effective_from", "effective_until").str.to_date().dt.offset_by("7y")
    ).write_csv(catalog / "tariff_schedule.csv")
    run(landing, warehouse, "2025-08-15")
    later = lines(warehouse)
    assert later.drop("line_status").equals(issued.drop("line_status"))
    held = query(warehouse, "SELECT period_index, reason FROM marts.billing_held").rows()
    assert held == [(7, "waiting_for_tariff")]
    assert query(warehouse, "SELECT count(*) AS n FROM marts.billing_corrections")["n"][0] == 0


def test_export_mistakes_are_one_line(warehouse, tmp_path):
    from tests.test_ledger import cli

    common = ("export", "--payee", "operator", "--warehouse", str(warehouse), "--out")
    after = cli(*common, str(tmp_path / "x.csv"), "--from", "2025-12-31", "--to", "2025-01-01")
    assert after.returncode == 1
    assert after.stdout.strip() == "error: --from 2025-12-31 is after --to 2025-01-01"
    bad = cli(*common, str(tmp_path / "x.csv"), "--from", "2025-01-01", "--to", "2025-99-01")
    assert bad.returncode == 2 and "Invalid value for '--to'" in bad.stderr
    assert "Traceback" not in bad.stdout + bad.stderr + after.stdout + after.stderr
