"""The exploitant report: one self-contained HTML file (plotly), read-only on the warehouse.

It opens in a browser with no server: plotly.js is embedded once, every chart's data is inline.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import plotly.graph_objects as go
import plotly.io as pio
import polars as pl
from plotly.offline import get_plotlyjs

from pipelines.config import UNPAID_AFTER_DAYS
from pipelines.warehouse import reader, sql_text, table_exists

FEBRUARY_NOTE = (
    "Counts are by date of care (the first day of each billable 30-day period). A 28- or 29-day "
    "February holds no period start for some patients, so its count dips below its neighbours: "
    "this is how the file active is counted, not missing data (rules R8). The month of the "
    "evaluation date is incomplete: the periods that started in it are still open, so they are "
    "not billable yet."
)


@dataclass
class Section:
    title: str
    intro: str
    figure: go.Figure | None = None
    table: pl.DataFrame | None = None


# The alert table lists at most this many open alerts (the newest): a national file active has
# tens of thousands, which would make the page too heavy to open; the chart counts them all.
ALERT_ROWS_SHOWN = 500


def _frame(con, name: str) -> pl.DataFrame:
    return con.sql(sql_text(f"report/{name}")).pl()


def _white_template() -> go.layout.Template:
    """plotly's "plotly_white", cut to what the report's bar and line charts use: each figure
    copies its template, and the whole one (defaults for every kind of chart) made that copy
    most of the time spent building the report's figures."""
    white = pio.templates["plotly_white"]
    unused = {"coloraxis", "colorscale", "geo", "polar", "scene", "ternary"}
    layout = white.layout.to_plotly_json()
    return go.layout.Template(
        layout={key: value for key, value in layout.items() if key not in unused},
        data={"bar": white.data.bar, "scatter": white.data.scatter},
    )


WHITE = _white_template()


def _layout(fig: go.Figure, y_title: str) -> go.Figure:
    fig.update_layout(
        template=WHITE,
        height=460,
        margin={"l": 60, "r": 20, "t": 30, "b": 50},
        legend={"orientation": "h", "y": -0.2},
        yaxis_title=y_title,
    )
    return fig


def monthly_figure(monthly: pl.DataFrame) -> go.Figure:
    fig = go.Figure()
    for (exploitant, level, tier), rows in monthly.group_by(
        ["exploitant_id", "icd11_level", "tier"], maintain_order=True
    ):
        name = f"{exploitant} · {level} ({tier})"
        fig.add_scatter(
            x=rows["month"].to_list(),
            y=rows["billable_patients"].to_list(),
            name=f"{name} billable",
            mode="lines+markers",
        )
        fig.add_scatter(
            x=rows["month"].to_list(),
            y=rows["monitored_patients"].to_list(),
            name=f"{name} monitored",
            mode="lines",
            line={"dash": "dot"},
        )
    return _layout(fig, "patients")


def semester_figure(semesters: pl.DataFrame) -> go.Figure:
    fig = go.Figure()
    for (exploitant, level), rows in semesters.group_by(
        ["exploitant_id", "icd11_level"], maintain_order=True
    ):
        fig.add_bar(
            x=rows["semester"].to_list(),
            y=rows["average_file_active"].to_list(),
            name=f"{exploitant} · {level}",
            customdata=rows["patients_to_next_tranche"].to_list(),
            hovertemplate="average %{y:.2f}<br>to next tranche: %{customdata:,.0f}",
        )
    bounds = sorted(
        {b for b in semesters["tranche_upper"].drop_nulls().to_list()}
        | {b for b in semesters["tranche_lower"].drop_nulls().to_list() if b > 0}
    )
    top = max(semesters["average_file_active"].max() or 0, 1)
    for bound in bounds:
        if bound <= top * 1.5:  # only the bounds near the data, so the bars stay readable
            fig.add_hline(y=bound, line_dash="dash", annotation_text=f"tranche at {bound:,.0f}")
    fig.update_layout(barmode="group")
    return _layout(fig, "average monthly file active")


def revenue_figure(revenue: pl.DataFrame) -> go.Figure:
    fig = go.Figure()
    for (exploitant, level), rows in revenue.group_by(
        ["exploitant_id", "icd11_level"], maintain_order=True
    ):
        fig.add_bar(
            x=rows["month"].to_list(),
            y=rows["revenue"].fill_null(0).to_list(),
            name=f"{exploitant} · {level}",
            customdata=rows["technique_amount"].to_list(),
            hovertemplate="%{y:,.2f} €<br>per patient: %{customdata} €",
        )
    fig.update_layout(barmode="stack")
    return _layout(fig, "forfait technique, € per month")


