"""R9: the forfait-technique tariff schedule (a data file) and marginal pricing by file active.

The schedule ``catalog/tariff_schedule.csv`` has one row per tranche: tier, half-open bounds
``[tranche_lower, tranche_upper)`` on the average file active (empty upper: no limit), the
per-patient monthly rate of that tranche, the floor, the dates it is in force and its source.
Only the published values are shipped; a range with no row is a gap, and an average that falls in
a gap gets no amount and a note saying which range is missing. Drop in the official table as a
file (``OBSERVANCE_CATALOG_DIR``) to replace it: no code change.

Marginal pricing (rules.md R9): each tranche's rate applies to the patients within it,
``amount(N) = max(floor, Σ rate_t · |[lower_t, upper_t) ∩ [0, N)| / N)``, rounded to the cent.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import polars as pl

from pipelines.catalog import CatalogError
from pipelines.config import catalog_dir

CENT = Decimal("0.01")


class ScheduleError(CatalogError):
    """A tariff schedule that cannot be used: overlapping tranches or dates, bad bounds."""


@dataclass(frozen=True)
class Tranche:
    tier: str
    lower: Decimal
    upper: Decimal | None  # None: no upper limit
    rate: Decimal
    floor: Decimal
    effective_from: date
    effective_until: date | None  # None: still in force
    source: str

    def label(self) -> str:
        upper = "∞" if self.upper is None else f"{self.upper:,.0f}"
        return f"[{self.lower:,.0f}, {upper})"


@dataclass(frozen=True)
class Price:
    """The per-patient monthly amount for an average file active, or why there is none."""

    amount: Decimal | None
    exact: Decimal | None  # before rounding to the cent
    note: str | None
    tranche_lower: Decimal | None  # the tranche N falls in
    tranche_upper: Decimal | None
    next_tranche_at: Decimal | None  # where the next (lower) rate starts


def load_schedule(path: Path | None = None) -> list[Tranche]:
    """The schedule file, validated (raises ScheduleError with every problem found)."""
    path = path or catalog_dir() / "tariff_schedule.csv"
    frame = pl.read_csv(path, infer_schema=False)
    tranches = []
    for number, row in enumerate(frame.iter_rows(named=True), start=2):
        try:
            tranches.append(
                Tranche(
                    tier=row["tier"].strip(),
                    lower=Decimal(row["tranche_lower"]),
                    upper=Decimal(row["tranche_upper"]) if row["tranche_upper"] else None,
                    rate=Decimal(row["rate"]),
                    floor=Decimal(row["floor"]),
                    effective_from=date.fromisoformat(row["effective_from"]),
                    effective_until=date.fromisoformat(row["effective_until"])
                    if row["effective_until"]
                    else None,
                    source=row["source"] or "",
                )
            )
        except (TypeError, ValueError, ArithmeticError, AttributeError) as exc:
            raise ScheduleError(f"{path}: line {number} cannot be read ({exc})") from exc
    validate(tranches, str(path))
    return tranches


def validate(tranches: list[Tranche], where: str = "tariff schedule") -> None:
    problems = []
    for t in tranches:
        if t.lower < 0 or (t.upper is not None and t.upper <= t.lower):
            problems.append(f"tier {t.tier}: bad bounds {t.label()}")
        if t.rate < 0 or t.floor < 0:
            problems.append(f"tier {t.tier}: negative rate or floor in {t.label()}")
        if t.effective_until is not None and t.effective_until < t.effective_from:
            problems.append(f"tier {t.tier}: effective_until before effective_from")
        if not t.source:
            problems.append(f"tier {t.tier} {t.label()}: no source")
    versions: dict[str, dict[tuple, list[Tranche]]] = defaultdict(lambda: defaultdict(list))
    for t in tranches:
        versions[t.tier][(t.effective_from, t.effective_until)].append(t)
    for tier, by_dates in versions.items():
        spans = sorted(by_dates)
        for (from_a, until_a), (from_b, _) in zip(spans, spans[1:], strict=False):
            if until_a is None or until_a >= from_b:
                problems.append(
                    f"tier {tier}: dates overlap ({from_a}–{until_a or '…'} and from {from_b})"
                )
        for (start, _), rows in by_dates.items():
            rows = sorted(rows, key=lambda t: t.lower)
            for a, b in zip(rows, rows[1:], strict=False):
                if a.upper is None or a.upper > b.lower:
                    problems.append(
                        f"tier {tier} (from {start}): tranches {a.label()} and {b.label()} overlap"
                    )
            if len({t.floor for t in rows}) > 1:
                problems.append(f"tier {tier} (from {start}): the floor differs between tranches")
    if problems:
        raise ScheduleError(f"{where}: " + "; ".join(problems))


def tranches_in_force(tranches: list[Tranche], tier: str, on: date) -> list[Tranche]:
    """The tranches of ``tier`` in force on ``on``, by lower bound."""
    return sorted(
        (
            t
            for t in tranches
            if t.tier == tier
            and t.effective_from <= on
            and (t.effective_until is None or on <= t.effective_until)
        ),
        key=lambda t: t.lower,
    )


def _gap(tranches: list[Tranche], n: Decimal) -> tuple[Decimal, Decimal | None] | None:
    """The first range of [0, max(n, 0+)) that no tranche covers, if any."""
    position = Decimal(0)
    for t in tranches:
        if t.lower > position and (position < n or position == n == 0):
            return position, t.lower
        if t.upper is None:
            return None
        position = max(position, t.upper)
        if position > n:
            return None
    return position, None


def marginal_price(tranches: list[Tranche], n: Decimal) -> Price:
    """Per-patient amount for average file active ``n`` under one schedule version (R9)."""
    if not tranches:
        return Price(None, None, "no tariff schedule in force", None, None, None)
    current = next((t for t in tranches if t.lower <= n and (t.upper is None or n < t.upper)), None)
    gap = _gap(tranches, n)
    if gap is not None:
        low, high = gap
        missing = f"{low:,.0f}–{high - 1:,.0f}" if high is not None else f"{low:,.0f} and above"
        return Price(
            None,
            None,
            f"average file active {n:,.2f} reaches {missing}, a range the tariff schedule does "
            "not cover (tranches not published): amount not computed",
            None,
            None,
            high,
        )
    if n == 0:
        blended = current.rate
    else:
        total = Decimal(0)
        for t in tranches:
            upper = n if t.upper is None else min(n, t.upper)
            total += t.rate * max(Decimal(0), upper - t.lower)
        blended = total / n
    exact = max(tranches[0].floor, blended)  # one floor per schedule version (validated)
    if current is None:  # n sits exactly where an unpublished range starts
        following = next((t.lower for t in tranches if t.lower > n), None)
        note = f"the tranche from {n:,.0f} is not published"
        lower = upper = None
    else:
        following, lower, upper = current.upper, current.lower, current.upper
        note = None
        if following is not None and not any(t.lower == following for t in tranches):
            note = f"the tranche from {following:,.0f} is not published"
    return Price(
        amount=exact.quantize(CENT, rounding=ROUND_HALF_UP),
        exact=exact,
        note=note,
        tranche_lower=lower,
        tranche_upper=upper,
        next_tranche_at=following,
    )


def technique_price(
    tranches: list[Tranche],
    pricing: str,
    tier: str,
    base_amount: Decimal | None,
    n: Decimal,
    on: date,
) -> Price:
    """The forfait-technique amount of one activity for a semester starting on ``on``."""
    if pricing == "flat":
        note = "flat PECAN amount (not modulated by file active: the texts are silent)"
        return Price(base_amount, base_amount, note, None, None, None)
    if pricing != "modulated" or base_amount is None:
        return Price(
            None, None, "no forfait-technique tariff known for this activity", None, None, None
        )
    in_force = tranches_in_force(tranches, tier, on)
    if not in_force:
        return Price(None, None, f"no tariff schedule for tier {tier} on {on}", None, None, None)
    return marginal_price(in_force, n)
