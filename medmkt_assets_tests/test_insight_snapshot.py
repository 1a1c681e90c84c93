"""The insight snapshot (lib/ops/insight.py) and the app's pure parts: what is copied, atomically;
every text in both languages; locale formatting; names for codes; hidden cells stay hidden."""
from __future__ import annotations

import re
from datetime import datetime, timezone
from pathlib import Path

import dagster as dg
import duckdb
import pandas as pd
import pytest

from medmkt_assets.app import data, i18n
from medmkt_assets.lib.engine.warehouse import Session
from medmkt_assets.lib.ops.insight import (
    CAMPAIGN_CATALOG_SQL,
    CONDITION_CATALOG_SQL,
    INFO_TABLE,
    MANIFEST_TABLE,
    PRODUCT_CATALOG_SQL,
    SNAPSHOT_SQL,
    SNAPSHOT_TABLES,
    VOICE_COLUMNS,
    VOICE_TABLES,
    manifest_frame,
    publish_snapshot,
)
from medmkt_assets.lib.privacy.identifiers import DIRECT_IDENTIFIERS

KEY_A, KEY_B = "a" * 64, "b" * 64
APP = Path(data.__file__).parent

# The patient-voice marts: topic 1 has 40 authors and its examples shown, topic 2 fewer than 11
# people (an example row the marts should not have published, and a rare search term, must not
# reach the snapshot); extra columns the snapshot must not copy.
VOICE_SQL = """
CREATE TABLE marts.voice_topics AS SELECT * FROM (VALUES
    (1, 'Waiting times', '等候时间', ['wait', '排队'], 50, 40, 0.9, 3.1, 6.0, 0.2, 0.3, 0.5, true, 'x'),
    (2, 'Parking', '停车', ['parking'], NULL, NULL, 0.1, 3.5, 7.0, 0.3, 0.4, 0.3, false, 'y'))
    t(topic_id, label, label_zh, top_terms, comments, authors, share, avg_satisfaction, avg_nps,
      positive_share, neutral_share, negative_share, examples_shown, model_notes);
CREATE TABLE marts.voice_topic_trends AS SELECT DATE '2025-01-01' AS month, 1 AS topic_id, 50 AS comments,
    40 AS authors, 0.9 AS share, 3.1 AS avg_satisfaction;
CREATE TABLE marts.voice_examples AS SELECT * FROM (VALUES
    (1, 1, 'Waited two hours, [NAME] said nothing', 'en', 'negative', 2, 'raw text'),
    (2, 1, 'Parking at [ADDRESS]', 'en', 'neutral', 3, 'raw text'))
    t(topic_id, rank, comment, language, sentiment, satisfaction, original_comment);
CREATE TABLE marts.satisfaction_drivers AS SELECT 'satisfaction' AS outcome, 'channel' AS factor,
    'online' AS level, 'clinic' AS reference_level, 120 AS respondents, -0.25 AS effect, -0.4 AS ci_low,
    -0.1 AS ci_high, 0.001 AS p_value, 'ols' AS model;
CREATE TABLE marts.nps_summary AS SELECT 'overall' AS dimension, 'all' AS level, 120 AS respondents,
    0.5 AS promoters_share, 0.3 AS passives_share, 0.2 AS detractors_share, 30.0 AS nps, 20.0 AS nps_ci_low,
    40.0 AS nps_ci_high;
CREATE TABLE marts.search_themes AS SELECT DATE '2025-01-01' AS month, 'Beijing' AS region,
    'diabetes_care' AS theme, 120 AS searches, 60 AS searchers;
CREATE TABLE marts.search_theme_terms AS SELECT * FROM (VALUES ('diabetes_care', 'glucose meter', 90),
    ('other', 'a rare search', 2)) t(theme, term, searches);
CREATE TABLE marts.voice_quality AS SELECT * FROM (VALUES ('comments_analysed', 50.0),
    ('sentiment_accuracy', 0.8), ('sentiment_kappa', 0.6)) t(metric, value);
"""

