"""MLflow plumbing that needs no Dagster: backend folders, experiments, run links."""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import ContextManager, Protocol

import mlflow
import mlflow.pyfunc
import mlflow.sklearn
import numpy as np
import pandas as pd
from mlflow.tracking import MlflowClient


def sqlite_path(tracking_uri: str) -> Path | None:
    """The database file behind a sqlite:/// URI (None for other backends)."""
    prefix = "sqlite:///"
    return Path(tracking_uri[len(prefix):]) if tracking_uri.startswith(prefix) else None


def artifact_root(tracking_uri: str) -> str | None:
    """Artifacts live beside a SQLite backend, so one folder holds the whole store."""
    db = sqlite_path(tracking_uri)
    return (db.parent / "artifacts").resolve().as_uri() if db else None


def prepare_backend(tracking_uri: str) -> None:
    """Create the folder of a SQLite backend and point mlflow at it."""
    db = sqlite_path(tracking_uri)
    if db is not None:
        db.parent.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(tracking_uri)


# What a reviewer finds in each experiment (shown as its description in the MLflow UI).
EXPERIMENT_DESCRIPTIONS = {
    "medmkt-segmentation": "Patient segments: K-means and micro-cluster Ward compared on silhouette, elbow and "
                           "stability; the champion labels every profiled patient (marts.patient_segments).",
    "medmkt-association-rules": "FP-growth rules over baskets and over patients' histories with support, confidence, "
                                "lift and information measures (marts.association_rules).",
    "medmkt-recommenders": "Every recommender candidate on a chronological holdout and a stratified split; the "
                           "champion by holdout NDCG@10 serves marts.recommendations and is registered.",
    "medmkt-propensity": "P(convert | contacted) per planned campaign and disease-risk models, one run per target "
                         "and model family; the champion per target is registered.",
    "medmkt-uplift": "T- and X-learner uplift per planned campaign, each with its out-of-fold Qini on past treated "
                     "and control arms; the champion (tag) scores the audience.",
}
# The experiment's kind as the MLflow 3 UI's "Experiment type" selector shows it. The UI's mode
# (GenAI or Model training) is not read from it: MLflow 3.17 starts in GenAI mode (traces, token
# usage) unless the URL says `workflowType=machine_learning` or the reader switched modes before,
# so every link medmkt writes carries that parameter (run_url, experiment_url).
EXPERIMENT_KIND = {"mlflow.experimentKind": "custom_model_development"}
NOTE = "mlflow.note.content"  # the description the MLflow UI shows for an experiment or a run
MODEL_TRAINING = "workflowType=machine_learning"
DEFAULT_EXPERIMENT_NOTE = ("MLflow's default experiment. medmkt logs nothing here: its runs are in the medmkt-* "
                           "experiments (" + ", ".join(EXPERIMENT_DESCRIPTIONS) + ").")


def ensure_experiment(tracking_uri: str, name: str) -> str:
    """The experiment's id, creating it (with artifacts beside the backend) if needed; its kind and
    description are set every time (experiments from older runs get them too)."""
    prepare_backend(tracking_uri)
    client = MlflowClient(tracking_uri)
    experiment = client.get_experiment_by_name(name)
    if experiment is None:
        root = artifact_root(tracking_uri)
        experiment_id = client.create_experiment(name, artifact_location=f"{root}/{name}" if root else None)
    else:
        experiment_id = experiment.experiment_id
    _tag_experiment(client, experiment_id, experiment.tags if experiment is not None else {},
                    {**EXPERIMENT_KIND, NOTE: EXPERIMENT_DESCRIPTIONS.get(name, "medmkt model runs")})
    _describe_default_experiment(client)
    return experiment_id


def _tag_experiment(client: MlflowClient, experiment_id: str, current: dict, tags: dict[str, str]) -> None:
    for key, value in tags.items():
        if current.get(key) != value:
            client.set_experiment_tag(experiment_id, key, value)


def _describe_default_experiment(client: MlflowClient) -> None:
    """MLflow creates "Default" (id 0) in every store; say that medmkt's runs are elsewhere."""
    default = client.get_experiment("0") if client.get_experiment_by_name("Default") else None
    if default is not None and default.lifecycle_stage == "active":
        _tag_experiment(client, "0", default.tags, {**EXPERIMENT_KIND, NOTE: DEFAULT_EXPERIMENT_NOTE})


def run_note(experiment: str, run_name: str, asset: str, dagster_run_id: str, snapshot: str,
             tags: dict[str, str]) -> str:
    """A run's description: what was fitted, by which Dagster asset and run, on which data, and
    whether it is the champion (tags) or what the experiment is for."""
    if NOTE in tags:
        return tags[NOTE]
    role = {"true": " It is the champion of its comparison.",
            "false": " A candidate, not the champion."}.get(tags.get("champion", ""), "")
    return (f"{run_name}: fitted by the Dagster asset {asset} (Dagster run {dagster_run_id}) on the data snapshot "
            f"{snapshot}.{role} {EXPERIMENT_DESCRIPTIONS.get(experiment, '')}").strip()


