"""Quality gates: SQL metrics with known answers, GX verdicts, Data Docs, drift, and blocking in Dagster."""
import re

import dagster as dg
import duckdb
import pytest
from dagster_duckdb import DuckDBResource

from medmkt_assets.defs.quality.checks import _suite_checks
from medmkt_assets.defs.resources import QualityDocs, Warehouse
from medmkt_assets.lib.ops.data_docs import remote_assets
from medmkt_assets.lib.ops.quality import (
    Check,
    data_docs_index,
    data_docs_root,
    ensure_baselines,
    measure,
    record_baselines,
    staged_checks,
    validate,
)


@pytest.fixture
def con(tmp_path):
    connection = duckdb.connect(str(tmp_path / "w.duckdb"))
    for schema in ("staging", "ops", "raw", "quarantine"):
        connection.execute(f"CREATE SCHEMA {schema}")
    connection.execute("CREATE TABLE raw.orders AS SELECT range AS r FROM range(5)")  # 4 staged + 1 quarantined
    connection.execute("CREATE TABLE quarantine.orders AS SELECT 'unknown product' AS _reason")
    connection.execute("CREATE TABLE staging.patients AS SELECT 'k1' AS patient_key")
    connection.execute("CREATE TABLE staging.products AS SELECT * FROM (VALUES ('A', 'x'), ('B', 'y')) t(product_id, category)")
    connection.execute("""CREATE TABLE staging.orders AS SELECT * FROM (VALUES
        ('O1', 1, 'k1', 'A', TIMESTAMP '2025-01-01', 1, 10.0, 'store'),
        ('O1', 1, 'k1', 'A', TIMESTAMP '2025-01-01', 1, 10.0, 'store'),
        ('O2', 1, 'k9', 'B', TIMESTAMP '2025-01-02', -1, -3.0, 'web'),
        ('O3', 1, 'k1', 'Z', TIMESTAMP '2999-01-01', 2, 5.0, 'app')
    ) t(order_id, line_no, patient_key, product_id, ordered_at, quantity, unit_price, channel)""")
    connection.execute("CREATE TABLE staging.as_of AS SELECT TIMESTAMP '2025-01-02' AS as_of")
    ensure_baselines(connection)
    return connection


def test_order_metrics_count_exactly_the_bad_rows(con):
    observed = measure(con, staged_checks("orders"))
    assert observed["order_line_unique"] == 1
    assert observed["quantity_positive"] == 1
    assert observed["unit_price_not_negative"] == 1
    assert observed["ordered_at_not_in_future"] == 1
    assert observed["channel_accepted"] == 1
    assert observed["patient_exists"] == 1
    assert observed["product_exists"] == 1
    assert observed["category_mix_drift"] == 0  # no previous run yet
    assert observed["quarantined_share"] == pytest.approx(0.2)
    assert observed["rows_present"] == 4
    assert observed["row_count_change"] == 0


def test_drift_and_row_count_change_against_the_previous_run(con):
    record_baselines(con, "staging.orders", "run-1")
    con.execute("INSERT INTO staging.orders SELECT 'O9', i, 'k1', 'B', TIMESTAMP '2025-02-01', 1, 1.0, 'store' "
                "FROM range(1, 21) r(i)")
    observed = measure(con, staged_checks("orders"), "run-2")
    # category mix went from x 2/3, y 1/3 (product Z is unknown) to x 2/23, y 21/23
    assert observed["category_mix_drift"] == pytest.approx(2 / 3 - 2 / 23)
    assert observed["row_count_change"] == pytest.approx(2.584963, abs=1e-4)  # log2(24 / 4)


def test_gx_judges_thresholds_and_writes_data_docs(tmp_path, capfd):
    checks = [Check("dupes", "no duplicates", "SELECT 0"), Check("drift", "small drift", "SELECT 0", 0.2, None, "WARN"),
              Check("rows", "has rows", "SELECT 0", None, 1, "WARN"), Check("many", "has rows", "SELECT 0", None, 1)]
    outcomes = validate("staging.demo", checks, {"dupes": 2.0, "drift": 0.1, "rows": 0.0, "many": 7.0},
                        tmp_path / "quality", run_name="run-1")
    assert [(o.check.name, o.passed) for o in outcomes] == [("dupes", False), ("drift", True), ("rows", False),
                                                          ("many", True)]
    assert checks[2].allowed == "≥ 1" and checks[1].allowed == "≤ 0.2"
    index = data_docs_index(tmp_path / "quality")
    assert index.exists() and "staging.demo" in index.read_text()
    # each outcome names this validation's result page, a path under the site root that is served
    (report,) = {o.report for o in outcomes}
    assert report.startswith("validations/staging/demo/run-1/") and report.endswith(".html")
    page = data_docs_root(tmp_path / "quality") / report
    assert page.is_file() and "dupes" in page.read_text()
    assert "Calculating Metrics" not in capfd.readouterr().err  # no tqdm bars in the run logs
    # self-contained: no page loads a script, stylesheet or image from the internet, and every
    # local asset a page names is in the site
    root = data_docs_root(tmp_path / "quality")
    for html in root.rglob("*.html"):
        text = html.read_text()
        assert remote_assets(text) == [], html
        for local in re.findall(r'(?:src|href)="([^"#?]+\.(?:js|css|png|ico))"', text):
            assert not local.startswith("http") and (html.parent / local).resolve().is_file(), (html, local)


