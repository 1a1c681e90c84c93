"""OMOP CDM 5.3 / 5.4 exports → canonical patients, products, orders, diagnoses.

The export is a folder of CDM tables, one file each: `<table>.csv` (comma- or
tab-separated, `.csv.gz` too) or `<table>.parquet`, file and column names in any case.
Only `person` is required; every other table below is used when present and its
absence (or a header-only file) only empties what it feeds (`notes`).
Campaigns, campaign contacts, consents, surveys and events do not exist in OMOP.

| canonical column | OMOP source |
|---|---|
| patients.patient_id (and every table's patient_id) | person.person_source_value when non-blank, else person.person_id; events join person on person_id, an event whose person_id is not in person keeps that person_id (staging quarantines it as an unknown patient) |
| patients.gender | gender_concept_id 8507 → M, 8532 → F, else gender_source_value |
| patients.birth_date | date of birth_datetime, else year_of_birth-month_of_birth-day_of_birth (month, day default 1) |
| patients.address / city / region / postal_code | location.address_1 / city / state / zip via person.location_id |
| patients.full_name / phone / email | empty (OMOP holds none) |
| patients.insurance_type | latest payer_plan_period (by start date) per person; words in payer_source_value, plan_source_value and the payer concept's name: medicare, medicaid, dual, government, public → public; no insurance, uninsured, no payment, self (not self-insured/-funded) → self_pay; anything else → commercial; no payer text or no period → empty |
| patients.registered_at | earliest observation_period_start_date, else the first visit_start_date |
| patients.death_date | death.death_date (or the date of death_datetime), else person.death_datetime (CDM 6 style) |
| products.product_id | `drug:` + drug_concept_id, `proc:` + procedure_concept_id, `device:` + device_concept_id; concept 0 or blank → `drug:src:` + drug_source_value (etc.); neither → `drug:0` |
| products.name | concept.concept_name, else the first event's source value, else `concept <id>` |
| products.kind / rx_only | drug / service / device; rx_only true for drugs only |
| products.category | vaccination when the concept's vocabulary_id is CVX, else the keyword classifier over the name (common.category_sql) with fallback general_medicine / general_procedures / general_devices |
| products.description | name (concept_class_id, domain_id) |
| products.unit_price | median unit cost of its events (below) |
| unit cost of an event | cost row with cost_domain_id Drug / Procedure / Device and cost_event_id = the event id (the first such row with an amount): total_charge, else total_cost, else total_paid, divided by the event quantity when > 0 |
| orders.order_id | the event's visit_occurrence_id, else `person:<person_id>:<event date>` |
| orders (one line per order and product) | drug_exposure + procedure_occurrence + device_exposure rows grouped by (order_id, product_id); line_no numbers an order's lines by product_id; _source_row is the first event's |
| orders.quantity | sum of event quantities (missing or ≤ 0 count as 1), rounded up to a whole number |
| orders.unit_price | mean unit cost of the line's events with a cost, else empty |
| orders.ordered_at | visit_start_datetime, else visit_start_date, else the first event's start date(time) |
| orders.channel | visit_concept_id 5083 or 581399 → online; 581476 → phone; visit_source_value with phone → phone, with tele / virtual / video → online; any other visit → clinic; no visit row → empty |
| orders.facility_id | visit_occurrence.care_site_id |
| diagnoses.condition_code | concept.concept_code, else condition_source_value, else condition_concept_id |
| diagnoses.condition_name | concept.concept_name, else condition_source_value |
| diagnoses.diagnosed_at | condition_start_date, else the date of condition_start_datetime |

Every person row is one patients row and every condition row one diagnoses row;
every drug, procedure and device row is counted in exactly one order line.
"""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from pathlib import Path

from medmkt_assets.lib.engine.sql import quote_ident, sql_literal
from medmkt_assets.lib.engine.warehouse import Session, WarehouseError
from medmkt_assets.lib.sources.adapters.common import (
    category_sql,
    csv_options,
    scan_sql,
)
from medmkt_assets.lib.sources.files import SourceError, find_table_file

SUFFIXES = (".csv", ".csv.gz", ".parquet")


