"""The demo generator: every contract table, deterministic, with the structure its truth claims."""
from __future__ import annotations

import json

import duckdb
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from medmkt_assets.demo_data import generate
from medmkt_assets.demo_data.generator import EXTRA_COLUMNS
from medmkt_assets.demo_data import world as W
from medmkt_assets.lib.sources.schema import SOURCE_TABLES


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    return out, generate(out, patients=4000, seed=11, chunk_size=1500)


def _read(folder, table: str) -> pd.DataFrame:
    return pd.read_csv(folder / f"{table}.csv", dtype=str, keep_default_na=False)


def test_every_contract_table_is_written_with_its_columns(demo):
    out, manifest = demo
    for table, spec in SOURCE_TABLES.items():
        frame = _read(out, table)
        assert tuple(frame.columns) == spec.columns + EXTRA_COLUMNS.get(table, ()), table
        assert len(frame) == manifest["rows"][table] > 0, table
    assert manifest["rows"]["patients"] == 4000 + manifest["bad_rows"]["patients"]


def test_same_seed_same_bytes_other_seed_other_data(tmp_path):
    a = generate(tmp_path / "a", patients=300, seed=5)
    b = generate(tmp_path / "b", patients=300, seed=5)
    generate(tmp_path / "c", patients=300, seed=6)
    assert a["rows"] == b["rows"]
    assert (tmp_path / "a" / "orders.csv").read_bytes() == (tmp_path / "b" / "orders.csv").read_bytes()
    assert (tmp_path / "a" / "orders.csv").read_bytes() != (tmp_path / "c" / "orders.csv").read_bytes()


def test_chunking_does_not_repeat_ids(demo):
    out, _ = demo
    patients = _read(out, "patients")
    assert patients.patient_id.str.strip().duplicated().sum() == 1  # the planted duplicate only
    orders = _read(out, "orders")
    assert not orders.duplicated(["order_id", "line_no"]).any()


def test_planted_bundles_have_their_confidence_in_the_raw_orders(demo):
    out, _ = demo
    orders = _read(out, "orders")
    baskets = orders.groupby("order_id").product_id.agg(set)
    for bundle in json.loads((out / "_truth" / "bundles.json").read_text()):
        with_a = baskets[baskets.map(lambda s, a=bundle["antecedent"]: a in s)]
        confidence = with_a.map(lambda s, b=bundle["consequent"]: b in s).mean()
        assert len(with_a) > 50
        assert confidence == pytest.approx(bundle["probability"], abs=0.06), bundle


def test_segments_drive_age_and_categories(demo):
    out, _ = demo
    truth = pd.read_csv(out / "_truth" / "patient_segments.csv", dtype={"patient_id": str})
    patients = _read(out, "patients").assign(patient_id=lambda f: f.patient_id.str.strip())
    ages = patients.merge(truth, on="patient_id").assign(
        age=lambda f: 2026 - pd.to_datetime(f.birth_date, errors="coerce").dt.year)
    by_segment = ages.groupby("segment").age.mean()
    assert by_segment["chronic seniors"] > 65 > 35 > by_segment["young digital"]
    orders = _read(out, "orders").merge(_read(out, "products")[["product_id", "category"]], on="product_id")
    share = (orders.merge(truth, on="patient_id").groupby("segment").category
             .value_counts(normalize=True))
    assert share["chronic seniors"][["diabetes_care", "cardiology"]].sum() > 0.6
    assert share["young families"][["vaccination", "pediatrics"]].sum() > 0.6


def test_campaigns_have_a_random_control_arm_and_the_planted_uplift(demo):
    out, _ = demo
    contacts = _read(out, "campaign_contacts")
    contacts = contacts[contacts.arm.isin(["treatment", "control"])]
    rates = contacts.assign(converted=contacts.converted == "true").groupby(["campaign_id", "arm"]).converted.mean()
    truth = {c["campaign_id"]: c for c in json.loads((out / "_truth" / "campaigns.json").read_text())["past"]}
    assert truth["C003"]["planted_uplift"] == 0.0
    for cid, t in truth.items():
        observed = rates[cid]["treatment"] - rates[cid]["control"]
        n = (contacts.campaign_id == cid).sum()
        assert abs(observed - t["expected_uplift"]) < 4 * (0.25 / n * 2 / 0.21) ** 0.5, cid
    planned = {c["campaign_id"] for c in json.loads((out / "_truth" / "campaigns.json").read_text())["planned"]}
    assert planned == {c[0] for c in W.PLANNED_CAMPAIGNS}
    assert not contacts.campaign_id.isin(planned).any()


