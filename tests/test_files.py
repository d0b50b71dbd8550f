"""Files written for people (billing files, exports, evidence: pipelines/files.py): a text cell
a spreadsheet would run as a formula is written as text (OWASP CSV injection); numbers and
amounts are written as they are."""

from __future__ import annotations

import csv
import io
from decimal import Decimal

import polars as pl
import pytest

from pipelines.files import CSV_STYLES, table_bytes

HOSTILE = ["=cmd|' /C calc'!A0", "+33 1 23", "-2+3", "@SUM(A1)", "\tTAB", "\rCR", "P-1", "é=1"]


@pytest.mark.parametrize("style", CSV_STYLES)
def test_cells_that_start_like_a_formula_are_written_as_text(style):
    frame = pl.DataFrame(
        {
            "patient_id": HOSTILE,
            "amount": pl.Series([Decimal("-28.00")] * len(HOSTILE), dtype=pl.Decimal(10, 2)),
            "units": [-1] * len(HOSTILE),
        }
    )
    text = table_bytes(frame, "csv", style).decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(text), delimiter=";" if style == "french" else ","))
    assert [row[0] for row in rows[1:]] == [
        "'=cmd|' /C calc'!A0",
        "'+33 1 23",
        "'-2+3",
        "'@SUM(A1)",
        "'\tTAB",
        "'\rCR",
        "P-1",
        "é=1",
    ]
    amount = "-28,00" if style == "french" else "-28.00"
    assert {row[1] for row in rows[1:]} == {amount}  # a negative correction stays a number
    assert {row[2] for row in rows[1:]} == {"-1"}


def test_parquet_keeps_the_values_as_they_are():
    frame = pl.DataFrame({"patient_id": HOSTILE})
    assert pl.read_parquet(io.BytesIO(table_bytes(frame, "parquet"))).equals(frame)
