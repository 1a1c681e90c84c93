"""The FHIR adapter on tiny known-answer exports (bulk NDJSON and Synthea-style transaction
Bundles of the same world), its errors, and the real bulk sample when it is present."""
from __future__ import annotations

import copy
import gzip
import json
from pathlib import Path

import duckdb
import pytest

from medmkt_assets.lib.sources.adapters.fhir import REF_MACRO, FhirExport
from medmkt_assets.lib.sources.files import SourceError
from medmkt_assets.lib.sources.schema import SOURCE_TABLES

SAMPLE = Path(__file__).resolve().parents[2] / "shared" / "data" / "fhir_bulk_sample"
SYNTHEA_ORG = "https://github.com/synthetichealth/synthea"
NPI = "http://hl7.org/fhir/sid/us-npi"
METFORMIN = {"coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "860975",
                         "display": "24 HR metformin hydrochloride 500 MG Extended Release Oral Tablet"}]}


def _code(code: str, display: str | None = None, system: str = "http://snomed.info/sct") -> dict:
    coding = {"system": system, "code": code}
    if display:
        coding["display"] = display
    return {"coding": [coding]}


def _ref(target: str) -> dict:
    return {"reference": target}


def _r(resource_type: str, id_: str, **fields) -> dict:
    return {"resourceType": resource_type, "id": id_, **fields}


