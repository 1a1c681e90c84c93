"""The MLflow links medmkt writes, opened as a reviewer opens them: the MLflow UI `make dev` starts
(same command, same environment) on a free port, the run link of a Dagster materialization and an
experiment's runs link in headless Chromium. Each must land on the run or the runs table in
Model training mode, never on MLflow 3's GenAI overview (traces, token usage).

Runs when Chromium (Debian's `chromium`) and Playwright are installed (`.ci/run` installs both);
skipped otherwise, with the reason.
"""
import os
import shutil
import subprocess
from pathlib import Path

import dagster as dg
import mlflow
import pytest

from medmkt_assets.defs.resources import MlflowTracker
from medmkt_assets_tests.servers import free_port, wait_http

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
playwright = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
pytestmark = [pytest.mark.ui, pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")]
ARTIFACTS = Path(os.environ.get("MEDMKT_TEST_ARTIFACTS", Path(__file__).resolve().parents[1] / "data" / "test-artifacts"))
GENAI_OVERVIEW = ("Token Usage", "Tool calls", "Detect Issues")


@pytest.fixture
def mlflow_ui(tmp_path, monkeypatch):
    """A store with one medmkt run logged through the tracker resource, served by `make dev`'s MLflow UI."""
    from medmkt_assets.cli import dev_commands, mlflow_ui_env
    from medmkt_assets.definitions import build_resources
    from medmkt_assets.settings import Settings

    port = free_port()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow' / 'mlflow.db'}")
    monkeypatch.setenv("MLFLOW_PORT", str(port))
    monkeypatch.delenv("MEDMKT_MLFLOW_UI", raising=False)
    monkeypatch.setenv("MEDMKT_WAREHOUSE", str(tmp_path / "warehouse.duckdb"))
    settings = Settings.from_env()
    tracker = build_resources(settings)["tracker"]

    @dg.asset(key=["marts", "toy_scores"])
    def toy_scores(context: dg.AssetExecutionContext, mlflow_tracker: MlflowTracker) -> dg.MaterializeResult:
        with mlflow_tracker.start_run(context, "medmkt-propensity", "C007 · logistic_regression",
                                      tags={"champion": "true"}) as run:
            mlflow.log_metric("auc", 0.71)
            return dg.MaterializeResult(metadata={"mlflow_run": dg.MetadataValue.url(mlflow_tracker.run_url(run))})

    result = dg.materialize([toy_scores], resources={"mlflow_tracker": tracker})
    run_link = result.asset_materializations_for_node("marts__toy_scores")[0].metadata["mlflow_run"].url
    log = (tmp_path / "mlflow_ui.log").open("w")
    process = subprocess.Popen(dev_commands(settings)["mlflow"], env=mlflow_ui_env(), stdout=log,
                               stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_http(f"{settings.mlflow_ui}/health", 180)
        yield settings, run_link
    finally:
        os.killpg(process.pid, 15)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, 9)
        log.close()


def _open(page, url: str, expected: str, shot: str) -> str:
    page.goto(url, wait_until="load", timeout=120_000)
    page.get_by_text(expected, exact=True).first.wait_for(timeout=90_000)
    page.wait_for_timeout(1500)  # let the page settle (a redirect to another mode would happen by now)
    page.screenshot(path=str(ARTIFACTS / shot), full_page=True)
    return page.inner_text("body")


def test_run_and_experiment_links_open_on_the_runs_in_model_training_mode(mlflow_ui):
    from medmkt_assets.cli import experiment_links

    settings, run_link = mlflow_ui
    assert run_link.startswith(settings.mlflow_ui) and run_link.endswith("?workflowType=machine_learning")
    (line,) = experiment_links(settings)  # what `make dev` prints
    experiment_link = line.split(": ", 1)[1]
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1600, "height": 1000})
        runs = _open(page, experiment_link, "C007 · logistic_regression", "mlflow-experiment-runs.png")
        assert "Model registry" in runs  # the Model training sidebar
        assert not [t for t in GENAI_OVERVIEW if t in runs], runs[:500]
        run = _open(page, run_link, "C007 · logistic_regression", "mlflow-run.png")
        assert "Model metrics" in run and "auc" in run
        assert "fitted by the Dagster asset marts/toy_scores" in run  # the run's description
        assert not [t for t in GENAI_OVERVIEW if t in run], run[:500]
        assert "workflowType=machine_learning" in page.url
        browser.close()