@dataclass(frozen=True)
class CdmTable:
    name: str
    required: tuple[str, ...]    # a file without one of these is refused
    optional: tuple[str, ...]    # read when present, NULL otherwise
    when_missing: str = ""       # what the canonical output lacks without this table (notes)


CDM_TABLES = {t.name: t for t in (
    CdmTable("person", ("person_id",),
             ("gender_concept_id", "year_of_birth", "month_of_birth", "day_of_birth", "birth_datetime",
              "location_id", "person_source_value", "gender_source_value", "death_datetime")),
    CdmTable("visit_occurrence", ("visit_occurrence_id", "person_id", "visit_concept_id", "visit_start_date"),
             ("visit_start_datetime", "care_site_id", "visit_source_value"),
             "orders keyed by visit id or person and date, channel and facility_id left empty"),
    CdmTable("condition_occurrence", ("person_id", "condition_concept_id", "condition_start_date"),
             ("condition_start_datetime", "condition_source_value"), "no diagnoses"),
    CdmTable("drug_exposure", ("drug_exposure_id", "person_id", "drug_concept_id", "drug_exposure_start_date"),
             ("drug_exposure_start_datetime", "quantity", "visit_occurrence_id", "drug_source_value"),
             "no drug products or order lines"),
    CdmTable("procedure_occurrence",
             ("procedure_occurrence_id", "person_id", "procedure_concept_id", "procedure_date"),
             ("procedure_datetime", "quantity", "visit_occurrence_id", "procedure_source_value"),
             "no procedure products or order lines"),
    CdmTable("device_exposure",
             ("device_exposure_id", "person_id", "device_concept_id", "device_exposure_start_date"),
             ("device_exposure_start_datetime", "quantity", "visit_occurrence_id", "device_source_value"),
             "no device products or order lines"),
    CdmTable("observation_period", ("person_id", "observation_period_start_date"), (),
             "registered_at from the first visit"),
    CdmTable("payer_plan_period", ("person_id", "payer_plan_period_start_date"),
             ("payer_concept_id", "payer_source_value", "plan_source_value"), "insurance_type left empty"),
    CdmTable("location", ("location_id",), ("address_1", "city", "state", "zip"),
             "address, city, region, postal_code left empty"),
    CdmTable("death", ("person_id", "death_date"), ("death_datetime",), "death_date from person.death_datetime"),
    CdmTable("cost", ("cost_event_id", "cost_domain_id"), ("total_charge", "total_cost", "total_paid"),
             "unit_price left empty"),
    CdmTable("concept", ("concept_id", "concept_name"),
             ("domain_id", "vocabulary_id", "concept_class_id", "concept_code"),
             "concept ids stand in for names"),
)}


@dataclass(frozen=True)
class EventTable:
    """A CDM table whose rows become products and order lines."""
    table: str
    prefix: str            # product_id prefix
    kind: str              # canonical product kind
    cost_domain: str       # cost.cost_domain_id of its costs
    event_id: str
    concept: str
    source: str
    start_date: str
    start_datetime: str
    fallback_category: str


EVENT_TABLES = (
    EventTable("drug_exposure", "drug", "drug", "Drug", "drug_exposure_id", "drug_concept_id",
               "drug_source_value", "drug_exposure_start_date", "drug_exposure_start_datetime", "general_medicine"),
    EventTable("procedure_occurrence", "proc", "service", "Procedure", "procedure_occurrence_id",
               "procedure_concept_id", "procedure_source_value", "procedure_date", "procedure_datetime",
               "general_procedures"),
    EventTable("device_exposure", "device", "device", "Device", "device_exposure_id", "device_concept_id",
               "device_source_value", "device_exposure_start_date", "device_exposure_start_datetime",
               "general_devices"),
)

# Columns that exist in only one CDM version: the version when CDM_SOURCE does not say.
VERSION_COLUMNS = (
    ("visit_occurrence", "admitted_from_concept_id", "5.4"),
    ("visit_occurrence", "admitting_source_concept_id", "5.3"),
    ("visit_occurrence", "discharge_to_concept_id", "5.3"),
    ("procedure_occurrence", "procedure_end_date", "5.4"),
    ("device_exposure", "production_id", "5.4"),
    ("location", "country_concept_id", "5.4"),
)

