"""The demo world written as Synthea, FHIR and OMOP exports: real headers, and the world round-trips.

Each layout is generated once at 200 patients; the canonical world of the same seed is
generated beside it (the generator is deterministic), and the facts the adapters rely on
(patients, order lines, baskets, prices, payers, channels) are checked with DuckDB
directly on the written files.
"""
from __future__ import annotations

import gzip
import json
import re
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from medmkt_assets.demo_data import generate, generate_in_layout, write_layout
from medmkt_assets.demo_data.__main__ import layout_for, main
from medmkt_assets.demo_data.formats import LAYOUTS, SIDE_TABLES

PATIENTS, SEED = 200, 7
CENT = Decimal("0.01")


@pytest.fixture(scope="module")
def canonical(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("canonical")
    generate(out, patients=PATIENTS, seed=SEED, with_bad_rows=False)
    return out


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    """layout → (folder, manifest), each written on first use."""
    cache: dict[str, tuple[Path, dict]] = {}

    def get(layout: str) -> tuple[Path, dict]:
        if layout not in cache:
            out = tmp_path_factory.mktemp(layout)
            cache[layout] = out, generate_in_layout(out, layout, patients=PATIENTS, seed=SEED)
        return cache[layout]
    return get


def q(sql: str) -> list[tuple]:
    with duckdb.connect() as con:
        return con.execute(sql).fetchall()


def one(sql: str):
    return q(sql)[0][0]


def csv(path: Path, delim: str = ",") -> str:
    return f"read_csv('{path}', header=true, all_varchar=true, delim='{delim}')"


def header(path: Path, delim: str = ",") -> tuple[str, ...]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as f:
        return tuple(f.readline().rstrip("\n").split(delim))


def lines_sql(canonical: Path) -> str:
    """The canonical order lines with their product's kind and category."""
    return f"""(SELECT o.order_id, o.product_id, trim(o.patient_id) AS patient_id, o.channel,
                       CAST(o.quantity AS INTEGER) AS quantity, CAST(o.unit_price AS DECIMAL(18, 2)) AS unit_price,
                       p.kind, p.category
                FROM {csv(canonical / 'orders.csv')} o JOIN {csv(canonical / 'products.csv')} p USING (product_id))"""


def canonical_facts(canonical: Path) -> dict:
    lines = lines_sql(canonical)
    patients = csv(canonical / "patients.csv")
    return {
        "patients": {r[0] for r in q(f"SELECT trim(patient_id) FROM {patients}")},
        "dead": one(f"SELECT count(*) FROM {patients} WHERE death_date IS NOT NULL"),
        "lines": one(f"SELECT count(*) FROM {lines}"),
        "orders": one(f"SELECT count(DISTINCT order_id) FROM {lines}"),
        "baskets": set(q(f"SELECT order_id, product_id FROM {lines}")),
        "revenue": one(f"SELECT sum(unit_price * quantity) FROM {lines}"),
        "device_revenue": one(f"SELECT sum(unit_price * quantity) FROM {lines} "
                              "WHERE kind = 'device' AND category <> 'vaccination'"),
        "quantity": one(f"SELECT sum(quantity) FROM {lines}"),
        "insurance": dict(q(f"SELECT insurance_type, count(*) FROM {patients} GROUP BY 1")),
        "channels": dict(q(f"SELECT channel, count(DISTINCT order_id) FROM {lines} GROUP BY 1")),
        "diagnoses": one(f"SELECT count(*) FROM {csv(canonical / 'diagnoses.csv')}"),
    }


@pytest.fixture(scope="module")
def facts(canonical) -> dict:
    return canonical_facts(canonical)


# -- every layout ---------------------------------------------------------------------------

@pytest.mark.parametrize("layout", LAYOUTS)
def test_truth_and_side_tables_sit_beside_the_export(exports, canonical, layout):
    out, manifest = exports(layout)
    assert manifest["layout"] == layout and manifest["patients"] == PATIENTS
    for name in ("bundles.json", "campaigns.json", "patient_segments.csv", "manifest.json"):
        assert (out / "_truth" / name).is_file(), name
    assert json.loads((out / "_truth" / "bad_rows.json").read_text()) == {}
    for table in SIDE_TABLES:
        rows = one(f"SELECT count(*) FROM {csv(out / f'{table}.csv')}")
        assert rows == manifest["files"][f"{table}.csv"]
        assert rows == one(f"SELECT count(*) FROM {csv(canonical / f'{table}.csv')}")
        assert header(out / f"{table}.csv") == header(canonical / f"{table}.csv")
    for name in manifest["files"]:
        assert name.startswith("<") or (out / name).is_file(), name


def test_unknown_layout_and_unclean_worlds_are_refused(tmp_path, canonical):
    with pytest.raises(ValueError, match="unknown layout"):
        write_layout(canonical, tmp_path, "synthea-4")
    with pytest.raises(ValueError, match="clean CSV world"):
        generate_in_layout(tmp_path, "omop-5.4", patients=10, seed=1, with_bad_rows=True)


def test_cli_picks_the_layout_from_format_and_flavour(tmp_path, capsys):
    assert layout_for("synthea", None) == "synthea-3" and layout_for("synthea", "2") == "synthea-2"
    assert layout_for("fhir", None) == "fhir-bulk" and layout_for("fhir", "bundles") == "fhir-bundles"
    assert layout_for("omop", None) == "omop-5.4" and layout_for("omop", "5.3") == "omop-5.3"
    assert layout_for("csv", None) is None
    with pytest.raises(ValueError):
        layout_for("omop", "6.0")
    main(["--patients", "30", "--format", "omop", "--flavour", "5.3", "--out", str(tmp_path)])
    printed = json.loads(capsys.readouterr().out)
    assert printed["layout"] == "omop-5.3" and printed["files"]["person.csv"] == 30
    assert (tmp_path / "concept.csv").is_file() and (tmp_path / "events.csv").is_file()


# -- Synthea ----------------------------------------------------------------------------------

SYNTHEA_2_PATIENTS = ("Id", "BIRTHDATE", "DEATHDATE", "SSN", "DRIVERS", "PASSPORT", "PREFIX", "FIRST", "LAST",
                      "SUFFIX", "MAIDEN", "MARITAL", "RACE", "ETHNICITY", "GENDER", "BIRTHPLACE", "ADDRESS", "CITY",
                      "STATE", "COUNTY", "ZIP", "LAT", "LON", "HEALTHCARE_EXPENSES", "HEALTHCARE_COVERAGE")
SYNTHEA_HEADERS = {
    "2": {
        "patients.csv": SYNTHEA_2_PATIENTS,
        "payer_transitions.csv": ("PATIENT", "MEMBERID", "START_YEAR", "END_YEAR", "PAYER", "SECONDARY_PAYER",
                                  "OWNERSHIP", "OWNERNAME"),
        "procedures.csv": ("DATE", "PATIENT", "ENCOUNTER", "CODE", "DESCRIPTION", "BASE_COST", "REASONCODE",
                           "REASONDESCRIPTION"),
        "conditions.csv": ("START", "STOP", "PATIENT", "ENCOUNTER", "CODE", "DESCRIPTION"),
    },
    "3": {
        "patients.csv": (*SYNTHEA_2_PATIENTS[:20], "FIPS", *SYNTHEA_2_PATIENTS[20:], "INCOME"),
        "payer_transitions.csv": ("PATIENT", "MEMBERID", "START_DATE", "END_DATE", "PAYER", "SECONDARY_PAYER",
                                  "PLAN_OWNERSHIP", "OWNER_NAME"),
        "procedures.csv": ("START", "STOP", "PATIENT", "ENCOUNTER", "SYSTEM", "CODE", "DESCRIPTION", "BASE_COST",
                           "REASONCODE", "REASONDESCRIPTION"),
        "conditions.csv": ("START", "STOP", "PATIENT", "ENCOUNTER", "SYSTEM", "CODE", "DESCRIPTION"),
    },
}
SYNTHEA_BOTH = {
    "encounters.csv": ("Id", "START", "STOP", "PATIENT", "ORGANIZATION", "PROVIDER", "PAYER", "ENCOUNTERCLASS", "CODE",
                       "DESCRIPTION", "BASE_ENCOUNTER_COST", "TOTAL_CLAIM_COST", "PAYER_COVERAGE", "REASONCODE",
                       "REASONDESCRIPTION"),
    "medications.csv": ("START", "STOP", "PATIENT", "PAYER", "ENCOUNTER", "CODE", "DESCRIPTION", "BASE_COST",
                        "PAYER_COVERAGE", "DISPENSES", "TOTALCOST", "REASONCODE", "REASONDESCRIPTION"),
    "immunizations.csv": ("DATE", "PATIENT", "ENCOUNTER", "CODE", "DESCRIPTION", "BASE_COST"),
    "devices.csv": ("START", "STOP", "PATIENT", "ENCOUNTER", "CODE", "DESCRIPTION", "UDI"),
    "organizations.csv": ("Id", "NAME", "ADDRESS", "CITY", "STATE", "ZIP", "LAT", "LON", "PHONE", "REVENUE",
                          "UTILIZATION"),
}


@pytest.mark.parametrize("version", ["2", "3"])
def test_synthea_files_carry_the_headers_of_their_version(exports, version):
    out, _ = exports(f"synthea-{version}")
    for name, columns in {**SYNTHEA_HEADERS[version], **SYNTHEA_BOTH}.items():
        assert header(out / name) == columns, name
    payers = header(out / "payers.csv")
    assert payers[:2] == ("Id", "NAME") and "AMOUNT_COVERED" in payers
    assert ("OWNERSHIP" in payers) == (version == "3")
    assert one(f"SELECT count(*) FROM {csv(out / 'payers.csv')}") == 3
    if version == "2":  # the plan holder, never the payer type
        owners = {r[0] for r in q(f"SELECT DISTINCT OWNERSHIP FROM {csv(out / 'payer_transitions.csv')}")}
        assert owners <= {"Self", "Guardian", "Spouse"}
    else:
        start = one(f"SELECT min(START_DATE) FROM {csv(out / 'payer_transitions.csv')}")
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", start)


@pytest.mark.parametrize("version", ["2", "3"])
def test_synthea_round_trips_patients_baskets_quantities_and_prices(exports, facts, version):
    out, _ = exports(f"synthea-{version}")
    f = {name: csv(out / f"{name}.csv") for name in ("patients", "encounters", "medications", "procedures",
                                                      "immunizations", "devices", "payers", "payer_transitions",
                                                      "conditions")}
    assert {r[0] for r in q(f"SELECT Id FROM {f['patients']}")} == facts["patients"]
    assert one(f"SELECT count(DEATHDATE) FROM {f['patients']}") == facts["dead"]
    assert one(f"SELECT count(*) FROM {f['conditions']}") == facts["diagnoses"]
    items = " UNION ALL ".join(  # Synthea devices carry no cost
        f"SELECT ENCOUNTER, CODE, {qty} AS quantity, CAST({price} AS DECIMAL(18, 2)) AS price FROM {f[name]}"
        for name, qty, price in (("medications", "CAST(DISPENSES AS INTEGER)", "BASE_COST"),
                                 ("procedures", "1", "BASE_COST"), ("immunizations", "1", "BASE_COST"),
                                 ("devices", "1", "NULL")))
    # one row per line for medications (DISPENSES = quantity), one row per unit for the rest
    assert set(q(f"SELECT DISTINCT ENCOUNTER, CODE FROM ({items})")) == facts["baskets"]
    assert one(f"SELECT sum(quantity) FROM ({items})") == facts["quantity"]
    priced = one(f"SELECT sum(quantity * price) FROM ({items}) WHERE price IS NOT NULL")
    assert priced == facts["revenue"] - facts["device_revenue"]
    assert one(f"SELECT sum(CAST(TOTALCOST AS DECIMAL(18, 2)) - CAST(BASE_COST AS DECIMAL(18, 2)) "
               f"* CAST(DISPENSES AS INTEGER)) FROM {f['medications']}") == 0
    assert one(f"SELECT count(*) FROM {f['encounters']}") == facts["orders"]
    assert one(f"SELECT sum(CAST(TOTAL_CLAIM_COST AS DECIMAL(18, 2))) FROM {f['encounters']}") == facts["revenue"]
    classes = dict(q(f"SELECT ENCOUNTERCLASS, count(*) FROM {f['encounters']} GROUP BY 1"))
    channels = facts["channels"]
    assert classes == {k: v for k, v in {
        "ambulatory": channels.get("store", 0), "outpatient": channels.get("clinic", 0),
        "virtual": channels.get("online", 0) + channels.get("app", 0), "home": channels.get("phone", 0)}.items() if v}
    payers = dict(q(f"SELECT p.NAME, count(*) FROM {f['payer_transitions']} t JOIN {f['payers']} p ON p.Id = t.PAYER "
                    "GROUP BY 1"))
    insurance = facts["insurance"]
    assert payers == {"Medicare": insurance["public"], "Aetna": insurance["commercial"],
                      "NO_INSURANCE": insurance["self_pay"]}


# -- FHIR -------------------------------------------------------------------------------------

FHIR_TYPES = ("Patient", "Coverage", "Condition", "Encounter", "MedicationRequest", "MedicationDispense",
              "Procedure", "Immunization", "Claim")
ITEM_TYPES = ("MedicationRequest", "MedicationDispense", "Procedure", "Immunization")


def references(value) -> list[str]:
    """Every `reference` string anywhere in a resource."""
    if isinstance(value, dict):
        return [v for k, v in value.items() if k == "reference"] + [r for v in value.values() for r in references(v)]
    if isinstance(value, list):
        return [r for v in value for r in references(v)]
    return []


def test_fhir_bulk_writes_one_ndjson_per_type_with_relative_references(exports):
    out, _ = exports("fhir-bulk")
    names = {p.name for p in out.iterdir() if p.suffix in (".ndjson", ".gz")}
    assert names == {f"{t}.000.ndjson" + (".gz" if t in ("Patient", "Condition") else "")
                     for t in (*FHIR_TYPES, "Organization")}
    for name in names:
        opener = gzip.open if name.endswith(".gz") else open
        with opener(out / name, "rt", encoding="utf-8") as lines:
            for line in lines:
                resource = json.loads(line)
                assert resource["resourceType"] == name.split(".")[0] and resource["id"]
                assert all(re.fullmatch(r"(Patient|Encounter|Organization|Coverage)/[A-Za-z0-9.-]+", r)
                           for r in references(resource)), resource
                assert "null" not in line and "[]" not in line


def fhir_items_and_claims(resources: str) -> dict[str, str]:
    """SQL over a table of resource JSON (`r`): the order-line resources and the Claim items."""
    return {
        "items": f"(SELECT * FROM {resources} WHERE r->>'resourceType' IN {ITEM_TYPES})",
        "claim_items": f"""(SELECT r->>'id' AS claim, unnest(json_extract(r, '$.item[*]')) AS i
                            FROM {resources} WHERE r->>'resourceType' = 'Claim')""",
    }


def check_fhir_round_trip(resources: str, facts: dict, encounter_prefix: str) -> None:
    by_type = dict(q(f"SELECT r->>'resourceType', count(*) FROM {resources} GROUP BY 1"))
    sql = fhir_items_and_claims(resources)
    assert {r[0] for r in q(f"SELECT r->>'id' FROM {resources} WHERE r->>'resourceType' = 'Patient'")} \
        == facts["patients"]
    assert one(f"SELECT count(r->>'deceasedDateTime') FROM {resources}") == facts["dead"]
    assert by_type["Condition"] == facts["diagnoses"]
    assert by_type["Encounter"] == by_type["Claim"] == facts["orders"]
    assert sum(by_type[t] for t in ITEM_TYPES) == one(f"SELECT count(*) FROM {sql['items']}") == facts["lines"]
    drugs = by_type["MedicationRequest"] + by_type["MedicationDispense"]
    assert by_type["MedicationDispense"] == drugs // 4
    claims = sql["claim_items"]
    assert one(f"SELECT count(*) FROM {claims}") == facts["lines"]
    net = one(f"SELECT sum(CAST(i->>'$.net.value' AS DECIMAL(18, 2))) FROM {claims}")
    unit = one(f"SELECT sum(CAST(i->>'$.unitPrice.value' AS DECIMAL(18, 2)) * CAST(i->>'$.quantity.value' AS INTEGER))"
               f" FROM {claims}")
    assert net == unit == facts["revenue"]
    baskets = q(f"SELECT replace(i->>'$.encounter[0].reference', '{encounter_prefix}', ''), "
                f"i->>'$.productOrService.coding[0].code' FROM {claims}")
    assert set(baskets) == facts["baskets"]
    classes = dict(q(f"SELECT r->>'$.class.code', count(*) FROM {resources} WHERE r->>'resourceType' = 'Encounter' "
                     "GROUP BY 1"))
    channels = facts["channels"]
    assert classes.get("AMB", 0) == channels.get("store", 0) + channels.get("clinic", 0)
    assert classes.get("VR", 0) == channels.get("online", 0) + channels.get("app", 0)
    assert classes.get("HH", 0) == channels.get("phone", 0)
    payors = dict(q(f"SELECT r->>'$.payor[0].display', count(*) FROM {resources} "
                    "WHERE r->>'resourceType' = 'Coverage' GROUP BY 1"))
    assert payors == {"Medicare": facts["insurance"]["public"], "Aetna": facts["insurance"]["commercial"],
                      "NO_INSURANCE": facts["insurance"]["self_pay"]}


def test_fhir_bulk_round_trips_the_world(exports, facts):
    out, _ = exports("fhir-bulk")
    resources = f"(SELECT json AS r FROM read_ndjson_objects('{out}/*.000.ndjson*') " \
                "WHERE json->>'resourceType' <> 'Organization')"
    check_fhir_round_trip(resources, facts, "Encounter/")
    assert one(f"SELECT count(*) FROM read_ndjson_objects('{out}/Organization.000.ndjson')") \
        == one(f"SELECT count(DISTINCT r->>'$.serviceProvider.reference') FROM {resources}")


def test_fhir_bundles_are_transactions_whose_references_resolve_inside(exports):
    out, _ = exports("fhir-bundles")
    [hospital] = list(out.glob("hospitalInformation*.json"))
    organizations = json.loads(hospital.read_text())
    assert organizations["type"] == "transaction"
    facilities = {e["resource"]["identifier"][0]["value"] for e in organizations["entry"]}
    assert all(e["request"]["ifNoneExist"].endswith("|" + e["resource"]["id"]) for e in organizations["entry"])
    bundles = sorted(p for p in out.glob("*.json") if p != hospital)
    assert len(bundles) == PATIENTS
    for path in bundles:
        bundle = json.loads(path.read_text(encoding="utf-8"))
        assert bundle["resourceType"] == "Bundle" and bundle["type"] == "transaction"
        full_urls = {e["fullUrl"] for e in bundle["entry"]}
        for entry in bundle["entry"]:
            resource = entry["resource"]
            assert entry["fullUrl"] == f"urn:uuid:{resource['id']}"
            assert entry["request"] == {"method": "POST", "url": resource["resourceType"]}
            for ref in references(resource):
                if ref.startswith("Organization?identifier="):
                    assert ref.split("|", 1)[1] in facilities
                else:
                    assert ref.startswith("urn:uuid:") and ref in full_urls, ref
        assert path.name == bundle["entry"][0]["resource"]["id"] + ".json"


def test_fhir_bundles_round_trip_the_world(exports, facts):
    out, _ = exports("fhir-bundles")
    resources = f"""(SELECT json_extract(e, '$.resource') AS r FROM (
                        SELECT unnest(json_extract(json, '$.entry[*]')) AS e
                        FROM read_json_objects('{out}/MRN*.json')))"""
    check_fhir_round_trip(resources, facts, "urn:uuid:")


# -- OMOP -------------------------------------------------------------------------------------

OMOP_TABLES = ("person", "observation_period", "visit_occurrence", "drug_exposure", "procedure_occurrence",
               "device_exposure", "condition_occurrence", "death", "payer_plan_period", "location", "care_site",
               "cost", "concept", "cdm_source")


def omop_file(out: Path, version: str, table: str) -> Path:
    return out / f"{table.upper() if version == '5.4' else table}.csv"


def omop(out: Path, version: str, table: str) -> str:
    delim = "\t" if version == "5.3" and table == "concept" else ","
    return csv(omop_file(out, version, table), delim)


@pytest.mark.parametrize("version", ["5.3", "5.4"])
def test_omop_files_follow_the_cdm_version(exports, version):
    out, _ = exports(f"omop-{version}")
    cdm = {p.name for p in out.iterdir() if p.suffix == ".csv"} - {f"{t}.csv" for t in SIDE_TABLES}
    assert cdm == {omop_file(out, version, t).name for t in OMOP_TABLES}
    visit = header(omop_file(out, version, "visit_occurrence"))
    procedure = header(omop_file(out, version, "procedure_occurrence"))
    device = header(omop_file(out, version, "device_exposure"))
    if version == "5.4":
        assert visit[12:16] == ("admitted_from_concept_id", "admitted_from_source_value",
                                "discharged_to_concept_id", "discharged_to_source_value")
        assert "procedure_end_date" in procedure and "production_id" in device and "unit_concept_id" in device
        assert header(omop_file(out, version, "location"))[-4:] == ("country_concept_id", "country_source_value",
                                                                     "latitude", "longitude")
        assert header(omop_file(out, version, "concept"))[0] == "concept_id"
    else:
        assert visit[12:16] == ("admitting_source_concept_id", "admitting_source_value",
                                "discharge_to_concept_id", "discharge_to_source_value")
        assert "procedure_end_date" not in procedure and "production_id" not in device
        assert header(omop_file(out, version, "location"))[-1] == "location_source_value"
        assert header(omop_file(out, version, "concept"), "\t")[:3] == ("concept_id", "concept_name", "domain_id")
    assert header(omop_file(out, version, "person"))[:3] == ("person_id", "gender_concept_id", "year_of_birth")
    assert header(omop_file(out, version, "cost"))[:6] == ("cost_id", "cost_event_id", "cost_domain_id",
                                                           "cost_type_concept_id", "currency_concept_id",
                                                           "total_charge")
    assert one(f"SELECT cdm_version FROM {omop(out, version, 'cdm_source')}") == \
        {"5.3": "v5.3.1", "5.4": "v5.4"}[version]


@pytest.mark.parametrize("version", ["5.3", "5.4"])
def test_omop_round_trips_the_world(exports, facts, version):
    out, _ = exports(f"omop-{version}")
    t = {table: omop(out, version, table) for table in OMOP_TABLES}
    assert {r[0] for r in q(f"SELECT person_source_value FROM {t['person']}")} == facts["patients"]
    assert one(f"SELECT count(*) FROM {t['death']}") == facts["dead"]
    assert one(f"SELECT count(*) FROM {t['condition_occurrence']}") == facts["diagnoses"]
    assert one(f"SELECT count(*) FROM {t['visit_occurrence']}") == facts["orders"]
    exposures = " UNION ALL ".join(
        f"SELECT '{domain}' AS domain, {prefix}_id AS event_id, {concept} AS concept_id, visit_occurrence_id, "
        f"CAST(quantity AS INTEGER) AS quantity FROM {t[table]}"
        for domain, table, prefix, concept in (
            ("Drug", "drug_exposure", "drug_exposure", "drug_concept_id"),
            ("Procedure", "procedure_occurrence", "procedure_occurrence", "procedure_concept_id"),
            ("Device", "device_exposure", "device_exposure", "device_concept_id")))
    assert one(f"SELECT count(*) FROM ({exposures})") == facts["lines"]
    assert one(f"SELECT sum(quantity) FROM ({exposures})") == facts["quantity"]
    baskets = q(f"SELECT v.visit_source_value, c.concept_code FROM ({exposures}) x "
                f"JOIN {t['visit_occurrence']} v USING (visit_occurrence_id) JOIN {t['concept']} c USING (concept_id)")
    assert len(baskets) == facts["lines"] and set(baskets) == facts["baskets"]
    costs = q(f"SELECT count(*), sum(CAST(total_charge AS DECIMAL(18, 2))), count(x.event_id) FROM {t['cost']} c "
              "LEFT JOIN ({}) x ON x.domain = c.cost_domain_id AND x.event_id = c.cost_event_id".format(exposures))
    assert costs == [(facts["lines"], facts["revenue"], facts["lines"])]
    vaccines = q(f"SELECT DISTINCT c.vocabulary_id, c.domain_id FROM {t['drug_exposure']} d "
                 f"JOIN {t['concept']} c ON c.concept_id = d.drug_concept_id")
    assert set(vaccines) == {("CVX", "Drug"), ("RxNorm", "Drug")}
    conditions = q(f"SELECT DISTINCT c.vocabulary_id FROM {t['condition_occurrence']} o "
                   f"JOIN {t['concept']} c ON c.concept_id = o.condition_concept_id")
    assert conditions == [("ICD10CM",)]
    visits = dict(q(f"SELECT visit_concept_id, count(*) FROM {t['visit_occurrence']} GROUP BY 1"))
    channels = facts["channels"]
    assert visits.get("9202", 0) == channels.get("store", 0) + channels.get("clinic", 0)
    assert visits.get("5083", 0) == channels.get("online", 0) + channels.get("app", 0)
    assert visits.get("581476", 0) == channels.get("phone", 0)
    payers = dict(q(f"SELECT payer_source_value, count(*) FROM {t['payer_plan_period']} GROUP BY 1"))
    assert payers == {"Medicare": facts["insurance"]["public"], "Aetna": facts["insurance"]["commercial"],
                      "No insurance": facts["insurance"]["self_pay"]}
    genders = set(q(f"SELECT DISTINCT gender_concept_id FROM {t['person']}"))
    assert genders <= {("8507",), ("8532",), ("0",)}
    missing = q(f"SELECT DISTINCT concept_id FROM ({exposures}) WHERE concept_id NOT IN "
                f"(SELECT concept_id FROM {t['concept']})")
    assert missing == []
