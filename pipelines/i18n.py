"""Words, numbers, money and dates for people, in French (the default) or English.

Formatting is Babel's (CLDR data): ``1 234,56 €``, ``mars 2026``, ``6 déc. 2026, 04:12``; times
are shown in Europe/Paris. The words of the reports live here, one entry per key and language.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

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

    def text(self, key: str, **values: object) -> str:
        """The words of ``key`` in this language, with ``values`` put in (str.format)."""
        entry = TEXTS[key]
        return entry[self.lang].format(**values) if values else entry[self.lang]


# The words of the reports: key -> {language: text}.
TEXTS: dict[str, dict[str, str]] = {
    "yes": {"fr": "oui", "en": "yes"},
    "moment": {"fr": "{day} à {clock} (heure de Paris)", "en": "{day} at {clock} (Paris time)"},
    "no": {"fr": "non", "en": "no"},
    "title": {
        "fr": "Télésurveillance médicale — rapport de l'exploitant {exploitant}",
        "en": "Remote patient monitoring — report of exploitant {exploitant}",
    },
    "operator_title": {
        "fr": "Télésurveillance médicale — opérateur {operator}",
        "en": "Remote patient monitoring — operator {operator}",
    },
    "index_title": {
        "fr": "Télésurveillance médicale — rapports par exploitant",
        "en": "Remote patient monitoring — reports by exploitant",
    },
    "generated": {
        "fr": "Situation au {as_of}, établie le {moment}. Données pseudonymisées : aucun nom, "
        "aucune mesure ; ce fichier ne contient que les données de {who}.",
        "en": "Situation as of {as_of}, generated {moment}. Pseudonymous data: no name, no "
        "measurement; this file holds the data of {who} only.",
    },
    "key_figures": {"fr": "L'essentiel", "en": "At a glance"},
    "file_active_month": {
        "fr": "File active facturable de {month} (dernier mois dont toutes les périodes "
        "sont closes)",
        "en": "Billable file active, {month} (last month with every period closed)",
    },
    "file_active_running": {
        "fr": "{month}, mois en cours (provisoire) : {count}",
        "en": "{month}, running month (provisional): {count}",
    },
    "semester_average": {
        "fr": "Moyenne du semestre en cours ({semester})",
        "en": "Average of the running semester ({semester})",
    },
    "to_next_tranche": {
        "fr": "Patients jusqu'à la tranche suivante",
        "en": "Patients to the next tranche",
    },
    "projected_amount": {
        "fr": "Forfait technique projeté par patient et par mois, semestre suivant",
        "en": "Projected forfait technique per patient and month, next semester",
    },
    "projected_revenue": {
        "fr": "Chiffre d'affaires mensuel projeté (file active × forfait)",
        "en": "Projected monthly revenue (file active × forfait)",
    },
    "at_risk": {"fr": "Périodes en cours à risque", "en": "Open periods at risk"},
    "to_reinforce": {"fr": "Patients à renforcer", "en": "Patients to reinforce"},
    "to_stop": {"fr": "Arrêts à envisager", "en": "Stops to consider"},
    "claims": {"fr": "Lignes de facturation", "en": "Billing lines"},
    "claims_detail": {
        "fr": "{ready} prêtes · {issued} émises · {paid} payées · {rejected} rejetées",
        "en": "{ready} ready · {issued} issued · {paid} paid · {rejected} rejected",
    },
    "level": {"fr": "Niveau CIM-11", "en": "ICD-11 level"},
    "act_now": {"fr": "Patients à suivre en priorité", "en": "Patients to act on first"},
    "act_now_intro": {
        "fr": "Alertes ouvertes de vos patients, les plus urgentes d'abord (arrêt requis, "
        "période à risque, interruption, renforcement, prescription qui expire). {shown} sur "
        "{total} affichées.",
        "en": "Open alerts of your patients, most urgent first (stop required, period at risk, "
        "interruption, reinforcement, expiring prescription). {shown} of {total} shown.",
    },
    "no_alert": {"fr": "Aucune alerte ouverte.", "en": "No open alert."},
    "monthly_title": {
        "fr": "File active mensuelle par niveau CIM-11",
        "en": "Monthly file active by ICD-11 level",
    },
    "monthly_intro": {
        "fr": "Patients facturables (trait plein) : ils fixent le tarif ; patients suivis "
        "(pointillés) : inscription active au moins un jour du mois. Le dernier mois est "
        "provisoire (zone grisée) : ses périodes sont encore ouvertes. Février, plus court, ne "
        "contient pas de début de période pour certains patients : son creux n'est pas une "
        "perte de données (règle R8).",
        "en": "Billable patients (solid) set the tariff; monitored patients (dotted) have an "
        "enrollment active at least one day of the month. The last month is provisional "
        "(shaded): its periods are still open. A shorter February holds no period start for "
        "some patients: its dip is not lost data (rule R8).",
    },
    "semester_title": {
        "fr": "Moyennes semestrielles et tranches",
        "en": "Semester averages and tranches",
    },
    "semester_intro": {
        "fr": "Moyenne des six files actives mensuelles de chaque semestre de référence "
        "(avril–septembre, octobre–mars) ; elle fixe le forfait du semestre suivant. Les "
        "lignes pointillées sont les bornes de tranche.",
        "en": "Average of the six monthly file active counts of each reference semester "
        "(April–September, October–March); it sets the forfait of the next semester. Dashed "
        "lines are the tranche bounds.",
    },
    "revenue_title": {
        "fr": "Forfait technique : chiffre d'affaires mensuel",
        "en": "Forfait technique: monthly revenue",
    },
    "revenue_intro": {
        "fr": "Patients facturables du mois × forfait par patient en vigueur ce mois-là. Un mois "
        "sans tarif connu compte pour 0.",
        "en": "Billable patients of the month × the per-patient amount in force that month. A "
        "month without a known tariff counts as 0.",
    },
    "completeness_title": {
        "fr": "Complétude des périodes closes",
        "en": "Completeness of closed periods",
    },
    "completeness_intro": {
        "fr": "Unités valides sur unités attendues par période de 30 jours, selon la règle de "
        "comptage de chaque ligne ; sous 50 %, la période suivante n'est pas facturable ; à 0, "
        "la période elle-même ne l'est pas.",
        "en": "Valid units over expected units per 30-day period, per each line's counting rule; "
        "under 50 % the next period is not billable; at 0 the period itself is not.",
    },
    "rules_title": {"fr": "Ce qui compte comme donnée (R3)", "en": "What counts as data (R3)"},
    "rules_intro": {
        "fr": "Règles de comptage appliquées à vos périodes. CONFIRMÉE : lue dans l'arrêté ou le "
        "référentiel ; HYPOTHÈSE : décision produit là où le texte n'a pu être lu. {assumed} de "
        "vos {total} périodes reposent sur une hypothèse.",
        "en": "Counting rules applied to your periods. CONFIRMED: read in the arrêté or the "
        "referential; ASSUMPTION: a product decision where the text could not be read. "
        "{assumed} of your {total} periods rest on an assumption.",
    },
    "billing_title": {
        "fr": "Facturation : émis, payé, rejeté",
        "en": "Billing: issued, paid, rejected",
    },
    "billing_intro": {
        "fr": "Par mois de soins et bénéficiaire : lignes prêtes, émises, réponses de "
        "l'assurance maladie, lignes sans réponse après {days} jours, corrections à émettre.",
        "en": "Per month of care and payee: lines ready, issued, the payer's answers, lines "
        "without an answer after {days} days, corrections to issue.",
    },
    "followed_patients": {"fr": "Patients suivis", "en": "Patients followed"},
    "forfaits_title": {
        "fr": "Vos forfaits par mois de soins",
        "en": "Your forfaits by month of care",
    },
    "rejections_title": {"fr": "Lignes rejetées par motif", "en": "Rejected lines by reason"},
    "rejections_intro": {
        "fr": "{lines} lignes rejetées ; chacune encore due est réémise par le prochain "
        "`observance issue` (la réémission y renvoie).",
        "en": "{lines} rejected lines; each one still due is re-issued by the next "
        "`observance issue` (the re-issue refers to it).",
    },
    "series_billable": {"fr": "{level} facturables", "en": "{level} billable"},
    "series_monitored": {"fr": "{level} suivis", "en": "{level} monitored"},
    "patients": {"fr": "patients", "en": "patients"},
    "average_file_active": {"fr": "file active moyenne", "en": "average file active"},
    "tranche_bound": {"fr": "borne de tranche {bound}", "en": "tranche bound {bound}"},
    "eur_per_month": {"fr": "€ par mois", "en": "€ per month"},
    "periods": {"fr": "périodes", "en": "periods"},
    "provisional": {"fr": "provisoire", "en": "provisional"},
    "index_intro": {
        "fr": "Un rapport par exploitant : chacun ne contient que les données de cet exploitant.",
        "en": "One report per exploitant: each holds that exploitant's data only.",
    },
    "patients_count": {"fr": "{n} patients", "en": "{n} patients"},
    "no_tariff": {"fr": "tarif inconnu", "en": "no known tariff"},
    "top_tranche": {"fr": "dernière tranche", "en": "top tranche"},
}

ALERT_KINDS: dict[str, dict[str, str]] = {
    "stop_required": {"fr": "arrêt requis", "en": "stop required"},
    "period_at_risk": {"fr": "période à risque", "en": "period at risk"},
    "transmission_interrupted": {
        "fr": "transmission interrompue",
        "en": "transmission interrupted",
    },
    "reinforce_recommended": {"fr": "renforcement recommandé", "en": "reinforcement recommended"},
    "weekly_transmission_missed": {
        "fr": "transmission hebdomadaire manquée",
        "en": "weekly transmission missed",
    },
    "prescription_expiring": {"fr": "prescription qui expire", "en": "prescription expiring"},
}
# The order in which a care team acts on alerts: the first is the most urgent.
ALERT_URGENCY = tuple(ALERT_KINDS)


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
