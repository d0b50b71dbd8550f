"""Synthetic landing data for the observance pipeline (``observance generate``).

Writes the landing layout of ``shared/contract.md`` for a synthetic cohort: an enrollment snapshot
and a later update, the prescriptions, and the device transmissions grouped by day of arrival and
exploitant. Each enrollment follows one patient *behaviour* (adherent, declining, intermittent,
late starter, dropping out, stopped, deceased, transferred) so that every rule of
``shared/domain/rules.md`` has data to act on, and ``dirt=True`` adds the data-quality faults the
ingestion must catch (duplicates, malformed records, missing fields, naive timestamps, ...).

Activities, monitoring profiles, measure types and calibration bounds come from the catalog; how
often each measure type is sent under each profile and what its values look like is generator
realism, kept in ``SEND_MODELS`` and ``PROFILE_SHARES``. A share of the diabetes patients wear a
continuous sensor (a reading every 5 minutes: ``cgm_share``), where the volume really comes from.

Everything is drawn from one ``numpy.random.default_rng(seed)`` in a fixed order, so the same
arguments give byte-identical files. The work is vectorised over enrollment-days and rows; loops
run over chunks of enrollments, activities, measure types, dirt kinds and output files only.
"""

from __future__ import annotations

import gzip
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl

from pipelines.catalog import (
    DEFAULT_PROFILE,
    activity_measures,
    counting_measures,
    load_activities,
    load_counting_rules,
)
from pipelines.config import LOCAL_TIMEZONE, today_paris
from pipelines.contract import FIELDS

TRANSMISSION_FIELDS = FIELDS["transmissions"]
ENROLLMENT_FIELDS = FIELDS["enrollments"]
PRESCRIPTION_FIELDS = FIELDS["prescriptions"]
NUMERIC_FIELDS = ("value", "distance_cm", "ambient_lux")

# --- cohort -------------------------------------------------------------------------------------
# Share of enrollments following each behaviour; a run with at least 8 enrollments has each once.
BEHAVIOUR_SHARES: dict[str, float] = {
    "adherent": 0.44,
    "declining": 0.10,
    "intermittent": 0.10,
    "late_starter": 0.08,
    "dropout": 0.08,
    "stopped": 0.08,
    "deceased": 0.05,
    "transferred": 0.07,
}
BEHAVIOURS = tuple(BEHAVIOUR_SHARES)
BEHAVIOUR_CODE = {name: i for i, name in enumerate(BEHAVIOURS)}
# Behaviours whose enrollment ends before the end of the data; the end_reason is the name.
ENDING_BEHAVIOURS = ("stopped", "deceased", "transferred")
# Share of enrollments in the eye-test activities (ODYSIGHT); the rest is split evenly.
EYE_ACTIVITY_SHARE = 0.40
ALD_SHARE = 0.35
PATIENTS_PER_OPERATOR = 120
# A transferred patient often continues with another exploitant or operator: a new enrollment.
TRANSFER_FOLLOW_UP_SHARE = 0.6
# Some stopped / transferred devices keep sending for a few days: transmissions with no enrollment.
POST_END_TAIL_SHARE = 0.2
# Share of deceased patients with a silent stretch of 1-6 weeks before death.
SILENT_BEFORE_DEATH_SHARE = 0.65
# The first enrollment file is a snapshot taken this many days before the end date.
SNAPSHOT_LEAD_DAYS = 28
RECORDED_HOUR = 18  # local hour at which an enrollment version is recorded (R7b recorded_at)

# --- prescriptions --------------------------------------------------------------------------------
NO_PRESCRIPTION_SHARE = 0.01
PRESCRIPTION_GAP_SHARE = 0.03
OVERLONG_PRESCRIPTION_SHARE = 0.01  # dirt only (R7 data-quality error)
OVERLONG_PRESCRIPTION_DAYS = 400
TRIAL_DAYS = (56, 92)  # PECAN trial, ODYSIGHT §IV.1.c: at most 3 months
PRESCRIPTION_DAYS = 365  # GUIDE §7: at most one year
# Initial prescriptions without a trial last 3, 6 or 12 months; renewals 6 or 12 months.
INITIAL_DAYS, INITIAL_SHARES = (90, 180, PRESCRIPTION_DAYS), (0.3, 0.3, 0.4)
RENEWAL_DAYS = (180, PRESCRIPTION_DAYS)
KINDS = ("trial", "initial", "renewal")

# --- usage ----------------------------------------------------------------------------------------
EYE_SESSIONS_PER_WEEK = 1.3  # eye-test activities: about one test per eye per week
BOTH_EYES_SHARE = 0.9
HOLIDAY_WEEK_SHARE = 0.03  # a week with almost no data, for anyone
DAYTIME = (7 * 60, 22 * 60)  # local minutes of the day when most sessions happen
EVENING_SHARE = 0.35  # patients whose usual session is in the evening rather than the morning
NEAR_MIDNIGHT_SHARE = 0.015  # sessions between 23:30 and 00:30 local time
LATE_ARRIVAL_SHARE = 0.02  # received 1-10 days after the measurement
MISSING_CALIBRATION_SHARE = 0.03
EXACT_BOUND_SHARE = 0.005  # distance exactly on a calibration bound

# --- dirt: share of transmission rows per kind (at least one row each when dirt=True) -------------
DIRT_SHARES: dict[str, float] = {
    "exact_duplicate_same_file": 0.003,
    "exact_duplicate_other_file": 0.002,
    "conflicting_duplicate": 0.001,
    "malformed_record": 0.001,
    "missing_field": 0.002,
    "timestamp_without_offset": 0.002,
    "unknown_activity": 0.001,
    "invalid_eye": 0.001,
    "bad_type": 0.001,
}
# Rare features (each dirt kind, a prescription gap, ...) appear at least once from this many items.
RARE_FEATURE_MIN_ITEMS = 10
ENROLLMENT_RESEND_SHARE = 0.01  # unchanged snapshot rows sent again in the update (duplicates)
END_BEFORE_START_ENROLLMENTS = 2
MISSING_FIELD_CHOICES = ("patient_id", "measure_type", "measured_at", "transmission_id")
UNKNOWN_ACTIVITY_CODES = ("SLEEP_APNEA", "TELEDERMATOLOGY", "UNKNOWN")
NAIVE_FORMAT = "%Y-%m-%dT%H:%M:%S"

# --- output ---------------------------------------------------------------------------------------
FORMAT_CYCLE = ("jsonl", "jsonl.gz", "csv", "parquet")
TEXT_FORMATS = ("jsonl", "jsonl.gz", "csv")
CHUNK_ENROLLMENTS = 20_000
WRITE_BATCH_DAYS = 16
EPOCH = date(1970, 1, 1)
DAY_SECONDS = 86_400

# Row-level fault codes carried until the files are written.
CLEAN, MALFORMED, MISSING, NAIVE, UNKNOWN_ACTIVITY, BAD_TYPE = range(6)
NO_EYE, OD, OS, BAD_EYE = range(4)
EYE_LABELS = {OD: "OD", OS: "OS", BAD_EYE: "XX"}


@dataclass(frozen=True)
class MeasureModel:
    """How often a measure type is sent and what its values look like."""

    prob: float = 0.8  # chance it is sent on a session day (per tested eye for eye tests)
    extra: float = 0.0  # mean number of further sends the same day (Poisson)
    every_days: int = 0  # > 0: sent once per cycle of that many days instead of per session
    mean: float | None = 1.0  # None: no value
    sd_patient: float = 0.1
    sd_day: float = 0.05
    low: float = 0.0
    high: float = 1e6
    decimals: int = 1
    unit: str | None = None
    per_day: int = 0  # > 0: a reading every 24 h / per_day all day long (continuous sensor)
    session_days: bool = False  # sent on the enrollment's dialysis days only (sessions_per_week)


