"""R9: the tariff schedule file and marginal pricing with the floor."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import polars as pl
import pytest

from pipelines.config import CATALOG_DIR
from pipelines.file_active import schedule_parts
from pipelines.tariffs import (
    ScheduleError,
    Tranche,
    load_schedule,
    marginal_price,
    technique_price,
    tranches_in_force,
    validate,
)

D = Decimal
ON = date(2025, 10, 1)


def tranche(
    lower, upper, rate, floor="20.83", start="2024-04-01", until=None, tier="organisational"
):
    return Tranche(
        tier=tier,
        lower=D(lower),
        upper=None if upper is None else D(upper),
        rate=D(rate),
        floor=D(floor),
        effective_from=date.fromisoformat(start),
        effective_until=None if until is None else date.fromisoformat(until),
        source="test",
    )


@pytest.fixture(scope="module")
def shipped():
    return load_schedule()


def organisational(shipped, n):
    return technique_price(shipped, "modulated", "organisational", D("50.00"), D(n), ON)


@pytest.mark.parametrize("n", ["0", "1", "2500", "4999", "4999.83"])
def test_below_5000_pays_the_base(shipped, n):
    price = organisational(shipped, n)
    assert price.amount == D("50.00")
    assert (price.tranche_lower, price.tranche_upper) == (D(0), D(5000))
    assert price.next_tranche_at == D(5000)


def test_6000_is_the_exact_marginal_blend(shipped):
    price = organisational(shipped, "6000")
    # 5 000 patients at 50.00 and 1 000 at 45.83: (250 000 + 45 830) / 6 000 = 49.305
    assert price.exact == D("49.305")
    assert price.amount == D("49.31")  # to the cent, half up
    assert price.next_tranche_at == D(8000)
    assert "8,000 is not published" in price.note


def test_clinical_tiers_use_their_own_rates(shipped):
    price = technique_price(shipped, "modulated", "mortality", D("91.67"), D(6000), ON)
    assert price.exact == (D(5000) * D("91.67") + D(1000) * D("84.03")) / D(6000)


def test_the_floor_binds_when_the_blend_falls_below_it():
    complete = [tranche(0, 5000, "50.00"), tranche(5000, None, "12.53")]
    # 1 000 000 patients: (5 000 x 50 + 995 000 x 12.53) / 1 000 000 = 12.71735 < 20.83
    price = marginal_price(complete, D(1_000_000))
    assert price.amount == D("20.83")
    # 6 000 patients: (250 000 + 12 530) / 6 000 = 43.755 > floor: the blend
    assert marginal_price(complete, D(6000)).amount == D("43.76")


def test_an_uncovered_average_yields_null_and_says_which_range(shipped):
    price = organisational(shipped, "12000")
    assert price.amount is None and price.exact is None
    assert "8,000–99,999" in price.note
    assert "not computed" in price.note
    # above 100 000 the blend would need tranches 3-11 too
    assert organisational(shipped, "150000").amount is None


def test_before_the_modulation_the_base_applies_to_any_average(shipped):
    price = technique_price(
        shipped, "modulated", "organisational", D("50"), D(60000), date(2024, 1, 1)
    )
    assert price.amount == D("50.00")


def test_pecan_is_flat_and_unknown_is_null(shipped):
    flat = technique_price(shipped, "flat", "pecan", D("50.00"), D(123456), ON)
    assert flat.amount == D("50.00") and "PECAN" in flat.note
    unknown = technique_price(shipped, "unknown", "pci_derogation", None, D(10), ON)
    assert unknown.amount is None and "no forfait-technique tariff" in unknown.note


def test_no_schedule_in_force(shipped):
    price = technique_price(
        shipped, "modulated", "organisational", D("50"), D(10), date(2020, 1, 1)
    )
    assert price.amount is None and "no tariff schedule" in price.note


def test_shipped_schedule_holds_only_confirmed_ranges(shipped):
    rows = tranches_in_force(shipped, "organisational", ON)
    assert [(t.lower, t.upper, t.rate) for t in rows] == [
        (D(0), D(5000), D("50.00")),
        (D(5000), D(8000), D("45.83")),
        (D(100000), None, D("12.53")),
    ]
    floors = {t.tier: t.floor for t in shipped if t.effective_from <= ON}
    assert floors == {
        "organisational": D("20.83"),
        "quality_of_life": D("30.56"),
        "morbidity": D("34.37"),
        "mortality": D("38.19"),
    }


def test_overlapping_tranches_are_rejected():
    with pytest.raises(ScheduleError, match=r"tranches \[0, 5,000\) and \[4,000, 8,000\) overlap"):
        validate([tranche(0, 5000, "50"), tranche(4000, 8000, "45")])


def test_overlapping_dates_are_rejected():
    with pytest.raises(ScheduleError, match="dates overlap"):
        validate(
            [
                tranche(0, None, "50", start="2024-01-01", until="2024-06-30"),
                tranche(0, None, "45", start="2024-06-01"),
            ]
        )


def test_bad_bounds_and_floors_are_rejected():
    with pytest.raises(ScheduleError, match="bad bounds"):
        validate([tranche(5000, 5000, "50")])
    with pytest.raises(ScheduleError, match="floor differs"):
        validate([tranche(0, 5000, "50", floor="20"), tranche(5000, 8000, "45", floor="21")])


def test_a_dropped_in_schedule_file_is_validated(tmp_path):
    rows = pl.read_csv(CATALOG_DIR / "tariff_schedule.csv", infer_schema=False)
    bad = pl.concat([rows, rows.head(1)])
    bad.write_csv(tmp_path / "tariff_schedule.csv")
    with pytest.raises(ScheduleError, match="overlap"):
        load_schedule(tmp_path / "tariff_schedule.csv")


def test_a_semester_is_cut_where_a_schedule_version_starts_or_ends():
    versions = [tranche(0, None, "50.00", start="2023-07-01", until="2024-03-31")]
    versions.append(tranche(0, None, "45.00", start="2024-04-01"))
    assert schedule_parts(versions, date(2023, 4, 1), date(2023, 9, 30)) == [
        (date(2023, 4, 1), date(2023, 6, 30)),
        (date(2023, 7, 1), date(2023, 9, 30)),
    ]
    # a change on the semester's first day does not cut it
    assert schedule_parts(versions, date(2024, 4, 1), date(2024, 9, 30)) == [
        (date(2024, 4, 1), date(2024, 9, 30))
    ]
    ended = [tranche(0, None, "50.00", start="2023-07-01", until="2023-12-31")]
    assert schedule_parts(ended, date(2023, 10, 1), date(2024, 3, 31)) == [
        (date(2023, 10, 1), date(2023, 12, 31)),
        (date(2024, 1, 1), date(2024, 3, 31)),
    ]
