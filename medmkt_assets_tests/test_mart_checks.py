"""Checks on the published marts: known counts on tiny warehouses, and a planted violation that blocks."""
import dagster as dg
import pytest
from dagster_duckdb import DuckDBResource

from medmkt_assets.defs.quality.mart_checks import small_cell_checks
from medmkt_assets.defs.resources import Warehouse
from medmkt_assets.lib.ops.mart_checks import (
    SMALL_CELL_RULES,
    UNJUDGED_PATIENT,
    UNKNOWN_CAMPAIGN,
    ineligible_audience_rows,
    small_cells,
    uncovered_patients,
)
from medmkt_assets_tests.conftest import session_from_script

RULES = {rule.table: rule for rule in SMALL_CELL_RULES}


def test_small_people_counts_and_a_lone_hidden_row_are_counted():
    con = session_from_script("""
        CREATE SCHEMA marts;
        CREATE TABLE marts.demand_trends AS SELECT * FROM (VALUES (12, false), (NULL, true), (4, false), (0, false))
            t(patients, suppressed);
        -- C1's segments hide one row of three (recoverable from C1's arms), its channels two
        CREATE TABLE marts.campaign_effects_by_group AS SELECT * FROM (VALUES
            ('C1', 'segment', 'a', 30, 12, false), ('C1', 'segment', 'b', NULL, NULL, true),
            ('C1', 'segment', 'c', 40, 7, false),
            ('C1', 'channel', 'sms', NULL, NULL, true), ('C1', 'channel', 'email', NULL, NULL, true),
            ('C1', 'channel', 'call', 50, 20, false),
            ('C2', 'segment', 'a', NULL, NULL, true))
            t(campaign_id, group_type, group_value, treated, control, suppressed);
        CREATE TABLE marts.segment_summary AS SELECT * FROM (VALUES (0, 50, 20, false), (1, NULL, NULL, true))
            t(segment_id, patients, contacted_patients, suppressed)""")
    trends = small_cells(con, RULES["demand_trends"])
    assert trends.violations == {"patients_of_1_to_10": 1}
    assert trends.totals == {"rows": 4, "suppressed_rows": 1} and not trends.passed
    by_group = small_cells(con, RULES["campaign_effects_by_group"])
    assert by_group.violations == {"treated_of_1_to_10": 0, "control_of_1_to_10": 1, "groups_hiding_one_row": 1}
    # the whole summary is one group (its segments add up to the profiled patients)
    summary = small_cells(con, RULES["segment_summary"])
    assert summary.violations["groups_hiding_one_row"] == 1
    con.execute("UPDATE marts.segment_summary SET suppressed = true, patients = NULL")
    assert small_cells(con, RULES["segment_summary"]).passed


# k1 may be messaged by SMS; k2 granted on sms, later revoked on 'all'; k3 never consented;
# k4 is deceased; k5 consented on 'all' but has no phone; k9 is no profiled patient.
AUDIENCE_WORLD = """
CREATE SCHEMA marts; CREATE SCHEMA staging; CREATE SCHEMA restricted;
CREATE TABLE marts.patient_profiles AS SELECT patient_key, patient_key = 'k4' AS is_deceased,
    TIMESTAMP '2025-06-30' AS as_of FROM (VALUES ('k1'), ('k2'), ('k3'), ('k4'), ('k5')) t(patient_key);
CREATE TABLE restricted.patients AS SELECT patient_key, CASE WHEN patient_key <> 'k5' THEN '+86 1' END AS phone,
    NULL AS email FROM marts.patient_profiles;
CREATE TABLE marts.patient_segments AS SELECT patient_key, 0 AS segment_id, 'all' AS segment_label
    FROM marts.patient_profiles;
CREATE TABLE marts.uplift_scores (campaign_id VARCHAR, patient_key VARCHAR, expected_uplift DOUBLE);
CREATE TABLE marts.propensity_scores (patient_key VARCHAR, target VARCHAR, score DOUBLE);
CREATE TABLE marts.uplift_models (campaign_id VARCHAR, ranks_audience BOOLEAN);
CREATE TABLE staging.consents AS SELECT * FROM (VALUES
    ('k1', 'marketing', 'sms', 'granted', TIMESTAMP '2025-01-01'),
    ('k2', 'marketing', 'sms', 'granted', TIMESTAMP '2025-01-01'),
    ('k2', 'marketing', 'all', 'revoked', TIMESTAMP '2025-03-01'),
    ('k4', 'marketing', 'sms', 'granted', TIMESTAMP '2025-01-01'),
    ('k5', 'marketing', 'all', 'granted', TIMESTAMP '2025-01-01'))
    t(patient_key, purpose, channel, status, recorded_at);
CREATE TABLE staging.products AS SELECT 'M' AS product_id, 'drug' AS kind, 'diabetes_care' AS category;
CREATE TABLE staging.orders AS SELECT 'k1' AS patient_key, 'M' AS product_id, TIMESTAMP '2025-06-01' AS ordered_at;
CREATE TABLE staging.campaigns AS SELECT * FROM (VALUES ('C1', 'marketing', 'sms', 'diabetes_care'),
    ('C2', 'refill_reminder', 'sms', 'diabetes_care')) t(campaign_id, purpose, channel, target_category);
CREATE TABLE marts.audiences AS SELECT * FROM (VALUES ('C1', 'k1'), ('C1', 'k2'), ('C1', 'k3'), ('C1', 'k4'),
    ('C1', 'k5'), ('C1', 'k9'), ('C2', 'k1'), ('C2', 'k3'), ('C3', 'k1')) t(campaign_id, patient_key)
"""


