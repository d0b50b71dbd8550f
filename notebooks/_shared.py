"""Shared by the analyst notebooks: the warehouse path and read-only queries.

Importing this module also makes ``pipelines`` importable when the kernel is not the project's
virtual environment (the repository root is put on ``sys.path``).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path


def repo_root() -> Path:
    """The repository root: the nearest folder above this file holding pyproject.toml."""
    here = Path(__file__).resolve().parent
    for folder in (here, *here.parents):
        if (folder / "pyproject.toml").is_file():
            return folder
    raise FileNotFoundError(f"no pyproject.toml above {here}")


ROOT = repo_root()
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import plotly.io as pio  # noqa: E402
import polars as pl  # noqa: E402

from pipelines.config import DEFAULT_WAREHOUSE, ENV_WAREHOUSE  # noqa: E402
from pipelines.warehouse import reader  # noqa: E402

# Figures render in JupyterLab (the mimetype) and survive `jupyter nbconvert --to html` (the
# notebook renderer puts plotly.js in the page once, and each figure as HTML and script).
pio.renderers.default = "plotly_mimetype+notebook"


def warehouse_path() -> Path:
    """``OBSERVANCE_WAREHOUSE`` (a relative path is taken from the repository root), else
    ``data/warehouse.duckdb`` in the repository."""
    path = Path(os.environ.get(ENV_WAREHOUSE) or DEFAULT_WAREHOUSE).expanduser()
    return path if path.is_absolute() else ROOT / path


def query(sql: str, params: list | dict | None = None) -> pl.DataFrame:
    """Run one query on a fresh read-only connection; the result is fetched whole as a polars
    frame and the connection closed at once (an open connection, even read-only, would stop the
    nightly run from writing the warehouse)."""
    with reader(warehouse_path()) as con:
        return con.sql(sql, params=params or []).pl()
