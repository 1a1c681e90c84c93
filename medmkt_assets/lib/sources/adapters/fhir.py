"""FHIR R4 exports (Bulk Data NDJSON and Synthea transaction Bundles) → canonical tables.

Inputs, both read in bulk by DuckDB's JSON functions, both allowed in the same folder:

* Bulk Data `$export` NDJSON: `*.ndjson` / `*.ndjson.gz` in the folder (or its `fhir/`
  subfolder), one resource per line; the type comes from each line's `resourceType`.
  `_source_row` is the 1-based line in the file (blank lines counted). Files whose lines
  carry no `resourceType` at all (the server's `log.ndjson`) are skipped and listed.
* Transaction Bundles as Synthea writes them: `*.json` in the folder and in `fhir/`
  (patients, `hospitalInformation*`, `practitionerInformation*`); resources are
  `entry[*].resource`, `_source_row` is the 1-based entry index. A `.json` file holding a
  single resource counts as row 1; one with no `resourceType` (a manifest) is skipped.

Every reference goes through one macro, `fhir_ref_id`: `Patient/<id>`, `urn:uuid:<id>`,
`https://x/fhir/Patient/<id>[/_history/n]`, `#<id>` and conditional references
`Type?identifier=<system>|<value>` all become the bare id (the `<value>` for conditional ones).

| canonical column | FHIR source |
|---|---|
| **patients** | one row per Patient resource |
| patient_id | Patient.id (Bundle: else the entry's fullUrl id) |
| full_name | given names + family of the `official` name, else of the first name; else name.text |
| gender | Patient.gender as is (female/male/other/unknown; staging maps to F/M/U) |
| birth_date | Patient.birthDate |
| phone / email | first telecom with system `phone` / `email` |
| address | address[0].line joined with ", " |
| city / region / postal_code | address[0].city / .state / .postalCode |
| insurance_type | latest Coverage per beneficiary (else subscriber) by period.start, including the Coverage Synthea contains in each ExplanationOfBenefit (dated by the EOB's billablePeriod.start): payor reference to the patient or text with no insurance / no_insurance / uninsured / self pay → `self_pay`; payor display, type text/codings, class names with medicare / medicaid / dual / government / public → `public`; else `commercial`; empty without Coverage |
| registered_at | date of the patient's first Encounter period.start |
| death_date | date part of deceasedDateTime |
| **products** | one row per product_id, from MedicationRequest, MedicationDispense, MedicationAdministration, Procedure, Immunization |
| product_id | `med:` + medication code (medicationCodeableConcept.coding[0], else the referenced or contained Medication's code.coding[0]); `proc:` + Procedure.code.coding[0]; `imm:` + Immunization.vaccineCode.coding[0] (the Synthea CSV adapter's prefixes) |
| name / description | that coding's display, else the concept's text, else the code (first occurrence) |
| category | `vaccination` for `imm:`; else common.category_sql(name), fallback `general_medicine` (med) / `general_procedures` (proc) |
| kind / rx_only | `drug` / `true` for med; `service` / `false` otherwise |
| unit_price | median price of Claim items with that code (ExplanationOfBenefit items when there is no Claim): item.unitPrice, else item.net / item.quantity, else item.net, else the claim's total when it has a single item (Synthea's pharmacy claims); empty without claims |
| **orders** | one line per (order, product) of the item resources above |
| order_id | the item's Encounter id (`encounter`, MedicationDispense/Administration `context`); without one `patient:<patient id>:<item date YYYY-MM-DD>` |
| line_no | row_number within the order by product_id |
| patient_id | subject (Immunization: patient); empty when missing (staging quarantines the line) |
| product_id | as in products |
| ordered_at | Encounter.period.start, else the item's own date (authoredOn, whenHandedOver, effectiveDateTime / effectivePeriod.start, performedDateTime / performedPeriod.start, occurrenceDateTime) |
| quantity | sum over the order's items of MedicationRequest.dispenseRequest.quantity.value / MedicationDispense.quantity.value, else 1 |
| unit_price | average price of the Claim items for (encounter, code), as for products |
| channel | Encounter.class code (a Coding, or an array): VR → `online`, HH → `phone`, any other class → `clinic`; empty without an Encounter |
| facility_id | Encounter.serviceProvider id (a conditional reference is resolved to the Organization with that identifier when present) |
| **diagnoses** | one row per Condition |
| patient_id | Condition.subject |
| condition_code / condition_name | the first ICD-10 coding, else coding[0]: code / display (else code.text) |
| diagnosed_at | date part of onsetDateTime, else onsetPeriod.start, else recordedDate |

Campaigns, campaign contacts, consents, surveys and events have no FHIR mapping (None).
Other resource types are counted and listed in notes["ignored_resource_types"].
"""
from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

