"""What Dagster shows of the published tables is true: every staging, features and marts
materialization carries the written table's column schema (staging also its lineage to raw), and
every mart with a check is a materialized asset whose check runs in a full run."""
from __future__ import annotations

import dagster as dg
import duckdb

from medmkt_assets.definitions import build_definitions
from medmkt_assets.lib.ops.table_docs import DOCUMENTED_SCHEMAS
from medmkt_assets.settings import Settings
from medmkt_assets_tests.conftest import make_resources, materialize_all, write_tiny_source

PROFILES = (dg.AssetSelection.groups("ingest", "staging")
            | dg.AssetSelection.assets(["features", "patient_features"], ["marts", "patient_profiles"]).upstream())


def _schemas(result: dg.ExecuteInProcessResult) -> dict[str, dict]:
    """asset key -> its materialization's metadata, for the documented schemas."""
    found = {}
    for event in result.get_asset_materialization_events():
        key = event.asset_key
        if key.path[0] in DOCUMENTED_SCHEMAS:
            found[key.to_user_string()] = event.materialization.metadata
    return found


def _assert_schemas_match_the_warehouse(found: dict[str, dict], warehouse) -> None:
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        for key, metadata in found.items():
            assert "dagster/column_schema" in metadata, key
            shown = [(c.name, c.type) for c in metadata["dagster/column_schema"].schema.columns]
            written = [(r[0], r[1]) for r in con.execute(f"DESCRIBE {key.replace('/', '.')}").fetchall()]
            assert shown == written, key
    finally:
        con.close()


def test_staging_and_feature_materializations_carry_schema_and_lineage(workdir, pseudonym_env):
    write_tiny_source(workdir["source"])
    result = materialize_all(build_definitions(Settings.from_env()),
                             make_resources(workdir["source"], workdir["warehouse"], workdir["mlflow"]),
                             PROFILES, checks=False)
    assert result.success
    found = _schemas(result)
    assert {"staging/patients", "staging/orders", "marts/patient_profiles", "features/patient_features"} <= set(found)
    _assert_schemas_match_the_warehouse(found, workdir["warehouse"])
    lineage = found["staging/orders"]["dagster/column_lineage"].column_lineage.deps_by_column
    assert lineage["patient_key"] == [dg.TableColumnDep(asset_key=dg.AssetKey(["raw", "orders"]),
                                                        column_name="patient_id")]
    assert lineage["quantity"][0].column_name == "quantity"


def test_every_published_table_of_a_full_run_carries_its_schema_and_checks_ran(demo_pipeline):
    result = demo_pipeline["result"]
    found = _schemas(result)
    graph = build_definitions(Settings.from_env()).get_repository_def().asset_graph
    expected = {k.to_user_string() for k in graph.materializable_asset_keys if k.path[0] in DOCUMENTED_SCHEMAS}
    assert expected <= set(found), expected - set(found)
    _assert_schemas_match_the_warehouse(found, demo_pipeline["warehouse"])
    notes = {c.name: c.description for c in found["marts/campaign_effects"]["dagster/column_schema"].schema.columns}
    assert "implausibly_high" in notes["roi_flag"]
    # the blocking small-cell check of marts.audience_exclusions ran on its materialization, and passed
    evaluations = {(e.asset_key.to_user_string(), e.check_name): e.passed for e in result.get_asset_check_evaluations()}
    assert evaluations[("marts/audience_exclusions", "small_cells_hidden")] is True
    assert all(evaluations[(f"marts/{m}", "small_cells_hidden")] for m in (
        "segment_summary", "campaign_effects", "campaign_effects_by_group", "demand_trends"))
