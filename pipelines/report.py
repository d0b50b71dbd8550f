"""The exploitant reports: one self-contained HTML file per exploitant, and an index.

Each file holds one exploitant's data only (every query of ``sql/report/`` is filtered on
``getvariable('exploitant')``), in French by default (``lang="en"`` for English): numbers, money
and dates through Babel (pipelines/i18n.py), charts through plotly with its French locale, the
page through a Jinja2 template (``pipelines/templates/``). It opens with no server: plotly.js is
embedded once, every chart's data is inline. The warehouse is opened read-only.
"""

from __future__ import annotations

import functools
import hashlib
import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path

import plotly.graph_objects as go
import plotly.io as pio
import polars as pl
from plotly.offline import get_plotlyjs

from pipelines.config import PERIOD_DAYS, UNPAID_AFTER_DAYS
from pipelines.files import TEMPLATES, write_bytes
from pipelines.i18n import ALERT_URGENCY, Formatter, plotly_locale
from pipelines.warehouse import reader, scalar, sql_text, table_exists

# the amounts of the report's tables: euros and cents, as the ledger keeps them (DECIMAL(12, 2))
AMOUNT = pl.Decimal(12, 2)

INDEX_NAME = "index.html"
# The list of patients to act on shows at most this many alerts (the most urgent): a national
# exploitant has tens of thousands, which would make the page too heavy to open.
ALERT_ROWS_SHOWN = 500


@dataclass
class Table:
    headers: list[str]
    rows: list[list[str]]


@dataclass
class Section:
    title: str
    intro: str
    chart: str | None = None  # the chart's HTML (a div and its script)
    table: Table | None = None


@dataclass
class KeyFigure:
    label: str
    value: str
    detail: str = ""


@dataclass
class ExploitantData:
    """What one exploitant's report shows, read from the warehouse."""

    exploitant: str
    as_of: date
    frames: dict[str, pl.DataFrame] = field(default_factory=dict)
    claims: dict[str, int] = field(default_factory=dict)

    def __getitem__(self, name: str) -> pl.DataFrame:
        return self.frames[name]


QUERIES = (
    "file_active_monthly",
    "file_active_semester",
    "revenue_monthly",
    "completeness",
    "counting_rules",
    "billing_status",
    "rejections",
    "open_alerts",
)


def exploitants(con) -> list[tuple[str, int]]:
    """The exploitants of the warehouse, with their patients."""
    return con.execute(sql_text("report/exploitants")).fetchall()


def _require_marts(con, warehouse: Path) -> None:
    if not table_exists(con, "marts.file_active_semester"):
        raise RuntimeError(f"{warehouse} has no file active yet: run `observance run` first")


def read_exploitant(con, exploitant: str) -> ExploitantData:
    """One exploitant's data, on a read-only connection to the warehouse."""
    con.execute("SET VARIABLE exploitant = ?", [exploitant])
    as_of = scalar(con, "SELECT as_of FROM ops.model_state WHERE model = 'patient_periods'")
    data = ExploitantData(exploitant, as_of or date.today())
    for name in QUERIES:
        data.frames[name] = con.sql(sql_text(f"report/{name}")).pl()
    row = con.execute(sql_text("report/claims_summary")).fetchall()[0]
    data.claims = dict(zip(("ready", "issued", "paid", "rejected"), row, strict=True))
    return data


# -- charts


def _white_template() -> go.layout.Template:
    """plotly's "plotly_white", cut to what the report's bar and line charts use (copying the
    whole template for each figure was most of the time spent building them)."""
    white = pio.templates["plotly_white"]
    unused = {"coloraxis", "colorscale", "geo", "polar", "scene", "ternary"}
    layout = white.layout.to_plotly_json()
    return go.layout.Template(
        layout={key: value for key, value in layout.items() if key not in unused},
        data={"bar": white.data.bar, "scatter": white.data.scatter},
    )


WHITE = _white_template()


def _layout(fig: go.Figure, y_title: str, fmt: Formatter) -> go.Figure:
    fig.update_layout(
        template=WHITE,
        height=440,
        margin={"l": 60, "r": 20, "t": 30, "b": 50},
        legend={"orientation": "h", "y": -0.2},
        yaxis_title=y_title,
        separators=", " if fmt.lang == "fr" else ".,",  # decimal mark, then thousands
    )
    return fig


