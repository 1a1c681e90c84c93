"""The insight app as a marketer uses it: `python -m medmkt_assets.app` on a free port over the
snapshot the demo pipeline published, every page in English and Chinese in headless Chromium,
numbers checked against the marts, hidden cells and pseudonyms checked. Screenshots are kept.

Runs when Chromium (Debian's `chromium`) and Playwright are installed (`.ci/run` installs
both); skipped otherwise, with the reason.
"""
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from medmkt_assets.app import i18n
from medmkt_assets_tests.servers import free_port, wait_http

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
playwright = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
pytestmark = [pytest.mark.ui, pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")]
ARTIFACTS = Path(os.environ.get("MEDMKT_TEST_ARTIFACTS",
                                Path(__file__).resolve().parents[1] / "data" / "test-artifacts")) / "insight"
PAGES = ("segments", "demand", "rules", "offers", "campaigns", "audiences")
PSEUDONYM = re.compile(r"\b[0-9a-f]{64}\b")


def expected(warehouse: Path) -> dict:
    """What the pages must show, read from the warehouse the snapshot was copied from."""
    con = duckdb.connect(str(warehouse), read_only=True)

    def query(sql: str):
        return con.execute(sql).fetchdf()
    names = dict(query("SELECT product_id, name FROM marts.product_catalog").itertuples(index=False))
    patient = query("SELECT patient_key FROM marts.recommendations WHERE model <> 'content' "
                    "ORDER BY patient_key LIMIT 1").patient_key.iloc[0]
    found = {
        "segments": query("SELECT * FROM marts.segment_summary ORDER BY segment_id"),
        "demand": query("SELECT * FROM marts.demand_trends"),
        "rules": query("SELECT * FROM marts.association_rules WHERE scope = 'basket' "
                       "ORDER BY lift DESC, confidence DESC, rule_id LIMIT 3"),
        "patient": patient,
        "recommended": [names[p] for p in query(f"SELECT product_id FROM marts.recommendations "
                                                f"WHERE patient_key = '{patient}' ORDER BY rank").product_id],
        "segment_of_patient": query(f"SELECT segment_label FROM marts.patient_segments "
                                    f"WHERE patient_key = '{patient}'").segment_label.iloc[0],
        "campaigns": query("SELECT * FROM marts.campaign_effects ORDER BY campaign_id"),
        "exclusions": query("SELECT * FROM marts.audience_exclusions"),
        "planned": query("SELECT * FROM marts.campaign_catalog WHERE status = 'planned'"),
    }
    con.close()
    found["rules"] = found["rules"].assign(if_names=found["rules"].antecedents.map(lambda a: [names[i] for i in a]),
                                           then_names=found["rules"].consequents.map(lambda c: [names[i] for i in c]))
    return found


@pytest.fixture(scope="module")
def marts(demo_pipeline) -> dict:
    return expected(demo_pipeline["warehouse"])


@pytest.fixture(scope="module")
def app_url(demo_pipeline, tmp_path_factory):
    snapshot = demo_pipeline["root"] / "insight" / "insight.duckdb"
    assert snapshot.is_file(), "the demo pipeline did not publish the insight snapshot"
    port = free_port()
    log_path = tmp_path_factory.mktemp("insight_app") / "streamlit.log"
    env = {**os.environ, "MEDMKT_INSIGHT_SNAPSHOT": str(snapshot), "MEDMKT_APP_PORT": str(port)}
    with log_path.open("w") as log:
        process = subprocess.Popen([sys.executable, "-m", "medmkt_assets.app", "--server.fileWatcherType", "none"],
                                   env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            wait_http(f"http://127.0.0.1:{port}/_stcore/health", 60)
            yield f"http://127.0.0.1:{port}"
        finally:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)


@pytest.fixture(scope="module")
def browser():
    with playwright.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        yield chromium
        chromium.close()


def _open(browser, app_url: str, name: str, lang: str):
    page = browser.new_page(viewport={"width": 1500, "height": 2000}, locale="zh-CN" if lang == "zh" else "en-US")
    page.goto(f"{app_url}/{'' if name == PAGES[0] else name}?lang={lang}", wait_until="domcontentloaded")
    page.get_by_role("heading", name=i18n.t(f"nav.{name}", lang), exact=True).first.wait_for(timeout=60_000)
    if name != "offers":  # every other page ends with the note on hidden cells
        page.get_by_text(i18n.t("note.hidden", lang)).wait_for(timeout=60_000)
    _settle(page)
    return page


def _settle(page) -> None:
    """Wait until the script run has finished and the charts are drawn."""
    page.wait_for_function("() => !document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=60_000)
    page.wait_for_timeout(300)
    for chart in page.locator(".vega-embed").all():
        chart.locator("canvas, svg").first.wait_for(timeout=30_000)


def _tables(page, header: str) -> list:
    """The tables with a column `header` (once the first is drawn)."""
    page.locator("table th", has_text=header).first.wait_for(timeout=30_000)
    return page.locator("table", has=page.locator("th", has_text=header)).all()


def _rows(page, header: str) -> list[dict[str, str]]:
    """Rows (header -> cell text) of the first table with a column `header`."""
    return _rows_of(_tables(page, header)[0])


def _rows_of(table) -> list[dict[str, str]]:
    """Rows as header -> cell text, read in one round trip."""
    header, *body = table.evaluate("t => [...t.rows].map(r => [...r.cells].map(c => c.innerText.trim()))")
    return [dict(zip(header, row)) for row in body]


def _check(page, name: str, lang: str, typed: str | None = None) -> None:
    """On every page: no error, the sidebar in the language, no pseudonym but the one typed in."""
    errors = page.locator('[data-testid="stException"]')
    assert errors.count() == 0, errors.first.inner_text()
    text = page.locator("body").inner_text()
    assert i18n.t("app.title", lang) in text
    assert set(PSEUDONYM.findall(text)) <= ({typed} if typed else set())
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"insight-{name}-{lang}.png"), full_page=True)
    page.close()


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_segments_page(browser, app_url, marts, lang):
    page = _open(browser, app_url, "segments", lang)
    rows = {r[i18n.t("col.segment", lang)]: r for r in _rows(page, i18n.t("col.segment", lang))}
    for segment in marts["segments"].itertuples():
        row = rows[i18n.segment_label(segment.segment_label, lang)]
        expected = i18n.t("hidden", lang) if segment.suppressed else i18n.number(segment.patients, lang)
        assert row[i18n.t("col.patients", lang)] == expected
    _check(page, "segments", lang)


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_demand_page_shows_published_cells_and_hides_the_rest(browser, app_url, marts, lang):
    page = _open(browser, app_url, "demand", lang)
    cells = marts["demand"].set_index(["month", "region", "category"])
    rows = _rows(page, i18n.t("col.month", lang))
    assert rows
    labels = {(i18n.month(m, lang), i18n.term(r, lang), i18n.term(c, lang)): (m, r, c) for m, r, c in cells.index}
    hidden_seen = 0
    for row in rows:
        cell = cells.loc[labels[(row[i18n.t("col.month", lang)], row[i18n.t("col.region", lang)],
                                 row[i18n.t("col.category", lang)])]]
        shown = row[i18n.t("col.patients", lang)]
        if cell.suppressed:
            hidden_seen += 1
            assert shown == i18n.t("hidden", lang) and row[i18n.t("col.revenue", lang)] == i18n.t("hidden", lang)
        else:
            assert shown == i18n.number(cell.patients, lang)
            assert row[i18n.t("col.revenue", lang)] == i18n.money(cell.revenue, lang)
    assert hidden_seen, "the demo world's latest month should have small cells"
    _check(page, "demand", lang)


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_rules_page_names_the_products(browser, app_url, marts, lang):
    page = _open(browser, app_url, "rules", lang)
    rows = _rows(page, i18n.t("col.if", lang))
    for rule, row in zip(marts["rules"].itertuples(), rows):
        assert row[i18n.t("col.if", lang)] == " + ".join(rule.if_names)
        assert row[i18n.t("col.then", lang)] == " + ".join(rule.then_names)
        assert row[i18n.t("col.lift", lang)] == i18n.number(rule.lift, lang, 2)
    _check(page, "rules", lang)


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_offers_page_lists_a_typed_patients_products_and_why(browser, app_url, marts, lang):
    page = _open(browser, app_url, "offers", lang)
    field = page.get_by_label(i18n.t("offers.key", lang))
    field.fill(marts["patient"])
    field.press("Enter")
    page.get_by_text(i18n.t("offers.list", lang), exact=True).wait_for(timeout=30_000)
    _settle(page)
    rows = _rows(page, i18n.t("col.why", lang))
    assert [r[i18n.t("col.product", lang)] for r in rows] == marts["recommended"]
    reasons = {i18n.t(k, lang) for k in ("reason.similar", "reason.content", "reason.segment", "reason.popular")}
    assert {r[i18n.t("col.why", lang)] for r in rows} <= reasons
    label = i18n.segment_label(marts["segment_of_patient"], lang)
    assert i18n.t("offers.segment", lang, label=label) in page.locator("body").inner_text()
    _check(page, "offers", lang, typed=marts["patient"])


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_campaigns_page_shows_uplift_with_its_interval(browser, app_url, marts, lang):
    page = _open(browser, app_url, "campaigns", lang)
    rows = {r[i18n.t("col.campaign", lang)]: r for r in _rows(page, i18n.t("col.uplift", lang))}
    for campaign in marts["campaigns"].itertuples():
        row = rows[campaign.name]
        if campaign.suppressed:
            assert row[i18n.t("col.uplift", lang)] == i18n.t("hidden", lang)
        else:
            assert row[i18n.t("col.uplift", lang)] == i18n.points(campaign.uplift, lang)
            assert row[i18n.t("col.ci_low", lang)] == i18n.points(campaign.uplift_ci_low, lang)
            assert row[i18n.t("col.channel", lang)] == i18n.term(campaign.channel, lang)
    _check(page, "campaigns", lang)


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_audiences_page_counts_reasons_and_exports_without_contacts(browser, app_url, marts, lang):
    page = _open(browser, app_url, "audiences", lang)
    assert len(marts["planned"])
    # the export list is drawn after the headings: on a loaded machine the first read can come before it
    page.get_by_text(f"audience_{marts['planned'].campaign_id.iloc[-1]}.csv").first.wait_for(timeout=60_000)
    text = page.locator("body").inner_text()
    assert "@" not in text
    for campaign in marts["planned"].itertuples():
        assert f"audience_{campaign.campaign_id}.csv" in text
    shown = [r for table in _tables(page, i18n.t("col.reason", lang)) for r in _rows_of(table)]
    expected = {(i18n.reason(r.reason, lang), i18n.t("hidden", lang) if r.suppressed else i18n.number(r.patients, lang))
                for r in marts["exclusions"].itertuples()}
    assert {(r[i18n.t("col.reason", lang)], r[i18n.t("col.patients", lang)]) for r in shown} == expected
    _check(page, "audiences", lang)



def test_the_sidebar_switches_the_language(browser, app_url):
    page = _open(browser, app_url, "campaigns", "en")
    page.locator('[data-testid="stSidebar"]').get_by_text(i18n.LANGUAGES["zh"], exact=True).click()
    page.get_by_role("heading", name=i18n.t("nav.campaigns", "zh"), exact=True).wait_for(timeout=30_000)
    _settle(page)
    assert i18n.t("campaigns.effects", "zh") in page.locator("body").inner_text()
    assert "lang=zh" in page.url
    _check(page, "language-switch", "zh")