# One small world: three patients, three encounters (AMB, VR, HH as an array), every item
# type, conditions, coverages, claims, and resource types the adapter does not use.
WORLD = {
    "Organization": [
        _r("Organization", "org1", identifier=[{"system": SYNTHEA_ORG, "value": "org1"}], name="Clinic One"),
        _r("Organization", "org2", identifier=[{"system": NPI, "value": "1234567890"}], name="Home Care Two"),
    ],
    "Patient": [
        _r("Patient", "p1", name=[{"use": "maiden", "family": "Old", "given": ["Ann"]},
                                  {"use": "official", "family": "Lee", "given": ["Ann", "Marie"], "prefix": ["Mrs."]}],
           telecom=[{"system": "phone", "value": "555-0101"}, {"system": "email", "value": "ann@example.com"}],
           gender="female", birthDate="1950-03-04", deceasedDateTime="2024-06-01T10:00:00-04:00",
           address=[{"line": ["1 Main St", "Apt 2"], "city": "Boston", "state": "MA", "postalCode": "02101"}]),
        _r("Patient", "p2", name=[{"family": "Stone", "given": ["Bob"]}], gender="male", birthDate="1980-01-02",
           telecom=[{"system": "phone", "value": "555-0102"}],
           address=[{"line": ["2 Elm Rd"], "city": "Salem", "state": "MA", "postalCode": "01970"}]),
        _r("Patient", "p3", name=[{"text": "Cat Jones"}], gender="other", birthDate="2001-07-08"),
    ],
    "Encounter": [
        _r("Encounter", "e1", subject=_ref("Patient/p1"), **{"class": {"code": "AMB"}},
           period={"start": "2024-01-10T09:00:00-05:00"}, serviceProvider=_ref("Organization/org1")),
        _r("Encounter", "e2", subject=_ref("Patient/p1"), **{"class": {"code": "VR"}},
           period={"start": "2024-02-01T10:00:00Z"},
           serviceProvider=_ref(f"Organization?identifier={SYNTHEA_ORG}|org1")),
        _r("Encounter", "e3", subject=_ref("Patient/p2"), **{"class": [{"code": "HH"}]},
           period={"start": "2024-03-05T08:00:00Z"},
           serviceProvider=_ref(f"Organization?identifier={NPI}|1234567890")),
    ],
    "Medication": [_r("Medication", "m1", code=_code("314076", "lisinopril 10 MG Oral Tablet"))],
    "MedicationRequest": [
        _r("MedicationRequest", "mr1", subject=_ref("Patient/p1"), encounter=_ref("Encounter/e1"),
           medicationCodeableConcept=METFORMIN, authoredOn="2024-01-10T09:30:00-05:00",
           dispenseRequest={"quantity": {"value": 30}}),
        _r("MedicationRequest", "mr2", subject=_ref("Patient/p1"), encounter=_ref("Encounter/e1"),
           medicationCodeableConcept=METFORMIN, authoredOn="2024-01-10T09:30:00-05:00",
           dispenseRequest={"quantity": {"value": 30.0}}),
        _r("MedicationRequest", "mr3", subject=_ref("Patient/p2"), medicationReference=_ref("Medication/m1"),
           authoredOn="2024-04-01T12:00:00Z"),
    ],
    "MedicationDispense": [
        _r("MedicationDispense", "md1", subject=_ref("Patient/p1"), context=_ref("Encounter/e2"),
           medicationCodeableConcept=METFORMIN, quantity={"value": 90}, whenHandedOver="2024-02-01T11:00:00Z"),
    ],
    "MedicationAdministration": [
        _r("MedicationAdministration", "ma1", subject=_ref("Patient/p2"), context=_ref("Encounter/e3"),
           contained=[_r("Medication", "med", code=_code("198211", "Simvastatin 40 MG Oral Tablet"))],
           medicationReference=_ref("#med"), effectiveDateTime="2024-03-05T08:20:00Z"),
    ],
    "Procedure": [
        _r("Procedure", "pr1", subject=_ref("Patient/p2"), encounter=_ref("Encounter/e3"),
           code=_code("430193006", "Medication Reconciliation (procedure)"),
           performedPeriod={"start": "2024-03-05T08:10:00Z"}),
        # no patient and no encounter: still a row, for staging to quarantine with a reason
        _r("Procedure", "pr2", code=_code("710824005", "Assessment of health and social care needs (procedure)"),
           performedDateTime="2024-05-05T10:00:00Z"),
    ],
    "Immunization": [
        _r("Immunization", "im1", patient=_ref("Patient/p1"), encounter=_ref("Encounter/e2"),
           vaccineCode=_code("140", "Influenza, seasonal, injectable, preservative free",
                             "http://hl7.org/fhir/sid/cvx"), occurrenceDateTime="2024-02-01T10:15:00Z"),
    ],
    "Condition": [
        _r("Condition", "c1", subject=_ref("Patient/p1"), onsetDateTime="2020-06-01T08:00:00-04:00",
           code={"coding": [{"system": "http://snomed.info/sct", "code": "44054006",
                             "display": "Diabetes mellitus type 2 (disorder)"},
                            {"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "E11.9",
                             "display": "Type 2 diabetes mellitus without complications"}]}),
        _r("Condition", "c2", subject=_ref("Patient/p2"), recordedDate="2021-02-03",
           code=_code("59621000", "Essential hypertension (disorder)")),
        _r("Condition", "c3", subject=_ref("Patient/p1"), onsetPeriod={"start": "2019-09-09T00:00:00Z"},
           code={"coding": [{"code": "161891005"}], "text": "Back pain"}),
    ],
    "Coverage": [
        _r("Coverage", "cov1", beneficiary=_ref("Patient/p1"), payor=[{"display": "Aetna"}],
           period={"start": "2010-01-01"}),
        _r("Coverage", "cov2", beneficiary=_ref("Patient/p1"), payor=[{"display": "Medicare"}],
           period={"start": "2015-01-01"}),
        _r("Coverage", "cov3", beneficiary=_ref("Patient/p2"), payor=[_ref("Patient/p2")]),  # the patient pays
    ],
    "Claim": [
        _r("Claim", "cl1", patient=_ref("Patient/p1"), item=[
            {"sequence": 1, "productOrService": _code("860975"), "encounter": [_ref("Encounter/e1")],
             "net": {"value": 25.0}, "quantity": {"value": 2}}]),
        # Synthea's encounter claim: the encounter on the first item only
        _r("Claim", "cl2", patient=_ref("Patient/p2"), total={"value": 150.0}, item=[
            {"sequence": 1, "productOrService": _code("185345009"), "encounter": [_ref("Encounter/e3")]},
            {"sequence": 2, "productOrService": _code("430193006"), "net": {"value": 150.0}}]),
        # Synthea's pharmacy claim: one item, the price in the total
        _r("Claim", "cl3", patient=_ref("Patient/p1"), total={"value": 20.0}, item=[
            {"sequence": 1, "productOrService": METFORMIN, "encounter": [_ref("Encounter/e2")]}]),
        _r("Claim", "cl4", patient=_ref("Patient/p2"), item=[
            {"sequence": 1, "productOrService": _code("198211"), "encounter": [_ref("Encounter/e3")],
             "unitPrice": {"value": 3.333}}]),
    ],
    "AllergyIntolerance": [_r("AllergyIntolerance", "al1", patient=_ref("Patient/p1"))],
    "Observation": [_r("Observation", "ob1", subject=_ref("Patient/p1"), code=_code("8302-2"))],
}