from medmkt_assets.lib.engine.sql import sql_literal
from medmkt_assets.lib.engine.warehouse import Session, WarehouseError, scratch
from medmkt_assets.lib.sources.adapters.common import category_sql
from medmkt_assets.lib.sources.files import SourceError, masked_error

# DuckDB sizes its read buffers by maximum_object_size (per thread): a fixed 512 MB ran out of
# memory under the warehouse's 4 GB cap, so the bound is the largest file read, at least 16 MB.
MIN_OBJECT_BYTES = 16 * 1024 * 1024


MAX_OBJECT_BYTES = 512 * 1024 * 1024


def _object_bound(paths: list[Path]) -> int:
    """maximum_object_size for these files: no object is larger than its file (a gzipped file
    inflates, about tenfold for FHIR JSON: allow 16 times)."""
    sizes = [p.stat().st_size * (16 if p.name.lower().endswith(".gz") else 1) + 1 for p in paths]
    return min(MAX_OBJECT_BYTES, max([MIN_OBJECT_BYTES] + sizes))
NDJSON_SUFFIXES = (".ndjson", ".ndjson.gz")
BUNDLE_SUFFIX = ".json"
EXPECTED = ("expected FHIR Bulk Data NDJSON (<ResourceType>.ndjson or .ndjson.gz, one resource per line) "
            "or transaction Bundles (*.json, also in a fhir/ subfolder)")

ITEM_TYPES = {  # resource type → product-id prefix (the Synthea CSV adapter's)
    "MedicationRequest": "med", "MedicationDispense": "med", "MedicationAdministration": "med",
    "Procedure": "proc", "Immunization": "imm",
}
# Types whose JSON is kept; every other type is only counted (its JSON is not stored).
USED_TYPES = ("Patient", "Encounter", "Condition", "Coverage", "Claim", "ExplanationOfBenefit",
              "Organization", "Medication", *ITEM_TYPES)
# Optional inputs: what is left empty when a type is absent (notes["missing_optional_inputs"]).
# (label, types any of which provides it, effect)
OPTIONAL_INPUTS = (
    ("Encounter", ("Encounter",), "registered_at, channel and facility_id left empty; ordered_at from the "
                                  "item's own date"),
    ("Condition", ("Condition",), "diagnoses left empty"),
    ("Coverage", ("Coverage", "ExplanationOfBenefit"), "insurance_type left empty"),
    ("Claim/ExplanationOfBenefit", ("Claim", "ExplanationOfBenefit"), "prices left empty"),
    ("Organization", ("Organization",), "facility_id is the serviceProvider reference id, unresolved"),
    ("MedicationRequest", ("MedicationRequest",), "no prescription lines"),
    ("MedicationDispense", ("MedicationDispense",), "no dispense lines"),
    ("MedicationAdministration", ("MedicationAdministration",), "no administration lines"),
    ("Procedure", ("Procedure",), "no procedure products or lines"),
    ("Immunization", ("Immunization",), "no vaccination products or lines"),
)

# Every reference → bare id. Conditional ones keep the identifier value (Synthea's
# `Organization?identifier=https://github.com/synthetichealth/synthea|<id>` is the id).
REF_MACRO = r"""
CREATE OR REPLACE TEMP MACRO fhir_ref_id(ref) AS nullif(CASE
    WHEN contains(ref, '?') THEN regexp_extract(replace(replace(ref, '%7C', '|'), '%7c', '|'),
                                                '[?&]identifier=(?:[^|&]*\|)?([^&|]*)', 1)
    WHEN starts_with(lower(ref), 'urn:') THEN regexp_extract(ref, '^urn:[^:]+:(.*)$', 1)
    ELSE regexp_extract(regexp_replace(trim(ref), '/_history/[^/]*$', ''), '([^/#]*)$', 1)
END, '')"""
# The system part of a conditional reference (`Organization?identifier=<system>|<value>`).
REF_SYSTEM_MACRO = r"""
CREATE OR REPLACE TEMP MACRO fhir_ref_system(ref) AS nullif(regexp_extract(
    replace(replace(ref, '%7C', '|'), '%7c', '|'), '[?&]identifier=([^|&]*)\|', 1), '')"""

RESOURCES_DDL = """
CREATE OR REPLACE TEMP TABLE {table} (file_no INTEGER, _source_file VARCHAR, _source_row BIGINT,
                                      resource_type VARCHAR, id VARCHAR, res JSON)"""

# One NDJSON file as text lines. The delimiter (ASCII record separator) never occurs in
# valid JSON, so each line is one column; '\r\n' mode counts \n and \r\n line ends alike
# and keeps blank lines (as NULL), so row numbers are the file's line numbers.
NDJSON_LINES_SQL = """
CREATE OR REPLACE TEMP TABLE {lines} AS
SELECT line FROM read_csv({path}, columns = {{'line': 'VARCHAR'}}, header = false, delim = {delim},
                          quote = '', escape = '', auto_detect = false, new_line = '\\r\\n',
                          strict_mode = false, max_line_size = {max_bytes})"""