# Payer words (matched as whole words, lower-cased, _ - / read as spaces), public first.
PUBLIC_PAYER_RE = r"\b(medicare|medicaid|dual|government|public)\b"
SELF_PAY_RE = r"\b(no insurance|uninsured|no payment|self)\b"
NOT_SELF_PAY_RE = r"\bself (insured|funded)\b"  # employers' self-funded plans are commercial
TELEHEALTH_VISITS = ("5083", "581399")  # Telehealth, Virtual/Interactive telemedicine
HOME_VISITS = ("581476",)

# One row per key, the first in the file: duplicated ids must not multiply joined events.
PATIENT_MAP_SQL = """(
    SELECT person_id, arg_min(coalesce(person_source_value, person_id), _source_row) AS patient_id
    FROM person GROUP BY person_id)"""
CONCEPTS_SQL = """(
    SELECT * FROM concept WHERE concept_id <> '0'
    QUALIFY row_number() OVER (PARTITION BY concept_id ORDER BY _source_row) = 1)"""
VISITS_SQL = """(
    SELECT * FROM visit_occurrence
    QUALIFY row_number() OVER (PARTITION BY visit_occurrence_id ORDER BY _source_row) = 1)"""
LOCATIONS_SQL = """(
    SELECT * FROM location QUALIFY row_number() OVER (PARTITION BY location_id ORDER BY _source_row) = 1)"""
EVENT_COSTS_SQL = """(
    SELECT lower(cost_domain_id) AS cost_domain, cost_event_id,
           arg_min(amount, _source_row) FILTER (WHERE amount IS NOT NULL) AS amount
    FROM (SELECT *, coalesce(try_cast(total_charge AS DOUBLE), try_cast(total_cost AS DOUBLE),
                             try_cast(total_paid AS DOUBLE)) AS amount FROM cost)
    GROUP BY ALL)"""
# Every drug, procedure and device row with its patient, product, order and unit cost.
ITEMS_SQL = """(
    SELECT e.*, coalesce(pm.patient_id, e.person_id) AS patient_id,
           CASE WHEN coalesce(e.concept_id, '0') <> '0' THEN e.prefix || ':' || e.concept_id
                WHEN e.source_value IS NOT NULL THEN e.prefix || ':src:' || e.source_value
                ELSE e.prefix || ':0' END AS product_id,
           coalesce(c.concept_name, e.source_value, 'concept ' || coalesce(e.concept_id, '0')) AS name,
           c.vocabulary_id, c.concept_class_id, c.domain_id,
           coalesce(e.visit_occurrence_id, 'person:' || coalesce(e.person_id, '?') || ':'
                    || coalesce(e.start_day, 'undated')) AS order_id,
           k.amount / e.qty AS unit_cost
    FROM (SELECT *, CASE WHEN try_cast(quantity AS DOUBLE) > 0 THEN try_cast(quantity AS DOUBLE) ELSE 1 END AS qty
          FROM events) e
    LEFT JOIN patient_map pm ON pm.person_id = e.person_id
    LEFT JOIN concepts c ON c.concept_id = e.concept_id
    LEFT JOIN event_costs k ON k.cost_domain = lower(e.cost_domain) AND k.cost_event_id = e.event_id)"""
EVENT_SQL = """
    SELECT '{prefix}' AS prefix, '{kind}' AS kind, '{cost_domain}' AS cost_domain,
           '{fallback_category}' AS fallback_category, {event_id} AS event_id, person_id, visit_occurrence_id,
           {concept} AS concept_id, {source} AS source_value, coalesce({start_datetime}, {start_date}) AS started,
           left(coalesce({start_date}, {start_datetime}), 10) AS start_day, quantity, _source_file, _source_row
    FROM {table}"""
