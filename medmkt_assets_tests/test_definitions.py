"""The production wiring (definitions.py, resources from the environment) is what Dagster loads."""
from __future__ import annotations

import dagster as dg

from medmkt_assets.definitions import build_definitions
from medmkt_assets.settings import Settings


def test_the_production_definitions_load_with_every_resource_bound(tmp_path, monkeypatch):
    monkeypatch.setenv("MEDMKT_WAREHOUSE", str(tmp_path / "warehouse.duckdb"))
    monkeypatch.setenv("MEDMKT_SOURCE_FORMAT", "fhir")
    defs = build_definitions(Settings.from_env())
    dg.Definitions.validate_loadable(defs)
    repository = defs.get_repository_def()
    assert repository.get_job("full_refresh") and repository.get_job("ingest_incoming_batch")
    assert defs.resources["sources"].source_format == "fhir"
    keys = {key.to_user_string() for key in repository.asset_graph.get_all_asset_keys()}
    assert {"ops/source_files", "raw/patients", "staging/orders", "marts/patient_profiles"} <= keys
    owners = {key.to_user_string(): spec.owners for key, spec in
              ((s.key, s) for a in defs.assets for s in a.specs)}
    assert all(owners.values()), [k for k, v in owners.items() if not v]
    assert owners["marts/recommendations"] == ["team:data-science"]
    # the marts' own checks: privacy failures block what reads the table, coverage gaps only report
    checks = {(spec.asset_key.to_user_string(), spec.name): spec.blocking
              for definition in defs.asset_checks for spec in definition.check_specs}
    for mart in ("segment_summary", "campaign_effects", "campaign_effects_by_group", "audience_exclusions",
                 "demand_trends"):
        assert checks[(f"marts/{mart}", "small_cells_hidden")] is True
    assert checks[("marts/audiences", "audience_patients_eligible")] is True
    # every checked mart is an asset some step materializes, and full_refresh runs its checks: a table
    # written on the side (marts.audience_exclusions once) showed as an external asset, "never materialized"
    graph = repository.asset_graph
    full_refresh = repository.get_job("full_refresh")
    job_checks = {(key.asset_key.to_user_string(), key.name)
                  for key in full_refresh.asset_layer.asset_graph.asset_check_keys}
    for asset_key, name in checks:
        assert not graph.get(dg.AssetKey.from_user_string(asset_key)).is_external, asset_key
        assert (asset_key, name) in job_checks, (asset_key, name)
    for mart in ("patient_segments", "recommendations", "propensity_scores"):
        assert checks[(f"marts/{mart}", "covers_every_profiled_patient")] is False
    # links are not fixed at load: the MLflow UI and Data Docs addresses are read where each run executes
    assert defs.resources["tracker"].ui_url == "" and defs.resources["quality"].docs_url == ""


def test_a_failed_step_does_not_leave_the_warehouse_file_open(tmp_path):
    """dagster-duckdb closes its connection only when the body succeeds; the Warehouse closes it always."""
    import duckdb
    import pytest
    from dagster_duckdb import DuckDBResource

    from medmkt_assets.defs.resources import Warehouse

    path = str(tmp_path / "w.duckdb")
    warehouse = Warehouse(engine=DuckDBResource(database=path, connection_config={"memory_limit": "1GB"}))
    with pytest.raises(RuntimeError):
        with warehouse.transaction() as con:
            con.execute("CREATE TABLE ops.t AS SELECT 1 AS x")
            raise RuntimeError("the step fails")
    reader = duckdb.connect(path, read_only=True)  # another configuration: refused while a connection is open
    assert reader.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = 't'").fetchone()[0] == 0
    reader.close()


def test_the_instance_settings_switch_off_telemetry_and_the_first_visit_dialog(tmp_path):
    """dagster.yaml (copied into DAGSTER_HOME by make dev / make run) and dagster_team.yaml: no
    community pop-up on a fresh instance, no telemetry; the one-writer pool."""
    import shutil
    from pathlib import Path

    import yaml

    root = Path(__file__).resolve().parents[1]
    team = yaml.safe_load((root / "dagster_team.yaml").read_text())  # its storage needs PostgreSQL to load
    assert team["nux"]["enabled"] is False and team["telemetry"]["enabled"] is False
    shutil.copy(root / "dagster.yaml", tmp_path / "dagster.yaml")
    with dg.DagsterInstance.from_config(str(tmp_path)) as instance:
        assert instance.nux_enabled is False
        assert instance.telemetry_enabled is False


def test_make_dev_drops_only_dagster_devs_unused_instance_file_line():
    import io

    from medmkt_assets.cli import UNUSED_INSTANCE_FILE_NOTICE, copy_lines_but

    source = io.StringIO("Serving dagster-webserver on http://127.0.0.1:3000\n"
                         "WARNING - Found a dagster instance configuration value (dagster.yaml) in the current folder, "
                         "but your DAGSTER_HOME environment variable is set to /x. The dagster.yaml file will not be "
                         "used to configure Dagster unless it is placed in the same folder as DAGSTER_HOME.\n"
                         "Launching Dagster services...\n")
    target = io.StringIO()
    copy_lines_but(source, target, UNUSED_INSTANCE_FILE_NOTICE)
    assert target.getvalue() == "Serving dagster-webserver on http://127.0.0.1:3000\nLaunching Dagster services...\n"
