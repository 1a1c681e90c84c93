"""Synthea and mapped exports run through the same staging as canonical files."""
from __future__ import annotations

import textwrap
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from medmkt_assets.definitions import build_definitions
from medmkt_assets.defs.resources import SourceFiles
from medmkt_assets.lib.ops.contract_check import privacy_findings, shape_findings
from medmkt_assets.lib.sources.adapters.mapped import MappedExport
from medmkt_assets.lib.sources.adapters.synthea import SyntheaExport
from medmkt_assets.lib.sources.files import SourceError
from medmkt_assets.settings import Settings
from medmkt_assets_tests.conftest import make_resources, materialize_all, row_accounting

SYNTHEA = Path(__file__).resolve().parents[2] / "shared" / "data" / "synthea_sample"
needs_synthea_sample = pytest.mark.skipif(
    not SYNTHEA.is_dir(), reason=f"{SYNTHEA} not present: the real Synthea sample lives in ../shared/data, "
                                 "beside the repository (the layout tests in test_adapter_synthea.py need nothing)")


def _resources(workdir, source: Path, fmt: str, mapping: str = "") -> dict:
    resources = make_resources(source, workdir["warehouse"], workdir["mlflow"])
    resources["sources"] = SourceFiles(source_dir=str(source), source_format=fmt, source_mapping=mapping,
                                       incoming_dir=str(workdir["warehouse"].parent / "incoming"))
    return resources


@needs_synthea_sample
def test_synthea_sample_maps_onto_canonical_tables():
    con = duckdb.connect()
    export = SyntheaExport(con, SYNTHEA)
    assert export.version == "3.x" and export.notes["missing_optional_inputs"] == "none"
    patients = con.execute(export.select("patients")).fetchdf()
    assert len(patients) == 111 and patients["patient_id"].is_unique
    assert set(patients["insurance_type"].dropna()) <= {"public", "commercial", "self_pay"}
    orders = con.execute(export.select("orders")).fetchdf()
    # one order per encounter: (order_id, line_no) unique, every line's order is an encounter
    assert not orders.duplicated(["order_id", "line_no"]).any()
    encounters = con.execute(f"SELECT Id FROM read_csv('{SYNTHEA / 'encounters.csv'}')").fetchdf()
    assert set(orders["order_id"]) <= set(encounters["Id"])
    products = con.execute(export.select("products")).fetchdf()
    assert products["product_id"].is_unique
    assert (products.loc[products["product_id"].str.startswith("imm:"), "category"] == "vaccination").all()
    assert export.select("campaigns") is None and export.select("consents") is None


@needs_synthea_sample
def test_synthea_sample_runs_through_the_pipeline(workdir, pseudonym_env, whole_graph):
    result = whole_graph(_resources(workdir, SYNTHEA, "synthea"))
    assert result.success, [e.step_key for e in result.all_events if e.is_step_failure]
    con = duckdb.connect(str(workdir["warehouse"]), read_only=True)
    assert shape_findings(con) == [] and privacy_findings(con) == []
    # no campaigns in Synthea: empty campaign tables rather than failures
    assert con.execute("SELECT count(*) FROM marts.campaign_effects").fetchone()[0] == 0
    assert con.execute("SELECT count(*) FROM marts.patient_segments").fetchone()[0] == 111
    deceased = con.execute("SELECT count(*) FROM staging.patients WHERE is_deceased").fetchall()[0][0]
    expected_dead = con.execute(
        f"SELECT count(*) FROM read_csv('{SYNTHEA / 'patients.csv'}', all_varchar=true) "
        "WHERE DEATHDATE IS NOT NULL").fetchall()[0][0]
    assert deceased == expected_dead
    assert con.execute("SELECT count(*) FROM marts.patient_profiles").fetchall()[0][0] == 111
    for table in ("patients", "products", "orders", "diagnoses", "campaigns"):
        raw, accounted = row_accounting(con, table)
        assert raw == accounted
    assert con.execute("SELECT count(*) FROM staging.campaigns").fetchall()[0][0] == 0


RETAIL = """\
InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country
536365,85123A,WHITE HANGING HEART T-LIGHT HOLDER,6,12/1/2010 8:26,2.55,17850,United Kingdom
536365,71053,WHITE METAL LANTERN,6,12/1/2010 8:26,3.39,17850,United Kingdom
536366,22633,"HAND WARMER UNION JACK, RED",6,12/1/2010 8:28,1.85,17850,United Kingdom
536367,84879,ASSORTED COLOUR BIRD ORNAMENT,32,12/1/2010 8:34,1.69,13047,United Kingdom
C536379,D,Discount,-1,12/1/2010 9:41,27.5,14527,United Kingdom
536414,22139,RETROSPOT TEA SET CERAMIC 11 PC ,56,12/1/2010 11:52,0,,United Kingdom
"""
MAPPING = """\
tables:
  patients:
    file: retail.csv
    distinct_on: patient_id
    columns:
      patient_id: CustomerID
      region: Country
  products:
    file: retail.csv
    distinct_on: product_id
    columns:
      product_id: StockCode
      name: Description
      category: {constant: retail}
      unit_price: UnitPrice
  orders:
    file: retail.csv
    columns:
      order_id: InvoiceNo
      line_no: {sql: "row_number() OVER (PARTITION BY InvoiceNo ORDER BY _source_row)"}
      patient_id: CustomerID
      product_id: StockCode
      ordered_at: {column: InvoiceDate, format: "%m/%d/%Y %H:%M"}
      quantity: Quantity
      unit_price: UnitPrice
      channel: {constant: online}
"""


