"""The ``observance`` command line (contract: demo, run, generate, report, export, bench)."""

from __future__ import annotations

import logging
import os
from datetime import date, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.table import Table

from pipelines import config
from pipelines.warehouse import WarehouseBusy
from tools.bench import BENCH_CGM_SHARE
from tools.generate import DEFAULT_CGM_SHARE

# pretty_exceptions_show_locals=False: a traceback never prints the values of a patient
app = typer.Typer(
    add_completion=False, no_args_is_help=True, help=__doc__, pretty_exceptions_show_locals=False
)
console = Console()


class Payee(StrEnum):
    operator = "operator"
    exploitant = "exploitant"


class CsvStyle(StrEnum):
    french = "french"  # ; and decimal comma, UTF-8 BOM, French headers
    international = "international"  # , and decimal point, technical names


class Lang(StrEnum):
    fr = "fr"
    en = "en"


LandingOpt = Annotated[
    Path,
    typer.Option("--landing", envvar=config.ENV_LANDING, help="Landing folder"),
]
WarehouseOpt = Annotated[
    Path,
    typer.Option("--warehouse", envvar=config.ENV_WAREHOUSE, help="DuckDB file"),
]
CgmShareOpt = Annotated[
    float,
    typer.Option(
        "--cgm-share",
        min=0.0,
        max=1.0,
        help="Share of the diabetes enrollments on a continuous sensor (288 readings a day)",
    ),
]
LockTimeoutOpt = Annotated[
    float | None,
    typer.Option(
        "--lock-timeout",
        min=0.0,
        envvar=config.ENV_LOCK_TIMEOUT,
        show_default=f"{config.DEFAULT_LOCK_TIMEOUT_SECONDS:.0f}",
        help="Seconds to wait for another writer or reader of the warehouse, then give up "
        f"(exit {config.EXIT_BUSY})",
    ),
]
AsOfOpt = Annotated[
    datetime | None,
    typer.Option(
        "--as-of",
        envvar=config.ENV_AS_OF,
        formats=["%Y-%m-%d"],
        show_default="today in Europe/Paris",
        help="Evaluation date",
    ),
]


def _show_progress() -> None:
    """Progress lines from the pipeline (counts only, never measurement values)."""
    handler = RichHandler(
        console=console, show_path=False, show_time=True, show_level=False, markup=False
    )
    logging.basicConfig(level=logging.WARNING, handlers=[handler], format="%(message)s", force=True)
    logging.getLogger("pipelines").setLevel(logging.INFO)


def _fail(message: str) -> None:
    console.print(f"[red]error:[/red] {message}")
    raise typer.Exit(code=1)


def _stop(action: str, exc: Exception) -> None:
    """A failure that stops an action: one line and a non-zero exit, no traceback (the busy
    warehouse keeps its own exit status, see main)."""
    if getattr(exc, "cause_name", None) == WarehouseBusy.__name__:  # a step of the run
        raise WarehouseBusy(exc.cause_message) from None
    if isinstance(exc, WarehouseBusy):
        raise exc from None
    if getattr(exc, "step_key", None):
        _fail(f"{action} failed at {exc}")
    _fail(f"{action} failed: {type(exc).__name__}: {str(exc).splitlines()[0][:300]}")


def _day(value: date | str | None) -> date | str | None:
    """An --as-of as given: a datetime from the command line (its date), else as it is."""
    return value.date() if isinstance(value, datetime) else value


def _set_lock_timeout(seconds: float | None) -> None:
    """``--lock-timeout`` for this process and the runs it starts (they read the environment)."""
    if seconds is not None:
        os.environ[config.ENV_LOCK_TIMEOUT] = str(seconds)


