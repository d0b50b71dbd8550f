"""Small fixtures made in code: landing files from rows, a run through the asset graph."""

from __future__ import annotations

import gzip
import itertools
import json
import shutil
from collections.abc import Iterable
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import polars as pl

from dagster_project.runner import issue_batch, materialize_all
from pipelines.config import CATALOG_DIR, ENV_CATALOG_DIR, Settings
from pipelines.ledger import last_as_of
from pipelines.warehouse import reader

PARIS = ZoneInfo("Europe/Paris")
_ids = itertools.count(1)


def paris(text: str) -> str:
    """A Paris wall-clock time 'YYYY-MM-DD HH:MM' as an ISO instant with its real offset."""
    return datetime.fromisoformat(text).replace(tzinfo=PARIS).isoformat()


def tx(
    patient_id: str,
    measured_at: str,
    activity_code: str = "ODYSIGHT",
    measure_type: str | None = None,
    eye: str | None = "OD",
    exploitant_id: str = "EXP01",
    **fields,
) -> dict:
    """One transmission row; ``measured_at`` is a Paris wall-clock time unless it has an offset."""
    if measure_type is None:
        measure_type = "visual_acuity" if activity_code == "ODYSIGHT" else "weight"
    if activity_code != "ODYSIGHT" and eye == "OD":
        eye = None
    has_offset = measured_at.endswith("Z") or measured_at[-6] in "+-"
    row = {
        "transmission_id": fields.pop("transmission_id", f"T{next(_ids):07d}"),
        "exploitant_id": exploitant_id,
        "activity_code": activity_code,
        "patient_id": patient_id,
        "measure_type": measure_type,
        "eye": eye,
        "measured_at": measured_at if has_offset else paris(measured_at),
        "received_at": fields.pop("received_at", None),
        "value": fields.pop("value", 0.8),
    }
    row.update(fields)
    return {key: value for key, value in row.items() if value is not None}


def enrollment(
    enrollment_id: str,
    patient_id: str,
    start_date: str,
    activity_code: str = "ODYSIGHT",
    end_date: str | None = None,
    end_reason: str | None = None,
    ald: bool = False,
    exploitant_id: str = "EXP01",
    operator_id: str = "OP01",
    monitoring_profile: str | None = None,
    sessions_per_week: str | int | None = None,
    recorded_at: str | None = None,
) -> dict:
    """One enrollment row; the optional fields (R3, R7b) are written only when given."""
    optional = {
        "monitoring_profile": monitoring_profile,
        "sessions_per_week": sessions_per_week,
        "recorded_at": recorded_at,
    }
    return {
        "enrollment_id": enrollment_id,
        "patient_id": patient_id,
        "activity_code": activity_code,
        "exploitant_id": exploitant_id,
        "operator_id": operator_id,
        "start_date": start_date,
        "end_date": end_date or "",
        "end_reason": end_reason or "",
        "ald": "true" if ald else "false",
    } | {name: str(value) for name, value in optional.items() if value is not None}


def prescription(
    prescription_id: str, enrollment_id: str, valid_from: str, valid_until: str, kind="initial"
) -> dict:
    return {
        "prescription_id": prescription_id,
        "enrollment_id": enrollment_id,
        "kind": kind,
        "valid_from": valid_from,
        "valid_until": valid_until,
    }


def write_rows(path: Path, rows: Iterable[dict]) -> Path:
    """Write rows by extension: .jsonl, .jsonl.gz, .csv or .parquet."""
    rows = list(rows)
    path.parent.mkdir(parents=True, exist_ok=True)
    name = path.name
    if name.endswith(".jsonl") or name.endswith(".jsonl.gz"):
        text = "".join(json.dumps(row) + "\n" for row in rows).encode()
        path.write_bytes(gzip.compress(text, mtime=0) if name.endswith(".gz") else text)
    elif name.endswith(".csv"):
        frame = pl.DataFrame(rows, infer_schema_length=None).select(pl.all().cast(pl.String))
        frame.write_csv(path)
    elif name.endswith(".parquet"):
        pl.DataFrame(rows, infer_schema_length=None).write_parquet(path)
    else:
        raise ValueError(f"unknown extension: {path}")
    return path


def catalog_copy(tmp_path: Path, monkeypatch) -> Path:
    """A copy of the shipped catalog folder, used by the pipeline for the rest of the test."""
    folder = tmp_path / "catalog"
    shutil.copytree(CATALOG_DIR, folder, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    monkeypatch.setenv(ENV_CATALOG_DIR, str(folder))
    return folder


def one_enrollment_landing(root: Path, enrolled: dict, transmissions: list[dict]) -> Path:
    """A landing folder with one enrollment, a year's prescription and its transmissions."""
    eid, start = enrolled["enrollment_id"], enrolled["start_date"]
    end = (date.fromisoformat(start) + timedelta(days=364)).isoformat()
    write_rows(root / "enrollments" / "e.csv", [enrolled])
    write_rows(root / "prescriptions" / "p.csv", [prescription("R" + eid, eid, start, end)])
    write_rows(root / "transmissions" / "t.jsonl", transmissions)
    return root


def write_text(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def run(landing: Path, warehouse: Path, as_of: str | date) -> None:
    """One full run through the Dagster asset graph, as the CLI and the schedule do."""
    as_of = date.fromisoformat(as_of) if isinstance(as_of, str) else as_of
    materialize_all(Settings(landing=landing, warehouse=warehouse, as_of=as_of))


def issue(landing: Path, warehouse: Path, payee: str, out: Path, **filters) -> None:
    """Issue a batch of ``payee``'s lines through the asset graph, as `observance issue` does
    (as of the last run's evaluation date)."""
    with reader(warehouse) as con:
        as_of = last_as_of(con)
    issue_batch(
        Settings(landing=landing, warehouse=warehouse, as_of=as_of),
        payee=payee,
        out=str(out),
        **filters,
    )


def periods_by_enrollment(warehouse: Path) -> dict[str, pl.DataFrame]:
    """marts.patient_periods, one frame per enrollment, in period order."""
    frame = query(warehouse, "SELECT * FROM marts.patient_periods ORDER BY period_index")
    return {eid: frame.filter(pl.col("enrollment_id") == eid) for eid in frame["enrollment_id"]}


def query(warehouse: Path, sql: str, params: list | None = None) -> pl.DataFrame:
    """A query on a read-only connection, as a polars frame."""
    with reader(warehouse) as con:
        return con.sql(sql, params=params or None).pl()