NUMBERED_LINES = """
(SELECT n, line, CASE WHEN json_valid(line) THEN json_type(line) END AS kind,
        CASE WHEN json_valid(line) AND json_type(line) = 'OBJECT'
             THEN json_extract_string(line, '$.resourceType') END AS resource_type
 FROM (SELECT CAST(row_number() OVER (ORDER BY rowid) AS BIGINT) AS n, line FROM {lines})
 WHERE trim(coalesce(line, '')) <> '')"""
NDJSON_CHECK_SQL = """
SELECT min(n) FILTER (WHERE kind IS NULL), min(n) FILTER (WHERE kind <> 'OBJECT'),
       count(resource_type), min(n) FILTER (WHERE kind = 'OBJECT' AND resource_type IS NULL)
FROM {numbered}"""
NDJSON_INSERT_SQL = """
INSERT INTO {table}
SELECT {file_no}, {path}, n, resource_type, json_extract_string(line, '$.id'),
       CASE WHEN resource_type IN ({used}) THEN json(line) END
FROM {numbered}"""

# Every .json file in one read (Synthea writes one Bundle per patient: file by file, a few
# thousand take minutes): top-level values numbered per file, then Bundle entries unnested.
JSON_READ_SQL = """
CREATE OR REPLACE TEMP TABLE {docs}_read AS
SELECT filename, json FROM read_json_objects({paths}, format = 'auto', maximum_object_size = {max_bytes},
                                             filename = true)"""
JSON_DOCS_SQL = """
CREATE OR REPLACE TEMP TABLE {docs} AS
SELECT f.file_no, f.path, CAST(row_number() OVER (PARTITION BY d.filename ORDER BY d.rowid) AS BIGINT) AS n,
       d.json AS doc,
       CASE WHEN json_type(d.json) = 'OBJECT' THEN json_extract_string(d.json, '$.resourceType') END AS resource_type
FROM {docs}_read d JOIN (SELECT * FROM (VALUES {files}) AS v(file_no, path)) f ON f.path = d.filename"""
JSON_INSERT_SQL = """
INSERT INTO {table}
WITH entries AS (
         SELECT file_no, path, unnest(generate_series(1, len(entry))) AS n, unnest(entry) AS entry
         FROM (SELECT file_no, path, json_extract(doc, '$.entry[*]') AS entry FROM {docs}
               WHERE resource_type = 'Bundle')),
     resources AS (
         SELECT file_no, path, n, json_extract(entry, '$.resource') AS res,
                fhir_ref_id(json_extract_string(entry, '$.fullUrl')) AS full_url_id
         FROM entries WHERE json_type(json_extract(entry, '$.resource')) = 'OBJECT'
         UNION ALL
         SELECT file_no, path, n, doc, NULL FROM {docs} WHERE resource_type IS NOT NULL AND resource_type <> 'Bundle')
SELECT file_no, path, n, json_extract_string(res, '$.resourceType'),
       coalesce(json_extract_string(res, '$.id'), full_url_id),
       CASE WHEN json_extract_string(res, '$.resourceType') IN ({used}) THEN res END
FROM resources"""


def _json_error_line(path: Path) -> int | None:
    """1-based line of the first JSON syntax error in a .json file (error path only: DuckDB
    reports a byte offset or a record number, not a line)."""
    text = path.read_text(encoding="utf-8", errors="replace")
    decoder, pos = json.JSONDecoder(), 0
    try:
        while True:
            while pos < len(text) and text[pos].isspace():
                pos += 1
            if pos >= len(text):
                return None
            _, pos = decoder.raw_decode(text, pos)
    except json.JSONDecodeError as exc:
        return exc.lineno


def _discover(source_dir: Path) -> tuple[list[Path], list[Path]]:
    """NDJSON files and .json files in the folder and its `fhir/` subfolder (Synthea's layout)."""
    if not source_dir.is_dir():
        raise SourceError(f"{source_dir}: not a folder; {EXPECTED}")
    folders = [source_dir] + [p for p in (source_dir / "fhir",) if p.is_dir()]
    found = sorted(p for folder in folders for p in folder.iterdir()
                   if p.is_file() and not p.name.startswith("."))
    ndjson = [p for p in found if p.name.lower().endswith(NDJSON_SUFFIXES)]
    bundles = [p for p in found if p.name.lower().endswith(BUNDLE_SUFFIX)]
    if not ndjson and not bundles:
        raise SourceError(f"{source_dir}: no *.ndjson, *.ndjson.gz or *.json files; {EXPECTED}")
    return ndjson, bundles


