"""Disease risk as prediction: a new diagnosis within a horizon after an index date.

A patient who already has a condition is not "at risk" of it, and what happened after
the index date (the drugs bought because of a diagnosis, the diagnosis itself) must not
reach the features. So training rows are built per index date: the patients alive,
registered and not yet diagnosed at that date, with features from strictly before it
(`build_features_at` with the index date as cut-off) and the label "first diagnosed
within `horizon` days after it". Index dates step back from the data's as-of time by one
horizon each, so every label window has ended and the latest index's rows can test a
model trained on the earlier ones (temporal validation). The model that is published is
refitted on every index date and scores the features at the export's as-of time
(lib.sources.as_of): the risk of a new diagnosis within the horizon from then.
"""
from __future__ import annotations

from datetime import datetime, timedelta

import pandas as pd

from medmkt_assets.lib.engine.sql import sql_literal, stable_hash_sql
from medmkt_assets.lib.engine.warehouse import Session
from medmkt_assets.lib.models.campaign_features import vocabulary_of
from medmkt_assets.lib.models.features import build_features_at, column_slug
from medmkt_assets.lib.sources.as_of import AS_OF_SQL

RISK_TRAINING_TABLE = "features.risk_training"
# First diagnosis per patient and condition; an undated one counts as long ago (already had it).
FIRST_DIAGNOSIS_SQL = """
SELECT patient_key, condition_code,
       min(coalesce(CAST(diagnosed_at AS TIMESTAMP), TIMESTAMP '1900-01-01')) AS first_at
FROM staging.diagnoses GROUP BY ALL"""
# Who can get a new diagnosis after {index}: profiled, living, registered before it.
AT_INDEX_SQL = """
SELECT patient_key FROM staging.patients SEMI JOIN marts.patient_profiles USING (patient_key)
WHERE NOT coalesce(is_deceased, false) AND (registered_at IS NULL OR CAST(registered_at AS TIMESTAMP) < {index})"""
# Conditions with the most new diagnoses over all index windows (at least $min_positives).
RISK_CONDITIONS_SQL = f"""
WITH first_dx AS ({FIRST_DIAGNOSIS_SQL}),
windows AS (SELECT DISTINCT index_date, horizon_end, patient_key FROM {RISK_TRAINING_TABLE})
SELECT d.condition_code, count(*) AS new_cases FROM windows w
JOIN first_dx d ON d.patient_key = w.patient_key AND d.first_at >= w.index_date AND d.first_at < w.horizon_end
GROUP BY 1 HAVING count(*) >= $min_positives ORDER BY 2 DESC, 1 LIMIT $conditions"""
# Each condition's training rows: patients without it at the index date, labelled by a first
# diagnosis inside the window; a hash-Bernoulli sample of about $max_rows rows (classes in
# proportion). Every condition's rows come from one pass ({first}, {counts}, {labels} per condition
# i: `_new_i` the label, `_pick_i` whether the row is in the condition's sample), the hash made once.
RISK_ROWS_SQL = f"""
WITH {{first}},
counts AS (SELECT {{counts}} FROM {RISK_TRAINING_TABLE} r {{joins}}),
at_risk_rows AS (
  SELECT r.*, p.gender AS _gender, p.age_band AS _age_band,
         {stable_hash_sql('r.patient_key', 'r.index_date', '$seed')} % 1000000 AS _hash {{labels}}
  FROM {RISK_TRAINING_TABLE} r JOIN marts.patient_profiles p USING (patient_key) {{joins}})
SELECT *{{picks}} FROM at_risk_rows WHERE {{picked}}
ORDER BY index_date, patient_key"""


