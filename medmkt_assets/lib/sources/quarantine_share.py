"""When staging throws away (nearly) a whole required table, say so and stop.

A run whose patients all land in quarantine used to end green with empty marts: nothing
told the user the export had been thrown away (a date-shifted research export judged
against the wall clock, a wrong column mapping). `quarantine_verdict` judges the share of a
required table's raw rows that staging quarantined against a limit and, above it, writes
the message the blocking check fails the run with: the table, the share, the top reasons
and, per reason, what to try. Reasons are rule texts, never cell values.
"""
from __future__ import annotations

from dataclasses import dataclass

DEFAULT_LIMIT = 0.5
TOP_REASONS = 3
# (words in a quarantine reason, what to try); the first match per reason gives its hint.
HINTS = (
    ("in the future", "dates after the as-of time {as_of} ({basis}): for a date-shifted or historical export set "
                      "MEDMKT_AS_OF to the export's own extraction date (e.g. MEDMKT_AS_OF=YYYY-MM-DD), or unset "
                      "it so the latest event in the data is used"),
    ("unknown patient_id", "rows for patients that were not staged: look at quarantine.patients first, and check "
                           "that patient ids are the same in every table"),
    ("unknown product_id", "rows for products that were not staged: look at quarantine.products first"),
    ("not a valid", "values that do not parse: check the column's format (ISO 8601 dates, plain numbers)"),
    ("missing", "required values are blank: check that the right columns are read "
                "(MEDMKT_SOURCE_FORMAT, or the column names of MEDMKT_SOURCE_MAPPING)"),
    ("duplicate", "repeated keys: check that the export holds each row once"),
)


@dataclass(frozen=True)
class QuarantineVerdict:
    passed: bool
    share: float
    message: str


def share_text(share: float) -> str:
    return f"{share:.0%}" if share >= 0.01 or share == 0 else f"{share:.2%}"


def hints(reasons: list[str], as_of: str, basis: str) -> list[str]:
    """One hint per distinct advice the top reasons call for, in their order."""
    found: list[str] = []
    for reason in reasons:
        hint = next((h for words, h in HINTS if words in reason), None)
        if hint and hint.format(as_of=as_of, basis=basis) not in found:
            found.append(hint.format(as_of=as_of, basis=basis))
    return found


def quarantine_verdict(table: str, raw_rows: int, reasons: dict[str, int], limit: float = DEFAULT_LIMIT,
                       as_of: str = "", basis: str = "") -> QuarantineVerdict:
    """Passed unless more than `limit` of the table's raw rows were quarantined; the message
    names the table, the share, the top reasons with their counts and what to try."""
    quarantined = sum(reasons.values())
    share = quarantined / raw_rows if raw_rows else 0.0
    top = sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0]))[:TOP_REASONS]
    listed = "; ".join(f"{reason} ({n:,})" for reason, n in top) or "none"
    head = (f"{table}: {quarantined:,} of {raw_rows:,} rows ({share_text(share)}) quarantined in "
            f"quarantine.{table}")
    if share <= limit:
        return QuarantineVerdict(True, share, f"{head}, within the {share_text(limit)} allowed. Top reasons: {listed}.")
    tries = hints([r for r, _ in top], as_of, basis)
    return QuarantineVerdict(False, share, (
        f"{head}, more than the {share_text(limit)} allowed (MEDMKT_MAX_QUARANTINE_SHARE): the run stops here so "
        f"the analysis is not built on what is left. Top reasons: {listed}."
        + (f" Try: {' '.join(f'({i}) {t}.' for i, t in enumerate(tries, 1))}" if tries else "")))
