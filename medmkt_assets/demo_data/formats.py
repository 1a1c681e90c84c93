"""The demo world written as real exporters write it: Synthea CSV, FHIR R4 and OMOP CDM.

Each export adapter (lib/adapters) is tested end to end on the project's own world in its
format, so the planted truth (bundles, segments, campaign uplifts) can be checked after
the adapter has mapped the export back onto the canonical tables.

Layouts: synthea-2 / synthea-3 (the CSV headers of Synthea 2.x and 3.x), fhir-bulk (one
`<Type>.000.ndjson` per resource type, relative references, Patient and Condition
gzipped), fhir-bundles (one Synthea-style transaction Bundle per patient, `urn:uuid:`
references, plus a hospitalInformation bundle), omop-5.3 / omop-5.4 (CDM tables with
that version's columns; 5.4 upper-case file names, 5.3 lower-case with an Athena-style
tab-separated concept file).

Everything is DuckDB SQL over the canonical CSV files written with COPY; only the
per-patient Bundle files are written by a Python loop over DuckDB-built JSON. Patient and
order ids are kept (encounter id = order_id, OMOP visit_source_value = order_id), so the
canonical side tables written next to the export still join.
"""
from __future__ import annotations

import re
import shutil
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

import duckdb

from medmkt_assets.demo_data import world as W
from medmkt_assets.demo_data.generator import generate
from medmkt_assets.lib.sql import quote_ident, sql_literal

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


def _stage(con: duckdb.DuckDBPyConnection, canonical_dir: Path) -> None:
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


# ---------------------------------------------------------------------------------------
# Synthea CSV (2.x and 3.x)
# ---------------------------------------------------------------------------------------

SYNTHEA_PATIENTS_2 = ("Id", "BIRTHDATE", "DEATHDATE", "SSN", "DRIVERS", "PASSPORT", "PREFIX", "FIRST", "LAST",
                      "SUFFIX", "MAIDEN", "MARITAL", "RACE", "ETHNICITY", "GENDER", "BIRTHPLACE", "ADDRESS", "CITY",
                      "STATE", "COUNTY", "ZIP", "LAT", "LON", "HEALTHCARE_EXPENSES", "HEALTHCARE_COVERAGE")
SYNTHEA_PAYER_STATS = ("AMOUNT_COVERED", "AMOUNT_UNCOVERED", "REVENUE", "COVERED_ENCOUNTERS", "UNCOVERED_ENCOUNTERS",
                       "COVERED_MEDICATIONS", "UNCOVERED_MEDICATIONS", "COVERED_PROCEDURES", "UNCOVERED_PROCEDURES",
                       "COVERED_IMMUNIZATIONS", "UNCOVERED_IMMUNIZATIONS", "UNIQUE_CUSTOMERS", "QOLS_AVG",
                       "MEMBER_MONTHS")
SYNTHEA_COMMON = {
    "encounters": ("Id", "START", "STOP", "PATIENT", "ORGANIZATION", "PROVIDER", "PAYER", "ENCOUNTERCLASS", "CODE",
                   "DESCRIPTION", "BASE_ENCOUNTER_COST", "TOTAL_CLAIM_COST", "PAYER_COVERAGE", "REASONCODE",
                   "REASONDESCRIPTION"),
    "medications": ("START", "STOP", "PATIENT", "PAYER", "ENCOUNTER", "CODE", "DESCRIPTION", "BASE_COST",
                    "PAYER_COVERAGE", "DISPENSES", "TOTALCOST", "REASONCODE", "REASONDESCRIPTION"),
    "immunizations": ("DATE", "PATIENT", "ENCOUNTER", "CODE", "DESCRIPTION", "BASE_COST"),
    "devices": ("START", "STOP", "PATIENT", "ENCOUNTER", "CODE", "DESCRIPTION", "UDI"),
    "organizations": ("Id", "NAME", "ADDRESS", "CITY", "STATE", "ZIP", "LAT", "LON", "PHONE", "REVENUE",
                      "UTILIZATION"),
}
SYNTHEA_HEADERS = {
    "2": {
        **SYNTHEA_COMMON,
        "patients": SYNTHEA_PATIENTS_2,
        "payers": ("Id", "NAME", "ADDRESS", "CITY", "STATE_HEADQUARTERED", "ZIP", "PHONE", *SYNTHEA_PAYER_STATS),
        "payer_transitions": ("PATIENT", "MEMBERID", "START_YEAR", "END_YEAR", "PAYER", "SECONDARY_PAYER",
                              "OWNERSHIP", "OWNERNAME"),
        "procedures": ("DATE", "PATIENT", "ENCOUNTER", "CODE", "DESCRIPTION", "BASE_COST", "REASONCODE",
                       "REASONDESCRIPTION"),
        "conditions": ("START", "STOP", "PATIENT", "ENCOUNTER", "CODE", "DESCRIPTION"),
    },
    "3": {
        **SYNTHEA_COMMON,
        "patients": (*SYNTHEA_PATIENTS_2[:20], "FIPS", *SYNTHEA_PATIENTS_2[20:], "INCOME"),
        "payers": ("Id", "NAME", "OWNERSHIP", "ADDRESS", "CITY", "STATE_HEADQUARTERED", "ZIP", "PHONE",
                   *SYNTHEA_PAYER_STATS),
        "payer_transitions": ("PATIENT", "MEMBERID", "START_DATE", "END_DATE", "PAYER", "SECONDARY_PAYER",
                              "PLAN_OWNERSHIP", "OWNER_NAME"),
        "procedures": ("START", "STOP", "PATIENT", "ENCOUNTER", "SYSTEM", "CODE", "DESCRIPTION", "BASE_COST",
                       "REASONCODE", "REASONDESCRIPTION"),
        "conditions": ("START", "STOP", "PATIENT", "ENCOUNTER", "SYSTEM", "CODE", "DESCRIPTION"),
    },
}
# Synthea has no quantity for procedures, vaccines and devices: n units are n rows (as a
# procedure done twice is two rows), so adapters recover the quantity by counting rows.
UNITS = "(SELECT *, unnest(range(greatest(quantity, 1))) AS unit FROM line WHERE dest = '{dest}')"


