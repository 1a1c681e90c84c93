"""The patient-voice tables' SQL, for either engine: what is read from the restricted area, and the
aggregates that are published (with small cells hidden)."""
from medmkt_assets.lib.privacy.suppression import SMALL_CELL_MAX

KNOWN_COLUMNS = ("full_name", "phone", "email", "address", "patient_id", "birth_date")

# ---- Which texts may hold one of their author's own identifiers ---------------------------------------
# lib.voice.deidentify replaces an author's own identifiers (from restricted.patients) wherever they appear,
# but few texts hold one, and asking Python for each (patient, text) pair costs more than all the rest.
# So the engine decides: `own` below is every pair for which deidentify._might_contain holds for one of the
# author's values, spelled in SQL: each value's kind as deidentify._known_kind decides it, then whether its
# cheap form is in the text's. The spelling is exact for "plain" text and values (the characters of
# PLAIN_CHARS, on which Python, DuckDB and Spark agree about case, white space and digits); any other
# character, a value with white space at either end, or a Latin name of more than three words (or with
# runs of white space) puts the pair in `own` regardless, and redact_many repeats the exact test for every
# pair in `own`. So a pair left out can hold none of its author's identifiers, and its text is redacted
# once for everyone who wrote it (test_voice_shortcuts checks both directions).
_WS = "\t\n\r "
PLAIN_CHARS = (" -~\t\n\r\u2010-\u2027\u3001-\u3029\u3030-\u303f\u4e00-\u9fff"
               "\uff01-\uff0f\uff1a-\uff20\uff3b-\uff40\uff5b-\uff65")
_NOT_PLAIN = f"'[^{PLAIN_CHARS}]'"
_CJK = "'[\u4e00-\u9fff]'"
_KNOWN_DATE = "'^(19|20)[0-9][0-9][-/.\u5e74][0-9][0-9]?[-/.\u6708][0-9][0-9]?\u65e5?([ T][0-9:.]+)?$'"
_ALL_KNOWN = "concat_ws('|', '', " + ", ".join(KNOWN_COLUMNS) + ", '')"


def _squash(x: str) -> str:
    """_might_contain's `squash(x.lower())`: lower case without white space and hyphens."""
    return (f"CASE WHEN regexp_matches({x}, '[{_WS}-]') THEN regexp_replace(lower({x}), '[{_WS}-]', '', 'g') "
            f"ELSE lower({x}) END")


def _kind(v: str) -> str:
    """deidentify._known_kind of a plain value, with the NAME kind split by the test _might_contain makes."""
    return f"""CASE
        WHEN odd THEN 'any'
        WHEN length({v}) < 2 THEN 'none'
        WHEN contains({v}, '@') THEN 'squash'
        WHEN left({v}, 2) IN ('19', '20') AND regexp_matches({v}, {_KNOWN_DATE}) THEN 'date'
        WHEN NOT regexp_matches({v}, '[^0-9{_WS}+().-]') AND regexp_matches({v}, '([0-9][^0-9]*){{7}}') THEN 'phone'
        WHEN regexp_matches({v}, '[0-9]') THEN 'squash'
        WHEN regexp_matches({v}, {_CJK}) THEN CASE WHEN length({v}) = 3 THEN 'given_name' ELSE 'squash' END
        WHEN regexp_matches({v}, '[\t\n\r]|  ') OR length({v}) - length(replace({v}, ' ', '')) > 2 THEN 'any'
        ELSE 'latin_name' END"""


def _needles(c: str) -> str:
    """The form of value `c` that _might_contain looks for (a Latin name: each of its up to three words)."""
    k = f"k_{c}"
    return (f"{k}, CASE {k} WHEN 'squash' THEN {_squash(c)} WHEN 'date' THEN left({c}, 4) "
            f"WHEN 'phone' THEN right(regexp_replace({c}, '[^0-9]', '', 'g'), 7) WHEN 'given_name' THEN substr({c}, 2) "
            f"WHEN 'latin_name' THEN lower(split_part({c}, ' ', 1)) END AS n_{c}, "
            f"CASE WHEN {k} = 'latin_name' THEN nullif(lower(split_part({c}, ' ', 2)), '') END AS n2_{c}, "
            f"CASE WHEN {k} = 'latin_name' THEN nullif(lower(split_part({c}, ' ', 3)), '') END AS n3_{c}")


def _found(c: str) -> str:
    return (f"coalesce(CASE k_{c} WHEN 'any' THEN true WHEN 'none' THEN false "
            f"WHEN 'phone' THEN contains(t.digits, n_{c}) WHEN 'date' THEN contains(t.text, n_{c}) "
            f"ELSE contains(t.hay, n_{c}) OR coalesce(contains(t.hay, n2_{c}), false) "
            f"OR coalesce(contains(t.hay, n3_{c}), false) END, false)")