@app.command()
def run(
    landing: LandingOpt = config.DEFAULT_LANDING,
    warehouse: WarehouseOpt = config.DEFAULT_WAREHOUSE,
    as_of: AsOfOpt = None,
    lock_timeout: LockTimeoutOpt = None,
) -> None:
    """Ingest new landing files and rebuild every table (the nightly asset graph, in-process)."""
    from cli.summary import print_run_summary
    from dagster_project.runner import materialize_all

    _set_lock_timeout(lock_timeout)
    try:
        settings = config.Settings.from_env(landing, warehouse, _day(as_of))
    except ValueError as exc:
        _fail(f"bad --as-of: {exc}")
    if not settings.landing.is_dir():
        _fail(f"no landing folder at {settings.landing} (run `observance generate` first?)")
    _show_progress()
    with console.status(f"Running the pipeline as of {settings.as_of} ..."):
        try:
            result = materialize_all(settings)
        except Exception as exc:
            _stop("run", exc)
    print_run_summary(console, settings)
    _fail_on_checks(result)


def _fail_on_checks(result) -> None:
    """ERROR checks that failed: one line each, what they held back, exit status 1."""
    from dagster_project.runner import failed_checks, held_back

    failures = failed_checks(result)
    if not failures:
        return
    for line in failures:
        console.print(f"[red]check failed:[/red] {line}", soft_wrap=True)
    held = held_back(result)
    if held:
        console.print(f"held back (not built): {', '.join(held)}", soft_wrap=True)
    _fail(f"{len(failures)} ERROR check(s) failed: see above and docs/operations.md")


def _decided_settings(
    landing: Path | None, warehouse: Path | None, lock_timeout: float | None
) -> config.Settings:
    """The settings of an action on the last run's decisions (issue, reconcile): its as_of."""
    from pipelines.ledger import last_as_of
    from pipelines.warehouse import reader

    _set_lock_timeout(lock_timeout)
    settings = config.Settings.from_env(landing, warehouse)
    try:
        with reader(settings.warehouse) as con:
            as_of = last_as_of(con)
    except (FileNotFoundError, LookupError) as exc:
        _fail(str(exc))
    return config.Settings(landing=settings.landing, warehouse=settings.warehouse, as_of=as_of)


def _materialize(action: str, call) -> None:
    """Run ``call`` (a materialization): a failed step or ERROR check is one line and exit 1."""
    _show_progress()
    try:
        result = call()
    except Exception as exc:
        _stop(action, exc)
    _fail_on_checks(result)


CsvStyleOpt = Annotated[
    CsvStyle,
    typer.Option(
        "--csv-style",
        help="french: ; and decimal comma, UTF-8 BOM, French headers (spreadsheets); "
        "international: , and decimal point, technical names (machines)",
    ),
]


@app.command()
def issue(
    payee: Annotated[Payee, typer.Option(help="Whose lines")],
    out: Annotated[Path, typer.Option("--out", help="FILE.csv or FILE.parquet to write")],
    exploitant: Annotated[str | None, typer.Option(help="Only this exploitant's lines")] = None,
    operator: Annotated[str | None, typer.Option(help="Only this operator's lines")] = None,
    csv_style: CsvStyleOpt = CsvStyle.french,
    landing: LandingOpt = config.DEFAULT_LANDING,
    warehouse: WarehouseOpt = config.DEFAULT_WAREHOUSE,
    lock_timeout: LockTimeoutOpt = None,
) -> None:
    """Issue the ready lines and pending corrections of one payee, recorded in the ledger."""
    from dagster_project.runner import issue_batch
    from pipelines.warehouse import reader

    settings = _decided_settings(landing, warehouse, lock_timeout)
    _materialize(
        "issue",
        lambda: issue_batch(
            settings,
            payee=str(payee),
            out=str(out),
            exploitant=exploitant,
            operator=operator,
            csv_style=str(csv_style),
        ),
    )
    with reader(settings.warehouse) as con:
        batch = con.execute(
            "SELECT batch_id, line_count, total_amount, file_written FROM ledger.export_batches "
            "ORDER BY batch_id DESC LIMIT 1"
        ).fetchall()[0]
        corrections = con.execute(
            "SELECT count(*) FROM ledger.issued_lines WHERE batch_id = ? AND kind <> 'original'",
            [batch[0]],
        ).fetchall()[0][0]
    if batch[1] == 0:
        console.print(f"Batch {batch[0]}: nothing new to issue for {payee} (empty file {batch[3]})")
    else:
        console.print(
            f"Batch {batch[0]}: {batch[1]} {payee} lines ({corrections} corrections), "
            f"{batch[2]} € -> {batch[3]}"
        )


