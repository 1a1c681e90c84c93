"""The whole graph on a small generated source: contract shapes, row accounting, privacy."""
from __future__ import annotations

import json

import duckdb
import pytest

from medmkt_assets.lib.ops.contract_check import privacy_findings, shape_findings
from medmkt_assets.lib.sources.schema import SOURCE_TABLES
from medmkt_assets_tests.conftest import row_accounting


@pytest.fixture(scope="module")
def con(demo_pipeline):
    connection = duckdb.connect(str(demo_pipeline["warehouse"]), read_only=True)
    yield connection
    connection.close()


def test_every_asset_and_check_succeeds(demo_pipeline):
    result = demo_pipeline["result"]
    failed = [e.step_key for e in result.all_events if e.is_step_failure]
    assert result.success, failed
    checks = result.get_asset_check_evaluations()
    assert checks and all(c.passed for c in checks), [c.check_name for c in checks if not c.passed]


def test_contract_tables_have_their_columns_and_coverage(con):
    assert shape_findings(con) == []


def test_no_direct_identifier_outside_private_schemas(con):
    assert privacy_findings(con) == []


def test_raw_rows_equal_staged_plus_quarantined(con):
    for table in SOURCE_TABLES:
        raw, accounted = row_accounting(con, table)
        assert raw == accounted, table


def test_every_planted_bad_row_is_quarantined_with_a_reason(con, demo_pipeline):
    planted = json.loads((demo_pipeline["truth"] / "bad_rows.json").read_text())
    for table, rows in planted.items():
        reasons = con.execute(f"SELECT _reason, _source_file, _source_row FROM quarantine.{table}").fetchall()
        assert len(reasons) == len(rows), table
        assert all(r[0] and r[1] and r[2] for r in reasons), table


def test_profiles_cover_every_staged_patient(con):
    staged = con.execute("SELECT count(*) FROM staging.patients").fetchone()[0]
    assert con.execute("SELECT count(*) FROM marts.patient_profiles").fetchone()[0] == staged == 3000