def _used_list() -> str:
    """The types whose JSON is kept, as an SQL IN list."""
    return ", ".join(sql_literal(t) for t in USED_TYPES)


def _load_ndjson(con: Session, table: str, path: Path, file_no: int) -> str | None:
    """Append one NDJSON file's resources; returns why the file was skipped, or None when loaded."""
    lines = f"{table}_lines"
    try:
        con.execute(NDJSON_LINES_SQL.format(lines=lines, path=sql_literal(str(path)), delim=sql_literal(chr(30)),
                                            max_bytes=_object_bound([path])))
    except WarehouseError as exc:
        found = re.search(r"Line: (\d+)", str(exc))
        where = f"line {found.group(1)} " if found else ""
        raise SourceError(f"{path}: {where}cannot be read as UTF-8 NDJSON text ({masked_error(exc)})") from exc
    try:
        numbered = NUMBERED_LINES.format(lines=lines)
        bad_json, not_object, typed, untyped = con.execute(NDJSON_CHECK_SQL.format(numbered=numbered)).fetchall()[0]
        if bad_json is not None:
            raise SourceError(f"{path}: line {bad_json} is not valid JSON (expected one FHIR resource per line)")
        if not_object is not None:
            raise SourceError(f"{path}: line {not_object} is not a JSON object (expected one FHIR resource "
                              "per line)")
        if not typed:
            return "no resourceType: not FHIR resources"
        if untyped is not None:
            raise SourceError(f"{path}: line {untyped} has no resourceType (expected one FHIR resource per line)")
        con.execute(NDJSON_INSERT_SQL.format(table=table, file_no=file_no, path=sql_literal(str(path)),
                                             used=_used_list(), numbered=numbered))
        return None
    finally:
        con.execute(f"DROP TABLE IF EXISTS {lines}")


def _refuse_unreadable_json(paths: list[Path], exc: WarehouseError) -> None:
    """The batch read failed: read the files one at a time, on a connection of its own (the
    caller's transaction is aborted), to name the bad file and line."""
    con = scratch()
    for path in paths:
        try:
            con.execute(f"SELECT count(*) FROM read_json_objects({sql_literal(str(path))}, format = 'auto', "
                        f"maximum_object_size = {_object_bound([path])})").fetchall()
        except WarehouseError as file_exc:
            line = _json_error_line(path)
            if line is not None:
                raise SourceError(f"{path}: line {line} is not valid JSON (expected a FHIR Bundle)") from file_exc
            raise SourceError(f"{path}: cannot be read as JSON ({masked_error(file_exc)})") from file_exc
    raise SourceError(f"{paths[0].parent}: the *.json files cannot be read together ({masked_error(exc)})") from exc


def _load_json(con: Session, table: str, numbered: list[tuple[int, Path]]) -> dict[Path, str]:
    """Append the Bundle entries (or single resources) of every .json file in one read; returns the
    skipped files with why."""
    if not numbered:
        return {}
    docs = f"{table}_docs"
    paths = [p for _, p in numbered]
    try:
        con.execute(JSON_READ_SQL.format(docs=docs, paths="[" + ", ".join(sql_literal(str(p)) for p in paths) + "]",
                                         max_bytes=_object_bound(paths)))
    except WarehouseError as exc:
        _refuse_unreadable_json(paths, exc)
    try:
        con.execute(JSON_DOCS_SQL.format(docs=docs, files=", ".join(f"({n}, {sql_literal(str(p))})"
                                                                   for n, p in numbered)))
        typed = dict(con.execute(f"SELECT path, count(resource_type) FROM {docs} GROUP BY path").fetchall())
        con.execute(JSON_INSERT_SQL.format(table=table, docs=docs, used=_used_list()))
        return {p: "no resourceType: not a FHIR Bundle" for p in paths if not typed.get(str(p))}
    finally:
        con.execute(f"DROP TABLE IF EXISTS {docs}")
        con.execute(f"DROP TABLE IF EXISTS {docs}_read")


def _listing(items: list[str]) -> str:
    """A notes value: comma-separated, or "none" so an empty list reads as checked, not forgotten."""
    return ", ".join(items) if items else "none"