def monthly_figure(monthly: pl.DataFrame, as_of: date, fmt: Formatter) -> go.Figure:
    fig = go.Figure()
    for (level, tier), rows in monthly.group_by(["icd11_level", "tier"], maintain_order=True):
        name = f"{level} ({tier})"
        fig.add_scatter(
            x=rows["month"].to_list(),
            y=rows["billable_patients"].to_list(),
            name=fmt.text("series_billable", level=name),
            mode="lines+markers",
        )
        fig.add_scatter(
            x=rows["month"].to_list(),
            y=rows["monitored_patients"].to_list(),
            name=fmt.text("series_monitored", level=name),
            mode="lines",
            line={"dash": "dot"},
        )
    month = as_of.replace(day=1)
    fig.add_vrect(
        x0=month - timedelta(days=15),
        x1=month + timedelta(days=15),
        fillcolor="#999",
        opacity=0.15,
        line_width=0,
        annotation_text=fmt.text("provisional"),
        annotation_position="top left",
    )
    return _layout(fig, fmt.text("patients"), fmt)


def semester_figure(semesters: pl.DataFrame, fmt: Formatter) -> go.Figure:
    fig = go.Figure()
    for (level,), rows in semesters.group_by(["icd11_level"], maintain_order=True):
        fig.add_bar(
            x=rows["semester"].to_list(),
            y=rows["average_file_active"].to_list(),
            name=str(level),
        )
    bounds = sorted(
        set(semesters["tranche_upper"].drop_nulls().to_list())
        | {b for b in semesters["tranche_lower"].drop_nulls().to_list() if b > 0}
    )
    top = max(semesters["average_file_active"].max() or 0, 1)
    shown = [bound for bound in bounds if bound <= top * 1.5] or bounds[:1]
    for bound in shown:  # the bounds near the data (and at least the first), so bars stay readable
        fig.add_hline(
            y=bound,
            line_dash="dash",
            annotation_text=fmt.text("tranche_bound", bound=fmt.integer(bound)),
        )
    fig.update_layout(barmode="group")
    return _layout(fig, fmt.text("average_file_active"), fmt)


def revenue_figure(revenue: pl.DataFrame, fmt: Formatter) -> go.Figure:
    fig = go.Figure()
    for (level,), rows in revenue.group_by(["icd11_level"], maintain_order=True):
        fig.add_bar(
            x=rows["month"].to_list(), y=rows["revenue"].fill_null(0).to_list(), name=str(level)
        )
    fig.update_layout(barmode="stack")
    return _layout(fig, fmt.text("eur_per_month"), fmt)


def completeness_figure(completeness: pl.DataFrame, fmt: Formatter) -> go.Figure:
    fig = go.Figure()
    for (activity,), rows in completeness.group_by(["activity_code"], maintain_order=True):
        fig.add_bar(
            x=rows["completeness_bin"].to_list(), y=rows["periods"].to_list(), name=activity
        )
    fig.add_vline(x=0.5, line_dash="dash", annotation_text=fmt.percent(0.5))
    fig.update_layout(barmode="group", xaxis_tickformat=".0%")
    return _layout(fig, fmt.text("periods"), fmt)


def _chart(fig: go.Figure, number: int, fmt: Formatter) -> str:
    return fig.to_html(
        full_html=False,
        include_plotlyjs=False,
        div_id=f"chart-{number}",
        config={"locale": fmt.lang, "displaylogo": False, "responsive": True},
    )


# -- the first screen


def last_final_month(as_of: date) -> date:
    """The last month whose periods have all closed by ``as_of``: a period starting on its last
    day ends PERIOD_DAYS later (R2), so later months still grow (R8 counts by date of care)."""
    month = as_of.replace(day=1)
    while True:
        month = (month - timedelta(days=1)).replace(day=1)
        next_month = (month + timedelta(days=32)).replace(day=1)
        if next_month - timedelta(days=1) + timedelta(days=PERIOD_DAYS) <= as_of:
            return month