PRODUCTS_SQL = """
    WITH {ctes},
         products AS (
             SELECT product_id, arg_min(name, _source_row) AS name, min(kind) AS kind,
                    min(fallback_category) AS fallback_category, min(vocabulary_id) AS vocabulary_id,
                    min(concept_class_id) AS concept_class_id, min(domain_id) AS domain_id,
                    median(unit_cost) AS price, min(_source_file) AS _source_file, min(_source_row) AS _source_row
             FROM items GROUP BY product_id)
    SELECT product_id, name,
           CASE WHEN upper(vocabulary_id) = 'CVX' THEN 'vaccination' ELSE {category} END AS category, kind,
           CAST(round(price, 2) AS VARCHAR) AS unit_price,
           CASE WHEN kind = 'drug' THEN 'true' ELSE 'false' END AS rx_only,
           CASE WHEN concept_class_id IS NULL AND domain_id IS NULL THEN name
                ELSE name || ' (' || concat_ws(', ', concept_class_id,
                     CASE WHEN domain_id IS DISTINCT FROM concept_class_id THEN domain_id END) || ')'
           END AS description,
           _source_file, _source_row
    FROM products ORDER BY product_id"""
CHANNEL_SQL = f"""CASE
    WHEN v.visit_occurrence_id IS NULL THEN NULL
    WHEN v.visit_concept_id IN ({', '.join(map(sql_literal, TELEHEALTH_VISITS))}) THEN 'online'
    WHEN v.visit_concept_id IN ({', '.join(map(sql_literal, HOME_VISITS))}) THEN 'phone'
    WHEN contains(lower(coalesce(v.visit_source_value, '')), 'phone') THEN 'phone'
    WHEN regexp_matches(lower(coalesce(v.visit_source_value, '')), 'tele|virtual|video') THEN 'online'
    ELSE 'clinic' END"""
ORDERS_SQL = """
    WITH {ctes},
         lines AS (
             SELECT order_id, product_id, arg_min(patient_id, _source_row) AS patient_id,
                    min(visit_occurrence_id) AS visit_id, min(started) AS started, sum(qty) AS qty,
                    avg(unit_cost) AS unit_cost, min(_source_file) AS _source_file, min(_source_row) AS _source_row
             FROM items GROUP BY order_id, product_id)
    SELECT l.order_id,
           CAST(row_number() OVER (PARTITION BY l.order_id ORDER BY l.product_id) AS VARCHAR) AS line_no,
           l.patient_id, l.product_id, coalesce(v.visit_start_datetime, v.visit_start_date, l.started) AS ordered_at,
           CAST(CAST(ceil(l.qty) AS BIGINT) AS VARCHAR) AS quantity,
           CAST(round(l.unit_cost, 2) AS VARCHAR) AS unit_price,
           {channel} AS channel, v.care_site_id AS facility_id, l._source_file, l._source_row
    FROM lines l LEFT JOIN visits v ON v.visit_occurrence_id = l.visit_id
    ORDER BY l.order_id, l.product_id"""
INSURANCE_SQL = f"""(
    SELECT person_id, CASE
               WHEN payer_text = '' THEN NULL
               WHEN regexp_matches(payer_text, {sql_literal(PUBLIC_PAYER_RE)}) THEN 'public'
               WHEN regexp_matches(payer_text, {sql_literal(SELF_PAY_RE)})
                    AND NOT regexp_matches(payer_text, {sql_literal(NOT_SELF_PAY_RE)}) THEN 'self_pay'
               ELSE 'commercial' END AS insurance_type
    FROM (SELECT p.person_id, lower(regexp_replace(concat_ws(' ', p.payer_source_value, p.plan_source_value,
                     c.concept_name), '[_/-]+', ' ', 'g')) AS payer_text
          FROM payer_plan_period p LEFT JOIN concepts c ON c.concept_id = p.payer_concept_id
          QUALIFY row_number() OVER (PARTITION BY p.person_id ORDER BY
              try_cast(left(p.payer_plan_period_start_date, 10) AS DATE) DESC NULLS LAST,
              p.payer_plan_period_start_date DESC, p._source_row DESC) = 1))"""
