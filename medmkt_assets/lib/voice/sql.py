"""The patient-voice tables' SQL, for either engine: what is read from the restricted area, and the
aggregates that are published (with small cells hidden)."""
from medmkt_assets.lib.privacy.suppression import SMALL_CELL_MAX

# Each comment beside what its author's own record says of them: lib.voice.deidentify replaces those
# exact strings wherever they appear (the pattern rules catch the rest). Runs in the restricted area.
COMMENTS_TO_REDACT_SQL = """
SELECT DISTINCT r.survey_id, r.comment, p.full_name, p.phone, p.email, p.address, p.patient_id,
       CAST(p.birth_date AS VARCHAR) AS birth_date
FROM restricted.surveys r LEFT JOIN restricted.patients p USING (patient_key)
ORDER BY r.survey_id"""
KNOWN_COLUMNS = ("full_name", "phone", "email", "address", "patient_id", "birth_date")

# features.survey_comments: the de-identified comment (the frame) beside its response.
SURVEY_COMMENTS_SQL = """
SELECT s.survey_id, s.patient_key, s.responded_at, CAST(date_trunc('month', s.responded_at) AS DATE) AS month,
       s.satisfaction, s.nps, CAST(f.language AS VARCHAR) AS language, CAST(f.comment AS VARCHAR) AS comment,
       CAST(f.redactions AS INTEGER) AS redactions
FROM frame f JOIN (SELECT DISTINCT survey_id, patient_key, responded_at, satisfaction, nps FROM staging.surveys) s
     ON s.survey_id = CAST(f.survey_id AS VARCHAR)"""

# features.survey_responses: each response and what the pipeline knows of the visit it is about,
# the author's latest order at or before it (the first line's category), and the campaign whose
# treatment contact came last in the window before it.
SURVEY_RESPONSES_SQL = """
WITH surveys AS (SELECT DISTINCT survey_id, patient_key, responded_at, satisfaction, nps FROM staging.surveys),
visits AS (
    SELECT s.survey_id, o.channel, o.facility_id, p.category,
           row_number() OVER (PARTITION BY s.survey_id ORDER BY o.ordered_at DESC, o.order_id DESC) AS latest
    FROM surveys s
    JOIN staging.orders o ON o.patient_key = s.patient_key AND o.ordered_at <= s.responded_at AND o.line_no = 1
    LEFT JOIN staging.products p ON p.product_id = o.product_id
),
contacts AS (
    SELECT s.survey_id, c.campaign_id,
           row_number() OVER (PARTITION BY s.survey_id ORDER BY c.contacted_at DESC, c.campaign_id) AS latest
    FROM surveys s
    JOIN staging.campaign_contacts c ON c.patient_key = s.patient_key AND c.arm = 'treatment'
         AND c.contacted_at <= s.responded_at AND c.contacted_at > s.responded_at - INTERVAL {window_days} DAY
)
SELECT s.survey_id, s.patient_key, s.responded_at, CAST(date_trunc('month', s.responded_at) AS DATE) AS month,
       s.satisfaction, s.nps, g.segment_label AS segment, v.channel, v.category, v.facility_id AS facility,
       c.campaign_id AS campaign
FROM surveys s
LEFT JOIN visits v ON v.survey_id = s.survey_id AND v.latest = 1
LEFT JOIN contacts c ON c.survey_id = s.survey_id AND c.latest = 1
LEFT JOIN marts.patient_segments g ON g.patient_key = s.patient_key"""
CAMPAIGN_WINDOW_DAYS = 60

# NPS by dimension, counted in the engine: promoters 9-10, detractors 0-6.
NPS_COUNTS_SQL = """
SELECT dimension, level, count(*) AS respondents, count(*) FILTER (WHERE nps >= 9) AS promoters,
       count(*) FILTER (WHERE nps BETWEEN 7 AND 8) AS passives, count(*) FILTER (WHERE nps <= 6) AS detractors
FROM (SELECT 'overall' AS dimension, 'all' AS level, nps FROM features.survey_responses
      UNION ALL SELECT 'segment', coalesce(segment, 'unknown'), nps FROM features.survey_responses
      UNION ALL SELECT 'channel', coalesce(channel, 'unknown'), nps FROM features.survey_responses)
WHERE nps IS NOT NULL
GROUP BY dimension, level ORDER BY dimension, level"""

# Search queries with what their searcher's own record says of them (restricted area), one row per
# distinct (patient, query): the redacted text is joined back by both.
QUERIES_TO_REDACT_SQL = """
SELECT DISTINCT e.patient_key, e.query, p.full_name, p.phone, p.email, p.address, p.patient_id,
       CAST(p.birth_date AS VARCHAR) AS birth_date
FROM restricted.events e LEFT JOIN restricted.patients p USING (patient_key)"""

# features.search_queries: each search as month, region, the source's category and the redacted query.
SEARCH_QUERIES_SQL = """
SELECT CAST(date_trunc('month', e.occurred_at) AS DATE) AS month, coalesce(p.region, 'unknown') AS region,
       e.patient_key, e.category, CAST(f.query AS VARCHAR) AS query,
       coalesce(e.category, CAST(f.theme AS VARCHAR)) AS theme
FROM restricted.events e
JOIN frame f ON CAST(f.query_raw AS VARCHAR) = e.query
     AND CAST(f.patient_key AS VARCHAR) IS NOT DISTINCT FROM e.patient_key
LEFT JOIN staging.patients p ON p.patient_key = e.patient_key"""

