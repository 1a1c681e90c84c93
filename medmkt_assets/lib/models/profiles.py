"""SQL for the patient 360 profile and market-demand trends (contract section 4).

Recency is measured against the data's own as-of time (the latest order), not the
wall clock, so a historical export gives the same profile whenever it is processed.
"""
from __future__ import annotations

from medmkt_assets.lib.privacy.suppression import SMALL_CELL_MAX, suppressed_sql
from medmkt_assets.lib.sources.as_of import AS_OF_SQL

AGE_BAND_SQL = """CASE
    WHEN {age} IS NULL OR {age} < 0 THEN 'unknown'
    WHEN {age} >= 90 THEN '90+'
    ELSE CAST(CAST(floor({age} / 10) * 10 AS INTEGER) AS VARCHAR) || '-'
         || CAST(CAST(floor({age} / 10) * 10 + 9 AS INTEGER) AS VARCHAR)
END"""

# Ages and recency are measured at the export's as-of time (lib.sources.as_of), not the wall clock.
AS_OF_ROW_SQL = f"SELECT {AS_OF_SQL} AS as_of"

# Each patient gets a number (`pid`) once, and the order lines carry it instead of the
# 64-character key: grouping 20 M lines by a number is several times cheaper than by the key,
# and profiles group them three ways. Lines of patients outside staging.patients have no
# profile and no region, so neither table ever used them.
PATIENT_NUMBERS_SQL = ("SELECT patient_key, row_number() OVER (ORDER BY patient_key) AS pid "
                       "FROM (SELECT DISTINCT patient_key FROM staging.patients)")


def order_lines_sql(*patient_columns: str) -> str:
    """Order lines with their amount and category, and these columns of the `numbers` CTE."""
    return f"""
SELECT {", ".join(f"n.{c}" for c in ("pid", *patient_columns))}, o.order_id, o.ordered_at, o.channel,
       o.product_id, p.category, o.quantity * o.unit_price AS amount
FROM staging.orders o JOIN staging.products p USING (product_id) JOIN numbers n USING (patient_key)
"""


def age_band_sql(age_expr: str) -> str:
    """10-year bands 0-9 … 80-89, then 90+ folded (contract section 3)."""
    return AGE_BAND_SQL.format(age=f"({age_expr})")


PATIENT_PROFILES_SQL = f"""
CREATE OR REPLACE TABLE marts.patient_profiles AS
WITH as_of AS ({AS_OF_ROW_SQL}),
numbers AS ({PATIENT_NUMBERS_SQL}),
lines AS ({order_lines_sql()}),
orders_agg AS (
    SELECT pid, count(DISTINCT order_id) AS frequency, sum(amount) AS monetary,
           count(*) AS order_lines, count(DISTINCT product_id) AS distinct_products,
           min(ordered_at) AS first_order_at, max(ordered_at) AS last_order_at
    FROM lines GROUP BY pid
),
top_cat AS (
    SELECT pid, category AS top_category FROM (
        SELECT pid, category, row_number() OVER (
                   PARTITION BY pid ORDER BY sum(amount) DESC, category) AS rn
        FROM lines GROUP BY pid, category) WHERE rn = 1
),
top_channel AS (
    SELECT pid, channel AS preferred_channel FROM (
        SELECT pid, channel, row_number() OVER (
                   PARTITION BY pid ORDER BY count(DISTINCT order_id) DESC, channel) AS rn
        FROM lines WHERE channel IS NOT NULL GROUP BY pid, channel) WHERE rn = 1
),
conditions AS (
    SELECT patient_key, count(DISTINCT condition_code) AS chronic_conditions,
           list(DISTINCT condition_code ORDER BY condition_code) AS condition_codes
    FROM staging.diagnoses GROUP BY patient_key
),
surveys AS (
    SELECT patient_key, count(*) AS surveys, avg(satisfaction) AS avg_satisfaction, avg(nps) AS avg_nps
    FROM staging.surveys GROUP BY patient_key
),
digital AS (
    SELECT patient_key, count(*) AS digital_events, count(DISTINCT CAST(occurred_at AS DATE)) AS digital_active_days
    FROM staging.events WHERE patient_key IS NOT NULL GROUP BY patient_key
),
latest_consent AS (
    SELECT patient_key, bool_or(status = 'granted') AS marketing_consent FROM (
        SELECT patient_key, channel, arg_max(status, recorded_at) AS status
        FROM staging.consents WHERE purpose = 'marketing' GROUP BY patient_key, channel)
    GROUP BY patient_key
)
SELECT p.patient_key,
       {age_band_sql("year(a.as_of) - p.birth_year")} AS age_band,
       p.gender, p.region, p.city, p.postal_prefix, p.insurance_type,
       CAST(date_diff('day', o.last_order_at, a.as_of) AS INTEGER) AS recency_days,
       coalesce(o.frequency, 0) AS frequency,
       coalesce(o.monetary, 0) AS monetary,
       coalesce(o.order_lines, 0) AS order_lines,
       coalesce(o.distinct_products, 0) AS distinct_products,
       CASE WHEN o.frequency > 0 THEN o.monetary / o.frequency END AS avg_order_value,
       o.first_order_at, o.last_order_at, t.top_category, c.preferred_channel,
       coalesce(d.chronic_conditions, 0) AS chronic_conditions,
       coalesce(d.condition_codes, []) AS condition_codes,
       coalesce(s.surveys, 0) AS surveys, s.avg_satisfaction, s.avg_nps,
       coalesce(g.digital_events, 0) AS digital_events,
       coalesce(g.digital_active_days, 0) AS digital_active_days,
       coalesce(l.marketing_consent, false) AS marketing_consent,
       p.is_deceased,
       a.as_of
FROM staging.patients p
JOIN numbers n USING (patient_key)
CROSS JOIN as_of a
LEFT JOIN orders_agg o ON o.pid = n.pid
LEFT JOIN top_cat t ON t.pid = n.pid
LEFT JOIN top_channel c ON c.pid = n.pid
LEFT JOIN conditions d USING (patient_key)
LEFT JOIN surveys s USING (patient_key)
LEFT JOIN digital g USING (patient_key)
LEFT JOIN latest_consent l USING (patient_key)
ORDER BY p.patient_key
"""

DEMAND_TRENDS_SQL = f"""
CREATE OR REPLACE TABLE marts.demand_trends AS
WITH numbers AS (SELECT patient_key, pid, coalesce(region, 'unknown') AS region
                 FROM ({PATIENT_NUMBERS_SQL}) JOIN staging.patients USING (patient_key)),
lines AS ({order_lines_sql("region")}),
cells AS (
    SELECT CAST(date_trunc('month', ordered_at) AS DATE) AS month, region, category,
           count(DISTINCT order_id) AS orders, count(DISTINCT pid) AS patients, sum(amount) AS revenue
    FROM lines
    GROUP BY month, region, category
)
SELECT month, region, category,
       CASE WHEN patients BETWEEN 1 AND {SMALL_CELL_MAX} THEN NULL ELSE orders END AS orders,
       {suppressed_sql("patients")} AS patients,
       CASE WHEN patients BETWEEN 1 AND {SMALL_CELL_MAX} THEN NULL ELSE revenue END AS revenue,
       patients BETWEEN 1 AND {SMALL_CELL_MAX} AS suppressed
FROM cells
ORDER BY month, region, category
"""