def test_data_docs_render_styled_and_filled_offline(tmp_path):
    """The index in headless Chromium with every request off this machine refused: styled by the
    vendored Bootstrap, its table of validations drawn by the vendored bootstrap-table."""
    import shutil

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    if chromium is None:
        pytest.skip("chromium is not installed")
    validate("staging.demo", [Check("dupes", "no duplicates", "SELECT 0")], {"dupes": 0.0}, tmp_path / "quality",
             run_name="run-1")
    index = data_docs_index(tmp_path / "quality")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, headless=True, args=["--no-sandbox"])
        page = browser.new_page()
        remote = []
        page.route(re.compile(r"^https?://"), lambda route: (remote.append(route.request.url), route.abort()))
        page.goto(index.as_uri())
        page.locator("table tbody tr", has_text="staging.demo").first.wait_for(timeout=30_000)
        font = page.evaluate("getComputedStyle(document.body).fontFamily")
        browser.close()
    assert remote == [] and "apple-system" in font  # Bootstrap 4's font stack


def test_a_failed_blocking_gate_stops_downstream_assets(tmp_path):
    key = dg.AssetKey(["staging", "toy"])

    @dg.asset(key=key)
    def toy(warehouse: Warehouse) -> None:
        with warehouse.session() as con:
            con.execute("CREATE SCHEMA IF NOT EXISTS staging; CREATE SCHEMA IF NOT EXISTS ops")
            con.execute("CREATE OR REPLACE TABLE staging.toy AS SELECT * FROM (VALUES (1), (1), (2)) t(id)")

    @dg.asset(deps=[key])
    def model() -> None:
        """Must not run on duplicated keys."""

    gate = _suite_checks(key, "staging.toy", [Check("id_unique", "ids unique", "SELECT count(*) - count(DISTINCT id) "
                                                                                "FROM staging.toy")])
    result = dg.materialize([toy, model, gate], raise_on_error=False, resources={
        "warehouse": Warehouse(engine=DuckDBResource(database=str(tmp_path / "w.duckdb"))),
        "quality": QualityDocs(path=str(tmp_path / "quality"), docs_url="http://docs.local:8765/")})
    evaluations = result.get_asset_check_evaluations()
    assert [(e.check_name, e.passed) for e in evaluations] == [("id_unique", False)]
    assert evaluations[0].metadata["observed"].value == 1.0
    # the link opens this run's result page on the Data Docs server
    link = evaluations[0].metadata["data_docs"].url
    assert link.startswith(f"http://docs.local:8765/validations/staging/toy/{result.run_id}/")
    assert (data_docs_root(tmp_path / "quality") / link.removeprefix("http://docs.local:8765/")).is_file()
    materialized = {e.asset_key for e in result.all_events if e.is_step_materialization}
    assert key in materialized and dg.AssetKey("model") not in materialized


def test_demo_run_publishes_data_docs_for_every_suite(demo_pipeline):
    index = data_docs_index(demo_pipeline["root"] / "quality")
    html = index.read_text()
    for suite in ("staging.orders", "staging.patients", "features.patient_features"):
        assert suite in html


def test_running_a_check_again_on_the_same_data_judges_it_against_the_same_baseline(con):
    measure(con, staged_checks("orders"), "run-1")
    record_baselines(con, "staging.orders", "run-1")
    con.execute("INSERT INTO staging.orders SELECT 'O9', i, 'k1', 'B', TIMESTAMP '2025-02-01', 1, 1.0, 'store' "
                "FROM range(1, 21) r(i)")
    first = measure(con, staged_checks("orders"), "run-2")
    record_baselines(con, "staging.orders", "run-2")
    again = measure(con, staged_checks("orders"), "run-2")  # the check re-run alone, same materialization
    record_baselines(con, "staging.orders", "run-2")
    assert again == first and first["category_mix_drift"] == pytest.approx(2 / 3 - 2 / 23)
    # the next materialization is judged against run-2, and only two materializations are kept
    assert measure(con, staged_checks("orders"), "run-3")["category_mix_drift"] == 0
    record_baselines(con, "staging.orders", "run-3")
    kept = con.execute("SELECT DISTINCT materialization FROM ops.quality_baselines ORDER BY 1").fetchall()
    assert kept == [("run-2",), ("run-3",)]


def test_data_docs_links_follow_the_server_address_set_where_the_run_executes(monkeypatch):
    docs = QualityDocs(path="q")
    monkeypatch.delenv("MEDMKT_QUALITY_DOCS_URL", raising=False)
    assert docs.page_url("index.html") == "http://127.0.0.1:8765/index.html"  # the documented default
    monkeypatch.setenv("MEDMKT_QUALITY_DOCS_URL", "http://reports.example:9000/")
    assert docs.page_url("index.html") == "http://reports.example:9000/index.html"
