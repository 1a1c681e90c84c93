"""Model-input features per patient, computed in DuckDB as of a cut-off time.

One SQL builder serves segmentation (cut-off = the data's as-of time) and the
campaign models (cut-off = a campaign's start, so nothing after it can leak in).
Category, channel and condition columns follow the data (the top categories by
revenue, the top conditions by patients), named `cat__…`, `ch__…`, `cond__…`.
Only patient_key identifies a row; age is kept as the middle of its 10-year band.
"""
from __future__ import annotations

from medmkt_assets.lib.profiles import age_band_sql
from medmkt_assets.lib.sql import sql_literal
from medmkt_assets.lib.warehouse import Session

MAX_CATEGORIES = 20
MAX_CONDITIONS = 10
# Skewed counts and amounts: modelled on a log scale.
LOG_COLUMNS = ("recency_days", "frequency", "monetary", "avg_order_value", "distinct_products", "digital_events",
               "order_lines")
BASE_COLUMNS = ("age_years", "is_female", "has_orders", *LOG_COLUMNS, "satisfaction", "has_survey",
                "chronic_conditions")


def _slug(expr: str) -> str:
    return f"regexp_replace(lower(trim(CAST({expr} AS VARCHAR))), '[^a-z0-9]+', '_', 'g')"


def build_patient_features(con: Session, table: str, cutoff: str | None = None,
                           patients_sql: str = "SELECT patient_key FROM staging.patients",
                           vocabulary: dict[str, list[str]] | None = None) -> dict[str, list[str]]:
    """Write `table` (one row per patient of `patients_sql`) from history strictly before `cutoff`.

    `cutoff` is a SQL timestamp expression (None = everything, ages measured at the last
    order). `vocabulary` fixes the category/channel/condition columns (pass the one a model
    was trained with); the vocabulary used is returned.
    """
    before = (lambda col: f"{col} < {cutoff}") if cutoff else (lambda col: "true")
    as_of = cutoff or "(SELECT coalesce(max(ordered_at), now()::TIMESTAMP) FROM staging.orders)"
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE _feat_lines AS
        SELECT o.patient_key, o.order_id, o.ordered_at, coalesce(o.channel, 'other') AS channel, o.product_id,
               {_slug('p.category')} AS category, o.quantity * o.unit_price AS amount
        FROM staging.orders o JOIN staging.products p USING (product_id)
        WHERE {before('o.ordered_at')} AND o.patient_key IN (SELECT patient_key FROM ({patients_sql}))""")
    if vocabulary is None:
        vocabulary = {
            "cat": [r[0] for r in con.execute(
                f"SELECT category FROM _feat_lines GROUP BY 1 ORDER BY sum(amount) DESC, 1 "
                f"LIMIT {MAX_CATEGORIES}").fetchall()],
            "ch": [r[0] for r in con.execute(
                "SELECT channel FROM _feat_lines GROUP BY 1 ORDER BY count(*) DESC, 1").fetchall()],
            "cond": [r[0] for r in con.execute(
                f"SELECT {_slug('condition_code')} FROM staging.diagnoses "
                f"WHERE {before('CAST(diagnosed_at AS TIMESTAMP)')} OR diagnosed_at IS NULL "
                f"GROUP BY 1 ORDER BY count(DISTINCT patient_key) DESC, 1 LIMIT {MAX_CONDITIONS}").fetchall()],
        }

    def one_hot(prefix: str, values: list[str], expr: str, agg: str, source: str) -> str:
        if not values:
            return f"SELECT patient_key FROM {source} WHERE false"
        cols = ", ".join(f"{agg.format(cond=f'{expr} = {sql_literal(v)}')} AS {prefix}__{v}" for v in values)
        return f"SELECT patient_key, {cols} FROM {source} GROUP BY patient_key"

    cat_cols = [f"cat__{v}" for v in vocabulary["cat"]]
    ch_cols = [f"ch__{v}" for v in vocabulary["ch"]]
    cond_cols = [f"cond__{v}" for v in vocabulary["cond"]]
    shares = ", ".join(
        [f"coalesce(c.{c} / nullif(o.monetary, 0), 0) AS {c}" for c in cat_cols]
        + [f"coalesce(h.{c} / nullif(o.frequency, 0), 0) AS {c}" for c in ch_cols]
        + [f"coalesce(d.{c}, 0) AS {c}" for c in cond_cols]
    )
    con.execute(f"""
        CREATE OR REPLACE TABLE {table} AS
        WITH people AS ({patients_sql}),
        o AS (SELECT patient_key, count(DISTINCT order_id) AS frequency, sum(amount) AS monetary,
                     count(*) AS order_lines, count(DISTINCT product_id) AS distinct_products,
                     max(ordered_at) AS last_order_at
              FROM _feat_lines GROUP BY patient_key),
        c AS ({one_hot('cat', vocabulary['cat'], 'category', 'sum(amount) FILTER (WHERE {cond})', '_feat_lines')}),
        -- orders per channel: count the distinct (order, channel) pairs once, not a DISTINCT per channel
        order_channels AS (SELECT DISTINCT patient_key, order_id, channel FROM _feat_lines),
        h AS ({one_hot('ch', vocabulary['ch'], 'channel', 'count(*) FILTER (WHERE {cond})', 'order_channels')}),
        d AS ({one_hot('cond', vocabulary['cond'], _slug('condition_code'), 'max(CASE WHEN {cond} THEN 1 ELSE 0 END)',
                       f"(SELECT * FROM staging.diagnoses WHERE {before('CAST(diagnosed_at AS TIMESTAMP)')} "
                       "OR diagnosed_at IS NULL)")}),
        dd AS (SELECT patient_key, count(DISTINCT condition_code) AS chronic_conditions FROM staging.diagnoses
               WHERE {before('CAST(diagnosed_at AS TIMESTAMP)')} OR diagnosed_at IS NULL GROUP BY 1),
        s AS (SELECT patient_key, avg(satisfaction) AS satisfaction FROM staging.surveys
              WHERE {before('responded_at')} OR responded_at IS NULL GROUP BY 1),
        g AS (SELECT patient_key, count(*) AS digital_events FROM staging.events
              WHERE patient_key IS NOT NULL AND {before('occurred_at')} GROUP BY 1),
        a AS (SELECT {as_of} AS as_of)
        SELECT pt.patient_key,
               CAST(CASE WHEN band = 'unknown' THEN NULL WHEN band = '90+' THEN 92
                         ELSE CAST(split_part(band, '-', 1) AS INTEGER) + 5 END AS DOUBLE) AS age_years,
               CASE p.gender WHEN 'F' THEN 1.0 WHEN 'M' THEN 0.0 ELSE 0.5 END AS is_female,
               CAST(o.frequency IS NOT NULL AS DOUBLE) AS has_orders,
               CAST(coalesce(date_diff('day', o.last_order_at, a.as_of), 3650) AS DOUBLE) AS recency_days,
               CAST(coalesce(o.frequency, 0) AS DOUBLE) AS frequency,
               CAST(coalesce(o.monetary, 0) AS DOUBLE) AS monetary,
               CAST(coalesce(o.monetary / nullif(o.frequency, 0), 0) AS DOUBLE) AS avg_order_value,
               CAST(coalesce(o.distinct_products, 0) AS DOUBLE) AS distinct_products,
               CAST(coalesce(g.digital_events, 0) AS DOUBLE) AS digital_events,
               CAST(coalesce(o.order_lines, 0) AS DOUBLE) AS order_lines,
               CAST(s.satisfaction AS DOUBLE) AS satisfaction,
               CAST(s.satisfaction IS NOT NULL AS DOUBLE) AS has_survey,
               CAST(coalesce(dd.chronic_conditions, 0) AS DOUBLE) AS chronic_conditions
               {', ' + shares if shares else ''}
        FROM people pt
        JOIN (SELECT *, {age_band_sql('year((SELECT as_of FROM a)) - birth_year')} AS band
              FROM staging.patients) p USING (patient_key)
        CROSS JOIN a
        LEFT JOIN o USING (patient_key) LEFT JOIN c USING (patient_key) LEFT JOIN h USING (patient_key)
        LEFT JOIN d USING (patient_key) LEFT JOIN dd USING (patient_key) LEFT JOIN s USING (patient_key)
        LEFT JOIN g USING (patient_key)
        ORDER BY pt.patient_key""")
    con.execute("DROP TABLE IF EXISTS _feat_lines")
    return vocabulary


def feature_columns(con: Session, table: str) -> list[str]:
    """The model-input columns of a feature table (everything but the key)."""
    return [r[0] for r in con.execute(f"DESCRIBE {table}").fetchall() if r[0] != "patient_key"]
