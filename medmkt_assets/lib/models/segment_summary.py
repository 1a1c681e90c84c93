"""marts.segment_summary in SQL: who is in each segment, suppressed where people could be singled out.

A segment of 1-10 patients publishes no count and no means (a mean over three people
describes those people). When exactly one segment is hidden, the next smallest is hidden
too, since the published total of profiles minus the other segments would reveal it.

Two views of a segment's channel and categories sit side by side, because they answer
different questions: `preferred_channel` and `top_categories` are what most of its patients
use (the most common preferred channel, the categories with the most spend), while
`distinctive_channel` and `distinctive_category` are what sets it apart from the other
segments (the largest share relative to the average segment) and are the words of its label.
A segment labelled "phone" can thus still order mostly in store, and both columns say so.
The distinctive values are part of the published label, so they are not suppressed.
"""
from __future__ import annotations

from medmkt_assets.lib.privacy.suppression import SMALL_CELL_MAX

SEGMENT_SUMMARY_SQL = f"""
CREATE OR REPLACE TABLE marts.segment_summary AS
WITH members AS (
    SELECT s.segment_id, s.segment_label, p.*, f.digital_events AS f_digital
    FROM marts.patient_segments s JOIN marts.patient_profiles p USING (patient_key)
    JOIN features.patient_features f USING (patient_key)
),
spend AS (
    SELECT s.segment_id, pr.category, sum(o.quantity * o.unit_price) AS amount
    FROM staging.orders o JOIN staging.products pr USING (product_id)
    JOIN marts.patient_segments s USING (patient_key) GROUP BY ALL
),
top_categories AS (
    SELECT segment_id, string_agg(category, ', ' ORDER BY amount DESC) AS top_categories
    FROM (SELECT *, row_number() OVER (PARTITION BY segment_id ORDER BY amount DESC, category) AS rn FROM spend)
    WHERE rn <= 3 GROUP BY segment_id
),
words AS (  -- the label's own words: what sets each segment apart (lib.models.segments.label_parts)
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
    SELECT segment_id, any_value(segment_label) AS segment_label, count(*) AS patients,
           mode(age_band) AS typical_age_band, avg(CASE WHEN gender = 'F' THEN 1.0 ELSE 0.0 END) AS female_share,
           avg(recency_days) AS avg_recency_days, avg(frequency) AS avg_frequency, avg(monetary) AS avg_monetary,
           avg(avg_order_value) AS avg_order_value, avg(digital_events) AS avg_digital_events,
           avg(avg_satisfaction) AS avg_satisfaction,
           avg(CASE WHEN chronic_conditions > 0 THEN 1.0 ELSE 0.0 END) AS chronic_condition_share,
           avg(CASE WHEN marketing_consent THEN 1.0 ELSE 0.0 END) AS marketing_consent_share,
           mode(preferred_channel) AS preferred_channel
    FROM members GROUP BY segment_id
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
FROM hidden h LEFT JOIN top_categories t USING (segment_id) LEFT JOIN words w USING (segment_id)
LEFT JOIN response r USING (segment_id)
ORDER BY segment_id
"""

# Shown with the asset (dagster/column_schema), so a reader of either table knows which is which.
COLUMN_NOTES = {
    "segment_label": "value tier · distinctive category · distinctive channel · typical age band",
    "patients": "patients in the segment (NULL when 1-10, or when it would reveal such a segment)",
    "preferred_channel": "the most common preferred channel among the segment's patients",
    "distinctive_channel": "the channel whose share of the segment's orders is highest relative to the average "
                           "segment's: what sets it apart (the channel in the label)",
    "top_categories": "the three categories with the most spend in the segment",
    "distinctive_category": "the category whose share of the segment's spend is highest relative to the average "
                            "segment's: what sets it apart (the category in the label)",
    "suppressed": "true where counts and means are hidden",
}