class FhirExport:
    """Loads a FHIR export folder once into a temp table of resources and yields the canonical
    SELECT for each table (see the module docstring for the mapping)."""

    def __init__(self, con: Session, source_dir: Path, batches: list[Path] = ()):
        """`batches`: NDJSON / Bundle files the drop-zone sensor accepted (an incremental `_since`
        export, say), read after the folder's own files."""
        self.dir = Path(source_dir)
        # One table per folder: re-opening the same export replaces it instead of piling up copies.
        digest = hashlib.sha1(str(self.dir.resolve()).encode()).hexdigest()[:12]
        self.table = f"_fhir_resources_{digest}"
        ndjson, bundles = _discover(self.dir)
        ndjson += [p for p in batches if p.name.lower().endswith(NDJSON_SUFFIXES)]
        bundles += [p for p in batches if p.name.lower().endswith(BUNDLE_SUFFIX)]
        self.files: list[Path] = ndjson + bundles
        con.execute(REF_MACRO)
        con.execute(REF_SYSTEM_MACRO)
        con.execute(RESOURCES_DDL.format(table=self.table))
        skipped = {}
        for file_no, path in enumerate(ndjson):
            reason = _load_ndjson(con, self.table, path, file_no)
            if reason:
                skipped[path] = reason
        skipped |= _load_json(con, self.table, list(enumerate(bundles, start=len(ndjson))))
        self.counts = dict(con.execute(f"SELECT resource_type, count(*) FROM {self.table} GROUP BY 1 "
                                       "ORDER BY 1").fetchall())
        if not self.counts.get("Patient"):
            raise SourceError(f"{self.dir}: no Patient resources in *.ndjson / *.json; a FHIR export needs Patient")
        self.price_type = "Claim" if self.counts.get("Claim") else "ExplanationOfBenefit"
        self.notes = self._notes(ndjson, bundles, skipped)

    def _notes(self, ndjson: list[Path], bundles: list[Path], skipped: dict[Path, str]) -> dict[str, str]:
        """Asset metadata: what was read, what was left out and what is missing."""
        loaded = [p for p in self.files if p not in skipped]
        layout = [name for name, group in (("bulk ndjson", ndjson), ("transaction bundles", bundles))
                  if any(p in loaded for p in group)]
        ignored = [t for t in sorted(self.counts) if t not in USED_TYPES]
        ordered = [t for t in USED_TYPES if t in self.counts] + ignored
        missing = [f"{label} ({effect})" for label, types, effect in OPTIONAL_INPUTS
                   if not any(self.counts.get(t) for t in types)]
        return {
            "layout": " + ".join(layout),
            "resource_counts": ", ".join(f"{t}={self.counts[t]}" for t in ordered),
            "ignored_resource_types": _listing(ignored),
            "missing_optional_inputs": _listing(missing),
            "ignored_files": _listing([f"{p.relative_to(self.dir)} ({why})" for p, why in skipped.items()]),
        }

    def select(self, table: str) -> str | None:
        """The canonical SELECT for a table, or None for tables FHIR has no mapping for."""
        builder = {"patients": _patients_sql, "products": _products_sql, "orders": _orders_sql,
                   "diagnoses": _diagnoses_sql}.get(table)
        return builder(self.table, self.price_type) if builder else None


# ---------------------------------------------------------------------------------------
# SELECT builders. Each takes the resources table and the price source (Claim or EOB).

def _s(path: str, doc: str = "res") -> str:
    """json_extract_string of a path in a resource."""
    return f"json_extract_string({doc}, {sql_literal(path)})"


def _ref(path: str, doc: str = "res") -> str:
    """The bare id a reference at `path` points to."""
    return f"fhir_ref_id({_s(path, doc)})"


def _coalesce(paths: tuple[str, ...], doc: str = "res") -> str:
    """The first present of several paths (the same field under different names per type)."""
    return "coalesce(" + ", ".join(_s(p, doc) for p in paths) + ")"


def _of(table: str, *types: str) -> str:
    """The rows of some resource types, with their sort key (file, row)."""
    return f"(SELECT * FROM {table} WHERE resource_type IN ({', '.join(sql_literal(t) for t in types)}))"


PAYER_TEXT_PATHS = ("$.payor[*].display", "$.type.coding[*].display", "$.type.coding[*].code", "$.class[*].name")
SELF_PAY_WORDS = ("no insurance", "no_insurance", "uninsured", "self pay", "self-pay", "self_pay", "selfpay")
PUBLIC_WORDS = ("medicare", "medicaid", "dual", "government", "public")


