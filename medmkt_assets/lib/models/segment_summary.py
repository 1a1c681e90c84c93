"""marts.segment_summary in SQL: who is in each segment, suppressed where people could be singled out.

A segment of 1-10 patients publishes no count and no means (a mean over three people
describes those people). When exactly one segment is hidden, the next smallest is hidden
too, since the published total of profiles minus the other segments would reveal it.

A segment's label is made of the numbers this table shows: its value tier (from
`avg_monetary`), the first of its `top_categories` (the most spend), its `preferred_channel`
(the channel most of its patients prefer) and its `typical_age_band`. Both are computed by the
same SQL (`SEGMENT_WORDS`, read by `LABEL_WORDS_SQL` when the segments are labelled and by the
summary), so a label can never name another channel than the table beside it (it once said
"clinic" beside a segment whose patients mostly order in store). `distinctive_channel` and
`distinctive_category` say what sets a segment apart from the others (the largest share relative
to the average segment); they are extra information, not the label's words.
"""
from __future__ import annotations

from medmkt_assets.lib.privacy.suppression import SMALL_CELL_MAX

# Per segment of marts.patient_segments: who is in it, and the words of its label, each chosen with
# a total order (ties by name) so every engine and every run picks the same one.
SEGMENT_WORDS = """
members AS (
    SELECT s.segment_id, s.segment_label, p.*, f.digital_events AS f_digital
    FROM marts.patient_segments s JOIN marts.patient_profiles p USING (patient_key)
    JOIN features.patient_features f USING (patient_key)
),
spend AS (
    SELECT s.segment_id, pr.category, sum(o.quantity * o.unit_price) AS amount
    FROM staging.orders o JOIN staging.products pr USING (product_id)
    JOIN marts.patient_segments s USING (patient_key) GROUP BY ALL
),
category_rank AS (
    SELECT *, row_number() OVER (PARTITION BY segment_id ORDER BY amount DESC, category) AS rn FROM spend
),
channel_rank AS (
    SELECT segment_id, preferred_channel, row_number() OVER (
               PARTITION BY segment_id ORDER BY count(*) DESC, preferred_channel) AS rn
    FROM members WHERE preferred_channel IS NOT NULL GROUP BY segment_id, preferred_channel
),
band_rank AS (
    SELECT segment_id, age_band, row_number() OVER (PARTITION BY segment_id ORDER BY count(*) DESC, age_band) AS rn
    FROM members WHERE age_band IS NOT NULL AND age_band <> 'unknown' GROUP BY segment_id, age_band
),
words AS (
    SELECT m.segment_id, avg(m.monetary) AS avg_monetary,
           any_value(c.category) AS top_category, any_value(h.preferred_channel) AS preferred_channel,
           coalesce(any_value(b.age_band), 'unknown') AS typical_age_band
    FROM members m
    LEFT JOIN (SELECT * FROM category_rank WHERE rn = 1) c USING (segment_id)
    LEFT JOIN (SELECT * FROM channel_rank WHERE rn = 1) h USING (segment_id)
    LEFT JOIN (SELECT * FROM band_rank WHERE rn = 1) b USING (segment_id)
    GROUP BY m.segment_id
)"""

# What lib.models.segments.label_segments makes a label of (read after the memberships are written).
LABEL_WORDS_SQL = f"WITH {SEGMENT_WORDS}\nSELECT * FROM words ORDER BY segment_id"

