"""Patient voice (issue 31): survey comments and search queries, de-identified, then analysed.

features.survey_comments  the comments with every identifier replaced (raw text: restricted.surveys)
features.survey_responses each response beside the visit it is about (factors of the driver model)
marts.voice_*             topics, their monthly trend, de-identified examples, sentiment quality
marts.satisfaction_drivers, marts.nps_summary   what goes with higher or lower scores
features.search_queries, marts.search_themes, marts.search_theme_terms   what patients search for
"""
import time
from collections import Counter

import dagster as dg
import numpy as np
import pandas as pd
from mlflow import log_metrics, log_params
from pydantic import Field

from medmkt_assets.defs.resources import MlflowTracker, Warehouse
from medmkt_assets.defs.warehouse import REFRESH_WHEN_INPUTS_CHANGE, WAREHOUSE_POOL, row_count
from medmkt_assets.lib.privacy.suppression import SMALL_CELL_MAX, hidden_cells, hide_complement, is_small_cell
from medmkt_assets.lib.tracking import mlflow_runs
from medmkt_assets.lib.voice import sql as Q
from medmkt_assets.lib.voice import topics as T
from medmkt_assets.lib.voice.deidentify import redact_many
from medmkt_assets.lib.voice.drivers import fit_all_drivers, nps_interval
from medmkt_assets.lib.voice.search import assign_themes, category_documents
from medmkt_assets.lib.voice.sentiment import fit_sentiment
from medmkt_assets.lib.voice.text import language, tokenize

GROUP = "voice"
EXPERIMENT = "medmkt-patient-voice"


def _key(schema: str, name: str) -> dg.AssetKey:
    return dg.AssetKey([schema, name])


def _mart_specs(tables: dict[str, str], source: str, kinds: set[str]) -> list[dg.AssetSpec]:
    """One spec per mart a voice step writes, all fed by the same features table."""
    return [dg.AssetSpec(_key("marts", t), group_name=GROUP, kinds=kinds, description=d,
                         deps=[_key("features", source)], automation_condition=REFRESH_WHEN_INPUTS_CHANGE)
            for t, d in tables.items()]


def _known(frame: pd.DataFrame) -> list[list[str]]:
    """Per row, the author's own identifiers from the restricted patients table; none for the rows the
    engine found cannot hold one (patient_key NULL: see lib.voice.sql.own_identifier_ctes)."""
    known: list[list[str]] = [[] for _ in range(len(frame))]
    own = frame.patient_key.notna().to_numpy()
    values = frame.loc[own, list(Q.KNOWN_COLUMNS)].astype("string")
    for i, row in zip(own.nonzero()[0], values.itertuples(index=False)):
        known[i] = [v for v in row if isinstance(v, str) and v.strip()]
    return known


def _by_text(texts: pd.Series, function) -> list:
    """`function` of each text, called once per distinct text (comments and queries repeat)."""
    done = {t: function(t) for t in texts.drop_duplicates()}
    return [done[t] for t in texts]


@dg.asset(key=["features", "survey_comments"], group_name=GROUP, kinds={"duckdb"}, pool=WAREHOUSE_POOL,
          automation_condition=REFRESH_WHEN_INPUTS_CHANGE,
          deps=[_key("staging", "surveys"), _key("staging", "patients")])
def survey_comments(context: dg.AssetExecutionContext, warehouse: Warehouse) -> dg.MaterializeResult:
    """Survey comments with names, phone numbers, e-mail, ID and insurance numbers, addresses and dates
    replaced by typed placeholders; the raw text never leaves restricted.surveys."""
    started = time.perf_counter()
    with warehouse.session() as con:
        raw = con.execute(Q.COMMENTS_TO_REDACT_SQL).fetchdf()
    redacted = redact_many(raw.comment.tolist(), _known(raw))
    frame = pd.DataFrame({
        "survey_id": raw.survey_id,
        "comment": [r.text if r else None for r in redacted],
        "redactions": [sum(r.counts.values()) if r else 0 for r in redacted],
    })
    frame["language"] = _by_text(frame.comment, lambda t: language(t) if t else None)
    kinds = Counter()
    for r in redacted:
        if r:
            kinds.update(r.counts)
    with warehouse.transaction() as con:
        con.write_frame(frame, "features.survey_comments", query=Q.SURVEY_COMMENTS_SQL)
        n = row_count(con, "features.survey_comments")
    if not n:
        context.log.warning("No survey comments in the source: features.survey_comments is empty.")
    return dg.MaterializeResult(metadata={
        "dagster/row_count": n,
        "identifiers_replaced": int(frame.redactions.sum()),
        "comments_with_identifiers": int((frame.redactions > 0).sum()),
        "replaced_by_kind": dg.MetadataValue.json({k: v for k, v in kinds.most_common() if v}),
        "languages": dg.MetadataValue.json(frame.language.value_counts().to_dict()),
        "seconds": round(time.perf_counter() - started, 2),
    })


