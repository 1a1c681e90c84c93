"""The OMOP CDM adapter: known answers on a tiny CDM export in its flavours (5.4 / 5.3, file and
column name case, CSV / TSV / Parquet), missing optional tables, refusals, and the real sample."""
from __future__ import annotations

import gzip
from pathlib import Path

import duckdb
import pytest

from medmkt_assets.lib.sources.adapters.common import category_of
from medmkt_assets.lib.sources.adapters.omop import OmopExport
from medmkt_assets.lib.sources.files import SourceError
from medmkt_assets.lib.sources.schema import SOURCE_TABLES

SAMPLE = Path(__file__).resolve().parents[2] / "shared" / "data" / "omop_sample"

# A CDM 5.4 export: 3 persons (person 3 without person_source_value), an event of an
# unknown person 99, visits 9202 / 5083 / 581476 / 9203, a CVX vaccine, a drug with
# concept 0 and a source value, a procedure concept missing from CONCEPT, costs.
TABLES = {
    "person": (
        "person_id,gender_concept_id,year_of_birth,month_of_birth,day_of_birth,birth_datetime,"
        "race_concept_id,ethnicity_concept_id,location_id,person_source_value,gender_source_value",
        ["1,8507,1980,5,,,0,0,1,P-001,M",
         "2,8532,1975,,,1975-03-09 00:00:00,0,0,2,P-002,F",
         "3,0,1990,,,,0,0,,,female"]),
    "location": (
        "location_id,address_1,address_2,city,state,zip,county,location_source_value",
        ["1,1 Main St,,Springfield,MA,01101,,L1",
         "2,,,Boston,MA,02110,,L2"]),
    "observation_period": (
        "observation_period_id,person_id,observation_period_start_date,observation_period_end_date,"
        "period_type_concept_id",
        ["1,1,2015-01-01,2020-12-31,44814724",
         "2,1,2012-06-01,2014-12-31,44814724",
         "3,2,2018-02-01,2020-12-31,44814724"]),
    "payer_plan_period": (
        "payer_plan_period_id,person_id,payer_plan_period_start_date,payer_plan_period_end_date,"
        "payer_concept_id,payer_source_value,plan_source_value",
        ["1,1,2018-01-01,2020-12-31,0,Medicare,",
         "2,1,2010-01-01,2017-12-31,0,Aetna,PPO",
         "3,2,2016-01-01,2020-12-31,0,Blue Cross Individual,",
         "4,3,2017-01-01,2020-12-31,289,,"]),
    "visit_occurrence": (
        "visit_occurrence_id,person_id,visit_concept_id,visit_start_date,visit_start_datetime,visit_end_date,"
        "visit_type_concept_id,care_site_id,visit_source_value,admitted_from_concept_id",
        ["10,1,9202,2019-03-01,2019-03-01 09:30:00,2019-03-01,44818517,CS1,outpatient,0",
         "11,2,5083,2019-04-02,,2019-04-02,44818517,CS2,telehealth,0",
         "12,3,581476,2019-05-03,,2019-05-03,44818517,,home,0",
         "13,3,9203,2018-07-01,,2018-07-01,44818517,CS1,ER,0"]),
    "drug_exposure": (
        "drug_exposure_id,person_id,drug_concept_id,drug_exposure_start_date,drug_exposure_start_datetime,"
        "drug_exposure_end_date,drug_type_concept_id,quantity,visit_occurrence_id,drug_source_value",
        ["1,1,1503297,2019-03-01,,2019-03-31,38000177,60,10,860975",
         "2,1,1503297,2019-03-01,,2019-03-31,38000177,30,10,860975",
         "3,2,40213154,2019-04-02,,2019-04-02,38000177,,11,140",
         "4,3,0,2019-05-10,,2019-05-10,38000177,2,,LOCAL-ASPIRIN-81",
         "5,99,1503297,2019-06-01,,2019-06-30,38000177,10,,860975"]),
    "procedure_occurrence": (
        "procedure_occurrence_id,person_id,procedure_concept_id,procedure_date,procedure_datetime,"
        "procedure_type_concept_id,quantity,visit_occurrence_id,procedure_source_value,procedure_end_date",
        ["1,1,4163872,2019-03-01,,38000275,,10,ECG,",
         "2,3,4163872,2019-05-03,,38000275,,12,ECG,",
         "3,2,9999999,2019-04-02,,38000275,,11,XYZ,"]),
    "device_exposure": (
        "device_exposure_id,person_id,device_concept_id,device_exposure_start_date,device_exposure_start_datetime,"
        "device_type_concept_id,quantity,visit_occurrence_id,device_source_value,production_id",
        ["1,2,4217646,2019-04-02,,38000267,1,11,6012004,"]),
    "condition_occurrence": (
        "condition_occurrence_id,person_id,condition_concept_id,condition_start_date,condition_start_datetime,"
        "condition_type_concept_id,visit_occurrence_id,condition_source_value",
        ["1,1,201826,2019-03-01,,32020,10,44054006",
         "2,2,0,,2019-04-02 10:00:00,32020,11,J10.1",
         "3,3,4329847,2019-05-03,,32020,12,"]),
    "death": (
        "person_id,death_date,death_datetime,death_type_concept_id,cause_concept_id",
        ["3,2020-01-15,,32815,0"]),
    "cost": (
        "cost_id,cost_event_id,cost_domain_id,cost_type_concept_id,currency_concept_id,total_charge,total_cost,"
        "total_paid",
        ["1,1,Drug,0,44818668,30,,",
         "2,2,Drug,0,44818668,,30,",
         "3,1,Procedure,0,44818668,,,120",
         "4,3,Drug,0,44818668,25.5,,"]),
    "concept": (
        "concept_id,concept_name,domain_id,vocabulary_id,concept_class_id,standard_concept,concept_code,"
        "valid_start_date,valid_end_date,invalid_reason",
        ["1503297,metformin,Drug,RxNorm,Ingredient,S,6809,1970-01-01,2099-12-31,",
         '40213154,"influenza, seasonal, injectable, preservative free",Drug,CVX,CVX,S,140,1970-01-01,2099-12-31,',
         "4163872,Electrocardiogram,Procedure,SNOMED,Procedure,S,29303009,1970-01-01,2099-12-31,",
         "4217646,Hearing aid,Device,SNOMED,Physical Object,S,6012004,1970-01-01,2099-12-31,",
         "201826,Type 2 diabetes mellitus,Condition,SNOMED,Clinical Finding,S,44054006,1970-01-01,2099-12-31,",
         "289,Medicaid,Payer,SOPT,Payer,S,2,1970-01-01,2099-12-31,",
         # UCUM's arc second is coded '' : a lenient sniffer then takes ' for the quote character
         # and splits the quoted influenza name above at its commas (seen in the real sample)
         "9212,arc second,Unit,UCUM,Unit,S,'',1970-01-01,2099-12-31,"]),
    "cdm_source": (
        "cdm_source_name,cdm_source_abbreviation,cdm_holder,cdm_version,vocabulary_version",
        ["test,test,medmkt,v5.4.0,v5.0"]),
    "measurement": ("measurement_id,person_id,measurement_concept_id", ["1,1,3004410"]),
}

