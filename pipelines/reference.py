"""Reference tables in the warehouse (``ref.*``): the catalog and the Paris clock.

The SQL models join these instead of carrying constants: the activity catalog
(``ref.activities``, ``ref.activity_measures``), how each line and monitoring profile counts its
data (``ref.counting_rules``, ``ref.counting_measures``, rules.md R3) and the UTC offsets of
Europe/Paris (``ref.paris_offsets``), which turn an instant into a Paris civil date with integer
arithmetic.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import duckdb
import polars as pl

from pipelines.catalog import (
    activity_measures,
    counting_measures,
    load_activities,
    load_counting_rules,
)
from pipelines.config import PARIS
from pipelines.contract import MEASURE_TYPE_ALIASES
from pipelines.warehouse import run_sql, sql_text, transaction

# R1: the years for which ref.paris_offsets is built from the tz database. A transmission measured
# outside this range is quarantined (timestamp_out_of_range) instead of given a guessed date.
OFFSET_YEARS = range(1990, 2101)


def paris_offsets(years: range = OFFSET_YEARS) -> pl.DataFrame:
    """Per UTC calendar year, the instants where Europe/Paris changes offset, from tzdata.

    Columns: ``year``, ``summer_start_us`` and ``summer_end_us`` (UTC epoch microseconds, the
    summer-time interval is half-open), ``standard_offset_us``, ``summer_offset_us``. Checked
    to hold exactly one summer interval per year, so the lookup in SQL is exact.
    """
    rows = []
    for year in years:
        changes = []
        instant = datetime(year, 1, 1, tzinfo=UTC)
        end = datetime(year + 1, 1, 1, tzinfo=UTC)
        offset = instant.astimezone(PARIS).utcoffset()
        while instant < end:  # a day at a time, then the hour of the change within that day
            following = min(instant + timedelta(days=1), end)
            if following.astimezone(PARIS).utcoffset() != offset:
                while instant.astimezone(PARIS).utcoffset() == offset:
                    instant += timedelta(hours=1)  # tzdata changes Paris offsets on the hour
                offset = instant.astimezone(PARIS).utcoffset()
                changes.append((instant, offset))
            instant = following
        if len(changes) != 2:
            raise ValueError(f"Europe/Paris has {len(changes)} offset changes in {year}")
        (start, summer), (stop, standard) = changes
        rows.append(
            {
                "year": year,
                "summer_start_us": int(start.timestamp() * 1_000_000),
                "summer_end_us": int(stop.timestamp() * 1_000_000),
                "standard_offset_us": int(standard.total_seconds() * 1_000_000),
                "summer_offset_us": int(summer.total_seconds() * 1_000_000),
            }
        )
    return pl.DataFrame(rows)


def load_reference(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """(Re)write the ``ref`` tables from the catalog files; returns their row counts."""
    activities = load_activities()
    rules = load_counting_rules(activities=activities)
    tables = {
        "activities": activities,
        "activity_measures": activity_measures(activities, rules),
        "counting_rules": rules,
        "counting_measures": counting_measures(rules),
        "paris_offsets": paris_offsets(),
        # types sent under an older name, counted as their current one (docs/contract.md)
        "measure_type_aliases": pl.DataFrame(
            {
                "alias": list(MEASURE_TYPE_ALIASES),
                "measure_type": list(MEASURE_TYPE_ALIASES.values()),
            },
            schema={"alias": pl.String, "measure_type": pl.String},
        ),
    }
    digest = hashlib.sha256()
    with transaction(con):  # the tables, their macros and their hash change together
        for name, frame in tables.items():
            digest.update(name.encode() + frame.write_csv().encode())
            con.register("frame", frame.to_arrow())
            con.execute(f"CREATE OR REPLACE TABLE ref.{name} AS SELECT * FROM frame")
            con.unregister("frame")
        run_sql(con, "reference/macros")
        digest.update(sql_text("reference/macros").encode())  # R1's date macro, used by models
        # what the model runner's fingerprints read to know whether the reference data changed
        con.execute(
            "CREATE OR REPLACE TABLE ref.version AS SELECT ? AS reference_hash",
            [digest.hexdigest()],
        )
    return {name: frame.height for name, frame in tables.items()}
