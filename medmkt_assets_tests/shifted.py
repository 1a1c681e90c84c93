"""A date-shifted copy of a source folder, as de-identified research exports are (MIMIC's dates
lie in the 22nd century): every ISO date in every file moves by whole years.

Whole years keep month and day (Feb 29 of a year whose shifted year has none becomes Feb 28),
so monthly trends bin the same and, within the demo world's years (2012-2026 and their shifted
twins, the same leap years a century on), every day difference is unchanged.
"""
from __future__ import annotations

import calendar
import csv
import gzip
import io
import re
import shutil
from pathlib import Path

ISO_DATE = re.compile(r"(?<!\d)(\d{4})-(\d{2})-(\d{2})(?!\d)")
YEAR_COLUMNS = {"person": ("year_of_birth",)}  # OMOP keeps the birth year in a column of its own


def shift_text(text: str, years: int) -> str:
    """Every YYYY-MM-DD in the text, `years` later."""
    def later(match: re.Match) -> str:
        year, month, day = int(match.group(1)) + years, int(match.group(2)), int(match.group(3))
        if month == 2 and day == 29 and not calendar.isleap(year):
            day = 28
        return f"{year:04d}-{month:02d}-{day:02d}"
    return ISO_DATE.sub(later, text)


def _shift_year_columns(text: str, columns: tuple[str, ...], years: int) -> str:
    delimiter = "\t" if "\t" in text.split("\n", 1)[0] else ","
    rows = list(csv.reader(io.StringIO(text), delimiter=delimiter))
    header = [c.lower() for c in rows[0]]
    for column in columns:
        if column in header:
            i = header.index(column)
            for row in rows[1:]:
                if i < len(row) and row[i].strip().isdigit():
                    row[i] = str(int(row[i]) + years)
    out = io.StringIO()
    csv.writer(out, delimiter=delimiter, lineterminator="\n").writerows(rows)
    return out.getvalue()


def shift_file(path: Path, target: Path, years: int) -> None:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8-sig") as handle:
        text = shift_text(handle.read(), years)
    stem = path.name.split(".")[0].lower()
    if stem in YEAR_COLUMNS and ".csv" in path.name.lower():
        text = _shift_year_columns(text, YEAR_COLUMNS[stem], years)
    with opener(target, "wt", encoding="utf-8") as handle:
        handle.write(text)


def shift_export(source: Path, target: Path, years: int = 100) -> Path:
    """A copy of `source` (without the demo's `_truth/`) with every date `years` later."""
    for path in sorted(source.rglob("*")):
        relative = path.relative_to(source)
        if relative.parts[0] == "_truth" or path.is_dir():
            continue
        out = target / relative
        out.parent.mkdir(parents=True, exist_ok=True)
        if path.suffix.lower() in (".csv", ".ndjson", ".json", ".gz", ".txt", ".tsv"):
            shift_file(path, out, years)
        else:
            shutil.copy2(path, out)
    return target


# What a date-shifted run is compared on: the analysis of the same world, dates aside.
ANALYSIS = ("ingest", "staging", "profiles", "segments", "rules", "recommend")
SAME_TABLES = {
    "marts.patient_segments": "patient_key",
    "marts.association_rules": "scope, antecedents, consequents",
    "marts.recommendations": "patient_key, rank",
}
PROFILE_DATES = ("first_order_at", "last_order_at", "as_of")


def _frame(con, sql: str):
    return con.execute(sql).fetchdf()


def analysis_differences(plain, shifted, years: int) -> list[str]:
    """Where the shifted run's segments, rules, recommendations, profiles or quarantine differ from
    the plain run's (profile dates must be exactly `years` later); empty when they agree."""
    differences = []
    for table, order in SAME_TABLES.items():
        sql = f"SELECT * EXCLUDE (rule_id) FROM {table} ORDER BY {order}" if "rules" in table else \
            f"SELECT * FROM {table} ORDER BY {order}"
        a, b = _frame(plain, sql), _frame(shifted, sql)
        if a.empty or not a.equals(b):
            differences.append(f"{table}: {len(a)} rows plain, {len(b)} shifted, equal={a.equals(b)}")
    sql = "SELECT * FROM marts.patient_profiles ORDER BY patient_key"
    a, b = _frame(plain, sql), _frame(shifted, sql)
    if a.empty or not a.drop(columns=list(PROFILE_DATES)).equals(b.drop(columns=list(PROFILE_DATES))):
        differences.append("marts.patient_profiles: columns other than dates differ")
    for column in PROFILE_DATES:
        later = a[column].map(lambda t: t if t is None or t != t else t.replace(year=t.year + years))
        if not later.astype(str).equals(b[column].astype(str)):
            differences.append(f"marts.patient_profiles.{column} is not {years} years later")
    reasons = "SELECT _reason, count(*) FROM quarantine.{} GROUP BY 1 ORDER BY 1"
    for table in ("patients", "orders", "diagnoses", "consents", "events"):
        if plain.execute(reasons.format(table)).fetchall() != shifted.execute(reasons.format(table)).fetchall():
            differences.append(f"quarantine.{table} differs")
    return differences