PATIENT_COLUMNS = SOURCE_TABLES["patients"].columns
EXPECTED_PATIENTS = [  # patient_id, gender, birth_date, address, city, region, postal_code, insurance_type,
    #                    registered_at, death_date
    ("P-001", "M", "1980-05-01", "1 Main St", "Springfield", "MA", "01101", "public", "2012-06-01", None),
    ("P-002", "F", "1975-03-09", None, "Boston", "MA", "02110", "commercial", "2018-02-01", None),
    ("3", "female", "1990-01-01", None, None, None, None, "public", "2018-07-01", "2020-01-15"),
]
EXPECTED_PRODUCTS = [  # product_id, name, category, kind, unit_price, rx_only, description, file, row
    ("device:4217646", "Hearing aid", "general_devices", "device", None, "false",
     "Hearing aid (Physical Object, Device)", "device_exposure", 1),
    ("drug:1503297", "metformin", "diabetes_care", "drug", "0.75", "true", "metformin (Ingredient, Drug)",
     "drug_exposure", 1),
    ("drug:40213154", "influenza, seasonal, injectable, preservative free", "vaccination", "drug", "25.5", "true",
     "influenza, seasonal, injectable, preservative free (CVX, Drug)", "drug_exposure", 3),
    ("drug:src:LOCAL-ASPIRIN-81", "LOCAL-ASPIRIN-81", "cardiology", "drug", None, "true", "LOCAL-ASPIRIN-81",
     "drug_exposure", 4),
    ("proc:4163872", "Electrocardiogram", "cardiology", "service", "120.0", "false", "Electrocardiogram (Procedure)",
     "procedure_occurrence", 1),
    ("proc:9999999", "XYZ", "general_procedures", "service", None, "false", "XYZ", "procedure_occurrence", 3),
]
EXPECTED_ORDERS = [  # order_id, line_no, patient_id, product_id, ordered_at, quantity, unit_price, channel,
    #                  facility_id, file, row
    ("10", "1", "P-001", "drug:1503297", "2019-03-01 09:30:00", "90", "0.75", "clinic", "CS1", "drug_exposure", 1),
    ("10", "2", "P-001", "proc:4163872", "2019-03-01 09:30:00", "1", "120.0", "clinic", "CS1",
     "procedure_occurrence", 1),
    ("11", "1", "P-002", "device:4217646", "2019-04-02", "1", None, "online", "CS2", "device_exposure", 1),
    ("11", "2", "P-002", "drug:40213154", "2019-04-02", "1", "25.5", "online", "CS2", "drug_exposure", 3),
    ("11", "3", "P-002", "proc:9999999", "2019-04-02", "1", None, "online", "CS2", "procedure_occurrence", 3),
    ("12", "1", "3", "proc:4163872", "2019-05-03", "1", None, "phone", None, "procedure_occurrence", 2),
    ("person:3:2019-05-10", "1", "3", "drug:src:LOCAL-ASPIRIN-81", "2019-05-10", "2", None, None, None,
     "drug_exposure", 4),
    ("person:99:2019-06-01", "1", "99", "drug:1503297", "2019-06-01", "10", None, None, None, "drug_exposure", 5),
]
EXPECTED_DIAGNOSES = [  # patient_id, condition_code, condition_name, diagnosed_at, row
    ("P-001", "44054006", "Type 2 diabetes mellitus", "2019-03-01", 1),
    ("P-002", "J10.1", "J10.1", "2019-04-02", 2),
    ("3", "4329847", None, "2019-05-03", 3),
]


