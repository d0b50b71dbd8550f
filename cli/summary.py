"""What a run leaves in the warehouse, as a short table for the terminal."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from pipelines.config import Settings
from pipelines.warehouse import reader, row_count, sql_text, table_exists

SUMMARY_TABLES = (
    "raw.transmissions",
    "raw.enrollments",
    "raw.prescriptions",
    "ops.quarantine",
    "marts.patient_periods",
    "marts.file_active_monthly",
    "marts.file_active_semester",
    "marts.billing_lines",
    "marts.alerts",
)


def print_run_summary(console: Console, settings: Settings) -> None:
    """Files and rows of the warehouse after a run (counts only)."""
    with reader(settings.warehouse) as con:
        files = con.execute(
            "SELECT count(*) FILTER (WHERE status IN ('ingested', 'same_content', 'unreadable')), "
            "count(*) FILTER (WHERE status IN ('same_content', 'unreadable')), "
            "coalesce(sum(rows_read), 0), coalesce(sum(rows_loaded), 0), "
            "coalesce(sum(rows_quarantined), 0), coalesce(sum(duplicates_skipped), 0) "
            "FROM ops.ingested_files"
        ).fetchall()[0]
        # the paths not read, as they stand now (each path's latest record)
        unread = con.execute(
            "SELECT count(*) FILTER (WHERE latest = 'deferred'), "
            "count(*) FILTER (WHERE latest = 'skipped') FROM (SELECT path, "
            "arg_max(status, file_id) AS latest FROM ops.ingested_files GROUP BY path)"
        ).fetchall()[0]
        tables = {name: row_count(con, name) for name in SUMMARY_TABLES}
        statuses = (
            con.execute(sql_text("report/data_status_by_rule")).fetchall()
            if table_exists(con, "marts.patient_periods")
            else []
        )
    head = Table(title=f"Run as of {settings.as_of}", show_header=False)
    head.add_row("files read (of which same content or unreadable)", f"{files[0]:,} ({files[1]:,})")
    head.add_row("paths not read yet: deferred (being written)", f"{unread[0]:,}")
    head.add_row("paths never read: skipped (see skip_reason)", f"{unread[1]:,}")
    head.add_row("rows read", f"{files[2]:,}")
    head.add_row("  loaded", f"{files[3]:,}")
    head.add_row("  quarantined", f"{files[4]:,}")
    head.add_row("  duplicates", f"{files[5]:,}")
    for name, count in tables.items():
        head.add_row(name, f"{count:,}")
    console.print(head)
    if statuses:
        lines = Table(title="Closed periods per line and monitoring profile (rules R3, R4)")
        for column in ("line", "profile", "rule", "closed", "sufficient", "insufficient"):
            lines.add_column(column, justify="right" if column[0] in "cis" else "left")
        for column in ("no data", "billable", "weekly missed"):
            lines.add_column(column, justify="right")
        for row in statuses:
            lines.add_row(*row[:3], *(f"{n:,}" for n in row[3:]))
        console.print(lines)