# A warehouse holding every table the snapshot copies, and the ones it must never copy.
WAREHOUSE_SQL = f"""
CREATE SCHEMA marts; CREATE SCHEMA staging; CREATE SCHEMA restricted;
CREATE TABLE staging.products AS SELECT * FROM (VALUES ('P1', 'Metformin', 'diabetes_care', 'drug', 'free text'),
    ('P2', 'Glucose meter', 'diabetes_care', 'device', 'more text')) t(product_id, name, category, kind, description);
CREATE TABLE staging.campaigns AS SELECT * FROM (VALUES
    ('C1', 'Spring offer', 'marketing', 'sms', 'diabetes_care', DATE '2025-01-15', DATE '2025-02-15', 0.05),
    ('C2', 'Summer plan', 'marketing', 'email', 'dermatology', DATE '2026-07-01', DATE '2026-07-31', 0.02))
    t(campaign_id, name, purpose, channel, target_category, start_date, end_date, cost_per_contact);
CREATE TABLE staging.campaign_contacts AS SELECT 'C1' AS campaign_id, '{KEY_A}' AS patient_key, 'treatment' AS arm;
CREATE TABLE staging.diagnoses AS
    SELECT printf('%064d', i) AS patient_key,
           CASE WHEN i <= 11 THEN 'E11' ELSE 'Z99' END AS condition_code,
           CASE WHEN i <= 11 THEN 'Type 2 diabetes' ELSE 'Rare thing' END AS condition_name
    FROM range(1, 15) r(i);
CREATE TABLE restricted.patients AS SELECT '{KEY_A}' AS patient_key, '+86 138' AS phone;
CREATE TABLE marts.patient_profiles AS SELECT '{KEY_A}' AS patient_key, '70-79' AS age_band;
CREATE TABLE marts.audiences AS SELECT 'C2' AS campaign_id, '{KEY_A}' AS patient_key;
CREATE TABLE marts.propensity_scores AS SELECT '{KEY_A}' AS patient_key, 0.5 AS score;
CREATE TABLE marts.uplift_scores AS SELECT '{KEY_A}' AS patient_key, 0.1 AS expected_uplift;
CREATE TABLE marts.patient_segments AS SELECT * FROM (VALUES
    ('{KEY_A}', 0, 'high value · diabetes care · store · 70-79', 'kmeans_k3'),
    ('{KEY_B}', 1, 'no purchases yet · 30-39', 'kmeans_k3')) t(patient_key, segment_id, segment_label, model);
CREATE TABLE marts.recommendations AS SELECT * FROM (VALUES ('{KEY_A}', 1, 'P2', 0.9, 'ease_l200'),
    ('{KEY_A}', 2, 'P1', 0.5, 'content'), ('{KEY_B}', 1, 'P1', 0.7, 'popularity_by_segment'))
    t(patient_key, rank, product_id, score, model);
CREATE TABLE marts.segment_summary AS SELECT * FROM (VALUES
    (0, 'high value · diabetes care · store · 70-79', 40.0, false),
    (1, 'no purchases yet · 30-39', NULL, true)) t(segment_id, segment_label, patients, suppressed);
CREATE TABLE marts.demand_trends AS SELECT DATE '2025-01-01' AS month, 'Beijing' AS region,
    'diabetes_care' AS category, 30 AS orders, 20 AS patients, 100.0 AS revenue, false AS suppressed;
CREATE TABLE marts.association_rules AS SELECT 'B1' AS rule_id, ['P1'] AS antecedents, ['P2'] AS consequents,
    0.1 AS support, 0.6 AS confidence, 2.5 AS lift, 'basket' AS scope;
CREATE TABLE marts.campaign_effects AS
    SELECT 'C1' AS campaign_id, 100.0 AS treated, 0.03 AS uplift, false AS suppressed;
CREATE TABLE marts.campaign_effects_by_group AS SELECT 'C1' AS campaign_id, 'segment' AS group_type, 'x' AS group_value;
CREATE TABLE marts.audience_exclusions AS SELECT 'C2' AS campaign_id, 'deceased' AS reason, NULL AS patients,
    true AS suppressed;
CREATE TABLE marts.uplift_models AS SELECT 'C2' AS campaign_id, 'all past campaigns' AS basis,
    't_learner_logistic' AS model, 0.01 AS qini_auc, true AS ranks_audience;
CREATE TABLE marts.recommendation_evaluation AS SELECT 'ease_l200' AS model, 'holdout' AS split, 0.2 AS ndcg_at_10;
{PRODUCT_CATALOG_SQL}; {CAMPAIGN_CATALOG_SQL}; {CONDITION_CATALOG_SQL};
{VOICE_SQL}
"""
MANIFEST = {"run_id": "r1", "written_at": "2026-07-01T00:00:00+00:00", "campaigns": [
    {"campaign_id": "C2", "name": "Summer plan", "purpose": "marketing", "channel": "email",
     "target_category": "dermatology", "file": "audience_C2.csv", "exported": 500,
     "counts": {"deceased": 5, "no marketing consent": 900, "selected: contact": 500, "selected: holdout": 55}}]}


@pytest.fixture
def warehouse(tmp_path):
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    con.execute(WAREHOUSE_SQL)
    yield Session(con)
    con.close()


def _publish(session: Session, target: Path, run_id: str = "run-1") -> dict[str, int]:
    published_at = datetime(2026, 7, 1, tzinfo=timezone.utc)
    return publish_snapshot(session, target, manifest_frame(MANIFEST), run_id, published_at)


