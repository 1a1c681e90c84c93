"""Synthea CSV exports (2.x and 3.x) → canonical patients, products, orders, diagnoses.

Mapping: patients.csv → patients (insurance from the latest payer transition);
medications, procedures and immunizations → products (one per code and kind) and
order lines (one order per encounter, channel from the encounter class); conditions
→ diagnoses. Campaign, consent, survey and event tables do not exist in Synthea.
"""
from __future__ import annotations

from pathlib import Path

import duckdb

from medmkt_assets.lib.sources import SourceError, quote_ident, sql_literal

REQUIRED_COLUMNS = {
    "patients": ("Id", "BIRTHDATE", "GENDER", "FIRST", "LAST", "CITY", "STATE"),
    "encounters": ("Id", "START", "PATIENT", "ORGANIZATION", "ENCOUNTERCLASS"),
    "medications": ("START", "PATIENT", "ENCOUNTER", "CODE", "DESCRIPTION", "BASE_COST"),
    "procedures": ("START", "PATIENT", "ENCOUNTER", "CODE", "DESCRIPTION", "BASE_COST"),
    "immunizations": ("DATE", "PATIENT", "ENCOUNTER", "CODE", "DESCRIPTION", "BASE_COST"),
    "conditions": ("START", "PATIENT", "CODE", "DESCRIPTION"),
}
# Payer-transition layouts: Synthea 3.x has START_DATE/END_DATE, 2.x START_YEAR/END_YEAR.
PAYER_VARIANTS = {"3.x": ("START_DATE", "PAYER"), "2.x": ("START_YEAR", "PAYER")}

# Keyword → category, first match wins; descriptions are matched lower-cased.
CATEGORY_KEYWORDS = (
    ("diabetes_care", ("insulin", "metformin", "glucose", "diabet", "a1c", "glipizide", "liraglutide")),
    ("cardiology", ("amlodipine", "lisinopril", "hydrochlorothiazide", "statin", "clopidogrel", "nitroglycerin",
                    "warfarin", "metoprolol", "electrocardiogram", "cardiac", "heart", "coronary", "hypertension")),
    ("respiratory", ("albuterol", "fluticasone", "inhal", "asthma", "spirometry", "pulmonary", "respiratory",
                     "budesonide", "nebuliz")),
    ("mental_health", ("depress", "anxiety", "sertraline", "fluoxetine", "citalopram", "bupropion", "psych",
                       "mental", "substance")),
    ("womens_health", ("contracept", "pregnan", "prenatal", "mammogra", "estradiol", "norethindrone",
                       "levonorgestrel", "obstetric", "cervical", "intrauterine")),
    ("pain_relief", ("acetaminophen", "ibuprofen", "naproxen", "oxycodone", "hydrocodone", "tramadol",
                     "fentanyl", "morphine", "meperidine")),
    ("dental", ("dental", "tooth", "teeth", "periodont")),
    ("pediatrics", ("child", "pediatric", "infant", "newborn")),
    ("checkup", ("screening", "assessment", "examination", "check", "evaluation", "review", "reconciliation")),
)
CHANNEL_BY_CLASS = {"virtual": "online", "home": "phone"}  # every other encounter class is a clinic visit


def _columns(con: duckdb.DuckDBPyConnection, path: Path) -> list[str]:
    return [r[0] for r in con.execute(f"DESCRIBE SELECT * FROM {_scan(path)}").fetchall()]


def _scan(path: Path) -> str:
    return f"read_csv({sql_literal(str(path))}, header=true, all_varchar=true)"


def _file(source_dir: Path, name: str, required: bool = True) -> Path | None:
    path = source_dir / f"{name}.csv"
    if not path.is_file():
        if required:
            raise SourceError(f"{path}: not found; a Synthea export needs {name}.csv "
                              "(is MEDMKT_SOURCE_DIR the export's csv folder?)")
        return None
    return path


def _category_sql(description: str, fallback: str) -> str:
    cases = " ".join(
        "WHEN " + " OR ".join(f"contains(lower({description}), '{k}')" for k in keys) + f" THEN '{category}'"
        for category, keys in CATEGORY_KEYWORDS
    )
    return f"CASE {cases} ELSE {fallback} END"