PATIENTS = [
    ("p1", "Ann Marie Lee", "female", "1950-03-04", "555-0101", "ann@example.com", "1 Main St, Apt 2", "Boston",
     "MA", "02101", "public", "2024-01-10", "2024-06-01"),
    ("p2", "Bob Stone", "male", "1980-01-02", "555-0102", None, "2 Elm Rd", "Salem", "MA", "01970", "self_pay",
     "2024-03-05", None),
    ("p3", "Cat Jones", "other", "2001-07-08", None, None, None, None, None, None, None, None, None),
]
PRODUCTS = [
    ("imm:140", "Influenza, seasonal, injectable, preservative free", "vaccination", "service", None, "false"),
    ("med:198211", "Simvastatin 40 MG Oral Tablet", "cardiology", "drug", "3.33", "true"),
    ("med:314076", "lisinopril 10 MG Oral Tablet", "cardiology", "drug", None, "true"),
    ("med:860975", METFORMIN["coding"][0]["display"], "diabetes_care", "drug", "16.25", "true"),
    ("proc:430193006", "Medication Reconciliation (procedure)", "checkup", "service", "150.0", "false"),
    ("proc:710824005", "Assessment of health and social care needs (procedure)", "checkup", "service", None,
     "false"),
]
ORDERS = [  # order_id, line_no, patient_id, product_id, ordered_at, quantity, unit_price, channel, facility_id
    ("e2", "1", "p1", "imm:140", "2024-02-01T10:00:00Z", "1", None, "online", "org1"),
    ("e3", "1", "p2", "med:198211", "2024-03-05T08:00:00Z", "1", "3.33", "phone", "org2"),
    ("e2", "2", "p1", "med:860975", "2024-02-01T10:00:00Z", "90", "20.0", "online", "org1"),
    ("e1", "1", "p1", "med:860975", "2024-01-10T09:00:00-05:00", "60", "12.5", "clinic", "org1"),
    ("patient:p2:2024-04-01", "1", "p2", "med:314076", "2024-04-01T12:00:00Z", "1", None, None, None),
    ("e3", "2", "p2", "proc:430193006", "2024-03-05T08:00:00Z", "1", "150.0", "phone", "org2"),
    (None, "1", None, "proc:710824005", "2024-05-05T10:00:00Z", "1", None, None, None),
]
DIAGNOSES = [
    ("p1", "E11.9", "Type 2 diabetes mellitus without complications", "2020-06-01"),
    ("p2", "59621000", "Essential hypertension (disorder)", "2021-02-03"),
    ("p1", "161891005", "Back pain", "2019-09-09"),
]
COLUMNS = {
    "patients": SOURCE_TABLES["patients"].columns,
    "products": ("product_id", "name", "category", "kind", "unit_price", "rx_only"),
    "orders": SOURCE_TABLES["orders"].columns,
    "diagnoses": SOURCE_TABLES["diagnoses"].columns,
}


def _line(resource: dict) -> str:
    return json.dumps(resource, separators=(",", ":"))


def write_bulk(folder: Path, world: dict = WORLD) -> Path:
    """The world as a bulk $export: <Type>.000.ndjson, Encounter gzip-compressed, a blank line
    and a CRLF line in the Patient file, and the server's log.ndjson."""
    folder.mkdir(parents=True, exist_ok=True)
    for resource_type, resources in world.items():
        lines = [_line(r) for r in resources]
        if resource_type == "Patient":
            text = lines[0] + "\n\n" + lines[1] + "\r\n" + "\n".join(lines[2:]) + "\n"
        else:
            text = "\n".join(lines) + "\n"
        if resource_type == "Encounter":
            (folder / "Encounter.000.ndjson.gz").write_bytes(gzip.compress(text.encode()))
        else:
            (folder / f"{resource_type}.000.ndjson").write_text(text, newline="")
    (folder / "log.ndjson").write_text('{"exportId": "x", "eventId": "kickoff"}\n'
                                       '{"exportId": "x", "eventId": "export_complete"}\n')
    return folder


