"""What every export adapter shares: the adapter interface, file lookup, CSV scans and
the keyword → category classifier for clinical product names.

An adapter validates its folder once (raising SourceError that names the file and the
column, never a cell value) and then hands out, per canonical table, a DuckDB SELECT
yielding the contract columns as VARCHAR plus `_source_file` (VARCHAR) and
`_source_row` (BIGINT), or None when the format has no such table.
"""
from __future__ import annotations

from pathlib import Path
from typing import Protocol

from medmkt_assets.lib.engine.sql import sql_literal
from medmkt_assets.lib.engine.warehouse import Session, WarehouseError
from medmkt_assets.lib.sources.files import SourceError


class ExportAdapter(Protocol):
    files: list[Path]        # every file the adapter reads: the inventory and the data snapshot hash
    notes: dict[str, str]    # shown as asset metadata: layout, missing optional inputs, ignored types

    def select(self, table: str) -> str | None: ...


# Keyword → category, first match wins; names are matched lower-cased. Order matters:
# the specific (a diabetic foot check, a children's allergy syrup) before the general.
CATEGORY_KEYWORDS = (
    ("vaccination", ("vaccin", "immuniz", "immunis", "booster", "toxoid", "influenza virus")),
    ("diabetes_care", ("insulin", "metformin", "glucose", "diabet", "a1c", "glipizide", "gliclazide",
                       "sitagliptin", "liraglutide", "lancet")),
    ("pediatrics", ("child", "pediatric", "paediatric", "infant", "newborn", "baby", "nappy", "well-child",
                    "growth check", "developmental", "rehydration")),
    ("cardiology", ("amlodipine", "lisinopril", "hydrochlorothiazide", "statin", "clopidogrel", "nitroglycerin",
                    "warfarin", "metoprolol", "losartan", "aspirin", "omega-3", "lipid", "holter", "cardio",
                    "electrocardiogram", "ecg", "cardiac", "heart", "coronary", "hypertension", "blood pressure")),
    ("respiratory", ("albuterol", "salbutamol", "fluticasone", "inhal", "asthma", "spirometry", "pulmonary",
                     "respiratory", "budesonide", "nebuli", "montelukast", "spacer", "peak flow", "cough",
                     "nasal", "allergy")),
    ("mental_health", ("depress", "anxiety", "sertraline", "fluoxetine", "citalopram", "escitalopram",
                       "bupropion", "psych", "mental", "substance", "cbt", "group therapy", "counsel")),
    ("wellbeing", ("mindfulness", "stress", "sleep", "melatonin", "meditation", "yoga", "massage", "nutrition",
                   "fitness", "magnesium", "weight management")),
    ("womens_health", ("contracept", "pregnan", "prenatal", "mammogra", "estradiol", "norethindrone",
                       "levonorgestrel", "obstetric", "cervical", "intrauterine", "gynae", "gyneco", "pap smear",
                       "folic", "menopaus", "breast", "fertility", "ultrasound", "iron supplement")),
    ("dermatology", ("dermat", "skin", "acne", "eczema", "psoria", "sunscreen", "moisturis", "moisturiz",
                     "hydrocortisone", "calcipotriol", "antifungal", "shampoo", "serum", "emollient", "laser")),
    ("orthopedics", ("orthop", "knee", "joint", "physiother", "glucosamine", "diclofenac", "walking stick",
                     "back support", "insole", "hydrotherapy", "hyaluronic", "compression", "fracture",
                     "arthr", "sprain")),
    ("pain_relief", ("acetaminophen", "paracetamol", "ibuprofen", "naproxen", "oxycodone", "hydrocodone",
                     "tramadol", "fentanyl", "morphine", "meperidine")),
    ("dental", ("dental", "tooth", "teeth", "periodont")),
    ("checkup", ("screening", "assessment", "examination", "check", "evaluation", "review", "reconciliation",
                 "panel", "test", "x-ray", "scan", "encounter")),
)


def category_sql(name_sql: str, fallback_sql: str) -> str:
    """A CASE expression mapping a product name to a category by CATEGORY_KEYWORDS."""
    cases = " ".join(
        "WHEN " + " OR ".join(f"contains(lower({name_sql}), {sql_literal(k)})" for k in keys)
        + f" THEN {sql_literal(category)}"
        for category, keys in CATEGORY_KEYWORDS
    )
    return f"CASE {cases} ELSE {fallback_sql} END"


def category_of(name: str, fallback: str = "other") -> str:
    """The same classification in Python (tests, the demo generator's checks)."""
    lowered = name.lower()
    for category, keys in CATEGORY_KEYWORDS:
        if any(k in lowered for k in keys):
            return category
    return fallback


def csv_options(con: Session, path: Path) -> str:
    """read_csv options fixing the delimiter and quoting as DuckDB's strict sniffer sees them.

    Why: with strict_mode=false and null_padding=true (kept so ragged rows still load) the
    sniffer may take ' for the quote, and a quoted CONCEPT name with commas then spills into
    the next columns without any error. Athena's tab-separated vocabularies sniff as unquoted.
    """
    try:
        rows = con.execute("SELECT Delimiter, Quote, Escape FROM sniff_csv(?)", [str(path)]).fetchall()
    except WarehouseError:
        return ""  # let read_csv's own (lenient) sniffing try
    delim, quote, escape = ("" if v == "(empty)" else v for v in rows[0])
    escape = escape or quote  # no escape seen in the sniffed rows: a doubled quote (RFC 4180) later on
    return f", delim={sql_literal(delim)}, quote={sql_literal(quote)}, escape={sql_literal(escape)}"


def scan_sql(path: Path, con: Session | None = None) -> str:
    """A table function reading every column of a CSV (delimiter sniffed, and with `con` the
    quoting too, see csv_options) or Parquet file as text, with `_source_row`, the 1-based data
    row in the file (a serial CSV read keeps file order)."""
    if path.suffix.lower() == ".parquet":
        return (f"(SELECT * EXCLUDE (file_row_number), CAST(file_row_number + 1 AS BIGINT) AS _source_row "
                f"FROM read_parquet({sql_literal(str(path))}, file_row_number=true))")
    options = csv_options(con, path) if con is not None else ""
    return (f"(SELECT *, CAST(row_number() OVER () AS BIGINT) AS _source_row FROM read_csv("
            f"{sql_literal(str(path))}, header=true, all_varchar=true, strict_mode=false, null_padding=true, "
            f"parallel=false{options}))")


def read_header(con: Session, path: Path) -> tuple[str, list[str], bool]:
    """The file's scan (quoting sniffed once), its columns and whether it has a data row; an empty
    file has none of either, an unreadable one is refused naming it."""
    if path.stat().st_size == 0:
        return "", [], False
    scan = scan_sql(path, con)
    try:
        columns = [r[0] for r in con.execute(f"DESCRIBE SELECT * FROM {scan}").fetchall() if r[0] != "_source_row"]
        has_rows = con.execute(f"SELECT count(*) FROM (SELECT 1 FROM {scan} LIMIT 1)").fetchall()[0][0] > 0
    except WarehouseError as exc:  # DuckDB's message may quote a line of data: name the kind only
        raise SourceError(f"{path}: cannot be read as CSV with a header row ({type(exc).__name__})") from exc
    return scan, columns, has_rows