class SyntheaExport:
    """Validates an export folder once and yields the canonical SELECT for each table."""

    def __init__(self, con: duckdb.DuckDBPyConnection, source_dir: Path):
        self.dir = source_dir
        self.files = {name: _file(source_dir, name) for name in REQUIRED_COLUMNS}
        self.columns = {name: set(_columns(con, path)) for name, path in self.files.items()}
        for name, needed in REQUIRED_COLUMNS.items():
            have = self.columns[name]
            missing = [c for c in needed if c not in have]
            if missing:
                raise SourceError(f"{self.files[name]}: column '{missing[0]}' is missing; this is not a "
                                  "Synthea 2.x/3.x export (or the file is damaged)")
        self.payer_start = None
        transitions = _file(source_dir, "payer_transitions", required=False)
        payers = _file(source_dir, "payers", required=False)
        if transitions and payers:
            have = _columns(con, transitions)
            for version, (start, payer) in PAYER_VARIANTS.items():
                if start in have and payer in have:
                    self.payer_start, self.version = start, version
                    break
            else:
                raise SourceError(f"{transitions}: neither START_DATE (Synthea 3.x) nor START_YEAR (2.x) "
                                  "found; unknown payer_transitions layout")
            self.transitions, self.payers = transitions, payers

    def select(self, table: str) -> str | None:
        builder = getattr(self, f"_{table}", None)
        return builder() if builder else None

    def _insurance(self) -> str:
        if not self.payer_start:
            return "SELECT NULL::VARCHAR AS PATIENT, NULL::VARCHAR AS insurance_type LIMIT 0"
        return f"""
            SELECT t.PATIENT, arg_max(CASE
                       WHEN upper(p.NAME) = 'NO_INSURANCE' THEN 'self_pay'
                       WHEN upper(p.OWNERSHIP) = 'GOVERNMENT' THEN 'public'
                       ELSE 'commercial' END, t.{quote_ident(self.payer_start)}) AS insurance_type
            FROM {_scan(self.transitions)} t JOIN {_scan(self.payers)} p ON p.Id = t.PAYER
            GROUP BY t.PATIENT"""

    def _patients(self) -> str:
        path = self.files["patients"]
        has = self.columns["patients"]
        address = "ADDRESS" if "ADDRESS" in has else "NULL"
        zip_code = "ZIP" if "ZIP" in has else "NULL"
        death = "DEATHDATE" if "DEATHDATE" in has else "NULL"
        return f"""
            WITH src AS (SELECT *, row_number() OVER () AS _row FROM {_scan(path)}),
                 first_visit AS (SELECT PATIENT, min(START) AS first_start
                                 FROM {_scan(self.files['encounters'])} GROUP BY PATIENT),
                 insurance AS ({self._insurance()})
            SELECT src.Id AS patient_id, concat_ws(' ', FIRST, LAST) AS full_name, GENDER AS gender,
                   BIRTHDATE AS birth_date, NULL::VARCHAR AS phone, NULL::VARCHAR AS email,
                   {address} AS address, CITY AS city, STATE AS region, {zip_code} AS postal_code,
                   i.insurance_type, left(f.first_start, 10) AS registered_at, {death} AS death_date,
                   {sql_literal(str(path))} AS _source_file, CAST(src._row AS BIGINT) AS _source_row
            FROM src LEFT JOIN first_visit f ON f.PATIENT = src.Id
                     LEFT JOIN insurance i ON i.PATIENT = src.Id
            ORDER BY src._row"""

    def _items(self) -> str:
        """Every dispensed medication, performed procedure and given vaccine as one line."""
        parts = []
        for name, prefix, kind, start, quantity in (
            ("medications", "med", "drug", "START", "DISPENSES"),
            ("procedures", "proc", "service", "START", None),
            ("immunizations", "imm", "service", "DATE", None),
        ):
            path = self.files[name]
            qty = quantity if quantity and quantity in self.columns[name] else "'1'"
            parts.append(f"""
                SELECT '{prefix}:' || CODE AS product_id, DESCRIPTION AS name, '{kind}' AS kind,
                       '{name}' AS source, PATIENT, ENCOUNTER, {start} AS started, {qty} AS quantity,
                       BASE_COST, {sql_literal(str(path))} AS _source_file,
                       CAST(row_number() OVER () AS BIGINT) AS _source_row
                FROM {_scan(path)}""")
        return " UNION ALL ".join(parts)

    def _products(self) -> str:
        category = _category_sql("name", "CASE source WHEN 'medications' THEN 'general_medicine' "
                                         "ELSE 'general_procedures' END")
        return f"""
            WITH items AS ({self._items()}),
                 products AS (
                     SELECT product_id, min(name) AS name, min(source) AS source, min(kind) AS kind,
                            median(try_cast(BASE_COST AS DOUBLE)) AS price,
                            min(_source_file) AS _source_file, min(_source_row) AS _source_row
                     FROM items GROUP BY product_id)
            SELECT product_id, name,
                   CASE WHEN source = 'immunizations' THEN 'vaccination' ELSE {category} END AS category, kind,
                   CAST(round(price, 2) AS VARCHAR) AS unit_price,
                   CASE WHEN source = 'medications' THEN 'true' ELSE 'false' END AS rx_only,
                   name AS description, _source_file, _source_row
            FROM products ORDER BY product_id"""

    def _orders(self) -> str:
        channel = " ".join(f"WHEN '{k}' THEN '{v}'" for k, v in CHANNEL_BY_CLASS.items())
        return f"""
            WITH items AS ({self._items()}),
                 lines AS (
                     SELECT ENCOUNTER, product_id, any_value(PATIENT) AS PATIENT, min(started) AS started,
                            CAST(sum(greatest(coalesce(try_cast(quantity AS BIGINT), 1), 1)) AS VARCHAR) AS quantity,
                            CAST(round(avg(try_cast(BASE_COST AS DOUBLE)), 2) AS VARCHAR) AS unit_price,
                            min(_source_file) AS _source_file, min(_source_row) AS _source_row
                     FROM items GROUP BY ENCOUNTER, product_id)
            SELECT l.ENCOUNTER AS order_id,
                   CAST(row_number() OVER (PARTITION BY l.ENCOUNTER ORDER BY l.product_id) AS VARCHAR) AS line_no,
                   l.PATIENT AS patient_id, l.product_id, coalesce(e.START, l.started) AS ordered_at,
                   l.quantity, l.unit_price,
                   CASE lower(e.ENCOUNTERCLASS) {channel} ELSE 'clinic' END AS channel,
                   e.ORGANIZATION AS facility_id, l._source_file, l._source_row
            FROM lines l LEFT JOIN {_scan(self.files['encounters'])} e ON e.Id = l.ENCOUNTER
            ORDER BY l._source_file, l._source_row"""

    def _diagnoses(self) -> str:
        path = self.files["conditions"]
        return f"""
            SELECT PATIENT AS patient_id, CODE AS condition_code, DESCRIPTION AS condition_name,
                   left(START, 10) AS diagnosed_at, {sql_literal(str(path))} AS _source_file,
                   CAST(row_number() OVER () AS BIGINT) AS _source_row
            FROM {_scan(path)}"""