def key_figures(data: ExploitantData, fmt: Formatter) -> list[KeyFigure]:
    """The few figures an exploitant acts on, per ICD-11 level then for the whole file."""
    figures: list[KeyFigure] = []
    monthly, semesters = data["file_active_monthly"], data["file_active_semester"]
    last = last_final_month(data.as_of)
    running = data.as_of.replace(day=1)  # its periods are still open: provisional
    for (level,), rows in semesters.group_by(["icd11_level"], maintain_order=True):
        open_semester = rows.filter(~pl.col("is_complete")).tail(1)
        row = (rows.tail(1) if open_semester.is_empty() else open_semester).row(0, named=True)
        of_level = monthly.filter(pl.col("icd11_level") == level)
        this_month = of_level.filter(pl.col("month") == last)["billable_patients"].sum()
        provisional = of_level.filter(pl.col("month") == running)["billable_patients"].sum()
        amount = row["technique_amount"]
        tier = f"{fmt.text('level')} {level}"
        figures += [
            KeyFigure(
                fmt.text("file_active_month", month=fmt.month(last)),
                fmt.integer(this_month),
                f"{tier} · "
                + fmt.text(
                    "file_active_running",
                    month=fmt.month(running),
                    count=fmt.integer(provisional),
                ),
            ),
            KeyFigure(
                fmt.text("semester_average", semester=row["semester"]),
                fmt.number(row["average_file_active"], 1),
                tier,
            ),
            KeyFigure(
                fmt.text("to_next_tranche"),
                fmt.number(row["patients_to_next_tranche"], 1)
                if row["patients_to_next_tranche"] is not None
                else fmt.text("top_tranche"),
                tier,
            ),
            KeyFigure(
                fmt.text("projected_amount"),
                fmt.money(amount) if amount is not None else fmt.text("no_tariff"),
                f"{tier} · {row['applies_to_semester']}",
            ),
            KeyFigure(
                fmt.text("projected_revenue"),
                fmt.money(this_month * amount) if amount is not None else fmt.text("no_tariff"),
                tier,
            ),
        ]
    alerts = data["open_alerts"]
    for key, kind in (
        ("at_risk", "period_at_risk"),
        ("to_reinforce", "reinforce_recommended"),
        ("to_stop", "stop_required"),
    ):
        count = alerts.filter(pl.col("kind") == kind)["enrollment_id"].n_unique()
        figures.append(KeyFigure(fmt.text(key), fmt.integer(count)))
    claims = {name: fmt.integer(value) for name, value in data.claims.items()}
    figures.append(
        KeyFigure(fmt.text("claims"), claims["issued"], fmt.text("claims_detail", **claims))
    )
    return figures


def patients_to_act_on(alerts: pl.DataFrame, fmt: Formatter) -> Table:
    """Open alerts, most urgent kind first, then the oldest."""
    urgency = {kind: rank for rank, kind in enumerate(ALERT_URGENCY)}
    ranked = (
        alerts.with_columns(
            urgency=pl.col("kind").replace_strict(
                urgency, default=len(urgency), return_dtype=pl.Int32
            )
        )
        .sort("urgency", "first_seen", "patient_id")
        .head(ALERT_ROWS_SHOWN)
    )
    message = "message_fr" if fmt.lang == "fr" else "message_en"
    columns = ("patient_id", "enrollment_id", "operator_id", "kind", "first_seen", "message")
    headers = [fmt.column(name) for name in columns]
    rows = [
        [
            row["patient_id"],
            row["enrollment_id"],
            row["operator_id"],
            fmt.alert(row["kind"]),
            fmt.day(row["first_seen"]),
            row[message],
        ]
        for row in ranked.iter_rows(named=True)
    ]
    return Table(headers, rows)


# -- tables


def _table(frame: pl.DataFrame, columns: tuple[str, ...], fmt: Formatter) -> Table:
    """The ``columns`` of ``frame``, headed in the formatter's language, values formatted by
    type."""

    def cell(value: object) -> str:
        if value is None:
            return "–"
        if isinstance(value, bool):
            return fmt.yes_no(value)
        if isinstance(value, datetime):
            return fmt.moment(value)
        if isinstance(value, date):
            return fmt.day(value)
        if isinstance(value, int):
            return fmt.integer(value)
        if isinstance(value, float):
            return fmt.number(value, 2)
        return str(value)

    return Table(
        [fmt.column(name) for name in columns],
        [
            [cell(row[name]) for name in columns]
            for row in frame.select(list(columns)).iter_rows(named=True)
        ],
    )


SEMESTER_COLUMNS = (
    "icd11_level",
    "semester",
    "is_complete",
    "average_file_active",
    "patients_to_next_tranche",
    "applies_to_semester",
    "technique_amount",
    "schedule_note",
)
RULE_COLUMNS = (
    "activity_code",
    "profile",
    "counted_measure_types",
    "min_per_day",
    "expected_per_period",
    "status",
    "periods",
    "source",
)
BILLING_COLUMNS = (
    "month",
    "payee",
    "ready_lines",
    "issued_lines",
    "issued_eur",
    "paid",
    "partially_paid",
    "rejected",
    "overdue",
    "paid_eur",
    "corrections_pending",
)
REJECTION_COLUMNS = (
    "payee",
    "rejection_code",
    "rejection_label",
    "lines",
    "amount_eur",
)
RULE_STATUS = {"fr": {"CONFIRMED": "CONFIRMÉE", "ASSUMPTION": "HYPOTHÈSE"}, "en": {}}