def write_export(folder: Path, tables: dict = TABLES, upper_names: bool = False, upper_columns: bool = False,
                 tab_separated: tuple[str, ...] = ()) -> Path:
    """The tables as CSV files in folder (names and headers upper-cased on request)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, (header, rows) in tables.items():
        if upper_columns:
            header = header.upper()
        text = "\n".join([header, *rows]) + "\n"
        if name in tab_separated:  # every fixture comma is a separator except inside quotes
            text = "\n".join(_tabbed(line) for line in text.splitlines()) + "\n"
        (folder / f"{name.upper() if upper_names else name}.csv").write_text(text)
    return folder


def _tabbed(line: str) -> str:
    """A fixture CSV line as an Athena-style TSV line: tabs between fields, no quoting."""
    out, quoted = [], False
    for ch in line:
        if ch == '"':
            quoted = not quoted
            continue  # tab-separated vocabulary files do not quote
        out.append("\t" if ch == "," and not quoted else ch)
    return "".join(out)


def _rows(con: duckdb.DuckDBPyConnection, export: OmopExport, table: str, columns: tuple[str, ...]) -> list[tuple]:
    """The select's rows as (columns..., source table, source row), sorted."""
    rows = con.execute(f"SELECT {', '.join(columns)}, _source_file, _source_row FROM ({export.select(table)})"
                       ).fetchall()
    return sorted(((*r[:-2], Path(r[-2]).name.split(".")[0].lower(), r[-1]) for r in rows), key=str)


def assert_known_answers(con: duckdb.DuckDBPyConnection, export: OmopExport) -> None:
    """The fixture's exact canonical outputs (shared by every flavour of the same export)."""
    patients = con.execute(f"SELECT * FROM ({export.select('patients')}) ORDER BY _source_row").fetchall()
    described = con.execute(f"DESCRIBE SELECT * FROM ({export.select('patients')})").fetchall()
    assert [d[0] for d in described][:len(PATIENT_COLUMNS)] == list(PATIENT_COLUMNS)
    got = [(p[0], p[2], p[3], p[6], p[7], p[8], p[9], p[10], p[11], p[12]) for p in patients]
    assert got == EXPECTED_PATIENTS
    assert all(p[1] is None and p[4] is None and p[5] is None for p in patients)  # no names, phones, emails
    assert [p[-1] for p in patients] == [1, 2, 3]

    products = _rows(con, export, "products", SOURCE_TABLES["products"].columns)
    assert products == sorted(EXPECTED_PRODUCTS, key=str)
    orders = _rows(con, export, "orders", SOURCE_TABLES["orders"].columns)
    assert orders == sorted(EXPECTED_ORDERS, key=str)
    diagnoses = _rows(con, export, "diagnoses", SOURCE_TABLES["diagnoses"].columns)
    assert sorted(((*d[:4], d[5]) for d in diagnoses), key=str) == sorted(EXPECTED_DIAGNOSES, key=str)
    for table in ("campaigns", "campaign_contacts", "consents", "surveys", "events"):
        assert export.select(table) is None


