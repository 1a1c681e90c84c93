"""What every layout writer shares: the channel, payer and product-destination tables, the canonical
world staged as typed tables, and the Exporter that writes files."""
from __future__ import annotations

import uuid
from pathlib import Path

import duckdb

from medmkt_assets.demo_data import world as W
from medmkt_assets.lib.engine.sql import quote_ident, sql_literal

LAYOUTS = ("synthea-2", "synthea-3", "fhir-bulk", "fhir-bundles", "omop-5.3", "omop-5.4")
# Canonical tables no clinical export carries; the pipeline reads them as `<table>.csv` beside it.
SIDE_TABLES = ("campaigns", "campaign_contacts", "consents", "surveys", "events")
SNAPSHOT = str(W.SNAPSHOT)  # observation and payer periods end on the world's snapshot date
SYNTHEA_SYSTEM = "https://github.com/synthetichealth/synthea"
CURRENCY = "CNY"
CONCEPT_BASE = 2_000_000_000  # OMOP reserves ids above two billion for local concepts

# channel: Synthea ENCOUNTERCLASS, FHIR class code, OMOP visit_concept_id, SNOMED encounter type
CHANNELS = (
    ("store", "ambulatory", "AMB", 9202, "185345009", "Encounter for symptom (procedure)"),
    ("clinic", "outpatient", "AMB", 9202, "185347001", "Encounter for problem (procedure)"),
    ("online", "virtual", "VR", 5083, "448337001", "Telemedicine consultation with patient (procedure)"),
    ("app", "virtual", "VR", 5083, "448337001", "Telemedicine consultation with patient (procedure)"),
    ("phone", "home", "HH", 581476, "439708006", "Home visit (procedure)"),
)
# canonical insurance_type: Synthea payer NAME and OWNERSHIP, OMOP payer_source_value
PAYERS = (
    ("public", "Medicare", "GOVERNMENT", "Medicare"),
    ("commercial", "Aetna", "PRIVATE", "Aetna"),
    ("self_pay", "NO_INSURANCE", "NO_INSURANCE", "No insurance"),
)
# where a product lands: OMOP domain, vocabulary, concept class; FHIR code system
DESTINATIONS = (
    ("immunization", "Drug", "CVX", "CVX", "http://hl7.org/fhir/sid/cvx"),
    ("medication", "Drug", "RxNorm", "Clinical Drug", "http://www.nlm.nih.gov/research/umls/rxnorm"),
    ("procedure", "Procedure", "CPT4", "CPT4", "http://www.ama-assn.org/go/cpt"),
    ("device", "Device", "SNOMED", "Physical Object", "http://snomed.info/sct"),
)

# ---------------------------------------------------------------------------------------
# Staging: the canonical CSV files as typed tables every layout reads
# ---------------------------------------------------------------------------------------

MACROS = (
    "CREATE MACRO iso_ts(t) AS strftime(t, '%Y-%m-%dT%H:%M:%SZ')",
    "CREATE MACRO iso_day(d) AS strftime(d, '%Y-%m-%d')",
    "CREATE MACRO omop_ts(t) AS strftime(t, '%Y-%m-%d %H:%M:%S')",
    # FHIR allows neither null nor empty arrays: keep the non-null elements, or drop the key
    "CREATE MACRO arr(l) AS CASE WHEN len(list_filter(l, lambda x: x IS NOT NULL)) = 0 THEN NULL "
    "ELSE list_filter(l, lambda x: x IS NOT NULL) END",
)

STAGE_PATIENTS = """
CREATE TABLE pat AS
SELECT *, CAST(row_number() OVER (ORDER BY patient_id) AS BIGINT) AS person_id
FROM (
    SELECT trim(patient_id) AS patient_id, nullif(trim(full_name), '') AS full_name,
           nullif(trim(gender), '') AS gender_source,
           CASE WHEN lower(trim(gender)) IN ('f', 'female', '女') THEN 'F'
                WHEN lower(trim(gender)) IN ('m', 'male', '男') THEN 'M' ELSE 'U' END AS sex,
           -- "Given Family" when spaced, else a Chinese name: the first character is the family name
           CASE WHEN contains(trim(full_name), ' ') THEN regexp_extract(trim(full_name), '(\\S+)$', 1)
                ELSE nullif(left(trim(full_name), 1), '') END AS family,
           CASE WHEN contains(trim(full_name), ' ') THEN trim(regexp_replace(trim(full_name), '\\S+$', ''))
                ELSE nullif(substr(trim(full_name), 2), '') END AS given,
           TRY_CAST(birth_date AS DATE) AS birth_date, nullif(phone, '') AS phone, nullif(email, '') AS email,
           nullif(address, '') AS address, nullif(city, '') AS city, nullif(region, '') AS region,
           nullif(postal_code, '') AS postal_code,
           CASE lower(trim(insurance_type)) WHEN 'public' THEN 'public' WHEN 'commercial' THEN 'commercial'
                ELSE 'self_pay' END AS insurance,
           TRY_CAST(registered_at AS DATE) AS registered_at, TRY_CAST(death_date AS DATE) AS death_date
    FROM {patients}
    WHERE nullif(trim(patient_id), '') IS NOT NULL)
"""

