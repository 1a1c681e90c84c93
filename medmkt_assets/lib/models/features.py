"""Model-input features per patient, computed in DuckDB as of a cut-off time.

One SQL builder serves segmentation (cut-off = the data's as-of time) and the
campaign models (cut-off = a campaign's start, so nothing after it can leak in).
Category, channel and condition columns follow the data (the top categories by
revenue, the top conditions by patients), named `cat__…`, `ch__…`, `cond__…`; `evt__…`
counts the patient's digital events (page views, searches, clicks) in each of those
categories: interest shown before anything is bought, which campaign models borrow.
Only patient_key identifies a row; age is kept as the middle of its 10-year band.
"""
from __future__ import annotations

import re

from medmkt_assets.lib.engine.sql import sql_literal
from medmkt_assets.lib.engine.warehouse import Session
from medmkt_assets.lib.models.profiles import age_band_sql
from medmkt_assets.lib.sources.as_of import AS_OF_SQL

MAX_CATEGORIES = 20
MAX_CONDITIONS = 10
# Skewed counts and amounts: modelled on a log scale.
LOG_COLUMNS = ("recency_days", "frequency", "monetary", "avg_order_value", "distinct_products", "digital_events",
               "order_lines")
BASE_COLUMNS = ("age_years", "is_female", "has_orders", *LOG_COLUMNS, "satisfaction", "has_survey",
                "chronic_conditions")


def column_slug(value: str) -> str:
    """The column-name part `_slug` makes of a value, computed in Python."""
    return re.sub(r"[^a-z0-9]+", "_", str(value).strip(" ").lower())


def _slug(expr: str) -> str:
    return f"regexp_replace(lower(trim(CAST({expr} AS VARCHAR))), '[^a-z0-9]+', '_', 'g')"


# Order lines before the cut-off of the patients asked for, each with its patient's number `_pid`
# (grouping 20 M lines by a number, not by the 64-character key, halves the step); {before} is a
# condition on o.ordered_at.
FEATURE_LINES_SQL = """
CREATE OR REPLACE TEMP TABLE _feat_lines AS
SELECT pe._pid, o.order_id, o.ordered_at, coalesce(o.channel, 'other') AS channel, o.product_id,
       {category} AS category, o.quantity * o.unit_price AS amount
FROM staging.orders o JOIN staging.products p USING (product_id)
JOIN _feat_people pe ON pe.patient_key = o.patient_key
WHERE {before}"""
TOP_CATEGORIES_SQL = f"SELECT category FROM _feat_lines GROUP BY 1 ORDER BY sum(amount) DESC, 1 LIMIT {MAX_CATEGORIES}"
CHANNELS_SQL = "SELECT channel FROM _feat_lines GROUP BY 1 ORDER BY count(*) DESC, 1"
TOP_CONDITIONS_SQL = """
SELECT {condition} FROM staging.diagnoses WHERE {before} OR diagnosed_at IS NULL
GROUP BY 1 ORDER BY count(DISTINCT patient_key) DESC, 1 LIMIT {limit}"""

# One row per patient: {shares} are the category / channel / condition columns (with a leading
# comma), the other placeholders the cut-off conditions and the as-of time.
PATIENT_FEATURES_SQL = """
CREATE OR REPLACE TABLE {table} AS
WITH o AS (SELECT _pid, count(DISTINCT order_id) AS frequency, sum(amount) AS monetary,
             count(*) AS order_lines, count(DISTINCT product_id) AS distinct_products,
             max(ordered_at) AS last_order_at
      FROM _feat_lines GROUP BY _pid),
c AS ({categories}),
-- orders per channel: count the distinct (order, channel) pairs once, not a DISTINCT per channel
order_channels AS (SELECT DISTINCT _pid, order_id, channel FROM _feat_lines),
h AS ({channels}),
diagnosed AS (SELECT * FROM staging.diagnoses WHERE {dx_before} OR diagnosed_at IS NULL),
d AS ({conditions}),
dd AS (SELECT patient_key, count(DISTINCT condition_code) AS chronic_conditions FROM diagnosed GROUP BY 1),
s AS (SELECT patient_key, avg(satisfaction) AS satisfaction FROM staging.surveys
      WHERE {survey_before} OR responded_at IS NULL GROUP BY 1),
-- an event names a category or a product (contract): the product's category stands in
g AS (SELECT e.patient_key, count(*) AS digital_events {event_categories}
      FROM staging.events e LEFT JOIN staging.products ep ON ep.product_id = e.product_id
      WHERE e.patient_key IS NOT NULL AND {event_before} GROUP BY 1),
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
       {shares}
FROM _feat_people pt
JOIN (SELECT *, {age_band} AS band FROM staging.patients) p USING (patient_key)
CROSS JOIN a
LEFT JOIN o USING (_pid) LEFT JOIN c USING (_pid) LEFT JOIN h USING (_pid)
LEFT JOIN d USING (patient_key) LEFT JOIN dd USING (patient_key) LEFT JOIN s USING (patient_key)
LEFT JOIN g USING (patient_key)
ORDER BY pt.patient_key"""