def _as_synthea_refs(node):
    """Synthea's transaction-bundle references: urn:uuid for resources in the bundle,
    conditional identifier references for Organizations."""
    if isinstance(node, dict):
        out = {k: _as_synthea_refs(v) for k, v in node.items()}
        ref = node.get("reference")
        if isinstance(ref, str) and "/" in ref and "?" not in ref:
            kind, id_ = ref.split("/", 1)
            out["reference"] = (f"Organization?identifier={SYNTHEA_ORG}|{id_}" if kind == "Organization"
                                else f"urn:uuid:{id_}")
        return out
    if isinstance(node, list):
        return [_as_synthea_refs(v) for v in node]
    return node


def _bundle(resources: list[dict], kind: str = "transaction") -> str:
    entries = [{"fullUrl": f"urn:uuid:{r['id']}" if "id" in r else None, "resource": r,
                "request": {"method": "POST", "url": r["resourceType"]}} for r in resources]
    return json.dumps({"resourceType": "Bundle", "type": kind, "entry": entries}, indent=2)


def _owner(resource: dict) -> str | None:
    for key in ("subject", "patient", "beneficiary"):
        if key in resource:
            return resource[key]["reference"].rsplit(":", 1)[-1].split("/")[-1]
    return None


def write_bundles(folder: Path, world: dict = WORLD) -> Path:
    """The world as Synthea writes it: fhir/<patient>.json transaction bundles (urn:uuid and
    conditional references), hospitalInformation and practitionerInformation bundles."""
    out = folder / "fhir"
    out.mkdir(parents=True, exist_ok=True)
    everything = [_as_synthea_refs(copy.deepcopy(r)) for rs in world.values() for r in rs]
    for patient in [r for r in everything if r["resourceType"] == "Patient"]:
        pid = patient["id"]
        own = [r for r in everything if r["resourceType"] not in ("Patient", "Organization")
               and (_owner(r) == pid or (_owner(r) is None and pid == "p2"))]
        if pid == "p3":  # a transaction entry may carry its id only in fullUrl
            entry = _bundle([patient, *own]).replace('"id": "p3",', "", 1)
            assert '"id": "p3"' not in entry
            (out / "Cat_Jones_p3.json").write_text(entry)
            continue
        (out / f"patient_{pid}.json").write_text(_bundle([patient, *own]))
    orgs = [r for r in everything if r["resourceType"] == "Organization"]
    (out / "hospitalInformation1700000000000.json").write_text(_bundle(orgs, "batch"))
    (out / "practitionerInformation1700000000000.json").write_text(
        _bundle([_r("Practitioner", "dr1", identifier=[{"system": NPI, "value": "999"}])], "batch"))
    return folder


def _rows(con: duckdb.DuckDBPyConnection, export: FhirExport, table: str, with_source: bool = False) -> list[tuple]:
    columns = list(COLUMNS[table]) + (["_source_file", "_source_row"] if with_source else [])
    return con.execute(f"SELECT {', '.join(columns)} FROM ({export.select(table)})").fetchall()


def _sorted(rows: list[tuple]) -> list[tuple]:
    return sorted(rows, key=lambda row: tuple((v is None, v or "") for v in row))


@pytest.fixture
def bulk(tmp_path):
    con = duckdb.connect()
    return con, FhirExport(con, write_bulk(tmp_path / "bulk"))


def test_bulk_ndjson_patients(bulk):
    con, export = bulk
    rows = _rows(con, export, "patients", with_source=True)
    assert [r[:-2] for r in rows] == PATIENTS
    # line numbers of the file: a blank line counted, a CRLF line end counted once
    assert [(Path(r[-2]).name, r[-1]) for r in rows] == [("Patient.000.ndjson", 1), ("Patient.000.ndjson", 3),
                                                         ("Patient.000.ndjson", 4)]