def _synthea_people() -> dict[str, tuple[dict[str, str], str]]:
    """patients, payers, payer_transitions and organizations: (column expressions, source)."""
    patients = {
        "Id": "patient_id", "BIRTHDATE": "iso_day(birth_date)", "DEATHDATE": "iso_day(death_date)",
        "SSN": "'999-' || lpad(CAST(person_id % 97 AS VARCHAR), 2, '0') "
               "|| '-' || lpad(CAST(person_id % 9973 AS VARCHAR), 4, '0')",
        "FIRST": "given", "LAST": "family", "RACE": "'asian'", "ETHNICITY": "'nonhispanic'", "GENDER": "sex",
        "ADDRESS": "address", "CITY": "city", "STATE": "region", "ZIP": "postal_code",
        "HEALTHCARE_EXPENSES": "CAST(spend AS DECIMAL(18, 2))", "HEALTHCARE_COVERAGE": "'0.00'",
    }
    payers = {"Id": "y.payer_id", "NAME": "y.payer_name", "OWNERSHIP": "y.ownership",
              **{c: "'0.00'" if c.startswith(("AMOUNT", "REVENUE")) else "0" for c in SYNTHEA_PAYER_STATS},
              "AMOUNT_UNCOVERED": "coalesce(m.spend, 0)", "UNIQUE_CUSTOMERS": "coalesce(m.members, 0)"}
    transitions = {
        "PATIENT": "patient_id", "START_DATE": "iso_ts(CAST(registered_at AS TIMESTAMP))",
        "END_DATE": f"iso_ts(TIMESTAMP '{SNAPSHOT}')", "START_YEAR": "year(registered_at)",
        "END_YEAR": f"year(DATE '{SNAPSHOT}')", "PAYER": "payer_id",
        # 2.x OWNERSHIP and 3.x PLAN_OWNERSHIP name who holds the plan, not the payer type
        "OWNERSHIP": "plan_owner", "PLAN_OWNERSHIP": "plan_owner",
        "OWNERNAME": "CASE plan_owner WHEN 'Self' THEN full_name END",
        "OWNER_NAME": "CASE plan_owner WHEN 'Self' THEN full_name END",
    }
    organizations = {"Id": "facility_id", "NAME": "name", "REVENUE": "CAST(revenue AS DECIMAL(18, 2))",
                     "UTILIZATION": "encounters"}
    return {
        "patients": (patients, "pat JOIN member USING (patient_id, person_id) ORDER BY person_id"),
        "payers": (payers, "payer y LEFT JOIN (SELECT payer_id, count(*) AS members, sum(spend) AS spend "
                           "FROM member GROUP BY payer_id) m USING (payer_id) ORDER BY y.payer_name"),
        "payer_transitions": (transitions, "pat JOIN member USING (patient_id, person_id) ORDER BY person_id"),
        "organizations": (organizations, "fac ORDER BY facility_id"),
    }


def _synthea_events() -> dict[str, tuple[dict[str, str], str]]:
    """encounters, conditions and the four item files: (column expressions, source)."""
    item = {"PATIENT": "patient_id", "ENCOUNTER": "order_id", "CODE": "product_id", "DESCRIPTION": "name",
            "BASE_COST": "unit_price"}  # what every item file shares
    encounters = {
        "Id": "order_id", "START": "iso_ts(start_at)", "STOP": "iso_ts(end_at)", "PATIENT": "patient_id",
        "ORGANIZATION": "facility_id", "PAYER": "m.payer_id", "ENCOUNTERCLASS": "synthea_class", "CODE": "type_code",
        "DESCRIPTION": "type_display", "BASE_ENCOUNTER_COST": "'0.00'", "TOTAL_CLAIM_COST": "total",
        "PAYER_COVERAGE": "'0.00'",
    }
    medications = {**item, "START": "iso_ts(ordered_at)", "PAYER": "m.payer_id", "PAYER_COVERAGE": "'0.00'",
                   "DISPENSES": "quantity", "TOTALCOST": "total"}
    procedures = {**item, "DATE": "iso_ts(ordered_at)", "START": "iso_ts(ordered_at)",
                  "STOP": "iso_ts(finished_at)", "SYSTEM": "'SNOMED-CT'"}
    conditions = {"START": "iso_day(diagnosed_at)", "PATIENT": "patient_id", "SYSTEM": "'ICD-10'", "CODE": "code",
                  "DESCRIPTION": "name"}
    with_payer = "{} JOIN member m USING (patient_id) ORDER BY order_id, line_no"
    return {
        "encounters": (encounters, "visit JOIN member m USING (patient_id) ORDER BY order_id"),
        "conditions": (conditions, "dx ORDER BY dx_id"),
        "medications": (medications, with_payer.format("(SELECT * FROM line WHERE dest = 'medication')")),
        "procedures": (procedures, UNITS.format(dest="procedure") + " ORDER BY order_id, line_no, unit"),
        "immunizations": ({**item, "DATE": "iso_ts(ordered_at)"},
                          UNITS.format(dest="immunization") + " ORDER BY order_id, line_no, unit"),
        "devices": ({**item, "START": "iso_ts(ordered_at)", "UDI": udi_sql("unit")},
                    UNITS.format(dest="device") + " ORDER BY order_id, line_no, unit"),
    }


