"""Files written for people and billing software: CSV in French or international conventions,
or Parquet, chosen by the file name; created readable by the owner and the group only.

French (the default, what French Excel opens): `;` between fields, a decimal comma, UTF-8 with
a byte-order mark, ISO dates, French headers (FRENCH_HEADERS) and oui/non. International (for
machines): `,` and a decimal point, no byte-order mark, the technical column names, true/false.
In both, a text cell that a spreadsheet would take for a formula (it starts with ``=``, ``+``,
``-``, ``@``, a tab or a carriage return: OWASP "CSV injection") is written after a ``'``, which
spreadsheets show as text; numbers and amounts (a negative correction) are never touched.
"""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path

import polars as pl
from jinja2 import Environment, PackageLoader, select_autoescape

from pipelines.config import FILE_MODE

CSV_STYLES = ("french", "international")
# The HTML pages written for people (reports, evidence): pipelines/templates/, escaped.
TEMPLATES = Environment(
    loader=PackageLoader("pipelines", "templates"),
    autoescape=select_autoescape(["html", "j2"]),
    trim_blocks=True,
    lstrip_blocks=True,
)
BOM = "\ufeff".encode()
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
# French headers of the files written for people (docs/contract.md, "Files written"); the
# international style keeps the technical names, for machines. A column not listed keeps its name.
FRENCH_HEADERS = {
    "batch_id": "Lot",
    "line_id": "Ligne",
    "line_status": "Statut de la ligne",
    "kind": "Nature",
    "corrects_line_id": "Corrige la ligne",
    "reason": "Motif",
    "cause": "Cause",
    "claim_id": "Facture",
    "claim_status": "Statut de la facture",
    "payee": "Bénéficiaire",
    "enrollment_id": "Inscription",
    "patient_id": "Patient",
    "operator_id": "Opérateur",
    "exploitant_id": "Exploitant",
    "activity_code": "Activité",
    "period_index": "Période",
    "period_start": "Début de période",
    "period_end": "Fin de période",
    "date_of_care": "Date des soins",
    "code": "Code acte",
    "amount": "Montant (€)",
    "amo_amount": "Part AMO (€)",
    "patient_amount": "Part patient (€)",
    "ald": "ALD",
    "local_date": "Jour",
    "valid_readings": "Mesures valides",
    "failed_readings": "Mesures hors calibration",
    "is_valid": "Unité valide",
}


def _csv_bytes(frame: pl.DataFrame, style: str) -> bytes:
    if style not in CSV_STYLES:
        raise ValueError(f"csv style must be one of {CSV_STYLES}, not {style!r}")
    french = style == "french"
    frame = defuse_formulas(frame)
    if french:  # yes/no and French headers, for the people who open it in a spreadsheet
        frame = frame.with_columns(
            pl.col(name).replace_strict({True: "oui", False: "non"}, return_dtype=pl.String)
            for name, dtype in frame.schema.items()
            if dtype == pl.Boolean
        ).rename({name: FRENCH_HEADERS[name] for name in frame.columns if name in FRENCH_HEADERS})
    decimals = [name for name, dtype in frame.schema.items() if dtype.is_decimal()]
    if french:  # amounts as text with a decimal comma (exact: never through a float)
        frame = frame.with_columns(
            pl.col(decimals).cast(pl.String).str.replace(".", ",", literal=True)
        )
    buffer = io.BytesIO()
    frame.write_csv(buffer, separator=";" if french else ",")
    return (BOM if french else b"") + buffer.getvalue()


def defuse_formulas(frame: pl.DataFrame) -> pl.DataFrame:
    """Text cells starting like a spreadsheet formula (FORMULA_STARTS) prefixed with ``'``."""
    frame = frame.with_columns(  # categories are text too
        pl.col(name).cast(pl.String)
        for name, dtype in frame.schema.items()
        if isinstance(dtype, pl.Categorical | pl.Enum)
    )
    texts = [name for name, dtype in frame.schema.items() if dtype == pl.String]
    pattern = "^[" + "".join(FORMULA_STARTS).replace("-", r"\-") + "]"
    return frame.with_columns(
        pl.when(pl.col(name).str.contains(pattern))
        .then(pl.lit("'") + pl.col(name))
        .otherwise(pl.col(name))
        .alias(name)
        for name in texts
    )


def file_format(path: Path) -> str:
    """``parquet`` or ``csv``, by the name's ending; anything else is refused."""
    suffix = Path(path).suffix.lower()
    if suffix not in (".csv", ".parquet"):
        raise ValueError(f"the file must end in .csv or .parquet, not {Path(path).name!r}")
    return suffix[1:]


def table_bytes(frame: pl.DataFrame, fmt: str, style: str = "french") -> bytes:
    """The bytes of ``frame`` as a ``csv`` (in ``style``) or ``parquet`` file."""
    if fmt == "parquet":
        buffer = io.BytesIO()
        frame.write_parquet(buffer)
        return buffer.getvalue()
    return _csv_bytes(frame, style)


def write_bytes(path: Path, data: bytes) -> str:
    """Write ``data`` to ``path`` (mode FILE_MODE, synced to disk); returns its SHA-256."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.chmod(path, FILE_MODE)
    return hashlib.sha256(data).hexdigest()


def write_table(
    frame: pl.DataFrame, path: Path, style: str = "french", name: Path | None = None
) -> str:
    """Write ``frame`` to ``path`` in the format ``name`` (default ``path``) ends with; returns
    the SHA-256 of the bytes."""
    return write_bytes(Path(path), table_bytes(frame, file_format(name or path), style))