def _one_hot(prefix: str, values: list[str], expr: str, agg: str, source: str, key: str = "patient_key") -> str:
    """Per patient (`key`), one `<prefix>__<value>` column aggregating the rows where expr = value."""
    if not values:
        return f"SELECT {key} FROM {source} WHERE false"
    cols = ", ".join(f"{agg.format(cond=f'{expr} = {sql_literal(v)}')} AS {prefix}__{v}" for v in values)
    return f"SELECT {key}, {cols} FROM {source} GROUP BY {key}"


def share_sql(part: str, whole: str) -> str:
    """`part` / `whole`, 0 when either is missing, never above 1. A patient's only category can come
    out at 1.0000000000000002 of their spend: the engine's parallel sums of doubles add in any order,
    and the quality gate rightly refuses a share above 1."""
    return f"least(coalesce({part} / nullif({whole}, 0), 0), 1.0)"


def _shares(vocabulary: dict[str, list[str]], spend: str = "c", orders: str = "o") -> str:
    """Category shares of spend (the category sums in `spend`), channel shares of orders (counted in
    `orders`), condition flags, events per category (0 when absent)."""
    columns = ([f"{share_sql(f'{spend}.cat__{v}', 'o.monetary')} AS cat__{v}" for v in vocabulary["cat"]]
               + [f"{share_sql(f'h.ch__{v}', f'{orders}.frequency')} AS ch__{v}" for v in vocabulary["ch"]]
               + [f"coalesce(d.cond__{v}, 0) AS cond__{v}" for v in vocabulary["cond"]]
               + [f"CAST(coalesce(g.evt__{v}, 0) AS DOUBLE) AS evt__{v}" for v in vocabulary.get("evt", [])])
    return ", " + ", ".join(columns) if columns else ""


def _vocabulary(con: Session, dx_before: str) -> dict[str, list[str]]:
    """The data's own columns: top categories by revenue (for spend and for events), every channel, top
    conditions by patients."""
    categories = [r[0] for r in con.execute(TOP_CATEGORIES_SQL).fetchall()]
    return {
        "cat": categories, "evt": categories,
        "ch": [r[0] for r in con.execute(CHANNELS_SQL).fetchall()],
        "cond": [r[0] for r in con.execute(TOP_CONDITIONS_SQL.format(
            condition=_slug("condition_code"), before=dx_before, limit=MAX_CONDITIONS)).fetchall()],
    }


def build_patient_features(con: Session, table: str, cutoff: str | None = None,
                           patients_sql: str = "SELECT patient_key FROM staging.patients",
                           vocabulary: dict[str, list[str]] | None = None) -> dict[str, list[str]]:
    """Write `table` (one row per patient of `patients_sql`) from history strictly before `cutoff`.

    `cutoff` is a SQL timestamp expression (None = everything, ages measured at the export's
    as-of time). `vocabulary` fixes the category/channel/condition columns (pass the one a model
    was trained with); the vocabulary used is returned.
    """
    before = (lambda col: f"{col} < {cutoff}") if cutoff else (lambda col: "true")
    dx_before = before("CAST(diagnosed_at AS TIMESTAMP)")
    _number_people(con, f"SELECT DISTINCT 0 AS _slice, patient_key FROM ({patients_sql}) AS asked")
    con.execute(FEATURE_LINES_SQL.format(category=_slug("p.category"), before=before("o.ordered_at")))
    vocabulary = vocabulary if vocabulary is not None else _vocabulary(con, dx_before)
    con.execute(PATIENT_FEATURES_SQL.format(
        table=table,
        categories=_one_hot("cat", vocabulary["cat"], "category", "sum(amount) FILTER (WHERE {cond})", "_feat_lines",
                            key="_pid"),
        channels=_one_hot("ch", vocabulary["ch"], "channel", "count(*) FILTER (WHERE {cond})", "order_channels",
                          key="_pid"),
        conditions=_one_hot("cond", vocabulary["cond"], _slug("condition_code"),
                            "max(CASE WHEN {cond} THEN 1 ELSE 0 END)", "diagnosed"),
        event_categories="".join(f", count(*) FILTER (WHERE {_slug('coalesce(e.category, ep.category)')} = "
                                 f"{sql_literal(v)}) AS evt__{v}" for v in vocabulary.get("evt", [])),
        dx_before=dx_before, survey_before=before("responded_at"), event_before=before("e.occurred_at"),
        as_of=cutoff or AS_OF_SQL,
        age_band=age_band_sql("year((SELECT as_of FROM a)) - birth_year"), shares=_shares(vocabulary)))
    _drop_temporaries(con)
    return vocabulary


