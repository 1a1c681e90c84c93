"""A date-shifted canonical export is analysed as it is; judged against the wrong as-of time,
the run stops at staging with a message that says what to try, and the marts stay as they were."""
from __future__ import annotations

import shutil
from dataclasses import replace

import dagster as dg
import duckdb
import pytest

from medmkt_assets.cli import lost_tables
from medmkt_assets.definitions import build_definitions
from medmkt_assets.defs.resources import SourceFiles
from medmkt_assets.settings import Settings
from medmkt_assets_tests.conftest import (
    DEMO_PATIENTS,
    TEST_KEY,
    make_resources,
    materialize_all,
)
from medmkt_assets_tests.shifted import ANALYSIS, analysis_differences, shift_export

YEARS = 100


def _materialize(root, source, warehouse, selection, as_of: str = ""):
    resources = make_resources(source, warehouse, f"sqlite:///{root / 'mlflow' / 'mlflow.db'}")
    resources["sources"] = SourceFiles(source_dir=str(source), incoming_dir=str(root / "incoming"), as_of=as_of)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MEDMKT_TEST_PSEUDONYM_KEY", TEST_KEY)
        return materialize_all(build_definitions(Settings.from_env()), resources, selection)


@pytest.fixture(scope="module")
def shifted_run(demo_pipeline, tmp_path_factory) -> dict:
    """The demo pipeline's source a century later, through the analysis assets and their checks."""
    root = tmp_path_factory.mktemp("shifted")
    source = shift_export(demo_pipeline["source"], root / "source", YEARS)
    warehouse = root / "warehouse.duckdb"
    result = _materialize(root, source, warehouse, dg.AssetSelection.groups(*ANALYSIS))
    return {"root": root, "source": source, "warehouse": warehouse, "result": result}


def test_a_date_shifted_canonical_export_gives_the_same_analysis(demo_pipeline, shifted_run):
    result = shifted_run["result"]
    assert result.success, [e.step_key for e in result.all_events if e.is_step_failure]
    assert all(c.passed for c in result.get_asset_check_evaluations())  # the future-date gates too
    plain = duckdb.connect(str(demo_pipeline["warehouse"]), read_only=True)
    shifted = duckdb.connect(str(shifted_run["warehouse"]), read_only=True)
    as_of = shifted.execute("SELECT as_of, basis FROM staging.as_of").fetchone()
    assert as_of[0].year == plain.execute("SELECT max(as_of) FROM staging.as_of").fetchone()[0].year + YEARS
    assert as_of[1] == "the latest event in the data"
    assert shifted.execute("SELECT count(*) FROM marts.patient_profiles").fetchone()[0] == DEMO_PATIENTS
    assert analysis_differences(plain, shifted, YEARS) == []
    plain.close()
    shifted.close()


def test_a_run_that_quarantines_most_patients_fails_and_leaves_the_marts_alone(shifted_run, tmp_path):
    """The shifted export judged as of its unshifted date: nearly every birth date lies after it."""
    warehouse = tmp_path / "warehouse.duckdb"
    shutil.copy(shifted_run["warehouse"], warehouse)
    con = duckdb.connect(str(warehouse), read_only=True)
    profiles_before = con.execute("SELECT * FROM marts.patient_profiles ORDER BY patient_key").fetchall()
    con.close()

    result = _materialize(tmp_path, shifted_run["source"], warehouse, "*", as_of="2026-06-30")

    assert not result.success
    (verdict,) = [c for c in result.get_asset_check_evaluations()
                  if c.check_name == "check_quarantine_share" and c.asset_key == dg.AssetKey(["staging", "patients"])]
    assert not verdict.passed
    message = verdict.description
    assert message.startswith("patients: ") and f" of {DEMO_PATIENTS + 3:,} rows (" in message  # 3 planted bad rows
    assert "more than the 50% allowed (MEDMKT_MAX_QUARANTINE_SHARE)" in message
    assert "birth_date is in the future (after the as-of time)" in message
    assert "dates after the as-of time 2026-06-30 23:59:59.999999 (MEDMKT_AS_OF)" in message
    assert "MRN" not in message  # reasons and counts, never a patient's data
    failed = {e.step_key for e in result.all_events if e.is_step_failure}
    assert "staging__patients_check_quarantine_share" in failed
    assert not any(e.asset_key == dg.AssetKey(["marts", "patient_profiles"])
                   for e in result.get_asset_materialization_events())
    con = duckdb.connect(str(warehouse), read_only=True)
    assert con.execute("SELECT * FROM marts.patient_profiles ORDER BY patient_key").fetchall() == profiles_before
    assert con.execute("SELECT count(*) FROM quarantine.patients").fetchone()[0] >= DEMO_PATIENTS * 0.9
    con.close()
    # `make run` repeats the verdict below the run log
    assert lost_tables(replace(Settings.from_env(), warehouse=warehouse)) == [message]
