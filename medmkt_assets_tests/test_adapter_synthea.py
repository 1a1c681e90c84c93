"""Synthea CSV layouts as really exported (2.x, 3.0, 3.1+, trimmed exports): known answers, no ../shared."""
from __future__ import annotations

import textwrap
from pathlib import Path

import duckdb
import pytest

from medmkt_assets.lib.sources.adapters.synthea import SyntheaExport
from medmkt_assets.lib.sources.files import SourceError

PATIENTS_2X = """\
Id,BIRTHDATE,DEATHDATE,SSN,DRIVERS,PASSPORT,PREFIX,FIRST,LAST,SUFFIX,MAIDEN,MARITAL,RACE,ETHNICITY,GENDER,BIRTHPLACE,ADDRESS,CITY,STATE,COUNTY,ZIP,LAT,LON,HEALTHCARE_EXPENSES,HEALTHCARE_COVERAGE
p1,1950-01-02,,999-1,,,Mr.,Ann1,Lee1,,,M,white,nonhispanic,F,Boston,1 Main St,Boston,Massachusetts,Suffolk,02101,1,1,10,5
p2,1990-05-06,2020-01-01,999-2,,,,Bob2,Kim2,,,S,white,nonhispanic,M,Boston,2 Main St,Quincy,Massachusetts,Norfolk,02169,1,1,10,5
p3,2001-07-08,,999-3,,,,Cy3,Ng3,,,,asian,nonhispanic,M,Boston,3 Main St,Salem,Massachusetts,Essex,,1,1,10,5
"""
# 3.x adds FIPS after COUNTY and INCOME at the end
PATIENTS_3X = PATIENTS_2X.replace("COUNTY,ZIP", "COUNTY,FIPS,ZIP").replace("HEALTHCARE_COVERAGE", "HEALTHCARE_COVERAGE,INCOME")
PATIENTS_3X = "\n".join([PATIENTS_3X.splitlines()[0]] + [
    ",".join(cells[:20] + ["25025"] + cells[20:] + ["50000"]) for cells in
    (line.split(",") for line in PATIENTS_2X.splitlines()[1:])]) + "\n"
ENCOUNTERS = """\
Id,START,STOP,PATIENT,ORGANIZATION,PROVIDER,PAYER,ENCOUNTERCLASS,CODE,DESCRIPTION,BASE_ENCOUNTER_COST,TOTAL_CLAIM_COST,PAYER_COVERAGE,REASONCODE,REASONDESCRIPTION
e1,2019-03-01T10:00:00Z,2019-03-01T10:30:00Z,p1,org1,prov1,pay-medicare,ambulatory,1,Visit,100,100,0,,
e2,2019-04-01T10:00:00Z,2019-04-01T10:30:00Z,p1,org1,prov1,pay-medicare,virtual,1,Visit,100,100,0,,
e3,2018-05-01T10:00:00Z,2018-05-01T10:30:00Z,p2,org2,prov2,pay-aetna,home,1,Visit,100,100,0,,
"""
MEDICATIONS = """\
START,STOP,PATIENT,PAYER,ENCOUNTER,CODE,DESCRIPTION,BASE_COST,PAYER_COVERAGE,DISPENSES,TOTALCOST,REASONCODE,REASONDESCRIPTION
2019-03-01T10:00:00Z,,p1,pay-medicare,e1,860975,Metformin 500 MG Oral Tablet,10.00,0,3,30,,
2019-03-01T10:00:00Z,,p1,pay-medicare,e1,860975,Metformin 500 MG Oral Tablet,12.00,0,2,24,,
2019-04-01T10:00:00Z,,p1,pay-medicare,e2,314076,lisinopril 10 MG Oral Tablet,5.00,0,1,5,,
"""
PROCEDURES_2X = """\
DATE,PATIENT,ENCOUNTER,CODE,DESCRIPTION,BASE_COST,REASONCODE,REASONDESCRIPTION
2018-05-01,p2,e3,710824005,Assessment of health and social care needs (procedure),431.40,,
"""
PROCEDURES_3X = """\
START,STOP,PATIENT,ENCOUNTER,SYSTEM,CODE,DESCRIPTION,BASE_COST,REASONCODE,REASONDESCRIPTION
2018-05-01T10:00:00Z,2018-05-01T10:15:00Z,p2,e3,http://snomed.info/sct,710824005,Assessment of health and social care needs (procedure),431.40,,
"""
IMMUNIZATIONS = """\
DATE,PATIENT,ENCOUNTER,CODE,DESCRIPTION,BASE_COST
2019-03-01T10:00:00Z,p1,e1,140,Influenza  seasonal  injectable  preservative free,140.52
"""
CONDITIONS = """\
START,STOP,PATIENT,ENCOUNTER,CODE,DESCRIPTION
2010-01-01,,p1,e1,44054006,Diabetes
"""
PAYERS_WITH_OWNERSHIP = """\
Id,NAME,OWNERSHIP,ADDRESS,CITY,STATE_HEADQUARTERED,ZIP,PHONE,AMOUNT_COVERED
pay-medicare,Medicare,GOVERNMENT,,,,,,0
pay-aetna,Aetna,PRIVATE,,,,,,0
pay-none,NO_INSURANCE,NO_INSURANCE,,,,,,0
"""
PAYERS_WITHOUT_OWNERSHIP = """\
Id,NAME,ADDRESS,CITY,STATE_HEADQUARTERED,ZIP,PHONE,AMOUNT_COVERED,AMOUNT_UNCOVERED,REVENUE
pay-medicare,Medicare,7500 Security Blvd,Baltimore,MD,21244,1-800-633-4227,0,0,0
pay-aetna,Aetna,151 Farmington Ave,Hartford,CT,06156,1-800-872-3862,0,0,0
pay-none,NO_INSURANCE,,,,,,0,0,0
"""
# 2.x: START_YEAR/END_YEAR, and OWNERSHIP here means who holds the plan (Self, Guardian)
TRANSITIONS_2X = """\
PATIENT,MEMBERID,START_YEAR,END_YEAR,PAYER,SECONDARY_PAYER,OWNERSHIP,OWNERNAME
p1,,2001,2015,pay-aetna,,Self,Ann1 Lee1
p1,,2015,2020,pay-medicare,,Self,Ann1 Lee1
p2,,1990,2008,pay-aetna,,Guardian,Someone
p2,,2008,2020,pay-none,,,
"""
TRANSITIONS_3X = """\
PATIENT,MEMBERID,START_DATE,END_DATE,PAYER,SECONDARY_PAYER,PLAN_OWNERSHIP,OWNER_NAME
p1,,2001-01-01T00:00:00Z,2015-01-01T00:00:00Z,pay-aetna,,Self,Ann1 Lee1
p1,,2015-01-01T00:00:00Z,2020-01-01T00:00:00Z,pay-medicare,,Self,Ann1 Lee1
p2,,1990-01-01T00:00:00Z,2008-01-01T00:00:00Z,pay-aetna,,Guardian,Someone
p2,,2008-01-01T00:00:00Z,2020-01-01T00:00:00Z,pay-none,,,
"""
COMMON = {"encounters": ENCOUNTERS, "medications": MEDICATIONS, "immunizations": IMMUNIZATIONS,
          "conditions": CONDITIONS}