def run_url(ui_url: str, experiment_id: str, run_id: str) -> str:
    """The run's page, opened in the UI's model-training mode."""
    return f"{ui_url.rstrip('/')}/#/experiments/{experiment_id}/runs/{run_id}?{MODEL_TRAINING}"


def experiment_url(ui_url: str, experiment_id: str) -> str:
    """The experiment's runs table, opened in the UI's model-training mode."""
    return f"{ui_url.rstrip('/')}/#/experiments/{experiment_id}/runs?{MODEL_TRAINING}"


def promote_champion(tracking_uri: str, model_name: str, version: str | int, alias: str = "champion") -> None:
    """Point the registry alias at a model version (the reviewer-facing 'champion')."""
    MlflowClient(tracking_uri).set_registered_model_alias(model_name, alias, str(version))


def log_figure(figure, artifact_file: str) -> None:
    """Log a matplotlib figure as PNG into the active run and free it."""
    import matplotlib.pyplot as plt

    mlflow.log_figure(figure, artifact_file)
    plt.close(figure)


def frame_digest(frame: pd.DataFrame) -> str:
    """A short digest of every row of a frame (what `log_dataset` names the rows by)."""
    import hashlib

    return hashlib.sha256(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes()).hexdigest()[:8]


def log_dataset(frame: pd.DataFrame, name: str, context: str = "training", digest: str | None = None) -> None:
    """Name the rows a run learned from (the MLflow UI's Dataset column): schema, row count and a
    digest of every row, never the rows themselves. The schema is read from the first rows:
    MLflow's own inference checks every cell for missing values (20 s for five 30,000-row targets).
    Pass `digest` (`frame_digest(frame)`) when several runs log the same rows: hashing millions
    of rows once is enough."""
    import mlflow.data
    from mlflow.entities import Dataset, DatasetInput, InputTag
    from mlflow.utils.mlflow_tags import MLFLOW_DATASET_CONTEXT

    digest = digest or frame_digest(frame)
    head = mlflow.data.from_pandas(frame.head(1000), name=name, digest=digest)._to_mlflow_entity()
    entity = Dataset(name=name, digest=digest, source_type=head.source_type, source=head.source, schema=head.schema,
                     profile=json.dumps({"num_rows": len(frame), "num_elements": int(frame.size)}))
    MlflowClient().log_inputs(mlflow.active_run().info.run_id, datasets=[
        DatasetInput(entity, tags=[InputTag(MLFLOW_DATASET_CONTEXT, context)])])


def log_frame(frame, artifact_file: str) -> None:
    """Log a small table as a CSV artifact of the active run."""
    mlflow.log_text(frame.to_csv(index=False), artifact_file)


def describe_version(registered_name: str, version: str, what: str, why: str) -> None:
    """Registry descriptions a reviewer reads: what the model is, and why this version is the champion."""
    client = MlflowClient(mlflow.get_tracking_uri())
    if what:
        client.update_registered_model(registered_name, description=what)
    if why:
        client.update_model_version(registered_name, version, description=why)


def log_model(model, example, registered_name: str, promote: bool = True, alias: str = "champion",
              what: str = "", why: str = "", predict_fn: str = "predict") -> str:
    """Log a scikit-learn compatible model with its signature, register it, optionally alias it.

    `predict_fn` is what `mlflow.pyfunc.load_model(...).predict` calls: "predict_proba" for a
    classifier whose published score is a probability (the served answer is then the
    warehouse's). Requirements are given explicitly so logging does not re-import the
    environment. The model is stored with skops (MLflow's safe format); our own classes in it
    are declared trusted, and only those. Returns the registered version.
    """
    import sklearn
    import skops.io
    from mlflow.models import infer_signature

    trusted = [t for t in skops.io.get_untrusted_types(data=skops.io.dumps(model))
               if t.startswith(("medmkt_assets.", "numpy.", "scipy.", "sklearn."))]

    signature = infer_signature(example, getattr(model, predict_fn)(example))
    info = mlflow.sklearn.log_model(
        model, name="model", signature=signature, registered_model_name=registered_name,
        pyfunc_predict_fn=predict_fn,
        pip_requirements=[f"scikit-learn=={sklearn.__version__}", f"mlflow=={mlflow.__version__}"],
        skops_trusted_types=trusted,
    )
    version = str(info.registered_model_version)
    describe_version(registered_name, version, what, why)
    if promote:
        promote_champion(mlflow.get_tracking_uri(), registered_name, version, alias)
    return version


HISTORY_INPUT_NOTE = (" Fitted on item statistics (Spark): no patient travels with it, so each input row is one "
                      "order line of the patient (patient_key, product_id, quantity, ordered_at, segment_label; "
                      "a patient without orders: one row without product_id).")
HISTORY_COLUMNS = ["patient_key", "product_id", "quantity", "ordered_at", "segment_label"]