def test_bulk_ndjson_products_orders_diagnoses(bulk):
    con, export = bulk
    products = _rows(con, export, "products", with_source=True)
    assert [r[:-2] for r in products] == PRODUCTS
    assert [(Path(r[-2]).name, r[-1]) for r in products] == [
        ("Immunization.000.ndjson", 1), ("MedicationAdministration.000.ndjson", 1),
        ("MedicationRequest.000.ndjson", 3), ("MedicationDispense.000.ndjson", 1),
        ("Procedure.000.ndjson", 1), ("Procedure.000.ndjson", 2)]
    descriptions = con.execute(f"SELECT product_id, name = description FROM ({export.select('products')})").fetchall()
    assert all(same for _, same in descriptions)
    orders = _rows(con, export, "orders", with_source=True)
    assert [r[:-2] for r in orders] == ORDERS
    assert (Path(orders[3][-2]).name, orders[3][-1]) == ("MedicationRequest.000.ndjson", 1)  # first of mr1+mr2
    diagnoses = _rows(con, export, "diagnoses", with_source=True)
    assert [r[:-2] for r in diagnoses] == DIAGNOSES
    assert [r[-1] for r in diagnoses] == [1, 2, 3]


def test_bulk_notes_files_and_contract_types(bulk, tmp_path):
    con, export = bulk
    assert export.notes["layout"] == "bulk ndjson"
    assert export.notes["resource_counts"] == (
        "Patient=3, Encounter=3, Condition=3, Coverage=3, Claim=4, Organization=2, Medication=1, "
        "MedicationRequest=3, MedicationDispense=1, MedicationAdministration=1, Procedure=2, Immunization=1, "
        "AllergyIntolerance=1, Observation=1")
    assert export.notes["ignored_resource_types"] == "AllergyIntolerance, Observation"
    assert export.notes["missing_optional_inputs"] == "none"
    assert export.notes["ignored_files"] == "log.ndjson (no resourceType: not FHIR resources)"
    assert {p.name for p in export.files} == {*(f"{t}.000.ndjson" for t in WORLD if t != "Encounter"),
                                              "Encounter.000.ndjson.gz", "log.ndjson"}
    con.execute("CREATE SCHEMA raw")
    for table in SOURCE_TABLES:
        select = export.select(table)
        if table not in COLUMNS:
            assert select is None
            continue
        con.execute(f"CREATE TABLE raw.{table} AS {select}")  # as ingestion runs it
        types = dict(con.execute(f"SELECT column_name, data_type FROM information_schema.columns "
                                 f"WHERE table_schema = 'raw' AND table_name = '{table}'").fetchall())
        assert types == {**{c: "VARCHAR" for c in SOURCE_TABLES[table].columns},
                         "_source_file": "VARCHAR", "_source_row": "BIGINT"}


def test_synthea_bundles_give_the_same_canonical_rows(tmp_path, bulk):
    bulk_con, bulk_export = bulk
    con = duckdb.connect()
    export = FhirExport(con, write_bundles(tmp_path / "synthea"))
    for table in COLUMNS:
        assert _sorted(_rows(con, export, table)) == _sorted(_rows(bulk_con, bulk_export, table)), table
    assert export.notes["layout"] == "transaction bundles"
    assert export.notes["ignored_resource_types"] == "AllergyIntolerance, Observation, Practitioner"
    patients = {r[0]: r[-2:] for r in _rows(con, export, "patients", with_source=True)}
    assert Path(patients["p3"][0]).name == "Cat_Jones_p3.json" and patients["p3"][1] == 1  # id from fullUrl
    # _source_row of a bundle resource is its 1-based entry index
    entries = json.loads((tmp_path / "synthea" / "fhir" / "patient_p2.json").read_text())["entry"]
    row = next(r for r in _rows(con, export, "diagnoses", with_source=True) if r[1] == "59621000")[-1]
    assert entries[row - 1]["resource"]["id"] == "c2"


def test_both_layouts_in_one_folder(tmp_path):
    folder = write_bulk(tmp_path / "both")
    (folder / "extra.json").write_text(_bundle([_r("Patient", "p9", gender="female")]))
    con = duckdb.connect()
    export = FhirExport(con, folder)
    assert export.notes["layout"] == "bulk ndjson + transaction bundles"
    assert [r[0] for r in _rows(con, export, "patients")] == ["p1", "p2", "p3", "p9"]