STAGE_PRODUCTS = """
CREATE TABLE prod AS
SELECT p.*, d.omop_domain, d.vocabulary, d.concept_class, d.fhir_system,
       CAST({base} + row_number() OVER (ORDER BY p.product_id) AS BIGINT) AS concept_id
FROM (SELECT trim(product_id) AS product_id, name,
             CASE WHEN lower(trim(category)) = 'vaccination' THEN 'immunization'
                  WHEN lower(trim(kind)) = 'drug' THEN 'medication'
                  WHEN lower(trim(kind)) = 'device' THEN 'device' ELSE 'procedure' END AS dest
      FROM {products}) p
JOIN destination d USING (dest)
"""

# One row per canonical order line; event_id numbers the line inside its OMOP domain table,
# and every fourth drug line is written as a MedicationDispense in FHIR.
STAGE_LINES = """
CREATE TABLE line AS
SELECT *, ordered_at + INTERVAL 15 MINUTE AS finished_at,
       CAST(row_number() OVER (PARTITION BY omop_domain ORDER BY order_id, line_no) AS BIGINT) AS event_id,
       dest = 'medication' AND
           row_number() OVER (PARTITION BY dest ORDER BY order_id, line_no) % 4 = 0 AS dispensed
FROM (
    SELECT o.order_id, CAST(o.line_no AS INTEGER) AS line_no, o.order_id || '-' || o.line_no AS line_id,
           trim(o.patient_id) AS patient_id, trim(o.product_id) AS product_id, p.name, p.dest, p.omop_domain,
           p.fhir_system, p.concept_id, CAST(o.ordered_at AS TIMESTAMP) AS ordered_at,
           CAST(o.quantity AS INTEGER) AS quantity, CAST(o.unit_price AS DECIMAL(18, 2)) AS unit_price,
           CAST(CAST(o.unit_price AS DECIMAL(18, 2)) * CAST(o.quantity AS INTEGER) AS DECIMAL(18, 2)) AS total,
           lower(trim(o.channel)) AS channel, nullif(trim(o.facility_id), '') AS facility_id
    FROM {orders} o JOIN prod p ON p.product_id = trim(o.product_id))
"""

STAGE_VISITS = """
CREATE TABLE visit AS
SELECT v.*, c.synthea_class, c.fhir_class, c.visit_concept_id, c.type_code, c.type_display,
       p.person_id, CAST(row_number() OVER (ORDER BY v.order_id) AS BIGINT) AS visit_id
FROM (SELECT order_id, any_value(patient_id) AS patient_id, min(ordered_at) AS start_at,
             min(ordered_at) + INTERVAL 15 MINUTE AS end_at, arg_min(channel, line_no) AS channel,
             arg_min(facility_id, line_no) AS facility_id, sum(total) AS total
      FROM line GROUP BY order_id) v
JOIN channel c ON c.channel = CASE WHEN v.channel IN (SELECT channel FROM channel) THEN v.channel ELSE 'store' END
JOIN pat p USING (patient_id)
"""

STAGE_REST = (
    """CREATE TABLE dx AS
       SELECT *, CAST(row_number() OVER (ORDER BY patient_id, diagnosed_at, code) AS BIGINT) AS dx_id
       FROM (SELECT trim(patient_id) AS patient_id, trim(condition_code) AS code, condition_name AS name,
                    CAST(diagnosed_at AS DATE) AS diagnosed_at
             FROM {diagnoses} WHERE nullif(trim(condition_code), '') IS NOT NULL)""",
    """CREATE TABLE cond AS
       SELECT code, min(name) AS name,
              CAST({base} + (SELECT count(*) FROM prod) + row_number() OVER (ORDER BY code) AS BIGINT) AS concept_id
       FROM dx GROUP BY code""",
    """CREATE TABLE fac AS
       SELECT facility_id, CAST(row_number() OVER (ORDER BY facility_id) AS BIGINT) AS care_site_id,
              'Facility ' || facility_id AS name, count(*) AS encounters, sum(total) AS revenue
       FROM visit WHERE facility_id IS NOT NULL GROUP BY facility_id""",
    """CREATE TABLE loc AS
       SELECT *, CAST(row_number() OVER (ORDER BY region, city, postal_code) AS BIGINT) AS location_id
       FROM (SELECT DISTINCT city, region, postal_code FROM pat)""",
    """CREATE TABLE member AS
       SELECT p.patient_id, p.person_id, y.*, coalesce(s.spend, 0) AS spend,
              CASE WHEN p.person_id % 5 = 0 THEN 'Spouse' ELSE 'Self' END AS plan_owner
       FROM pat p JOIN payer y USING (insurance)
       LEFT JOIN (SELECT patient_id, sum(total) AS spend FROM visit GROUP BY patient_id) s USING (patient_id)""",
)