def feature_columns(con: Session, table: str) -> list[str]:
    """The model-input columns of a feature table (everything but the key)."""
    return [r[0] for r in con.execute(f"DESCRIBE {table}").fetchall() if r[0] != "patient_key"]


# Features of many (slice, patient, cut-off) rows at once: `_feat_people` lists `_pid` (a number per
# row), `_slice`, `patient_key`, `_cutoff` (a TIMESTAMP) and what the caller carries along; each row
# gets what build_patient_features gives that patient with that cut-off (the same columns, types and
# values, the vocabulary fixed). History is read once for every slice, and only the history of the
# patients asked for; rows are grouped by `_pid`, not by the long key. Orders and their channels are
# counted from one grouping of the lines by order (an order counts for a channel when a line of it
# went through the channel: the distinct (order, channel) pairs build_patient_features counts).
FEATURES_AT_SQL = """
CREATE OR REPLACE TABLE {table} AS
WITH o AS (SELECT _pid, sum(amount) AS monetary, count(*) AS order_lines, count(DISTINCT product_id) AS distinct_products,
                  max(ordered_at) AS last_order_at {categories}
           FROM _feat_lines GROUP BY _pid),
by_order AS (SELECT _pid, order_id {order_channels} FROM _feat_lines GROUP BY _pid, order_id),
h AS (SELECT _pid, count(order_id) AS frequency {channels} FROM by_order GROUP BY _pid),
diagnosed AS (SELECT pe._pid, x.condition_code, {condition} AS condition FROM staging.diagnoses x
              JOIN _feat_people pe ON pe.patient_key = x.patient_key
              AND (CAST(x.diagnosed_at AS TIMESTAMP) < pe._cutoff OR x.diagnosed_at IS NULL)),
d AS ({conditions}),
dd AS (SELECT _pid, count(DISTINCT condition_code) AS chronic_conditions FROM diagnosed GROUP BY _pid),
s AS (SELECT pe._pid, avg(x.satisfaction) AS satisfaction FROM staging.surveys x
      JOIN _feat_people pe ON pe.patient_key = x.patient_key AND (x.responded_at < pe._cutoff OR x.responded_at IS NULL)
      GROUP BY pe._pid),
-- an event names a category or a product (contract): the product's category stands in
-- (each distinct category's name made once, not once per event)
events AS (SELECT e.patient_key, e.occurred_at, coalesce(ec.category, ep.category) AS category
           FROM staging.events e LEFT JOIN _feat_products ep ON ep.product_id = e.product_id
           LEFT JOIN (SELECT category AS name, {event_category} AS category
                      FROM (SELECT DISTINCT category FROM staging.events) AS named) ec ON ec.name = e.category
           WHERE e.patient_key IS NOT NULL),
g AS (SELECT pe._pid, count(*) AS digital_events {event_categories}
      FROM events e JOIN _feat_people pe ON pe.patient_key = e.patient_key AND e.occurred_at < pe._cutoff
      GROUP BY pe._pid),
pt AS (SELECT pe.*, p.gender AS _gender, {age_band} AS _band
       FROM _feat_people pe JOIN staging.patients p USING (patient_key)),
features AS (
SELECT pt.*,
       CAST(CASE WHEN _band = 'unknown' THEN NULL WHEN _band = '90+' THEN 92
                 ELSE CAST(split_part(_band, '-', 1) AS INTEGER) + 5 END AS DOUBLE) AS age_years,
       CASE pt._gender WHEN 'F' THEN 1.0 WHEN 'M' THEN 0.0 ELSE 0.5 END AS is_female,
       CAST(h.frequency IS NOT NULL AS DOUBLE) AS has_orders,
       CAST(coalesce(date_diff('day', o.last_order_at, pt._cutoff), 3650) AS DOUBLE) AS recency_days,
       CAST(coalesce(h.frequency, 0) AS DOUBLE) AS frequency,
       CAST(coalesce(o.monetary, 0) AS DOUBLE) AS monetary,
       CAST(coalesce(o.monetary / nullif(h.frequency, 0), 0) AS DOUBLE) AS avg_order_value,
       CAST(coalesce(o.distinct_products, 0) AS DOUBLE) AS distinct_products,
       CAST(coalesce(g.digital_events, 0) AS DOUBLE) AS digital_events,
       CAST(coalesce(o.order_lines, 0) AS DOUBLE) AS order_lines,
       CAST(s.satisfaction AS DOUBLE) AS satisfaction,
       CAST(s.satisfaction IS NOT NULL AS DOUBLE) AS has_survey,
       CAST(coalesce(dd.chronic_conditions, 0) AS DOUBLE) AS chronic_conditions
       {shares}
FROM pt
LEFT JOIN o USING (_pid) LEFT JOIN h USING (_pid) LEFT JOIN d USING (_pid) LEFT JOIN dd USING (_pid)
LEFT JOIN s USING (_pid) LEFT JOIN g USING (_pid))
SELECT {columns} FROM features"""
FEATURES_AT_LINES_SQL = """
CREATE OR REPLACE TEMP TABLE _feat_lines AS
SELECT pe._pid, o.order_id, o.ordered_at, coalesce(o.channel, 'other') AS channel, o.product_id,
       p.category, o.quantity * o.unit_price AS amount
FROM staging.orders o JOIN _feat_products p USING (product_id)
JOIN _feat_people pe ON pe.patient_key = o.patient_key AND o.ordered_at < pe._cutoff"""
# The products with their category's column name, made once per product rather than once per line.
FEATURES_AT_PRODUCTS_SQL = "CREATE OR REPLACE TEMP TABLE _feat_products AS SELECT product_id, {category} AS category FROM staging.products"