@app.command()
def reconcile(
    payments: Annotated[
        Path, typer.Option("--payments", help="The payer's answers (CSV, Parquet)")
    ],
    landing: LandingOpt = config.DEFAULT_LANDING,
    warehouse: WarehouseOpt = config.DEFAULT_WAREHOUSE,
    lock_timeout: LockTimeoutOpt = None,
) -> None:
    """Record the payer's answers to issued lines (paid, partially paid, rejected)."""
    from dagster_project.runner import materialize_all
    from pipelines.ledger import keep_payments_file
    from pipelines.warehouse import reader

    settings = _decided_settings(landing, warehouse, lock_timeout)
    if not payments.is_file():
        _fail(f"no payments file at {payments}")
    kept = keep_payments_file(payments, settings.landing)
    # the copy just made is complete: read now, without waiting for the landing's quiet period
    os.environ[config.ENV_QUIET_SECONDS] = "0"
    _materialize(
        "reconcile",
        lambda: materialize_all(  # (ref/catalog: the warehouse migrated, the catalog loaded)
            settings,
            selection=["ref/catalog", "raw/payments", "marts/claim_status", "marts/billing_lines"],
        ),
    )
    with reader(settings.warehouse) as con:
        read, applied, bad, dup = con.execute(
            "SELECT rows_read, rows_loaded, rows_quarantined, duplicates_skipped "
            "FROM ops.ingested_files WHERE path = ? ORDER BY file_id DESC LIMIT 1",
            [kept],
        ).fetchall()[0]
        statuses = con.execute(
            "SELECT status, count(*) FROM marts.claim_status GROUP BY ALL ORDER BY ALL"
        ).fetchall()
    console.print(
        f"{read} answers read: {applied} applied, {bad} quarantined (ops.quarantine), "
        f"{dup} duplicates"
    )
    console.print("Issued lines: " + ", ".join(f"{s} {n}" for s, n in statuses))


@app.command()
def evidence(
    out: Annotated[Path, typer.Option("--out", help="FILE.csv (and FILE.html beside it)")],
    claim: Annotated[str | None, typer.Option(help="A claim id")] = None,
    enrollment: Annotated[str | None, typer.Option(help="An enrollment id")] = None,
    csv_style: CsvStyleOpt = CsvStyle.french,
    warehouse: WarehouseOpt = config.DEFAULT_WAREHOUSE,
) -> None:
    """The evidence frozen when lines were issued, for an audit: CSV and a one-page HTML."""
    from pipelines.evidence import write_evidence

    if (claim is None) == (enrollment is None):
        _fail("give one of --claim or --enrollment")
    settings = config.Settings.from_env(warehouse=warehouse)
    try:
        written = write_evidence(settings.warehouse, out, claim, enrollment, str(csv_style))
    except (FileNotFoundError, LookupError, ValueError) as exc:
        _fail(str(exc))
    console.print(f"Evidence of {written.periods} periods: {written.csv} and {written.html}")