@dg.asset(key=["features", "survey_responses"], group_name=GROUP, kinds={"duckdb"}, pool=WAREHOUSE_POOL,
          automation_condition=REFRESH_WHEN_INPUTS_CHANGE,
          deps=[_key("staging", t) for t in ("surveys", "orders", "products", "campaign_contacts")]
          + [_key("marts", "patient_segments")])
def survey_responses(context: dg.AssetExecutionContext, warehouse: Warehouse) -> dg.MaterializeResult:
    """Each survey response beside the visit it rates (the author's latest order at or before it), their
    segment and the campaign that contacted them in the 60 days before."""
    with warehouse.transaction() as con:
        con.execute("CREATE OR REPLACE TABLE features.survey_responses AS "
                    + Q.SURVEY_RESPONSES_SQL.format(window_days=Q.CAMPAIGN_WINDOW_DAYS))
        n = row_count(con, "features.survey_responses")
        linked = con.execute("SELECT count(channel), count(campaign) FROM features.survey_responses").fetchall()[0]
    return dg.MaterializeResult(metadata={"dagster/row_count": n, "with_a_visit": int(linked[0]),
                                          "after_a_campaign_contact": int(linked[1])})


class VoiceConfig(dg.Config):
    n_topics: int = Field(default=0, description=(
        "Topics the NMF model finds among the comments no theme of themes.yaml holds (0: chosen by coherence, "
        "up to max_topics)."))
    max_topics: int = Field(default=12, description="Most NMF topics tried when n_topics is 0.")
    examples_per_topic: int = Field(default=5, description="De-identified example comments shown per topic.")
    seed: int = Field(default=7, description="Seed of the topic model and the sentiment folds.")


VOICE_TABLES = {
    "comment_topics": "Each analysed comment's topic, its weight and sentiment (no patient key).",
    "voice_topics": "Topics of survey comments: labels in English and Chinese, top terms, share, authors "
                    "(1-10 hidden), satisfaction, NPS and sentiment mix.",
    "voice_topic_trends": "Each topic's comments per month (1-10 authors hidden) and share of the month.",
    "voice_examples": "De-identified example comments, only for topics with at least 11 authors.",
    "voice_quality": "How the text models did: sentiment agreement with the score, topics, identifiers replaced.",
}