def _insurance_sql(table: str) -> str:
    """Per patient, the class of the latest Coverage: standalone ones, and the one Synthea
    contains in each ExplanationOfBenefit (dated by the EOB's billing period)."""
    text = ("lower(concat_ws(' ', " + ", ".join(f"array_to_string({_s(p, 'cov')}, ' ')" for p in PAYER_TEXT_PATHS)
            + f", {_s('$.type.text', 'cov')}))")
    payor_ids = f"list_transform({_s('$.payor[*].reference', 'cov')}, lambda r: fhir_ref_id(r))"

    def words(keys: tuple[str, ...]) -> str:
        return " OR ".join(f"contains(payer_text, {sql_literal(k)})" for k in keys)

    return f"""
        coverages AS (
            SELECT res AS cov, {_s('$.period.start')} AS started, file_no, _source_row, NULL AS eob_patient
            FROM {_of(table, 'Coverage')}
            UNION ALL
            SELECT c.cov, coalesce({_s('$.period.start', 'c.cov')}, {_s('$.billablePeriod.start')},
                                   {_s('$.created')}), file_no, _source_row, {_ref('$.patient.reference')}
            FROM {_of(table, 'ExplanationOfBenefit')},
                 (SELECT unnest(json_extract(res, '$.contained[*]')) AS cov) c
            WHERE {_s('$.resourceType', 'c.cov')} = 'Coverage'),
        classified AS (
            SELECT coalesce({_ref('$.beneficiary.reference', 'cov')}, {_ref('$.subscriber.reference', 'cov')},
                            eob_patient) AS patient_id,
                   {text} AS payer_text, {payor_ids} AS payor_ids, started, file_no, _source_row
            FROM coverages WHERE coalesce({_s('$.status', 'cov')}, '') <> 'entered-in-error'),
        insurance AS (
            SELECT patient_id, CASE
                       WHEN list_contains(payor_ids, patient_id) OR {words(SELF_PAY_WORDS)} THEN 'self_pay'
                       WHEN {words(PUBLIC_WORDS)} THEN 'public'
                       ELSE 'commercial' END AS insurance_type
            FROM classified
            QUALIFY row_number() OVER (PARTITION BY patient_id
                                       ORDER BY coalesce(started, '') DESC, file_no DESC, _source_row DESC) = 1)"""


def _patients_sql(table: str, _price_type: str) -> str:
    name = ("coalesce(list_filter(json_extract(res, '$.name[*]'), "
            "lambda n: json_extract_string(n, '$.use') = 'official')[1], json_extract(res, '$.name[0]'))")

    def telecom(system: str) -> str:
        return (f"json_extract_string(list_filter(json_extract(res, '$.telecom[*]'), lambda t: "
                f"json_extract_string(t, '$.system') = {sql_literal(system)})[1], '$.value')")

    return f"""
        WITH {_insurance_sql(table)},
             first_visit AS (
                 SELECT {_ref('$.subject.reference')} AS patient_id, min({_s('$.period.start')}) AS first_start
                 FROM {_of(table, 'Encounter')} GROUP BY 1),
             patients AS (SELECT *, {name} AS name FROM {_of(table, 'Patient')})
        SELECT p.id AS patient_id,
               coalesce(nullif(concat_ws(' ', array_to_string({_s('$.given[*]', 'name')}, ' '),
                                         {_s('$.family', 'name')}), ''), {_s('$.text', 'name')}) AS full_name,
               {_s('$.gender')} AS gender, {_s('$.birthDate')} AS birth_date,
               {telecom('phone')} AS phone, {telecom('email')} AS email,
               nullif(array_to_string({_s('$.address[0].line[*]')}, ', '), '') AS address,
               {_s('$.address[0].city')} AS city, {_s('$.address[0].state')} AS region,
               {_s('$.address[0].postalCode')} AS postal_code, i.insurance_type,
               left(f.first_start, 10) AS registered_at, left({_s('$.deceasedDateTime')}, 10) AS death_date,
               p._source_file, p._source_row
        FROM patients p LEFT JOIN first_visit f ON f.patient_id = p.id
                        LEFT JOIN insurance i ON i.patient_id = p.id
        ORDER BY p.file_no, p._source_row"""


ITEM_DATE_PATHS = ("$.authoredOn", "$.whenHandedOver", "$.whenPrepared", "$.effectiveDateTime",
                   "$.effectivePeriod.start", "$.performedDateTime", "$.performedPeriod.start",
                   "$.occurrenceDateTime")
ITEM_QUANTITY_PATHS = ("$.dispenseRequest.quantity.value", "$.quantity.value")