def completeness_figure(completeness: pl.DataFrame) -> go.Figure:
    fig = go.Figure()
    for (activity,), rows in completeness.group_by(["activity_code"], maintain_order=True):
        fig.add_bar(
            x=rows["completeness_bin"].to_list(),
            y=rows["periods"].to_list(),
            name=activity,
            hovertemplate="from %{x:.1%}: %{y} periods",
        )
    fig.add_vline(x=0.5, line_dash="dash", annotation_text="50 %")
    fig.update_layout(
        barmode="group", xaxis_title="completeness of closed periods", xaxis_tickformat=".0%"
    )
    return _layout(fig, "periods")


def decisions_figure(decisions: pl.DataFrame) -> go.Figure:
    fig = go.Figure()
    for (decision,), rows in decisions.group_by(["decision"], maintain_order=True):
        fig.add_bar(
            x=rows["activity_code"].to_list(),
            y=rows["share"].to_list(),
            name=decision,
            customdata=rows["periods"].to_list(),
            hovertemplate="%{y:.1%} (%{customdata} periods)",
        )
    fig.update_layout(barmode="stack", yaxis_tickformat=".0%")
    return _layout(fig, "share of periods")


def billing_figure(billing: pl.DataFrame) -> go.Figure:
    fig = go.Figure()
    for (payee,), rows in billing.group_by(["payee"], maintain_order=True):
        if payee == "waiting_for_tariff":
            fig.add_scatter(
                x=rows["month"].to_list(),
                y=rows["lines"].to_list(),
                name="periods waiting for a tariff",
                mode="markers",
                yaxis="y2",
            )
        else:
            fig.add_bar(x=rows["month"].to_list(), y=rows["amount"].to_list(), name=payee)
    fig.update_layout(
        barmode="group",
        yaxis2={"title": "periods waiting", "overlaying": "y", "side": "right"},
    )
    return _layout(fig, "€ by month of care")


def alerts_figure(alerts: pl.DataFrame) -> go.Figure:
    fig = go.Figure()
    counts = alerts.group_by(["operator_id", "kind"]).len().sort(["operator_id", "kind"])
    for (kind,), rows in counts.group_by(["kind"], maintain_order=True):
        fig.add_bar(x=rows["operator_id"].to_list(), y=rows["len"].to_list(), name=kind)
    fig.update_layout(barmode="stack")
    return _layout(fig, "open alerts")


