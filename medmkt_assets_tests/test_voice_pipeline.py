"""Patient voice on the demo world (issue 31): the planted topics, drivers and trend are found, and no
planted identifier reaches anything outside raw, restricted and quarantine."""
from __future__ import annotations

import json
from pathlib import Path

import duckdb
import mlflow
import pandas as pd
import pytest

from medmkt_assets.lib.privacy.identifiers import PRIVATE_SCHEMA_PREFIXES
from medmkt_assets.lib.privacy.pseudonym import pseudonymize
from medmkt_assets.lib.privacy.suppression import SMALL_CELL_MAX


@pytest.fixture(scope="module")
def voice(demo_pipeline) -> dict:
    con = duckdb.connect(str(demo_pipeline["warehouse"]), read_only=True)
    truth = demo_pipeline["truth"]
    yield {"con": con, "planted": json.loads((truth / "voice.json").read_text()),
           "identifiers": pd.read_csv(truth / "voice_identifiers.csv", dtype=str),
           "comments": pd.read_csv(truth / "voice_comments.csv", dtype=str), "root": demo_pipeline["root"],
           "key": demo_pipeline["key"], "result": demo_pipeline["result"]}
    con.close()


def _texts_outside_restricted(con) -> dict[str, str]:
    """Every text (and text list) column of every table outside raw/restricted/quarantine, as one string."""
    columns = con.execute("SELECT table_schema, table_name, column_name FROM information_schema.columns "
                          "WHERE data_type LIKE 'VARCHAR%'").fetchall()
    out = {}
    for schema, table, column in columns:
        if schema.startswith(PRIVATE_SCHEMA_PREFIXES):
            continue
        values = con.execute(f'SELECT DISTINCT CAST("{column}" AS VARCHAR) FROM "{schema}"."{table}" '
                             f'WHERE "{column}" IS NOT NULL').fetchall()
        out[f"{schema}.{table}.{column}"] = "\n".join(v[0] for v in values)
    return out


def _found(identifiers: pd.DataFrame, texts: dict[str, str]) -> list[tuple[str, str, str]]:
    return [(where, row.kind, row.value) for where, text in texts.items() for row in identifiers.itertuples()
            if row.value.lower() in text.lower()]


def test_the_demo_plants_identifiers_of_every_kind_in_comments_and_queries(voice):
    planted = voice["identifiers"]
    assert set(planted[planted["where"] == "comment"].kind) >= {"name", "phone", "email", "address", "id_number",
                                                                "insurance_number"}
    assert set(planted[planted["where"] == "query"].kind) == {"name", "phone", "email"}
    # they are really in the restricted text, so finding none elsewhere means something
    con = voice["con"]
    restricted = "\n".join(r[0] for r in con.execute("SELECT comment FROM restricted.surveys").fetchall())
    assert sum(v in restricted for v in planted[planted["where"] == "comment"].value) >= 0.8 * (
        planted["where"] == "comment").sum()


def test_no_planted_identifier_reaches_features_marts_or_the_app_snapshot(voice):
    con = voice["con"]
    texts = _texts_outside_restricted(con)
    assert "features.survey_comments.comment" in texts and "marts.voice_examples.comment" in texts
    assert _found(voice["identifiers"], texts) == []
    snapshot = voice["root"] / "insight" / "insight.duckdb"
    if snapshot.exists():
        with duckdb.connect(str(snapshot), read_only=True) as snap:
            assert _found(voice["identifiers"], _texts_outside_restricted(snap)) == []


def test_no_planted_identifier_reaches_mlflow_dagster_metadata_or_the_data_docs(voice):
    # (the Data Docs' vendored scripts are not ours: a minified library holds every word there is)
    files = [p for folder in ("mlflow", "quality", "alerts") for p in (voice["root"] / folder).rglob("*")
             if p.is_file() and "vendor" not in p.parts]
    assert any(p.name == "topics.csv" for p in files)
    texts = {str(p): p.read_bytes().decode("utf-8", "ignore") for p in files}
    assert _found(voice["identifiers"], texts) == []
    metadata = "\n".join(str(event.event_specific_data) for event in voice["result"].all_events)
    assert _found(voice["identifiers"], {"dagster events": metadata}) == []


def test_comments_are_redacted_with_typed_placeholders_and_raw_text_stays_restricted(voice):
    con = voice["con"]
    placeholders = dict(con.execute(
        "SELECT p, count(*) FROM (SELECT unnest(regexp_extract_all(comment, '\\[([A-Z_]+)\\]', 1)) AS p "
        "FROM features.survey_comments) GROUP BY 1").fetchall())
    assert {"NAME", "PHONE", "EMAIL", "ADDRESS", "ID_NUMBER", "INSURANCE_NUMBER"} <= set(placeholders)
    assert "comment" not in [r[0] for r in con.execute("DESCRIBE staging.surveys").fetchall()]
    assert "query" not in [r[0] for r in con.execute("DESCRIBE staging.events").fetchall()]


