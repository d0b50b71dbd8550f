"""The layers only import downwards: cli > tools > dagster_project > pipelines, and the domain
(pipelines/) imports neither Dagster nor Typer, Click or Rich. The contracts are in
pyproject.toml ([tool.importlinter]); every import counts, those inside functions too."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def lint_imports(root: Path = ROOT) -> subprocess.CompletedProcess:
    command = [str(Path(sys.executable).parent / "lint-imports"), "--no-cache"]
    env = {"PYTHONPATH": str(root)}
    return subprocess.run(command, cwd=root, capture_output=True, text=True, check=False, env=env)


def test_the_layers_only_import_downwards():
    done = lint_imports()
    assert done.returncode == 0, done.stdout + done.stderr
    assert "3 kept, 0 broken" in done.stdout


@pytest.mark.parametrize(
    ("module", "line"),
    [
        ("pipelines/faults.py", "import dagster"),  # the domain calling the orchestrator
        ("pipelines/models.py", "from cli import main"),  # ... or the command line
        ("dagster_project/runner.py", "from tools import bench"),  # a layer calling upwards
    ],
)
def test_an_import_inside_a_function_that_breaks_a_layer_is_caught(tmp_path, module, line):
    """The contracts are not vacuous: a copy of the tree with one import added, inside a
    function, breaks them."""
    copy = tmp_path / "tree"
    for name in ("pyproject.toml", "cli", "tools", "dagster_project", "pipelines"):
        source = ROOT / name
        if source.is_dir():
            subprocess.run(["cp", "-r", str(source), str(copy / name)], check=True)
        else:
            copy.mkdir(exist_ok=True)
            (copy / name).write_bytes(source.read_bytes())
    with (copy / module).open("a") as handle:
        handle.write(f"\n\ndef _upwards():\n    {line}  # noqa\n")
    done = lint_imports(copy)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "BROKEN" in done.stdout
