"""The command line (cli/main.py): options show their environment variable and default,
choices are checked by Typer, and a mistake is a short error with no traceback."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from cli.main import app

RUNNER = CliRunner()


def invoke(*args: str):
    return RUNNER.invoke(app, list(args), env={"COLUMNS": "200"})


def test_help_shows_environment_variables_and_defaults():
    text = invoke("run", "--help").output
    for shown in (
        "OBSERVANCE_LANDING",
        "default: data/landing",
        "OBSERVANCE_WAREHOUSE",
        "OBSERVANCE_AS_OF",
        "today in Europe/Paris",
        "OBSERVANCE_LOCK_TIMEOUT",
        "300",
    ):
        assert shown in text, shown


@pytest.mark.parametrize(
    ("args", "complaint"),
    [
        (("run", "--as-of", "2025-13-01"), "Invalid value for '--as-of'"),
        (("issue", "--payee", "nobody", "--out", "x.csv"), "'nobody' is not one of"),
        (("report", "--lang", "de"), "'de' is not one of"),
        (("export", "--payee", "operator", "--from", "tomorrow", "--to", "2025-01-01",
          "--out", "x.csv"), "Invalid value for '--from'"),
    ],
)  # fmt: skip
def test_a_mistake_is_a_short_error_without_traceback(args, complaint):
    result = invoke(*args)
    assert result.exit_code == 2
    assert complaint in result.output
    assert "Traceback" not in result.output


def test_choices_are_listed():
    text = invoke("issue", "--help").output
    assert "operator|exploitant" in text and "french|international" in text