class RecommenderModel(mlflow.pyfunc.PythonModel):
    """MLflow wrapper: rows with `patient_key` in, each patient's top-k list out (k 10, or the
    `k` parameter). The model was fitted on integer codes that change every run: the codes of
    this run's patients travel with it, so a served patient is the patient the model knew; a
    patient it never saw gets the popular products. A recommender fitted on item statistics
    (`codes` None: Spark, where no patient-sized table reaches the driver) holds no patient and
    takes each patient's order lines instead (HISTORY_COLUMNS), served as the warehouse served
    them (ServedRecommender.serve_rows). MLflow serializes the wrapper with the model inside
    (python_model serialization), nothing is pickled by hand."""

    def __init__(self, model, codes: pd.Series | None):
        self.model, self.codes = model, codes

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        k = int((params or {}).get("k", 10))
        if self.codes is None:
            return self._from_histories(model_input, k)
        keys = model_input["patient_key"].astype(str).reset_index(drop=True)
        codes = self.codes.reindex(keys).to_numpy(dtype="float64")
        # patients the model never saw get distinct negative codes (never a real one): unknown, popular items
        unknown = np.isnan(codes)
        codes[unknown] = -1 - np.flatnonzero(unknown)
        codes = codes.astype("int64")
        recs = self.model.recommend(pd.Index(codes), k=k)
        recs["patient_key"] = recs.user_id.map(dict(zip(codes, keys)))
        columns = ["patient_key", "rank", "item_id", "score", *(["model"] if "model" in recs else [])]
        return recs[columns].rename(columns={"item_id": "product_id"})

    def _from_histories(self, rows: pd.DataFrame, k: int) -> pd.DataFrame:
        codes = pd.Series(self.model.product_ids.index, index=self.model.product_ids.to_numpy())
        users, keys = pd.factorize(rows["patient_key"].astype(str))
        lists = self.model.serve_rows(pd.DataFrame({
            "user_id": users, "item_id": codes.reindex(rows["product_id"].astype(str)).to_numpy(),
            "weight": pd.to_numeric(rows["quantity"]).to_numpy(dtype=float),
            "timestamp": pd.to_datetime(rows["ordered_at"]).to_numpy(),
            "segment_label": rows["segment_label"].to_numpy(dtype=object)}), k)
        return pd.DataFrame({"patient_key": keys[lists.user_id.to_numpy()], "rank": lists["rank"].to_numpy(),
                             "product_id": lists.product_id.map(self.model.product_ids).to_numpy(),
                             "score": lists.score.to_numpy(), "model": lists.model.to_numpy()})


class _WithoutPickleNotice(logging.Filter):
    """MLflow warns, for any python_model object, that CloudPickle serialization can run code when the
    model is loaded. The object here is medmkt's own RecommenderModel, loaded only from this store by
    whoever runs medmkt (models-from-code would need the fitted recommender as a separate artifact to
    the same effect), so that one notice is dropped from the run log; every other MLflow message stays."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "serialized using CloudPickle" not in record.getMessage()


def log_recommender(model, registered_name: str, users: pd.DataFrame | None, promote: bool = True,
                    alias: str = "champion", what: str = "", why: str = "") -> str:
    """Log a fitted recommender (with `users`: the run's user_id code of each patient_key; None for
    one fitted on item statistics, which takes order lines) as a pyfunc model, register and alias it."""
    from mlflow.models import infer_signature

    python_model = RecommenderModel(model, users.set_index("patient_key").user_id if users is not None else None)
    signature = None
    if users is None:  # order lines in: one patient who bought the first product
        example = pd.DataFrame({"patient_key": ["example"], "product_id": [str(model.product_ids.iloc[0])],
                                "quantity": [1.0], "ordered_at": [pd.Timestamp("2025-01-01")],
                                "segment_label": ["example"]})
        signature = infer_signature(example, python_model.predict(None, example), params={"k": 10})
    elif len(users):
        example = users[["patient_key"]].head(1)
        signature = infer_signature(example, python_model.predict(None, example), params={"k": 10})
    quiet = _WithoutPickleNotice()
    logging.getLogger("mlflow.pyfunc").addFilter(quiet)
    try:
        info = mlflow.pyfunc.log_model(name="model", python_model=python_model, signature=signature,
                                       registered_model_name=registered_name,
                                       pip_requirements=[f"mlflow=={mlflow.__version__}", "pandas", "pyarrow"])
    finally:
        logging.getLogger("mlflow.pyfunc").removeFilter(quiet)
    version = str(info.registered_model_version)
    describe_version(registered_name, version, what, why)
    if promote:
        promote_champion(mlflow.get_tracking_uri(), registered_name, version, alias)
    return version


class RunTracker(Protocol):
    """Where model runs go. The Dagster resource's `for_asset(context)` gives one that tags each run
    with the Dagster run and asset that made it (defs.resources.MlflowTracker)."""

    def start_run(self, experiment: str, run_name: str,
                  tags: dict[str, str] | None = None) -> ContextManager[mlflow.ActiveRun]: ...

    def resume(self, run: mlflow.ActiveRun | str) -> ContextManager[mlflow.ActiveRun]: ...

    def run_url(self, run: mlflow.ActiveRun) -> str: ...