def test_cdm54_export_known_answers(tmp_path):
    con = duckdb.connect()
    export = OmopExport(con, write_export(tmp_path / "omop"))
    assert_known_answers(con, export)
    assert export.notes == {
        "layout": "OMOP CDM 5.4, csv",
        "tables_read": "person, visit_occurrence, condition_occurrence, drug_exposure, procedure_occurrence, "
                       "device_exposure, observation_period, payer_plan_period, location, death, cost, concept, "
                       "cdm_source",
        "missing_optional_inputs": "none",
        "ignored_tables": "measurement",
    }
    assert sorted(p.name for p in export.files) == sorted(f"{t}.csv" for t in TABLES if t != "measurement")


def test_selects_have_the_contract_columns_as_text_and_load_as_raw_tables(tmp_path):
    con = duckdb.connect()
    export = OmopExport(con, write_export(tmp_path / "omop"))
    con.execute("CREATE SCHEMA raw")
    for table in ("patients", "products", "orders", "diagnoses"):
        con.execute(f"CREATE TABLE raw.{table} AS {export.select(table)}")
        types = dict(con.execute(f"SELECT column_name, data_type FROM information_schema.columns "
                                 f"WHERE table_schema = 'raw' AND table_name = '{table}'").fetchall())
        expected = {c: "VARCHAR" for c in SOURCE_TABLES[table].columns}
        assert types == {**expected, "_source_file": "VARCHAR", "_source_row": "BIGINT"}


def test_upper_case_file_and_column_names(tmp_path):
    con = duckdb.connect()
    export = OmopExport(con, write_export(tmp_path / "omop", upper_names=True, upper_columns=True))
    assert_known_answers(con, export)
    assert export.notes["layout"] == "OMOP CDM 5.4, csv"
    assert all(p.stem.isupper() for p in export.files)


def test_cdm53_flavour_detected_from_columns_and_gzipped_csv(tmp_path):
    tables = {k: v for k, v in TABLES.items() if k != "cdm_source"}
    header, rows = tables["visit_occurrence"]
    tables["visit_occurrence"] = (header.replace("admitted_from_concept_id", "admitting_source_concept_id"), rows)
    for name, column in (("procedure_occurrence", ",procedure_end_date"), ("device_exposure", ",production_id")):
        header, rows = tables[name]
        tables[name] = (header.replace(column, ""), [r[:-1] for r in rows])  # drop the trailing empty 5.4 column
    con = duckdb.connect()
    folder = write_export(tmp_path / "omop53", tables)
    drugs = folder / "drug_exposure.csv"  # exports are often gzipped
    (folder / "drug_exposure.csv.gz").write_bytes(gzip.compress(drugs.read_bytes()))
    drugs.unlink()
    export = OmopExport(con, folder)
    assert_known_answers(con, export)
    assert export.notes["layout"] == "OMOP CDM 5.3, csv"
    assert "drug_exposure.csv.gz" in {p.name for p in export.files}
    assert "cdm_source" not in export.notes["tables_read"]


def test_parquet_flavour_with_typed_columns(tmp_path):
    """Parquet files carry types (BIGINT ids, DATE, TIMESTAMP, DOUBLE): outputs are the same text."""
    csv_dir = write_export(tmp_path / "csv")
    parquet_dir = tmp_path / "parquet"
    parquet_dir.mkdir()
    con = duckdb.connect()
    for name in TABLES:
        typed = "all_varchar=true" if name == "location" else "auto_detect=true"  # zip codes stay text
        target = parquet_dir / f"{name.capitalize()}.parquet"
        con.execute(f"COPY (SELECT * FROM read_csv('{csv_dir / name}.csv', header=true, {typed})) "
                    f"TO '{target}' (FORMAT parquet)")
    person_types = {r[0]: r[1] for r in con.execute(
        f"DESCRIBE SELECT * FROM '{parquet_dir / 'Person.parquet'}'").fetchall()}
    assert person_types["person_id"] == "BIGINT" and person_types["birth_datetime"] == "TIMESTAMP"
    export = OmopExport(con, parquet_dir)
    assert_known_answers(con, export)
    assert export.notes["layout"] == "OMOP CDM 5.4, parquet"