@dg.multi_asset(
    specs=_mart_specs(VOICE_TABLES, "survey_comments", {"duckdb", "mlflow"}),
    pool=WAREHOUSE_POOL, name="voice_topics",
)
def voice_topics(context: dg.AssetExecutionContext, config: VoiceConfig, warehouse: Warehouse,
                 tracker: MlflowTracker):
    """Topics and sentiment of the de-identified comments, validated against the satisfaction scores."""
    with warehouse.session() as con:
        comments = con.execute("SELECT survey_id, patient_key, month, satisfaction, nps, language, comment "
                               "FROM features.survey_comments ORDER BY survey_id").fetchdf()
    texts = comments.comment.fillna("").tolist()
    model = T.fit_topics(texts, n_topics=config.n_topics or None, seed=config.seed,
                         max_topics=config.max_topics) if texts else None
    topic_id, weight = model.assign(texts) if model else (np.zeros(0, int), np.zeros(0))
    sentiment = fit_sentiment(texts, comments.satisfaction.to_numpy(), seed=config.seed)
    assigned = comments.assign(topic_id=np.asarray(topic_id, int), topic_weight=np.asarray(weight, float),
                               sentiment=np.asarray(sentiment.labels, object),
                               sentiment_score=np.asarray(sentiment.scores, float))
    described = pd.DataFrame({"topic_id": range(model.k if model else 0),
                              "label": [en for en, _ in model.labels] if model else [],
                              "label_zh": [zh for _, zh in model.labels] if model else [],
                              "top_terms": list(model.top_terms) if model else []})
    quality = {"comments_analysed": float(len(comments)), "topics": float(len(described)),
               "comments_without_topic": float((assigned.topic_id < 0).sum()),
               **{f"sentiment_{k}": float(v) for k, v in sentiment.report.items()
                  if k in ("accuracy", "polar_agreement", "macro_f1", "cohen_kappa", "spearman") and v is not None}}
    with warehouse.transaction() as con:
        con.write_frame(assigned[["survey_id", "month", "topic_id", "topic_weight", "sentiment", "sentiment_score"]],
                        "marts.comment_topics", query=COMMENT_TOPICS_SQL)
        topics = _topic_counts(described, con.execute(Q.TOPIC_COUNTS_SQL).fetchdf())
        con.write_frame(topics, "marts.voice_topics", query=VOICE_TOPICS_SQL)
        trends = _trends(con.execute(Q.TREND_COUNTS_SQL).fetchdf())
        con.write_frame(trends, "marts.voice_topic_trends", query=TRENDS_SQL)
        con.execute("CREATE OR REPLACE TABLE marts.voice_examples AS "
                    + Q.EXAMPLES_SQL.format(per_topic=int(config.examples_per_topic)))
        examples = row_count(con, "marts.voice_examples")
        quality["identifiers_redacted"] = float(con.execute(
            "SELECT coalesce(sum(redactions), 0) FROM features.survey_comments").fetchall()[0][0])
        con.write_frame(pd.DataFrame({"metric": list(quality), "value": list(quality.values())}),
                        "marts.voice_quality")
    url = _log_voice(context, tracker, config, model, sentiment, topics, quality)
    shown = topics[["topic_id", "label", "label_zh", "authors", "share", "avg_satisfaction"]]
    yield dg.MaterializeResult(asset_key=_key("marts", "voice_topics"), metadata={
        "dagster/row_count": len(topics),
        "topics": dg.MetadataValue.md(shown.to_markdown(index=False, floatfmt=".3f") if len(shown) else "(no comments)"),
        "sentiment_method": sentiment.method, "mlflow_run": dg.MetadataValue.url(url)})
    yield dg.MaterializeResult(asset_key=_key("marts", "comment_topics"), metadata={"dagster/row_count": len(assigned)})
    yield dg.MaterializeResult(asset_key=_key("marts", "voice_topic_trends"), metadata={"dagster/row_count": len(trends)})
    yield dg.MaterializeResult(asset_key=_key("marts", "voice_examples"), metadata={"dagster/row_count": examples})
    yield dg.MaterializeResult(asset_key=_key("marts", "voice_quality"), metadata={
        "dagster/row_count": len(quality), **{k: round(v, 4) for k, v in quality.items()}})


# typed columns, whatever pandas made of an empty frame
COMMENT_TOPICS_SQL = ("SELECT CAST(survey_id AS VARCHAR) AS survey_id, CAST(month AS DATE) AS month, "
                      "CAST(topic_id AS INTEGER) AS topic_id, CAST(topic_weight AS DOUBLE) AS topic_weight, "
                      "CAST(sentiment AS VARCHAR) AS sentiment, CAST(sentiment_score AS DOUBLE) AS sentiment_score "
                      "FROM frame")
VOICE_TOPICS_SQL = ("SELECT CAST(topic_id AS INTEGER) AS topic_id, CAST(label AS VARCHAR) AS label, "
                    "CAST(label_zh AS VARCHAR) AS label_zh, CAST(top_terms AS VARCHAR[]) AS top_terms, "
                    "CAST(comments AS INTEGER) AS comments, CAST(authors AS INTEGER) AS authors, "
                    "CAST(share AS DOUBLE) AS share, CAST(avg_satisfaction AS DOUBLE) AS avg_satisfaction, "
                    "CAST(avg_nps AS DOUBLE) AS avg_nps, CAST(positive_share AS DOUBLE) AS positive_share, "
                    "CAST(neutral_share AS DOUBLE) AS neutral_share, CAST(negative_share AS DOUBLE) AS negative_share, "
                    "CAST(examples_shown AS BOOLEAN) AS examples_shown, CAST(suppressed AS BOOLEAN) AS suppressed FROM frame ORDER BY share DESC NULLS LAST, topic_id")