LAYOUTS = {
    "2.x": {**COMMON, "patients": PATIENTS_2X, "procedures": PROCEDURES_2X, "payers": PAYERS_WITHOUT_OWNERSHIP,
            "payer_transitions": TRANSITIONS_2X},
    "3.0": {**COMMON, "patients": PATIENTS_3X, "procedures": PROCEDURES_3X, "payers": PAYERS_WITH_OWNERSHIP,
            "payer_transitions": TRANSITIONS_3X},
    "3.1": {**COMMON, "patients": PATIENTS_3X, "procedures": PROCEDURES_3X, "payers": PAYERS_WITHOUT_OWNERSHIP,
            "payer_transitions": TRANSITIONS_3X},
}
EXPECTED_INSURANCE = {"p1": "public", "p2": "self_pay", "p3": None}


def _write(folder: Path, files: dict[str, str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, body in files.items():
        (folder / f"{name}.csv").write_text(textwrap.dedent(body))
    return folder


def _rows(con, export: SyntheaExport, table: str) -> list[dict]:
    frame = con.execute(export.select(table)).fetchdf()
    return frame.drop(columns=["_source_file"]).to_dict("records")


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_every_layout_gives_the_same_canonical_tables(tmp_path, layout):
    con = duckdb.connect()
    export = SyntheaExport(con, _write(tmp_path, LAYOUTS[layout]))
    assert export.notes["layout"] == f"Synthea {layout[0]}.x"
    assert export.notes["missing_optional_inputs"] == "devices.csv (absent)"
    patients = {r["patient_id"]: r for r in _rows(con, export, "patients")}
    assert {k: v["insurance_type"] for k, v in patients.items()} == EXPECTED_INSURANCE
    assert patients["p1"]["full_name"] == "Ann1 Lee1" and patients["p1"]["registered_at"] == "2019-03-01"
    assert patients["p2"]["death_date"] == "2020-01-01" and patients["p3"]["postal_code"] is None
    assert [r["_source_row"] for r in _rows(con, export, "patients")] == [1, 2, 3]

    orders = sorted(_rows(con, export, "orders"), key=lambda r: (r["order_id"], r["line_no"]))
    assert [(o["order_id"], o["line_no"], o["product_id"], o["quantity"], o["unit_price"], o["channel"],
             o["facility_id"]) for o in orders] == [
        ("e1", "1", "imm:140", "1", "140.52", "clinic", "org1"),
        ("e1", "2", "med:860975", "5", "11.0", "clinic", "org1"),   # two dispensing rows, one line
        ("e2", "1", "med:314076", "1", "5.0", "online", "org1"),
        ("e3", "1", "proc:710824005", "1", "431.4", "phone", "org2"),
    ]
    products = {p["product_id"]: p for p in _rows(con, export, "products")}
    assert products["imm:140"]["category"] == "vaccination"
    assert products["med:860975"]["category"] == "diabetes_care" and products["med:860975"]["unit_price"] == "11.0"
    assert products["med:314076"]["category"] == "cardiology" and products["med:314076"]["rx_only"] == "true"
    assert _rows(con, export, "diagnoses")[0]["condition_code"] == "44054006"
    assert export.select("campaigns") is None


def test_payers_without_ownership_say_how_insurance_was_derived(tmp_path):
    export = SyntheaExport(duckdb.connect(), _write(tmp_path, LAYOUTS["3.1"]))
    assert "payers.csv has no OWNERSHIP" in export.notes["insurance_type"]
    assert "payer NAME" in export.notes["insurance_type"]


def test_without_payer_transitions_the_latest_encounter_payer_is_used(tmp_path):
    files = {k: v for k, v in LAYOUTS["3.1"].items() if k != "payer_transitions"}
    con = duckdb.connect()
    export = SyntheaExport(con, _write(tmp_path, files))
    insurance = {r["patient_id"]: r["insurance_type"] for r in _rows(con, export, "patients")}
    assert insurance == {"p1": "public", "p2": "commercial", "p3": None}
    assert "payer_transitions.csv (absent)" in export.notes["missing_optional_inputs"]


def test_only_patients_is_required_and_missing_or_empty_files_are_listed(tmp_path):
    _write(tmp_path, {"patients": PATIENTS_2X, "medications": MEDICATIONS})
    (tmp_path / "conditions.csv").write_text("")                                   # empty file
    (tmp_path / "procedures.csv").write_text(PROCEDURES_3X.splitlines()[0] + "\n")  # header only
    con = duckdb.connect()
    export = SyntheaExport(con, tmp_path)
    missing = export.notes["missing_optional_inputs"]
    for expected in ("encounters.csv (absent)", "conditions.csv (empty)", "procedures.csv (empty)",
                     "payers.csv (absent)", "immunizations.csv (absent)"):
        assert expected in missing
    assert "insurance_type left empty" in export.notes["insurance_type"]
    orders = _rows(con, export, "orders")
    # no encounters: the medication's own date and encounter id stand in, channel defaults to clinic
    assert {(o["order_id"], o["ordered_at"], o["channel"]) for o in orders} == {
        ("e1", "2019-03-01T10:00:00Z", "clinic"), ("e2", "2019-04-01T10:00:00Z", "clinic")}
    assert export.select("diagnoses") is None
    assert len(_rows(con, export, "patients")) == 3


def test_refusals_name_the_file_the_column_and_what_was_expected(tmp_path):
    with pytest.raises(SourceError, match=r"patients.csv: not found or empty; a Synthea export needs patients.csv"):
        SyntheaExport(duckdb.connect(), _write(tmp_path / "a", {"medications": MEDICATIONS}))
    with pytest.raises(SourceError, match=r"patients.csv has no column Id; a Synthea patients.csv needs Id"):
        SyntheaExport(duckdb.connect(), _write(tmp_path / "b", {"patients": "PATIENT_ID,NAME\nx,y\n"}))
    bad_meds = MEDICATIONS.replace("START,STOP", "BEGIN,STOP")
    with pytest.raises(SourceError, match=r"medications.csv has no START; expected the date each item was given"):
        SyntheaExport(duckdb.connect(), _write(tmp_path / "c", {"patients": PATIENTS_2X, "medications": bad_meds}))
    with pytest.raises(SourceError) as refused:
        SyntheaExport(duckdb.connect(), _write(tmp_path / "d", {"patients": PATIENTS_2X,
                                                                 "conditions": "START,PATIENT\n2010-01-01,p1\n"}))
    assert "conditions.csv has no column CODE" in str(refused.value) and "p1" not in str(refused.value)


def test_upper_case_file_names_are_found(tmp_path):
    _write(tmp_path, {"PATIENTS": PATIENTS_2X, "Medications": MEDICATIONS})
    con = duckdb.connect()
    export = SyntheaExport(con, tmp_path)
    assert len(_rows(con, export, "orders")) == 2


def test_header_case_does_not_matter(tmp_path):
    """Exports re-saved by other tools (or Synthea 1.x's ID) change the header case, not the meaning."""
    lowered = {name: body.split("\n", 1)[0].lower() + "\n" + body.split("\n", 1)[1]
               for name, body in LAYOUTS["3.0"].items()}
    con = duckdb.connect()
    export = SyntheaExport(con, _write(tmp_path, lowered))
    insurance = {r["patient_id"]: r["insurance_type"] for r in _rows(con, export, "patients")}
    assert insurance == EXPECTED_INSURANCE and export.notes["layout"] == "Synthea 3.x"
    assert len(_rows(con, export, "orders")) == 4