def test_tab_separated_concept_file(tmp_path):
    con = duckdb.connect()
    folder = write_export(tmp_path / "omop", upper_names=True, tab_separated=("concept",))
    assert "\t" in (folder / "CONCEPT.csv").read_text()
    assert_known_answers(con, OmopExport(con, folder))


MINIMAL = {
    "person": ("person_id,gender_concept_id,year_of_birth,month_of_birth,day_of_birth,person_source_value,"
               "death_datetime",
               ["1,8507,1980,,,,", "2,8532,1975,12,24,,2021-02-03 00:00:00"]),
    "drug_exposure": TABLES["drug_exposure"],
    "cost": (TABLES["cost"][0], []),  # header only
}


def test_missing_optional_tables_give_empty_outputs_and_notes(tmp_path):
    con = duckdb.connect()
    folder = write_export(tmp_path / "omop", MINIMAL)
    (folder / "location.csv").write_text("")  # a 0-byte file is an empty table too
    export = OmopExport(con, folder)
    patients = con.execute(f"SELECT patient_id, gender, birth_date, city, insurance_type, registered_at, "
                           f"death_date FROM ({export.select('patients')})").fetchall()
    assert patients == [("1", "M", "1980-01-01", None, None, None, None),
                        ("2", "F", "1975-12-24", None, None, None, "2021-02-03")]
    products = con.execute(f"SELECT product_id, name, category, unit_price, description "
                           f"FROM ({export.select('products')})").fetchall()
    assert products == [  # no concept table: source values stand in for names
        ("drug:1503297", "860975", "general_medicine", None, "860975"),
        ("drug:40213154", "140", "general_medicine", None, "140"),
        ("drug:src:LOCAL-ASPIRIN-81", "LOCAL-ASPIRIN-81", "cardiology", None, "LOCAL-ASPIRIN-81")]
    orders = con.execute(f"SELECT order_id, patient_id, product_id, ordered_at, quantity, unit_price, channel, "
                         f"facility_id FROM ({export.select('orders')})").fetchall()
    assert orders == [  # visit ids still key the orders; no visit table → no channel or facility
        ("10", "1", "drug:1503297", "2019-03-01", "90", None, None, None),
        ("11", "2", "drug:40213154", "2019-04-02", "1", None, None, None),
        ("person:3:2019-05-10", "3", "drug:src:LOCAL-ASPIRIN-81", "2019-05-10", "2", None, None, None),
        ("person:99:2019-06-01", "99", "drug:1503297", "2019-06-01", "10", None, None, None)]
    assert con.execute(f"SELECT count(*) FROM ({export.select('diagnoses')})").fetchall() == [(0,)]
    missing = export.notes["missing_optional_inputs"]
    for expected in ("visit_occurrence (", "condition_occurrence (no diagnoses)", "procedure_occurrence (",
                     "device_exposure (", "observation_period (", "payer_plan_period (insurance_type left empty)",
                     "location (empty file; ", "death (death_date from person.death_datetime)",
                     "cost (empty file; unit_price left empty)", "concept (concept ids stand in for names)"):
        assert expected in missing
    assert export.notes["tables_read"] == "person, drug_exposure"
    assert export.notes["layout"] == "OMOP CDM (version not detectable), csv"
    assert export.notes["ignored_tables"] == "none"
    assert {p.name for p in export.files} == {"person.csv", "drug_exposure.csv", "cost.csv", "location.csv"}


@pytest.mark.parametrize("payer, plan, expected", [
    ("Medicare", "", "public"), ("MEDICAID", "", "public"), ("Dual Eligible", "", "public"),
    ("Other Government", "", "public"), ("Aetna", "Individual PPO", "commercial"), ("Aetna", "PPO", "commercial"),
    ("NO_INSURANCE", "", "self_pay"), ("Self-pay", "", "self_pay"), ("", "uninsured", "self_pay"),
    ("Acme", "self-funded employer plan", "commercial"), ("", "", None),
])
def test_insurance_keywords(tmp_path, payer, plan, expected):
    tables = {"person": ("person_id", ["1"]),
              "payer_plan_period": ("person_id,payer_plan_period_start_date,payer_source_value,plan_source_value",
                                    [f"1,2019-01-01,{payer},{plan}"])}
    con = duckdb.connect()
    export = OmopExport(con, write_export(tmp_path / "omop", tables))
    assert con.execute(f"SELECT insurance_type FROM ({export.select('patients')})").fetchall() == [(expected,)]