def test_consents_include_revocations_and_comments_are_chinese(demo):
    out, _ = demo
    consents = _read(out, "consents")
    assert {"granted", "revoked"} <= set(consents.status)
    comments = _read(out, "surveys").comment
    assert comments.str.contains(r"[\u4e00-\u9fff]").sum() > 100


def test_parquet_output_loads_with_duckdb(tmp_path):
    manifest = generate(tmp_path, patients=200, seed=1, fmt="parquet")
    con = duckdb.connect()
    count = con.execute(f"SELECT count(*) FROM read_parquet('{tmp_path / 'orders.parquet'}')").fetchone()[0]
    assert count == manifest["rows"]["orders"]


def test_bad_rows_are_planted_and_described(demo):
    out, manifest = demo
    planted = json.loads((out / "_truth" / "bad_rows.json").read_text())
    assert {t: len(r) for t, r in planted.items()} == manifest["bad_rows"]
    assert all(row["_why"] for rows in planted.values() for row in rows)
    assert "not-a-date" in set(_read(out, "orders").ordered_at)


def _incident(out) -> tuple[dict, pd.DataFrame, pd.DataFrame]:
    """incident.json, the incident-risk truth, and the incident diagnoses (one per patient)."""
    incident = json.loads((out / "_truth" / "incident.json").read_text())
    truth = pd.read_csv(out / "_truth" / "incident_risk.csv", dtype={"patient_id": str})
    diagnoses = _read(out, "diagnoses")
    return incident, truth, diagnoses[diagnoses.condition_code == incident["condition_code"]]


def test_incident_truth_scores_every_living_patient_still_without_the_disease(demo):
    out, _ = demo
    incident, truth, cases = _incident(out)
    assert (incident["condition_code"], incident["marker_name"]) == (W.INCIDENT[0], W.INCIDENT[2])
    patients = _read(out, "patients").assign(patient_id=lambda f: f.patient_id.str.strip())
    segments = pd.read_csv(out / "_truth" / "patient_segments.csv", dtype={"patient_id": str})
    living = set(patients.patient_id[patients.death_date == ""]) & set(segments.patient_id)
    assert not truth.patient_id.duplicated().any() and not cases.patient_id.duplicated().any()
    assert set(truth.patient_id) == living - set(cases.patient_id)
    assert (truth.condition_code == W.INCIDENT[0]).all()


def test_incident_risk_is_a_few_percent_a_year_and_ranks_next_years_cases(demo):
    out, _ = demo
    _, truth, _ = _incident(out)
    assert 0.02 < truth.yearly_risk.mean() < 0.06
    assert set(truth.diagnosed_next_year) == {0, 1}
    assert roc_auc_score(truth.diagnosed_next_year, truth.yearly_risk) > 0.65


def test_incident_diagnoses_fall_between_the_first_onset_and_the_window_end(demo):
    out, _ = demo
    _, _, cases = _incident(out)
    assert len(cases) > 300
    assert (cases.condition_name == W.INCIDENT[1]).all()
    assert cases.diagnosed_at.between(str(W.INCIDENT_SINCE), str(W.SNAPSHOT)).all()


def test_the_diagnosis_leaks_into_the_orders_after_it(demo):
    out, _ = demo
    incident, _, cases = _incident(out)
    orders = _read(out, "orders")
    orders = orders[orders.patient_id.isin(cases.patient_id)]
    assert not orders.duplicated(["order_id", "product_id"]).any()
    baskets = (orders.assign(marker=orders.product_id == incident["marker_product"])
               .groupby(["order_id", "patient_id", "ordered_at"]).marker.any().reset_index()
               .merge(cases[["patient_id", "diagnosed_at"]], on="patient_id"))
    after = baskets.ordered_at.str[:10] > baskets.diagnosed_at
    before = baskets.ordered_at.str[:10] < baskets.diagnosed_at
    assert baskets.marker[after].mean() > 0.45
    assert baskets.marker[after].mean() > 5 * baskets.marker[before].mean()


def test_a_small_catalog_request_still_holds_every_named_product(tmp_path):
    manifest = generate(tmp_path / "small", patients=200, seed=2, products=40)
    assert manifest["products"] == 120  # every stem of every category: bundles and the marker are named ones