@app.command()
def generate(
    out: Annotated[
        Path, typer.Option("--out", help="Landing folder to write")
    ] = config.DEFAULT_LANDING,
    patients: Annotated[int, typer.Option(help="Number of enrollments")] = 600,
    months: Annotated[int, typer.Option(help="Months of history")] = 12,
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same files)")] = 42,
    end_date: Annotated[
        str | None, typer.Option("--end-date", help="Last day of data [default: today, Paris]")
    ] = None,
    formats: Annotated[str, typer.Option(help="mixed | jsonl | parquet | csv")] = "mixed",
    clean: Annotated[bool, typer.Option("--clean", help="No dirty rows")] = False,
    cgm_share: CgmShareOpt = DEFAULT_CGM_SHARE,
) -> None:
    """Write a synthetic landing folder (deterministic by --seed)."""
    from tools.generate import generate_landing

    with console.status(f"Generating {patients} enrollments over {months} months ..."):
        summary = generate_landing(
            out,
            patients=patients,
            months=months,
            seed=seed,
            end_date=date.fromisoformat(end_date) if end_date else None,
            formats=formats,
            dirt=not clean,
            cgm_share=cgm_share,
        )
    table = Table(title=f"Synthetic landing data in {out}", show_header=False)
    for name in ("enrollments", "prescriptions", "transmissions", "files"):
        table.add_row(name, f"{getattr(summary, name):,}")
    for profile, count in summary.profiles.items():
        table.add_row(f"  profile: {profile}", f"{count:,}")
    for kind, count in sorted(summary.dirty_rows.items()):
        table.add_row(f"  dirty: {kind}", f"{count:,}")
    console.print(table)


@app.command()
def report(
    warehouse: WarehouseOpt = config.DEFAULT_WAREHOUSE,
    out: Annotated[
        Path, typer.Option("--out", help="Folder of the reports and their index")
    ] = config.DEFAULT_REPORTS,
    exploitant: Annotated[
        str | None, typer.Option(help="Only this exploitant's report (and the index)")
    ] = None,
    operator: Annotated[
        str | None, typer.Option(help="Instead: this operator's view (patients, forfaits)")
    ] = None,
    lang: Annotated[Lang, typer.Option(envvar=config.ENV_LANG)] = Lang.fr,
) -> None:
    """Write one report per exploitant, each with its own data only, and their index
    (self-contained HTML, French by default; reads the warehouse read-only); with --operator,
    that operator's view instead (its patients to act on, its forfaits)."""
    from pipelines.report import write_operator_report, write_reports

    settings = config.Settings.from_env(warehouse=warehouse)
    try:
        if operator is not None:
            page = write_operator_report(settings.warehouse, out, operator, str(lang))
            console.print(f"Operator report: [bold]{page.resolve()}[/bold]")
            return
        index, *pages = write_reports(settings.warehouse, out, str(lang), exploitant)
    except (OSError, RuntimeError, LookupError, ValueError) as exc:
        _fail(str(exc))
    for page in pages:
        console.print(f"Report: {page}", soft_wrap=True)
    console.print(f"Index:  [bold]{index.resolve()}[/bold]")


@app.command()
def export(
    payee: Annotated[Payee, typer.Option(help="Whose lines")],
    date_from: Annotated[
        datetime, typer.Option("--from", formats=["%Y-%m-%d"], help="First date of care")
    ],
    date_to: Annotated[
        datetime, typer.Option("--to", formats=["%Y-%m-%d"], help="Last date of care")
    ],
    out: Annotated[Path, typer.Option("--out", help="FILE.csv or FILE.parquet")],
    exploitant: Annotated[str | None, typer.Option(help="Only this exploitant's lines")] = None,
    operator: Annotated[str | None, typer.Option(help="Only this operator's lines")] = None,
    warehouse: WarehouseOpt = config.DEFAULT_WAREHOUSE,
    include_pending: Annotated[
        bool, typer.Option("--include-pending", help="Also lines of claims that may still grow")
    ] = False,
    csv_style: CsvStyleOpt = CsvStyle.french,
) -> None:
    """Billing lines of one payee, in any state (reads the warehouse read-only; records nothing:
    `observance issue` issues lines for billing)."""
    from pipelines.export import export_lines

    settings = config.Settings.from_env(warehouse=warehouse)
    try:
        summary = export_lines(
            settings.warehouse,
            str(payee),
            date_from.date(),
            date_to.date(),
            out,
            include_pending=include_pending,
            csv_style=str(csv_style),
            exploitant=exploitant,
            operator=operator,
        )
    except (ValueError, FileNotFoundError) as exc:
        _fail(str(exc))
    console.print(
        f"{summary.lines} {payee} lines in {summary.claims} claims, {summary.amount} € "
        f"-> {summary.path}"
    )
    if summary.pending_lines_left_out:
        console.print(f"{summary.pending_lines_left_out} lines of pending claims left out")
    if summary.periods_waiting_for_tariff:
        console.print(
            f"[yellow]{summary.periods_waiting_for_tariff} billable periods wait for a "
            "forfait-technique tariff[/yellow] (marts.billing_held)"
        )


