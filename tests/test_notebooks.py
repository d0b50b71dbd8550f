"""The analyst notebooks (issue 8): committed without outputs, and each one runs top to bottom
against the demo warehouse, in this environment's kernel, without changing the warehouse."""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from nbformat.v4 import new_code_cell

from pipelines.config import ENV_WAREHOUSE
from pipelines.warehouse import reader

NOTEBOOKS_DIR = Path(__file__).resolve().parent.parent / "notebooks"
NOTEBOOKS = (
    "01_observance_overview.ipynb",
    "02_file_active_and_tariffs.ipynb",
    "03_patient_drilldown.ipynb",
)
PARAMETERISED = ("02_file_active_and_tariffs.ipynb", "03_patient_drilldown.ipynb")
CELL_TIMEOUT = 120


def _read(name: str) -> nbformat.NotebookNode:
    return nbformat.read(NOTEBOOKS_DIR / name, as_version=4)


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _stdout(cell: nbformat.NotebookNode) -> str:
    return "".join(
        output.text
        for output in cell.outputs
        if output.output_type == "stream" and output.name == "stdout"
    )


def _execute(
    name: str,
    warehouse: Path,
    monkeypatch: pytest.MonkeyPatch,
    parameters: str | None = None,
    probe: str = "import sys; print(sys.prefix)",
) -> str:
    """Run the notebook (cwd = notebooks/, the kernel inherits OBSERVANCE_WAREHOUSE), with
    ``parameters`` injected after the cell tagged "parameters" as papermill does, then ``probe``
    in the same kernel; returns what the probe printed. Any cell error fails the test."""
    monkeypatch.setenv(ENV_WAREHOUSE, str(warehouse))
    nb = _read(name)
    if parameters is not None:
        index = next(
            i for i, cell in enumerate(nb.cells) if "parameters" in cell.metadata.get("tags", [])
        )
        nb.cells.insert(index + 1, new_code_cell(parameters))
    nb.cells.append(new_code_cell(probe))
    client = NotebookClient(
        nb,
        timeout=CELL_TIMEOUT,
        kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOKS_DIR)}},
    )
    client.execute()
    EXECUTED[name] = nb
    return _stdout(nb.cells[-1]).strip()


EXECUTED: dict[str, nbformat.NotebookNode] = {}  # the last run of each notebook, with outputs


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_committed_notebook_has_no_outputs(name):
    nb = _read(name)
    nbformat.validate(nb)
    assert nb.metadata.kernelspec.name == "python3"
    first = nb.cells[0]
    assert first.cell_type == "markdown" and first.source.startswith("# ")
    for number, cell in enumerate(nb.cells, start=1):
        if cell.cell_type == "code":
            assert cell.outputs == [], f"{name} cell {number} has outputs"
            assert cell.execution_count is None, f"{name} cell {number} has an execution count"


@pytest.mark.parametrize("name", PARAMETERISED)
def test_parameters_cell_is_tagged(name):
    tagged = [c for c in _read(name).cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1 and tagged[0].cell_type == "code"


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_runs_read_only_in_this_environment(name, demo_warehouse, monkeypatch):
    before = _digest(demo_warehouse)
    prefix = _execute(name, demo_warehouse, monkeypatch)
    assert Path(prefix) == Path(sys.prefix), "the python3 kernel is not this environment's"
    assert _digest(demo_warehouse) == before


def test_what_if_with_added_patients_lowers_the_modulated_amount(demo_warehouse, monkeypatch):
    # 6 000 more patients on average cross into the second tranche (11/12 of the base rate).
    printed = _execute(
        "02_file_active_and_tariffs.ipynb",
        demo_warehouse,
        monkeypatch,
        parameters="ADDED_PATIENTS = 6000",
        probe=(
            "print(what_if.filter(pl.col('amount_what_if') < pl.col('amount_now')).height,"
            " what_if.filter(pl.col('revenue_change') > 0).height,"
            " what_if['matches_warehouse'].all())"
        ),
    )
    lowered, more_revenue, matches = printed.split()
    assert int(lowered) > 0
    assert int(more_revenue) > 0
    assert matches == "True"


def test_drilldown_of_a_chosen_patient(demo_warehouse, monkeypatch):
    with reader(demo_warehouse) as con:
        patient, periods = con.execute(
            "SELECT patient_id, count(*) FROM marts.patient_periods "
            "WHERE activity_code = 'HEART_FAILURE' GROUP BY patient_id ORDER BY patient_id LIMIT 1"
        ).fetchall()[0]
    printed = _execute(
        "03_patient_drilldown.ipynb",
        demo_warehouse,
        monkeypatch,
        parameters=f"PATIENT_ID = {patient!r}",
        probe="print(PATIENT_ID, periods.height)",
    )
    assert printed == f"{patient} {periods}"


def test_figures_survive_the_export_to_html(demo_warehouse, monkeypatch):
    """`jupyter nbconvert --to html` keeps every plotly figure (not only JupyterLab's mimetype)."""
    from nbconvert import HTMLExporter

    name = "01_observance_overview.ipynb"
    _execute(name, demo_warehouse, monkeypatch)
    figures = sum(
        "application/vnd.plotly.v1+json" in output.get("data", {})
        for cell in EXECUTED[name].cells
        for output in cell.get("outputs", [])
    )
    html, _ = HTMLExporter().from_notebook_node(EXECUTED[name])
    assert figures > 0
    assert html.count("Plotly.newPlot(") >= figures  # each figure drawn by the page itself
    assert "plotly.js" in html or "define('plotly'" in html  # the library is in the page