def test_mapped_retail_export_runs_and_quarantines_cancellations(tmp_path, workdir, pseudonym_env, whole_graph):
    (tmp_path / "retail.csv").write_text(RETAIL)
    (tmp_path / "mapping.yaml").write_text(MAPPING)
    result = whole_graph(_resources(workdir, tmp_path, "mapped", str(tmp_path / "mapping.yaml")))
    assert result.success, [e.step_key for e in result.all_events if e.is_step_failure]
    con = duckdb.connect(str(workdir["warehouse"]), read_only=True)
    assert shape_findings(con) == [] and privacy_findings(con) == []
    reasons = dict(con.execute("SELECT order_id, _reason FROM quarantine.orders").fetchall())
    assert reasons == {"C536379": "quantity is zero or negative (cancellation or return)",
                       "536414": "patient_id is missing or blank"}
    assert con.execute("SELECT count(*) FROM staging.orders").fetchall()[0][0] == 4
    assert con.execute("SELECT ordered_at::VARCHAR FROM staging.orders WHERE order_id = '536367'"
                       ).fetchall() == [("2010-12-01 08:34:00",)]
    # three customers (one row without a CustomerID is quarantined)
    assert con.execute("SELECT count(*) FROM staging.patients").fetchall()[0][0] == 3


def test_mapping_errors_name_the_file_and_column(tmp_path):
    (tmp_path / "retail.csv").write_text(RETAIL)
    (tmp_path / "mapping.yaml").write_text(MAPPING.replace("patient_id: CustomerID\n      region", "patient_id: Customer\n      region"))
    with pytest.raises(SourceError, match="retail.csv: column 'Customer'"):
        MappedExport(duckdb.connect(), tmp_path / "mapping.yaml")
    (tmp_path / "mapping.yaml").write_text(textwrap.dedent("""\
        tables:
          orders: {file: retail.csv, columns: {order_id: InvoiceNo}}
        """))
    with pytest.raises(SourceError, match="required column 'patient_id' is not mapped"):
        MappedExport(duckdb.connect(), tmp_path / "mapping.yaml")


def test_example_mapping_in_the_repo_is_valid():
    example = Path(__file__).resolve().parents[1] / "examples" / "retail_mapping.yaml"
    con = duckdb.connect()
    export = MappedExport(con, example)
    orders = con.execute(export.select("orders")).fetchdf()
    assert len(orders) == 20 and orders["ordered_at"].str.match(r"2010-12-01T\d\d:\d\d:00").all()
    patients = con.execute(export.select("patients")).fetchdf()
    assert sorted(patients["patient_id"].dropna()) == ["12583", "13047", "13748", "14527", "15311", "17850"]
    assert export.select("campaigns") is None


@needs_synthea_sample
def test_accepted_batches_are_appended_to_an_adapter_source(workdir, pseudonym_env):
    """A batch dropped for a Synthea-fed warehouse lands in raw with its lineage, like for canonical files."""
    con = duckdb.connect()
    patient, product = con.execute(f"SELECT PATIENT, 'med:' || CODE FROM read_csv('{SYNTHEA / 'medications.csv'}') "
                                   "LIMIT 1").fetchall()[0]
    batch = workdir["warehouse"].parent / "incoming" / "_accepted" / "orders" / "20261101T000000_abc_crm.csv"
    batch.parent.mkdir(parents=True)
    batch.write_text("order_id,line_no,patient_id,product_id,ordered_at,quantity,unit_price,channel\n"
                     f"CRM-1,1,{patient},{product},2024-05-01,1,10,online\n")
    result = materialize_all(build_definitions(Settings.from_env()), _resources(workdir, SYNTHEA, "synthea"),
                             dg.AssetSelection.groups("ingest", "staging"), checks=False)
    assert result.success
    warehouse = duckdb.connect(str(workdir["warehouse"]), read_only=True)
    raw = warehouse.execute("SELECT _source_file FROM raw.orders WHERE order_id = 'CRM-1'").fetchall()
    assert raw and raw[0][0].endswith("_crm.csv")
    assert warehouse.execute("SELECT count(*) FROM staging.orders WHERE order_id = 'CRM-1'").fetchall()[0][0] == 1