def _payer_id(name: str) -> str:
    """A stable UUID per payer, the way Synthea identifies payers."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"{SYNTHEA_SYSTEM}/payer/{name}"))


def _values_table(con: duckdb.DuckDBPyConnection, name: str, columns: tuple[str, ...], rows) -> None:
    """A small lookup table from Python constants."""
    body = ", ".join("(" + ", ".join(sql_literal(v) if isinstance(v, str) else str(v) for v in row) + ")"
                     for row in rows)
    con.execute(f"CREATE TABLE {name} AS SELECT * FROM (VALUES {body}) AS t({', '.join(columns)})").fetchall()


def stage_world(con: duckdb.DuckDBPyConnection, canonical_dir: Path) -> None:
    """Read the canonical CSV files once into typed tables (patients, lines, visits, ...)."""
    scans = {}
    for table in ("patients", "products", "orders", "diagnoses"):
        path = canonical_dir / f"{table}.csv"
        if not path.is_file():
            raise FileNotFoundError(f"{path}: not found; write_layout needs the canonical CSV world "
                                    "(generate(..., fmt='csv'))")
        scans[table] = f"read_csv({sql_literal(str(path))}, header=true, all_varchar=true)"
    for macro in MACROS:
        con.execute(macro).fetchall()
    _values_table(con, "channel", ("channel", "synthea_class", "fhir_class", "visit_concept_id", "type_code",
                                   "type_display"), CHANNELS)
    _values_table(con, "payer", ("insurance", "payer_name", "ownership", "omop_payer", "payer_id"),
                  [(*row, _payer_id(row[1])) for row in PAYERS])
    _values_table(con, "destination", ("dest", "omop_domain", "vocabulary", "concept_class", "fhir_system"),
                  DESTINATIONS)
    for sql in (STAGE_PATIENTS, STAGE_PRODUCTS, STAGE_LINES, STAGE_VISITS, *STAGE_REST):
        con.execute(sql.format(base=CONCEPT_BASE, **scans)).fetchall()


# ---------------------------------------------------------------------------------------
# Writing files
# ---------------------------------------------------------------------------------------

# A JSON text column written as-is, one document a line: no quoting, a delimiter JSON never holds raw.
# (COPY ... FORMAT json would wrap the column in an object and write SQL NULLs, which FHIR forbids.)
NDJSON_OPTIONS = "FORMAT csv, HEADER false, QUOTE '', ESCAPE '', DELIMITER '\x1f'"


class Exporter:
    """Runs COPY statements into one folder and records rows per file for the manifest."""

    def __init__(self, con: duckdb.DuckDBPyConnection, out_dir: Path):
        self.con = con
        self.out = out_dir
        self.files: dict[str, int] = {}

    def _copy(self, name: str, select_sql: str, options: str) -> None:
        target = sql_literal(str(self.out / name))
        rows = self.con.execute(f"COPY ({select_sql}) TO {target} ({options})").fetchall()
        self.files[name] = int(rows[0][0]) if rows else 0

    def csv(self, name: str, select_sql: str, delimiter: str = ",") -> None:
        self._copy(name, select_sql, f"FORMAT csv, HEADER true, DELIMITER {sql_literal(delimiter)}")

    def ndjson(self, name: str, json_sql: str, gzip: bool = False) -> None:
        """`json_sql` yields one column of JSON text; written one document a line."""
        self._copy(name, json_sql, NDJSON_OPTIONS + (", COMPRESSION gzip" if gzip else ""))


def select_columns(columns: tuple[str, ...], exprs: dict[str, str], source: str) -> str:
    """SELECT a file's columns in the export's own order; a column without an expression is empty."""
    body = ",\n       ".join(f"{exprs.get(c, 'NULL')} AS {quote_ident(c)}" for c in columns)
    return f"SELECT {body}\nFROM {source}"


def udi_sql(unit_sql: str) -> str:
    """A GS1-style UDI string (device identifier, dates, lot, serial), unique per device unit."""
    return ("'(01)' || lpad(regexp_replace(product_id, '[^0-9]', '', 'g'), 14, '0')"
            " || '(11)' || strftime(ordered_at, '%y%m%d') || '(17)' || strftime(ordered_at + INTERVAL 5 YEAR, '%y%m%d')"
            " || '(10)' || regexp_replace(order_id, '[^0-9]', '', 'g')"
            f" || '(21)' || line_no || lpad(CAST({unit_sql} AS VARCHAR), 3, '0')")


