"""Ingestion + staging on a tiny hand-written source whose every answer is known."""
from __future__ import annotations

import dagster as dg
import duckdb

from medmkt_assets.definitions import build_definitions
from medmkt_assets.lib.privacy.pseudonym import pseudonymize
from medmkt_assets.settings import Settings
from medmkt_assets_tests.conftest import (
    make_resources,
    materialize_all,
    row_accounting,
    write_tiny_source,
)

STAGE = dg.AssetSelection.groups("ingest", "staging")
PROFILES = STAGE | dg.AssetSelection.assets(["marts", "patient_profiles"]).upstream()


def _run(workdir, selection=STAGE):
    write_tiny_source(workdir["source"])
    defs = build_definitions(Settings.from_env())
    return materialize_all(defs, make_resources(workdir["source"], workdir["warehouse"], workdir["mlflow"]),
                           selection, checks=False)


def test_tiny_source_stages_and_quarantines_with_reasons(workdir, pseudonym_env):
    result = _run(workdir)
    assert result.success
    con = duckdb.connect(str(workdir["warehouse"]), read_only=True)
    reasons = dict(con.execute("SELECT _source_row, _reason FROM quarantine.patients").fetchall())
    assert reasons == {
        3: "birth_date is not a valid date",
        5: "duplicate patient_id; the first row in file order was kept",
        6: "patient_id is missing or blank",
    }
    keys = {r[0] for r in con.execute("SELECT patient_key FROM staging.patients").fetchall()}
    assert keys == {pseudonymize(p, pseudonym_env) for p in ("P1", "P2", "P4", "P5")}
    genders = dict(con.execute("SELECT patient_key, gender FROM staging.patients").fetchall())
    assert genders[pseudonymize("P1", pseudonym_env)] == "F"
    assert genders[pseudonymize("P2", pseudonym_env)] == "M"
    assert genders[pseudonymize("P5", pseudonym_env)] == "U"

    order_reasons = dict(con.execute("SELECT _source_row, _reason FROM quarantine.orders").fetchall())
    assert order_reasons == {
        5: "duplicate order_id, line_no; the first row in file order was kept",
        6: "unknown patient_id (not in patients)",
        7: "quantity is zero or negative (cancellation or return)",
        8: "product_id is missing or blank",
        9: "ordered_at is missing or not a valid timestamp",
        10: "unknown product_id (not in products)",
    }
    # a missing unit_price falls back to the product's list price; channels are normalized
    assert con.execute("SELECT unit_price, channel FROM staging.orders WHERE order_id = 'O9'").fetchall() == [
        (100.0, "clinic")]
    assert con.execute("SELECT channel FROM staging.orders WHERE order_id = 'O2'").fetchall() == [("online",)]
    for table in ("patients", "products", "orders", "diagnoses", "events"):
        raw, accounted = row_accounting(con, table)
        assert raw == accounted, table


def test_tiny_source_profiles_are_known(workdir, pseudonym_env):
    assert _run(workdir, PROFILES).success
    con = duckdb.connect(str(workdir["warehouse"]), read_only=True)
    profiles = con.execute(
        "SELECT patient_key, frequency, monetary, top_category, preferred_channel, recency_days, age_band "
        "FROM marts.patient_profiles").fetchdf().set_index("patient_key")
    p1 = profiles.loc[pseudonymize("P1", pseudonym_env)]
    # O1: 2 x 9.5 + 1 x 50, O2: 1 x 10 → 2 orders, 79.0 spent, all diabetes_care
    assert (p1.frequency, p1.monetary, p1.top_category) == (2, 79.0, "diabetes_care")
    assert p1.recency_days == 31  # last order 2024-03-01, as-of = latest order 2024-04-01
    assert p1.age_band == "70-79"  # born 1950, as of 2024
    p5 = profiles.loc[pseudonymize("P5", pseudonym_env)]
    assert (p5.frequency, p5.monetary) == (0, 0.0) and p5.age_band == "90+"
    assert len(profiles) == 4


def test_missing_required_column_fails_naming_file_and_column(workdir, pseudonym_env):
    write_tiny_source(workdir["source"])
    (workdir["source"] / "orders.csv").write_text("order_id,line_no,product_id,ordered_at\nO1,1,A,2024-01-01\n")
    defs = build_definitions(Settings.from_env())
    result = materialize_all(defs, make_resources(workdir["source"], workdir["warehouse"], workdir["mlflow"]),
                             STAGE, checks=False)
    assert not result.success
    failures = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    message = failures[0].step_failure_data.error.message
    assert "orders.csv" in message and "'patient_id'" in message


def test_a_stray_date_after_the_as_of_time_is_quarantined_not_taken_as_the_export_end(workdir, pseudonym_env):
    """The as-of time is the tiny source's latest event (2024-04-01), not a typo a century on (the
    source is too small for the 99 % rule, but most of it lies before today, so today caps it):
    the typo is quarantined with its reason, the rest is judged as of 2024."""
    write_tiny_source(workdir["source"])
    with (workdir["source"] / "orders.csv").open("a", encoding="utf-8") as orders:
        orders.write("O10,1,P1,A,2124-04-01,1,10,store,F1\n")
    result = materialize_all(build_definitions(Settings.from_env()),
                             make_resources(workdir["source"], workdir["warehouse"], workdir["mlflow"]), PROFILES,
                             checks=False)
    assert result.success
    con = duckdb.connect(str(workdir["warehouse"]), read_only=True)
    assert con.execute("SELECT CAST(as_of AS VARCHAR), basis FROM staging.as_of").fetchall() == [
        ("2024-04-01 00:00:00", "the latest event in the data, capped at the wall clock")]
    assert con.execute("SELECT _reason FROM quarantine.orders WHERE order_id = 'O10'").fetchall() == [
        ("ordered_at is in the future (after the as-of time)",)]
    assert con.execute("SELECT max(as_of) FROM marts.patient_profiles").fetchall()[0][0].year == 2024
    con.close()