def test_comments_that_speak_of_a_sensitive_condition_are_withheld(voice):
    con, truth = voice["con"], voice["comments"]
    sensitive = truth[truth.topics.fillna("").str.startswith("sensitive:")]
    assert len(sensitive)
    keys = {pseudonymize(pid, voice["key"]) for pid in sensitive.patient_id}
    withheld = {r[0] for r in con.execute("SELECT patient_key FROM restricted.sensitive_surveys").fetchall()}
    assert keys <= withheld
    analysed = con.execute("SELECT count(*) FROM features.survey_comments c JOIN restricted.sensitive_surveys s "
                           "USING (patient_key, responded_at)").fetchone()[0]
    assert analysed == 0
    # how many were withheld is told where the policy's other counts are (small counts hidden), not in a
    # mart: marts must not depend on sensitive rows (test_sensitive_data's counterfactual)
    quality = dict(con.execute("SELECT metric, value FROM marts.voice_quality").fetchall())
    assert "comments_excluded_sensitive" not in quality
    use = con.execute("SELECT sum(coalesce(rows_withheld, 0)), bool_or(suppressed) FROM ops.sensitive_use "
                      "WHERE source_table = 'surveys'").fetchone()
    assert use[0] == len(withheld) or use[1]


def test_every_planted_topic_is_found_with_its_words_and_a_marketers_label(voice):
    con, planted = voice["con"], voice["planted"]["topics"]
    topics = con.execute("SELECT topic_id, label, label_zh, top_terms FROM marts.voice_topics").fetchdf()
    found = {}
    for name, spec in planted.items():
        keys = set(spec["key_terms"])
        hits = [t.topic_id for t in topics.itertuples() if keys & set(list(t.top_terms)[:5])]
        assert hits, f"planted topic {name} ({sorted(keys)}) is not among the top 5 terms of any topic"
        found[name] = hits
    # and distinct topics carry them: no single catch-all topic
    assert len({i for hits in found.values() for i in hits}) >= len(planted) - 1
    assert topics.label.notna().all() and topics.label_zh.notna().all()
    labels = " ".join(topics.label).lower()
    for word in ("wait", "price", "deliver", "doctor"):
        assert word in labels, f"no topic labelled with '{word}': {list(topics.label)}"


def test_topic_counts_hide_small_cells_and_examples_need_11_authors(voice):
    con = voice["con"]
    topics = con.execute("SELECT topic_id, authors, examples_shown FROM marts.voice_topics").fetchdf()
    assert not topics.authors.between(1, SMALL_CELL_MAX).any()
    shown = set(topics[topics.examples_shown].topic_id)
    assert set(topics[topics.authors.fillna(0) > SMALL_CELL_MAX].topic_id) >= shown
    examples = con.execute("SELECT topic_id, comment FROM marts.voice_examples").fetchdf()
    assert len(examples) and set(examples.topic_id) <= shown
    trends = con.execute("SELECT authors FROM marts.voice_topic_trends").fetchdf()
    assert not trends.authors.between(1, SMALL_CELL_MAX).any()


def test_the_planted_delivery_trend_rises(voice):
    con = voice["con"]
    delivery = con.execute(
        "SELECT t.month, count(*) FILTER (WHERE v.label ILIKE 'delivery%') / count(*) AS share "
        "FROM marts.comment_topics t JOIN marts.voice_topics v USING (topic_id) GROUP BY 1 ORDER BY 1").fetchdf()
    # planted: delivery's weight grows fourfold over the two years
    first, last = delivery.share.head(12).mean(), delivery.share.tail(12).mean()
    assert last > first * 1.25, f"delivery's share went from {first:.3f} to {last:.3f}"


def test_sentiment_agrees_with_the_scores_and_the_agreement_is_published(voice):
    con = voice["con"]
    quality = dict(con.execute("SELECT metric, value FROM marts.voice_quality").fetchall())
    # the planted tone follows the score (85-95 % at 4-5, 85-95 % at 1-2); a 3 is written either way, so
    # three-class agreement is bounded well below 1, the agreement on clear scores is not
    assert quality["sentiment_polar_agreement"] > 0.75
    assert quality["sentiment_accuracy"] > 0.5
    assert quality["sentiment_cohen_kappa"] > 0.2
    assert quality["sentiment_spearman"] > 0.4
    sentiment = con.execute("SELECT c.satisfaction, t.sentiment FROM marts.comment_topics t "
                            "JOIN features.survey_comments c USING (survey_id)").fetchdf()
    mean = sentiment.groupby("sentiment").satisfaction.mean()
    assert mean["positive"] > mean["negative"] + 0.5