def write_synthea(exporter: Exporter, version: str) -> None:
    """The Synthea CSV export of that major version (2 or 3), one file per Synthea table."""
    headers = SYNTHEA_HEADERS[version]
    for name, (exprs, source) in {**_synthea_people(), **_synthea_events()}.items():
        exporter.csv(f"{name}.csv", select_columns(headers[name], exprs, source))


# ---------------------------------------------------------------------------------------
# FHIR R4 (Bulk Data NDJSON and per-patient transaction Bundles)
# ---------------------------------------------------------------------------------------

ICD10 = "http://hl7.org/fhir/sid/icd-10"
SNOMED = "http://snomed.info/sct"
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"


@dataclass(frozen=True)
class FhirRefs:
    """How resources point at each other: relative `Type/id` in Bulk files, `urn:uuid:id` inside a
    transaction Bundle, where the Organization (in hospitalInformation) is a conditional reference."""

    in_bundle: bool

    def to(self, rtype: str, id_sql: str) -> str:
        prefix = "urn:uuid:" if self.in_bundle else f"{rtype}/"
        return f"json_object('reference', '{prefix}' || {id_sql})"

    def organization(self, id_sql: str) -> str:
        if self.in_bundle:
            return f"json_object('reference', 'Organization?identifier={SYNTHEA_SYSTEM}|' || {id_sql})"
        return self.to("Organization", id_sql)


def _codeable(system_sql: str, code_sql: str, display_sql: str) -> str:
    """A CodeableConcept with one coding; adapters read coding[0].code and .display (or text)."""
    return (f"json_object('coding', [json_object('system', {system_sql}, 'code', {code_sql}, "
            f"'display', {display_sql})], 'text', {display_sql})")


def _resource(rtype: str, id_sql: str, fields: str, source: str, sort_sql: str, patient_sql: str = "patient_id") -> str:
    """One resource per source row as (patient_id, sort_key, rtype, id, resource JSON); nulls dropped."""
    return (f"SELECT {patient_sql} AS patient_id, {sort_sql} AS sort_key, '{rtype}' AS rtype, {id_sql} AS id, "
            f"json_merge_patch('{{}}', json_object('resourceType', '{rtype}', 'id', {id_sql}, {fields})) AS resource "
            f"FROM {source}")


def _patient() -> str:
    """Patient: name split into family/given, gender, birth and death, telecom and address."""
    fields = f"""
        'identifier', [json_object('system', '{SYNTHEA_SYSTEM}', 'value', patient_id)],
        'name', [json_object('use', 'official', 'family', family, 'given', arr([given]))],
        'telecom', arr([CASE WHEN phone IS NOT NULL THEN json_object('system', 'phone', 'value', phone) END,
                        CASE WHEN email IS NOT NULL THEN json_object('system', 'email', 'value', email) END]),
        'gender', CASE sex WHEN 'F' THEN 'female' WHEN 'M' THEN 'male' ELSE 'unknown' END,
        'birthDate', iso_day(birth_date), 'deceasedDateTime', iso_day(death_date),
        'address', [json_object('line', arr([address]), 'city', city, 'state', region, 'postalCode', postal_code,
                                'country', 'CN')]"""
    return _resource("Patient", "patient_id", fields, "pat", "'0'")


def _coverage(refs: FhirRefs) -> str:
    """One Coverage per patient; the payor display carries the insurance type (Medicare, Aetna, NO_INSURANCE)."""
    fields = f"""'status', 'active', 'beneficiary', {refs.to('Patient', 'patient_id')},
        'payor', [json_object('display', payer_name)], 'period', json_object('start', iso_day(registered_at))"""
    return _resource("Coverage", "patient_id || '-coverage'", fields, "pat JOIN member USING (patient_id)", "'1'")


def _condition(refs: FhirRefs) -> str:
    """A diagnosis as Condition, coded in ICD-10, onset = diagnosed_at (no encounter: a problem-list item)."""
    fields = f"""
        'clinicalStatus', json_object('coding', [json_object('system',
            'http://terminology.hl7.org/CodeSystem/condition-clinical', 'code', 'active')]),
        'verificationStatus', json_object('coding', [json_object('system',
            'http://terminology.hl7.org/CodeSystem/condition-ver-status', 'code', 'confirmed')]),
        'category', [json_object('coding', [json_object('system',
            'http://terminology.hl7.org/CodeSystem/condition-category', 'code', 'problem-list-item')])],
        'code', {_codeable(f"'{ICD10}'", 'code', 'name')},
        'subject', {refs.to('Patient', 'patient_id')},
        'onsetDateTime', iso_day(diagnosed_at), 'recordedDate', iso_day(diagnosed_at)"""
    return _resource("Condition", "patient_id || '-dx' || dx_id", fields, "dx",
                     "'2|' || lpad(CAST(dx_id AS VARCHAR), 12, '0')")


def _encounter(refs: FhirRefs) -> str:
    """One Encounter per order: id = order_id, class from the channel, serviceProvider = the facility."""
    fields = f"""
        'identifier', [json_object('use', 'official', 'system', '{SYNTHEA_SYSTEM}', 'value', order_id)],
        'status', 'finished', 'class', json_object('system', '{ACT_CODE}', 'code', fhir_class),
        'type', [{_codeable(f"'{SNOMED}'", 'type_code', 'type_display')}],
        'subject', {refs.to('Patient', 'patient_id')},
        'period', json_object('start', iso_ts(start_at), 'end', iso_ts(end_at)),
        'serviceProvider', {refs.organization('facility_id')}"""
    return _resource("Encounter", "order_id", fields, "visit", "'3|' || order_id || '|0'")