SEGMENT_SUMMARY_SQL = f"""
CREATE OR REPLACE TABLE marts.segment_summary AS
WITH {SEGMENT_WORDS},
top_categories AS (
    SELECT segment_id, string_agg(category, ', ' ORDER BY rn) AS top_categories
    FROM category_rank WHERE rn <= 3 GROUP BY segment_id
),
distinct_words AS (  -- what sets each segment apart (lib.models.segments.distinctive_parts)
    SELECT segment_id, any_value(distinctive_channel) AS distinctive_channel,
           any_value(distinctive_category) AS distinctive_category
    FROM marts.patient_segments GROUP BY segment_id
),
response AS (
    SELECT s.segment_id, count(DISTINCT c.patient_key) AS contacted_patients,
           avg(CASE WHEN c.converted THEN 1.0 ELSE 0.0 END) AS campaign_conversion_rate
    FROM staging.campaign_contacts c JOIN marts.patient_segments s USING (patient_key)
    WHERE c.arm = 'treatment' GROUP BY s.segment_id
),
cells AS (
    SELECT m.segment_id, any_value(m.segment_label) AS segment_label, count(*) AS patients,
           any_value(w.typical_age_band) AS typical_age_band,
           avg(CASE WHEN gender = 'F' THEN 1.0 ELSE 0.0 END) AS female_share,
           avg(recency_days) AS avg_recency_days, avg(frequency) AS avg_frequency,
           any_value(w.avg_monetary) AS avg_monetary,
           avg(avg_order_value) AS avg_order_value, avg(digital_events) AS avg_digital_events,
           avg(avg_satisfaction) AS avg_satisfaction,
           avg(CASE WHEN chronic_conditions > 0 THEN 1.0 ELSE 0.0 END) AS chronic_condition_share,
           avg(CASE WHEN marketing_consent THEN 1.0 ELSE 0.0 END) AS marketing_consent_share,
           any_value(w.preferred_channel) AS preferred_channel
    FROM members m JOIN words w USING (segment_id) GROUP BY m.segment_id
),
flagged AS (
    SELECT *, patients BETWEEN 1 AND {SMALL_CELL_MAX} AS small,
           row_number() OVER (ORDER BY CASE WHEN patients BETWEEN 1 AND {SMALL_CELL_MAX} THEN 1 ELSE 0 END,
                              patients, segment_id) AS size_rank
    FROM cells
),
hidden AS (
    SELECT *, small OR ((SELECT count(*) FROM flagged WHERE small) = 1
                        AND size_rank = 1 AND NOT small) AS suppressed
    FROM flagged
)
SELECT h.segment_id, h.segment_label,
       CASE WHEN suppressed THEN NULL ELSE patients END AS patients,
       CASE WHEN suppressed THEN NULL ELSE patients / sum(patients) OVER () END AS share_of_patients,
       {", ".join(f"CASE WHEN suppressed THEN NULL ELSE {c} END AS {c}" for c in (
           "typical_age_band", "female_share", "avg_recency_days", "avg_frequency", "avg_monetary",
           "avg_order_value", "avg_digital_events", "avg_satisfaction", "chronic_condition_share",
           "marketing_consent_share", "preferred_channel"))},
       w.distinctive_channel,
       CASE WHEN suppressed THEN NULL ELSE t.top_categories END AS top_categories,
       w.distinctive_category,
       CASE WHEN suppressed OR r.contacted_patients BETWEEN 1 AND {SMALL_CELL_MAX} THEN NULL
            ELSE coalesce(r.contacted_patients, 0) END AS contacted_patients,
       CASE WHEN suppressed OR r.contacted_patients BETWEEN 1 AND {SMALL_CELL_MAX} THEN NULL
            ELSE r.campaign_conversion_rate END AS campaign_conversion_rate,
       suppressed
FROM hidden h LEFT JOIN top_categories t USING (segment_id) LEFT JOIN distinct_words w USING (segment_id)
LEFT JOIN response r USING (segment_id)
ORDER BY segment_id
"""

# Shown with the asset (dagster/column_schema), so a reader of either table knows which is which.
COLUMN_NOTES = {
    "segment_label": "value tier (avg_monetary) · first of top_categories · preferred_channel · typical_age_band",
    "patients": "patients in the segment (NULL when 1-10, or when it would reveal such a segment)",
    "preferred_channel": "the most common preferred channel among the segment's patients (the channel in the label)",
    "typical_age_band": "the most common known age band (the age in the label)",
    "distinctive_channel": "the channel whose share of the segment's orders is highest relative to the average "
                           "segment's: what sets it apart (not a word of the label)",
    "top_categories": "the three categories with the most spend in the segment, the first in the label",
    "distinctive_category": "the category whose share of the segment's spend is highest relative to the average "
                            "segment's: what sets it apart (not a word of the label)",
    "suppressed": "true where counts and means are hidden",
}