def test_missing_optional_inputs_are_listed(tmp_path):
    folder = tmp_path / "minimal"
    folder.mkdir()
    (folder / "Patient.ndjson").write_text(_line(WORLD["Patient"][1]) + "\n")
    (folder / "Procedure.ndjson").write_text(_line(WORLD["Procedure"][0]) + "\n")
    con = duckdb.connect()
    export = FhirExport(con, folder)
    missing = export.notes["missing_optional_inputs"]
    for label in ("Encounter (", "Condition (", "Coverage (insurance_type left empty)",
                  "Claim/ExplanationOfBenefit (prices left empty)", "MedicationRequest (", "Immunization ("):
        assert label in missing
    assert "Procedure (" not in missing and export.notes["ignored_resource_types"] == "none"
    # without the Encounter: the item's own date, no channel or facility
    assert _rows(con, export, "orders") == [("e3", "1", "p2", "proc:430193006", "2024-03-05T08:10:00Z", "1", None,
                                             None, None)]
    assert _rows(con, export, "diagnoses") == []


def test_insurance_type_from_coverage_text_and_synthea_eob(tmp_path):
    def coverage(id_: str, patient: str, **fields) -> dict:
        return _r("Coverage", id_, beneficiary=_ref(f"Patient/{patient}"), **fields)

    world = {
        "Patient": [_r("Patient", f"q{i}") for i in range(1, 7)],
        "Coverage": [
            coverage("a", "q1", payor=[{"display": "Medicaid"}], period={"start": "2020-01-01"}),
            coverage("b", "q1", payor=[{"display": "Aetna"}], period={"start": "2023-01-01"},
                     status="entered-in-error"),
            coverage("c", "q2", type={"text": "NO_INSURANCE"}),
            coverage("d", "q3", payor=[{"display": "Blue Cross Blue Shield"}]),
            coverage("e", "q4", **{"class": [{"name": "Dual Eligible"}]}),
        ],
        "ExplanationOfBenefit": [  # Synthea: the Coverage is contained, the patient is the EOB's
            _r("ExplanationOfBenefit", "eob1", patient=_ref("Patient/q5"), billablePeriod={"start": "2019-01-01"},
               contained=[{"resourceType": "Coverage", "id": "coverage", "type": {"text": "Medicare"},
                           "payor": [{"display": "Medicare"}]}]),
        ],
    }
    con = duckdb.connect()
    export = FhirExport(con, _write_plain(tmp_path / "ins", world))
    insurance = dict(con.execute(f"SELECT patient_id, insurance_type FROM ({export.select('patients')})").fetchall())
    assert insurance == {"q1": "public", "q2": "self_pay", "q3": "commercial", "q4": "public", "q5": "public",
                         "q6": None}


def _write_plain(folder: Path, world: dict) -> Path:
    folder.mkdir(parents=True)
    for resource_type, resources in world.items():
        (folder / f"{resource_type}.ndjson").write_text("".join(_line(r) + "\n" for r in resources))
    return folder


def test_reference_normalization():
    con = duckdb.connect()
    con.execute(REF_MACRO)
    cases = {
        "Patient/123": "123",
        "urn:uuid:0a1b-2c": "0a1b-2c",
        "https://x.example/fhir/Patient/123": "123",
        "https://x.example/fhir/Patient/123/_history/2": "123",
        f"Organization?identifier={SYNTHEA_ORG}|org-7": "org-7",
        f"Practitioner?identifier={NPI}|9999974493": "9999974493",
        "Organization?identifier=sys%7Corg-8": "org-8",
        "Patient?identifier=abc": "abc",
        "#med1": "med1",
        "": None,
    }
    got = dict(con.execute("SELECT r, fhir_ref_id(r) FROM unnest(?) t(r)", [list(cases)]).fetchall())
    assert got == cases
    assert con.execute("SELECT fhir_ref_id(NULL)").fetchall() == [(None,)]


def test_empty_or_missing_folder_is_refused(tmp_path):
    with pytest.raises(SourceError, match=f"{tmp_path}: no \\*.ndjson.*expected FHIR Bulk Data NDJSON"):
        FhirExport(duckdb.connect(), tmp_path)
    with pytest.raises(SourceError, match="nope: not a folder"):
        FhirExport(duckdb.connect(), tmp_path / "nope")


