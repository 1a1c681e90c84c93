"""The MLflow resource: one run per fit, tagged with the Dagster run and asset, linked in metadata."""

import dagster as dg
import mlflow
from mlflow.tracking import MlflowClient

from medmkt_assets.defs.resources import MlflowTracker
from medmkt_assets.lib.tracking.mlflow_runs import artifact_root, experiment_url, run_url, sqlite_path


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
    # the UI opens it as a model-development experiment (not an empty GenAI traces page), described
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
    assert experiment.tags["mlflow.note.content"]
    # MLflow's own Default experiment says medmkt's runs are elsewhere
    assert "medmkt-segmentation" in client.get_experiment("0").tags["mlflow.note.content"]
    (run,) = client.search_runs([experiment.experiment_id])
    # every run has a description: what was fitted, by which asset and Dagster run
    note = run.data.tags["mlflow.note.content"]
    assert note.startswith("toy: fitted by the Dagster asset features/toy_model") and result.run_id in note
    assert run.data.metrics == {"auc": 0.75}
    assert run.data.tags["dagster.run_id"] == result.run_id
    assert run.data.tags["dagster.asset_key"] == "features/toy_model"
    assert run.data.tags["data_snapshot"] == "unknown"  # no source inventory in this run
    materialization = result.asset_materializations_for_node("features__toy_model")[0]
    assert materialization.metadata["mlflow_run"].url == (
        f"http://mlflow.local:5000/#/experiments/{experiment.experiment_id}/runs/{run.info.run_id}"
        "?workflowType=machine_learning")


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


def test_run_links_follow_the_mlflow_ui_address_set_where_the_run_executes(tmp_path, monkeypatch):
    from medmkt_assets.definitions import build_resources
    from medmkt_assets.settings import Settings

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.delenv("MEDMKT_MLFLOW_UI", raising=False)
    tracker = build_resources(Settings.from_env())["tracker"]  # the code location loads without the variable

    @dg.asset
    def toy_model(context: dg.AssetExecutionContext, mlflow_tracker: MlflowTracker) -> dg.MaterializeResult:
        with mlflow_tracker.start_run(context, experiment="medmkt-test", run_name="toy") as run:
            return dg.MaterializeResult(metadata={"mlflow_run": dg.MetadataValue.url(mlflow_tracker.run_url(run))})

    def link() -> str:
        result = dg.materialize([toy_model], resources={"mlflow_tracker": tracker})
        return result.asset_materializations_for_node("toy_model")[0].metadata["mlflow_run"].url

    assert link().startswith("http://127.0.0.1:5000/#/experiments/")  # the documented default
    monkeypatch.setenv("MEDMKT_MLFLOW_UI", "http://mlflow.elsewhere:5001")  # a UI started with another address
    assert link().startswith("http://mlflow.elsewhere:5001/#/experiments/")


def test_uri_helpers():
    assert str(sqlite_path("sqlite:///data/mlflow/mlflow.db")) == "data/mlflow/mlflow.db"
    assert sqlite_path("http://host:5000") is None and artifact_root("http://host:5000") is None
    assert run_url("http://x/", "1", "abc") == "http://x/#/experiments/1/runs/abc?workflowType=machine_learning"
    assert experiment_url("http://x", "1") == "http://x/#/experiments/1/runs?workflowType=machine_learning"


def test_make_dev_serves_each_ui_where_the_links_point(monkeypatch):
    from urllib.parse import urlparse

    from medmkt_assets.cli import dev_commands
    from medmkt_assets.definitions import build_resources
    from medmkt_assets.settings import Settings

    for name in ("MEDMKT_MLFLOW_UI", "MEDMKT_QUALITY_DOCS_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MLFLOW_PORT", "5123")
    monkeypatch.setenv("DAGSTER_PORT", "3123")
    settings = Settings.from_env()
    commands = dev_commands(settings)
    resources = build_resources(settings)
    assert commands["mlflow"][commands["mlflow"].index("--port") + 1] == "5123"
    assert resources["tracker"].ui == settings.mlflow_ui == "http://127.0.0.1:5123"  # the links' address
    assert commands["dagster"][-2:] == ["-p", "3123"]
    monkeypatch.setenv("MEDMKT_MLFLOW_UI", "http://127.0.0.1:5999")  # a full address wins, for both
    settings = Settings.from_env()
    assert dev_commands(settings)["mlflow"][dev_commands(settings)["mlflow"].index("--port") + 1] == "5999"
    assert build_resources(settings)["tracker"].ui == "http://127.0.0.1:5999"
    docs = dev_commands(settings)["docs"]
    assert docs[docs.index("http.server") + 1] == str(urlparse(settings.quality_docs_url).port)