def _tables(path: Path) -> dict[str, list[str]]:
    con = duckdb.connect(str(path), read_only=True)
    rows = con.execute("SELECT table_name, column_name FROM information_schema.columns ORDER BY ALL").fetchall()
    con.close()
    out: dict[str, list[str]] = {}
    for table, column in rows:
        out.setdefault(table, []).append(column)
    return out


def test_the_snapshot_holds_exactly_the_listed_tables_and_nothing_about_a_person(warehouse, tmp_path):
    target = tmp_path / "insight" / "insight.duckdb"
    counts = _publish(warehouse, target)
    tables = _tables(target)
    assert set(tables) == set(SNAPSHOT_TABLES)
    assert set(counts) == set(SNAPSHOT_TABLES) - {INFO_TABLE}
    assert sorted(tables["marts_patient_segments"]) == ["patient_key", "segment_id", "segment_label"]
    assert sorted(tables["marts_product_catalog"]) == ["category", "kind", "name", "name_zh", "product_id"]
    columns = {c for t, cs in tables.items() for c in cs if t != "marts_voice_examples"}
    assert not columns & (DIRECT_IDENTIFIERS | {"description", "comment", "query", "condition_name_raw"})
    # the one free text: de-identified examples (see test_the_voice_marts_are_copied_...)
    assert sorted(tables["marts_voice_examples"]) == sorted(VOICE_COLUMNS["voice_examples"])
    con = duckdb.connect(str(target), read_only=True)
    assert con.execute("SELECT campaign_id, status FROM marts_campaign_catalog ORDER BY 1").fetchall() == [
        ("C1", "past"), ("C2", "planned")]
    # E11 has 11 patients; Z99 only 3: a rare code is not named
    assert con.execute("SELECT condition_code FROM marts_condition_catalog").fetchall() == [("E11",)]
    info = con.execute(f"SELECT run_id, table_name, row_count FROM {INFO_TABLE} ORDER BY table_name").fetchdf()
    assert set(info.run_id) == {"run-1"} and dict(zip(info.table_name, info.row_count))["marts_recommendations"] == 3
    manifest = con.execute(f"SELECT reason, patients, suppressed, ranked_by FROM {MANIFEST_TABLE} ORDER BY reason")
    assert manifest.fetchall() == [("deceased", None, True, "expected uplift"),
                                   ("no marketing consent", 900, False, "expected uplift"),
                                   ("selected: contact", 500, False, "expected uplift"),
                                   ("selected: holdout", None, True, "expected uplift")]
    con.close()
    assert [p.name for p in target.parent.iterdir()] == ["insight.duckdb"]  # no partial file left behind


def test_the_voice_marts_are_copied_with_their_listed_columns_and_examples_only_of_shown_topics(warehouse, tmp_path):
    target = tmp_path / "insight.duckdb"
    counts = _publish(warehouse, target)
    tables = _tables(target)
    for table, columns in VOICE_COLUMNS.items():
        assert tables[f"marts_{table}"] == sorted(columns), table  # no extra column (model_notes, original_comment)
    con = duckdb.connect(str(target), read_only=True)
    # topic 2's example row is in the mart, but the topic's examples are not shown: not copied
    assert con.execute("SELECT topic_id, comment FROM marts_voice_examples").fetchall() == [
        (1, "Waited two hours, [NAME] said nothing")]
    assert con.execute("SELECT term FROM marts_search_theme_terms").fetchall() == [("glucose meter",)]
    assert con.execute("SELECT top_terms FROM marts_voice_topics ORDER BY topic_id").fetchall() == [
        (["wait", "排队"],), (["parking"],)]
    con.close()
    assert counts["marts_voice_topics"] == 2 and counts["marts_voice_examples"] == 1
    assert {t for t in counts if "voice" in t} == {t for t in VOICE_TABLES if "voice" in t}


def test_a_warehouse_without_the_voice_marts_gets_empty_voice_tables_and_every_other_table(warehouse, tmp_path):
    """A source without surveys or searches: the snapshot is still whole, the voice tables empty with
    their columns (and their types), and the other tables as before."""
    for table in VOICE_COLUMNS:
        warehouse.execute(f"DROP TABLE marts.{table}")
    target = tmp_path / "insight.duckdb"
    counts = _publish(warehouse, target)
    tables = _tables(target)
    assert set(tables) == set(SNAPSHOT_TABLES)
    assert all(counts[t] == 0 for t in VOICE_TABLES) and counts["marts_recommendations"] == 3
    con = duckdb.connect(str(target), read_only=True)
    kinds = dict(con.execute("SELECT column_name, data_type FROM information_schema.columns "
                             "WHERE table_name = 'marts_voice_topics'").fetchall())
    con.close()
    assert kinds == VOICE_COLUMNS["voice_topics"]
    snap = data.Snapshot(target)
    assert snap.optional_table("marts_voice_topics", VOICE_COLUMNS["voice_topics"]).empty