def _items_sql(table: str) -> str:
    """CTEs `medications` and `items`: every item resource as one line with its product code,
    name, patient, encounter, own date and quantity."""
    prefix = "CASE resource_type " + " ".join(
        f"WHEN {sql_literal(t)} THEN {sql_literal(p)}" for t, p in ITEM_TYPES.items()) + " END"
    med_ref = _s("$.medicationReference.reference")
    contained = (f"json_extract(list_filter(json_extract(res, '$.contained[*]'), lambda c: "
                 f"'#' || json_extract_string(c, '$.id') = {med_ref})[1], '$.code')")
    concept = f"""CASE WHEN resource_type = 'Procedure' THEN json_extract(res, '$.code')
                       WHEN resource_type = 'Immunization' THEN json_extract(res, '$.vaccineCode')
                       ELSE coalesce(json_extract(res, '$.medicationCodeableConcept'), {contained}, m.code) END"""
    quantity = " , ".join(f"try_cast({_s(p)} AS DOUBLE)" for p in ITEM_QUANTITY_PATHS)
    return f"""
        medications AS (
            SELECT id, first(json_extract(res, '$.code') ORDER BY file_no, _source_row) AS code
            FROM {_of(table, 'Medication')} GROUP BY id),
        concepts AS (
            SELECT r.*, {prefix} AS prefix, {concept} AS concept
            FROM {_of(table, *ITEM_TYPES)} r
                 LEFT JOIN medications m ON m.id = fhir_ref_id({med_ref}) AND NOT starts_with({med_ref}, '#')),
        items AS (
            SELECT prefix, {_s('$.coding[0].code', 'concept')} AS code,
                   prefix || ':' || {_s('$.coding[0].code', 'concept')} AS product_id,
                   coalesce({_s('$.coding[0].display', 'concept')}, {_s('$.text', 'concept')},
                            {_s('$.coding[0].code', 'concept')}) AS name,
                   coalesce({_ref('$.subject.reference')}, {_ref('$.patient.reference')}) AS patient_id,
                   coalesce({_ref('$.encounter.reference')}, {_ref('$.context.reference')}) AS encounter_id,
                   {_coalesce(ITEM_DATE_PATHS)} AS item_date,
                   coalesce({quantity}, 1) AS quantity, file_no, _source_file, _source_row
            FROM concepts)"""


def _prices_sql(table: str, price_type: str) -> str:
    """CTE `prices`: one priced claim item per row (encounter id, code, price). Synthea puts the
    encounter on a claim's first item only, so it applies to all the claim's items."""
    return f"""
        claim_items AS (
            SELECT unnest(json_extract(res, '$.item[*]')) AS item, json_array_length(res, '$.item') AS n_items,
                   coalesce(try_cast({_s('$.total.value')} AS DOUBLE),
                            try_cast({_s('$.total[0].amount.value')} AS DOUBLE)) AS total,
                   fhir_ref_id(list_filter({_s('$.item[*].encounter[0].reference')},
                                           lambda e: e IS NOT NULL)[1]) AS claim_encounter
            FROM {_of(table, price_type)}),
        prices AS (
            SELECT coalesce({_ref('$.encounter[0].reference', 'item')}, claim_encounter) AS encounter_id,
                   {_s('$.productOrService.coding[0].code', 'item')} AS code,
                   coalesce(try_cast({_s('$.unitPrice.value', 'item')} AS DOUBLE),
                            try_cast({_s('$.net.value', 'item')} AS DOUBLE)
                                / nullif(try_cast({_s('$.quantity.value', 'item')} AS DOUBLE), 0),
                            try_cast({_s('$.net.value', 'item')} AS DOUBLE),
                            CASE WHEN n_items = 1 THEN total END) AS price
            FROM claim_items)"""


def _products_sql(table: str, price_type: str) -> str:
    fallback = "CASE prefix WHEN 'med' THEN 'general_medicine' ELSE 'general_procedures' END"
    return f"""
        WITH {_items_sql(table)}, {_prices_sql(table, price_type)},
             products AS (
                 SELECT product_id, first(prefix ORDER BY file_no, _source_row) AS prefix,
                        first(code ORDER BY file_no, _source_row) AS code,
                        first(name ORDER BY file_no, _source_row) AS name,
                        first(_source_file ORDER BY file_no, _source_row) AS _source_file,
                        first(_source_row ORDER BY file_no, _source_row) AS _source_row
                 FROM items WHERE product_id IS NOT NULL GROUP BY product_id),
             product_prices AS (SELECT code, median(price) AS price FROM prices WHERE price IS NOT NULL GROUP BY code)
        SELECT p.product_id, p.name,
               CASE WHEN p.prefix = 'imm' THEN 'vaccination' ELSE {category_sql('p.name', fallback)} END AS category,
               CASE WHEN p.prefix = 'med' THEN 'drug' ELSE 'service' END AS kind,
               CAST(round(pp.price, 2) AS VARCHAR) AS unit_price,
               CASE WHEN p.prefix = 'med' THEN 'true' ELSE 'false' END AS rx_only,
               p.name AS description, p._source_file, p._source_row
        FROM products p LEFT JOIN product_prices pp ON pp.code = p.code
        ORDER BY p.product_id"""


def _encounters_sql(table: str) -> str:
    """CTE `encounters`: one row per Encounter id (the first occurrence) with its start, class
    code (R4 Coding, or an array of Codings / CodeableConcepts) and facility."""
    klass = _coalesce(("$.class.code", "$.class[0].code", "$.class[0].coding[0].code"))
    provider = _s("$.serviceProvider.reference")
    return f"""
        organizations AS (
            SELECT {_s('$.system', 'ident')} AS system, {_s('$.value', 'ident')} AS value, min(id) AS id
            FROM (SELECT id, unnest(json_extract(res, '$.identifier[*]')) AS ident
                  FROM {_of(table, 'Organization')}) GROUP BY ALL),
        encounters AS (
            SELECT e.id, first({_s('$.period.start')} ORDER BY file_no, _source_row) AS started,
                   first(upper({klass}) ORDER BY file_no, _source_row) AS class_code,
                   first(coalesce(o.id, fhir_ref_id({provider})) ORDER BY file_no, _source_row) AS facility_id
            FROM {_of(table, 'Encounter')} e
                 LEFT JOIN organizations o ON o.system = fhir_ref_system({provider})
                                          AND o.value = fhir_ref_id({provider})
            GROUP BY e.id)"""


