"""Synthea CSV exports, every layout from 2.x to 3.x → canonical patients, products, orders, diagnoses.

Mapping: patients.csv → patients (insurance from the latest payer transition, or the
latest encounter's payer when there are no transitions); medications, procedures,
immunizations and devices → products (one per code and kind) and order lines (one
order per encounter, channel from the encounter class); conditions → diagnoses.
Campaign, consent, survey and event tables do not exist in Synthea.

Layouts differ by version and by export settings: procedures have DATE (2.x) or
START (3.x); payer transitions START_YEAR (2.x) or START_DATE (3.x); payers.csv has
OWNERSHIP in some 3.x releases only (2.x puts an OWNERSHIP column meaning the plan
holder - Self, Guardian - in payer_transitions); FIPS and INCOME come and go; optional
files may be missing or empty. Only patients.csv with its Id column is truly
required; whatever else is missing is left empty and listed in `notes`.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from medmkt_assets.lib.engine.sql import quote_ident, sql_literal
from medmkt_assets.lib.engine.warehouse import Session
from medmkt_assets.lib.sources.adapters.common import category_sql, read_header
from medmkt_assets.lib.sources.files import SourceError, find_table_file

CHANNEL_BY_CLASS = {"virtual": "online", "home": "phone"}  # every other encounter class is a clinic visit
# Payer names Synthea uses for public programmes (when payers.csv has no OWNERSHIP column).
PUBLIC_PAYER_WORDS = ("medicare", "medicaid", "dual eligible", "tricare", "indian health", "government")


@dataclass(frozen=True)
class ItemFile:
    """One Synthea file whose rows are things a patient received (an order line each)."""

    name: str
    prefix: str            # product_id = prefix:CODE
    kind: str
    dates: tuple[str, ...]  # candidate date columns, first present wins (layouts differ)
    quantity: str | None
    cost: str | None


ITEM_FILES = (
    ItemFile("medications", "med", "drug", ("START",), "DISPENSES", "BASE_COST"),
    ItemFile("procedures", "proc", "service", ("START", "DATE"), None, "BASE_COST"),
    ItemFile("immunizations", "imm", "service", ("DATE", "START"), None, "BASE_COST"),
    ItemFile("devices", "dev", "device", ("START", "DATE"), None, None),
)
ITEM_REQUIRED = ("PATIENT", "CODE")


def _col(have: set[str], name: str, fallback: str = "NULL") -> str:
    """The column if the file has it (names compared upper-cased, as DuckDB binds them
    case-insensitively), else the fallback."""
    return quote_ident(name) if name.upper() in have else f"CAST({fallback} AS VARCHAR)"


class SyntheaExport:
    """Validates an export folder once and yields the canonical SELECT for each table."""

    def __init__(self, con: Session, source_dir: Path):
        self.dir = source_dir
        if not source_dir.is_dir():
            raise SourceError(f"{source_dir}: not a folder; MEDMKT_SOURCE_DIR should be a Synthea export's csv folder")
        self.paths: dict[str, Path] = {}
        self.columns: dict[str, set[str]] = {}
        self.scans: dict[str, str] = {}  # name -> rows with _source_row, quoting sniffed once
        missing: list[str] = []
        for name in ("patients", "encounters", "conditions", "payers", "payer_transitions",
                     *(item.name for item in ITEM_FILES)):
            path = find_table_file(source_dir, name, (".csv",))
            scan, columns, has_rows = read_header(con, path) if path is not None else ("", [], False)
            if not has_rows:
                missing.append(f"{name}.csv ({'absent' if path is None else 'empty'})")
                continue
            self.paths[name], self.scans[name] = path, scan
            self.columns[name] = {c.upper() for c in columns}  # Synthea 1.x wrote ID
        if "patients" not in self.paths:
            raise SourceError(f"{source_dir / 'patients.csv'}: not found or empty; a Synthea export needs "
                              "patients.csv (is MEDMKT_SOURCE_DIR the export's csv folder?)")
        self._require("patients", ("Id",), "the patient id")
        for item in ITEM_FILES:
            if item.name in self.paths:
                self._require(item.name, ITEM_REQUIRED, "who received what")
                if not any(d.upper() in self.columns[item.name] for d in item.dates):
                    raise SourceError(f"{self.paths[item.name]} has no {' or '.join(item.dates)}; "
                                      "expected the date each item was given")
        if "encounters" in self.paths:
            self._require("encounters", ("Id", "PATIENT"), "each encounter's id and patient")
        if "conditions" in self.paths:
            self._require("conditions", ("PATIENT", "CODE"), "who has which condition")
        self.notes = {"layout": self._layout(), "missing_optional_inputs": ", ".join(missing) or "none"}
        self.insurance_note = self._plan_insurance()
        self.notes["insurance_type"] = self.insurance_note
        self.version = self.notes["layout"].split()[1]

    @property
    def files(self) -> list[Path]:
        return sorted(self.paths.values())

    def _require(self, name: str, columns: tuple[str, ...], why: str) -> None:
        for column in columns:
            if column.upper() not in self.columns[name]:
                raise SourceError(f"{self.paths[name]} has no column {column}; a Synthea {name}.csv needs "
                                  f"{', '.join(columns)} ({why}). Is this a Synthea 2.x/3.x export?")

    def _layout(self) -> str:
        """'Synthea 2.x' or 'Synthea 3.x', read off the columns that changed between versions."""
        three = ("START" in self.columns.get("procedures", set())
                 or "START_DATE" in self.columns.get("payer_transitions", set())
                 or "FIPS" in self.columns["patients"] or "INCOME" in self.columns["patients"])
        return "Synthea 3.x" if three else "Synthea 2.x"

    def _plan_insurance(self) -> str:
        """Decide where insurance comes from; returns a sentence for the metadata."""
        self.payer_events = None  # (file, column ordering the events) insurance is read from
        transitions = self.columns.get("payer_transitions", set())
        encounters = self.columns.get("encounters", set())
        if "payers" not in self.paths:
            return "payers.csv absent: insurance_type left empty"
        if {"PATIENT", "PAYER"} <= transitions:
            start = next((c for c in ("START_DATE", "START_YEAR") if c in transitions), None)
            self.payer_events = ("payer_transitions", start)
            source = f"latest payer_transitions.csv row by {start or 'file order'}"
        elif {"PATIENT", "PAYER", "START"} <= encounters:
            self.payer_events = ("encounters", "START")
            source = "payer of the latest encounter (no usable payer_transitions.csv)"
        else:
            return "no payer_transitions.csv or encounters.PAYER: insurance_type left empty"
        if "OWNERSHIP" in self.columns["payers"]:
            return f"{source}; payer type from payers.csv OWNERSHIP"
        return (f"{source}; payers.csv has no OWNERSHIP (expected there in Synthea 3.x, absent in 2.x and "
                "some 3.x releases): public/commercial/self_pay derived from the payer NAME")

    def select(self, table: str) -> str | None:
        builder = getattr(self, f"_{table}", None)
        return builder() if builder else None

    def _insurance(self) -> str:
        if self.payer_events is None:
            return "SELECT NULL::VARCHAR AS PATIENT, NULL::VARCHAR AS insurance_type LIMIT 0"
        events, start = self.payer_events
        payers = self.columns["payers"]
        name = "upper(coalesce(p.NAME, ''))" if "NAME" in payers else "''"
        ownership = "upper(p.OWNERSHIP)" if "OWNERSHIP" in payers else "NULL"
        public_name = " OR ".join(f"contains(lower({name}), {sql_literal(w)})" for w in PUBLIC_PAYER_WORDS)
        order = f"t.{quote_ident(start)}, t._source_row" if start else "t._source_row"
        return f"""
            SELECT t.PATIENT, arg_max(CASE
                       WHEN {name} = 'NO_INSURANCE' OR {ownership} = 'NO_INSURANCE' THEN 'self_pay'
                       WHEN {ownership} = 'GOVERNMENT' OR {public_name} THEN 'public'
                       WHEN p.Id IS NULL THEN NULL
                       ELSE 'commercial' END, ({order})) AS insurance_type
            FROM {self.scans[events]} t LEFT JOIN {self.scans['payers']} p ON p.Id = t.PAYER
            GROUP BY t.PATIENT"""

    def _first_visits(self) -> str:
        if "START" not in self.columns.get("encounters", set()):
            return "SELECT NULL::VARCHAR AS PATIENT, NULL::VARCHAR AS first_start LIMIT 0"
        return f"SELECT PATIENT, min(START) AS first_start FROM {self.scans['encounters']} GROUP BY PATIENT"

    def _patients(self) -> str:
        path, has = self.paths["patients"], self.columns["patients"]
        first, last = _col(has, "FIRST", "''"), _col(has, "LAST", "''")
        return f"""
            WITH src AS {self.scans['patients']},
                 first_visit AS ({self._first_visits()}),
                 insurance AS ({self._insurance()})
            SELECT src.Id AS patient_id, nullif(concat_ws(' ', {first}, {last}), '') AS full_name,
                   {_col(has, 'GENDER')} AS gender, {_col(has, 'BIRTHDATE')} AS birth_date,
                   NULL::VARCHAR AS phone, NULL::VARCHAR AS email, {_col(has, 'ADDRESS')} AS address,
                   {_col(has, 'CITY')} AS city, {_col(has, 'STATE')} AS region, {_col(has, 'ZIP')} AS postal_code,
                   i.insurance_type, left(f.first_start, 10) AS registered_at, {_col(has, 'DEATHDATE')} AS death_date,
                   {sql_literal(str(path))} AS _source_file, src._source_row
            FROM src LEFT JOIN first_visit f ON f.PATIENT = src.Id
                     LEFT JOIN insurance i ON i.PATIENT = src.Id
            ORDER BY src._source_row"""

    def _items(self) -> str:
        """Every dispensed medication, performed procedure, given vaccine and device as one line."""
        parts = []
        for item in ITEM_FILES:
            if item.name not in self.paths:
                continue
            path, has = self.paths[item.name], self.columns[item.name]
            date = next(d for d in item.dates if d.upper() in has)
            quantity = _col(has, item.quantity, "'1'") if item.quantity else "'1'"
            parts.append(f"""
                SELECT '{item.prefix}:' || CODE AS product_id, {_col(has, 'DESCRIPTION', 'CODE')} AS name,
                       '{item.kind}' AS kind, '{item.name}' AS source, PATIENT, {_col(has, 'ENCOUNTER')} AS ENCOUNTER,
                       {quote_ident(date)} AS started, {quantity} AS quantity,
                       {_col(has, item.cost) if item.cost else 'NULL::VARCHAR'} AS BASE_COST,
                       {sql_literal(str(path))} AS _source_file, _source_row
                FROM {self.scans[item.name]}""")
        if not parts:
            return ("SELECT NULL::VARCHAR AS product_id, NULL::VARCHAR AS name, NULL::VARCHAR AS kind, "
                    "NULL::VARCHAR AS source, NULL::VARCHAR AS PATIENT, NULL::VARCHAR AS ENCOUNTER, "
                    "NULL::VARCHAR AS started, NULL::VARCHAR AS quantity, NULL::VARCHAR AS BASE_COST, "
                    "NULL::VARCHAR AS _source_file, NULL::BIGINT AS _source_row LIMIT 0")
        return " UNION ALL ".join(parts)

    def _products(self) -> str:
        category = category_sql("name", "CASE source WHEN 'medications' THEN 'general_medicine' "
                                        "WHEN 'devices' THEN 'general_devices' ELSE 'general_procedures' END")
        return f"""
            WITH items AS ({self._items()}),
                 products AS (
                     SELECT product_id, min(name) AS name, min(source) AS source, min(kind) AS kind,
                            median(try_cast(BASE_COST AS DOUBLE)) AS price,
                            arg_min(_source_file, (_source_file, _source_row)) AS _source_file,
                            min(_source_row) AS _source_row
                     FROM items GROUP BY product_id)
            SELECT product_id, name,
                   CASE WHEN source = 'immunizations' THEN 'vaccination' ELSE {category} END AS category, kind,
                   CAST(round(price, 2) AS VARCHAR) AS unit_price,
                   CASE WHEN source = 'medications' THEN 'true' ELSE 'false' END AS rx_only,
                   name AS description, _source_file, _source_row
            FROM products ORDER BY product_id"""

    def _encounters(self) -> str:
        if "encounters" not in self.paths:
            return ("SELECT NULL::VARCHAR AS Id, NULL::VARCHAR AS START, NULL::VARCHAR AS ENCOUNTERCLASS, "
                    "NULL::VARCHAR AS ORGANIZATION LIMIT 0")
        has = self.columns["encounters"]
        return (f"SELECT Id, {_col(has, 'START')} AS START, {_col(has, 'ENCOUNTERCLASS')} AS ENCOUNTERCLASS, "
                f"{_col(has, 'ORGANIZATION')} AS ORGANIZATION FROM {self.scans['encounters']}")

    def _orders(self) -> str:
        channel = " ".join(f"WHEN '{k}' THEN '{v}'" for k, v in CHANNEL_BY_CLASS.items())
        return f"""
            WITH items AS (
                     SELECT *, coalesce(ENCOUNTER, 'patient:' || PATIENT || ':' || left(started, 10)) AS order_id
                     FROM ({self._items()})),
                 lines AS (
                     SELECT order_id, product_id, any_value(ENCOUNTER) AS ENCOUNTER, any_value(PATIENT) AS PATIENT,
                            min(started) AS started,
                            CAST(sum(greatest(coalesce(try_cast(quantity AS BIGINT), 1), 1)) AS VARCHAR) AS quantity,
                            CAST(round(avg(try_cast(BASE_COST AS DOUBLE)), 2) AS VARCHAR) AS unit_price,
                            arg_min(_source_file, (_source_file, _source_row)) AS _source_file,
                            min(_source_row) AS _source_row
                     FROM items GROUP BY order_id, product_id)
            SELECT l.order_id,
                   CAST(row_number() OVER (PARTITION BY l.order_id ORDER BY l.product_id) AS VARCHAR) AS line_no,
                   l.PATIENT AS patient_id, l.product_id, coalesce(e.START, l.started) AS ordered_at,
                   l.quantity, l.unit_price,
                   CASE lower(e.ENCOUNTERCLASS) {channel} ELSE 'clinic' END AS channel,
                   e.ORGANIZATION AS facility_id, l._source_file, l._source_row
            FROM lines l LEFT JOIN ({self._encounters()}) e ON e.Id = l.ENCOUNTER
            ORDER BY l._source_file, l._source_row"""

    def _diagnoses(self) -> str | None:
        if "conditions" not in self.paths:
            return None
        path, has = self.paths["conditions"], self.columns["conditions"]
        return f"""
            SELECT PATIENT AS patient_id, CODE AS condition_code, {_col(has, 'DESCRIPTION')} AS condition_name,
                   left({_col(has, 'START')}, 10) AS diagnosed_at, {sql_literal(str(path))} AS _source_file,
                   _source_row
            FROM {self.scans['conditions']}"""
