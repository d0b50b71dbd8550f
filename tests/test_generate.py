"""The synthetic landing generator: layout, determinism, behaviours, dirt and the file writers."""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import re
from collections import Counter
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import polars as pl
import pytest

from pipelines.catalog import load_activities, load_counting_rules
from pipelines.contract import FIELDS
from tools.generate import (
    BEHAVIOURS,
    DIRT_SHARES,
    MISSING_FIELD_CHOICES,
    GenerationSummary,
    generate_landing,
    write_transmissions,
)

PARIS = ZoneInfo("Europe/Paris")
END = date(2025, 12, 31)
# no continuous sensor in the small run: its readings every 5 minutes, day and night, would
# drown the usage checks (test_continuous_sensor has its own run)
SMALL = {"patients": 60, "months": 6, "end_date": END, "cgm_share": 0.0}
OFFSET = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(Z|[+-]\d\d:\d\d)$")
NAIVE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d$")
NUMERIC = ("value", "distance_cm", "ambient_lux")


# --- reading what the generator wrote ---------------------------------------------------------


def _text(value: object) -> str | None:
    return None if value is None or value == "" else str(value)


def read_transmissions(root: Path) -> tuple[list[dict], int]:
    """Every transmission row as text (``_folder``, ``_file`` added) and the malformed count."""
    rows, malformed = [], 0
    for path in sorted((root / "transmissions").rglob("*.*")):
        name = path.name
        if name.endswith(".parquet"):
            records = pl.read_parquet(path).to_dicts()
        elif name.endswith(".csv"):
            lines = list(csv.reader(io.StringIO(path.read_text())))
            header, body = lines[0], lines[1:]
            records = [
                dict(zip(header, line, strict=True)) for line in body if len(line) == len(header)
            ]
            malformed += sum(len(line) != len(header) for line in body)
        else:
            text = gzip.decompress(path.read_bytes()).decode() if name.endswith(".gz") else None
            records = []
            for line in (text or path.read_text()).splitlines():
                try:
                    records.append(json.loads(line))
                except json.JSONDecodeError:
                    malformed += 1
        for record in records:
            row = {field: _text(record.get(field)) for field in FIELDS["transmissions"]}
            rows.append({**row, "_folder": path.parent.name, "_file": path.name})
    return rows, malformed


