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
from contextlib import contextmanager
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from medmkt_assets.app import data, i18n
from medmkt_assets.lib.ops.insight import VOICE_COLUMNS
from medmkt_assets_tests.servers import free_port, wait_http

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
playwright = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
pytestmark = [pytest.mark.ui, pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")]
ARTIFACTS = Path(os.environ.get("MEDMKT_TEST_ARTIFACTS",
                                Path(__file__).resolve().parents[1] / "data" / "test-artifacts")) / "insight"
PAGES = ("segments", "demand", "rules", "offers", "campaigns", "audiences", "voice")
PSEUDONYM = re.compile(r"\b[0-9a-f]{64}\b")


def expected(warehouse: Path) -> dict:
    """What the pages must show, read from the warehouse the snapshot was copied from."""
    con = duckdb.connect(str(warehouse), read_only=True)

    def query(sql: str):
        return con.execute(sql).fetchdf()
    catalog = query("SELECT * FROM marts.product_catalog")
    names = dict(zip(catalog.product_id, catalog.name))
    names_zh = {**names, **dict(zip(catalog.product_id, catalog.name_zh.where(catalog.name_zh.notna(), catalog.name)))}
    patient = query("SELECT patient_key FROM marts.recommendations WHERE model <> 'content' "
                    "ORDER BY patient_key LIMIT 1").patient_key.iloc[0]
    found = {
        "segments": query("SELECT * FROM marts.segment_summary ORDER BY segment_id"),
        "demand": query("SELECT * FROM marts.demand_trends"),
        "rules": query("SELECT * FROM marts.association_rules WHERE scope = 'basket' "
                       "ORDER BY lift DESC, confidence DESC, rule_id LIMIT 3"),
        "patient": patient,
        "recommended": {lang: [by_id[p] for p in query(f"SELECT product_id FROM marts.recommendations "
                                                       f"WHERE patient_key = '{patient}' ORDER BY rank").product_id]
                        for lang, by_id in (("en", names), ("zh", names_zh))},
        "by_group": query("SELECT * FROM marts.campaign_effects_by_group"),
        "uplift_models": query("SELECT * FROM marts.uplift_models m JOIN marts.campaign_catalog USING (campaign_id)"),
        "evaluation": query("SELECT * FROM marts.recommendation_evaluation WHERE split = 'holdout'"),
        "serving": query("SELECT model FROM marts.recommendations WHERE model NOT IN ('content', "
                         "'popularity_by_segment', 'popularity') GROUP BY model ORDER BY count(*) DESC LIMIT 1"
                         ).model.iloc[0],
        "first_segment": query("SELECT s.segment_id, s.segment_label, min(p.patient_key) AS patient_key "
                               "FROM marts.segment_summary s JOIN marts.patient_segments p USING (segment_id) "
                               "WHERE NOT s.suppressed GROUP BY ALL ORDER BY s.segment_id LIMIT 1"),
        "segment_of_patient": query(f"SELECT segment_label FROM marts.patient_segments "
                                    f"WHERE patient_key = '{patient}'").segment_label.iloc[0],
        "campaigns": query("SELECT * FROM marts.campaign_effects ORDER BY campaign_id"),
        "exclusions": query("SELECT * FROM marts.audience_exclusions"),
        "planned": query("SELECT * FROM marts.campaign_catalog WHERE status = 'planned'"),
    }
    # The patient-voice marts (lib/ops/insight.VOICE_COLUMNS) the run published: the demo world has them
    published = set(query("SELECT table_name FROM information_schema.tables WHERE table_schema = 'marts'").table_name)
    found["voice"] = {t: query(f"SELECT * FROM marts.{t}") for t in VOICE_COLUMNS if t in published}
    catalog = query("SELECT campaign_id, name FROM marts.campaign_catalog")
    found["campaign_names"] = dict(zip(catalog.campaign_id, catalog.name))
    con.close()
    found["rules"] = found["rules"].assign(**{
        f"{side}_names_{lang}": found["rules"][column].map(lambda items, n=by_id: [n[i] for i in items])
        for side, column in (("if", "antecedents"), ("then", "consequents"))
        for lang, by_id in (("en", names), ("zh", names_zh))})
    return found


@pytest.fixture(scope="module")
def marts(demo_pipeline) -> dict:
    return expected(demo_pipeline["warehouse"])


@contextmanager
def serve_app(snapshot: Path, log_path: Path):
    """`python -m medmkt_assets.app` on a free port over `snapshot`; yields its URL once it answers."""
    port = free_port()
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
def snapshot(demo_pipeline) -> Path:
    found = demo_pipeline["root"] / "insight" / "insight.duckdb"
    assert found.is_file(), "the demo pipeline did not publish the insight snapshot"
    return found


@pytest.fixture(scope="module")
def app_url(snapshot, tmp_path_factory):
    with serve_app(snapshot, tmp_path_factory.mktemp("insight_app") / "streamlit.log") as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    with playwright.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        yield chromium
        chromium.close()


def _open(browser, app_url: str, name: str, lang: str):
    page = browser.new_page(viewport={"width": 1500, "height": 2000}, locale="zh-CN" if lang == "zh" else "en-US")
    page.goto(f"{app_url}/{name}?lang={lang}", wait_until="domcontentloaded")
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


def _tables(page, header: str, *also: str, count: int | None = None) -> list:
    """The tables with a column `header` and the columns `also` (once the first is drawn, or once
    `count` of them are): a page can hold several tables that share a column (the segments page:
    who, and how they buy; the audiences page: one table of reasons per campaign)."""
    tables = page.locator("table", has=page.locator("th", has_text=header))
    for column in also:
        tables = tables.filter(has=page.locator("th", has_text=column))
    tables.first.wait_for(timeout=30_000)
    if count is not None:  # a loaded machine draws them one by one
        page.wait_for_function("([header, n]) => [...document.querySelectorAll('table')].filter(t => "
                               "[...t.querySelectorAll('th')].some(h => h.innerText.includes(header))).length >= n",
                               arg=[header, count], timeout=30_000)
    return tables.all()


def _rows(page, header: str, *also: str) -> list[dict[str, str]]:
    """Rows (header -> cell text) of the first table with a column `header` and the columns `also`."""
    return _rows_of(_tables(page, header, *also)[0])


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
    rows = {r[i18n.t("col.segment", lang)]: r for r in _rows(page, i18n.t("col.segment", lang),
                                                              i18n.t("col.patients", lang))}
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
        assert row[i18n.t("col.if", lang)] == " + ".join(getattr(rule, f"if_names_{lang}"))
        assert row[i18n.t("col.then", lang)] == " + ".join(getattr(rule, f"then_names_{lang}"))
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
    assert [r[i18n.t("col.product", lang)] for r in rows] == marts["recommended"][lang]
    reasons = {i18n.t(k, lang) for k in ("reason.similar", "reason.content", "reason.segment", "reason.popular")}
    assert {r[i18n.t("col.why", lang)] for r in rows} <= reasons
    label = i18n.segment_label(marts["segment_of_patient"], lang)
    assert i18n.t("offers.segment", lang, label=label) in page.locator("body").inner_text()
    _check(page, "offers", lang, typed=marts["patient"])


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_campaigns_page_shows_uplift_with_its_interval(browser, app_url, marts, lang):
    page = _open(browser, app_url, "campaigns", lang)
    rows = {r[i18n.t("col.campaign", lang)]: r for r in _rows(page, i18n.t("col.uplift", lang),
                                                               i18n.t("col.campaign", lang), i18n.t("col.ci_low", lang))}
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
def test_campaigns_page_never_prints_a_roi_not_to_be_believed(browser, app_url, marts, lang):
    """A ROI flagged for a missing, incomplete or unbelievable cost is not shown, its check says why;
    one of an uplift that is not significant is shown with the warning."""
    page = _open(browser, app_url, "campaigns", lang)
    rows = {r[i18n.t("col.campaign", lang)]: r for r in _rows(page, i18n.t("col.roi", lang))}
    flagged = 0
    for campaign in marts["campaigns"].itertuples():
        row = rows[campaign.name]
        if campaign.suppressed or not isinstance(campaign.roi_flag, str):
            assert row.get(i18n.t("col.roi_check", lang), "") == ""
            continue
        flagged += 1
        assert row[i18n.t("col.roi_check", lang)] == i18n.t(f"roi.{campaign.roi_flag}", lang)
        shown = row[i18n.t("col.roi", lang)]
        assert (shown in ("", "–")) == (campaign.roi_flag in ("no_cost", "cost_incomplete", "implausibly_high"))
    assert flagged  # the demo world has campaigns whose uplift is not significant
    _check(page, "campaigns-roi", lang)


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
    shown = [r for table in _tables(page, i18n.t("col.reason", lang), count=len(marts["planned"]))
             for r in _rows_of(table)]
    expected = {(i18n.reason(r.reason, lang), i18n.t("hidden", lang) if r.suppressed else i18n.number(r.patients, lang))
                for r in marts["exclusions"].itertuples()}
    assert {(r[i18n.t("col.reason", lang)], r[i18n.t("col.patients", lang)]) for r in shown} == expected
    _check(page, "audiences", lang)



def _voice(marts: dict, table: str):
    """A voice mart as the warehouse holds it (the demo pipeline publishes every one)."""
    assert table in marts["voice"], f"the demo pipeline did not publish marts.{table}"
    return marts["voice"][table]


def _topic_labels(topics, lang: str) -> dict:
    return {t.topic_id: data.topic_label(t.label, t.label_zh, lang) for t in topics.itertuples()}


def _shown(topic, author_count) -> bool:
    """Whether a topic's examples may be shown: examples_shown and more than 10 authors."""
    return bool(topic.examples_shown) and author_count is not None and author_count > 10


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_voice_page_shows_every_topic_in_the_language_with_hidden_counts(browser, app_url, marts, lang):
    topics = _voice(marts, "voice_topics")
    assert len(topics), "the demo world's survey comments should make topics"
    page = _open(browser, app_url, "voice", lang)
    rows = {r[i18n.t("col.topic", lang)]: r for r in _rows(page, i18n.t("col.top_terms", lang))}
    labels = _topic_labels(topics, lang)
    assert set(rows) == set(labels.values())
    for topic in topics.itertuples():
        row = rows[labels[topic.topic_id]]
        hidden = topic.authors is None or pd.isna(topic.authors) or topic.authors <= 10
        assert row[i18n.t("col.authors", lang)] == (i18n.t("hidden", lang) if hidden
                                                    else i18n.number(topic.authors, lang))
        assert row[i18n.t("col.top_terms", lang)] == data.topic_terms(topic.top_terms, lang)
        if pd.notna(topic.share):
            assert row[i18n.t("col.share_of_comments", lang)] == i18n.percent(topic.share, lang)
    quality = _voice(marts, "voice_quality")
    accuracy, kappa = data.quality_value(quality, "sentiment_accuracy"), data.quality_value(quality, *data.KAPPA)
    assert accuracy is not None and kappa is not None, "the sentiment check against the scores"
    assert i18n.t("voice.sentiment_check", lang, share=i18n.percent(accuracy, lang, 0),
                  kappa=i18n.number(kappa, lang, 2)) in page.locator("body").inner_text()
    _check(page, "voice", lang)


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_voice_examples_appear_only_for_topics_whose_examples_are_shown(browser, app_url, marts, lang):
    topics, examples = _voice(marts, "voice_topics"), _voice(marts, "voice_examples")
    labels = _topic_labels(topics, lang)
    shown = {t.topic_id: _shown(t, None if pd.isna(t.authors) else t.authors) for t in topics.itertuples()}
    never = set(examples.comment[~examples.topic_id.map(shown).fillna(False).astype(bool)])
    first = topics.sort_values(["share", "topic_id"], ascending=[False, True]).topic_id.iloc[0]
    hidden_topic = next((t for t, ok in shown.items() if not ok), None)
    page = _open(browser, app_url, "voice", lang)
    for topic in (first, hidden_topic):
        if topic is None:
            continue
        if topic != first:  # the page opens on the topic most comments are about
            page.get_by_role("combobox", name=i18n.t("voice.pick_topic", lang)).click()
            page.get_by_role("option", name=labels[topic], exact=True).click()
            page.get_by_role("heading", name=i18n.t("voice.examples", lang, topic=labels[topic])).wait_for(
                timeout=30_000)
            page.get_by_text(i18n.t("voice.examples_hidden" if not shown[topic] else "voice.deidentified", lang)
                             ).wait_for(timeout=30_000)
            page.wait_for_timeout(1500)  # the rerun's last elements replace the previous topic's
            _settle(page)
        text = page.locator("body").inner_text()
        assert not any(comment in text for comment in never)
        if shown[topic]:
            assert i18n.t("voice.deidentified", lang) in text
            expected = examples[examples.topic_id == topic].sort_values("rank").comment.tolist()
            assert [r[i18n.t("col.comment", lang)] for r in _rows(page, i18n.t("col.comment", lang))] == expected
        else:
            assert i18n.t("voice.examples_hidden", lang) in text
            assert page.locator("table th", has_text=i18n.t("col.comment", lang)).count() == 0
    _check(page, "voice-examples", lang)


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_voice_drivers_show_each_effect_with_its_interval_against_its_reference(browser, app_url, marts, lang):
    drivers = _voice(marts, "satisfaction_drivers")
    assert len(drivers)
    page = _open(browser, app_url, "voice", lang)
    shown = [r for table in _tables(page, i18n.t("col.effect_ci", lang)) for r in _rows_of(table)]
    assert len(shown) == len(drivers)
    to = i18n.t("voice.interval", lang, low="", high="").strip()
    names = marts["campaign_names"]
    expected = set()
    for d in drivers.itertuples():
        small = pd.isna(d.respondents) or d.respondents <= 10 or pd.isna(d.effect)
        text = (i18n.t("hidden", lang) if small else
                f"{d.effect:+.2f} ({i18n.number(d.ci_low, lang, 2)} {to} {i18n.number(d.ci_high, lang, 2)})")
        clear = "–" if small else i18n.t("voice.clear" if d.ci_low > 0 or d.ci_high < 0 else "voice.not_clear", lang)
        reference = i18n.t("voice.compared_with", lang,
                           reference=data.level_name(d.factor, d.reference_level, lang, names))
        expected.add((data.level_name(d.factor, d.level, lang, names), reference, text, clear))
    assert {(r[i18n.t("col.level", lang)], r[i18n.t("col.reference", lang)], r[i18n.t("col.effect_ci", lang)],
             r[i18n.t("col.clear", lang)]) for r in shown} == expected
    _check(page, "voice-drivers", lang)


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_voice_nps_and_searches_hide_what_the_marts_suppressed(browser, app_url, marts, lang):
    nps, searches = _voice(marts, "nps_summary"), _voice(marts, "search_themes")
    page = _open(browser, app_url, "voice", lang)
    rows = [r for table in _tables(page, i18n.t("col.promoters", lang)) for r in _rows_of(table)]
    assert len(rows) == len(nps)
    cells = {tuple(r.values())[0]: r[i18n.t("col.nps", lang)] for r in rows}
    for cell in nps.itertuples():
        level = (i18n.t("voice.all_respondents", lang) if cell.dimension == "overall"
                 else data.level_name(cell.dimension, cell.level, lang))
        assert cells[level] == (i18n.t("hidden", lang) if pd.isna(cell.nps) else f"{cell.nps:+.1f}")
    rows = _rows(page, i18n.t("col.searchers", lang))
    assert rows and len(rows) == min(len(searches), 120)  # every region is chosen to begin with
    cells = {(i18n.month(c.month, lang), i18n.term(c.region, lang), i18n.term(c.theme, lang)): c
             for c in searches.itertuples()}
    for row in rows:
        cell = cells[(row[i18n.t("col.month", lang)], row[i18n.t("col.region", lang)],
                      row[i18n.t("col.theme", lang)])]
        assert row[i18n.t("col.searches", lang)] == (i18n.t("hidden", lang) if pd.isna(cell.searches)
                                                     else i18n.number(cell.searches, lang))
        if pd.isna(cell.searchers) or cell.searchers <= 10:
            assert row[i18n.t("col.searchers", lang)] == i18n.t("hidden", lang)
    _check(page, "voice-nps-searches", lang)


def test_the_chinese_voice_page_shows_no_english_but_the_data(browser, app_url, marts):
    """Every word of the page in Chinese: what Latin text is left is the data's own (comments, their top
    terms, search terms, facility and campaign names, placeholders such as [NAME])."""
    topics = _voice(marts, "voice_topics")
    page = _open(browser, app_url, "voice", "zh")
    text = page.locator('[data-testid="stMain"]').inner_text()
    assert i18n.t("nav.voice", "zh") in text and i18n.t("nav.voice", "en") not in text
    drivers = _voice(marts, "satisfaction_drivers")
    untranslated = drivers[~drivers.factor.isin(["segment", "channel", "category"])]
    data_words = {
        *_voice(marts, "voice_examples").comment, *[t for terms in topics.top_terms for t in terms],
        *topics.label[topics.label_zh.isna()], *_voice(marts, "search_theme_terms").term,
        *untranslated.level, *untranslated.reference_level, *marts["campaign_names"].values(),
        *{m for m in _voice(marts, "voice_quality").metric if m not in data.QUALITY_FORMATS},
        *_voice(marts, "search_themes").region,
        *_voice(marts, "search_themes").theme}
    for word in sorted(map(str, data_words), key=len, reverse=True):
        text = text.replace(word, " ")
    text = re.sub(r"\[[A-Z_]+\]", " ", text)
    assert set(re.findall(r"[A-Za-z]{2,}", text)) <= {"App"}, text
    _check(page, "voice-zh-words", "zh")


def test_the_sidebar_switches_the_language(browser, app_url):
    page = _open(browser, app_url, "campaigns", "en")
    page.locator('[data-testid="stSidebar"]').get_by_text(i18n.LANGUAGES["zh"], exact=True).click()
    page.get_by_role("heading", name=i18n.t("nav.campaigns", "zh"), exact=True).wait_for(timeout=30_000)
    _settle(page)
    assert i18n.t("campaigns.effects", "zh") in page.locator("body").inner_text()
    assert "lang=zh" in page.url
    _check(page, "language-switch", "zh")


@pytest.mark.parametrize("lang", ["en", "zh"])
@pytest.mark.parametrize("name", PAGES)
def test_every_page_url_is_a_working_first_request_to_a_fresh_server(browser, snapshot, tmp_path, name, lang):
    """A deep link (`/campaigns?lang=zh`) opened before anyone opened `/`: the page in the language,
    the language switch and the translated page list, no "Page not found"."""
    with serve_app(snapshot, tmp_path / "streamlit.log") as url:
        page = browser.new_page(viewport={"width": 1500, "height": 2000})
        page.goto(f"{url}/{name}?lang={lang}", wait_until="domcontentloaded")
        page.get_by_role("heading", name=i18n.t(f"nav.{name}", lang), exact=True).first.wait_for(timeout=60_000)
        _settle(page)
        sidebar = page.locator('[data-testid="stSidebar"]')
        # the sidebar may render after the page's heading on a busy machine: wait for it, then count
        sidebar.get_by_text(i18n.LANGUAGES["zh"], exact=True).first.wait_for(timeout=30_000)
        assert sidebar.get_by_text(i18n.LANGUAGES["zh"], exact=True).count() == 1
        page.locator('[data-testid="stSidebarNav"]').first.wait_for(timeout=30_000)
        nav = page.locator('[data-testid="stSidebarNav"]').inner_text()
        assert [i18n.t(f"nav.{p}", lang) in nav for p in PAGES] == [True] * len(PAGES), nav
        assert "Page not found" not in page.locator("body").inner_text()
        assert page.url.startswith(f"{url}/{name}") and f"lang={lang}" in page.url
        _check(page, f"first-request-{name}", lang)


def test_the_root_url_opens_the_first_page_under_its_own_url(browser, app_url):
    page = browser.new_page(viewport={"width": 1500, "height": 2000})
    page.goto(f"{app_url}/?lang=zh", wait_until="domcontentloaded")
    page.get_by_role("heading", name=i18n.t(f"nav.{PAGES[0]}", "zh"), exact=True).first.wait_for(timeout=60_000)
    _settle(page)
    assert page.url.startswith(f"{app_url}/{PAGES[0]}") and "lang=zh" in page.url
    _check(page, "root", "zh")


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_offers_page_lets_a_marketer_pick_a_patient_of_a_segment(browser, app_url, marts, lang):
    first = marts["first_segment"].iloc[0]
    page = _open(browser, app_url, "offers", lang)
    page.get_by_role("combobox", name=i18n.t("offers.pick_segment", lang)).click()
    page.get_by_role("option", name=i18n.segment_label(first.segment_label, lang), exact=True).click()
    _settle(page)
    page.get_by_role("combobox", name=i18n.t("offers.pick_patient", lang)).click()
    page.get_by_role("option", name=first.patient_key, exact=True).click()
    page.get_by_text(i18n.t("offers.list", lang), exact=True).wait_for(timeout=30_000)
    _settle(page)
    assert i18n.t("offers.segment", lang, label=i18n.segment_label(first.segment_label, lang)) in (
        page.locator("body").inner_text())
    assert _rows(page, i18n.t("col.why", lang))
    _check(page, "offers-pick", lang, typed=first.patient_key)


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_offers_page_says_which_model_serves_and_why_a_higher_baseline_does_not(browser, app_url, marts, lang):
    page = _open(browser, app_url, "offers", lang)
    scores = dict(zip(marts["evaluation"].model, marts["evaluation"].ndcg_at_10))
    serving = marts["serving"]
    text = page.locator("body").inner_text()
    assert i18n.t("offers.serving", lang, model=data.model_name(serving, lang),
                  score=i18n.number(scores[serving], lang, 3)) in text
    baseline = scores.get("popularity_by_segment", 0)
    if baseline > scores[serving]:
        assert i18n.t("offers.baseline", lang, model=data.model_name("popularity_by_segment", lang),
                      score=i18n.number(baseline, lang, 3)) in text
    rows = _rows(page, i18n.t("col.role", lang))
    served = {r[i18n.t("col.model", lang)] for r in rows if r[i18n.t("col.role", lang)] == i18n.t("role.served", lang)}
    assert served == {data.model_name(serving, lang)}
    _check(page, "offers-models", lang)


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_campaign_rows_say_hidden_and_why_never_under_11_where_the_count_is_not(browser, app_url, marts, lang):
    page = _open(browser, app_url, "campaigns", lang)
    text = page.locator("body").inner_text()
    assert "<11" not in text
    by_segment = marts["by_group"]
    by_segment = by_segment[(by_segment.group_type == "segment")
                            & (by_segment.campaign_id == marts["campaigns"].campaign_id.iloc[0])]
    rows = {r[i18n.t("col.segment", lang)]: r for r in _rows(page, i18n.t("col.segment", lang))}
    assert rows, "the by-segment table of the first campaign"
    reasons = dict(zip(by_segment.group_value, data.hidden_reason(by_segment, partitioned=True)))
    for value, reason in reasons.items():
        row = rows[i18n.segment_label(value, lang)]
        if reason:
            assert row[i18n.t("col.why_hidden", lang)] == i18n.t(reason, lang)
            assert row[i18n.t("col.uplift", lang)] == i18n.t("hidden", lang)
        else:
            assert row.get(i18n.t("col.why_hidden", lang), "") == ""
    _check(page, "campaigns-hidden", lang)


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_audiences_say_ranks_only_when_the_qini_interval_is_above_zero(browser, app_url, marts, lang):
    page = _open(browser, app_url, "audiences", lang)
    rows = _rows(page, i18n.t("col.qini_ci", lang))
    models = marts["uplift_models"]
    assert len(rows) == len(models)
    for model, row in zip(models.sort_values("campaign_id").itertuples(), rows):
        assert row[i18n.t("col.qini_ci", lang)] == (f"{i18n.number(model.qini_ci_low, lang, 4)} … "
                                                    f"{i18n.number(model.qini_ci_high, lang, 4)}")
        assert model.ranks_audience == (model.qini_auc > 0 and model.qini_ci_low > 0)
        assert row[i18n.t("col.ranks", lang)] == i18n.yes_no(model.ranks_audience, lang)
    _check(page, "audiences-qini", lang)


def test_the_sidebar_links_to_the_data_docs_and_streamlit_shows_no_english_menu(browser, app_url):
    from medmkt_assets.settings import DEFAULTS

    page = _open(browser, app_url, "segments", "zh")
    # (Streamlit draws a link button with help twice, once inside its tooltip wrapper)
    link = page.locator('[data-testid="stSidebar"] a', has_text=i18n.t("app.data_docs", "zh")).first
    assert link.get_attribute("href").rstrip("/") == DEFAULTS["MEDMKT_QUALITY_DOCS_URL"].rstrip("/")
    assert page.locator('[data-testid="stMainMenu"]').count() == 0
    assert all(not toolbar.is_visible() for toolbar in page.locator('[data-testid="stElementToolbar"]').all())
    _check(page, "data-docs-link", "zh")