# What each line's devices send, per monitoring profile ("LINE/profile"; "LINE" for the line
# without a profile): generator realism, not rules. A line or profile of the catalog not listed
# sends its counted measure types every day (and its other types now and then).
_GLUCOSE = {"mean": 1.45, "sd_patient": 0.3, "sd_day": 0.45, "low": 0.4, "high": 4.5}
_INSULIN = MeasureModel(0.9, 0.8, 0, 18, 8, 3, 1, 100, 0, "U")
_DIABETES = {
    # flash: scanned 1 + Poisson(4.5) times a day (a sixth of the days under the minimum of 4)
    "sensor": {
        "glucose_sensor": MeasureModel(0.97, 4.5, decimals=2, unit="g/L", **_GLUCOSE),
        "insulin_dose": _INSULIN,
    },
    "sensor_cgm": {  # a continuous sensor: a reading every 5 minutes
        "glucose_sensor": MeasureModel(0.97, per_day=288, decimals=2, unit="g/L", **_GLUCOSE),
        "insulin_dose": _INSULIN,
    },
    "capillary_one_injection": {
        "glucose_capillary": MeasureModel(0.95, 1.6, decimals=2, unit="g/L", **_GLUCOSE),
        "insulin_dose": MeasureModel(0.9, 0, 0, 22, 8, 3, 1, 100, 0, "U"),
    },
    "capillary_multi_injection": {
        "glucose_capillary": MeasureModel(0.95, 4.2, decimals=2, unit="g/L", **_GLUCOSE),
        "insulin_dose": MeasureModel(0.9, 2.5, 0, 8, 4, 2, 1, 60, 0, "U"),
    },
    "": {
        "glucose_capillary": MeasureModel(0.95, 3.0, decimals=2, unit="g/L", **_GLUCOSE),
        "insulin_dose": _INSULIN,
    },
}
_RESPIRATORY = {
    "ventilation_hours": MeasureModel(0.9, 0, 0, 6.5, 1.8, 1.2, 0, 14, 1, "h"),
    "oxygen_hours": MeasureModel(0.9, 0, 0, 14, 4, 2, 0, 24, 1, "h"),
    "spo2": MeasureModel(0.7, 0.5, 0, 93, 2.5, 1.5, 70, 100, 0, "%"),
}
_PRESSURE = MeasureModel(0.85, 0.2, 0, 132, 14, 8, 70, 230, 0, "mmHg")
_WEIGHT = MeasureModel(0.93, 0, 0, 78, 15, 0.6, 35, 200, 1, "kg")  # some days skipped
_CREATININE = MeasureModel(0.12, 0, 0, 300, 120, 30, 40, 1500, 0, "umol/L")
SEND_MODELS: dict[str, dict[str, MeasureModel]] = {
    "ODYSIGHT": {
        "visual_acuity": MeasureModel(1.0, 0.03, 0, 0.6, 0.2, 0.08, 0.05, 1.2, 2, "decimal"),
        "amsler_grid": MeasureModel(0.8, 0, 0, 0.3, 1.0, 0.5, 0, 20, 0, "distorted_areas"),
        "questionnaire": MeasureModel(1.0, 0, 28, 70, 12, 6, 0, 100, 0, "score"),
    },
    "HEART_FAILURE": {
        "weight": _WEIGHT,
        "blood_pressure": _PRESSURE,
        "heart_rate": MeasureModel(0.85, 0.2, 0, 72, 9, 6, 35, 180, 0, "bpm"),
        "symptoms": MeasureModel(0.3, 0, 0, 2, 1.5, 1, 0, 10, 0, "score"),
    },
    **{
        f"{line}/{p}": sent
        for line in ("DIABETES", "GESTATIONAL_DIABETES")
        for p, sent in _DIABETES.items()
        if p
    },
    "DIABETES": _DIABETES[""],
    "GESTATIONAL_DIABETES": _DIABETES[""],
    "RESPIRATORY_FAILURE/ventilation": {k: _RESPIRATORY[k] for k in ("ventilation_hours", "spo2")},
    "RESPIRATORY_FAILURE/oxygen": {k: _RESPIRATORY[k] for k in ("oxygen_hours", "spo2")},
    "RESPIRATORY_FAILURE": {k: _RESPIRATORY[k] for k in ("ventilation_hours", "spo2")},
    "RENAL_FAILURE/hemodialysis": {  # recorded at each session
        "dialysis_session": MeasureModel(
            0.97, 0, 0, 4.0, 0.3, 0.2, 2.5, 6, 1, "h", session_days=True
        ),
        "weight": MeasureModel(0.95, 1.0, 0, 72, 14, 0.8, 35, 200, 1, "kg", session_days=True),
        "blood_pressure": MeasureModel(
            0.9, 2.0, 0, 138, 16, 10, 70, 230, 0, "mmHg", session_days=True
        ),
    },
    "RENAL_FAILURE/peritoneal_dialysis": {
        "weight": _WEIGHT,
        "ultrafiltration": MeasureModel(0.9, 0, 0, 1200, 350, 250, 0, 4000, 0, "mL"),
        "blood_pressure": _PRESSURE,
    },
    **{
        f"RENAL_FAILURE/{p}": {"blood_pressure": _PRESSURE, "creatinine": _CREATININE}
        for p in ("transplant", "ckd_stage_4_5")
    },
    "RENAL_FAILURE": {"blood_pressure": _PRESSURE, "creatinine": _CREATININE},
    "CARDIAC_IMPLANT": {"device_report": MeasureModel(1.0, mean=None)},
}
# Share of each line's enrollments per monitoring profile (rules.md R3); '' sends none (the
# line's default counting row, a missing_monitoring_profile finding). A line not listed, or a
# profile of the catalog not listed, gets an equal share of what is left.
PROFILE_SHARES: dict[str, dict[str, float]] = {
    "DIABETES": {
        "sensor": 0.55,
        "capillary_one_injection": 0.12,
        "capillary_multi_injection": 0.28,
        "": 0.05,
    },
    "GESTATIONAL_DIABETES": {
        "capillary_multi_injection": 0.45,
        "capillary_one_injection": 0.25,
        "sensor": 0.25,
        "": 0.05,
    },
    "RESPIRATORY_FAILURE": {"ventilation": 0.5, "oxygen": 0.45, "": 0.05},
    "RENAL_FAILURE": {
        "hemodialysis": 0.45,
        "peritoneal_dialysis": 0.15,
        "transplant": 0.25,
        "ckd_stage_4_5": 0.1,
        "": 0.05,
    },
}
# Continuous glucose sensors: a variant of the `sensor` profile; its share of the enrollments
# of every line with a `sensor` profile is the generator's cgm_share (taken from the others).
CGM_VARIANT = "sensor_cgm"
CGM_PROFILE = "sensor"
DEFAULT_CGM_SHARE = 0.02
CGM_PARTIAL_DAY_SHARE = 0.1  # days the sensor is changed or lost for part of the day
# Hemodialysis: sessions a week, and the share of enrollments that send the field.
SESSIONS_PER_WEEK_SHARES = {2: 0.05, 3: 0.8, 4: 0.15}
SESSIONS_SENT_SHARE = 0.85
SESSIONS_PER_WEEK_DEFAULT = 3  # what a patient without the field does (rules.md R3 default)


def send_models(activity: str, profile: str) -> dict[str, MeasureModel] | None:
    """What a line's devices send under a profile (a generator variant such as CGM_VARIANT)."""
    return SEND_MODELS.get(f"{activity}/{profile}" if profile else activity)


@dataclass
class GenerationSummary:
    """What ``generate_landing`` wrote.

    ``transmissions`` counts the rows written, dirt included; ``files`` counts every file written
    (transmissions, enrollments, prescriptions). ``dirty_rows`` counts the transmission faults
    per kind plus the enrollment / prescription faults (``enrollment_duplicate``,
    ``enrollment_end_before_start``, ``prescription_too_long``). ``calibration_out_of_range``
    counts rows without any other fault (duplicate copies excluded) whose ``distance_cm`` or
    ``ambient_lux`` lies outside the catalog bounds: valid rows, invalid tests (R3).
    ``behaviours`` counts the enrollments per behaviour (transfer follow-ups are ``adherent``);
    ``profiles`` per ``LINE/profile`` drawn (``-``: none sent; ``sensor_cgm``: continuous sensor).
    """

    enrollments: int
    prescriptions: int
    transmissions: int
    files: int
    dirty_rows: dict[str, int]
    behaviours: dict[str, int] = field(default_factory=dict)
    profiles: dict[str, int] = field(default_factory=dict)


# ================================================================================================
# Entry point
# ================================================================================================


def generate_landing(
    out: Path,
    patients: int = 600,
    months: int = 12,
    seed: int = 42,
    end_date: date | None = None,
    formats: str = "mixed",
    dirt: bool = True,
    exploitants: int = 4,
    cgm_share: float = DEFAULT_CGM_SHARE,
) -> GenerationSummary:
    """Write a synthetic landing folder under ``out`` and say what was written.

    The data covers ``months`` calendar months up to ``end_date`` (default: today in Paris).
    ``formats`` is ``mixed`` (one format per exploitant: JSONL, gzipped JSONL, CSV, Parquet in
    turn) or one of ``jsonl``, ``jsonl.gz``, ``csv``, ``parquet`` for every transmission file.
    ``cgm_share`` is the share of the enrollments of lines with a ``sensor`` profile (diabetes)
    on a continuous sensor, 288 readings a day (at least one enrollment when above 0).
    """
    if patients < 1 or months < 1 or exploitants < 1:
        raise ValueError("patients, months and exploitants must be positive")
    if not 0 <= cgm_share <= 1:
        raise ValueError(f"cgm_share must be between 0 and 1, not {cgm_share}")
    if formats != "mixed" and formats not in FORMAT_CYCLE:
        raise ValueError(f"formats must be 'mixed' or one of {FORMAT_CYCLE}, not {formats!r}")
    out = Path(out)
    end_date = end_date or today_paris()
    rng = np.random.default_rng(seed)
    span = _Span(_minus_months(end_date, months), end_date)
    catalog = _Catalog.load(cgm_share)
    companies = _exploitants(exploitants, len(catalog.codes), formats)
    cohort = _cohort(rng, patients, span, catalog, companies)
    dirty: dict[str, int] = dict.fromkeys(DIRT_SHARES, 0)

    files, dirty["enrollment_duplicate"], dirty["enrollment_end_before_start"] = _write_enrollments(
        rng, cohort, span, catalog, out, dirt
    )
    prescriptions, dirty["prescription_too_long"] = _prescriptions(rng, cohort, span, catalog, dirt)
    files += _write_table(prescriptions, out / "prescriptions" / f"prescriptions_{end_date}.csv")

    rows = _transmissions(rng, cohort, span, catalog, dirt)
    rows, counts = _inject_dirt(rng, rows, span, catalog, companies, dirt)
    dirty.update(counts)
    files += _write_transmission_files(rows, cohort, catalog, companies, out)

    behaviour = cohort["behaviour"].to_numpy()
    variants = [f"{catalog.codes[p.activity]}/{p.variant or '-'}" for p in catalog.profiles]
    drawn = np.bincount(cohort["prof"].to_numpy(), minlength=len(variants))
    return GenerationSummary(
        enrollments=cohort.height,
        prescriptions=prescriptions.height,
        transmissions=rows.height,
        files=files,
        dirty_rows=dirty,
        behaviours={name: int((behaviour == i).sum()) for i, name in enumerate(BEHAVIOURS)},
        profiles={name: int(n) for name, n in zip(variants, drawn, strict=True) if n},
    )


# ================================================================================================
# Reference: time span, catalog, exploitants
# ================================================================================================


