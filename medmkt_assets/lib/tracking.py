"""MLflow plumbing that needs no Dagster: backend folders, experiments, run links."""
from __future__ import annotations

from pathlib import Path

import mlflow
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


def ensure_experiment(tracking_uri: str, name: str) -> str:
    """The experiment's id, creating it (with artifacts beside the backend) if needed."""
    prepare_backend(tracking_uri)
    client = MlflowClient(tracking_uri)
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        return experiment.experiment_id
    root = artifact_root(tracking_uri)
    location = f"{root}/{name}" if root else None
    return client.create_experiment(name, artifact_location=location)


def run_url(ui_url: str, experiment_id: str, run_id: str) -> str:
    return f"{ui_url.rstrip('/')}/#/experiments/{experiment_id}/runs/{run_id}"


def promote_champion(tracking_uri: str, model_name: str, version: str | int, alias: str = "champion") -> None:
    """Point the registry alias at a model version (the reviewer-facing 'champion')."""
    MlflowClient(tracking_uri).set_registered_model_alias(model_name, alias, str(version))