def risk_training_rows(con: Session, codes: list[str], seed: int, max_rows: int) -> dict[str, pd.DataFrame]:
    """Each condition's training rows (RISK_ROWS_SQL): features.risk_training's columns, `new_diagnosis`
    and the profile's `_gender` and `_age_band`, in index date and key order."""
    if not codes:
        return {}
    first = [f"first_{i} AS (SELECT patient_key, min(coalesce(CAST(diagnosed_at AS TIMESTAMP), TIMESTAMP "
             f"'1900-01-01')) AS first_at FROM staging.diagnoses WHERE condition_code = {sql_literal(code)} "
             "GROUP BY patient_key)" for i, code in enumerate(codes)]
    at_risk = [f"(d{i}.first_at IS NULL OR d{i}.first_at >= r.index_date)" for i in range(len(codes))]
    picks = [f"(_at_risk_{i} AND _hash < 1000000.0 * $max_rows / greatest((SELECT at_risk_{i} FROM counts), 1))"
             for i in range(len(codes))]
    rows = con.execute(RISK_ROWS_SQL.format(
        first=",\n".join(first),
        joins=" ".join(f"LEFT JOIN first_{i} d{i} ON d{i}.patient_key = r.patient_key" for i in range(len(codes))),
        counts=", ".join(f"count(*) FILTER (WHERE {a}) AS at_risk_{i}" for i, a in enumerate(at_risk)),
        labels="".join(f", {a} AS _at_risk_{i}, CAST(d{i}.first_at IS NOT NULL AND d{i}.first_at < r.horizon_end "
                       f"AS INTEGER) AS _new_{i}" for i, a in enumerate(at_risk)),
        picks="".join(f", {pick} AS _pick_{i}" for i, pick in enumerate(picks)),
        picked=" OR ".join(picks)),
        {"seed": seed, "max_rows": max_rows}).fetchdf()
    helpers = {"_gender", "_age_band", "_hash", *(f"{p}_{i}" for i in range(len(codes)) for p in ("_at_risk", "_new", "_pick"))}
    columns = [c for c in rows.columns if c not in helpers]
    out = {}
    for i, code in enumerate(codes):
        part = rows[rows[f"_pick_{i}"].to_numpy(dtype=bool)]
        out[code] = part[columns].assign(new_diagnosis=part[f"_new_{i}"].astype("int32"), _gender=part["_gender"],
                                         _age_band=part["_age_band"]).reset_index(drop=True)
    return out


def index_dates(as_of: datetime, horizon_days: int, count: int) -> list[datetime]:
    """`count` index dates, oldest first, one horizon apart, the latest one horizon before as_of
    (so every label window [index, index + horizon) has been observed)."""
    if horizon_days < 1 or count < 1:
        raise ValueError("the horizon and the number of index dates must be at least 1")
    return [as_of - timedelta(days=horizon_days * k) for k in range(count, 0, -1)]


def _timestamp(value: datetime) -> str:
    return f"CAST({sql_literal(value.isoformat(sep=' '))} AS TIMESTAMP)"


def build_risk_training(con: Session, horizon_days: int, index_count: int,
                        current_features: str = "features.patient_features",
                        table: str = RISK_TRAINING_TABLE) -> list[datetime]:
    """Write `table`: per index date, every patient who could get a new diagnosis after it, with
    features from before it (the current feature table's columns) and the end of the label window.
    Returns the index dates."""
    as_of = con.execute(f"SELECT {AS_OF_SQL}").fetchall()[0][0]
    vocabulary = vocabulary_of(con, current_features)
    dates = index_dates(as_of, horizon_days, index_count)
    people = " UNION ALL ".join(
        f"SELECT {i} AS _slice, patient_key, {_timestamp(index)} AS _cutoff, {_timestamp(index)} AS index_date, "
        f"{_timestamp(index + timedelta(days=horizon_days))} AS horizon_end "
        f"FROM ({AT_INDEX_SQL.format(index=_timestamp(index))}) AS at_index" for i, index in enumerate(dates))
    # every index date's patients with their features, in one pass over the history
    build_features_at(con, table, people, vocabulary, carried=["index_date", "horizon_end"])
    return dates


def risk_model_columns(columns: list[str], condition_code: str) -> list[str]:
    """Model inputs for one condition: every feature but the condition's own flag (always 0 among
    the patients at risk, so it carries nothing, and 1 for the already diagnosed, who are not scored)."""
    own = f"cond__{column_slug(condition_code)}"
    return [c for c in columns if c != own]