def build_sections(warehouse: Path) -> list[Section]:
    with reader(warehouse) as con:
        if not table_exists(con, "marts.file_active_semester"):
            raise RuntimeError(f"{warehouse} has no file active yet: run `observance run` first")
        monthly = _frame(con, "file_active_monthly")
        semesters = _frame(con, "file_active_semester")
        revenue = _frame(con, "revenue_monthly")
        completeness = _frame(con, "completeness")
        decisions = _frame(con, "block_reasons")
        billing = _frame(con, "billing_monthly")
        alerts = _frame(con, "open_alerts")
        rules = _frame(con, "counting_rules")
        loop = _frame(con, "billing_status")
        rejections = _frame(con, "rejections")
    assumed = rules.filter(pl.col("status") == "ASSUMPTION")["periods"].sum()
    held = int(billing.filter(pl.col("payee") == "waiting_for_tariff")["lines"].sum() or 0)
    table = semesters.select(
        "exploitant_id",
        "icd11_level",
        "technique_code",
        "semester",
        "is_complete",
        pl.col("average_file_active").round(2),
        "applies_to_semester",
        "technique_amount",
        pl.col("patients_to_next_tranche").round(2),
        "schedule_note",
    )
    return [
        Section(
            "Monthly file active by ICD-11 level",
            "Billable patients (solid) set the tariff; monitored patients (dotted) are those with "
            "an enrollment active on at least one day of the month. " + FEBRUARY_NOTE,
            monthly_figure(monthly),
        ),
        Section(
            "Semester averages and tranches",
            "Average of the six monthly billable counts of each reference semester (April–"
            "September, October–March); it sets the per-patient amount of the next semester. "
            "Dashed lines are the tranche bounds near your file active.",
            semester_figure(semesters),
            table,
        ),
        Section(
            "Forfait technique: monthly revenue",
            "Billable patients of the month times the per-patient amount in force that month. "
            "Months without a known tariff (schedule gap, unknown activity tariff) count as 0.",
            revenue_figure(revenue),
        ),
        Section(
            "Completeness of closed periods",
            "Valid units over expected units per 30-day period, as each line's counting rule "
            "defines them (next section); under 50 % blocks the next period, 0 blocks the "
            "period itself.",
            completeness_figure(completeness),
        ),
        Section(
            "What counts as data: the counting rules (R3)",
            "Per line and monitoring profile: the measure types that count, how many readings "
            "a day needs, how many units a period expects. CONFIRMED rules are read in the "
            "arrêté or referential; ASSUMPTION rules are product decisions where the text could "
            f"not be read: {assumed} of {rules['periods'].sum()} periods rest on one.",
            None,
            rules,
        ),
        Section(
            "Decisions per activity",
            "Share of periods billable or blocked, by the first block reason that applies (R5).",
            decisions_figure(decisions),
        ),
        Section(
            "Billing lines",
            "Operator and exploitant lines by month of care (R10). Billable periods whose "
            f"forfait-technique amount is unknown wait, both lines held: {held} periods "
            "(marts.billing_held).",
            billing_figure(billing),
        ),
        Section(
            "The billing loop: issued, paid, rejected, corrections",
            "Per month of care and payee (R11, R12): lines ready to issue, lines issued "
            "(`observance issue`) and the payer's answers (`observance reconcile`), lines "
            f"without an answer after {UNPAID_AFTER_DAYS} days (overdue), and the corrections "
            "that later facts (a death recorded after billing, a changed amount, a rejection) "
            "require, issued by the next `observance issue`.",
            None,
            loop,
        ),
        Section(
            "Rejected lines by reason",
            f"{rejections['lines'].sum() if rejections.height else 0} rejected lines; each one "
            "still due is re-issued by the next `observance issue` (a re-issue refers to it).",
            None,
            rejections,
        ),
        Section(
            "Open alerts per operator",
            "Interruptions, periods at risk, reinforcement and stop recommendations, expiring "
            f"prescriptions: {alerts.height} open alerts"
            + (
                f"; the table lists the {ALERT_ROWS_SHOWN} newest, every one is in marts.alerts "
                "(notebook 03_patient_drilldown, or any read-only DuckDB client)."
                if alerts.height > ALERT_ROWS_SHOWN
                else "."
            ),
            alerts_figure(alerts) if alerts.height else None,
            alerts.top_k(ALERT_ROWS_SHOWN, by="first_seen")
            .sort("operator_id", "kind", "enrollment_id")
            .select(
                "operator_id",
                "kind",
                "audience",
                "enrollment_id",
                "first_seen",
                "message_fr",
                "message_en",
            ),
        ),
    ]


def _table_html(frame: pl.DataFrame) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in frame.columns)
    body = "".join(
        "<tr>"
        + "".join(f"<td>{'' if v is None else html.escape(str(v))}</td>" for v in row)
        + "</tr>"
        for row in frame.iter_rows()
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 1200px; color: #222; }
h1 { font-size: 1.6rem; } h2 { font-size: 1.25rem; margin-top: 2.5rem; }
p.intro { color: #444; max-width: 70rem; }
table { border-collapse: collapse; font-size: 0.85rem; margin-top: 1rem; }
th, td { border: 1px solid #ddd; padding: 0.25rem 0.5rem; text-align: left; }
th { background: #f3f3f3; }
"""


def write_report(warehouse: Path, out: Path) -> Path:
    """Write the report to ``out`` and return its path."""
    sections = build_sections(warehouse)
    parts = []
    for number, section in enumerate(sections, start=1):
        parts.append(f"<h2>{html.escape(section.title)}</h2>")
        parts.append(f'<p class="intro">{html.escape(section.intro)}</p>')
        if section.figure is not None:
            parts.append(
                section.figure.to_html(
                    full_html=False, include_plotlyjs=False, div_id=f"chart-{number}"
                )
            )
        if section.table is not None:
            parts.append(_table_html(section.table))
    generated = datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>Télésurveillance — exploitant report</title>
<style>{STYLE}</style>
<script>{get_plotlyjs()}</script>
</head><body>
<h1>Télésurveillance — exploitant report</h1>
<p class="intro">Warehouse {html.escape(str(warehouse))}, generated {generated}. Pseudonymous
data only.</p>
{"".join(parts)}
</body></html>
"""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page, encoding="utf-8")
    return out