def test_audience_rows_the_audience_rules_exclude_are_counted_by_reason():
    counted = ineligible_audience_rows(session_from_script(AUDIENCE_WORLD))
    assert counted.violations == {
        "deceased": 1, "marketing consent revoked": 1, "no contact details for sms": 1, "no marketing consent": 1,
        UNJUDGED_PATIENT: 1, "not currently taking a drug of the category": 1, UNKNOWN_CAMPAIGN: 1}
    assert counted.totals == {"rows": 9} and not counted.passed


def test_an_audience_of_eligible_patients_passes():
    con = session_from_script(AUDIENCE_WORLD)
    con.execute("DELETE FROM marts.audiences WHERE NOT (patient_key = 'k1' AND campaign_id IN ('C1', 'C2'))")
    assert ineligible_audience_rows(con).passed


def test_coverage_counts_profiled_patients_without_a_row_per_target():
    con = session_from_script("""
        CREATE SCHEMA marts;
        CREATE TABLE marts.patient_profiles AS SELECT * FROM (VALUES ('k1'), ('k2'), ('k3')) t(patient_key);
        CREATE TABLE marts.patient_segments AS SELECT * FROM (VALUES ('k1'), ('k2'), ('k7')) t(patient_key);
        CREATE TABLE marts.recommendations (patient_key VARCHAR, rank INTEGER);
        CREATE TABLE marts.propensity_scores AS SELECT * FROM (VALUES ('k1', 'A'), ('k2', 'A'), ('k3', 'A'),
            ('k1', 'B'), ('k1', 'B')) t(patient_key, target)""")
    segments = uncovered_patients(con, "patient_segments")
    assert segments.violations == {"missing_all": 1}  # k3; k7 is no profiled patient and covers nobody
    assert uncovered_patients(con, "recommendations").violations == {"missing_all": 3}
    scores = uncovered_patients(con, "propensity_scores")
    assert scores.violations == {"missing_A": 0, "missing_B": 2}
    assert scores.totals == {"profiled_patients": 3, "targets": 2}


@pytest.mark.parametrize("patients, passed", [(4, False), (11, True)])
def test_a_planted_small_cell_fails_the_check_and_blocks_what_reads_the_table(tmp_path, patients, passed):
    key = dg.AssetKey(["marts", "demand_trends"])

    @dg.asset(key=key)
    def trends(warehouse: Warehouse) -> None:
        with warehouse.session() as con:
            con.execute("CREATE SCHEMA IF NOT EXISTS marts")
            con.execute(f"CREATE OR REPLACE TABLE marts.demand_trends AS SELECT {patients} AS patients, "
                        "false AS suppressed")

    @dg.asset(deps=[key])
    def report() -> None:
        """Must not read a table that reveals a small cell."""

    (check,) = [c for c in small_cell_checks if key in {k.asset_key for k in c.check_keys}]
    result = dg.materialize([trends, report, check], raise_on_error=False, resources={
        "warehouse": Warehouse(engine=DuckDBResource(database=str(tmp_path / "w.duckdb")))})
    (evaluation,) = result.get_asset_check_evaluations()
    assert evaluation.passed is passed and evaluation.check_name == "small_cells_hidden"
    assert evaluation.metadata["patients_of_1_to_10"].value == int(not passed)
    assert "1-10" in evaluation.metadata["counted"].value
    materialized = {e.asset_key for e in result.all_events if e.is_step_materialization}
    assert (dg.AssetKey("report") in materialized) is passed
