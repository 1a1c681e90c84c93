"""Model-input features: known answers on a tiny world, the capped shares, and the two builders agreeing."""
import pandas as pd
import pytest

from medmkt_assets_tests.conftest import session_from_script
from medmkt_assets.lib.models.features import build_features_at, build_patient_features, share_sql

# k1: three orders, two categories, two channels; k2: one order; k3: no order, a survey; k4: an
# event only. A patient twice in the list asked for is one row.
WORLD = """
CREATE SCHEMA staging; CREATE SCHEMA features;
CREATE TABLE staging.patients AS SELECT * FROM (VALUES
  ('k1', 'F', 1960), ('k2', 'M', 1955), ('k3', 'M', 1970), ('k4', NULL, 1990))
  t(patient_key, gender, birth_year);
CREATE TABLE staging.products AS SELECT * FROM (VALUES ('L', 'Cardiology'), ('C', 'check-up')) t(product_id, category);
CREATE TABLE staging.orders AS SELECT * FROM (VALUES
  ('o1', 'k1', 'C', TIMESTAMP '2025-01-01 10:00:00', 1, 100.0, 'store'),
  ('o2', 'k1', 'L', TIMESTAMP '2025-09-10 10:00:00', 2, 20.0, 'online'),
  ('o2', 'k1', 'C', TIMESTAMP '2025-09-10 10:00:00', 1, 10.0, 'online'),
  ('o3', 'k1', 'L', TIMESTAMP '2026-01-01 10:00:00', 1, 30.0, NULL),
  ('o4', 'k2', 'L', TIMESTAMP '2026-06-01 00:00:00', 1, 40.0, 'store'),
  ('o5', 'k2', 'L', TIMESTAMP '2026-08-01 00:00:00', 1, 99.0, 'store'))
  t(order_id, patient_key, product_id, ordered_at, quantity, unit_price, channel);
CREATE TABLE staging.diagnoses AS SELECT * FROM (VALUES
  ('k1', 'I10', DATE '2020-05-01'), ('k2', 'I10', NULL), ('k2', 'E11', DATE '2027-01-01'))
  t(patient_key, condition_code, diagnosed_at);
CREATE TABLE staging.surveys AS SELECT * FROM (VALUES ('k3', 4.0, TIMESTAMP '2026-01-01'), ('k3', 2.0, NULL))
  t(patient_key, satisfaction, responded_at);
CREATE TABLE staging.events AS SELECT * FROM (VALUES
  ('k4', TIMESTAMP '2026-02-01', 'L', NULL), ('k4', TIMESTAMP '2026-02-02', NULL, 'Cardiology'),
  ('k1', TIMESTAMP '2026-09-01', NULL, 'Cardiology'))
  t(patient_key, occurred_at, product_id, category);
CREATE TABLE staging.as_of AS SELECT TIMESTAMP '2026-06-30 00:00:00' AS as_of;
"""
CUTOFF = "TIMESTAMP '2026-07-01 00:00:00'"


@pytest.fixture
def con():
    return session_from_script(WORLD)


def test_a_patient_features_are_counted_from_their_history_before_the_cutoff(con):
    vocabulary = build_patient_features(con, "features.f", cutoff=CUTOFF, patients_sql=(
        "SELECT patient_key FROM staging.patients UNION ALL SELECT 'k1'"))
    assert vocabulary == {"cat": ["cardiology", "check_up"], "evt": ["cardiology", "check_up"],
                          "ch": ["online", "store", "other"], "cond": ["i10"]}  # E11 comes after the cut-off
    table = con.execute("SELECT * FROM features.f").fetchdf().set_index("patient_key")
    assert list(table.index) == ["k1", "k2", "k3", "k4"]
    k1 = table.loc["k1"]
    assert (k1.frequency, k1.order_lines, k1.distinct_products, k1.monetary) == (3, 4, 2, 180.0)
    assert k1.avg_order_value == pytest.approx(60.0)
    assert (k1.cat__cardiology, k1.cat__check_up) == pytest.approx((70 / 180, 110 / 180))
    assert (k1.ch__online, k1.ch__store, k1.ch__other) == pytest.approx((1 / 3, 1 / 3, 1 / 3))
    assert (k1.cond__i10, k1.is_female, k1.has_orders, k1.digital_events) == (1, 1.0, 1.0, 0.0)
    k2 = table.loc["k2"]  # the August order is after the cut-off; an undated diagnosis counts
    assert (k2.frequency, k2.monetary, k2.recency_days, k2.cat__cardiology, k2.cond__i10) == (1, 40.0, 30, 1.0, 1)
    k3 = table.loc["k3"]
    assert (k3.has_orders, k3.recency_days, k3.cat__cardiology, k3.satisfaction, k3.has_survey) == (
        0.0, 3650, 0.0, 3.0, 1.0)
    k4 = table.loc["k4"]  # an event names a product or a category
    assert (k4.digital_events, k4.evt__cardiology, k4.is_female, k4.age_years) == (2, 2, 0.5, 35.0)
    assert not con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name LIKE '_feat%'").fetchone()[0]


def test_a_share_is_zero_when_missing_and_never_above_one(con):
    # DuckDB's parallel sums of doubles may give a patient's only category 1.0000000000000002 of their
    # spend; the shares gate refuses a share above 1.
    row = con.execute(f"SELECT {share_sql('1.0000000000000002', '1.0')}, {share_sql('NULL', '2.0')}, "
                      f"{share_sql('1.0', '0.0')}, {share_sql('1.0', '4.0')}").fetchone()
    assert row == (1.0, 0.0, 0.0, 0.25)


def test_features_at_a_cutoff_are_what_the_single_cutoff_builder_gives(con):
    vocabulary = build_patient_features(con, "features.f", cutoff=CUTOFF)
    build_features_at(con, "features.g", f"SELECT 's' AS _slice, patient_key, {CUTOFF} AS _cutoff "
                      "FROM staging.patients", vocabulary, carried=["_slice"])
    single = con.execute("SELECT * FROM features.f ORDER BY patient_key").fetchdf()
    many = con.execute("SELECT * EXCLUDE (_slice) FROM features.g ORDER BY patient_key").fetchdf()
    pd.testing.assert_frame_equal(single, many, check_dtype=False)