def test_examples_with_their_topic_but_no_topics_are_not_copied(warehouse, tmp_path):
    """voice_examples is filtered by voice_topics: without topics it is copied empty, never whole."""
    warehouse.execute("DROP TABLE marts.voice_topics")
    target = tmp_path / "insight.duckdb"
    counts = _publish(warehouse, target)
    assert counts["marts_voice_examples"] == 0 and counts["marts_voice_topics"] == 0
    assert counts["marts_search_themes"] == 1


def test_an_older_snapshot_without_voice_tables_reads_as_empty(warehouse, tmp_path):
    target = tmp_path / "insight.duckdb"
    _publish(warehouse, target)
    con = duckdb.connect(str(target))
    con.execute("DROP TABLE marts_nps_summary")
    con.close()
    found = data.Snapshot(target).optional_table("marts_nps_summary", VOICE_COLUMNS["nps_summary"])
    assert found.empty and list(found.columns) == list(VOICE_COLUMNS["nps_summary"])


def test_a_failed_copy_leaves_the_previous_snapshot_whole_and_readable(warehouse, tmp_path):
    target = tmp_path / "insight.duckdb"
    _publish(warehouse, target, run_id="first")
    reader = data.Snapshot(target)
    assert reader.query(f"SELECT DISTINCT run_id FROM snap.{INFO_TABLE}").run_id.tolist() == ["first"]
    warehouse.execute("DROP TABLE marts.uplift_models")  # the copy fails part-way through
    with pytest.raises(duckdb.Error):
        _publish(warehouse, target, run_id="second")
    assert reader.query(f"SELECT DISTINCT run_id FROM snap.{INFO_TABLE}").run_id.tolist() == ["first"]
    assert set(_tables(target)) == set(SNAPSHOT_TABLES)
    assert [p.name for p in tmp_path.iterdir() if "insight" in p.name] == ["insight.duckdb"]
    attached = warehouse.execute("SELECT database_name FROM duckdb_databases()").fetchall()
    assert ("snap",) not in attached


def test_the_app_reads_the_snapshot_read_only_and_one_patient_at_a_time(warehouse, tmp_path):
    target = tmp_path / "insight.duckdb"
    _publish(warehouse, target)
    snap = data.Snapshot(target)
    with pytest.raises(duckdb.Error):
        snap.query("CREATE TABLE snap.x AS SELECT 1")
    segment, recs = snap.patient(KEY_A)
    assert segment.startswith("high value") and recs["rank"].tolist() == [1, 2]
    nobody, none = snap.patient("c" * 64)
    assert nobody is None and none.empty
    assert snap.serving_model() == "ease_l200"


def test_manifest_counts_are_suppressed_like_the_exclusions_and_never_name_anyone():
    frame = manifest_frame(MANIFEST)
    assert set(frame.columns) == {"campaign_id", "file", "written_at", "reason", "patients", "exported", "suppressed"}
    hidden = dict(zip(frame.reason, frame.suppressed))
    # 5 deceased is a small cell; it is the campaign's only one, so the smallest sibling (55) goes too
    assert hidden == {"deceased": True, "no marketing consent": False, "selected: contact": False,
                      "selected: holdout": True}
    small = {**MANIFEST, "campaigns": [{**MANIFEST["campaigns"][0], "exported": 8,
                                        "counts": {"deceased": 50, "selected: contact": 8, "selected: holdout": 3}}]}
    assert manifest_frame(small).exported.isna().all()
    assert manifest_frame(None).empty


def test_every_text_exists_in_both_languages_with_the_same_placeholders():
    assert set(i18n.TEXT["en"]) == set(i18n.TEXT["zh"])
    assert set(i18n.TERMS["en"]) == set(i18n.TERMS["zh"])
    for key, text in i18n.TEXT["en"].items():
        assert set(re.findall(r"{(\w+)}", text)) == set(re.findall(r"{(\w+)}", i18n.TEXT["zh"][key])), key
    used = set()
    for source in APP.rglob("*.py"):
        used |= set(re.findall(r"""\bt\(\s*["']([a-z_][a-z_.]*)["']""", source.read_text(encoding="utf-8")))
    assert used and used <= set(i18n.TEXT["en"]), used - set(i18n.TEXT["en"])


