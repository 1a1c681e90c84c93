"""The demo world as FHIR R4: Bulk Data NDJSON or Synthea-style per-patient transaction Bundles."""
from __future__ import annotations

import re
from dataclasses import dataclass

from medmkt_assets.demo_data import world as W
from medmkt_assets.demo_data.formats.common import (
    CURRENCY,
    SYNTHEA_SYSTEM,
    Exporter,
)

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