# marts.search_themes: searches and searchers per month, region and theme; anonymous searches count
# as searches, and a cell with 1-10 searches or searchers is hidden.
SEARCH_THEMES_SQL = f"""
WITH cells AS (
    SELECT month, region, theme, count(*) AS searches, count(DISTINCT patient_key) AS searchers
    FROM features.search_queries GROUP BY ALL
)
SELECT month, region, theme,
       CASE WHEN searches <= {SMALL_CELL_MAX} OR searchers BETWEEN 1 AND {SMALL_CELL_MAX} THEN NULL
            ELSE searches END AS searches,
       CASE WHEN searches <= {SMALL_CELL_MAX} OR searchers BETWEEN 1 AND {SMALL_CELL_MAX} THEN NULL
            ELSE searchers END AS searchers,
       searches <= {SMALL_CELL_MAX} OR searchers BETWEEN 1 AND {SMALL_CELL_MAX} AS suppressed
FROM cells ORDER BY month, region, theme"""

# Per topic, counted over the analysed comments (the caller adds the model's labels and terms, and
# hides topics of 1-10 authors and a lone hidden topic's smallest sibling).
TOPIC_COUNTS_SQL = """
WITH c AS (
    SELECT t.topic_id, t.sentiment, s.patient_key, s.satisfaction, s.nps
    FROM marts.comment_topics t JOIN features.survey_comments s USING (survey_id) WHERE t.topic_id >= 0
)
SELECT topic_id, count(*) AS comments, count(DISTINCT patient_key) AS authors,
       count(*) / sum(count(*)) OVER () AS share, avg(satisfaction) AS avg_satisfaction, avg(nps) AS avg_nps,
       avg(CASE WHEN sentiment = 'positive' THEN 1.0 ELSE 0.0 END) AS positive_share,
       avg(CASE WHEN sentiment = 'neutral' THEN 1.0 ELSE 0.0 END) AS neutral_share,
       avg(CASE WHEN sentiment = 'negative' THEN 1.0 ELSE 0.0 END) AS negative_share
FROM c GROUP BY topic_id ORDER BY topic_id"""

# Per month and topic; the caller hides cells of 1-10 authors and their complements.
TREND_COUNTS_SQL = """
WITH c AS (
    SELECT t.month, t.topic_id, s.patient_key, s.satisfaction
    FROM marts.comment_topics t JOIN features.survey_comments s USING (survey_id) WHERE t.topic_id >= 0
)
SELECT month, topic_id, count(*) AS comments, count(DISTINCT patient_key) AS authors,
       count(*) / sum(count(*)) OVER (PARTITION BY month) AS share, avg(satisfaction) AS avg_satisfaction
FROM c GROUP BY month, topic_id ORDER BY month, topic_id"""

# Examples per shown topic: its most typical comments (highest topic weight), distinct texts, those in
# which nothing had to be replaced first.
EXAMPLES_SQL = """
WITH candidates AS (
    SELECT t.topic_id, s.comment, s.language, t.sentiment, s.satisfaction, t.topic_weight, s.redactions,
           s.survey_id, row_number() OVER (PARTITION BY t.topic_id, s.comment ORDER BY s.survey_id) AS copy
    FROM marts.comment_topics t JOIN features.survey_comments s USING (survey_id)
    WHERE s.comment IS NOT NULL AND t.topic_id IN (SELECT topic_id FROM marts.voice_topics WHERE examples_shown)
),
ranked AS (
    SELECT *, row_number() OVER (PARTITION BY topic_id ORDER BY CASE WHEN redactions = 0 THEN 0 ELSE 1 END,
                                 topic_weight DESC, survey_id) AS rank
    FROM candidates WHERE copy = 1
)
SELECT topic_id, CAST(rank AS INTEGER) AS rank, comment, language, sentiment, satisfaction
FROM ranked WHERE rank <= {per_topic} ORDER BY topic_id, rank"""


# What each column of marts.satisfaction_drivers means (shown in the Dagster UI's column schema).
DRIVER_NOTES = {
    "effect": "difference in mean score (satisfaction 1-5 or NPS 0-10) against reference_level, the other "
              "factors held fixed (one OLS per outcome)",
    "ci_low": "95% interval, heteroskedasticity-robust (HC3) standard errors",
    "ci_high": "95% interval, heteroskedasticity-robust (HC3) standard errors",
    "reference_level": "the factor's most common level; levels under 20 respondents are pooled as 'other'",
    "respondents": "responses at this level",
}


# What the columns of marts.voice_topics mean (shown in the Dagster UI's column schema).
TOPIC_NOTES = {
    "label": "the theme of themes.yaml most of its comments' words name, or 'Topic: <top terms>' for a topic "
             "the NMF model found among the comments no theme holds",
    "top_terms": "the words that set its comments apart (class-based TF-IDF), both languages",
    "authors": "distinct patients; NULL when 1-10 (or when it would give a hidden topic back from the total)",
    "examples_shown": "true only with at least 11 authors: marts.voice_examples holds examples only then",
}
