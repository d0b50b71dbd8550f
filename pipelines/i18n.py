"""Words, numbers, money and dates for people, in French (the default) or English.

Formatting is Babel's (CLDR data): ``1 234,56 €``, ``mars 2026``, ``6 déc. 2026, 04:12``; times
are shown in Europe/Paris. The words of the reports are in ``templates/words.csv``, one row per
key with its French and English text.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

from babel.dates import format_date, format_datetime
from babel.numbers import format_currency, format_decimal, format_percent

from pipelines.config import PARIS

LANGUAGES = ("fr", "en")
LOCALES = {"fr": "fr_FR", "en": "en_GB"}  # en_GB: day-month dates, euros after the amount
CURRENCY = "EUR"


@dataclass(frozen=True)
class Formatter:
    """Numbers, money and dates in one language's conventions."""

    lang: str = "fr"

    def __post_init__(self) -> None:
        if self.lang not in LANGUAGES:
            raise ValueError(f"language must be one of {LANGUAGES}, not {self.lang!r}")

    @property
    def locale(self) -> str:
        return LOCALES[self.lang]

    def integer(self, value: int | float | None) -> str:
        return "–" if value is None else format_decimal(round(value), locale=self.locale)

    def number(self, value: float | Decimal | None, digits: int = 1) -> str:
        if value is None:
            return "–"
        pattern = "#,##0." + "0" * digits if digits else "#,##0"
        return format_decimal(value, format=pattern, locale=self.locale)

    def money(self, value: float | Decimal | None) -> str:
        """An amount in euros, to the cent (Decimal amounts are formatted exactly)."""
        if value is None:
            return "–"
        return format_currency(value, CURRENCY, locale=self.locale)

    def percent(self, value: float | None, digits: int = 0) -> str:
        if value is None:
            return "–"
        if not digits:
            return format_percent(value, locale=self.locale)
        number = format_decimal(value * 100, format="#,##0." + "0" * digits, locale=self.locale)
        return number + ("\u202f%" if self.lang == "fr" else "%")

    def month(self, value: date) -> str:
        """``mars 2026`` / ``March 2026``."""
        return format_date(value, "LLLL y", locale=self.locale)

    def day(self, value: date | None) -> str:
        """``5 mars 2026`` / ``5 March 2026``."""
        return "–" if value is None else format_date(value, "d MMMM y", locale=self.locale)

    def moment(self, value: datetime) -> str:
        """A point in time, in Europe/Paris: ``6 décembre 2026 à 04:50 (heure de Paris)``."""
        text = format_datetime(value.astimezone(PARIS), "d MMMM y HH:mm", locale=self.locale)
        day, _, clock = text.rpartition(" ")
        return self.text("moment", day=day, clock=clock)

    def yes_no(self, value: bool | None) -> str:
        return "–" if value is None else self.text("yes" if value else "no")

    def column(self, name: str) -> str:
        """The header of a table column (``column.<name>``; the name itself when not listed)."""
        return TEXTS.get(f"column.{name}", {}).get(self.lang, name)

    def alert(self, kind: str) -> str:
        return TEXTS.get(f"alert.{kind}", {}).get(self.lang, kind)

    def text(self, key: str, **values: object) -> str:
        """The words of ``key`` in this language, with ``values`` put in (str.format)."""
        entry = TEXTS[key]
        return entry[self.lang].format(**values) if values else entry[self.lang]


# The words of the reports, one row per key with its French and English text
# (pipelines/templates/words.csv: translators edit it, no code changes): "column.<name>" heads
# a table column, "alert.<kind>" names an alert.
WORDS_FILE = Path(__file__).parent / "templates" / "words.csv"


def load_words(path: Path = WORDS_FILE) -> dict[str, dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return {
            row["key"]: {lang: row[lang] for lang in LANGUAGES} for row in csv.DictReader(handle)
        }


TEXTS = load_words()
# The order in which a care team acts on alerts: the first is the most urgent.
ALERT_URGENCY = (
    "stop_required",
    "period_at_risk",
    "transmission_interrupted",
    "reinforce_recommended",
    "weekly_transmission_missed",
    "prescription_expiring",
)


# plotly's own words and number format in French (registered in the page: plotly.js ships
# English only). Months and days come from Babel's CLDR data.
def plotly_locale(lang: str) -> dict | None:
    if lang != "fr":
        return None
    from babel.dates import get_day_names, get_month_names

    months = get_month_names("wide", locale="fr_FR")
    short_months = get_month_names("abbreviated", locale="fr_FR")
    days = get_day_names("wide", locale="fr_FR")
    short_days = get_day_names("abbreviated", locale="fr_FR")
    sunday_first = [6, 0, 1, 2, 3, 4, 5]  # plotly (d3) starts the week on Sunday
    return {
        "moduleType": "locale",
        "name": "fr",
        "dictionary": {
            "Autoscale": "Échelle automatique",
            "Download plot as a png": "Télécharger le graphique en PNG",
            "Reset axes": "Réinitialiser les axes",
            "Zoom in": "Zoomer",
            "Zoom out": "Dézoomer",
            "Pan": "Déplacer",
            "Zoom": "Zoom",
        },
        "format": {
            "days": [days[i] for i in sunday_first],
            "shortDays": [short_days[i] for i in sunday_first],
            "months": [months[i] for i in range(1, 13)],
            "shortMonths": [short_months[i] for i in range(1, 13)],
            "date": "%d/%m/%Y",
            "decimal": ",",
            "thousands": "\u202f",
        },
    }