def _line_resource(rtype: str, where: str, fields: str) -> str:
    """An order line as a resource, sorted into the Bundle after its Encounter."""
    return _resource(rtype, "line_id", fields, f"line WHERE {where}",
                     "'3|' || order_id || '|1|' || lpad(CAST(line_no AS VARCHAR), 4, '0')")


def _items(refs: FhirRefs) -> dict[str, str]:
    """The order lines: MedicationRequest (a quarter as MedicationDispense), Procedure (services,
    tests and devices) and Immunization, each pointing at its Encounter."""
    subject, encounter = refs.to("Patient", "patient_id"), refs.to("Encounter", "order_id")
    code = _codeable("fhir_system", "product_id", "name")
    return {
        "MedicationRequest": _line_resource("MedicationRequest", "dest = 'medication' AND NOT dispensed", f"""
            'status', 'completed', 'intent', 'order', 'medicationCodeableConcept', {code},
            'subject', {subject}, 'encounter', {encounter}, 'authoredOn', iso_ts(ordered_at),
            'dispenseRequest', json_object('quantity', json_object('value', quantity))"""),
        "MedicationDispense": _line_resource("MedicationDispense", "dispensed", f"""
            'status', 'completed', 'medicationCodeableConcept', {code}, 'subject', {subject},
            'context', {encounter}, 'quantity', json_object('value', quantity),
            'whenHandedOver', iso_ts(ordered_at)"""),
        "Procedure": _line_resource("Procedure", "dest IN ('procedure', 'device')", f"""
            'status', 'completed', 'code', {code}, 'subject', {subject}, 'encounter', {encounter},
            'performedPeriod', json_object('start', iso_ts(ordered_at), 'end', iso_ts(finished_at))"""),
        "Immunization": _line_resource("Immunization", "dest = 'immunization'", f"""
            'status', 'completed', 'vaccineCode', {code}, 'patient', {subject}, 'encounter', {encounter},
            'occurrenceDateTime', iso_ts(ordered_at), 'primarySource', true"""),
    }


def _claim(refs: FhirRefs) -> str:
    """One Claim per encounter: an item per order line with quantity, unit price and net."""
    items = f"""(SELECT order_id, list(json_object(
                    'sequence', line_no, 'encounter', [{refs.to('Encounter', 'order_id')}],
                    'productOrService', {_codeable('fhir_system', 'product_id', 'name')},
                    'quantity', json_object('value', quantity),
                    'unitPrice', json_object('value', unit_price, 'currency', '{CURRENCY}'),
                    'net', json_object('value', total, 'currency', '{CURRENCY}')) ORDER BY line_no) AS items
                 FROM line GROUP BY order_id)"""
    fields = f"""
        'status', 'active', 'type', json_object('coding', [json_object('system',
            'http://terminology.hl7.org/CodeSystem/claim-type', 'code', 'institutional')]),
        'use', 'claim', 'patient', {refs.to('Patient', 'patient_id')},
        'billablePeriod', json_object('start', iso_ts(start_at), 'end', iso_ts(end_at)), 'created', iso_ts(end_at),
        'provider', {refs.organization('facility_id')},
        'priority', json_object('coding', [json_object('system',
            'http://terminology.hl7.org/CodeSystem/processpriority', 'code', 'normal')]),
        'insurance', [json_object('sequence', 1, 'focal', true,
                                  'coverage', {refs.to('Coverage', "patient_id || '-coverage'")})],
        'item', items, 'total', json_object('value', total, 'currency', '{CURRENCY}')"""
    return _resource("Claim", "order_id || '-claim'", fields, f"visit JOIN {items} USING (order_id)",
                     "'3|' || order_id || '|9'")


def _organization() -> str:
    """One Organization per facility, identified the way Synthea identifies its organizations."""
    fields = f"""
        'identifier', [json_object('system', '{SYNTHEA_SYSTEM}', 'value', facility_id)], 'active', true,
        'type', [json_object('coding', [json_object('system',
            'http://terminology.hl7.org/CodeSystem/organization-type', 'code', 'prov',
            'display', 'Healthcare Provider')], 'text', 'Healthcare Provider')],
        'name', name"""
    return _resource("Organization", "facility_id", fields, "fac", "facility_id", patient_sql="NULL")


def patient_resources(refs: FhirRefs) -> dict[str, str]:
    """Every per-patient resource type and the SELECT that builds it, in Bundle entry order."""
    return {"Patient": _patient(), "Coverage": _coverage(refs), "Condition": _condition(refs),
            "Encounter": _encounter(refs), **_items(refs), "Claim": _claim(refs)}


GZIPPED = ("Patient", "Condition")  # compressed in fhir-bulk, to exercise the .ndjson.gz path


def write_fhir_bulk(exporter: Exporter) -> None:
    """A Bulk Data `$export`: one `<Type>.000.ndjson` per resource type, relative references."""
    selects = {**patient_resources(FhirRefs(in_bundle=False)), "Organization": _organization()}
    for rtype, sql in selects.items():
        gz = rtype in GZIPPED
        exporter.ndjson(f"{rtype}.000.ndjson" + (".gz" if gz else ""),
                        f"SELECT resource::VARCHAR FROM ({sql}) ORDER BY patient_id, sort_key, id", gzip=gz)


