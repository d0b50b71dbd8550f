"""The input contract (shared/contract.md) as data: landing kinds, fields, formats, reasons."""

from __future__ import annotations

from dataclasses import dataclass

# Fields of each landing kind, in contract order. Every field arrives as text and is typed by
# sql/ingest/validate_<kind>.sql, which also decides the quarantine reason.
FIELDS: dict[str, tuple[str, ...]] = {
    "transmissions": (
        "transmission_id",
        "exploitant_id",
        "activity_code",
        "patient_id",
        "measure_type",
        "eye",
        "measured_at",
        "received_at",
        "value",
        "unit",
        "distance_cm",
        "ambient_lux",
    ),
    "enrollments": (
        "enrollment_id",
        "patient_id",
        "activity_code",
        "exploitant_id",
        "operator_id",
        "start_date",
        "end_date",
        "end_reason",
        "ald",
        "monitoring_profile",  # optional (rules.md R3)
        "sessions_per_week",  # optional, hemodialysis (rules.md R3)
        "recorded_at",  # optional (rules.md R7b)
    ),
    "prescriptions": (
        "prescription_id",
        "enrollment_id",
        "kind",
        "valid_from",
        "valid_until",
        "recorded_at",  # optional (rules.md R7b)
    ),
    # the payer's answers to issued lines, from billing software (rules.md R12)
    "payments": (
        "line_id",
        "status",
        "paid_amount",
        "paid_on",
        "rejection_code",
        "rejection_label",
    ),
}
KINDS = tuple(FIELDS)

# Measure types sent under an older name, read as their current one (docs/contract.md).
MEASURE_TYPE_ALIASES: dict[str, str] = {"glucose": "glucose_sensor"}
# R12: the answers a payments file may give for an issued line.
PAYMENT_STATUSES = ("paid", "partially_paid", "rejected")
# R3: a hemodialysis enrollment's sessions a week, when sent, is a whole number in this range.
SESSIONS_PER_WEEK_RANGE = (1, 7)

# Identifiers (ID_FIELDS) are at most this many characters, none of them a control or format
# character (a NUL, a line end, a tab, a bidirectional override): `invalid_id` (docs/contract.md).
ID_MAX_LENGTH = 64
ID_FIELDS: dict[str, tuple[str, ...]] = {
    "transmissions": ("transmission_id", "exploitant_id", "patient_id"),
    "enrollments": ("enrollment_id", "patient_id", "exploitant_id", "operator_id"),
    "prescriptions": ("prescription_id", "enrollment_id"),
    "payments": ("line_id",),
}
# Numbers that a CSV file separated by `;` (French spreadsheets) writes with a decimal comma.
DECIMAL_FIELDS: dict[str, tuple[str, ...]] = {
    "transmissions": ("value", "distance_cm", "ambient_lux"),
    "payments": ("paid_amount",),
}

# File name endings read in the landing folder, and the reader each one uses.
FORMATS: dict[str, str] = {
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".jsonl.gz": "jsonl",
    ".ndjson.gz": "jsonl",
    ".csv": "csv",
    ".csv.gz": "csv",
    ".parquet": "parquet",
}


@dataclass(frozen=True)
class Reason:
    code: str
    meaning: str


# One code per failure kind; a row gets the first that applies, in this order.
QUARANTINE_REASONS: tuple[Reason, ...] = (
    Reason("malformed_record", "the record cannot be parsed (broken JSON, wrong CSV columns)"),
    Reason(
        "incomplete_record",
        "the file's last record has no line end: it may still be being written, so it is never "
        "loaded (the file's next version resolves it: resolved_by_file_id)",
    ),
    Reason("invalid_encoding", "the line is not UTF-8 (kept as read in Latin-1)"),
    Reason("missing_field", "a required field is absent or empty"),
    Reason(
        "invalid_id",
        f"an identifier longer than {ID_MAX_LENGTH} characters, or holding a control character "
        "(NUL, line end, tab, bidirectional override)",
    ),
    Reason("timestamp_without_offset", "a timestamp has no UTC offset (R1: never guessed)"),
    Reason(
        "invalid_timestamp",
        "a timestamp with an offset no clock uses (beyond -12:00/+14:00, minutes 60 or more): "
        "R1, it would move the instant to another day",
    ),
    Reason("bad_type", "a field does not parse as its type (number, date, timestamp, boolean)"),
    Reason(
        "future_timestamp",
        "a timestamp or payment date later than the run plus the tolerance (R1, "
        "config.FUTURE_TOLERANCE_HOURS)",
    ),
    Reason(
        "timestamp_out_of_range",
        "measured_at is outside the years the Paris calendar is built for (R1, reference.py)",
    ),
    Reason("unknown_activity", "activity_code is not in the catalog"),
    Reason("invalid_eye", "eye is not OD or OS, or missing on an eye test"),
    Reason("invalid_kind", "prescription kind is not trial, initial or renewal"),
    Reason("invalid_status", "a payment status other than paid, partially_paid or rejected"),
    Reason("unknown_line", "a payment for a line_id the ledger never issued (R12)"),
    Reason("overpayment", "a paid amount above the issued amount (R12)"),
    Reason(
        "inconsistent_payment",
        "the status and the amount disagree: paid not in full, partially paid in full or for "
        "nothing, rejected with an amount (R12)",
    ),
    Reason("conflicting_duplicate", "same key as a row already kept, with a different payload"),
    Reason(
        "contradictory_payment", "a second answer for an issued line, other than the first (R12)"
    ),
)
REASON_CODES = tuple(reason.code for reason in QUARANTINE_REASONS)


def format_of(name: str) -> str | None:
    """The reader for a file name, or None when the pipeline does not read that kind of file."""
    lowered = name.lower()
    for ending, fmt in sorted(FORMATS.items(), key=lambda item: -len(item[0])):
        if lowered.endswith(ending):
            return fmt
    return None