TRENDS_SQL = ("SELECT CAST(month AS DATE) AS month, CAST(topic_id AS INTEGER) AS topic_id, "
              "CAST(comments AS INTEGER) AS comments, CAST(authors AS INTEGER) AS authors, CAST(share AS DOUBLE) AS share, "
              "CAST(avg_satisfaction AS DOUBLE) AS avg_satisfaction, CAST(suppressed AS BOOLEAN) AS suppressed "
              "FROM frame ORDER BY month, topic_id")
TOPIC_MEASURES = ("comments", "authors", "share", "avg_satisfaction", "avg_nps", "positive_share", "neutral_share",
                  "negative_share")


def _topic_counts(described: pd.DataFrame, counts: pd.DataFrame) -> pd.DataFrame:
    """Each topic's labels, counts and means; a topic of 1-10 authors (or the sibling that would give
    it back from the total) shows none of them and no examples."""
    topics = described.merge(counts, on="topic_id", how="left")
    topics[["comments", "authors"]] = topics[["comments", "authors"]].fillna(0)
    hidden = hidden_cells(topics.authors, [topics[[]].assign(everything=0)])
    for column in TOPIC_MEASURES:
        topics[column] = topics[column].astype("Float64").mask(hidden)
    return topics.assign(examples_shown=~hidden & (topics.authors.fillna(0) > SMALL_CELL_MAX), suppressed=hidden)


def _trends(counts: pd.DataFrame) -> pd.DataFrame:
    """Monthly cells of 1-10 authors hidden, and the cells that would give them back (by month, by topic)."""
    hidden = hidden_cells(counts.authors, [counts[["month"]], counts[["topic_id"]]])
    for column in ("comments", "authors", "share", "avg_satisfaction"):
        counts[column] = counts[column].astype("Float64").mask(hidden)
    return counts.assign(suppressed=hidden)


def _log_voice(context, tracker: MlflowTracker, config: VoiceConfig, model, sentiment, topics: pd.DataFrame,
               quality: dict) -> str:
    """The text models' run: topic count and coherence, top terms and labels, sentiment agreement.
    No comment text is logged, only terms that at least 11 people used (topics' top terms)."""
    with tracker.start_run(context, EXPERIMENT, "topics_and_sentiment") as run:
        log_params({**config.model_dump(), "sentiment_method": sentiment.method,
                    "topic_model": "lexicon_themes+tfidf_nmf", "k_chosen_by": "coherence" if not config.n_topics else "config"})
        log_metrics({k: v for k, v in quality.items() if np.isfinite(v)})
        if model is not None:
            log_metrics({"mean_coherence": float(np.mean(model.coherence))})
        mlflow_runs.log_frame(topics.assign(top_terms=topics.top_terms.map(", ".join))
                              [lambda t: t.examples_shown], "topics.csv")
        report = sentiment.report
        if "confusion" in report:
            mlflow_runs.log_frame(pd.DataFrame(report["confusion"], index=["negative", "neutral", "positive"],
                                               columns=["negative", "neutral", "positive"]), "sentiment_confusion.csv")
        return tracker.run_url(run)


DRIVER_TABLES = {
    "satisfaction_drivers": "Adjusted effect of each segment, channel, category, facility and campaign on "
                            "satisfaction and NPS against the factor's reference level, with 95% intervals (OLS, HC3).",
    "nps_summary": "NPS overall, by segment and by visit channel, with 95% intervals (1-10 respondents hidden).",
}


