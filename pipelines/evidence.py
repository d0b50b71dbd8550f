"""``observance evidence``: the evidence frozen with issued lines (R11), for an audit.

One CSV row per unit counted (a local day, and an eye for eye-test lines), with its period's
decision, the counting rule and its source, the data cut-off; and a one-page HTML an auditor
can read. Reads the warehouse read-only.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import polars as pl

from pipelines.files import TEMPLATES, write_bytes, write_table
from pipelines.warehouse import reader, sql_text


@dataclass(frozen=True)
class EvidenceFiles:
    csv: Path
    html: Path
    periods: int


def write_evidence(
    warehouse: Path,
    out: Path,
    claim: str | None = None,
    enrollment: str | None = None,
    csv_style: str = "french",
) -> EvidenceFiles:
    """Write the evidence of the issued periods of ``claim`` or ``enrollment``."""
    out = Path(out)
    if out.suffix.lower() != ".csv":
        raise ValueError(f"--out must end in .csv, not {out.name!r} (the HTML goes beside it)")
    with reader(warehouse) as con:
        periods = con.sql(
            sql_text("ledger/evidence"), params={"claim": claim, "enrollment": enrollment}
        ).pl()
    if periods.is_empty():
        what = f"claim {claim}" if claim else f"enrollment {enrollment}"
        raise LookupError(f"no issued line of {what} in {warehouse}")
    units = (
        periods.explode("units")
        .unnest("units")
        .with_columns(
            pl.col("transmission_ids").list.join(" "), pl.col("source_files").list.join(" ")
        )
    )
    write_table(units.drop("rule_source"), out, csv_style)
    html = out.with_suffix(".html")
    page = TEMPLATES.get_template("evidence.html.j2").render(
        subject=f"demande {claim}" if claim else f"prise en charge {enrollment}",
        periods=periods.to_dicts(),
    )
    write_bytes(html, page.encode("utf-8"))
    return EvidenceFiles(csv=out, html=html, periods=periods.height)