# Bundles are concatenated as text (each resource is JSON already): a quarter of the time
# json_object over JSON values takes.
PATIENT_BUNDLES = """
SELECT patient_id,
       '{"resourceType":"Bundle","type":"transaction","entry":['
       || string_agg('{"fullUrl":' || to_json('urn:uuid:' || id) || ',"resource":' || resource::VARCHAR
                     || ',"request":{"method":"POST","url":"' || rtype || '"}}', ',' ORDER BY sort_key, id)
       || ']}'
FROM fhir_resource GROUP BY patient_id ORDER BY patient_id
"""
# Synthea's hospitalInformation Bundle posts an Organization only when none has its identifier yet.
HOSPITAL_BUNDLE = f"""
SELECT json_object('resourceType', 'Bundle', 'type', 'transaction', 'entry', list(json_object(
           'fullUrl', 'urn:uuid:' || id, 'resource', resource,
           'request', json_object('method', 'POST', 'url', 'Organization',
                                  'ifNoneExist', 'identifier={SYNTHEA_SYSTEM}|' || id)) ORDER BY id))::VARCHAR
FROM ({{organizations}})
"""


def _bundle_file_name(patient_id: str) -> str:
    """`<patient_id>.json`, any character a file name should not hold replaced."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", patient_id) + ".json"


def write_fhir_bundles(exporter: Exporter) -> dict[str, int]:
    """Synthea's FHIR output: a transaction Bundle per patient and a hospitalInformation Bundle of
    Organizations; returns the number of resources per type."""
    con, out = exporter.con, exporter.out
    selects = patient_resources(FhirRefs(in_bundle=True))
    con.execute("CREATE TABLE fhir_resource AS " + " UNION ALL ".join(selects.values())).fetchall()
    resources = dict(con.execute("SELECT rtype, count(*) FROM fhir_resource GROUP BY rtype ORDER BY rtype").fetchall())
    hospital = f"hospitalInformation{int(W.SNAPSHOT.astype('datetime64[ms]').astype('int64'))}.json"
    exporter.ndjson(hospital, HOSPITAL_BUNDLE.format(organizations=_organization()))
    resources["Organization"] = int(con.execute("SELECT count(*) FROM fac").fetchall()[0][0])
    exporter.files[hospital] = resources["Organization"]
    cursor = con.execute(PATIENT_BUNDLES)
    written = 0
    while batch := cursor.fetchmany(2000):
        for patient_id, bundle in batch:
            (out / _bundle_file_name(patient_id)).write_text(bundle + "\n", encoding="utf-8")
        written += len(batch)
    exporter.files["<patient_id>.json"] = written
    return resources


# ---------------------------------------------------------------------------------------
# OMOP CDM (5.3 and 5.4)
# ---------------------------------------------------------------------------------------

OMOP_COMMON = {
    "person": ("person_id", "gender_concept_id", "year_of_birth", "month_of_birth", "day_of_birth", "birth_datetime",
               "race_concept_id", "ethnicity_concept_id", "location_id", "provider_id", "care_site_id",
               "person_source_value", "gender_source_value", "gender_source_concept_id", "race_source_value",
               "race_source_concept_id", "ethnicity_source_value", "ethnicity_source_concept_id"),
    "observation_period": ("observation_period_id", "person_id", "observation_period_start_date",
                           "observation_period_end_date", "period_type_concept_id"),
    "drug_exposure": ("drug_exposure_id", "person_id", "drug_concept_id", "drug_exposure_start_date",
                      "drug_exposure_start_datetime", "drug_exposure_end_date", "drug_exposure_end_datetime",
                      "verbatim_end_date", "drug_type_concept_id", "stop_reason", "refills", "quantity",
                      "days_supply", "sig", "route_concept_id", "lot_number", "provider_id", "visit_occurrence_id",
                      "visit_detail_id", "drug_source_value", "drug_source_concept_id", "route_source_value",
                      "dose_unit_source_value"),
    "condition_occurrence": ("condition_occurrence_id", "person_id", "condition_concept_id", "condition_start_date",
                             "condition_start_datetime", "condition_end_date", "condition_end_datetime",
                             "condition_type_concept_id", "condition_status_concept_id", "stop_reason",
                             "provider_id", "visit_occurrence_id", "visit_detail_id", "condition_source_value",
                             "condition_source_concept_id", "condition_status_source_value"),
    "death": ("person_id", "death_date", "death_datetime", "death_type_concept_id", "cause_concept_id",
              "cause_source_value", "cause_source_concept_id"),
    "payer_plan_period": ("payer_plan_period_id", "person_id", "payer_plan_period_start_date",
                          "payer_plan_period_end_date", "payer_concept_id", "payer_source_value",
                          "payer_source_concept_id", "plan_concept_id", "plan_source_value", "plan_source_concept_id",
                          "sponsor_concept_id", "sponsor_source_value", "sponsor_source_concept_id",
                          "family_source_value", "stop_reason_concept_id", "stop_reason_source_value",
                          "stop_reason_source_concept_id"),
    "care_site": ("care_site_id", "care_site_name", "place_of_service_concept_id", "location_id",
                  "care_site_source_value", "place_of_service_source_value"),
    "cost": ("cost_id", "cost_event_id", "cost_domain_id", "cost_type_concept_id", "currency_concept_id",
             "total_charge", "total_cost", "total_paid", "paid_by_payer", "paid_by_patient", "paid_patient_copay",
             "paid_patient_coinsurance", "paid_patient_deductible", "paid_by_primary", "paid_ingredient_cost",
             "paid_dispensing_fee", "payer_plan_period_id", "amount_allowed", "revenue_code_concept_id",
             "revenue_code_source_value", "drg_concept_id", "drg_source_value"),
    "concept": ("concept_id", "concept_name", "domain_id", "vocabulary_id", "concept_class_id", "standard_concept",
                "concept_code", "valid_start_date", "valid_end_date", "invalid_reason"),
}
OMOP_LOCATION_53 = ("location_id", "address_1", "address_2", "city", "state", "zip", "county", "location_source_value")
OMOP_CDM_SOURCE_53 = ("cdm_source_name", "cdm_source_abbreviation", "cdm_holder", "source_description",
                      "source_documentation_reference", "cdm_etl_reference", "source_release_date",
                      "cdm_release_date", "cdm_version", "vocabulary_version")
OMOP_HEADERS = {
    "5.3": {
        **OMOP_COMMON,
        "visit_occurrence": ("visit_occurrence_id", "person_id", "visit_concept_id", "visit_start_date",
                             "visit_start_datetime", "visit_end_date", "visit_end_datetime", "visit_type_concept_id",
                             "provider_id", "care_site_id", "visit_source_value", "visit_source_concept_id",
                             "admitting_source_concept_id", "admitting_source_value", "discharge_to_concept_id",
                             "discharge_to_source_value", "preceding_visit_occurrence_id"),
        "procedure_occurrence": ("procedure_occurrence_id", "person_id", "procedure_concept_id", "procedure_date",
                                 "procedure_datetime", "procedure_type_concept_id", "modifier_concept_id",
                                 "quantity", "provider_id", "visit_occurrence_id", "visit_detail_id",
                                 "procedure_source_value", "procedure_source_concept_id", "modifier_source_value"),
        "device_exposure": ("device_exposure_id", "person_id", "device_concept_id", "device_exposure_start_date",
                            "device_exposure_start_datetime", "device_exposure_end_date",
                            "device_exposure_end_datetime", "device_type_concept_id", "unique_device_id",
                            "quantity", "provider_id", "visit_occurrence_id", "visit_detail_id",
                            "device_source_value", "device_source_concept_id"),
        "location": OMOP_LOCATION_53,
        "cdm_source": OMOP_CDM_SOURCE_53,
    },
    "5.4": {
        **OMOP_COMMON,
        "visit_occurrence": ("visit_occurrence_id", "person_id", "visit_concept_id", "visit_start_date",
                             "visit_start_datetime", "visit_end_date", "visit_end_datetime", "visit_type_concept_id",
                             "provider_id", "care_site_id", "visit_source_value", "visit_source_concept_id",
                             "admitted_from_concept_id", "admitted_from_source_value", "discharged_to_concept_id",
                             "discharged_to_source_value", "preceding_visit_occurrence_id"),
        "procedure_occurrence": ("procedure_occurrence_id", "person_id", "procedure_concept_id", "procedure_date",
                                 "procedure_datetime", "procedure_end_date", "procedure_end_datetime",
                                 "procedure_type_concept_id", "modifier_concept_id", "quantity", "provider_id",
                                 "visit_occurrence_id", "visit_detail_id", "procedure_source_value",
                                 "procedure_source_concept_id", "modifier_source_value"),
        "device_exposure": ("device_exposure_id", "person_id", "device_concept_id", "device_exposure_start_date",
                            "device_exposure_start_datetime", "device_exposure_end_date",
                            "device_exposure_end_datetime", "device_type_concept_id", "unique_device_id",
                            "production_id", "quantity", "provider_id", "visit_occurrence_id", "visit_detail_id",
                            "device_source_value", "device_source_concept_id", "unit_concept_id",
                            "unit_source_value", "unit_source_concept_id"),
        "location": (*OMOP_LOCATION_53, "country_concept_id", "country_source_value", "latitude", "longitude"),
        "cdm_source": (*OMOP_CDM_SOURCE_53[:9], "cdm_version_concept_id", "vocabulary_version"),
    },
}
CDM_VERSION = {"5.3": ("v5.3.1", None), "5.4": ("v5.4", 756265)}  # cdm_version, cdm_version_concept_id
EHR = "32817"  # Type Concept "EHR": the provenance of every record here
# concept_id, name, domain, vocabulary, class, standard, code: the fixed concepts the tables use
FIXED_CONCEPTS = (
    (8507, "MALE", "Gender", "Gender", "Gender", "S", "M"),
    (8532, "FEMALE", "Gender", "Gender", "Gender", "S", "F"),
    (9202, "Outpatient Visit", "Visit", "Visit", "Visit", "S", "OP"),
    (5083, "Telehealth", "Visit", "CMS Place of Service", "Visit", "S", "02"),
    (581476, "Home Visit", "Visit", "Visit", "Visit", "S", "OH"),
)


def _omop_people() -> dict[str, tuple[dict[str, str], str]]:
    """person, observation_period, death, payer_plan_period, location, care_site."""
    person = {
        "person_id": "person_id", "gender_concept_id": "CASE sex WHEN 'M' THEN 8507 WHEN 'F' THEN 8532 ELSE 0 END",
        "year_of_birth": "year(birth_date)", "month_of_birth": "month(birth_date)", "day_of_birth": "day(birth_date)",
        "birth_datetime": "omop_ts(CAST(birth_date AS TIMESTAMP))", "race_concept_id": "0",
        "ethnicity_concept_id": "0", "location_id": "l.location_id", "person_source_value": "patient_id",
        "gender_source_value": "gender_source", "gender_source_concept_id": "0", "race_source_concept_id": "0",
        "ethnicity_source_concept_id": "0",
    }
    period = {"observation_period_id": "person_id", "person_id": "person_id",
              "observation_period_start_date": "iso_day(registered_at)",
              "observation_period_end_date": f"'{SNAPSHOT}'", "period_type_concept_id": EHR}
    death = {"person_id": "person_id", "death_date": "iso_day(death_date)",
             "death_datetime": "omop_ts(CAST(death_date AS TIMESTAMP))", "death_type_concept_id": EHR}
    plan = {"payer_plan_period_id": "person_id", "person_id": "person_id",
            "payer_plan_period_start_date": "iso_day(registered_at)", "payer_plan_period_end_date": f"'{SNAPSHOT}'",
            "payer_concept_id": "0", "payer_source_value": "omop_payer", "payer_source_concept_id": "0"}
    location = {"location_id": "location_id", "city": "city", "state": "region", "zip": "postal_code",
                "location_source_value": "concat_ws('|', region, city, postal_code)", "country_source_value": "'CN'"}
    care_site = {"care_site_id": "care_site_id", "care_site_name": "name", "care_site_source_value": "facility_id"}
    place = "l.city IS NOT DISTINCT FROM p.city AND l.region IS NOT DISTINCT FROM p.region " \
            "AND l.postal_code IS NOT DISTINCT FROM p.postal_code"
    return {
        "person": (person, f"pat p LEFT JOIN loc l ON {place} ORDER BY person_id"),
        "observation_period": (period, "pat ORDER BY person_id"),
        "death": (death, "pat WHERE death_date IS NOT NULL ORDER BY person_id"),
        "payer_plan_period": (plan, "member JOIN pat USING (patient_id, person_id) ORDER BY person_id"),
        "location": (location, "loc ORDER BY location_id"),
        "care_site": (care_site, "fac ORDER BY care_site_id"),
    }


def _omop_visits() -> dict[str, tuple[dict[str, str], str]]:
    """visit_occurrence and condition_occurrence."""
    visit = {
        "visit_occurrence_id": "visit_id", "person_id": "person_id", "visit_concept_id": "visit_concept_id",
        "visit_start_date": "iso_day(start_at)", "visit_start_datetime": "omop_ts(start_at)",
        "visit_end_date": "iso_day(end_at)", "visit_end_datetime": "omop_ts(end_at)", "visit_type_concept_id": EHR,
        "care_site_id": "f.care_site_id", "visit_source_value": "order_id", "visit_source_concept_id": "0",
        "admitting_source_concept_id": "0", "admitted_from_concept_id": "0",
        "discharge_to_concept_id": "0", "discharged_to_concept_id": "0",
        "preceding_visit_occurrence_id": "lag(visit_id) OVER (PARTITION BY person_id ORDER BY start_at, visit_id)",
    }
    condition = {
        "condition_occurrence_id": "dx_id", "person_id": "p.person_id", "condition_concept_id": "c.concept_id",
        "condition_start_date": "iso_day(dx.diagnosed_at)",
        "condition_start_datetime": "omop_ts(CAST(dx.diagnosed_at AS TIMESTAMP))",
        "condition_type_concept_id": EHR, "condition_status_concept_id": "0", "condition_source_value": "dx.code",
        "condition_source_concept_id": "c.concept_id",
    }
    return {
        "visit_occurrence": (visit, "visit LEFT JOIN fac f USING (facility_id) ORDER BY visit_id"),
        "condition_occurrence": (condition, "dx JOIN pat p USING (patient_id) JOIN cond c USING (code) ORDER BY dx_id"),
    }


def _omop_exposures() -> dict[str, tuple[dict[str, str], str]]:
    """drug_exposure (drugs and vaccines), procedure_occurrence, device_exposure and their cost rows."""
    common = {"person_id": "v.person_id", "quantity": "quantity", "visit_occurrence_id": "v.visit_id"}
    drug = {**common, "drug_exposure_id": "event_id", "drug_concept_id": "concept_id",
            "drug_exposure_start_date": "iso_day(ordered_at)", "drug_exposure_start_datetime": "omop_ts(ordered_at)",
            "drug_exposure_end_date": "iso_day(ordered_at)", "drug_exposure_end_datetime": "omop_ts(ordered_at)",
            "drug_type_concept_id": EHR, "refills": "0", "route_concept_id": "0", "drug_source_value": "product_id",
            "drug_source_concept_id": "concept_id"}
    procedure = {**common, "procedure_occurrence_id": "event_id", "procedure_concept_id": "concept_id",
                 "procedure_date": "iso_day(ordered_at)", "procedure_datetime": "omop_ts(ordered_at)",
                 "procedure_end_date": "iso_day(finished_at)", "procedure_end_datetime": "omop_ts(finished_at)",
                 "procedure_type_concept_id": EHR, "modifier_concept_id": "0", "procedure_source_value": "product_id",
                 "procedure_source_concept_id": "concept_id"}
    device = {**common, "device_exposure_id": "event_id", "device_concept_id": "concept_id",
              "device_exposure_start_date": "iso_day(ordered_at)",
              "device_exposure_start_datetime": "omop_ts(ordered_at)",
              "device_type_concept_id": EHR, "unique_device_id": udi_sql("0"), "device_source_value": "product_id",
              "device_source_concept_id": "concept_id"}
    cost = {"cost_id": "row_number() OVER (ORDER BY omop_domain, event_id)", "cost_event_id": "event_id",
            "cost_domain_id": "omop_domain", "cost_type_concept_id": EHR, "total_charge": "l.total",
            "payer_plan_period_id": "v.person_id"}
    lines = "line l JOIN visit v USING (order_id) WHERE omop_domain = '{}' ORDER BY event_id"
    return {
        "drug_exposure": (drug, lines.format("Drug")),
        "procedure_occurrence": (procedure, lines.format("Procedure")),
        "device_exposure": (device, lines.format("Device")),
        "cost": (cost, "line l JOIN visit v USING (order_id) ORDER BY omop_domain, event_id"),
    }


def _omop_vocabulary(version: str) -> dict[str, tuple[dict[str, str], str]]:
    """concept (the fixed concepts, one per product, one ICD10CM concept per condition) and cdm_source."""
    fixed = " UNION ALL ".join(
        "SELECT " + ", ".join(sql_literal(v) if isinstance(v, str) else str(v) for v in row) for row in FIXED_CONCEPTS)
    concepts = f"""(
        SELECT * FROM ({fixed}) AS f(concept_id, concept_name, domain_id, vocabulary_id, concept_class_id,
                                     standard_concept, concept_code)
        UNION ALL SELECT concept_id, name, omop_domain, vocabulary, concept_class, 'S', product_id FROM prod
        UNION ALL SELECT concept_id, name, 'Condition', 'ICD10CM',
                         CASE WHEN length(code) = 3 THEN '3-char nonbill code' ELSE 'ICD10 code' END, NULL, code
                  FROM cond) ORDER BY concept_id"""
    # Athena's vocabulary download writes dates as YYYYMMDD; CDM 5.4 exports write ISO dates
    start, end = ("'19700101'", "'20991231'") if version == "5.3" else ("'1970-01-01'", "'2099-12-31'")
    concept = {c: c for c in OMOP_COMMON["concept"]} | {"valid_start_date": start, "valid_end_date": end,
                                                       "invalid_reason": "NULL"}
    cdm_version, version_concept = CDM_VERSION[version]
    cdm_source = {
        "cdm_source_name": "'medmkt demo world'", "cdm_source_abbreviation": "'medmkt'", "cdm_holder": "'medmkt'",
        "source_description": "'Synthetic healthcare-marketing world written by medmkt_assets.demo_data'",
        "cdm_etl_reference": "'medmkt_assets/demo_data/formats.py'", "source_release_date": f"'{SNAPSHOT}'",
        "cdm_release_date": f"'{SNAPSHOT}'", "cdm_version": f"'{cdm_version}'",
        "cdm_version_concept_id": str(version_concept), "vocabulary_version": "'medmkt demo subset'",
    }
    return {"concept": (concept, concepts), "cdm_source": (cdm_source, "(SELECT 1)")}


def write_omop(exporter: Exporter, version: str) -> None:
    """The CDM tables of that version: 5.4 with upper-case file names, 5.3 lower-case with the
    concept file tab-separated as Athena writes it."""
    headers = OMOP_HEADERS[version]
    tables = {**_omop_people(), **_omop_visits(), **_omop_exposures(), **_omop_vocabulary(version)}
    for table, (exprs, source) in tables.items():
        name = f"{table.upper() if version == '5.4' else table}.csv"
        delimiter = "\t" if table == "concept" and version == "5.3" else ","
        exporter.csv(name, select_columns(headers[table], exprs, source), delimiter=delimiter)


# ---------------------------------------------------------------------------------------
# Entry points
# ---------------------------------------------------------------------------------------

def _check_layout(layout: str) -> None:
    """Refuse an unknown layout before anything is written."""
    if layout not in LAYOUTS:
        raise ValueError(f"unknown layout {layout!r}; expected one of {', '.join(LAYOUTS)}")


def write_layout(canonical_dir: Path, out_dir: Path, layout: str) -> dict:
    """Convert a canonical CSV world (generate(..., fmt='csv')) into `layout` inside out_dir.

    Returns {"layout", "files": {file name: rows}}; fhir-bundles also counts "resources" per
    type and lists the per-patient Bundles as "<patient_id>.json": number of files.
    """
    _check_layout(layout)
    family, version = layout.split("-", 1)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with duckdb.connect() as con:
        con.execute("SET enable_progress_bar = false").fetchall()
        _stage(con, Path(canonical_dir))
        exporter = Exporter(con, out)
        manifest: dict = {"layout": layout}
        if family == "synthea":
            write_synthea(exporter, version)
        elif family == "omop":
            write_omop(exporter, version)
        elif version == "bulk":
            write_fhir_bulk(exporter)
        else:
            manifest["resources"] = write_fhir_bundles(exporter)
    manifest["files"] = exporter.files
    return manifest


def generate_in_layout(out_dir: str | Path, layout: str, patients: int, seed: int, **generate_kwargs) -> dict:
    """Generate a clean world (no planted bad rows) and write it in `layout` into out_dir.

    The truth goes to `<out>/_truth/`; the side tables no clinical export carries (campaigns,
    contacts, consents, surveys, events) are copied as canonical `<table>.csv` beside the export.
    Returns generate()'s manifest plus "layout" and "files" (every file written: rows).
    """
    _check_layout(layout)
    clash = {"fmt", "with_bad_rows"} & set(generate_kwargs)
    if clash:
        raise ValueError(f"generate_in_layout always writes a clean CSV world; do not pass {sorted(clash)}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="medmkt-canonical-") as tmp:
        canonical = Path(tmp)
        manifest = generate(canonical, patients=patients, seed=seed, fmt="csv", with_bad_rows=False,
                            **generate_kwargs)
        written = write_layout(canonical, out, layout)
        if (out / "_truth").exists():
            shutil.rmtree(out / "_truth")
        shutil.move(str(canonical / "_truth"), str(out / "_truth"))
        for table in SIDE_TABLES:
            shutil.copyfile(canonical / f"{table}.csv", out / f"{table}.csv")
            written["files"][f"{table}.csv"] = manifest["rows"][table]
    return {**manifest, **written}
