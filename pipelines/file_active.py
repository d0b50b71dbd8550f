"""R8/R9: price each reference semester's average file active for the semester it applies to.

``sql/file_active/02_semester.sql`` computes the averages; this step adds the per-patient
forfait-technique amount from the tariff schedule (pipelines/tariffs.py) and writes
``marts.file_active_semester``. A schedule version that starts or ends inside the applied
semester (the base rates start on 1 July 2023, mid-semester) splits it: one row per part, each
priced by the schedule in force on its first day, ``applies_from`` .. ``applies_until`` bounding
the part.
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import duckdb
import pyarrow as pa

from pipelines.tariffs import Tranche, load_schedule, technique_price

AMOUNT = pa.decimal128(10, 2)
EXACT = pa.decimal128(18, 6)


def _decimal6(value: Decimal | None) -> Decimal | None:
    return None if value is None else value.quantize(Decimal("0.000001"))


def schedule_parts(tranches: list[Tranche], first: date, last: date) -> list[tuple[date, date]]:
    """Cut [first, last] at every day a schedule version starts or stops being in force."""
    changes = {t.effective_from for t in tranches} | {
        t.effective_until + timedelta(days=1) for t in tranches if t.effective_until is not None
    }
    starts = [first, *sorted(day for day in changes if first < day <= last)]
    ends = [day - timedelta(days=1) for day in starts[1:]] + [last]
    return list(zip(starts, ends, strict=True))


def price_semesters(con: duckdb.DuckDBPyConnection) -> None:
    """Write marts.file_active_semester from staging.file_active_semester and the schedule."""
    schedule = load_schedule()
    rows = con.execute(
        """
        SELECT s.*, a.pricing, a.technique_base_amount
        FROM staging.file_active_semester s
        JOIN (SELECT DISTINCT technique_code, icd11_level, tier, pricing, technique_base_amount
              FROM ref.activities) a
          ON a.technique_code IS NOT DISTINCT FROM s.technique_code
         AND a.icd11_level = s.icd11_level AND a.tier = s.tier
        ORDER BY s.exploitant_id, s.technique_code, s.icd11_level, s.semester
        """
    )
    names = [column[0] for column in rows.description]
    records = []
    for row in rows.fetchall():
        semester = dict(zip(names, row, strict=True))
        for first, last in schedule_parts(
            schedule, semester["applies_from"], semester["applies_until"]
        ):
            records.append(semester | {"applies_from": first, "applies_until": last})
    for record in records:
        n = Decimal(record["average_file_active"])
        price = technique_price(
            schedule,
            record["pricing"],
            record["tier"],
            record["technique_base_amount"],
            n,
            record["applies_from"],
        )
        record["technique_amount"] = price.amount
        record["technique_amount_exact"] = _decimal6(price.exact)
        record["schedule_note"] = price.note
        record["tranche_lower"] = price.tranche_lower
        record["tranche_upper"] = price.tranche_upper
        record["next_tranche_at"] = price.next_tranche_at
        record["patients_to_next_tranche"] = (
            None if price.next_tranche_at is None else _decimal6(price.next_tranche_at - n)
        )
    columns = {
        name: pa.array([r[name] for r in records])
        for name in names
        if name not in ("technique_base_amount",)
    }
    columns["technique_amount"] = pa.array([r["technique_amount"] for r in records], AMOUNT)
    for name in ("technique_amount_exact", "patients_to_next_tranche"):
        columns[name] = pa.array([r[name] for r in records], EXACT)
    for name in ("tranche_lower", "tranche_upper", "next_tranche_at"):
        columns[name] = pa.array([r[name] for r in records], pa.decimal128(18, 0))
    columns["schedule_note"] = pa.array([r["schedule_note"] for r in records], pa.string())
    con.register("priced", pa.table(columns))
    try:
        con.execute("CREATE OR REPLACE TABLE marts.file_active_semester AS SELECT * FROM priced")
    finally:
        con.unregister("priced")