def _money(column: str, fmt: Formatter) -> pl.Expr:
    """An amount in euros as the report writes it (exact decimals, French format by default)."""
    return pl.col(column).cast(AMOUNT).map_elements(fmt.money, return_dtype=pl.String)


def build_sections(data: ExploitantData, fmt: Formatter) -> list[Section]:
    rules = data["counting_rules"].with_columns(pl.col("status").replace(RULE_STATUS[fmt.lang]))
    assumed = data["counting_rules"].filter(pl.col("status") == "ASSUMPTION")["periods"].sum()
    billing = data["billing_status"].with_columns(
        _money("issued_eur", fmt),
        _money("paid_eur", fmt),
        pl.col("month").map_elements(fmt.month, return_dtype=pl.String),
    )
    semesters = data["file_active_semester"]
    sections = [
        Section(
            fmt.text("monthly_title"),
            fmt.text("monthly_intro"),
            _chart(monthly_figure(data["file_active_monthly"], data.as_of, fmt), 1, fmt),
        ),
        Section(
            fmt.text("semester_title"),
            fmt.text("semester_intro"),
            _chart(semester_figure(semesters, fmt), 2, fmt),
            _table(semesters, SEMESTER_COLUMNS, fmt),
        ),
        Section(
            fmt.text("revenue_title"),
            fmt.text("revenue_intro"),
            _chart(revenue_figure(data["revenue_monthly"], fmt), 3, fmt),
        ),
        Section(
            fmt.text("completeness_title"),
            fmt.text("completeness_intro"),
            _chart(completeness_figure(data["completeness"], fmt), 4, fmt),
        ),
        Section(
            fmt.text("rules_title"),
            fmt.text(
                "rules_intro",
                assumed=fmt.integer(assumed),
                total=fmt.integer(rules["periods"].sum()),
            ),
            table=_table(rules, RULE_COLUMNS, fmt),
        ),
        Section(
            fmt.text("billing_title"),
            fmt.text("billing_intro", days=UNPAID_AFTER_DAYS),
            table=_table(billing, BILLING_COLUMNS, fmt),
        ),
        Section(
            fmt.text("rejections_title"),
            fmt.text("rejections_intro", lines=fmt.integer(data["rejections"]["lines"].sum())),
            table=_table(
                data["rejections"].with_columns(_money("amount_eur", fmt)),
                REJECTION_COLUMNS,
                fmt,
            ),
        ),
    ]
    return sections


# -- pages


def file_name(exploitant: str, prefix: str = "exploitant") -> str:
    """The report file of an exploitant: its id when it is made of letters, digits, ``-``, ``_``
    and ``.``; otherwise (ids are printable, but may hold ``/``) the id with the other characters
    replaced and a short hash of the whole id, so that two ids never share a file."""
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", exploitant)
    if safe != exploitant:
        safe += "-" + hashlib.sha256(exploitant.encode()).hexdigest()[:8]
    return f"{prefix}-{safe}.html"


def _page(
    fmt: Formatter,
    title: str,
    who: str,
    as_of: date,
    figures: list[KeyFigure],
    alerts: pl.DataFrame,
    sections: list[Section],
    charts: bool,
) -> str:
    """A report page: its key figures, the patients to act on, then its sections."""
    act = patients_to_act_on(alerts, fmt)
    return TEMPLATES.get_template("exploitant_report.html.j2").render(
        lang=fmt.lang,
        title=title,
        generated=fmt.text(
            "generated",
            as_of=fmt.day(as_of),
            moment=fmt.moment(datetime.now().astimezone()),
            who=who,
        ),
        key_title=fmt.text("key_figures"),
        key_figures=figures,
        act_title=fmt.text("act_now"),
        act_intro=fmt.text(
            "act_now_intro", shown=fmt.integer(len(act.rows)), total=fmt.integer(alerts.height)
        ),
        act=act,
        no_alert=fmt.text("no_alert"),
        sections=sections,
        plotly_js=_plotly_js() if charts else None,
        plotly_locale=plotly_locale(fmt.lang) if charts else None,
    )


@functools.cache
def _plotly_js() -> str:
    """plotly.js (3.5 MB), read once per process rather than once per page."""
    return get_plotlyjs()


