"""Paths, environment variables and the named rule parameters.

Every rule parameter that is not per-activity (those live in ``catalog/activities.csv``) is a
named constant here, with the rule of ``shared/domain/rules.md`` it comes from.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SQL_DIR = PROJECT_ROOT / "sql"
CATALOG_DIR = Path(__file__).resolve().parent / "catalog"

ENV_LANDING = "OBSERVANCE_LANDING"
ENV_WAREHOUSE = "OBSERVANCE_WAREHOUSE"
ENV_AS_OF = "OBSERVANCE_AS_OF"
# A folder holding activities.csv / tariff_schedule.csv to use instead of the shipped ones.
ENV_CATALOG_DIR = "OBSERVANCE_CATALOG_DIR"
DEFAULT_LANDING = Path("data/landing")
DEFAULT_WAREHOUSE = Path("data/warehouse.duckdb")
# The report asset writes the exploitants' reports and their index in this folder, next to the
# warehouse (French by default: REPORT_LANG, env OBSERVANCE_LANG).
REPORT_FOLDER = "reports"
DEFAULT_REPORTS = DEFAULT_WAREHOUSE.parent / REPORT_FOLDER
ENV_LANG = "OBSERVANCE_LANG"
REPORT_LANG = "fr"


def report_lang() -> str:
    return os.environ.get(ENV_LANG) or REPORT_LANG


# R1 — all day-level logic uses the civil date in this time zone.
LOCAL_TIMEZONE = "Europe/Paris"
PARIS = ZoneInfo(LOCAL_TIMEZONE)

# R1 — a timestamp later than the run's start plus this many hours is `future_timestamp`: a
# device clock set wrong or a typo (2099), never counted. A day covers devices sending in UTC-12.
FUTURE_TOLERANCE_HOURS = 24

# R2 — a billing period lasts this many days, date to date (GUIDE §5/§7).
PERIOD_DAYS = 30
# R4 — a period is insufficient when completeness is strictly below this share.
SUFFICIENCY_THRESHOLD = 0.5
# R7 — longest prescription (days) before it is a data-quality error and capped.
PRESCRIPTION_MAX_DAYS = 365
# R7 — longest trial prescription (days), ODYSIGHT §IV.1.c "3 mois au maximum".
TRIAL_MAX_DAYS = 92
# R8 — a reference semester (April–September, October–March) averages this many months.
SEMESTER_MONTHS = 6
# R10 — at most this many consecutive monthly forfaits in one claim (GUIDE §7).
CLAIM_MAX_PERIODS = 6
# Alerts (issue 7): the pace of the open period is judged only after this many days of it.
PACE_MIN_DAYS = 7
# Alerts (issue 7): a prescription ending within this many days with no follow-up is flagged.
PRESCRIPTION_NOTICE_DAYS = 30
# R12 — an issued line with no answer from the payer this many days after its issue is overdue.
UNPAID_AFTER_DAYS = 45
# R10 — share paid by the AMO for a patient without ALD exoneration (ticket modérateur 40 %).
AMO_SHARE_WITHOUT_ALD = "0.60"


# How long a writer waits for the warehouse (another run, or a reader holding the file) before
# it gives up with a one-line error and exit status EXIT_BUSY (env OBSERVANCE_LOCK_TIMEOUT).
ENV_LOCK_TIMEOUT = "OBSERVANCE_LOCK_TIMEOUT"
DEFAULT_LOCK_TIMEOUT_SECONDS = 300.0
EXIT_BUSY = 75  # EX_TEMPFAIL: try again later
# Files the pipeline writes (warehouse, WAL, reports, billing files) are never world-readable.
FILE_UMASK = 0o027
FILE_MODE = 0o640  # the mode of the files it writes: owner and group only, health data


# The landing protocol (docs/contract.md, pipelines/landing.py): a file written to less than this
# many seconds ago may still be being written; it is deferred to a later run
# (env OBSERVANCE_QUIET_SECONDS; 0 reads every file at once, for files known to be complete).
ENV_QUIET_SECONDS = "OBSERVANCE_QUIET_SECONDS"
DEFAULT_QUIET_SECONDS = 60.0


def env_number(name: str, default: float) -> float:
    """A number from the environment, read when it is needed (never at import time)."""
    return float(os.environ.get(name) or default)


def quiet_seconds() -> float:
    return env_number(ENV_QUIET_SECONDS, DEFAULT_QUIET_SECONDS)


# The checks (pipelines/checks.py): the share of the rows a run read that went to quarantine
# above which the check warns, and above which it fails with ERROR (the run exits non-zero);
# how long the landing may go without a transmissions file before the freshness check warns.
ENV_QUARANTINE_WARN = "OBSERVANCE_QUARANTINE_WARN"
ENV_QUARANTINE_ERROR = "OBSERVANCE_QUARANTINE_ERROR"
ENV_FRESHNESS_HOURS = "OBSERVANCE_FRESHNESS_HOURS"
QUARANTINE_WARN_SHARE = 0.01
QUARANTINE_ERROR_SHARE = 0.10
FRESHNESS_HOURS = 24.0


def quarantine_shares() -> tuple[float, float]:
    """(warn, error): the quarantine shares of the check, from the environment or the defaults."""
    return (
        env_number(ENV_QUARANTINE_WARN, QUARANTINE_WARN_SHARE),
        env_number(ENV_QUARANTINE_ERROR, QUARANTINE_ERROR_SHARE),
    )


def freshness_limit() -> timedelta:
    return timedelta(hours=env_number(ENV_FRESHNESS_HOURS, FRESHNESS_HOURS))


# DuckDB's memory limit for the pipeline's connections (env OBSERVANCE_MEMORY_LIMIT, e.g. "1GB"):
# above it DuckDB spills to disk next to the warehouse. The process's peak is about this plus
# half a gigabyte (Python, Arrow, Dagster). At B1 a full run with 1GB took 6-8 % longer than
# with 4GB at a third of the memory, but at ten times B1 it ran out of memory in
# staging.daily_units: 4GB stays the default (docs/performance.md).
ENV_MEMORY_LIMIT = "OBSERVANCE_MEMORY_LIMIT"
MEMORY_LIMIT = "4GB"


def memory_limit() -> str:
    return os.environ.get(ENV_MEMORY_LIMIT) or MEMORY_LIMIT


# The engine of the SQL models (docs/operations.md): DuckDB, embedded, the default and the
# reference; or Apache Spark (pipelines/spark.py, the `spark` extra), where one machine is not
# enough: local mode on this machine's cores unless OBSERVANCE_SPARK_MASTER names a cluster.
ENV_ENGINE = "OBSERVANCE_ENGINE"
ENGINES = ("duckdb", "spark")
ENV_SPARK_MASTER = "OBSERVANCE_SPARK_MASTER"
ENV_SPARK_DRIVER_MEMORY = "OBSERVANCE_SPARK_DRIVER_MEMORY"
SPARK_DRIVER_MEMORY = "4g"
ENV_SPARK_SHUFFLE_PARTITIONS = "OBSERVANCE_SPARK_SHUFFLE_PARTITIONS"


def engine() -> str:
    name = (os.environ.get(ENV_ENGINE) or ENGINES[0]).strip().lower()
    if name not in ENGINES:
        raise ValueError(f"{ENV_ENGINE}={name!r}: expected one of {', '.join(ENGINES)}")
    return name


def spark_master() -> str:
    return os.environ.get(ENV_SPARK_MASTER) or f"local[{os.cpu_count() or 2}]"


def spark_driver_memory() -> str:
    return os.environ.get(ENV_SPARK_DRIVER_MEMORY) or SPARK_DRIVER_MEMORY


def spark_shuffle_partitions(cores: int) -> int:
    """Spark's 200 default suits a cluster; in local mode tasks that small cost more than they
    do (adaptive execution then coalesces what is still too small)."""
    return int(os.environ.get(ENV_SPARK_SHUFFLE_PARTITIONS) or max(4, 4 * cores))


# The raw dataset (pipelines/lake.py): a part is small below SMALL_PART_ROWS rows (a night of
# B1 holds about 100 000); an arrival month's small parts are merged into one once there are
# this many (env OBSERVANCE_COMPACT_AT_PARTS), and all of them once the month is over; 0 turns
# compaction off (the benchmark measures a year of nights without it).
ENV_COMPACT_AT_PARTS = "OBSERVANCE_COMPACT_AT_PARTS"
COMPACT_AT_PARTS = 8
SMALL_PART_ROWS = 2_000_000


def compact_at_parts() -> int:
    """How many small parts trigger a merge; 0: never merge."""
    parts = int(env_number(ENV_COMPACT_AT_PARTS, COMPACT_AT_PARTS))
    return 0 if parts <= 0 else max(2, parts)


# The nightly schedule and the landing sensor start on their own only where this is "on" (the
# production deployment sets it): `make dev` opens the UI without starting a write.
ENV_AUTOMATION = "OBSERVANCE_AUTOMATION"


def automation_on() -> bool:
    return (os.environ.get(ENV_AUTOMATION) or "").lower() in ("1", "on", "true", "yes")


def lock_timeout_seconds() -> float:
    return env_number(ENV_LOCK_TIMEOUT, DEFAULT_LOCK_TIMEOUT_SECONDS)


def restrict_new_files() -> None:
    """Files this process creates from now on are not world-readable (FILE_UMASK): the CLI and
    the Dagster resources call it before anything is written."""
    os.umask(FILE_UMASK)


def catalog_dir() -> Path:
    """The catalog folder: ``OBSERVANCE_CATALOG_DIR`` when set, else the shipped one."""
    return Path(os.environ.get(ENV_CATALOG_DIR) or CATALOG_DIR)


def today_paris() -> date:
    """Today's civil date in Europe/Paris (the default ``--as-of``)."""
    return datetime.now(PARIS).date()


@dataclass(frozen=True)
class Settings:
    """Where the pipeline reads and writes, and the evaluation date."""

    landing: Path
    warehouse: Path
    as_of: date

    @classmethod
    def from_env(
        cls,
        landing: Path | str | None = None,
        warehouse: Path | str | None = None,
        as_of: date | str | None = None,
    ) -> Settings:
        """Explicit values win, then the contract's environment variables, then the defaults."""
        landing = Path(landing or os.environ.get(ENV_LANDING) or DEFAULT_LANDING)
        warehouse = Path(warehouse or os.environ.get(ENV_WAREHOUSE) or DEFAULT_WAREHOUSE)
        as_of = as_of or os.environ.get(ENV_AS_OF) or today_paris()
        if isinstance(as_of, str):
            as_of = date.fromisoformat(as_of)
        return cls(landing=landing, warehouse=warehouse, as_of=as_of)
