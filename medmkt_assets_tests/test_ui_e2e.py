"""The UI as a person uses it: `dagster dev` on a free port, the asset graph in headless Chromium,
two runs launched at once through the GraphQL API, watched until both succeed. Screenshots are kept.

Runs when Chromium (Debian's `chromium`) and Playwright are installed (`.ci/run` installs
both); skipped otherwise, with the reason.
"""
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from medmkt_assets_tests.conftest import TEST_KEY, write_tiny_source
from medmkt_assets_tests.servers import free_port, wait_http

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
playwright = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
pytestmark = [pytest.mark.ui, pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")]
ARTIFACTS = Path(os.environ.get("MEDMKT_TEST_ARTIFACTS", Path(__file__).resolve().parents[1] / "data" / "test-artifacts"))


@pytest.fixture
def dagster_dev(tmp_path):
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(Path(__file__).resolve().parents[1] / "dagster.yaml", home / "dagster.yaml")
    source = write_tiny_source(tmp_path / "source")
    port = free_port()
    env = {**os.environ, "DAGSTER_HOME": str(home), "MEDMKT_SOURCE_DIR": str(source),
           "MEDMKT_WAREHOUSE": str(tmp_path / "warehouse.duckdb"), "MEDMKT_PSEUDONYM_KEY": TEST_KEY,
           "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}",
           "MEDMKT_INCOMING_DIR": str(tmp_path / "incoming"), "MEDMKT_EXPORT_DIR": str(tmp_path / "exports"),
           "MEDMKT_QUALITY_DIR": str(tmp_path / "quality"), "MEDMKT_ALERT_DIR": str(tmp_path / "alerts"),
           # the tiny source is nearly half bad rows by design (6 of its 11 order lines): not a lost export
           "MEDMKT_MAX_QUARANTINE_SHARE": "0.75"}
    log = (tmp_path / "dagster_dev.log").open("w")
    process = subprocess.Popen([str(Path(sys.executable).parent / "dagster"), "dev", "-m", "medmkt_assets.definitions",
                                "-h", "127.0.0.1", "-p", str(port)], env=env, stdout=log, stderr=subprocess.STDOUT,
                               start_new_session=True)
    try:
        wait_http(f"http://127.0.0.1:{port}/server_info", 180)
        yield port
    finally:
        os.killpg(process.pid, 15)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, 9)
        log.close()


def test_asset_graph_checks_and_a_launched_run(dagster_dev):
    from dagster_graphql import DagsterGraphQLClient

    port = dagster_dev
    base = f"http://127.0.0.1:{port}"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1600, "height": 1000})
        page.goto(f"{base}/asset-groups", wait_until="networkidle", timeout=120_000)
        for group in ("ingest", "staging", "segments", "campaigns"):
            page.get_by_text(group, exact=True).first.wait_for(timeout=60_000)
        # no first-visit community dialog on this fresh instance (nux: enabled: false)
        assert page.get_by_role("button", name="Skip").count() == 0
        page.screenshot(path=str(ARTIFACTS / "ui-asset-graph.png"), full_page=True)
        page.goto(f"{base}/assets/staging/orders?view=checks", wait_until="networkidle", timeout=120_000)
        page.get_by_text("check_row_accounting").first.wait_for(timeout=60_000)
        page.get_by_text("order_line_unique").first.wait_for(timeout=60_000)
        page.screenshot(path=str(ARTIFACTS / "ui-checks.png"), full_page=True)
        browser.close()

    # Two runs launched at once (as a sensor run and a manual launch would be) both write the
    # one-writer DuckDB file: the pool limit in dagster.yaml makes them take turns, not fail.
    client = DagsterGraphQLClient("127.0.0.1", port_number=port)
    run_ids = [client.submit_job_execution("ingestion", repository_location_name="medmkt.definitions")
               for _ in range(2)]
    deadline = time.time() + 420
    statuses = {}
    while time.time() < deadline:
        statuses = {run_id: client.get_run_status(run_id).value for run_id in run_ids}
        if all(s in ("SUCCESS", "FAILURE", "CANCELED") for s in statuses.values()):
            break
        time.sleep(2)
    assert list(statuses.values()) == ["SUCCESS", "SUCCESS"]
