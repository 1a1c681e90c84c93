"""Disease risk rows: who is at risk at each index date, the label window, and no look-ahead."""
from datetime import datetime

import pytest

from medmkt_assets_tests.conftest import session_from_script
from medmkt_assets.lib.models.disease_risk import (
    RISK_CONDITIONS_SQL,
    build_risk_training,
    index_dates,
    risk_model_columns,
    risk_training_rows,
)
from medmkt_assets.lib.models.features import build_patient_features

# k1: first N18 diagnosis 2025-09-01, then the drug it needs ("L", cardiology); a checkup before.
# k2: N18 long ago. k3: buys L without N18. k4: deceased. k5: registered 2025-01-01. k6: undated N18.
WORLD = """
CREATE SCHEMA staging; CREATE SCHEMA marts; CREATE SCHEMA features;
CREATE TABLE staging.patients AS SELECT * FROM (VALUES
  ('k1', 'F', 1960, DATE '2020-01-01', false), ('k2', 'M', 1955, DATE '2020-01-01', false),
  ('k3', 'M', 1970, DATE '2020-01-01', false), ('k4', 'F', 1940, DATE '2020-01-01', true),
  ('k5', 'F', 1980, DATE '2025-01-01', false), ('k6', 'M', 1950, NULL, false))
  t(patient_key, gender, birth_year, registered_at, is_deceased);
CREATE TABLE marts.patient_profiles AS SELECT patient_key, gender, '60-69' AS age_band FROM staging.patients;
CREATE TABLE staging.products AS SELECT * FROM (VALUES ('L', 'cardiology'), ('C', 'checkup')) t(product_id, category);
CREATE TABLE staging.orders AS SELECT * FROM (VALUES
  ('o1', 'k1', 'C', TIMESTAMP '2025-01-01 10:00:00', 1, 100.0, 'store'),
  ('o2', 'k1', 'L', TIMESTAMP '2025-09-10 10:00:00', 1, 40.0, 'store'),
  ('o3', 'k1', 'L', TIMESTAMP '2026-01-01 10:00:00', 1, 40.0, 'store'),
  ('o4', 'k3', 'L', TIMESTAMP '2024-01-01 10:00:00', 1, 40.0, 'store'),
  ('o5', 'k2', 'L', TIMESTAMP '2026-06-30 00:00:00', 1, 40.0, 'store'))
  t(order_id, patient_key, product_id, ordered_at, quantity, unit_price, channel);
CREATE TABLE staging.diagnoses AS SELECT * FROM (VALUES
  ('k1', 'N18', 'CKD', DATE '2025-09-01'), ('k2', 'N18', 'CKD', DATE '2023-01-01'),
  ('k6', 'N18', 'CKD', NULL), ('k3', 'I10', 'Hypertension', DATE '2020-05-01'))
  t(patient_key, condition_code, condition_name, diagnosed_at);
CREATE TABLE staging.surveys (patient_key VARCHAR, satisfaction DOUBLE, responded_at TIMESTAMP);
CREATE TABLE staging.events (patient_key VARCHAR, occurred_at TIMESTAMP, product_id VARCHAR, category VARCHAR);
CREATE TABLE staging.as_of AS SELECT TIMESTAMP '2026-06-30 00:00:00' AS as_of;
"""


@pytest.fixture
def world():
    con = session_from_script(WORLD)
    build_patient_features(con, "features.patient_features")
    return con


def rows(con, code="N18"):
    return risk_training_rows(con, [code, "I10"], seed=1, max_rows=10_000)[code]


def test_index_dates_step_back_one_horizon_each():
    assert index_dates(datetime(2026, 6, 30), 365, 2) == [datetime(2024, 6, 30), datetime(2025, 6, 30)]
    with pytest.raises(ValueError):
        index_dates(datetime(2026, 6, 30), 0, 2)


def test_only_patients_without_the_condition_are_at_risk_and_labelled_by_the_window(world):
    dates = build_risk_training(world, horizon_days=365, index_count=2)
    assert [d.date().isoformat() for d in dates] == ["2024-06-30", "2025-06-30"]
    got = {(str(r.index_date.date()), r.patient_key): r.new_diagnosis for r in rows(world).itertuples()}
    assert got == {("2024-06-30", "k1"): 0, ("2025-06-30", "k1"): 1,   # diagnosed in the second window
                   ("2024-06-30", "k3"): 0, ("2025-06-30", "k3"): 0,
                   ("2025-06-30", "k5"): 0}                          # registered after the first index
    # k2 (diagnosed before), k4 (deceased), k6 (undated diagnosis) are never at risk
    assert world.execute(RISK_CONDITIONS_SQL, {"min_positives": 1, "conditions": 5}).fetchall() == [("N18", 1)]


def test_what_follows_the_diagnosis_never_reaches_the_features(world):
    build_risk_training(world, horizon_days=365, index_count=2)
    before = rows(world).set_index(["index_date", "patient_key"])
    k1 = before.xs("k1", level="patient_key").iloc[-1]
    assert k1.new_diagnosis == 1 and k1.cat__cardiology == 0 and k1.monetary == pytest.approx(100.0)
    # a large purchase the day after the last index changes nothing in the training rows
    world.execute("INSERT INTO staging.orders VALUES ('late', 'k3', 'C', TIMESTAMP '2025-07-01 00:00:00', 9, "
                  "999.0, 'store')")
    build_risk_training(world, horizon_days=365, index_count=2)
    after = rows(world).set_index(["index_date", "patient_key"])
    assert before.equals(after)


def test_the_condition_own_flag_is_no_input():
    assert risk_model_columns(["age_years", "cond__n18", "cond__i10"], "N18") == ["age_years", "cond__i10"]