@dg.multi_asset(
    specs=_mart_specs(DRIVER_TABLES, "survey_responses", {"duckdb", "mlflow"}),
    pool=WAREHOUSE_POOL, name="satisfaction_drivers",
)
def satisfaction_drivers(context: dg.AssetExecutionContext, warehouse: Warehouse, tracker: MlflowTracker):
    """What goes with higher or lower satisfaction and NPS, all factors in one model; NPS by group."""
    with warehouse.session() as con:
        # in a fixed order: the same rows in another order give intervals that differ in their last bits
        responses = con.execute("SELECT satisfaction, nps, segment, channel, category, facility, campaign "
                                "FROM features.survey_responses ORDER BY survey_id").fetchdf()
        counts = con.execute(Q.NPS_COUNTS_SQL).fetchdf()
    drivers = fit_all_drivers(responses)
    nps = nps_table(counts)
    with warehouse.transaction() as con:
        con.write_frame(drivers, "marts.satisfaction_drivers", query=DRIVERS_SQL)
        con.write_frame(nps, "marts.nps_summary", query=NPS_SQL)
    with tracker.start_run(context, EXPERIMENT, "satisfaction_drivers") as run:
        log_params({"model": "ols_hc3", "factors": "segment,channel,category,facility,campaign",
                    "campaign_window_days": Q.CAMPAIGN_WINDOW_DAYS})
        log_metrics({"respondents": float(len(responses)),
                     "significant_effects": float((drivers.p_value < 0.05).sum()) if len(drivers) else 0.0})
        mlflow_runs.log_frame(drivers, "satisfaction_drivers.csv")
        url = tracker.run_url(run)
    strongest = drivers.reindex(drivers.effect.abs().sort_values(ascending=False).index).head(10) if len(drivers) \
        else drivers
    yield dg.MaterializeResult(asset_key=_key("marts", "satisfaction_drivers"), metadata={
        "dagster/row_count": len(drivers), "respondents": len(responses), "mlflow_run": dg.MetadataValue.url(url),
        "strongest_effects": dg.MetadataValue.md(
            strongest[["outcome", "factor", "level", "reference_level", "effect", "ci_low", "ci_high"]]
            .round(3).to_markdown(index=False) if len(strongest) else "(no responses)")})
    yield dg.MaterializeResult(asset_key=_key("marts", "nps_summary"), metadata={"dagster/row_count": len(nps)})


# typed columns, whatever pandas made of an empty frame (a source without surveys)
DRIVERS_SQL = ("SELECT CAST(outcome AS VARCHAR) AS outcome, CAST(factor AS VARCHAR) AS factor, "
               "CAST(level AS VARCHAR) AS level, CAST(reference_level AS VARCHAR) AS reference_level, "
               "CAST(respondents AS INTEGER) AS respondents, CAST(effect AS DOUBLE) AS effect, "
               "CAST(ci_low AS DOUBLE) AS ci_low, CAST(ci_high AS DOUBLE) AS ci_high, "
               "CAST(p_value AS DOUBLE) AS p_value, CAST(model AS VARCHAR) AS model FROM frame")
NPS_SQL = ("SELECT CAST(dimension AS VARCHAR) AS dimension, CAST(level AS VARCHAR) AS level, "
           "CAST(respondents AS INTEGER) AS respondents, CAST(promoters_share AS DOUBLE) AS promoters_share, "
           "CAST(passives_share AS DOUBLE) AS passives_share, CAST(detractors_share AS DOUBLE) AS detractors_share, "
           "CAST(nps AS DOUBLE) AS nps, CAST(nps_ci_low AS DOUBLE) AS nps_ci_low, "
           "CAST(nps_ci_high AS DOUBLE) AS nps_ci_high, CAST(suppressed AS BOOLEAN) AS suppressed FROM frame")


def nps_table(counts: pd.DataFrame) -> pd.DataFrame:
    """NPS and its interval per level; a level of 1-10 respondents is hidden, and within a dimension
    (whose levels add up to the overall count) a lone hidden level's smallest sibling too."""
    score, low, high = nps_interval(counts.promoters, counts.detractors, counts.respondents)
    n = counts.respondents.astype(float)
    table = counts[["dimension", "level", "respondents"]].assign(
        promoters_share=counts.promoters / n, passives_share=counts.passives / n,
        detractors_share=counts.detractors / n, nps=score, nps_ci_low=low, nps_ci_high=high)
    hidden = hide_complement(counts.respondents.apply(is_small_cell), counts.respondents, counts[["dimension"]])
    for column in ("respondents", "promoters_share", "passives_share", "detractors_share", "nps", "nps_ci_low",
                   "nps_ci_high"):
        table[column] = table[column].astype("Float64").mask(hidden)
    return table.assign(suppressed=hidden)