def test_segment_labels_translate_by_their_parts():
    from medmkt_assets.lib.models.segments import label_segments
    from medmkt_assets.lib.sources.adapters.common import CATEGORY_KEYWORDS
    from medmkt_assets.lib.sources.schema import ORDER_CHANNELS
    categories = [c for c, _ in CATEGORY_KEYWORDS]
    words = pd.DataFrame({"avg_monetary": [0.0, 50.0, 100.0, 300.0] * len(categories),
                          "typical_age_band": ["30-39", "90+", "unknown", "70-79"] * len(categories)})
    words["top_category"] = [categories[j // 4] for j in range(len(words))]
    words["preferred_channel"] = [ORDER_CHANNELS[j % len(ORDER_CHANNELS)] for j in range(len(words))]
    for label in label_segments(words):
        chinese = i18n.segment_label(label, "zh")
        assert not re.search(r"[A-Za-z]", chinese.replace("App", "")), (label, chinese)
        assert "_" not in i18n.segment_label(label, "en")
    assert (i18n.segment_label("high value · diabetes care · clinic · 70-79 #3", "zh")
            == "高价值 · 糖尿病护理 · 诊所 · 70–79岁 #3")
    assert i18n.segment_label("all patients", "zh") == "全部患者"
    assert i18n.reason("no health education consent", "zh") == "无健康教育同意"
    assert i18n.reason("no contact details for sms", "zh") == "缺少短信联系方式"
    assert i18n.term_list("diabetes_care, cardiology", "zh") == "糖尿病护理、心血管"


def test_numbers_money_and_dates_in_the_chosen_locale():
    assert i18n.number(1234567, "en") == "1,234,567" and i18n.number(1234.56, "zh", 1) == "1,234.6"
    assert i18n.money(1234.5, "en") == "CN¥1,234.50" and i18n.money(1234.5, "zh") == "¥1,234.50"
    assert i18n.percent(0.1234, "en") == "12.3%" and i18n.points(0.032, "en") == "+3.2 pp"
    assert i18n.points(-0.032, "zh") == "-3.2个百分点"
    assert i18n.date("2025-01-15", "en") == "Jan 15, 2025" and i18n.date("2025-01-15", "zh") == "2025年1月15日"
    assert i18n.month("2025-01-01", "zh") == "2025年1月" and i18n.month("2025-01-01", "en") == "Jan 2025"
    title, body = i18n.missing_snapshot("data/insight/insight.duckdb")
    assert "make run" in body and "请先运行" in body and "快照" in title


def test_hidden_cells_render_as_the_marker_never_as_a_number():
    frame = pd.DataFrame({"patients": [40.0, None, 7.0, None], "revenue": [100.0, None, 5.0, None],
                          "suppressed": [False, True, False, False]})
    spec = {"patients": ("col.patients", "count"), "revenue": ("col.revenue", "money")}
    assert data.format_table(frame, spec, "en").to_dict("list") == {
        "Patients": ["40", "hidden", "hidden", "–"], "Revenue (CNY)": ["CN¥100.00", "hidden", "CN¥5.00", "–"]}
    assert data.format_table(frame, spec, "zh")["患者数"].tolist() == ["40", "已隐藏", "已隐藏", "–"]
    assert data.published_total(frame.patients, frame.suppressed) == 47.0


def test_relative_profile_leaves_hidden_segments_out_of_the_average():
    summary = pd.DataFrame({"segment_id": [0, 1, 2], "patients": [100.0, 300.0, None],
                            "suppressed": [False, False, True],
                            **{m: [1.0, 3.0, None] for m in data.PROFILE_MEASURES}})
    relative = data.relative_profile(summary)
    assert set(relative.segment_id) == {0, 1}
    first = relative[relative.measure == "avg_monetary"].set_index("segment_id")["index"]
    assert first[0] == pytest.approx(100 * 1 / 2.5) and first[1] == pytest.approx(100 * 3 / 2.5)


def test_rule_items_get_names_and_rules_filter_by_scope_lift_confidence_and_product():
    names = data.Names({"P1": "Metformin", "P2": "Glucose meter"}, {"E11": "Type 2 diabetes"})
    assert names.items(["P1", "P2"], "en") == "Metformin + Glucose meter"
    assert names.item("category:diabetes_care", "zh") == "品类：糖尿病护理"
    assert names.item("condition:E11", "en") == "Condition: E11 Type 2 diabetes"
    assert names.item("condition:Z99", "zh") == "疾病：Z99"
    rules = pd.DataFrame({"rule_id": ["B1", "B2", "P1"], "scope": ["basket", "basket", "patient"],
                          "antecedents": [["P1"], ["P2"], ["category:checkup"]],
                          "consequents": [["P2"], ["P3"], ["P1"]],
                          "lift": [2.0, 3.0, 4.0], "confidence": [0.6, 0.3, 0.9]})
    assert data.filter_rules(rules, "basket", 1.0, 0.0, None).rule_id.tolist() == ["B2", "B1"]
    assert data.filter_rules(rules, "basket", 1.0, 0.5, None).rule_id.tolist() == ["B1"]
    assert data.filter_rules(rules, "basket", 1.0, 0.0, "P3").rule_id.tolist() == ["B2"]
    assert data.rule_products(rules, "patient") == ["P1"]


def test_recommendation_reasons_and_model_names():
    assert data.recommendation_reason("ease_l200") == "reason.similar"
    assert data.recommendation_reason("content") == "reason.content"
    assert data.recommendation_reason("popularity_by_segment") == "reason.segment"
    assert data.model_name("ease_l200", "en") == "EASE (λ = 200)"
    assert data.model_name("itemknn_cosine_decay", "zh") == "与相同商品一起购买（余弦、近期购买权重更高）"
    assert data.metric_name("ndcg_at_10", "en") == "NDCG@10" and data.metric_name("novelty", "zh") == "新颖度"


def test_the_snapshot_asset_waits_for_every_asset_that_writes_what_it_copies(tmp_path, monkeypatch):
    from medmkt_assets.definitions import build_definitions
    from medmkt_assets.settings import Settings

    monkeypatch.setenv("MEDMKT_WAREHOUSE", str(tmp_path / "warehouse.duckdb"))
    graph = build_definitions(Settings.from_env()).get_repository_def().asset_graph
    snapshot = graph.get(dg.AssetKey(["ops", "insight_snapshot"]))
    assert snapshot.group_name == "insight"
    assert all(graph.has(key) and not graph.get(key).is_external for key in snapshot.parent_keys)
    copied = {t.removeprefix("marts_") for t in SNAPSHOT_SQL}
    written_by = {"uplift_models": "uplift_scores",
                  "recommendation_evaluation": "recommendations"}
    assert {written_by.get(t, t) for t in copied} <= {key.path[-1] for key in snapshot.parent_keys}
    # the voice marts are copied when they exist: an asset named after one must come before the snapshot
    voice = {key for key in graph.materializable_asset_keys if key.path[-1] in VOICE_COLUMNS}
    assert voice <= set(snapshot.parent_keys), voice - set(snapshot.parent_keys)


def test_without_a_snapshot_the_app_says_so_in_both_languages(tmp_path, monkeypatch):
    from streamlit.testing.v1 import AppTest

    missing = tmp_path / "insight" / "insight.duckdb"
    monkeypatch.setenv("MEDMKT_INSIGHT_SNAPSHOT", str(missing))
    app = AppTest.from_file(str(APP / "Home.py"), default_timeout=30).run()
    assert not app.exception
    message = app.error[0].value
    assert str(missing) in message and "make run" in message and "请先运行" in message


def test_the_gettext_catalogs_compiled_agree_with_their_sources():
    """Each language's shipped .mo holds exactly its .po's messages; both languages have the same
    messages; the app reads its texts from the compiled catalogs."""
    from medmkt_assets.app import catalogs

    assert catalogs.languages() == sorted(i18n.LANGUAGES)
    found = {}
    for lang in i18n.LANGUAGES:
        po = catalogs.messages(catalogs.read_catalog(catalogs.po_path(lang)))
        assert po == catalogs.messages(catalogs.read_catalog(catalogs.mo_path(lang))), (
            f"{catalogs.mo_path(lang)} is stale: run `make catalogs`")
        assert all(po.values()), [k for k, v in po.items() if not v]
        found[lang] = po
    assert set(found["en"]) == set(found["zh"])
    assert i18n.TEXT["zh"]["nav.segments"] == found["zh"][(None, "nav.segments")]
    assert i18n.TERMS["zh"]["diabetes_care"] == found["zh"][(catalogs.TERM, "diabetes_care")]


def test_product_names_in_chinese_where_the_source_has_them():
    from medmkt_assets.lib.ops.insight import product_catalog_sql

    con = duckdb.connect()
    con.execute("CREATE SCHEMA raw; CREATE SCHEMA staging; CREATE SCHEMA marts;"
                "CREATE TABLE staging.products AS SELECT * FROM (VALUES ('P1', 'Metformin', 'diabetes_care', 'drug'),"
                " ('P2', 'Glucose meter', 'diabetes_care', 'device')) t(product_id, name, category, kind);"
                "CREATE TABLE raw.products AS SELECT * FROM (VALUES (' P1 ', '二甲双胍'), ('P2', ''), ('P1', '二甲双胍'))"
                " t(product_id, name_zh)")
    con.execute(product_catalog_sql(["product_id", "name_zh"]))
    assert con.execute("SELECT product_id, name_zh FROM marts.product_catalog ORDER BY 1").fetchall() == [
        ("P1", "二甲双胍"), ("P2", None)]
    con.execute(product_catalog_sql(["product_id", "name"]))
    assert con.execute("SELECT count(name_zh), count(*) FROM marts.product_catalog").fetchall() == [(0, 2)]
    names = data.Names({"P1": "Metformin", "P2": "Glucose meter"}, {}, {"P1": "二甲双胍"})
    assert names.items(["P1", "P2"], "zh") == "二甲双胍 + Glucose meter"
    assert names.items(["P1", "P2"], "en") == "Metformin + Glucose meter"


def test_every_demo_product_and_category_has_a_chinese_name():
    from medmkt_assets.demo_data import world as W

    assert {s for _, _, stems in W.CATALOG.values() for s in stems} == set(W.CATALOG_ZH)
    for category in W.CATEGORIES:
        assert re.search(r"[\u4e00-\u9fff]", i18n.term(category, "zh")), category


def test_a_hidden_effect_row_says_why_and_never_claims_under_11():
    rows = pd.DataFrame({"treated": [24.0, None, 111.0, 300.0], "control": [9.0, None, 48.0, 120.0],
                         "suppressed": [True, True, True, False]})
    rows.loc[0, ["treated", "control"]] = None  # as the mart publishes an arm of 9: both sizes blank
    assert data.hidden_reason(rows, partitioned=False).tolist() == [
        "hidden.group", "hidden.group", "hidden.conversions", None]
    assert data.hidden_reason(rows, partitioned=True).tolist()[2] == "hidden.conversions.or_partner"
    assert i18n.t("hidden", "en") == "hidden" and "11" not in i18n.t("hidden", "en")
    frame = pd.DataFrame({"treated": [None], "revenue": [None], "suppressed": [True]})
    shown = data.format_table(frame, {"treated": ("col.treated", "count"), "revenue": ("col.revenue", "money")}, "en")
    assert shown.iloc[0].tolist() == ["hidden", "hidden"]


def test_a_channel_hidden_only_as_a_partner_shows_its_published_campaigns():
    effects = pd.DataFrame({"campaign_id": ["C1", "C2", "C3"], "channel": ["call", "sms", "sms"],
                            "treated": [370.0, 200.0, 100.0], "control": [179.0, 80.0, 40.0],
                            "treated_conversion_rate": [0.1, 0.2, 0.3], "control_conversion_rate": [0.05, 0.1, 0.2],
                            "cost": [100.0, 10.0, 5.0], "incremental_revenue": [300.0, 50.0, 20.0],
                            "suppressed": [False, False, True]})
    channels = pd.DataFrame({"group_type": "channel", "group_value": ["call", "sms", "email"],
                             "treated": [None, None, 50.0], "control": [None, None, 20.0],
                             **{c: [None, None, 0.1] for c in ("uplift", "uplift_ci_low", "uplift_ci_high",
                                                                "p_value", "cost", "incremental_revenue", "roi")},
                             "suppressed": [True, True, False]})
    out = data.fill_from_campaigns(channels, effects)
    call = out.iloc[0]
    assert call.from_campaigns and not call.suppressed and (call.treated, call.control) == (370, 179)
    assert call.uplift == pytest.approx(0.1 - 0.05, abs=1e-3) and call.uplift_ci_low < call.uplift < call.uplift_ci_high
    assert call.roi == pytest.approx((300 - 100) / 100)
    assert out.iloc[1].suppressed and not out.iloc[1].from_campaigns  # one of its campaigns is hidden
    assert not out.iloc[2].from_campaigns and out.iloc[2].treated == 50


def test_the_evaluation_says_which_model_serves_and_which_is_only_a_comparison():
    evaluation = pd.DataFrame({"model": ["popularity_by_segment", "ease_l200", "content"],
                               "split": "holdout", "ndcg_at_10": [0.406, 0.395, 0.2]})
    assert data.recommender_roles(evaluation, "ease_l200").tolist() == ["role.optimistic", "role.served",
                                                                       "role.candidate"]


def test_the_heatmap_labels_every_column():
    from medmkt_assets.app import charts

    frame = pd.DataFrame({"measure": [f"a rather long measure name {i}" for i in range(9)], "segment": "s",
                          "index": range(9), "text": "x"})
    spec = charts.heatmap(frame, "measure", "segment", "index", "text", "x", "y", "v", tooltip=[]).to_dict()
    axis = spec["layer"][0]["encoding"]["x"]["axis"] if "layer" in spec else spec["encoding"]["x"]["axis"]
    assert axis["labelOverlap"] is False


def test_voice_examples_only_of_topics_whose_examples_are_shown_and_more_than_10_people_wrote():
    topics = pd.DataFrame({"topic_id": [1, 2, 3, 4], "examples_shown": [True, False, True, None],
                           "authors": [40.0, 40.0, None, 50.0]})
    examples = pd.DataFrame({"topic_id": [1, 1, 2, 3, 4], "rank": [2, 1, 1, 1, 1],
                             "comment": ["b", "a", "never", "never", "never"]})
    assert data.topic_examples(topics, examples, 1).comment.tolist() == ["a", "b"]
    assert all(data.topic_examples(topics, examples, t) is None for t in (2, 3, 4, 99))
    assert data.topic_label("Waiting times", "等候时间", "zh") == "等候时间"
    assert data.topic_label("Waiting times", None, "zh") == "Waiting times"
    assert data.topic_label("Waiting times", "等候时间", "en") == "Waiting times"
    assert data.topic_terms(["wait", "排队"], "zh") == "wait、排队"


def test_drivers_read_as_effect_and_interval_against_the_reference_by_factor():
    drivers = pd.DataFrame({
        "outcome": ["satisfaction"] * 4 + ["nps"], "factor": ["channel", "segment", "segment", "channel", "channel"],
        "level": ["online", "high value · diabetes care · clinic · 70-79", "no purchases yet · 30-39", "phone",
                  "online"],
        "reference_level": ["clinic", "mid value · 30-39", "mid value · 30-39", "clinic", "clinic"],
        "respondents": [500, 420, 300, 8, 500], "effect": [-0.25, 0.3, -0.05, 0.9, -1.2],
        "ci_low": [-0.4, 0.21, -0.2, 0.1, -1.8], "ci_high": [-0.1, 0.39, 0.1, 1.7, -0.6],
        "p_value": [0.001, 0.0001, 0.5, 0.03, 0.0001], "model": "ols"})
    rows = data.driver_rows(drivers, "satisfaction", "en")
    assert rows.factor.tolist() == ["segment", "segment", "channel", "channel"]  # segments first, largest first
    assert rows.estimate_text.tolist() == ["+0.30 (0.21 to 0.39)", "-0.05 (-0.20 to 0.10)", "hidden",
                                           "-0.25 (-0.40 to -0.10)"]
    assert rows.clear.tolist() == [True, False, None, True]  # 8 respondents: hidden, nothing said
    zh = data.driver_rows(drivers, "satisfaction", "zh")
    assert zh.estimate_text.iloc[0] == "+0.30 (0.21 至 0.39)"
    assert zh.level_text.tolist()[-1] == "线上" and zh.reference_text.iloc[-1] == "诊所"
    assert data.driver_rows(drivers, "nps", "en").estimate_text.tolist() == ["-1.20 (-1.80 to -0.60)"]
    assert data.driver_rows(drivers.iloc[:0], "nps", "en").empty
    assert data.level_name("campaign", "none", "zh") == "答卷前未接触营销活动"
    assert data.level_name("campaign", "C1", "en", {"C1": "Spring offer"}) == "Spring offer"
    assert data.level_name("facility", "none", "en") == "none found"


def test_nps_cells_hide_what_the_mart_suppressed_and_quality_figures_are_named():
    summary = pd.DataFrame({"dimension": ["overall", "channel", "channel"], "level": ["all", "online", "sms"],
                            "respondents": [900, 400, None], "promoters_share": [0.5, 0.4, None],
                            "passives_share": [0.3, 0.3, None], "detractors_share": [0.2, 0.3, None],
                            "nps": [30.0, 10.0, None], "nps_ci_low": [25.0, 2.5, None],
                            "nps_ci_high": [35.0, 17.5, None]})
    overall = data.nps_rows(summary, "overall", "zh")
    assert overall.level_text.tolist() == ["全部受访者"] and overall.nps_text.tolist() == ["+30.0"]
    channels = data.nps_rows(summary, "channel", "en")
    assert channels.level_text.tolist() == [i18n.term("online", "en"), i18n.term("sms", "en")]
    assert channels.nps_text.tolist() == ["+10.0", "hidden"] and channels.ci_text.tolist() == ["2.5 to 17.5", "hidden"]
    shown = data.format_table(channels, {"respondents": ("col.respondents", "count")}, "en")
    assert shown.iloc[:, 0].tolist() == ["400", "hidden"]
    quality = pd.DataFrame({"metric": ["comments_analysed", "sentiment_accuracy", "coherence"],
                            "value": [2400.0, 0.812, 0.47]})
    assert data.quality_rows(quality, "zh").to_dict("list") == {
        "指标": ["已分析的意见", "情感与满意度评分一致的比例", "coherence"], "数值": ["2,400", "81.2%", "0.470"]}
    assert data.quality_value(quality, "sentiment_accuracy") == pytest.approx(0.812)
    assert data.quality_value(quality, "sentiment_kappa") is None
    assert data.quality_value(quality.assign(metric=["sentiment_cohen_kappa", "x", "y"]), *data.KAPPA) == 2400.0
    assert data.level_name("campaign", "other", "zh") == i18n.term("other", "zh") != "other"