def test_the_registered_recommender_serves_each_patient_their_own_list(tmp_path, capfd):
    """models:/…@champion loaded with pyfunc answers per patient_key, as the fitted model does."""
    import pandas as pd

    from medmkt_assets.lib.models.recommenders import ItemKNN
    from medmkt_assets.lib.tracking.mlflow_runs import (
        ensure_experiment,
        log_recommender,
    )

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    interactions = pd.DataFrame({"user_id": [1, 1, 2, 2, 3, 3, 4, 4], "item_id": list("abcdabcd"),
                                 "weight": 1.0, "timestamp": pd.Timestamp("2025-01-01")})
    model = ItemKNN("cosine").fit(interactions)
    users = pd.DataFrame({"user_id": [1, 2, 3, 4], "patient_key": ["k1", "k2", "k3", "k4"]})
    mlflow.set_tracking_uri(uri)
    with mlflow.start_run(experiment_id=ensure_experiment(uri, "medmkt-test")):
        log_recommender(model, "medmkt-test-recommender", users)
    logged = capfd.readouterr()  # MLflow's own handler writes to stderr
    assert "CloudPickle" not in logged.err + logged.out  # its generic notice about our own model class is dropped
    served = mlflow.pyfunc.load_model("models:/medmkt-test-recommender@champion").predict(
        pd.DataFrame({"patient_key": ["k2", "k1", "never-seen"]}))
    lists = served.groupby("patient_key").product_id.apply(list)
    direct = model.recommend(pd.Index([1, 2]), k=10).groupby("user_id").item_id.apply(list)
    assert lists["k1"] == direct[1] and lists["k2"] == direct[2]
    assert lists["k1"] != lists["k2"]                        # not one popularity list for everyone
    assert set(lists["k1"]).isdisjoint({"a", "b"})           # what k1 already bought is not offered again
    assert len(lists["never-seen"]) > 0                      # an unknown patient still gets products
    assert list(served.columns) == ["patient_key", "rank", "product_id", "score"]
    model_uri = "models:/medmkt-test-recommender@champion"
    two = mlflow.pyfunc.load_model(model_uri).predict(pd.DataFrame({"patient_key": ["k1"]}), params={"k": 1})
    assert two.product_id.tolist() == direct[1][:1]


def test_registered_versions_say_what_they_are_and_why_they_won(tmp_path):
    import numpy as np
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    from medmkt_assets.lib.tracking.mlflow_runs import ensure_experiment, log_model

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    X = pd.DataFrame({"a": np.arange(20.0)})
    model = LogisticRegression().fit(X, (X.a > 9).astype(int))
    mlflow.set_tracking_uri(uri)
    with mlflow.start_run(experiment_id=ensure_experiment(uri, "medmkt-test")):
        version = log_model(model, X.head(5), "medmkt-test-model", what="Toy model.", why="It won on AUC 1.0.")
    client = MlflowClient(uri)
    assert client.get_registered_model("medmkt-test-model").description == "Toy model."
    assert client.get_model_version("medmkt-test-model", version).description == "It won on AUC 1.0."


def test_a_logged_dataset_names_every_row_by_digest_never_by_value(tmp_path):
    import json

    import pandas as pd

    from medmkt_assets.lib.tracking.mlflow_runs import log_dataset

    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    frame = pd.DataFrame({"age_years": [35.0, 45.0] * 1500, "monetary": range(3000)})
    digests = []
    for changed in (frame, frame.assign(monetary=frame.monetary.where(frame.index != 2999, -1))):
        with mlflow.start_run() as run:
            log_dataset(changed, "C007 training rows")
        (given,) = MlflowClient().get_run(run.info.run_id).inputs.dataset_inputs
        assert given.dataset.name == "C007 training rows"
        assert json.loads(given.dataset.profile)["num_rows"] == 3000
        assert {c["name"] for c in json.loads(given.dataset.schema)["mlflow_colspec"]} == {"age_years", "monetary"}
        assert [(t.key, t.value) for t in given.tags] == [("mlflow.data.context", "training")]
        digests.append(given.dataset.digest)
    assert digests[0] != digests[1]  # the last row changed: so did the digest