def _planted_effect(planted: dict, factor: str, level: str, reference: str) -> float | None:
    table = planted[factor]
    return table.get(level, 0.0) - table.get(reference, 0.0)


def test_driver_intervals_cover_the_planted_effects(voice):
    con, planted = voice["con"], voice["planted"]
    drivers = con.execute("SELECT * FROM marts.satisfaction_drivers WHERE outcome = 'satisfaction'").fetchdf()
    judged = drivers[drivers.factor.isin(["channel", "facility", "category", "campaign"])
                     & (drivers.level != "other") & (drivers.reference_level != "other")]
    assert len(judged) >= 10
    truth = [_planted_effect(planted, r.factor, r.level, r.reference_level) for r in judged.itertuples()]
    covered = (judged.ci_low.to_numpy() <= truth) & (judged.ci_high.to_numpy() >= truth)
    assert covered.mean() >= 0.85, judged.assign(truth=truth)[~covered].to_string()
    # the biggest planted effects are found, not merely covered
    channel = drivers[drivers.factor == "channel"].set_index("level")
    reference = channel.reference_level.iloc[0]
    assert reference != "phone" and channel.loc["phone", "ci_high"] < 0
    nps = con.execute("SELECT * FROM marts.satisfaction_drivers WHERE outcome = 'nps' AND factor = 'channel' "
                      "AND level = 'phone'").fetchdf()
    assert (nps.ci_high < 0).all()


def test_nps_by_segment_and_channel_with_intervals_and_small_cells_hidden(voice):
    con = voice["con"]
    nps = con.execute("SELECT * FROM marts.nps_summary").fetchdf()
    assert set(nps.dimension) == {"overall", "segment", "channel"}
    shown = nps[~nps.suppressed]
    assert ((shown.nps_ci_low <= shown.nps) & (shown.nps <= shown.nps_ci_high)).all()
    assert not nps.respondents.between(1, SMALL_CELL_MAX).any()


def test_search_themes_follow_the_planted_query_categories_by_month_and_region(voice):
    con = voice["con"]
    themes = con.execute("SELECT theme, sum(searches) AS searches FROM marts.search_themes GROUP BY 1").fetchdf()
    assert "checkup" in set(themes.theme) and themes.searches.sum() > 0
    terms = con.execute("SELECT theme, term FROM marts.search_theme_terms").fetchdf()
    assert {"体检", "checkup"} & set(terms[terms.theme == "checkup"].term)
    months = con.execute("SELECT count(DISTINCT month), count(DISTINCT region) FROM marts.search_themes").fetchone()
    assert months[0] >= 12 and months[1] >= 3
    cells = con.execute("SELECT searches, searchers FROM marts.search_themes").fetchdf()
    assert not cells.searches.between(1, SMALL_CELL_MAX).any()
    assert not cells.searchers.between(1, SMALL_CELL_MAX).any()


def test_the_text_models_and_the_drivers_are_mlflow_runs(voice):
    mlflow.set_tracking_uri(f"sqlite:///{voice['root'] / 'mlflow' / 'mlflow.db'}")
    runs = mlflow.search_runs(experiment_names=["medmkt-patient-voice"])
    names = set(runs["tags.mlflow.runName"])
    assert {"topics_and_sentiment", "satisfaction_drivers"} <= names
    text = runs[runs["tags.mlflow.runName"] == "topics_and_sentiment"].iloc[0]
    assert text["metrics.sentiment_accuracy"] > 0.5 and text["metrics.topics"] >= 5
    artifacts = Path(mlflow.get_run(text.run_id).info.artifact_uri.removeprefix("file://"))
    assert (artifacts / "topics.csv").exists()


def test_the_voice_quality_gates_and_small_cell_checks_ran_and_passed(voice):
    evaluations = {(e.asset_key.to_user_string(), e.check_name): e.passed
                   for e in voice["result"].get_asset_check_evaluations()}
    expected = {("features/survey_comments", "no_identifier_left"), ("features/search_queries", "no_identifier_left"),
                ("marts/voice_topics", "labelled"), ("marts/satisfaction_drivers", "effect_inside_interval"),
                ("marts/voice_topics", "small_cells_hidden"), ("marts/voice_topic_trends", "small_cells_hidden"),
                ("marts/nps_summary", "small_cells_hidden"), ("marts/search_themes", "small_cells_hidden")}
    assert expected <= set(evaluations), sorted(expected - set(evaluations))
    failed = [key for key, passed in evaluations.items() if not passed and key[0].split("/")[1] in (
        "survey_comments", "search_queries", "voice_topics", "voice_topic_trends", "satisfaction_drivers",
        "nps_summary", "search_themes")]
    assert failed == []