def own_identifier_ctes(pairs: str) -> str:
    """CTEs after `WITH pairs AS (SELECT patient_key, text ...)`, ending in `own`: the distinct
    (patient_key, text) pairs whose text may hold one of the author's own identifiers."""
    return f"""
authors AS (
    SELECT *, regexp_matches({_ALL_KNOWN}, {_NOT_PLAIN}) OR regexp_matches({_ALL_KNOWN}, '[|][{_WS}]|[{_WS}][|]') AS odd
    FROM (SELECT patient_key, full_name, phone, email, address, patient_id, CAST(birth_date AS VARCHAR) AS birth_date
          FROM restricted.patients WHERE patient_key IN (SELECT patient_key FROM {pairs}))
),
kinds AS (SELECT patient_key, {", ".join(KNOWN_COLUMNS)}, {", ".join(f"{_kind(c)} AS k_{c}" for c in KNOWN_COLUMNS)}
          FROM authors),
needles AS (SELECT patient_key, {", ".join(_needles(c) for c in KNOWN_COLUMNS)} FROM kinds),
texts AS (
    SELECT text, {_squash('text')} AS hay, regexp_replace(text, '[^0-9]', '', 'g') AS digits,
           regexp_matches(text, {_NOT_PLAIN}) AS odd
    FROM (SELECT DISTINCT text FROM {pairs} WHERE text IS NOT NULL)
),
own AS (
    SELECT DISTINCT r.patient_key, r.text
    FROM {pairs} r JOIN texts t ON t.text = r.text JOIN needles n ON n.patient_key = r.patient_key
    WHERE t.odd OR {" OR ".join(_found(c) for c in KNOWN_COLUMNS)}
)"""


_KNOWN_OF_P = ", ".join(f"p.{c}" for c in KNOWN_COLUMNS[:-1]) + ", CAST(p.birth_date AS VARCHAR) AS birth_date"

# Each comment, and for those that may hold one of their author's identifiers (`own`) the author's key and
# what their record says of them (lib.voice.deidentify replaces those strings wherever they appear; the
# pattern rules catch the rest). Runs in the restricted area.
COMMENTS_TO_REDACT_SQL = f"""
WITH pairs AS (SELECT DISTINCT patient_key, comment AS text FROM restricted.surveys),
{own_identifier_ctes("pairs")}
SELECT DISTINCT r.survey_id, r.comment, o.patient_key, {_KNOWN_OF_P}
FROM restricted.surveys r
LEFT JOIN own o ON o.patient_key = r.patient_key AND o.text = r.comment
LEFT JOIN restricted.patients p ON p.patient_key = o.patient_key
ORDER BY r.survey_id"""

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

# Search queries to redact, in the restricted area: every distinct query (patient_key NULL; `pairs`: how
# many distinct searchers, an anonymous one counted once, searched it without their own identifiers in it),
# and each (searcher, query) pair that may hold the searcher's own identifiers (`own`), with their record.
QUERIES_TO_REDACT_SQL = f"""
WITH pairs AS (SELECT DISTINCT patient_key, query AS text FROM restricted.events),
{own_identifier_ctes("pairs")},
queries AS (
    SELECT NULL AS patient_key, r.text, count(*) - count(o.text) AS pairs
    FROM pairs r LEFT JOIN own o ON o.patient_key = r.patient_key AND o.text = r.text
    GROUP BY r.text
    UNION ALL SELECT patient_key, text, 1 FROM own
)
SELECT q.patient_key, q.text AS query, q.pairs, {_KNOWN_OF_P}
FROM queries q LEFT JOIN restricted.patients p ON p.patient_key = q.patient_key
ORDER BY q.text, q.patient_key NULLS FIRST"""

# features.search_queries: each search as month, region, the source's category and the redacted query
# (the frame: each query's redaction for everyone, patient_key NULL, and the searcher's own where it has one).
SEARCH_QUERIES_SQL = """
SELECT CAST(date_trunc('month', e.occurred_at) AS DATE) AS month, coalesce(p.region, 'unknown') AS region,
       e.patient_key, e.category,
       CAST(CASE WHEN o.query_raw IS NULL THEN f.query ELSE o.query END AS VARCHAR) AS query,
       coalesce(e.category, CAST(CASE WHEN o.query_raw IS NULL THEN f.theme ELSE o.theme END AS VARCHAR)) AS theme
FROM restricted.events e
JOIN frame f ON CAST(f.query_raw AS VARCHAR) = e.query AND f.patient_key IS NULL
LEFT JOIN frame o ON CAST(o.query_raw AS VARCHAR) = e.query AND CAST(o.patient_key AS VARCHAR) = e.patient_key
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