def feature_names(vocabulary: dict[str, list[str]]) -> list[str]:
    """The columns build_patient_features writes for `vocabulary`, in order."""
    return ["patient_key", *BASE_COLUMNS, *(f"{prefix}__{v}" for prefix in ("cat", "ch", "cond", "evt")
                                            for v in vocabulary.get(prefix, []))]


def _number_people(con: Session, people_sql: str) -> None:
    """`_feat_people`: the rows of `people_sql` with a number each, `_pid` (DuckDB's row id costs
    nothing; Spark numbers them in key order)."""
    if con.engine == "spark":
        con.execute("CREATE OR REPLACE TEMP TABLE _feat_people AS SELECT row_number() OVER (ORDER BY _slice, "
                    f"patient_key) AS _pid, * FROM ({people_sql}) AS people")
        return
    con.execute(f"CREATE OR REPLACE TEMP TABLE _feat_people_rows AS {people_sql}")
    con.execute("CREATE OR REPLACE TEMP VIEW _feat_people AS SELECT rowid AS _pid, * FROM _feat_people_rows")


def build_features_at(con: Session, table: str, people_sql: str, vocabulary: dict[str, list[str]],
                      carried: list[str] = (), extra: str = "") -> None:
    """Write `table`: for each row of `people_sql` (`_slice`, `patient_key`, `_cutoff` and the
    `carried` columns), the carried columns, then the columns build_patient_features would give that
    patient with that cut-off (FEATURES_AT_SQL), then `extra` (`, <expression> AS <name>` over those
    columns and `_slice`). Rows whose patient is not in staging.patients are left out, as there."""
    _number_people(con, people_sql)
    con.execute(FEATURES_AT_PRODUCTS_SQL.format(category=_slug("category")))
    con.execute(FEATURES_AT_LINES_SQL)
    conditions = [f"max(CASE WHEN condition = {sql_literal(v)} THEN 1 ELSE 0 END) AS cond__{v}"
                  for v in vocabulary["cond"]]
    con.execute(FEATURES_AT_SQL.format(
        table=table,
        categories="".join(f", sum(amount) FILTER (WHERE category = {sql_literal(v)}) AS cat__{v}"
                           for v in vocabulary["cat"]),
        order_channels="".join(f", max(CASE WHEN channel = {sql_literal(v)} THEN 1 ELSE 0 END) AS ch__{v}"
                               for v in vocabulary["ch"]),
        channels="".join(f", count(*) FILTER (WHERE ch__{v} = 1) AS ch__{v}" for v in vocabulary["ch"]),
        conditions=(f"SELECT _pid, {', '.join(conditions)} FROM diagnosed GROUP BY _pid" if conditions
                    else "SELECT _pid FROM diagnosed WHERE false"),
        event_category=_slug("category"), condition=_slug("x.condition_code"),
        event_categories="".join(f", count(*) FILTER (WHERE category = {sql_literal(v)}) AS evt__{v}"
                                 for v in vocabulary.get("evt", [])),
        age_band=age_band_sql("year(pe._cutoff) - p.birth_year"),
        shares=_shares(vocabulary, spend="o", orders="h"),
        columns=", ".join([*carried, *feature_names(vocabulary)]) + extra))
    con.execute("DROP TABLE IF EXISTS _feat_products")
    _drop_temporaries(con)


def _drop_temporaries(con: Session) -> None:
    con.execute("DROP TABLE IF EXISTS _feat_lines")
    if con.engine == "spark":
        con.execute("DROP TABLE IF EXISTS _feat_people")
    else:
        con.execute("DROP VIEW IF EXISTS _feat_people")
        con.execute("DROP TABLE IF EXISTS _feat_people_rows")