PATIENTS_SQL = """
    WITH {ctes},
         insurance AS {insurance},
         observed AS (SELECT person_id, min(left(observation_period_start_date, 10)) AS first_day
                      FROM observation_period GROUP BY person_id),
         first_visit AS (SELECT person_id, min(left(coalesce(visit_start_date, visit_start_datetime), 10)) AS first_day
                         FROM visit_occurrence GROUP BY person_id),
         deaths AS (SELECT person_id, min(left(coalesce(death_date, death_datetime), 10)) AS death_day
                    FROM death GROUP BY person_id)
    SELECT coalesce(p.person_source_value, p.person_id) AS patient_id, NULL::VARCHAR AS full_name,
           CASE p.gender_concept_id WHEN '8507' THEN 'M' WHEN '8532' THEN 'F' ELSE p.gender_source_value END AS gender,
           {birth_date} AS birth_date, NULL::VARCHAR AS phone, NULL::VARCHAR AS email, l.address_1 AS address,
           l.city, l.state AS region, l.zip AS postal_code, i.insurance_type,
           coalesce(o.first_day, f.first_day) AS registered_at,
           coalesce(d.death_day, left(p.death_datetime, 10)) AS death_date, p._source_file, p._source_row
    FROM person p
    LEFT JOIN locations l ON l.location_id = p.location_id
    LEFT JOIN insurance i ON i.person_id = p.person_id
    LEFT JOIN observed o ON o.person_id = p.person_id
    LEFT JOIN first_visit f ON f.person_id = p.person_id
    LEFT JOIN deaths d ON d.person_id = p.person_id
    ORDER BY p._source_row"""
DIAGNOSES_SQL = """
    WITH {ctes}
    SELECT coalesce(pm.patient_id, co.person_id) AS patient_id,
           coalesce(c.concept_code, co.condition_source_value, co.condition_concept_id) AS condition_code,
           coalesce(c.concept_name, co.condition_source_value) AS condition_name,
           left(coalesce(co.condition_start_date, co.condition_start_datetime), 10) AS diagnosed_at,
           co._source_file, co._source_row
    FROM condition_occurrence co
    LEFT JOIN patient_map pm ON pm.person_id = co.person_id
    LEFT JOIN concepts c ON c.concept_id = co.condition_concept_id
    ORDER BY co._source_row"""


def _whole(expr: str) -> str:
    """A whole number from text such as '4' or '4.0' (Parquet exports may hold doubles)."""
    return f"try_cast(try_cast({expr} AS DOUBLE) AS INTEGER)"


def _birth_date_sql() -> str:
    """birth_datetime's date, else year-month-day with a missing (or 0) month or day read as 1."""
    year, month, day = (_whole(f"p.{c}") for c in ("year_of_birth", "month_of_birth", "day_of_birth"))
    return (f"coalesce(left(p.birth_datetime, 10), CASE WHEN {year} IS NOT NULL THEN printf('%04d-%02d-%02d', "
            f"{year}, coalesce(nullif({month}, 0), 1), coalesce(nullif({day}, 0), 1)) END)")


def _reader(con: Session, path: Path) -> str:
    """The table function reading every column of a CDM file (CSV as text, Parquet with its types)."""
    if path.suffix.lower() == ".parquet":
        return f"read_parquet({sql_literal(str(path))})"
    return (f"read_csv({sql_literal(str(path))}, header=true, all_varchar=true, strict_mode=false, "
            f"null_padding=true, parallel=false{csv_options(con, path)})")


def _numbered(path: Path, reader: str) -> str:
    """The file's rows with `_source_row`, the 1-based data row (a serial CSV read keeps file order)."""
    if path.suffix.lower() == ".parquet":
        return scan_sql(path)
    return f"(SELECT *, CAST(row_number() OVER () AS BIGINT) AS _source_row FROM {reader})"