def test_invalid_json_names_file_and_line_without_values(tmp_path):
    (tmp_path / "Patient.000.ndjson").write_text(
        _line(WORLD["Patient"][0]) + "\n" + '{"resourceType":"Patient","id":"SECRET-42","name":[\n')
    with pytest.raises(SourceError, match=r"Patient.000.ndjson: line 2 is not valid JSON") as err:
        FhirExport(duckdb.connect(), tmp_path)
    assert "SECRET" not in str(err.value)

    (tmp_path / "Patient.000.ndjson").write_text(_line(WORLD["Patient"][0]) + '\n{"id": "SECRET-43"}\n')
    with pytest.raises(SourceError, match=r"Patient.000.ndjson: line 2 has no resourceType") as err:
        FhirExport(duckdb.connect(), tmp_path)
    assert "SECRET" not in str(err.value)

    (tmp_path / "Patient.000.ndjson").unlink()
    broken = _bundle([WORLD["Patient"][0]]).replace('"family": "Old"', '"family": SECRET-44')
    line = next(i for i, text in enumerate(broken.splitlines(), 1) if "SECRET" in text)
    (tmp_path / "patient_p1.json").write_text(broken)
    with pytest.raises(SourceError, match=rf"patient_p1.json: line {line} is not valid JSON") as err:
        FhirExport(duckdb.connect(), tmp_path)
    assert "SECRET" not in str(err.value)


def test_no_patient_is_refused(tmp_path):
    (tmp_path / "Encounter.000.ndjson").write_text(_line(WORLD["Encounter"][0]) + "\n")
    (tmp_path / "log.ndjson").write_text('{"eventId": "kickoff"}\n')
    with pytest.raises(SourceError, match=rf"{tmp_path}: no Patient resources in \*.ndjson / \*.json; "
                                          "a FHIR export needs Patient"):
        FhirExport(duckdb.connect(), tmp_path)


def _sample_lines(con: duckdb.DuckDBPyConnection, resource_type: str) -> int:
    return con.execute(f"SELECT count(*) FROM read_ndjson_objects('{SAMPLE / resource_type}.000.ndjson')"
                       ).fetchall()[0][0]


def test_real_bulk_sample():
    if not SAMPLE.is_dir():
        pytest.skip("../shared/data/fhir_bulk_sample not present: the real FHIR bulk export sample is not "
                    "in this checkout")
    con = duckdb.connect()
    export = FhirExport(con, SAMPLE)
    patients = con.execute(export.select("patients")).fetchdf()
    assert len(patients) == 13 and patients["patient_id"].is_unique
    assert patients["full_name"].notna().all() and patients["registered_at"].notna().all()
    encounters = {r[0] for r in con.execute(
        f"SELECT json_extract_string(json, '$.id') FROM read_ndjson_objects('{SAMPLE / 'Encounter.000.ndjson'}')"
    ).fetchall()}
    orders = con.execute(export.select("orders")).fetchdf()
    assert set(orders["order_id"]) <= encounters
    assert not orders.duplicated(["order_id", "line_no"]).any()
    assert set(orders["channel"]) <= {"clinic", "online", "phone"}
    products = con.execute(export.select("products")).fetchdf()
    assert products["product_id"].is_unique
    assert products["product_id"].str.match(r"^(med|proc|imm):.+").all()
    assert set(orders["product_id"]) == set(products["product_id"])
    # every item line is represented: no quantities in this sample, so each line counts 1
    items = sum(_sample_lines(con, t) for t in ("MedicationRequest", "Procedure", "Immunization"))
    assert orders["quantity"].astype(int).sum() == items
    assert len(con.execute(export.select("diagnoses")).fetchall()) == _sample_lines(con, "Condition")
    assert export.notes["ignored_files"].startswith("log.ndjson")
    assert export.notes["ignored_resource_types"] == ("AllergyIntolerance, Device, DocumentReference, Location, "
                                                      "Practitioner, PractitionerRole")
    assert "Coverage (" in export.notes["missing_optional_inputs"]