def test_refusals_name_the_file_and_what_was_expected(tmp_path):
    con = duckdb.connect()
    with pytest.raises(SourceError, match=r"no person table .*person\.csv"):
        OmopExport(con, write_export(tmp_path / "no_person", {"drug_exposure": TABLES["drug_exposure"]}))
    secret = "Jane Doe"
    folder = write_export(tmp_path / "no_id", {"person": ("id,year_of_birth", [f"{secret},1980"])},
                          upper_names=True)
    with pytest.raises(SourceError, match="PERSON.csv has no person_id; an OMOP person table needs person_id") as err:
        OmopExport(con, folder)
    assert secret not in str(err.value)
    folder = write_export(tmp_path / "bad_drug", {"person": TABLES["person"], "drug_exposure": (
        "drug_exposure_id,person_id,drug_exposure_start_date", ["1,1,2019-01-01"])})
    with pytest.raises(SourceError, match="drug_exposure.csv has no drug_concept_id; an OMOP drug_exposure table"):
        OmopExport(con, folder)
    folder = write_export(tmp_path / "header_only", {"person": ("person_id", [])})
    with pytest.raises(SourceError, match="person.csv: no rows"):
        OmopExport(con, folder)
    folder = write_export(tmp_path / "twice", {"person": TABLES["person"]})
    (folder / "PERSON.parquet").write_bytes(b"")
    with pytest.raises(SourceError, match="more than one file for table 'person'"):
        OmopExport(con, folder)


def test_real_omop_sample():
    if not SAMPLE.is_dir():
        pytest.skip("../shared/data/omop_sample not present: the real OMOP CDM 5.4 sample is read from "
                    "the shared data folder, never copied into the project")
    con = duckdb.connect()
    export = OmopExport(con, SAMPLE)
    assert export.notes["layout"] == "OMOP CDM 5.4, csv"
    assert "measurement" in export.notes["ignored_tables"] and "observation" in export.notes["ignored_tables"]
    patients = con.execute(export.select("patients")).fetchdf()
    assert len(patients) == 28 and patients["patient_id"].is_unique
    assert patients["gender"].isin(["M", "F"]).all() and patients["registered_at"].notna().all()
    assert patients["death_date"].notna().sum() == 3  # DEATH.csv has three persons

    def scan(name: str) -> str:
        return f"read_csv('{SAMPLE / name}', all_varchar=true)"

    products = con.execute(export.select("products")).fetchdf()
    assert products["product_id"].is_unique
    assert products["product_id"].str.match(r"^(drug|proc|device):").all()
    concept_names = {r[0] for r in con.execute(f"SELECT concept_name FROM {scan('CONCEPT.csv')}").fetchall()}
    assert set(products["name"]) <= concept_names  # every sample event's concept is in the CONCEPT subset

    orders = con.execute(export.select("orders")).fetchdf()
    assert not orders.duplicated(["order_id", "line_no"]).any()
    assert set(orders["patient_id"]) <= set(patients["patient_id"])
    counted = " UNION ALL ".join(
        f"SELECT CASE WHEN try_cast(quantity AS DOUBLE) > 0 THEN try_cast(quantity AS DOUBLE) ELSE 1 END AS q "
        f"FROM {scan(name)}" for name in ("DRUG_EXPOSURE.csv", "PROCEDURE_OCCURRENCE.csv", "DEVICE_EXPOSURE.csv"))
    events, units = con.execute(f"SELECT count(*), sum(q) FROM ({counted})").fetchall()[0]
    # every drug, procedure and device row is counted in exactly one order line (sample quantities are whole)
    assert orders["quantity"].astype(int).sum() == units and events == 883 + 1649 + 1
    diagnoses = con.execute(export.select("diagnoses")).fetchdf()
    conditions = con.execute(f"SELECT count(*) FROM {scan('CONDITION_OCCURRENCE.csv')}").fetchall()[0][0]
    assert len(diagnoses) == conditions and diagnoses["condition_name"].notna().all()


def test_fixture_categories_agree_with_the_python_classifier():
    """The fixture's expected categories follow common.CATEGORY_KEYWORDS (CVX aside)."""
    for product_id, name, category, kind, *_ in EXPECTED_PRODUCTS:
        if not name.startswith("influenza"):
            fallback = {"drug": "general_medicine", "service": "general_procedures", "device": "general_devices"}
            assert category_of(name, fallback[kind]) == category, product_id