def _read_header(con: Session, path: Path, reader: str) -> tuple[dict[str, str], bool]:
    """The file's columns (lower-case → its spelling, first wins) and whether it has a data row,
    without scanning the whole file; an unreadable file is refused naming it (not quoting
    DuckDB's message, which may show a line of data)."""
    if path.stat().st_size == 0:
        return {}, False
    try:
        columns = [r[0] for r in con.execute(f"DESCRIBE SELECT * FROM {reader}").fetchall()]
        has_rows = con.execute(f"SELECT count(*) FROM (SELECT 1 FROM {reader} LIMIT 1)").fetchall()[0][0] > 0
    except WarehouseError as exc:
        raise SourceError(f"{path}: cannot be read as an OMOP CDM table (expected a CSV with a header row, "
                          f"comma- or tab-separated, or Parquet; DuckDB: {type(exc).__name__})") from exc
    header: dict[str, str] = {}
    for column in columns:
        header.setdefault(column.strip().lower(), column)
    return header, has_rows


class OmopExport:
    """Validates a folder of OMOP CDM tables once and yields the canonical SELECT for each table."""

    def __init__(self, con: Session, source_dir: Path):
        self.dir = Path(source_dir)
        self.paths: dict[str, Path] = {}             # tables with at least one row
        self.headers: dict[str, dict[str, str]] = {}  # table → lower-case column → the file's spelling
        self.empty: dict[str, Path] = {}             # tables whose file has no rows
        self.scans: dict[str, str] = {}              # table → its file scan
        for spec in CDM_TABLES.values():
            self._open(con, spec)
        if "person" not in self.paths:
            self._refuse_person()
        cdm_source = find_table_file(self.dir, "cdm_source", SUFFIXES)
        read = [*self.paths.values(), *self.empty.values()] + ([cdm_source] if cdm_source else [])
        self.files: list[Path] = sorted(read)
        self.version = self._version(con, cdm_source)
        self.notes: dict[str, str] = self._notes(cdm_source)

    # --- validation -------------------------------------------------------------------

    def _open(self, con: Session, spec: CdmTable) -> None:
        """Find one table's file, check its required columns and note whether it has rows."""
        path = find_table_file(self.dir, spec.name, SUFFIXES)
        if path is None:
            return
        reader = _reader(con, path)
        header, has_rows = _read_header(con, path, reader)
        if not has_rows:
            self.empty[spec.name] = path
            if not header:  # a file without even a header row is just an empty table
                return
        missing = [c for c in spec.required if c not in header]
        if missing:
            raise SourceError(f"{path} has no {missing[0]}; an OMOP {spec.name} table needs "
                              f"{', '.join(spec.required)}")
        self.headers[spec.name] = header
        if has_rows:
            self.paths[spec.name], self.scans[spec.name] = path, _numbered(path, reader)

    def _refuse_person(self) -> None:
        """person is the one table an export cannot do without: say which file was expected."""
        if "person" in self.empty:
            raise SourceError(f"{self.empty['person']}: no rows; an OMOP export needs a person table with "
                              "a header (person_id, ...) and one row per person")
        raise SourceError(f"{self.dir}: no person table (person.csv, PERSON.csv or person.parquet); an OMOP "
                          "CDM export needs one (is MEDMKT_SOURCE_DIR the folder of CDM tables?)")

    def _version(self, con: Session, cdm_source: Path | None) -> str | None:
        """CDM_SOURCE.cdm_version when it says (e.g. 'v5.4.0'), else the version-specific columns."""
        by_columns = next((version for table, column, version in VERSION_COLUMNS
                           if column in self.headers.get(table, {})), None)
        if cdm_source is None:
            return by_columns
        reader = _reader(con, cdm_source)
        header, has_rows = _read_header(con, cdm_source, reader)
        if not has_rows or "cdm_version" not in header:
            return by_columns
        rows = con.execute(f"SELECT CAST({quote_ident(header['cdm_version'])} AS VARCHAR) FROM {reader} LIMIT 1"
                           ).fetchall()
        found = re.search(r"(\d+\.\d+)", rows[0][0] or "") if rows else None
        return found.group(1) if found else by_columns

    def _notes(self, cdm_source: Path | None) -> dict[str, str]:
        """Asset metadata: what was read, what was missing (and what that empties), what was ignored."""
        formats = sorted({"parquet" if p.suffix.lower() == ".parquet" else "csv" for p in self.files})
        version = f"OMOP CDM {self.version}" if self.version else "OMOP CDM (version not detectable)"
        missing = [f"{spec.name} ({'empty file; ' if spec.name in self.empty else ''}{self._effect(spec)})"
                   for spec in CDM_TABLES.values() if spec.name not in self.paths]
        used = {p.name.lower() for p in self.files}
        ignored = sorted({p.name.lower().split(".")[0] for p in self.dir.iterdir()
                          if p.is_file() and p.name.lower().endswith(SUFFIXES) and p.name.lower() not in used})
        return {
            "layout": f"{version}, {'+'.join(formats)}",
            "tables_read": ", ".join(self.paths) + (", cdm_source" if cdm_source else ""),
            "missing_optional_inputs": ", ".join(missing) or "none",
            "ignored_tables": ", ".join(ignored) or "none",
        }

    def _effect(self, spec: CdmTable) -> str:
        """What a missing table costs; death falls back to person.death_datetime only if it is there."""
        if spec.name == "death" and "death_datetime" not in self.headers["person"]:
            return "death_date left empty"
        return spec.when_missing

    # --- SQL ----------------------------------------------------------------------------

    def select(self, table: str) -> str | None:
        """The canonical SELECT for `table`, or None when OMOP has no such data."""
        builder = {"patients": self._patients, "products": self._products,
                   "orders": self._orders, "diagnoses": self._diagnoses}.get(table)
        if builder is None:
            return None
        return builder()

    def _relation(self, table: str) -> str:
        """The table's known columns, lower-case, as trimmed text (blank → NULL), with the file and
        row; an absent or empty table is the same columns with no rows, so every query works."""
        spec = CDM_TABLES[table]
        columns = spec.required + spec.optional
        if table not in self.paths:
            nulls = ", ".join(f"NULL::VARCHAR AS {c}" for c in columns)
            return f"(SELECT {nulls}, NULL::VARCHAR AS _source_file, NULL::BIGINT AS _source_row LIMIT 0)"
        header, path = self.headers[table], self.paths[table]
        values = ", ".join(f"nullif(trim(CAST({quote_ident(header[c])} AS VARCHAR)), '') AS {c}"
                           if c in header else f"NULL::VARCHAR AS {c}" for c in columns)
        return f"(SELECT {values}, {sql_literal(str(path))} AS _source_file, _source_row FROM {self.scans[table]})"

    def _events(self) -> str:
        """Drug, procedure and device rows in one shape (empty tables add no rows)."""
        return "(" + " UNION ALL ".join(
            EVENT_SQL.format(**asdict(spec)) for spec in EVENT_TABLES) + ")"

    def _with(self, *names: str) -> str:
        """CTEs in dependency order: CDM tables by name, then the derived relations named."""
        derived = {"patient_map": PATIENT_MAP_SQL, "concepts": CONCEPTS_SQL, "visits": VISITS_SQL,
                   "locations": LOCATIONS_SQL, "event_costs": EVENT_COSTS_SQL, "items": ITEMS_SQL}
        parts = []
        for name in names:
            if name == "events":
                parts.append(f"events AS {self._events()}")
            else:
                parts.append(f"{name} AS {derived[name] if name in derived else self._relation(name)}")
        return ",\n".join(parts)

    def _item_ctes(self) -> str:
        return self._with("person", "concept", "cost", *(e.table for e in EVENT_TABLES),
                          "patient_map", "concepts", "event_costs", "events", "items")

    def _patients(self) -> str:
        ctes = self._with("person", "location", "observation_period", "visit_occurrence", "death",
                          "payer_plan_period", "concept", "concepts", "locations")
        return PATIENTS_SQL.format(ctes=ctes, insurance=INSURANCE_SQL, birth_date=_birth_date_sql())

    def _products(self) -> str:
        return PRODUCTS_SQL.format(ctes=self._item_ctes(), category=category_sql("name", "fallback_category"))

    def _orders(self) -> str:
        return ORDERS_SQL.format(ctes=self._item_ctes() + ",\n" + self._with("visit_occurrence", "visits"),
                                 channel=CHANNEL_SQL)

    def _diagnoses(self) -> str:
        return DIAGNOSES_SQL.format(ctes=self._with("person", "concept", "condition_occurrence",
                                                    "patient_map", "concepts"))