@app.command()
def backup(
    to: Annotated[Path, typer.Option("--to", help="A new folder for the copy")],
    warehouse: WarehouseOpt = config.DEFAULT_WAREHOUSE,
    lock_timeout: LockTimeoutOpt = None,
) -> None:
    """A consistent copy of the warehouse and its raw dataset, taken under the writer lock (a
    nightly run starting meanwhile waits for it); see docs/operations.md."""
    from pipelines.warehouse import backup as backup_warehouse

    _set_lock_timeout(lock_timeout)
    settings = config.Settings.from_env(warehouse=warehouse)
    if not settings.warehouse.exists():
        _fail(f"no warehouse at {settings.warehouse}")
    try:
        copied = backup_warehouse(settings.warehouse, to)
    except (FileExistsError, FileNotFoundError) as exc:  # the target exists, a part is missing
        _fail(str(exc))  # (a warehouse kept busy past the timeout: exit EXIT_BUSY, in main)
    console.print(f"Backup: {copied} and its raw dataset")


@app.command()
def bench(
    work: Annotated[Path, typer.Option(help="Folder for the generated data and results")] = Path(
        "bench_data"
    ),
    patients: Annotated[int, typer.Option(help="Enrollments (B1: 100 000)")] = 100_000,
    months: Annotated[int, typer.Option(help="Months of history (B1: 12)")] = 12,
    formats: Annotated[str, typer.Option(help="Comma-separated: parquet,jsonl")] = "parquet,jsonl",
    nights: Annotated[
        int,
        typer.Option(min=1, help="Runs of the incremental night, from the same state (median)"),
    ] = 3,
    out_of_core: Annotated[
        int,
        typer.Option(help="Instead: one whole run on N copies of the Parquet data (10: 300 M)"),
    ] = 0,
    cgm_share: CgmShareOpt = BENCH_CGM_SHARE,
    year: Annotated[
        int,
        typer.Option(
            help="Instead: N nights on the last bench's warehouse (365: a year), "
            "with and without compaction"
        ),
    ] = 0,
    engines: Annotated[
        str,
        typer.Option(
            help="Instead: DuckDB and Spark side by side on these enrollment counts "
            "(8300,83000: about 3 M and 30 M readings), then compared row for row"
        ),
    ] = "",
) -> None:
    """Benchmark B1 stage by stage against a plain-scan floor (a measurement, not a test)."""
    from tools.bench import report_lines, run_bench, run_engines, run_out_of_core, run_year

    if engines:
        sizes = tuple(int(size) for size in engines.split(","))
        with console.status("DuckDB and Spark on the same landings ..."):
            outcome = run_engines(work, sizes, months)
        for entry in outcome:
            figures = ", ".join(
                f"{name} {t['total_s']} s (models {t['models_s']} s)"
                for name, t in entry["engines"].items()
            )
            parity = "same marts" if not entry["differences"] else "DIFFERENT marts"
            console.print(f"{entry['transmissions']:,} readings: {figures}; {parity}")
        return

    if year:
        with console.status(f"{year} nights of ingestion, with and without compaction ..."):
            outcome = run_year(work, year, patients, months, cgm_share=cgm_share)
        for variant, figures in outcome.items():
            console.print(f"{variant}: " + ", ".join(f"{k} {v}" for k, v in figures.items()))
        return

    if out_of_core:
        with console.status(f"Out-of-core run: {out_of_core} x {patients:,} enrollments ..."):
            result = run_out_of_core(work, out_of_core, patients, months, cgm_share=cgm_share)
        console.print(
            f"{result['transmissions']:,} transmissions: whole graph in {result['seconds']} s, "
            f"peak RSS {result['peak_rss_mb']:,} MB, warehouse {result['warehouse_mb']:,} MB "
            f"and raw dataset {result['dataset_mb']:,} MB"
        )
        return
    with console.status(f"Benchmark: {patients:,} enrollments over {months} months ..."):
        results = run_bench(
            work,
            tuple(formats.split(",")),
            patients,
            months,
            nights_run=nights,
            cgm_share=cgm_share,
        )
    for line in report_lines(results):
        console.print(line, markup=False, highlight=False, soft_wrap=True)
    console.print(f"Results: {(work / 'results.json').resolve()}")