def _orders_sql(table: str, price_type: str) -> str:
    # Lines without an order or product id are never merged: each stays its own row for staging
    # to quarantine with a reason.
    return f"""
        WITH {_items_sql(table)}, {_prices_sql(table, price_type)}, {_encounters_sql(table)},
             keyed AS (
                 SELECT *, coalesce(encounter_id, 'patient:' || patient_id || ':' || left(item_date, 10)) AS order_id
                 FROM items),
             lines AS (
                 SELECT order_id, product_id,
                        first(patient_id ORDER BY patient_id IS NULL, file_no, _source_row) AS patient_id,
                        first(encounter_id ORDER BY file_no, _source_row) AS encounter_id,
                        first(code ORDER BY file_no, _source_row) AS code,
                        min(item_date) AS item_date, sum(quantity) AS quantity,
                        first(_source_file ORDER BY file_no, _source_row) AS _source_file,
                        first(_source_row ORDER BY file_no, _source_row) AS _source_row,
                        min(file_no) AS file_no
                 FROM keyed
                 GROUP BY order_id, product_id,
                          CASE WHEN order_id IS NULL OR product_id IS NULL THEN file_no || ':' || _source_row END),
             line_prices AS (SELECT encounter_id, code, avg(price) AS price FROM prices GROUP BY ALL)
        SELECT l.order_id,
               CAST(row_number() OVER (PARTITION BY l.order_id ORDER BY l.product_id, l.file_no, l._source_row)
                    AS VARCHAR) AS line_no,
               l.patient_id, l.product_id, coalesce(e.started, l.item_date) AS ordered_at,
               CASE WHEN l.quantity = round(l.quantity) THEN CAST(CAST(l.quantity AS BIGINT) AS VARCHAR)
                    ELSE CAST(l.quantity AS VARCHAR) END AS quantity,
               CAST(round(lp.price, 2) AS VARCHAR) AS unit_price,
               CASE WHEN e.class_code = 'VR' THEN 'online' WHEN e.class_code = 'HH' THEN 'phone'
                    WHEN e.class_code IS NOT NULL THEN 'clinic' END AS channel,
               e.facility_id, l._source_file, l._source_row
        FROM lines l LEFT JOIN encounters e ON e.id = l.encounter_id
                     LEFT JOIN line_prices lp ON lp.encounter_id = l.encounter_id AND lp.code = l.code
        ORDER BY l.file_no, l._source_row"""


def _diagnoses_sql(table: str, _price_type: str) -> str:
    coding = ("coalesce(list_filter(json_extract(res, '$.code.coding[*]'), lambda c: regexp_matches("
              "lower(coalesce(json_extract_string(c, '$.system'), '')), 'icd-?10'))[1], "
              "json_extract(res, '$.code.coding[0]'))")
    return f"""
        SELECT coalesce({_ref('$.subject.reference')}, {_ref('$.patient.reference')}) AS patient_id,
               {_s('$.code', 'coding')} AS condition_code,
               coalesce({_s('$.display', 'coding')}, {_s('$.code.text')}) AS condition_name,
               left({_coalesce(('$.onsetDateTime', '$.onsetPeriod.start', '$.recordedDate'))}, 10) AS diagnosed_at,
               _source_file, _source_row
        FROM (SELECT *, {coding} AS coding FROM {_of(table, 'Condition')})
        ORDER BY file_no, _source_row"""


def probe_file(path: Path) -> str | None:
    """Why one NDJSON or Bundle file (a drop-zone batch) cannot be read as FHIR, or None."""
    if not path.name.lower().endswith((*NDJSON_SUFFIXES, BUNDLE_SUFFIX)):
        return f"{path}: not a FHIR file ({EXPECTED})"
    con = scratch()
    try:
        con.execute(REF_MACRO)
        con.execute(RESOURCES_DDL.format(table="_probe"))
        if path.name.lower().endswith(NDJSON_SUFFIXES):
            reason = _load_ndjson(con, "_probe", path, 0)
        else:
            reason = _load_json(con, "_probe", [(0, path)]).get(path)
        return f"{path}: {reason}" if reason else None
    except SourceError as exc:
        return str(exc)
    finally:
        con.close()
