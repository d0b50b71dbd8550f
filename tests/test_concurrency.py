"""One writer at a time: two runs started together leave the warehouse a single run leaves."""

from __future__ import annotations

import subprocess
import sys

from tests.helpers import enrollment, prescription, query, run, tx, write_rows

TABLES = (
    "raw.transmissions",
    "raw.enrollments",
    "ops.quarantine",
    "marts.patient_periods",
    "marts.file_active_monthly",
    "marts.billing_lines",
)


def make_landing(root):
    write_rows(
        root / "enrollments" / "e.csv",
        [enrollment(f"E{i}", f"P{i}", "2025-01-01") for i in range(20)],
    )
    write_rows(
        root / "prescriptions" / "p.csv",
        [prescription(f"R{i}", f"E{i}", "2025-01-01", "2025-12-31") for i in range(20)],
    )
    for day in range(1, 28, 3):
        write_rows(
            root / "transmissions" / f"2025-01-{day:02d}" / "t.jsonl",
            [
                tx(f"P{i}", f"2025-01-{day:02d} 09:00", eye=e)
                for i in range(20)
                for e in ("OD", "OS")
            ],
        )
    return root


def snapshot(warehouse) -> dict:
    return {table: query(warehouse, f"SELECT * FROM {table} ORDER BY ALL") for table in TABLES}


def test_two_runs_started_together(tmp_path):
    landing = make_landing(tmp_path / "landing")
    shared = tmp_path / "shared.duckdb"
    command = [
        sys.executable,
        "-m",
        "cli.main",
        "run",
        "--landing",
        str(landing),
        "--warehouse",
        str(shared),
        "--as-of",
        "2025-03-01",
    ]
    processes = [
        subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=300)[0].decode() for p in processes]
    assert [p.returncode for p in processes] == [0, 0], outputs

    alone = tmp_path / "alone.duckdb"
    run(landing, alone, "2025-03-01")
    together, single = snapshot(shared), snapshot(alone)
    for table in TABLES:
        assert together[table].equals(single[table]), table
    files = query(
        shared, "SELECT count(*) AS n, count(DISTINCT path) AS paths FROM ops.ingested_files"
    )
    assert files["n"][0] == files["paths"][0]  # no file ingested twice