SEARCH_TABLES = {
    "search_themes": "Searches and searchers per month, region and theme (a product category, or 'other'); "
                     "cells of 1-10 hidden.",
    "search_theme_terms": "Each theme's most searched terms, only terms searched by at least 11 people.",
}


@dg.asset(key=["features", "search_queries"], group_name=GROUP, kinds={"duckdb"}, pool=WAREHOUSE_POOL,
          automation_condition=REFRESH_WHEN_INPUTS_CHANGE,
          deps=[_key("staging", t) for t in ("events", "patients", "products")])
def search_queries(context: dg.AssetExecutionContext, warehouse: Warehouse) -> dg.MaterializeResult:
    """Every search as month, region, de-identified query and theme (the event's own category, else the
    catalogue category the query resembles most)."""
    with warehouse.session() as con:
        raw = con.execute(Q.QUERIES_TO_REDACT_SQL).fetchdf()
        products = con.execute("SELECT * FROM staging.products").fetchdf()
    redacted = redact_many(raw["query"].tolist(), _known(raw))
    frame = pd.DataFrame({"patient_key": raw.patient_key, "query_raw": raw["query"],
                          "query": [r.text if r else None for r in redacted]})
    asked = frame["query"].fillna("")
    distinct = asked.drop_duplicates()
    themes = dict(zip(distinct, assign_themes(distinct.tolist(), category_documents(products))))
    frame["theme"] = asked.map(themes)
    with warehouse.transaction() as con:
        con.write_frame(frame, "features.search_queries", query=Q.SEARCH_QUERIES_SQL)
        n = row_count(con, "features.search_queries")
    return dg.MaterializeResult(metadata={
        "dagster/row_count": n, "distinct_queries": int(raw.pairs.sum()),
        "queries_with_identifiers": int(sum(k for r, k in zip(redacted, raw.pairs) if r and r.counts))})


@dg.multi_asset(
    specs=_mart_specs(SEARCH_TABLES, "search_queries", {"duckdb"}),
    pool=WAREHOUSE_POOL, name="search_themes",
)
def search_themes(context: dg.AssetExecutionContext, warehouse: Warehouse):
    """What patients search for by month and region, beside the order-based demand trends."""
    with warehouse.transaction() as con:
        con.execute(f"CREATE OR REPLACE TABLE marts.search_themes AS {Q.SEARCH_THEMES_SQL}")
        searched = con.execute("SELECT theme, query, patient_key FROM features.search_queries "
                               "WHERE query IS NOT NULL").fetchdf()
        terms = theme_terms(searched)
        con.write_frame(terms, "marts.search_theme_terms")
        n = row_count(con, "marts.search_themes")
        top = con.execute("SELECT theme, sum(searches) AS searches FROM marts.search_themes GROUP BY 1 "
                          "ORDER BY 2 DESC NULLS LAST LIMIT 10").fetchdf()
    yield dg.MaterializeResult(asset_key=_key("marts", "search_themes"), metadata={
        "dagster/row_count": n, "top_themes": dg.MetadataValue.md(top.to_markdown(index=False) if len(top)
                                                                  else "(no searches)")})
    yield dg.MaterializeResult(asset_key=_key("marts", "search_theme_terms"), metadata={"dagster/row_count": len(terms)})


def theme_terms(searched: pd.DataFrame, per_theme: int = 10) -> pd.DataFrame:
    """Each theme's most searched terms; a term counts only when at least 11 people searched it."""
    distinct = searched.drop_duplicates(["theme", "query"])
    tokens = distinct.assign(term=[tokenize(q) for q in distinct["query"]]).explode("term").dropna(subset=["term"])
    searches = searched.merge(tokens[["theme", "query", "term"]], on=["theme", "query"])
    counted = searches.groupby(["theme", "term"]).agg(searches=("query", "size"),
                                                      people=("patient_key", "nunique")).reset_index()
    counted = counted[counted.people > SMALL_CELL_MAX]
    top = counted.sort_values(["theme", "searches", "term"], ascending=[True, False, True]).groupby("theme").head(per_theme)
    return top[["theme", "term", "searches"]].reset_index(drop=True)