def file_hashes(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def is_number(text: str | None) -> bool:
    try:
        float(text)
    except (TypeError, ValueError):
        return False
    return True


def paris_date(timestamp: str) -> date:
    return datetime.fromisoformat(timestamp.replace("Z", "+00:00")).astimezone(PARIS).date()


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> tuple[Path, GenerationSummary]:
    root = tmp_path_factory.mktemp("landing")
    return root, generate_landing(root, **SMALL)


@pytest.fixture(scope="module")
def rows(run) -> tuple[list[dict], int]:
    return read_transmissions(run[0])


@pytest.fixture(scope="module")
def enrollments(run) -> pl.DataFrame:
    """The latest version of every enrollment (the update wins over the snapshot)."""
    root = run[0]
    snapshot = pl.read_csv(next((root / "enrollments").glob("*.csv")), infer_schema=False)
    update = pl.read_parquet(next((root / "enrollments").rglob("*.parquet")))
    update = update.with_columns(pl.all().cast(pl.String))
    return pl.concat([update, snapshot]).unique("enrollment_id", keep="first", maintain_order=True)


# --- determinism ----------------------------------------------------------------------------------


def test_same_arguments_give_identical_files(run, tmp_path):
    again = generate_landing(tmp_path, **SMALL)
    assert again == run[1]
    assert file_hashes(tmp_path) == file_hashes(run[0])


def test_another_seed_gives_other_data(run, tmp_path):
    generate_landing(tmp_path, seed=7, **SMALL)
    assert file_hashes(tmp_path) != file_hashes(run[0])


# --- layout ---------------------------------------------------------------------------------------


def test_layout_follows_the_contract(run):
    root, summary = run
    assert [p.name for p in (root / "enrollments").glob("*.csv")] == ["enrollments_2025-12-03.csv"]
    assert (root / "enrollments" / "update_2025-12-31" / "enrollments.parquet").is_file()
    assert (root / "prescriptions" / "prescriptions_2025-12-31.csv").is_file()
    files = [p for p in (root / "transmissions").rglob("*") if p.is_file()]
    assert summary.files == len(files) + 3
    endings = {p.name.split(".", 1)[1] for p in files}
    assert endings == {"jsonl", "jsonl.gz", "csv", "parquet"}
    for path in files:
        assert re.fullmatch(r"EXP\d\d\.(jsonl|jsonl\.gz|csv|parquet)", path.name)
        assert date(2025, 6, 30) <= date.fromisoformat(path.parent.name) <= END


def test_single_format_runs(tmp_path):
    for fmt in ("csv", "parquet", "jsonl"):
        generate_landing(tmp_path / fmt, patients=12, months=1, end_date=END, formats=fmt)
        names = {p.name for p in (tmp_path / fmt / "transmissions").rglob("*.*")}
        assert names and all(name.endswith("." + fmt) for name in names)


def test_rows_land_in_the_folder_of_their_arrival_day(rows):
    rows, _ = rows
    arrived = [r for r in rows if r["received_at"]]
    later = [r for r in arrived if r["_folder"] != paris_date(r["received_at"]).isoformat()]
    assert all(r["_folder"] > paris_date(r["received_at"]).isoformat() for r in later)
    assert len(later) < 0.01 * len(arrived)  # only the copies re-sent in a later file


# --- content ------------------------------------------------------------------------------------


def test_every_activity_and_measure_type_is_sent(rows, enrollments):
    rows, _ = rows
    catalog = set(load_activities()["activity_code"])
    assert set(enrollments["activity_code"]) == catalog
    assert catalog <= {r["activity_code"] for r in rows}
    types = Counter(r["measure_type"] for r in rows if r["activity_code"] == "ODYSIGHT")
    assert types["visual_acuity"] > types["questionnaire"] > 0
    assert types["amsler_grid"] > 0
    odysight = sum(enrollments["activity_code"] == "ODYSIGHT") / enrollments.height
    assert 0.3 < odysight < 0.5


def test_every_profile_is_drawn_and_sends_what_it_counts(run, rows, enrollments):
    """Every (line, profile) of the counting rules appears, '' (none sent) included, and the
    devices send the measure types their rule counts (rules.md R3)."""
    rows, _ = rows
    rules = load_counting_rules()
    drawn = set(
        zip(
            enrollments["activity_code"],
            enrollments["monitoring_profile"].fill_null(""),
            strict=True,
        )
    )
    assert set(zip(rules["activity_code"], rules["monitoring_profile"], strict=True)) <= drawn
    profile = dict(zip(enrollments["patient_id"], enrollments["monitoring_profile"], strict=True))
    sent = Counter(
        (r["activity_code"], profile.get(r["patient_id"]), r["measure_type"]) for r in rows
    )
    assert sent[("HEART_FAILURE", None, "weight")] > 0
    assert sent[("DIABETES", "sensor", "glucose_sensor")] > 0
    assert sent[("DIABETES", "capillary_multi_injection", "glucose_capillary")] > 0
    assert sent[("RESPIRATORY_FAILURE", "oxygen", "oxygen_hours")] > 0
    assert sent[("RESPIRATORY_FAILURE", "oxygen", "ventilation_hours")] == 0
    assert sent[("RENAL_FAILURE", "hemodialysis", "dialysis_session")] > 0
    assert sent[("RENAL_FAILURE", "peritoneal_dialysis", "ultrafiltration")] > 0
    assert run[1].profiles["DIABETES/sensor"] > 0 and "DIABETES/sensor_cgm" not in run[1].profiles


def test_hemodialysis_sessions_follow_the_week(rows, enrollments):
    """Sessions a week are sent for most hemodialysis enrollments; an adherent patient has
    about that many session days a week, never two sessions the same day."""
    rows, _ = rows
    dialysis = enrollments.filter(pl.col("monitoring_profile") == "hemodialysis")
    assert dialysis["sessions_per_week"].drop_nulls().cast(pl.Int32).is_in([2, 3, 4]).all()
    assert dialysis["sessions_per_week"].null_count() < dialysis.height
    days = Counter(
        (r["patient_id"], paris_date(r["measured_at"]))
        for r in rows
        if r["measure_type"] == "dialysis_session"
        and r["measured_at"]
        and OFFSET.match(r["measured_at"])
    )
    assert days and max(days.values()) == 1
    per_patient = Counter(patient for patient, _ in days)
    spans = {}
    for patient, day in days:
        first, last = spans.get(patient, (day, day))
        spans[patient] = (min(first, day), max(last, day))
    weekly = [
        per_patient[p] / (((last - first).days + 1) / 7)
        for p, (first, last) in spans.items()
        if (last - first).days >= 28
    ]
    assert 2 <= sorted(weekly)[len(weekly) // 2] <= 4


def test_continuous_sensor(tmp_path):
    """cgm_share: a share of the sensor patients send a reading every 5 minutes, day and night
    (288 a day, fewer on some days), as glucose_sensor rows."""
    summary = generate_landing(
        tmp_path, patients=80, months=1, end_date=END, cgm_share=0.3, dirt=False
    )
    assert summary.profiles["DIABETES/sensor_cgm"] >= 1
    rows, _ = read_transmissions(tmp_path)
    per_day = Counter(
        (r["patient_id"], paris_date(r["measured_at"]))
        for r in rows
        if r["measure_type"] == "glucose_sensor"
    )
    full = [day for day, n in per_day.items() if n >= 280]
    assert full  # whole days of a continuous sensor
    assert max(per_day.values()) <= 300  # a DST day holds 23 or 25 hours of readings
    hours = Counter(
        datetime.fromisoformat(r["measured_at"].replace("Z", "+00:00")).astimezone(PARIS).hour
        for r in rows
        if (r["patient_id"], paris_date(r["measured_at"])) in set(full)
    )
    assert set(hours) == set(range(24))  # night readings too
    with pytest.raises(ValueError, match="cgm_share"):
        generate_landing(tmp_path / "bad", patients=10, cgm_share=1.5)


def test_every_behaviour_and_end_reason_is_present(run, enrollments):
    assert set(run[1].behaviours) == set(BEHAVIOURS)
    assert all(count >= 1 for count in run[1].behaviours.values())
    assert sum(run[1].behaviours.values()) == run[1].enrollments == enrollments.height
    reasons = set(enrollments["end_reason"].drop_nulls())
    assert reasons == {"stopped", "deceased", "transferred"}
    assert enrollments["end_date"].null_count() > enrollments.height / 2


def test_enrollments_start_inside_the_span(enrollments):
    starts = enrollments["start_date"].str.to_date()
    assert starts.min() >= date(2025, 6, 30)
    assert starts.max() <= END


def test_prescription_chains(run, enrollments):
    root, summary = run
    rx = pl.read_csv(root / "prescriptions" / "prescriptions_2025-12-31.csv", try_parse_dates=True)
    rx = rx.with_columns(days=(pl.col("valid_until") - pl.col("valid_from")).dt.total_days() + 1)
    assert set(rx["kind"]) == {"trial", "initial", "renewal"}
    assert rx.filter(pl.col("kind") == "trial")["days"].max() <= 92
    assert (
        rx.filter(pl.col("days") > 365).height == summary.dirty_rows["prescription_too_long"] >= 1
    )
    firsts = (
        rx.group_by("enrollment_id")
        .agg(pl.col("kind").first())
        .join(enrollments.select("enrollment_id", "activity_code"), on="enrollment_id")
    )
    trial_first = firsts["kind"] == "trial"
    assert (trial_first == (firsts["activity_code"] == "ODYSIGHT")).all()
    assert rx["enrollment_id"].n_unique() < enrollments.height  # some have no prescription


def test_usage_realism(rows):
    rows, _ = rows
    timed = [r for r in rows if r["measured_at"] and OFFSET.match(r["measured_at"])]
    local = [datetime.fromisoformat(r["measured_at"].replace("Z", "+00:00")) for r in timed]
    hours = Counter(t.astimezone(PARIS).hour for t in local)
    assert hours[23] + hours[0] > 0  # sessions around midnight
    assert sum(hours[h] for h in range(7, 22)) > 0.9 * len(local)
    offsets = {r["measured_at"][19:] for r in timed}
    assert {"Z", "+01:00", "+02:00"} <= offsets
    late = sum(
        datetime.fromisoformat(r["received_at"].replace("Z", "+00:00")) - t > timedelta(days=1)
        for r, t in zip(timed, local, strict=True)
    )
    assert 0.005 < late / len(timed) < 0.05
    distances = [float(r["distance_cm"]) for r in rows if is_number(r["distance_cm"])]
    assert 39 < sum(distances) / len(distances) < 41
    assert any(d in (35.0, 45.0) for d in distances)
    assert 0.01 < sum(not 35 <= d <= 45 for d in distances) / len(distances) < 0.1


# --- dirt ---------------------------------------------------------------------------------------


def test_every_dirt_kind_is_present(run):
    dirty = run[1].dirty_rows
    assert set(DIRT_SHARES) | {"calibration_out_of_range"} <= set(dirty)
    assert all(count >= 1 for count in dirty.values()), dirty


def test_dirt_counts_match_the_files(run, rows):
    rows, malformed = rows
    dirty = run[1].dirty_rows
    assert len(rows) + malformed == run[1].transmissions
    assert malformed == dirty["malformed_record"]
    naive = [r for r in rows if r["measured_at"] and NAIVE.match(r["measured_at"])]
    assert len(naive) == dirty["timestamp_without_offset"]
    stamped = [r["measured_at"] for r in rows if r["measured_at"]] + [
        r["received_at"] for r in rows
    ]
    assert sum(not OFFSET.match(s) for s in stamped) == len(naive)
    assert sum(r["eye"] == "XX" for r in rows) == dirty["invalid_eye"]
    catalog = set(load_activities()["activity_code"])
    assert sum(r["activity_code"] not in catalog for r in rows) == dirty["unknown_activity"]
    missing = sum(any(r[f] is None for f in MISSING_FIELD_CHOICES) for r in rows)
    assert missing == dirty["missing_field"]
    bad = sum(any(r[f] is not None and not is_number(r[f]) for f in NUMERIC) for r in rows)
    assert bad == dirty["bad_type"]


def test_duplicates_match_the_files(run, rows):
    rows, _ = rows
    dirty = run[1].dirty_rows
    keyed = [r for r in rows if r["transmission_id"]]
    in_same_file = Counter(tuple(r.items()) for r in keyed)  # folder and file included
    anywhere = Counter(tuple((k, v) for k, v in r.items() if not k.startswith("_")) for r in keyed)
    keys = Counter((r["exploitant_id"], r["transmission_id"]) for r in keyed)
    exact_same_file = sum(n - 1 for n in in_same_file.values())
    exact = sum(n - 1 for n in anywhere.values())
    assert exact_same_file == dirty["exact_duplicate_same_file"]
    assert exact - exact_same_file == dirty["exact_duplicate_other_file"]
    assert sum(n - 1 for n in keys.values()) - exact == dirty["conflicting_duplicate"]
    # transmission ids restart per exploitant: the key needs both
    assert len({r["transmission_id"] for r in keyed}) < len(keys)


def test_calibration_out_of_range_counts_invalid_tests(run, rows):
    rows, _ = rows
    clean = {}
    for r in rows:
        valid = (
            all(r[f] for f in MISSING_FIELD_CHOICES)
            and r["eye"] in ("OD", "OS")
            and OFFSET.match(r["measured_at"])
            and all(r[f] is None or is_number(r[f]) for f in NUMERIC)
            and r["activity_code"] == "ODYSIGHT"
        )
        if valid:
            clean.setdefault((r["exploitant_id"], r["transmission_id"]), r)
    outside = [
        r
        for r in clean.values()
        if (r["distance_cm"] and not 35 <= float(r["distance_cm"]) <= 45)
        or (r["ambient_lux"] and not 5 <= float(r["ambient_lux"]) <= 2000)
    ]
    assert len(outside) == run[1].dirty_rows["calibration_out_of_range"]


def test_a_clean_run_has_no_dirt(tmp_path):
    summary = generate_landing(tmp_path, dirt=False, **SMALL)
    assert set(summary.dirty_rows.values()) == {0}
    rows, malformed = read_transmissions(tmp_path)
    assert malformed == 0 and len(rows) == summary.transmissions
    assert all(OFFSET.match(r["measured_at"]) and OFFSET.match(r["received_at"]) for r in rows)
    assert len({(r["exploitant_id"], r["transmission_id"]) for r in rows}) == len(rows)
    distances = [float(r["distance_cm"]) for r in rows if r["distance_cm"]]
    assert all(35 <= d <= 45 for d in distances)


def test_rejects_unknown_format(tmp_path):
    with pytest.raises(ValueError, match="formats"):
        generate_landing(tmp_path, formats="xml")


# --- write_transmissions ------------------------------------------------------------------------


SAMPLE = [
    {
        "transmission_id": "T1",
        "exploitant_id": "EXP01",
        "activity_code": "ODYSIGHT",
        "patient_id": "P1",
        "measure_type": "visual_acuity",
        "eye": "OD",
        "measured_at": "2025-03-30T10:00:00+02:00",
        "value": 0.8,
        "distance_cm": 40.5,
    },
    {
        "transmission_id": "T2",
        "exploitant_id": "EXP01",
        "activity_code": "ODYSIGHT",
        "patient_id": "P1",
        "measure_type": "questionnaire",
        "measured_at": datetime(2025, 3, 30, 11, 0, tzinfo=PARIS),
        "value": None,
        "distance_cm": None,
    },
]


@pytest.mark.parametrize("ending", ["jsonl", "jsonl.gz", "csv", "parquet"])
def test_write_transmissions_round_trips(tmp_path, ending):
    path = tmp_path / f"sample.{ending}"
    assert write_transmissions(SAMPLE, path) == 2
    (first, second), malformed = read_transmissions_file(path)
    assert malformed == 0
    assert first["value"] == "0.8" and first["distance_cm"] == "40.5"
    assert second["measured_at"] == "2025-03-30T11:00:00+02:00"
    assert second["value"] is None and second["eye"] is None


def test_write_transmissions_jsonl_leaves_out_nulls_and_quotes_bad_numbers(tmp_path):
    path = tmp_path / "rows.jsonl"
    write_transmissions([{**SAMPLE[0], "value": "abc"}, SAMPLE[1]], path)
    first, second = (json.loads(line) for line in path.read_text().splitlines())
    assert first["value"] == "abc" and first["distance_cm"] == 40.5
    assert "value" not in second and "eye" not in second


def read_transmissions_file(path: Path) -> tuple[list[dict], int]:
    """``read_transmissions`` on a single file placed in a landing layout."""
    root = path.parent / "landing"
    target = root / "transmissions" / "day" / path.name
    target.parent.mkdir(parents=True)
    target.write_bytes(path.read_bytes())
    return read_transmissions(root)