@app.command()
def demo(
    landing: LandingOpt = config.DEFAULT_LANDING,
    warehouse: WarehouseOpt = config.DEFAULT_WAREHOUSE,
    as_of: AsOfOpt = None,
    lock_timeout: LockTimeoutOpt = None,
) -> None:
    """Synthetic landing data (if none yet), a full run, then the billing loop once: issue both
    payees' lines, the payer's answers, deaths notified after billing, the run that corrects
    them, the corrections issued; the report."""
    _set_lock_timeout(lock_timeout)
    # the demo writes its landing files itself, complete: no quiet period unless one is set
    os.environ.setdefault(config.ENV_QUIET_SECONDS, "0")
    settings = config.Settings.from_env(landing, warehouse, _day(as_of))
    if not (settings.landing / "transmissions").is_dir():
        generate(out=settings.landing, end_date=settings.as_of.isoformat())
    run(settings.landing, settings.warehouse, settings.as_of.isoformat())
    if _ledger_is_empty(settings.warehouse):
        _billing_loop(settings)
    else:
        console.print("The ledger already holds issued lines: the demo's billing loop ran before.")
    console.print(f"\nWarehouse: [bold]{settings.warehouse.resolve()}[/bold]")
    index = settings.warehouse.parent / config.REPORT_FOLDER / "index.html"  # the report asset's
    console.print(f"Reports:   [bold]{index.resolve()}[/bold] (open it in a browser)")


def _ledger_is_empty(warehouse: Path) -> bool:
    from pipelines.warehouse import reader

    with reader(warehouse) as con:
        return con.execute("SELECT count(*) FROM ledger.issued_lines").fetchall()[0][0] == 0


def _issue_both(settings: config.Settings, billing: Path, batch: int) -> None:
    for payee in ("operator", "exploitant"):
        out = billing / f"{payee}-{batch}.csv"
        issue(payee=payee, out=out, landing=settings.landing, warehouse=settings.warehouse)


def _billing_loop(settings: config.Settings) -> None:
    """The demo's billing loop, with the commands billing staff run (docs/operations.md)."""
    from dagster_project.runner import materialize_all
    from tools.generate import generate_payments, late_death_notices

    billing = settings.warehouse.parent / "billing"
    console.rule("Billing: issue the ready lines of both payees")
    _issue_both(settings, billing, 1)
    console.rule("Billing: the payer answers (synthetic), reconciled")
    answers = billing / "payer-answers.csv"
    generate_payments(settings.warehouse, answers)
    reconcile(payments=answers, landing=settings.landing, warehouse=settings.warehouse)
    console.rule("Billing: deaths notified after billing, corrected by the next run")
    notices = late_death_notices(settings.warehouse, settings.landing)
    console.print(f"{notices} death notices recorded after their periods were billed")
    run(settings.landing, settings.warehouse, settings.as_of.isoformat())
    _issue_both(settings, billing, 2)
    _materialize(
        "report", lambda: materialize_all(settings, selection=["reports/exploitant_report"])
    )


def main() -> None:
    """The ``observance`` command: new files are not world-readable (config.FILE_UMASK), and a
    warehouse kept busy past the lock timeout ends the command with one line and exit status
    EXIT_BUSY (75, "try again later") instead of a traceback."""
    config.restrict_new_files()
    try:
        app()
    except WarehouseBusy as exc:
        console.print(f"[red]error:[/red] {exc}", soft_wrap=True)
        raise SystemExit(config.EXIT_BUSY) from None


if __name__ == "__main__":
    main()