def render_exploitant(con, exploitant: str, lang: str = "fr") -> str:
    fmt = Formatter(lang)
    data = read_exploitant(con, exploitant)
    return _page(
        fmt,
        fmt.text("title", exploitant=exploitant),
        exploitant,
        data.as_of,
        key_figures(data, fmt),
        data["open_alerts"],
        build_sections(data, fmt),
        charts=True,
    )


OPERATOR_COLUMNS = (
    "month",
    "ready_lines",
    "ready_amount",
    "issued_lines",
    "issued_amount",
    "paid",
    "rejected",
    "paid_amount",
)


def render_operator(warehouse: Path, operator: str, lang: str = "fr") -> str:
    """An operator's view: its patients to act on and its forfaits, its own data only."""
    fmt = Formatter(lang)
    with reader(warehouse) as con:
        _require_marts(con, warehouse)
        known = dict(con.execute(sql_text("report/operators")).fetchall())
        if operator not in known:
            raise LookupError(f"no operator {operator!r} in {warehouse}")
        con.execute("SET VARIABLE operator = ?", [operator])
        as_of = scalar(con, "SELECT as_of FROM ops.model_state WHERE model = 'patient_periods'")
        alerts = con.sql(sql_text("report/operator_alerts")).pl()
        forfaits = con.sql(sql_text("report/operator_forfaits")).pl()
    amounts = ("ready_amount", "issued_amount", "paid_amount")
    shown = forfaits.with_columns(
        *(pl.col(name).map_elements(fmt.money, return_dtype=pl.String) for name in amounts),
        pl.col("month").map_elements(fmt.month, return_dtype=pl.String),
    )
    figures = [KeyFigure(fmt.text("followed_patients"), fmt.integer(known[operator]))]
    for kind in ALERT_URGENCY:
        count = alerts.filter(pl.col("kind") == kind)["enrollment_id"].n_unique()
        figures.append(KeyFigure(fmt.alert(kind), fmt.integer(count)))
    figures.append(
        KeyFigure(
            fmt.text("claims"),
            fmt.integer(forfaits["issued_lines"].sum()),
            fmt.text(
                "claims_detail",
                ready=fmt.integer(forfaits["ready_lines"].sum()),
                issued=fmt.integer(forfaits["issued_lines"].sum()),
                paid=fmt.integer(forfaits["paid"].sum()),
                rejected=fmt.integer(forfaits["rejected"].sum()),
            ),
        )
    )
    forfaits_section = Section(
        fmt.text("forfaits_title"),
        fmt.text("billing_intro", days=UNPAID_AFTER_DAYS),
        table=_table(shown, OPERATOR_COLUMNS, fmt),
    )
    return _page(
        fmt,
        fmt.text("operator_title", operator=operator),
        operator,
        as_of,
        figures,
        alerts,
        [forfaits_section],
        charts=False,
    )


def write_operator_report(warehouse: Path, folder: Path, operator: str, lang: str = "fr") -> Path:
    return _write(
        folder / file_name(operator, "operator"), render_operator(warehouse, operator, lang)
    )


def _write(path: Path, text: str) -> Path:
    write_bytes(path, text.encode("utf-8"))  # mode FILE_MODE, synced
    return path


def write_report(con, out: Path, exploitant: str, lang: str = "fr") -> Path:
    """One exploitant's report, written to ``out``."""
    return _write(out, render_exploitant(con, exploitant, lang))


def write_reports(
    warehouse: Path, folder: Path, lang: str = "fr", only: str | None = None
) -> list[Path]:
    """Every exploitant's report (or ``only`` one) in ``folder``, and the index; returns the
    index first, then the reports."""
    fmt = Formatter(lang)
    with reader(warehouse) as con:  # one read-only connection for every page
        _require_marts(con, warehouse)
        listed = exploitants(con)
        chosen = [e for e, _ in listed if only is None or e == only]
        if not chosen:
            raise LookupError(f"no exploitant {only!r} in {warehouse}")
        # the index lists every exploitant, even when one report alone is written again
        pages = [write_report(con, folder / file_name(e), e, lang) for e in chosen]
    index = TEMPLATES.get_template("index.html.j2").render(
        lang=lang,
        title=fmt.text("index_title"),
        intro=fmt.text("index_intro"),
        entries=[
            (exploitant, file_name(exploitant), fmt.text("patients_count", n=fmt.integer(n)))
            for exploitant, n in listed
        ],
    )
    return [_write(folder / INDEX_NAME, index), *pages]
