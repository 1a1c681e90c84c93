"""The MLflow resource: one run per fit, tagged with the Dagster run and asset, linked in metadata."""

import dagster as dg
import mlflow
from mlflow.tracking import MlflowClient

from medmkt_assets.defs.resources import MlflowTracker
from medmkt_assets.lib.tracking import artifact_root, run_url, sqlite_path


def test_tracker_tags_runs_and_links_them(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow' / 'mlflow.db'}"

    @dg.asset(key=["features", "toy_model"])
    def toy_model(context: dg.AssetExecutionContext, mlflow_tracker: MlflowTracker) -> dg.MaterializeResult:
        with mlflow_tracker.start_run(context, experiment="medmkt-test", run_name="toy") as run:
            mlflow.log_metric("auc", 0.75)
            url = mlflow_tracker.run_url(run)
        return dg.MaterializeResult(metadata={"mlflow_run": dg.MetadataValue.url(url)})

    result = dg.materialize([toy_model], resources={
        "mlflow_tracker": MlflowTracker(tracking_uri=uri, ui_url="http://mlflow.local:5000/")})
    assert result.success
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("medmkt-test")
    assert experiment.artifact_location == f"{artifact_root(uri)}/medmkt-test"
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.data.metrics == {"auc": 0.75}
    assert run.data.tags["dagster.run_id"] == result.run_id
    assert run.data.tags["dagster.asset_key"] == "features/toy_model"
    assert run.data.tags["data_snapshot"] == "unknown"  # no source inventory in this run
    materialization = result.asset_materializations_for_node("features__toy_model")[0]
    assert materialization.metadata["mlflow_run"].url == (
        f"http://mlflow.local:5000/#/experiments/{experiment.experiment_id}/runs/{run.info.run_id}")


def test_runs_carry_the_data_snapshot_of_the_source_inventory(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"

    @dg.asset(key=["ops", "source_files"])
    def inventory() -> dg.MaterializeResult:
        return dg.MaterializeResult(metadata={"data_snapshot": "0123456789abcdef"})

    @dg.asset(key=["features", "toy_model"], deps=[inventory])
    def toy_model(context: dg.AssetExecutionContext, mlflow_tracker: MlflowTracker) -> None:
        with mlflow_tracker.start_run(context, experiment="medmkt-test", run_name="toy"):
            mlflow.log_metric("auc", 0.5)

    assert dg.materialize([inventory, toy_model], resources={"mlflow_tracker": MlflowTracker(tracking_uri=uri)}).success
    client = MlflowClient(uri)
    (run,) = client.search_runs([client.get_experiment_by_name("medmkt-test").experiment_id])
    assert run.data.tags["data_snapshot"] == "0123456789abcdef"


def test_uri_helpers():
    assert str(sqlite_path("sqlite:///data/mlflow/mlflow.db")) == "data/mlflow/mlflow.db"
    assert sqlite_path("http://host:5000") is None and artifact_root("http://host:5000") is None
    assert run_url("http://x/", "1", "abc") == "http://x/#/experiments/1/runs/abc"