@dataclass(frozen=True)
class _Span:
    """The days covered by the data; day index 0 is ``start``, ``days - 1`` is ``end``."""

    start: date
    end: date

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    @property
    def epoch_day(self) -> int:
        """Days from 1970-01-01 to ``start``."""
        return (self.start - EPOCH).days

    def dates(self, index: np.ndarray, present: np.ndarray | None = None) -> pl.Series:
        """Day indexes as a Date series; null where ``present`` is False."""
        days = pl.Series(np.asarray(index, dtype=np.int64) + self.epoch_day).cast(pl.Date)
        return days if present is None else days.set(pl.Series(~present), None)


def _minus_months(day: date, months: int) -> date:
    """The same day of the month ``months`` earlier (clamped to the month's length)."""
    total = day.year * 12 + day.month - 1 - months
    year, month = divmod(total, 12)
    following = date(year + (month + 1) // 12, (month + 1) % 12 + 1, 1)
    return date(year, month + 1, min(day.day, (following - timedelta(days=1)).day))


@dataclass(frozen=True)
class _Profile:
    """A monitoring profile as the generator draws it: its line, the profile written in the
    enrollment ('' none), the variant whose send models it uses, its share of the line."""

    activity: int
    written: str
    variant: str
    share: float


@dataclass(frozen=True)
class _Catalog:
    """The catalog as arrays indexed by activity, by profile and by send entry (one per profile
    and measure type its devices send)."""

    codes: tuple[str, ...]
    eye_unit: np.ndarray  # bool per activity: counted by eye-test days (weekly sessions)
    has_trial: np.ndarray  # bool per activity: PECAN tier, starts with a trial prescription
    distance: np.ndarray  # (activities, 2) calibration bounds, NaN when none
    lux: np.ndarray  # (activities, 2)
    profiles: tuple[_Profile, ...]
    measure_types: tuple[str, ...]  # one entry per (profile, measure type) sent
    measure_profile: np.ndarray  # profile index per send entry
    needs_eye: np.ndarray  # bool per send entry
    counted: np.ndarray  # bool per send entry: the profile's counting rule counts it
    models: tuple[MeasureModel, ...]
    order: np.ndarray  # rank of each send entry within its profile

    @classmethod
    def load(cls, cgm_share: float = DEFAULT_CGM_SHARE) -> _Catalog:
        activities = load_activities()
        rules = load_counting_rules(activities=activities)
        codes = tuple(activities["activity_code"])
        measures = activity_measures(activities, rules)
        eye_types = set(measures.filter("needs_eye")["measure_type"])
        counted = counting_measures(rules)
        profiles = _profiles(codes, rules, cgm_share)
        entries = []  # (profile index, measure type, counted, model)
        for g, profile in enumerate(profiles):
            code = codes[profile.activity]
            rule = (pl.col("activity_code") == code) & (
                pl.col("monitoring_profile") == _rule_profile(rules, code, profile.written)
            )
            counts = set(counted.filter(rule)["measure_type"])
            sent = send_models(code, profile.variant)
            if sent is None:  # a line or profile new to the generator: its types, plainly
                types = measures.filter(pl.col("activity_code") == code)["measure_type"]
                sent = {m: MeasureModel(prob=0.8 if m in counts else 0.2) for m in types}
            entries += [(g, m, m in counts, model) for m, model in sent.items()]

        def bounds(low: str, high: str) -> np.ndarray:
            return activities.select(low, high).fill_null(float("nan")).to_numpy()

        profile_of = np.array([g for g, *_ in entries], dtype=np.int64)
        default_grain = rules.filter(pl.col("monitoring_profile") == DEFAULT_PROFILE)
        grain = dict(zip(default_grain["activity_code"], default_grain["grain"], strict=True))
        return cls(
            codes=codes,
            eye_unit=np.array([grain[c] == "eye_day" for c in codes]),
            has_trial=(activities["tier"] == "pecan").fill_null(False).to_numpy(),
            distance=bounds("distance_min_cm", "distance_max_cm"),
            lux=bounds("lux_min", "lux_max"),
            profiles=profiles,
            measure_types=tuple(m for _, m, _, _ in entries),
            measure_profile=profile_of,
            needs_eye=np.array([m in eye_types for _, m, _, _ in entries], dtype=bool),
            counted=np.array([c for *_, c, _ in entries], dtype=bool),
            models=tuple(model for *_, model in entries),
            order=np.array([(profile_of[:i] == g).sum() for i, g in enumerate(profile_of)]),
        )

    @property
    def unknown_codes(self) -> tuple[str, ...]:
        """Activity codes for the ``unknown_activity`` dirt: never a catalog code."""
        return tuple(f"{code}_X" if code in self.codes else code for code in UNKNOWN_ACTIVITY_CODES)

    def model_array(self, name: str, missing: float = np.nan) -> np.ndarray:
        """One model attribute per send entry, as floats."""
        values = [getattr(model, name) for model in self.models]
        return np.array([missing if v is None else v for v in values], dtype=np.float64)

    @property
    def profile_activity(self) -> np.ndarray:
        return np.array([p.activity for p in self.profiles], dtype=np.int64)


def _rule_profile(rules: pl.DataFrame, code: str, written: str) -> str:
    """The counting rule a written profile falls under: itself, or the line's default row."""
    known = rules.filter(pl.col("activity_code") == code)["monitoring_profile"]
    return written if written in set(known) else DEFAULT_PROFILE


def _profiles(codes: Sequence[str], rules: pl.DataFrame, cgm_share: float) -> tuple[_Profile, ...]:
    """Every (line, profile) the generator draws, with its share of the line's enrollments."""
    profiles = []
    for a, code in enumerate(codes):
        written = rules.filter(pl.col("activity_code") == code)["monitoring_profile"].to_list()
        if written != [DEFAULT_PROFILE]:  # a line with profiles: shares per profile
            shares = PROFILE_SHARES.get(code, {})
            left = max(0.0, 1 - sum(shares.get(p, 0) for p in written))
            unlisted = [p for p in written if p not in shares]
            share = {p: shares.get(p, left / max(len(unlisted), 1)) for p in written}
        else:
            share = {DEFAULT_PROFILE: 1.0}
        for p, value in share.items():
            if p == CGM_PROFILE and cgm_share > 0:  # a share of the line on continuous sensors
                profiles.append(_Profile(a, p, CGM_VARIANT, cgm_share))
                value = max(0.0, value - cgm_share)
            profiles.append(_Profile(a, p, p, value))
    return tuple(profiles)


@dataclass(frozen=True)
class _Exploitant:
    code: str
    activities: tuple[int, ...]
    fmt: str
    utc: bool  # writes timestamps in UTC (``Z``) rather than the Paris offset


def _exploitants(count: int, n_activities: int, formats: str) -> list[_Exploitant]:
    """Activity i is run by exploitant i mod count, so every activity has one (1-3 each at 4)."""
    runs = [
        sorted({a for a in range(n_activities) if a % count == j} | {j % n_activities})
        for j in range(count)
    ]
    return [
        _Exploitant(
            code=f"EXP{j + 1:02d}",
            activities=tuple(runs[j]),
            fmt=FORMAT_CYCLE[j % len(FORMAT_CYCLE)] if formats == "mixed" else formats,
            utc=j % 2 == 1,
        )
        for j in range(count)
    ]


# ================================================================================================
# Cohort: one row per enrollment, with its behaviour parameters
# ================================================================================================


def _allocate(shares: Sequence[float], n: int) -> np.ndarray:
    """Counts per category summing to ``n``, close to the shares, each >= 1 when n allows."""
    shares = np.asarray(shares, dtype=float) / np.sum(shares)
    raw = shares * n
    counts = np.floor(raw).astype(np.int64)
    if n >= len(shares):
        counts = np.maximum(counts, 1)
    short = n - counts.sum()
    if short > 0:
        counts[np.argsort(counts - raw, kind="stable")[:short]] += 1
    for i in np.argsort(-counts, kind="stable")[: max(0, -short)]:
        counts[i] -= 1
    return counts


def _shuffled_labels(rng: np.random.Generator, shares: Sequence[float], n: int) -> np.ndarray:
    """``n`` category indexes in random order, in the proportions of ``shares``."""
    counts = _allocate(shares, n)
    return rng.permutation(np.repeat(np.arange(len(counts)), counts))


def _pick(rng: np.random.Generator, eligible: np.ndarray, count: int) -> np.ndarray:
    """Up to ``count`` distinct eligible positions, sorted."""
    candidates = np.flatnonzero(eligible)
    count = min(count, len(candidates))
    return np.sort(rng.choice(candidates, count, replace=False)) if count else candidates[:0]


def _quota(share: float, n: int, enabled: bool = True) -> int:
    """How many of ``n`` items get a rare feature: the share, and at least one once there are
    ``RARE_FEATURE_MIN_ITEMS`` items (so that small runs show every case); none if disabled."""
    if not enabled:
        return 0
    return max(1, round(share * n)) if n >= RARE_FEATURE_MIN_ITEMS else round(share * n)


def _cohort(
    rng: np.random.Generator,
    patients: int,
    span: _Span,
    catalog: _Catalog,
    companies: list[_Exploitant],
) -> pl.DataFrame:
    """One row per enrollment (ids, dates as day indexes, behaviour parameters)."""
    code = BEHAVIOUR_CODE
    behaviour = _shuffled_labels(rng, list(BEHAVIOUR_SHARES.values()), patients)
    eye = catalog.eye_unit
    activity_shares = np.where(
        eye, EYE_ACTIVITY_SHARE / max(eye.sum(), 1), (1 - EYE_ACTIVITY_SHARE) / max((~eye).sum(), 1)
    )
    act = _shuffled_labels(rng, activity_shares, patients)
    exp = _choose_exploitant(rng, act, companies, len(catalog.codes))
    last = span.days - 1
    # enrollments that must end or go silent start in the first 70 % of the span
    ending = np.isin(behaviour, [code[b] for b in (*ENDING_BEHAVIOURS, "dropout")])
    start = np.floor(rng.random(patients) ** 1.6 * np.where(ending, 0.7, 1.0) * last)
    start = start.astype(np.int64)
    length = np.maximum(14, np.round(rng.uniform(0.25, 0.95, patients) * (last - 1 - start)))
    end = np.where(
        np.isin(behaviour, [code[b] for b in ENDING_BEHAVIOURS]),
        np.clip(start + length, start, last - 1),
        -1,
    ).astype(np.int64)
    ops, pool_start, pool_size = _operators(rng, act, len(catalog.codes))
    patient = rng.permutation(patients)
    prof, sessions = _monitoring_profiles(rng, act, catalog)
    core = {
        "patient": patient,
        "act": act,
        "prof": prof,
        "sessions": sessions,
        "exp": exp,
        "op": ops,
        "behaviour": behaviour,
        "start": start,
        "end": end,
        "follow_up": np.zeros(patients, bool),
    }
    core = _add_follow_ups(rng, core, span, companies, pool_start, pool_size, code["transferred"])
    return _behaviour_parameters(rng, core, span, companies, catalog)


def _monitoring_profiles(
    rng: np.random.Generator, act: np.ndarray, catalog: _Catalog
) -> tuple[np.ndarray, np.ndarray]:
    """Per enrollment, its profile (index into catalog.profiles) drawn in the shares of its line,
    and the hemodialysis sessions a week it sends (0: not sent)."""
    prof = np.zeros(len(act), np.int64)
    owners = catalog.profile_activity
    for a in np.unique(act):
        rows = np.flatnonzero(act == a)
        choices = np.flatnonzero(owners == a)
        shares = [catalog.profiles[g].share for g in choices]
        prof[rows] = choices[_shuffled_labels(rng, shares, len(rows))]
    options = np.array(list(SESSIONS_PER_WEEK_SHARES))
    weights = np.array(list(SESSIONS_PER_WEEK_SHARES.values()))
    sessions = options[_shuffled_labels(rng, weights, len(act))]
    sent = rng.random(len(act)) < SESSIONS_SENT_SHARE
    dialysis = np.array([p.written == "hemodialysis" for p in catalog.profiles])[prof]
    return prof, np.where(dialysis & sent, sessions, 0)


def _runners(companies: list[_Exploitant], n_activities: int) -> list[list[int]]:
    """The exploitants running each activity."""
    return [[j for j, c in enumerate(companies) if a in c.activities] for a in range(n_activities)]


def _choose_exploitant(
    rng: np.random.Generator, act: np.ndarray, companies: list[_Exploitant], n_activities: int
) -> np.ndarray:
    """For each enrollment, one of the exploitants running its activity, uniformly."""
    runners = _runners(companies, n_activities)
    width = max(len(r) for r in runners)
    table = np.array([r + [r[0]] * (width - len(r)) for r in runners])
    count = np.array([len(r) for r in runners])
    return table[act, np.floor(rng.random(len(act)) * count[act]).astype(np.int64)]


def _next_runner(companies: list[_Exploitant], n_activities: int) -> np.ndarray:
    """(activity, exploitant) -> the next exploitant running that activity (itself if alone)."""
    table = np.zeros((n_activities, len(companies)), np.int64)
    for a, runners in enumerate(_runners(companies, n_activities)):
        for i, j in enumerate(runners):
            table[a, j] = runners[(i + 1) % len(runners)]
    return table


def _operators(
    rng: np.random.Generator, act: np.ndarray, n_activities: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """An operator per enrollment from a pool per activity (specialty); pool starts and sizes."""
    size = np.maximum(1, np.ceil(np.bincount(act, minlength=n_activities) / PATIENTS_PER_OPERATOR))
    size = size.astype(np.int64)
    first = np.concatenate([[0], np.cumsum(size)[:-1]])
    return first[act] + np.floor(rng.random(len(act)) * size[act]).astype(np.int64), first, size


def _add_follow_ups(
    rng: np.random.Generator,
    core: dict[str, np.ndarray],
    span: _Span,
    companies: list[_Exploitant],
    pool_start: np.ndarray,
    pool_size: np.ndarray,
    transferred: int,
) -> dict[str, np.ndarray]:
    """A new enrollment after some transfers: another exploitant of the activity if there is
    one, else the same with another operator; the patient is adherent there."""
    gap = rng.integers(1, 11, len(core["act"]))
    new_start = core["end"] + gap
    chosen = (
        (core["behaviour"] == transferred)
        & (rng.random(len(gap)) < TRANSFER_FOLLOW_UP_SHARE)
        & (new_start < span.days - 1)
    )
    act = core["act"][chosen]
    exp = _next_runner(companies, len(pool_size))[act, core["exp"][chosen]]
    local_op = core["op"][chosen] - pool_start[act]
    extra = {
        "patient": core["patient"][chosen],
        "act": act,
        "prof": core["prof"][chosen],  # the same patient, monitored the same way
        "sessions": core["sessions"][chosen],
        "exp": exp,
        "op": pool_start[act] + (local_op + 1) % pool_size[act],
        "behaviour": np.zeros(len(act), np.int64),  # adherent
        "start": new_start[chosen],
        "end": np.full(len(act), -1, np.int64),
        "follow_up": np.ones(len(act), bool),
    }
    return {name: np.concatenate([core[name], extra[name]]) for name in core}


def _behaviour_parameters(
    rng: np.random.Generator,
    core: dict[str, np.ndarray],
    span: _Span,
    companies: list[_Exploitant],
    catalog: _Catalog,
) -> pl.DataFrame:
    """Ids, ALD, data window and the per-enrollment parameters of each behaviour."""
    n = len(core["act"])
    code = BEHAVIOUR_CODE
    behaviour, start, end = core["behaviour"], core["start"], core["end"]
    last = span.days - 1
    ended = end >= 0
    tail = np.where(
        np.isin(behaviour, [code["stopped"], code["transferred"]])
        & (rng.random(n) < POST_END_TAIL_SHARE),
        rng.integers(1, 6, n),
        0,
    )
    data_end = np.where(ended, np.minimum(end + tail, last), last)
    length = data_end - start + 1
    gap = np.where(
        rng.random(n) < SILENT_BEFORE_DEATH_SHARE, rng.integers(7, 46, n), rng.integers(0, 4, n)
    )
    silent_from = np.select(
        [behaviour == code["dropout"], behaviour == code["deceased"]],
        [np.floor(rng.uniform(0.2, 0.8, n) * length), np.maximum(0, end - start + 1 - gap)],
        length,
    ).astype(np.int64)
    on_weeks = rng.integers(2, 6, n)
    off_weeks = rng.integers(1, 5, n)
    order = np.lexsort((np.arange(n), start))  # enrollment ids follow the start dates
    columns = {
        "patient_id": _ids("P", core["patient"] + 1, 6),
        "activity_code": np.array(catalog.codes)[core["act"]],
        "exploitant_id": np.array([c.code for c in companies])[core["exp"]],
        "operator_id": _ids("OP", core["op"] + 1, 4),
        "ald": rng.random(n) < ALD_SHARE,
        "behaviour_name": np.array(BEHAVIOURS)[behaviour],  # the end_reason once ended
        **core,
        "data_end": data_end,
        "silent_from": silent_from,
        "level": rng.beta(9, 1.5, n),
        "decline_days": rng.uniform(60, 240, n),
        "on_weeks": on_weeks,
        "off_weeks": off_weeks,
        "phase": rng.integers(0, on_weeks + off_weeks),
        "weak_days": rng.integers(30, 46, n),
        "minute": np.where(  # usual time of day: morning people and evening people
            rng.random(n) < EVENING_SHARE, rng.normal(19 * 60, 90, n), rng.normal(9 * 60, 75, n)
        ),
        "cycle_phase": rng.integers(0, 28, n),
    }
    cohort = pl.DataFrame({name: values[order] for name, values in columns.items()})
    return cohort.with_columns(enrollment_id=_ids("E", np.arange(1, n + 1), 7))


# ================================================================================================
# Enrollments and prescriptions
# ================================================================================================


def _enrollment_frame(
    cohort: pl.DataFrame, span: _Span, catalog: _Catalog, end: np.ndarray, ended: np.ndarray
) -> pl.DataFrame:
    """Contract columns of the enrollments, ending on ``end`` (day index) where ``ended``. Each
    version is recorded (R7b ``recorded_at``) at 18:00 Paris on the day its last fact happened:
    the start, or the end (an end before the start, a data error, is recorded on the start)."""
    start = cohort["start"].to_numpy()
    recorded = pl.Series(np.where(ended, np.maximum(end, start), start))
    return cohort.select(
        "enrollment_id",
        "patient_id",
        "activity_code",
        "exploitant_id",
        "operator_id",
        start_date=span.dates(cohort["start"].to_numpy()),
        end_date=span.dates(end, ended),
        end_reason=pl.when(pl.Series(ended)).then(pl.col("behaviour_name")),
        ald="ald",
        monitoring_profile=pl.Series(
            [p.written or None for p in catalog.profiles], dtype=pl.String
        ).gather(cohort["prof"]),
        sessions_per_week=pl.when(pl.col("sessions") > 0).then(pl.col("sessions")),
        recorded_at=_paris_text(span.dates(recorded.to_numpy()), RECORDED_HOUR),
    ).select(ENROLLMENT_FIELDS)


def _paris_text(days: pl.Series, hour: int) -> pl.Series:
    """Dates at ``hour``:00 Paris, as ISO-8601 text with their offset."""
    moments = days.cast(pl.Datetime("us")) + pl.duration(hours=hour)
    return pl.select(
        moments.dt.replace_time_zone(LOCAL_TIMEZONE).dt.strftime(NAIVE_FORMAT + "%:z")
    ).to_series()


def _write_enrollments(
    rng: np.random.Generator,
    cohort: pl.DataFrame,
    span: _Span,
    catalog: _Catalog,
    out: Path,
    dirt: bool,
) -> tuple[int, int, int]:
    """The snapshot (every enrollment started by its date, all open) and the later update
    (ended enrollments, new ones, and with dirt a few unchanged re-sends and ends before
    starts). Returns (files, re-sent duplicates, ends before start)."""
    start = cohort["start"].to_numpy()
    end = cohort["end"].to_numpy()
    snapshot_day = max(0, span.days - 1 - SNAPSHOT_LEAD_DAYS)
    in_snapshot = start <= snapshot_day
    ended = end >= 0
    snapshot = _enrollment_frame(cohort, span, catalog, end, np.zeros_like(ended)).filter(
        pl.Series(in_snapshot)
    )
    snapshot_date = span.start + timedelta(days=snapshot_day)
    files = _write_table(snapshot, out / "enrollments" / f"enrollments_{snapshot_date}.csv")

    resend = _pick(
        rng, in_snapshot & (end < 0), _quota(ENROLLMENT_RESEND_SHARE, cohort.height, dirt)
    )
    stopped = cohort["behaviour_name"].to_numpy() == "stopped"
    backwards = _pick(rng, stopped, END_BEFORE_START_ENROLLMENTS if dirt else 0)
    end = end.copy()
    end[backwards] = start[backwards] - rng.integers(1, 31, len(backwards))
    in_update = ended | ~in_snapshot
    in_update[resend] = True
    update = _enrollment_frame(cohort, span, catalog, end, ended).filter(pl.Series(in_update))
    files += _write_table(
        update, out / "enrollments" / f"update_{span.end}" / "enrollments.parquet"
    )
    return files, len(resend), len(backwards)


def _prescriptions(
    rng: np.random.Generator, cohort: pl.DataFrame, span: _Span, catalog: _Catalog, dirt: bool
) -> tuple[pl.DataFrame, int]:
    """Prescription chains per enrollment (trial, initial, renewals) up to its end; returns the
    rows and the number of over-long prescriptions written."""
    n = cohort.height
    act = cohort["act"].to_numpy()
    trial = catalog.has_trial[act]
    start = cohort["start"].to_numpy()
    end = cohort["end"].to_numpy()
    cover_end = np.where(end >= 0, end, span.days - 1)
    slots = 2 + span.days // 90
    kind = np.full((n, slots), KINDS.index("renewal"))
    kind[:, 0] = np.where(trial, KINDS.index("trial"), KINDS.index("initial"))
    kind[:, 1] = np.where(trial, KINDS.index("initial"), KINDS.index("renewal"))
    initial = np.where(trial, PRESCRIPTION_DAYS, rng.choice(INITIAL_DAYS, n, p=INITIAL_SHARES))
    renewal = rng.choice(RENEWAL_DAYS, (n, slots))
    days = np.select(
        [kind == KINDS.index("trial"), kind == KINDS.index("initial")],
        [rng.integers(TRIAL_DAYS[0], TRIAL_DAYS[1] + 1, n)[:, None], initial[:, None]],
        renewal,
    )
    gaps = np.zeros((n, slots), np.int64)
    length = cover_end - start + 1
    chained = _pick(rng, length > days[:, 0] + 1, _quota(PRESCRIPTION_GAP_SHARE, n))
    gaps[chained, 1] = rng.integers(3, 41, len(chained))
    initial_slot = np.where(trial, 1, 0)
    has_initial = length > np.where(trial, days[:, 0], 0)
    overlong = _pick(rng, has_initial, _quota(OVERLONG_PRESCRIPTION_SHARE, n, dirt))
    days[overlong, initial_slot[overlong]] = OVERLONG_PRESCRIPTION_DAYS
    unprescribed = np.zeros(n, bool)
    unprescribed[_pick(rng, np.ones(n, bool), _quota(NO_PRESCRIPTION_SHARE, n))] = True

    valid_from = start[:, None] + np.cumsum(days, axis=1) - days + np.cumsum(gaps, axis=1)
    keep = (valid_from <= cover_end[:, None]) & ~unprescribed[:, None]
    row, slot = np.nonzero(keep)
    order = np.lexsort((slot, row, valid_from[row, slot]))
    row, slot = row[order], slot[order]
    frame = pl.DataFrame(
        {
            "prescription_id": _ids("RX", np.arange(1, len(row) + 1), 8),
            "enrollment_id": cohort["enrollment_id"].gather(row),
            "kind": np.array(KINDS)[kind[row, slot]],
            "valid_from": span.dates(valid_from[row, slot]),
            "valid_until": span.dates(valid_from[row, slot] + days[row, slot] - 1),
            "recorded_at": pl.Series([None] * len(row), dtype=pl.String),  # optional (R7b)
        }
    ).select(PRESCRIPTION_FIELDS)
    return frame, int(keep[overlong, initial_slot[overlong]].sum())


def _ids(prefix: str, numbers: np.ndarray, width: int) -> np.ndarray:
    """Ids ``<prefix><number>``, the number zero-padded to at least ``width`` digits."""
    digits = pl.Series(numbers, dtype=pl.Int64).cast(pl.String).str.zfill(width)
    return (prefix + digits).to_numpy()


def _write_table(frame: pl.DataFrame, path: Path) -> int:
    """Write an enrollment / prescription table as CSV or Parquet (by extension); 1 file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".parquet":
        frame.write_parquet(path)
    else:
        frame.write_csv(path)
    return 1


# ================================================================================================
# Transmissions: simulation over enrollment-days
# ================================================================================================


def _repeat_index(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For items repeated ``counts`` times: the item of each copy and its rank (0, 1, ...)."""
    owner = np.repeat(np.arange(len(counts)), counts)
    rank = np.arange(len(owner)) - np.repeat(np.cumsum(counts) - counts, counts)
    return owner, rank


def _transmissions(
    rng: np.random.Generator,
    cohort: pl.DataFrame,
    span: _Span,
    catalog: _Catalog,
    dirt: bool,
) -> pl.DataFrame:
    """Every transmission received by the end date, compact (indexes and numbers), with its
    arrival day (``file_day``, days since 1970 in Paris) and its number per exploitant."""
    parts = [
        _simulate_chunk(rng, cohort.slice(first, CHUNK_ENROLLMENTS), first, span, catalog, dirt)
        for first in range(0, cohort.height, CHUNK_ENROLLMENTS)
    ]
    rows = pl.concat(parts, rechunk=False)
    del parts
    # numbered per exploitant in order of measurement
    order = _stable_order(rows["exp"].to_numpy(), rows["measured"].to_numpy())
    exp = rows["exp"].to_numpy()[order]
    seq = np.empty(len(order), np.uint32)
    seq[order] = np.arange(len(order)) - np.searchsorted(exp, exp) + 1
    return rows.with_columns(seq=pl.Series(seq))


def _stable_order(major: np.ndarray, minor: np.ndarray) -> np.ndarray:
    """Positions sorting by (major, minor), ties kept in row order: one stable sort of a packed
    int64 key (much faster than a multi-column sort of the whole frame)."""
    if not len(major):
        return np.zeros(0, np.int64)
    major = major.astype(np.int64) - major.min()
    minor = minor.astype(np.int64) - minor.min()
    shift = int(minor.max()).bit_length()
    if int(major.max()).bit_length() + shift > 62:
        raise ValueError("sort keys too wide to pack")
    return np.argsort((major << shift) | minor, kind="stable")


def _simulate_chunk(
    rng: np.random.Generator,
    chunk: pl.DataFrame,
    offset: int,
    span: _Span,
    catalog: _Catalog,
    dirt: bool,
) -> pl.DataFrame:
    """The transmissions of a chunk of enrollments (``offset``: index of its first row) that
    arrive by the end date."""
    c = {name: chunk[name].to_numpy() for name in chunk.columns if chunk[name].dtype.is_numeric()}
    e, d = _repeat_index(c["data_end"] - c["start"] + 1)  # one entry per enrollment-day
    p = _intensity(rng, c, e, d)
    day_row, measure, eye, rank = _sends(rng, c, e, d, p, catalog)
    enrollment = e[day_row]
    measured = _measured_at(rng, c, e, d, day_row, measure, eye, rank, span, catalog)
    distance, lux = _calibration(rng, c["act"][enrollment], measure, catalog, dirt)
    received = pl.from_epoch("received", "s").dt.replace_time_zone("UTC")
    arrival = received.dt.convert_time_zone(LOCAL_TIMEZONE).dt.date().cast(pl.Int32)
    frame = pl.DataFrame(
        {
            "enr": (enrollment + offset).astype(np.uint32),
            "act": c["act"][enrollment].astype(np.uint16),
            "exp": c["exp"][enrollment].astype(np.uint16),
            "mt": measure.astype(np.uint16),
            "eye": eye.astype(np.uint8),
            "measured": measured,
            "received": _received_at(rng, measured),
            "value": pl.Series(
                _values(rng, enrollment, measure, eye, catalog, len(chunk)), nan_to_null=True
            ),
            "distance": pl.Series(distance, nan_to_null=True),
            "lux": pl.Series(lux, nan_to_null=True),
        }
    )
    return frame.with_columns(file_day=arrival).filter(
        pl.col("file_day") <= (span.end - EPOCH).days
    )


def _intensity(
    rng: np.random.Generator, c: Mapping[str, np.ndarray], e: np.ndarray, d: np.ndarray
) -> np.ndarray:
    """Per enrollment-day, how engaged the patient is (0..1), from the behaviour."""
    code = BEHAVIOUR_CODE
    behaviour = c["behaviour"][e]
    week = d // 7
    cycle = c["on_weeks"][e] + c["off_weeks"][e]
    off = (week + c["phase"][e]) % cycle >= c["on_weeks"][e]
    holiday = rng.random((len(c["start"]), int(week.max(initial=0)) + 1)) < HOLIDAY_WEEK_SHARE
    factors = (
        np.where(behaviour == code["declining"], np.clip(1 - d / c["decline_days"][e], 0.05, 1), 1),
        np.where((behaviour == code["intermittent"]) & off, 0.03, 1),
        np.where((behaviour == code["late_starter"]) & (d < c["weak_days"][e]), 0.15, 1),
        np.where(behaviour == code["stopped"], 0.8, 1),
        np.where(holiday[e, week], 0.1, 1),
        d < c["silent_from"][e],  # dropped out, or silent before death
    )
    p = c["level"][e]
    for factor in factors:
        p = p * factor
    return p


def _sends(
    rng: np.random.Generator,
    c: Mapping[str, np.ndarray],
    e: np.ndarray,
    d: np.ndarray,
    p: np.ndarray,
    catalog: _Catalog,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Which measures are sent on which enrollment-day: (day row, send entry, eye, rank of
    the send among the same measure and eye that day)."""
    profile = c["prof"][e]
    # hemodialysis: sessions on fixed days of the week, spread over it (3: days 0, 3, 5)
    weekday = (c["start"][e] + d + c["cycle_phase"][e]) % 7
    per_week = np.where(c["sessions"][e] > 0, c["sessions"][e], SESSIONS_PER_WEEK_DEFAULT)
    session_day = (weekday * per_week) // 7 != ((weekday - 1) * per_week) // 7
    parts = []
    for g in np.unique(profile):
        days = np.flatnonzero(profile == g)
        rate = EYE_SESSIONS_PER_WEEK / 7 if catalog.eye_unit[catalog.profiles[g].activity] else 1.0
        sessions = days[rng.random(len(days)) < p[days] * rate]
        both = rng.random(len(sessions)) < BOTH_EYES_SHARE
        right = both | (rng.random(len(sessions)) < 0.5)
        tested = {OD: sessions[right], OS: sessions[both | ~right]}
        for m in np.flatnonzero(catalog.measure_profile == g):
            model = catalog.models[m]
            if model.every_days:
                due = days[(d[days] + c["cycle_phase"][e[days]]) % model.every_days == 0]
                candidates = [(due, NO_EYE, p[due] * model.prob)]
            elif model.session_days:
                due = days[session_day[days]]
                candidates = [(due, NO_EYE, p[due] * model.prob)]
            elif catalog.needs_eye[m]:
                candidates = [(rows, eye, model.prob) for eye, rows in tested.items()]
            else:
                candidates = [(sessions, NO_EYE, model.prob)]
            for rows, eye, prob in candidates:
                sent = rows[rng.random(len(rows)) < prob]
                if model.per_day:  # a continuous sensor: all day, some days only in part
                    partial = rng.random(len(sent)) < CGM_PARTIAL_DAY_SHARE
                    counts = np.where(
                        partial, rng.integers(1, model.per_day, len(sent)), model.per_day
                    )
                else:
                    counts = 1 + rng.poisson(model.extra, len(sent))
                owner, rank = _repeat_index(counts)
                parts.append((sent[owner], np.full(len(owner), m), np.full(len(owner), eye), rank))
    if not parts:
        return tuple(np.zeros(0, np.int64) for _ in range(4))
    return tuple(np.concatenate(column) for column in zip(*parts, strict=True))


def _measured_at(
    rng: np.random.Generator,
    c: Mapping[str, np.ndarray],
    e: np.ndarray,
    d: np.ndarray,
    day_row: np.ndarray,
    measure: np.ndarray,
    eye: np.ndarray,
    rank: np.ndarray,
    span: _Span,
    catalog: _Catalog,
) -> np.ndarray:
    """UTC epoch seconds of each send. A day's sends follow the session time (the patient's
    usual hour, a few near midnight local time); further sends of an eye test come minutes
    later, further sends of a daily measure at another hour of the day. A continuous sensor's
    readings are evenly spaced from the local midnight on."""
    n_days, n = len(d), len(day_row)
    session = c["minute"][e] + rng.normal(0, 45, n_days)
    daytime = rng.uniform(DAYTIME[0], DAYTIME[1], n_days)
    session = np.where((session < DAYTIME[0]) | (session > DAYTIME[1]), daytime, session)
    midnight = rng.uniform(23.5 * 60, 24.5 * 60, n_days)
    session = np.where(rng.random(n_days) < NEAR_MIDNIGHT_SHARE, midnight, session)
    minute = session[day_row] + 3 * catalog.order[measure] + 2 * (eye == OS) + rng.random(n)
    again = np.where(
        catalog.needs_eye[measure],
        minute + rank * rng.uniform(2, 8, n),
        rng.uniform(DAYTIME[0], DAYTIME[1], n),
    )
    minute = np.where(rank > 0, again, minute)
    day = span.epoch_day + c["start"][e[day_row]] + d[day_row]
    per_day = catalog.model_array("per_day", 0)[measure]
    continuous = per_day > 0
    step = DAY_SECONDS / np.where(continuous, per_day, 1)
    since_midnight = np.floor((rank + rng.random(n)) * step).astype(np.int64)
    wall = np.where(continuous, 0, np.floor(minute * 60).astype(np.int64))
    return _paris_to_utc(day * DAY_SECONDS + wall) + np.where(continuous, since_midnight, 0)


def _paris_to_utc(local_seconds: np.ndarray) -> np.ndarray:
    """Paris wall-clock epoch seconds to UTC epoch seconds (DST-aware; never 02:00-03:00)."""
    wall = pl.from_epoch(pl.Series(local_seconds, dtype=pl.Int64), "s")
    utc = wall.dt.replace_time_zone(LOCAL_TIMEZONE, ambiguous="earliest", non_existent="raise")
    return utc.dt.epoch("s").to_numpy()


def _received_at(rng: np.random.Generator, measured: np.ndarray) -> np.ndarray:
    """Server reception: minutes after the measurement, 1-10 days for late arrivals."""
    n = len(measured)
    delay = np.clip(np.exp(rng.normal(np.log(120), 1.0, n)), 5, 6 * 3600).astype(np.int64)
    late = rng.random(n) < LATE_ARRIVAL_SHARE
    lateness = rng.integers(1, 11, n) * DAY_SECONDS + rng.integers(0, DAY_SECONDS, n)
    return measured + delay + np.where(late, lateness, 0)


def _values(
    rng: np.random.Generator,
    enrollment: np.ndarray,
    measure: np.ndarray,
    eye: np.ndarray,
    catalog: _Catalog,
    n_enrollments: int,
) -> np.ndarray:
    """Values around a per-patient (and per-eye) baseline, clipped and rounded; NaN: none."""
    baseline = rng.standard_normal((n_enrollments, len(catalog.models), 3))
    mean = catalog.model_array("mean")[measure]
    value = (
        mean
        + catalog.model_array("sd_patient")[measure] * baseline[enrollment, measure, eye]
        + catalog.model_array("sd_day")[measure] * rng.standard_normal(len(measure))
    )
    value = np.clip(
        value, catalog.model_array("low")[measure], catalog.model_array("high")[measure]
    )
    scale = 10.0 ** catalog.model_array("decimals")[measure]
    return np.round(value * scale) / scale


def _calibration(
    rng: np.random.Generator,
    activity: np.ndarray,
    measure: np.ndarray,
    catalog: _Catalog,
    dirt: bool,
) -> tuple[np.ndarray, np.ndarray]:
    """Eye-screen distance and ambient light of the eye tests of calibrated activities (NaN
    elsewhere): normal distance around the middle of the bounds, log-normal light, a few
    outside the bounds (only with dirt), a few exactly on a bound, some missing."""
    n = len(measure)
    distance = np.full(n, np.nan)
    lux = np.full(n, np.nan)
    eye_test = catalog.needs_eye[measure]
    for values, bounds, draw in (
        (distance, catalog.distance, _draw_distance),
        (lux, catalog.lux, _draw_lux),
    ):
        rows = np.flatnonzero(eye_test & ~np.isnan(bounds[activity, 0]))
        low, high = bounds[activity[rows]].T
        drawn = draw(rng, low, high)
        values[rows] = drawn if dirt else np.clip(drawn, low, high)
    gone = rng.random(n) / MISSING_CALIBRATION_SHARE  # < 1: some calibration is missing
    distance[(gone < 0.5) | ((gone >= 5 / 6) & (gone < 1))] = np.nan
    lux[gone < 5 / 6] = np.nan
    return distance, lux


def _draw_distance(rng: np.random.Generator, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """Normal around the middle (sd a quarter of the range: ~5 % outside), 0.5 % on a bound."""
    n = len(low)
    distance = np.round(rng.normal((low + high) / 2, (high - low) / 4), 1)
    bound = np.where(rng.random(n) < 0.5, low, high)
    return np.where(rng.random(n) < EXACT_BOUND_SHARE, bound, distance)


def _draw_lux(rng: np.random.Generator, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """Log-normal around the geometric middle of the bounds, ~2 % beyond each bound."""
    sigma = np.log(high / low) / 4.1
    return np.round(np.exp(rng.normal(np.log(np.sqrt(low * high)), sigma)), 0)


# ================================================================================================
# Dirt: the faults the ingestion must catch
# ================================================================================================


class _DirtPicker:
    """Draws disjoint sets of rows, one per dirt kind, and counts them."""

    def __init__(self, rng: np.random.Generator, n: int, enabled: bool) -> None:
        self.rng, self.n, self.enabled = rng, n, enabled
        self.taken = np.zeros(n, bool)
        self.counts = dict.fromkeys(DIRT_SHARES, 0)

    def choose(self, kind: str, eligible: np.ndarray) -> np.ndarray:
        quota = _quota(DIRT_SHARES[kind], self.n, self.enabled)
        chosen = _pick(self.rng, eligible & ~self.taken, quota)
        self.taken[chosen] = True
        self.counts[kind] = len(chosen)
        return chosen


def _inject_dirt(
    rng: np.random.Generator,
    rows: pl.DataFrame,
    span: _Span,
    catalog: _Catalog,
    companies: list[_Exploitant],
    dirt: bool,
) -> tuple[pl.DataFrame, dict[str, int]]:
    """Mark faulty rows (``fault``/``arg``/``eye``) and add duplicate copies (``copy``: 0 the
    original, 1 same file, 2 later file, 3 conflicting)."""
    picker = _DirtPicker(rng, rows.height, dirt)
    last_day = (span.end - EPOCH).days
    file_day = rows["file_day"].to_numpy()
    resendable = file_day < last_day
    same = picker.choose("exact_duplicate_same_file", np.ones(rows.height, bool))
    other = picker.choose("exact_duplicate_other_file", resendable)
    has_value = rows["value"].is_not_null().to_numpy()
    conflict = picker.choose("conflicting_duplicate", resendable & has_value)
    rows = _mark_faults(rng, picker, rows, catalog, companies)

    def later(chosen: np.ndarray) -> pl.Series:
        """A later arrival day (1-5 days on, at most the end date) for re-sent copies."""
        room = np.minimum(5, last_day - file_day[chosen])
        shift = 1 + np.floor(rng.random(len(chosen)) * room)
        return pl.Series(file_day[chosen] + shift, dtype=pl.Int32)

    copies = [
        rows[same].with_columns(copy=pl.lit(1, pl.UInt8)),
        rows[other].with_columns(copy=pl.lit(2, pl.UInt8), file_day=later(other)),
        rows[conflict].with_columns(
            copy=pl.lit(3, pl.UInt8),
            file_day=later(conflict),
            value=(pl.col("value") + pl.max_horizontal(1, pl.col("value").abs() / 10)).round(2),
        ),
    ]
    rows = pl.concat([rows, *copies], rechunk=False)
    counts = picker.counts | {"calibration_out_of_range": _count_out_of_range(rows, catalog)}
    return rows, counts


def _mark_faults(
    rng: np.random.Generator,
    picker: _DirtPicker,
    rows: pl.DataFrame,
    catalog: _Catalog,
    companies: list[_Exploitant],
) -> pl.DataFrame:
    """Faults written into the row itself: ``fault`` code and its ``arg``, or an invalid eye.
    Malformed records and bad types only go to text files (Parquet columns are typed)."""
    n = rows.height
    fault = np.zeros(n, np.uint8)
    arg = np.zeros(n, np.uint8)
    eye = rows["eye"].to_numpy().copy()
    everywhere = np.ones(n, bool)
    text_writers = [j for j, c in enumerate(companies) if c.fmt in TEXT_FORMATS]
    text = np.isin(rows["exp"].to_numpy(), text_writers)
    has_number = rows["value"].is_not_null().to_numpy()
    has_distance = rows["distance"].is_not_null().to_numpy()
    acuity = (catalog.needs_eye & catalog.counted)[rows["mt"].to_numpy()]

    fault[picker.choose("malformed_record", text)] = MALFORMED
    missing = picker.choose("missing_field", everywhere)
    fault[missing] = MISSING
    arg[missing] = rng.integers(0, len(MISSING_FIELD_CHOICES), len(missing))
    fault[picker.choose("timestamp_without_offset", everywhere)] = NAIVE
    unknown = picker.choose("unknown_activity", everywhere)
    fault[unknown] = UNKNOWN_ACTIVITY
    arg[unknown] = rng.integers(0, len(UNKNOWN_ACTIVITY_CODES), len(unknown))
    bad = picker.choose("bad_type", text & (has_number | has_distance))
    fault[bad] = BAD_TYPE
    arg[bad] = has_distance[bad]  # 1: distance_cm "near", 0: value "abc"
    eye[picker.choose("invalid_eye", acuity)] = BAD_EYE
    return rows.with_columns(
        eye=pl.Series(eye), fault=pl.Series(fault), arg=pl.Series(arg), copy=pl.lit(0, pl.UInt8)
    )


def _count_out_of_range(rows: pl.DataFrame, catalog: _Catalog) -> int:
    """Rows without any other fault (originals only) whose calibration is outside the bounds."""
    act = rows["act"].to_numpy()
    outside = np.zeros(rows.height, bool)
    for column, bounds in (("distance", catalog.distance), ("lux", catalog.lux)):
        values = rows[column].fill_null(np.nan).to_numpy()
        outside |= (values < bounds[act, 0]) | (values > bounds[act, 1])
    clean = ((rows["fault"] == CLEAN) & (rows["eye"] != BAD_EYE) & (rows["copy"] == 0)).to_numpy()
    return int((outside & clean).sum())


# ================================================================================================
# Writing transmission files
# ================================================================================================


def _write_transmission_files(
    rows: pl.DataFrame,
    cohort: pl.DataFrame,
    catalog: _Catalog,
    companies: list[_Exploitant],
    out: Path,
) -> int:
    """One file per (arrival day, exploitant) in the exploitant's format; returns the count."""
    files = 0
    exp = rows["exp"].to_numpy()
    file = rows["file_day"].to_numpy().astype(np.int64) * len(companies) + exp
    order = _stable_order(file, rows["received"].to_numpy())
    file_day = rows["file_day"].to_numpy()[order]
    if not len(file_day):
        return 0
    for first in range(int(file_day[0]), int(file_day[-1]) + 1, WRITE_BATCH_DAYS):
        lo, hi = np.searchsorted(file_day, [first, first + WRITE_BATCH_DAYS])
        if lo == hi:
            continue
        wire = _wire_rows(rows[order[lo:hi]], cohort, catalog, companies)
        groups = wire.partition_by("file_day", "exp", maintain_order=True, as_dict=True)
        for (day, exp), group in groups.items():
            company = companies[exp]
            folder = out / "transmissions" / (EPOCH + timedelta(days=day)).isoformat()
            malformed = group["malformed"] if company.fmt in TEXT_FORMATS else None
            _write_frame(
                group.select(TRANSMISSION_FIELDS),
                folder / f"{company.code}.{company.fmt}",
                malformed,
            )
            files += 1
    return files


def _wire_rows(
    batch: pl.DataFrame, cohort: pl.DataFrame, catalog: _Catalog, companies: list[_Exploitant]
) -> pl.DataFrame:
    """The compact rows as the exploitants send them: contract fields as text, faults applied,
    plus ``file_day``, ``exp`` and ``malformed``."""
    fault, arg = pl.col("fault"), pl.col("arg")

    def lookup(column: str, values: Sequence[str | None]) -> pl.Expr:
        mapping = {i: v for i, v in enumerate(values) if v is not None}
        return pl.col(column).replace_strict(mapping, default=None, return_dtype=pl.String)

    def present(name: str, expr: pl.Expr) -> pl.Expr:
        dropped = (fault == MISSING) & (arg == MISSING_FIELD_CHOICES.index(name))
        return pl.when(~dropped).then(expr)

    def number(column: str, bad_arg: int, bad_text: str) -> pl.Expr:
        bad = (fault == BAD_TYPE) & (arg == bad_arg)
        return pl.when(bad).then(pl.lit(bad_text)).otherwise(pl.col(column).cast(pl.String))

    utc = pl.col("exp").is_in([j for j, c in enumerate(companies) if c.utc])
    measured = pl.from_epoch("measured", "s").dt.replace_time_zone("UTC")
    naive = measured.dt.convert_time_zone(LOCAL_TIMEZONE).dt.strftime(NAIVE_FORMAT)
    return batch.with_columns(patient=cohort["patient_id"].gather(batch["enr"]), utc=utc).select(
        transmission_id=present(
            "transmission_id", "TX" + pl.col("seq").cast(pl.String).str.zfill(10)
        ),
        exploitant_id=lookup("exp", [c.code for c in companies]),
        activity_code=pl.when(fault == UNKNOWN_ACTIVITY)
        .then(lookup("arg", catalog.unknown_codes))
        .otherwise(lookup("act", catalog.codes)),
        patient_id=present("patient_id", pl.col("patient")),
        measure_type=present("measure_type", lookup("mt", catalog.measure_types)),
        eye=lookup("eye", [EYE_LABELS.get(i) for i in range(len(EYE_LABELS) + 1)]),
        measured_at=present(
            "measured_at",
            pl.when(fault == NAIVE).then(naive).otherwise(_iso(measured, pl.col("utc"))),
        ),
        received_at=_iso(pl.from_epoch("received", "s").dt.replace_time_zone("UTC"), pl.col("utc")),
        value=number("value", 0, "abc"),
        unit=lookup("mt", [model.unit for model in catalog.models]),
        distance_cm=number("distance", 1, "near"),
        ambient_lux=pl.col("lux").cast(pl.String),
        file_day="file_day",
        exp="exp",
        malformed=fault == MALFORMED,
    )


def _iso(timestamp: pl.Expr, utc: pl.Expr) -> pl.Expr:
    """ISO-8601 text with an offset: ``Z`` for UTC writers, else the Paris offset."""
    zulu = timestamp.dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    paris = timestamp.dt.convert_time_zone(LOCAL_TIMEZONE).dt.strftime(NAIVE_FORMAT + "%:z")
    return pl.when(utc).then(zulu).otherwise(paris)


# ================================================================================================
# File writers (shared with tests: ``write_transmissions``)
# ================================================================================================


def write_transmissions(rows: Sequence[Mapping[str, object]] | pl.DataFrame, path: Path) -> int:
    """Write transmission rows to ``path`` in the format its name ends with (``.jsonl``,
    ``.jsonl.gz``, ``.csv``, ``.parquet``), as the generator does; returns the rows written.

    Contract fields come first, in contract order; other columns follow. JSON lines omit null
    fields, CSV writes them empty, Parquet keeps numbers typed when every value is a number.
    """
    frame = rows if isinstance(rows, pl.DataFrame) else _frame_from_records(rows)
    ordered = [f for f in TRANSMISSION_FIELDS if f in frame.columns]
    ordered += [c for c in frame.columns if c not in TRANSMISSION_FIELDS]
    _write_frame(frame.select(ordered), Path(path))
    return frame.height


def _frame_from_records(rows: Sequence[Mapping[str, object]]) -> pl.DataFrame:
    """Records to a frame: all-number columns as floats, anything else as text (dates ISO)."""
    names = list(dict.fromkeys(name for row in rows for name in row))
    columns = {}
    for name in names:
        values = [row.get(name) for row in rows]
        numeric = all(
            v is None or (isinstance(v, int | float) and not isinstance(v, bool)) for v in values
        )
        columns[name] = (
            pl.Series(name, values, dtype=pl.Float64)
            if numeric
            else pl.Series(name, [_text(v) for v in values], dtype=pl.String)
        )
    return pl.DataFrame(columns or {f: pl.Series(f, [], pl.String) for f in TRANSMISSION_FIELDS})


def _text(value: object) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, date):  # datetime too
        return value.isoformat()
    return str(value)


def _format_of(path: Path) -> str:
    for fmt in sorted(FORMAT_CYCLE, key=len, reverse=True):
        if path.name.endswith("." + fmt):
            return fmt
    raise ValueError(f"{path}: unknown transmission file type (expected one of {FORMAT_CYCLE})")


def _write_frame(frame: pl.DataFrame, path: Path, malformed: pl.Series | None = None) -> None:
    """Write rows by file type; ``malformed`` rows are corrupted (text formats only): a JSON
    line cut in half, a CSV row missing its last two fields."""
    fmt = _format_of(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "parquet":
        _typed_numbers(frame).write_parquet(path)
        return
    text = _as_text(frame)
    lines = _json_lines(text) if fmt.startswith("jsonl") else _csv_lines(text)
    if malformed is not None:
        cut = (
            lines.str.slice(0, lines.str.len_chars() // 2)
            if fmt.startswith("jsonl")
            else lines.str.replace(r",[^,]*,[^,]*$", "")
        )
        lines = pl.select(pl.when(malformed).then(cut).otherwise(lines)).to_series()
    header = "" if fmt.startswith("jsonl") else ",".join(frame.columns) + "\n"
    body = lines.str.join("\n").item() + "\n" if len(lines) else ""
    data = (header + body).encode()
    path.write_bytes(gzip.compress(data, mtime=0) if fmt.endswith(".gz") else data)


def _typed_numbers(frame: pl.DataFrame) -> pl.DataFrame:
    """Numeric contract fields sent as text become floats when every value parses."""
    for name in NUMERIC_FIELDS:
        if name in frame.columns and frame[name].dtype == pl.String:
            parsed = frame[name].cast(pl.Float64, strict=False)
            if parsed.null_count() == frame[name].null_count():
                frame = frame.with_columns(parsed)
    return frame


def _as_text(frame: pl.DataFrame) -> pl.DataFrame:
    """Every column as text; datetimes as ISO-8601 (with the offset when they have a zone)."""

    def text(name: str, dtype: pl.DataType) -> pl.Expr:
        column = pl.col(name)
        if isinstance(dtype, pl.Datetime):
            return column.dt.strftime(NAIVE_FORMAT + ("%:z" if dtype.time_zone else ""))
        return column.cast(pl.String)

    return frame.select(text(name, dtype) for name, dtype in frame.schema.items())


_NUMBER = r"^-?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$"


def _json_lines(frame: pl.DataFrame) -> pl.Series:
    """One JSON object per row, null fields left out; numeric fields unquoted when numbers."""

    def quoted(column: pl.Expr) -> pl.Expr:
        escaped = column.str.replace_all("\\", "\\\\", literal=True)
        return '"' + escaped.str.replace_all('"', '\\"', literal=True) + '"'

    def member(name: str) -> pl.Expr:
        column = pl.col(name)
        token = quoted(column)
        if name in NUMERIC_FIELDS:
            token = pl.when(column.str.contains(_NUMBER)).then(column).otherwise(token)
        return pl.lit(f'"{name}":') + token

    members = pl.concat_str([member(n) for n in frame.columns], separator=",", ignore_nulls=True)
    return frame.select(("{" + members + "}").alias("line")).to_series()


def _csv_lines(frame: pl.DataFrame) -> pl.Series:
    """One CSV row per row (empty for null), quoting fields that need it."""

    def field_text(name: str) -> pl.Expr:
        column = pl.col(name).fill_null("")
        quoted = '"' + column.str.replace_all('"', '""', literal=True) + '"'
        return pl.when(column.str.contains(r'[",\r\n]')).then(quoted).otherwise(column)

    line = pl.concat_str([field_text(n) for n in frame.columns], separator=",")
    return frame.select(line.alias("line")).to_series()


# ================================================================================================
# The billing loop of the demo: the payer's answers, and deaths notified after billing
# ================================================================================================

# Synthetic rejection codes and labels of a payer's return file (R12); not real NOEMIE codes.
REJECTIONS = (
    ("R01", "Droits AMO non ouverts à la date des soins"),
    ("R02", "Prescription absente ou non conforme"),
    ("R03", "Facturation en double"),
    ("R04", "Code de forfait incompatible avec l'activité"),
)
# How the payer answers issued lines: paid, partially paid, rejected; the rest not yet answered.
ANSWER_SHARES = {"paid": 0.82, "partially_paid": 0.04, "rejected": 0.07}
PAYMENT_DELAY_DAYS = (7, 40)


def generate_payments(warehouse: Path, out: Path, seed: int = 42) -> int:
    """A payer's return file answering the issued lines of ``warehouse`` not answered yet (the
    contract's payments fields, CSV): most paid, some partially paid or rejected with a reason,
    the others left for later. Returns the number of answers written."""
    from pipelines.files import write_table
    from pipelines.warehouse import reader

    with reader(warehouse) as con:
        lines = con.sql(
            "SELECT l.line_id, l.amount, CAST(l.issued_at AS DATE) AS issued_on "
            "FROM ledger.issued_lines l ANTI JOIN raw.payments p USING (line_id) "
            "WHERE l.kind <> 'cancellation' ORDER BY l.line_id"
        ).pl()
    rng = np.random.default_rng(seed)
    answer = _shuffled_labels(
        rng, [*ANSWER_SHARES.values(), 1 - sum(ANSWER_SHARES.values())], lines.height
    )
    status = np.array([*ANSWER_SHARES, "none"])[answer]
    amount = lines["amount"].cast(pl.Float64).to_numpy()
    partial = np.round(amount * rng.uniform(0.3, 0.9, lines.height), 2)
    rejection = rng.integers(0, len(REJECTIONS), lines.height)
    delay = rng.integers(PAYMENT_DELAY_DAYS[0], PAYMENT_DELAY_DAYS[1] + 1, lines.height)
    # a payer answers some days after the issue, and never in the future (R1: future_timestamp)
    paid_on = pl.DataFrame({"day": lines["issued_on"], "delay": delay}).select(
        pl.min_horizontal(pl.col("day") + pl.duration(days="delay"), pl.lit(today_paris()))
    )
    frame = (
        pl.DataFrame(
            {
                "line_id": lines["line_id"],
                "status": status,
                "paid_amount": pl.Series(
                    np.where(
                        status == "paid",
                        amount,
                        np.where(status == "partially_paid", partial, np.nan),
                    ),
                    nan_to_null=True,
                ).cast(pl.Decimal(10, 2)),
                "paid_on": paid_on.to_series(),
                "rejection_code": np.array(REJECTIONS)[rejection, 0],
                "rejection_label": np.array(REJECTIONS)[rejection, 1],
            }
        )
        .with_columns(
            pl.when(pl.col("status") == "rejected").then(pl.col(c)).alias(c)
            for c in ("rejection_code", "rejection_label")
        )
        .filter(pl.col("status") != "none")
    )
    write_table(frame, Path(out), "international")
    return frame.height


def late_death_notices(warehouse: Path, landing: Path, count: int = 3, seed: int = 42) -> int:
    """New versions of ``count`` ongoing enrollments whose lines were issued for at least two
    periods: the patient died on the 10th day of the second-last issued period, recorded now
    (R7b) — a death notified after billing, which the next run corrects (R11). Written to
    ``<landing>/enrollments/late_notices/``; returns the number of notices."""
    from pipelines.warehouse import reader

    with reader(warehouse) as con:
        candidates = con.sql(
            """
            SELECT e.* EXCLUDE (counting_profile, expected_units, sessions_per_week_sent),
                max(l.period_index) AS last_issued, min(l.date_of_care) AS first_care
            FROM staging.enrollments e
            JOIN ledger.issued_lines l USING (enrollment_id)
            WHERE e.end_date IS NULL AND l.kind = 'original'
            GROUP BY ALL
            HAVING count(DISTINCT l.period_index) >= 2
            ORDER BY e.enrollment_id
            """
        ).pl()
    rng = np.random.default_rng(seed)
    chosen = candidates[np.sort(rng.permutation(candidates.height)[:count])]
    if chosen.is_empty():
        return 0
    from pipelines.config import PERIOD_DAYS

    died = chosen["start_date"] + pl.duration(days=(chosen["last_issued"] - 2) * PERIOD_DAYS + 9)
    notices = chosen.with_columns(
        end_date=died,
        end_reason=pl.lit("deceased"),
        recorded_at=pl.lit(datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")),
    ).select(ENROLLMENT_FIELDS)
    folder = Path(landing) / "enrollments" / "late_notices"
    _write_table(notices, folder / f"deaths_{datetime.now(UTC):%Y%m%dT%H%M%S}.csv")
    return notices.height
