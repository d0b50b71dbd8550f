"""Row-for-row parity of two warehouses built from the same landing (DuckDB and Spark engines).

Every table and view the models write must have the same columns in the same order on both
sides, and is compared both ways with ``EXCEPT ALL`` (a multiset difference: a row twice in one
and once in the other is a difference), after the columns that only say when the run happened
are left out (``RUN_COLUMNS``). Values are compared as DuckDB reads them, each side's column
cast to the type of the left one (Spark writes some sums as BIGINT where DuckDB keeps a
HUGEINT: the same numbers).

    python -m tools.parity <left warehouse> <right warehouse>
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

import duckdb

from pipelines.models import MODELS
from pipelines.warehouse import quote

# columns that say when a build happened, not what it decided (none in the marts today: the
# evaluation date is a parameter, equal on both sides)
RUN_COLUMNS = frozenset({"written_at"})


@dataclass(frozen=True)
class Difference:
    relation: str
    only_left: int
    only_right: int
    left_rows: int
    right_rows: int
    sample: list[tuple]

    def __str__(self) -> str:
        if self.only_left < 0:
            return f"{self.relation}: other columns {self.sample[0][1]} vs {self.sample[0][2]}"
        return (
            f"{self.relation}: {self.only_left} rows only on the left, {self.only_right} only on "
            f"the right ({self.left_rows} vs {self.right_rows} rows); e.g. {self.sample[:3]}"
        )


def relations() -> list[str]:
    """Every table or view a model writes, in build order."""
    return [table for model in MODELS for table in model.writes]


def compare(
    left: Path, right: Path, ignore: frozenset[str] = RUN_COLUMNS
) -> tuple[dict[str, int], list[Difference]]:
    """The rows of each relation (left side) and the relations that differ (the columns
    ``ignore`` names left out)."""
    con = duckdb.connect()
    try:
        for alias, path in (("l", left), ("r", right)):
            con.execute(f"ATTACH {quote(str(path))} AS {alias} (READ_ONLY)")
        rows: dict[str, int] = {}
        differences = []
        for relation in relations():
            difference = _compare_one(con, relation, ignore)
            rows[relation] = difference.left_rows
            if difference.only_left or difference.only_right:
                differences.append(difference)
        return rows, differences
    finally:
        con.close()


def _compare_one(
    con: duckdb.DuckDBPyConnection, relation: str, ignore: frozenset[str] = RUN_COLUMNS
) -> Difference:
    described, other = (con.execute(f"DESCRIBE {side}.{relation}").fetchall() for side in "lr")
    names = [[row[0] for row in side] for side in (described, other)]
    if names[0] != names[1]:  # the same columns, in the same order (types may differ: above)
        return Difference(relation, -1, -1, 0, 0, [("columns", *names)])
    columns = [(name, kind) for name, kind, *_ in described if name not in ignore]
    left = ", ".join(f'"{name}"' for name, _ in columns)
    right = ", ".join(f'CAST("{name}" AS {kind}) AS "{name}"' for name, kind in columns)
    counts = [
        con.execute(f"SELECT count(*) FROM {side}.{relation}").fetchall()[0][0]
        for side in ("l", "r")
    ]
    only = []
    samples: list[tuple] = []
    for first, second in ((left, right), (right, left)):
        a, b = ("l", "r") if first is left else ("r", "l")
        query = f"SELECT {first} FROM {a}.{relation} EXCEPT ALL SELECT {second} FROM {b}.{relation}"
        found = con.execute(f"SELECT count(*) FROM ({query})").fetchall()[0][0]
        only.append(found)
        if found:
            samples += con.execute(f"{query} LIMIT 3").fetchall()
    return Difference(relation, only[0], only[1], counts[0], counts[1], samples)


def main(argv: list[str]) -> int:
    rows, differences = compare(Path(argv[0]), Path(argv[1]))
    print(json.dumps({"rows": rows, "differences": [str(d) for d in differences]}, indent=1))
    return 1 if differences else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
