"""The SQL models of the warehouse: one entry per ``sql/`` file, with what it reads and writes.

Dagster turns each entry into one asset (dagster_project/assets/models.py); tests and the
benchmark run them through the same asset graph. Order in MODELS is a valid build order.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

import duckdb

from pipelines.faults import fault
from pipelines.file_active import price_semesters
from pipelines.warehouse import (
    drop_table_become_view,
    pace_vacuum,
    row_count,
    run_sql,
    set_parameters,
    sql_text,
)


@dataclass(frozen=True)
class Model:
    key: str  # asset key and main table, "schema.table"
    sql: str  # file under sql/, without .sql
    deps: tuple[str, ...]  # keys of the models or raw tables it reads
    group: str
    also_writes: tuple[str, ...] = ()
    description: str = ""
    # a Python step run after the SQL, in the same transaction (e.g. pricing from a data file)
    then: Callable[[duckdb.DuckDBPyConnection], None] | None = None
    # sql/metadata/<name>.sql: one row whose columns are shown with each materialization
    metadata_sql: str | None = None
    # the written relations the SQL creates as views (a table an earlier version left under that
    # name is dropped first, in the same transaction)
    views: tuple[str, ...] = ()

    @property
    def tables(self) -> tuple[str, ...]:
        return (self.key, *self.also_writes)


MODELS: tuple[Model, ...] = (
    Model(
        "staging.enrollments",
        "observance/01_enrollments",
        ("raw.enrollments", "raw.prescriptions", "ref.catalog"),
        "observance",
        also_writes=("staging.prescriptions",),
        description="Latest version of each enrollment and prescription, with the counting rule "
        "of its line and monitoring profile (R3); capped prescription lengths (R7).",
    ),
    Model(
        "staging.daily_units",
        "observance/02_daily_units",
        ("raw.transmissions", "ref.catalog"),
        "observance",
        also_writes=("staging.receipt_days",),
        description="Readings per patient, Paris civil date, eye and counted measure type; "
        "calibration (R1, R3); the days counted readings were received (R3 weekly rule).",
    ),
    Model(
        "staging.periods",
        "observance/03_periods",
        ("staging.enrollments",),
        "observance",
        description="30-day periods from each enrollment start, open or closed (R2).",
    ),
    Model(
        "staging.period_units",
        "observance/04_period_units",
        ("staging.daily_units", "staging.periods", "ref.catalog"),
        "observance",
        also_writes=("staging.matched_units", "staging.unmatched_units"),
        description="Daily units matched to enrollments (incrementally) and counted per period "
        "(R2, R3).",
    ),
    Model(
        "marts.patient_periods",
        "observance/05_patient_periods",
        (
            "staging.period_units",
            "staging.periods",
            "staging.enrollments",
            "staging.daily_units",
            "ref.catalog",
        ),
        "observance",
        description="One row per enrollment x period: completeness, billability, flags (R3-R7).",
        metadata_sql="metadata/patient_periods",
    ),
    Model(
        "marts.unmatched_transmissions",
        "observance/06_unmatched",
        ("staging.period_units",),
        "observance",
        description="Transmissions that match no enrollment, per exploitant and activity (R2).",
    ),
    Model(
        "marts.data_quality_findings",
        "observance/07_data_quality",
        ("staging.enrollments", "raw.enrollments", "raw.prescriptions", "ref.catalog"),
        "observance",
        description="Enrollment and prescription problems to fix upstream (R2, R3, R7, R7b).",
    ),
    Model(
        "marts.file_active_monthly",
        "file_active/01_monthly",
        ("marts.patient_periods", "staging.enrollments", "ref.catalog"),
        "file_active",
        description="Billable and monitored patients per month, exploitant, code, ICD-11 level "
        "(R8).",
        metadata_sql="metadata/file_active_monthly",
    ),
    Model(
        "marts.file_active_semester",
        "file_active/02_semester",
        ("marts.file_active_monthly", "ref.catalog"),
        "file_active",
        also_writes=("staging.file_active_semester",),
        description="Semester average file active and the forfait-technique amount it sets for "
        "the next semester (R8, R9).",
        then=price_semesters,
    ),
    Model(
        "marts.claim_status",
        "billing/01_claim_status",
        ("ledger.issued_lines", "raw.payments"),
        "billing",
        description="Per issued line, the payer's answer: issued, paid, partially paid, "
        "rejected, unpaid overdue (R12).",
        metadata_sql="metadata/claim_status",
    ),
    Model(
        "marts.billing_lines",
        "billing/02_billing_lines",
        (
            "marts.file_active_semester",
            "marts.patient_periods",
            "staging.enrollments",
            "ref.catalog",
            "ledger.issued_lines",
            "marts.claim_status",
        ),
        "billing",
        also_writes=("marts.billing_held", "marts.billing_corrections", "staging.due_lines"),
        views=("marts.billing_lines", "staging.lines_in_force"),
        description="Operator and exploitant lines per billable period, in claims of at most six "
        "consecutive periods: the lines in force in the ledger, the others ready or pending; "
        "periods waiting for a tariff are held; the corrections the ledger needs (R10, R11).",
        metadata_sql="metadata/billing_lines",
    ),
    Model(
        "staging.current_problems",
        "alerts/01_current_problems",
        ("marts.patient_periods", "staging.period_units", "staging.enrollments", "ref.catalog"),
        "reporting",
        description="Problems open on as_of: interruption, period at risk, reinforce, stop, "
        "prescription expiring.",
    ),
    Model(
        "marts.alerts",
        "alerts/02_alerts",
        ("staging.current_problems",),
        "reporting",
        also_writes=("ops.alert_history",),
        views=("marts.alerts",),
        description="Alerts for care teams and exploitants, kept across runs (first seen, last "
        "seen, resolved).",
        metadata_sql="metadata/alerts",
    ),
)
MODELS_BY_KEY = {model.key: model for model in MODELS}
log = logging.getLogger(__name__)


def build(con: duckdb.DuckDBPyConnection, model: Model, as_of: date) -> dict[str, object]:
    """Run one model's SQL as of ``as_of``; returns the row count of each table it writes and
    the model's own metadata (counts only, never patient-level values)."""
    set_parameters(con, as_of)
    pace_vacuum(con, as_of)
    con.begin()
    try:
        for view in model.views:
            drop_table_become_view(con, view)
        run_sql(con, model.sql)
        if model.then is not None:
            model.then(con)
        fault(f"model:{model.key}:written")
        con.commit()
    except BaseException:
        con.rollback()
        raise
    # (a view is counted by its metadata query, if at all: counting it runs it)
    tables = [table for table in model.tables if table not in model.views]
    counts: dict[str, object] = {f"{table}_rows": row_count(con, table) for table in tables}
    log.info("built %s (%s)", model.key, ", ".join(f"{k} {v}" for k, v in counts.items()))
    if model.metadata_sql:
        result = con.execute(sql_text(model.metadata_sql))
        names = [column[0] for column in result.description]
        counts |= dict(zip(names, result.fetchall()[0], strict=True))
    return counts
