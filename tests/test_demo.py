"""The synthetic data exercise every rule: the demo warehouse shows every decision and flag."""

from __future__ import annotations

from pipelines.checks import (
    file_active_consistent,
    lines_paired,
    periods_decided,
    quarantine_share,
    reconciliation,
)
from pipelines.contract import KINDS
from pipelines.warehouse import reader
from tests.conftest import DEMO_AS_OF
from tests.helpers import query

BLOCK_REASONS = {
    "open",
    "not_completed",
    "no_prescription",
    "previous_period_insufficient",
    "no_data",
}


def test_every_block_reason_and_both_flags(demo_warehouse):
    periods = query(
        demo_warehouse,
        "SELECT block_reason, count(*) AS n, count(*) FILTER (WHERE reinforce_recommended) AS r, "
        "count(*) FILTER (WHERE stop_required) AS s, count(*) FILTER (WHERE died_in_period) AS d "
        "FROM marts.patient_periods GROUP BY ALL",
    )
    assert set(periods["block_reason"].drop_nulls()) == BLOCK_REASONS
    assert periods.filter(periods["block_reason"].is_null())["n"].sum() > 0  # billable ones
    assert periods["r"].sum() > 0 and periods["s"].sum() > 0 and periods["d"].sum() > 0


def test_every_data_status_and_activity(demo_warehouse):
    statuses = query(
        demo_warehouse,
        "SELECT DISTINCT activity_code, data_status FROM marts.patient_periods WHERE is_closed",
    )
    assert set(statuses["data_status"]) == {"no_data", "insufficient", "sufficient"}
    assert statuses["activity_code"].n_unique() == 7


def test_dirty_rows_are_quarantined_with_their_reasons(demo_warehouse):
    reasons = set(query(demo_warehouse, "SELECT DISTINCT reason FROM ops.quarantine")["reason"])
    assert reasons >= {
        "malformed_record",
        "missing_field",
        "timestamp_without_offset",
        "bad_type",
        "unknown_activity",
        "invalid_eye",
        "conflicting_duplicate",
    }
    assert (
        query(demo_warehouse, "SELECT sum(duplicates_skipped) AS n FROM ops.ingested_files")["n"][0]
        > 0
    )


def test_demo_passes_every_error_check(demo_warehouse):
    with reader(demo_warehouse) as con:
        outcomes = [reconciliation(con, kind) for kind in KINDS]
        outcomes += [periods_decided(con), lines_paired(con), file_active_consistent(con)]
        assert all(outcome.passed for outcome in outcomes), [o.description for o in outcomes]
        # the generator's dirt stays below the 10 % error threshold
        assert (
            quarantine_share(con, "transmissions").severity == "WARN"
            or quarantine_share(con, "transmissions").passed
        )


def test_demo_fills_file_active_billing_and_alerts(demo_warehouse):
    counts = query(
        demo_warehouse,
        "SELECT (SELECT count(DISTINCT exploitant_id) FROM marts.file_active_semester)"
        " AS exploitants,"
        " (SELECT count(*) FROM marts.file_active_semester WHERE technique_amount IS NOT NULL)"
        " AS priced,"
        " (SELECT count(*) FROM marts.billing_lines) AS lines,"
        " (SELECT count(*) FROM marts.billing_held) AS held,"
        " (SELECT count(DISTINCT kind) FROM marts.alerts) AS alert_kinds",
    ).row(0, named=True)
    assert counts["exploitants"] >= 3
    assert counts["priced"] > 0 and counts["lines"] > 0 and counts["held"] > 0
    assert counts["alert_kinds"] == 6  # every kind, weekly_transmission_missed included


def test_every_counting_rule_decides_periods_and_the_run_says_so(demo_warehouse):
    """Every line and monitoring profile of the catalog (R3) decides periods in the demo, and the
    run's summary lists the closed ones with their data statuses and the rule's status."""
    from rich.console import Console

    from cli.summary import print_run_summary
    from pipelines.config import Settings
    from pipelines.warehouse import sql_text

    decided = query(
        demo_warehouse,
        "SELECT DISTINCT activity_code, coalesce(counting_profile, '') AS profile "
        "FROM marts.patient_periods",
    )
    rules = query(
        demo_warehouse, "SELECT activity_code, monitoring_profile FROM ref.counting_rules"
    )
    assert set(zip(decided["activity_code"], decided["profile"], strict=True)) == set(
        zip(rules["activity_code"], rules["monitoring_profile"], strict=True)
    )
    closed = query(demo_warehouse, sql_text("report/data_status_by_rule"))
    assert closed.height >= rules.height - 2 and (closed["closed_periods"] > 0).all()
    console = Console(record=True, width=200)
    print_run_summary(
        console, Settings(landing=demo_warehouse, warehouse=demo_warehouse, as_of=DEMO_AS_OF)
    )
    text = console.export_text()
    assert "Closed periods per line and monitoring profile" in text
    assert "hemodialysis" in text and "ASSUMPTION" in text and "CONFIRMED" in text


def test_the_demo_runs_the_billing_loop(demo_warehouse, tmp_path):
    """`make demo`'s billing loop on a copy of the demo: both payees issued, the payer's
    synthetic answers reconciled, deaths notified after billing corrected and the corrections
    issued; the report shows the loop."""
    import shutil

    from cli.main import _billing_loop
    from pipelines.config import Settings
    from pipelines.warehouse import copy_warehouse

    landing = tmp_path / "landing"
    shutil.copytree(demo_warehouse.parent / "landing", landing)
    warehouse = tmp_path / "warehouse.duckdb"
    copy_warehouse(demo_warehouse, warehouse, link=True)
    _billing_loop(Settings(landing=landing, warehouse=warehouse, as_of=DEMO_AS_OF))
    kinds = dict(
        query(warehouse, "SELECT kind, count(*) AS n FROM ledger.issued_lines GROUP BY ALL").rows()
    )
    assert kinds["original"] > 0 and kinds["cancellation"] > 0 and kinds["reissue"] > 0
    statuses = set(query(warehouse, "SELECT DISTINCT status FROM marts.claim_status")["status"])
    assert {"paid", "partially_paid", "rejected"} <= statuses
    assert query(warehouse, "SELECT count(*) AS n FROM marts.billing_corrections")["n"][0] == 0
    assert (
        query(warehouse, "SELECT count(*) AS n FROM ops.quarantine WHERE kind = 'payments'")["n"][0]
        == 0
    )
    pages = sorted((tmp_path / "reports").glob("exploitant-*.html"))
    texts = [page.read_text(encoding="utf-8") for page in pages]
    assert pages and all("Facturation : émis, payé, rejeté" in text for text in texts)
    assert any("Lignes rejetées par motif" in t and "Rejetées</th>" in t for t in texts)
    assert len(list((tmp_path / "billing").glob("*.csv"))) == 5  # 4 batches, the answers
