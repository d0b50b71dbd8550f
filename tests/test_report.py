"""The exploitants' reports (pipelines/report.py): one file per exploitant holding its own data
only, French by default (English on request), French numbers, money and dates, charts with data;
and in a real headless Chromium, pages that open without a console error and draw every chart
(a screenshot of each page is kept under data/screenshots/ as a CI artefact)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from pipelines import config
from pipelines.i18n import Formatter
from pipelines.report import file_name, last_final_month, write_reports
from tests.helpers import query

SCREENSHOTS = config.PROJECT_ROOT / "data" / "screenshots"


@pytest.fixture(scope="module")
def reports(demo_warehouse, tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("reports")
    index, *pages = write_reports(demo_warehouse, folder)
    return {"index": index} | {page.name: page for page in pages}


def charts(page: str) -> list[list[dict]]:
    """The traces of every chart of a page (plotly's newPlot calls)."""
    decoder = json.JSONDecoder()
    found = []
    for match in re.finditer(r'Plotly\.newPlot\(\s*"chart-\d+",\s*', page):
        traces, _ = decoder.raw_decode(page, match.end())
        found.append(traces)
    return found


def test_one_report_per_exploitant_and_an_index(demo_warehouse, reports):
    exploitants = query(demo_warehouse, "SELECT DISTINCT exploitant_id FROM marts.patient_periods")
    expected = {file_name(e) for e in exploitants["exploitant_id"]}
    assert set(reports) - {"index"} == expected
    index = reports["index"].read_text(encoding="utf-8")
    assert all(f'href="{name}"' in index for name in expected)
    assert oct(reports["index"].stat().st_mode & 0o777) == "0o640"


def test_a_report_holds_its_exploitant_data_only(demo_warehouse, reports):
    ids = query(
        demo_warehouse,
        "SELECT DISTINCT exploitant_id, patient_id, enrollment_id FROM marts.patient_periods",
    )
    for name, path in reports.items():
        if name == "index":
            continue
        page = path.read_text(encoding="utf-8")
        mine = name.removeprefix("exploitant-").removesuffix(".html")
        others = ids.filter(ids["exploitant_id"] != mine)
        own_patients = set(ids.filter(ids["exploitant_id"] == mine)["patient_id"])
        for exploitant in set(others["exploitant_id"]):
            assert exploitant not in page, f"{exploitant} in the report of {mine}"
        for enrollment in others["enrollment_id"]:
            assert f">{enrollment}<" not in page
        strangers = set(others["patient_id"]) - own_patients
        assert not any(f">{patient}<" in page for patient in strangers)


def test_the_report_is_in_french_with_french_formats(reports):
    page = next(p for n, p in reports.items() if n != "index").read_text(encoding="utf-8")
    assert '<html lang="fr">' in page
    assert "L&#39;essentiel" in page and "Patients à suivre en priorité" in page
    assert "heure de Paris" in page
    assert re.search(r"\d+,\d{2}\u00a0€", page)  # 50,00 € (a non-breaking space before €)
    assert re.search(r"(janvier|février|mars|avril|mai|juin|juillet|août|septembre|octobre|"
                     r"novembre|décembre) 20\d\d", page)  # fmt: skip
    visible = re.sub(r"<script>.*?</script>", "", page, flags=re.DOTALL)
    for english in ("At a glance", "Billable file active", "True", "False", "Apr 2025"):
        assert english not in visible
    assert '"decimal": ","' in page  # plotly's French locale is registered
    assert "HYPOTHÈSE" in page and "CONFIRMÉE" in page  # the counting rules' status (R3)


def test_every_chart_has_data(reports):
    for name, path in reports.items():
        if name == "index":
            continue
        page = path.read_text(encoding="utf-8")
        assert "<script src" not in page  # self-contained
        traces = charts(page)
        assert len(traces) == 4, name
        for chart in traces:
            assert chart and all(trace.get("y") or trace.get("x") for trace in chart), name


def test_english_on_request(demo_warehouse, tmp_path):
    index, page = write_reports(demo_warehouse, tmp_path, lang="en", only="EXP01")
    text = page.read_text(encoding="utf-8")
    assert '<html lang="en">' in text and "At a glance" in text and "Paris time" in text
    assert "L&#39;essentiel" not in text


def test_an_unknown_exploitant_is_refused(demo_warehouse, tmp_path):
    with pytest.raises(LookupError, match="no exploitant 'NOPE'"):
        write_reports(demo_warehouse, tmp_path, only="NOPE")


def test_french_numbers_money_and_dates():
    fr, en = Formatter("fr"), Formatter("en")
    assert fr.money(Decimal("1234.56")) == "1\u202f234,56\u00a0€"
    assert en.money(Decimal("1234.56")) == "€1,234.56"
    assert fr.integer(16000) == "16\u202f000"
    assert fr.month(date(2026, 3, 1)) == "mars 2026"
    assert fr.day(date(2026, 3, 5)) == "5 mars 2026"
    assert re.fullmatch("50[\u00a0\u202f]%", fr.percent(0.5))


@pytest.mark.parametrize(
    ("as_of", "month"),
    [
        (date(2025, 12, 1), date(2025, 10, 1)),  # periods starting 31 Oct closed 30 Nov
        (date(2026, 3, 2), date(2026, 1, 1)),  # February's last periods are still open
        (date(2026, 3, 31), date(2026, 2, 1)),
    ],
)
def test_the_last_month_whose_periods_are_all_closed(as_of, month):
    assert last_final_month(as_of) == month


# -- in a real browser


def chromium() -> str:
    """Debian's chromium: `make test` installs it where missing. Never skipped: CI runs it."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    assert found, "chromium is missing: `make test` installs it (apt-get install chromium)"
    return found


def open_in_chromium(page: Path, screenshot: Path | None = None) -> tuple[str, list[str]]:
    """The page's DOM once its scripts ran, and the console messages it logged."""
    base = [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars"]
    done = subprocess.run(
        [*base, "--enable-logging=stderr", "--v=0", "--virtual-time-budget=15000",
         "--dump-dom", page.as_uri()],
        capture_output=True, text=True, timeout=180, check=True,
    )  # fmt: skip
    console = [line for line in done.stderr.splitlines() if ":CONSOLE" in line]
    if screenshot is not None:
        screenshot.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [*base, "--window-size=1280,2000", f"--screenshot={screenshot}", page.as_uri()],
            capture_output=True, timeout=180, check=True,
        )  # fmt: skip
    return done.stdout, console


def test_the_reports_open_in_chromium_without_errors_and_draw_every_chart(reports):
    for name, path in reports.items():
        shot = SCREENSHOTS / f"report-{path.stem}.png"
        dom, console = open_in_chromium(path, shot)
        assert console == [], f"{name}: {console}"
        if name == "index":
            assert "exploitant-" in dom
            continue
        drawn = re.findall(r'<div id="(chart-\d+)"[^>]*class="[^"]*js-plotly-plot', dom)
        assert len(drawn) == 4, f"{name}: charts drawn {drawn}"
        assert dom.count('class="main-svg"') >= 8  # two SVG layers per chart
        assert shot.stat().st_size > 10_000


def test_the_operator_view_holds_its_patients_and_forfaits_only(demo_warehouse, tmp_path):
    from pipelines.report import write_operator_report

    operators = query(
        demo_warehouse, "SELECT DISTINCT operator_id, patient_id FROM marts.patient_periods"
    )
    operator = operators["operator_id"].min()
    page = write_operator_report(demo_warehouse, tmp_path, operator).read_text(encoding="utf-8")
    assert "opérateur " + operator in page and "Vos forfaits par mois de soins" in page
    for other in set(operators["operator_id"]) - {operator}:
        assert f">{other}<" not in page
    mine = set(operators.filter(operators["operator_id"] == operator)["patient_id"])
    shown = set(re.findall(r"<td>(P\d+)</td>", page))
    assert shown and shown <= mine
    with pytest.raises(LookupError, match="no operator"):
        write_operator_report(demo_warehouse, tmp_path, "OP_NOPE")


def test_every_word_has_both_languages_and_the_same_placeholders():
    from string import Formatter as Fields

    from pipelines.i18n import TEXTS

    for key, entry in TEXTS.items():
        assert entry["fr"] and entry["en"], key
        fields = [{name for _, name, _, _ in Fields().parse(entry[lang]) if name} for lang in entry]
        assert fields[0] == fields[1], key


def test_every_word_the_code_asks_for_exists():
    from pipelines.i18n import TEXTS

    code = "".join(
        (config.PROJECT_ROOT / "pipelines" / name).read_text(encoding="utf-8")
        for name in ("report.py", "i18n.py")
    )
    asked = set(re.findall(r'\.text\(\s*"(\w+)"', code))
    assert asked and asked <= set(TEXTS), asked - set(TEXTS)


def test_two_ids_never_share_a_report_file():
    assert file_name("EXP01") == "exploitant-EXP01.html"
    names = {file_name(e) for e in ("EXP/01", "EXP_01", "EXP 01", "../EXP01")}
    assert len(names) == 4 and all("/" not in n.removeprefix("exploitant-") for n in names)


def test_every_query_of_an_exploitant_report_is_filtered_on_that_exploitant():
    from pipelines.report import QUERIES
    from pipelines.warehouse import sql_text

    for name in (*QUERIES, "claims_summary"):
        assert "getvariable('exploitant')" in sql_text(f"report/{name}"), name
