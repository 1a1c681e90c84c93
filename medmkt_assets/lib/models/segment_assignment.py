"""Segments for every patient without every patient on the driver.

The segmentation (lib.models.segments) is fitted on a bounded sample of patients: all of them
while they number at most `max_fit_patients` (then nothing changes: the fit is the published
labelling), else a sample chosen by an engine-neutral hash of the key, the same on DuckDB and
Spark. The fitted `Segmenter` is a pure function of a batch of patients, so it labels every
patient where the rows live: on DuckDB in pandas, on Spark in the executors (mapInPandas). The
segments' labels come from their mean profiles, which Spark aggregates (k rows reach the driver).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from medmkt_assets.lib.engine.sql import stable_hash_sql
from medmkt_assets.lib.models.segments import Segmenter, label_parts, label_segments

SEGMENT_IDS_SCHEMA = "patient_key string, segment_id int"
SEGMENT_IDS_VIEW = "_medmkt_segment_ids"
LABEL_COLUMNS = ("segment_label", "distinctive_category", "distinctive_channel")


def counts_sql(inputs_sql: str) -> str:
    """Patients and patients with orders among `inputs_sql`'s rows (the buyers are clustered)."""
    return ("SELECT count(*) AS patients, coalesce(sum(CASE WHEN i.frequency > 0 THEN 1 ELSE 0 END), 0) AS buyers "
            f"FROM ({inputs_sql}) AS i")


def fit_inputs_sql(inputs_sql: str, patients: int, max_fit_patients: int) -> str:
    """The rows the segmentation is fitted on: `inputs_sql` itself when it has at most
    `max_fit_patients` rows, else that many chosen by a hash of the key (stable across runs and
    engines), in key order."""
    if patients <= max_fit_patients:
        return inputs_sql
    return (f"SELECT * FROM (SELECT * FROM ({inputs_sql}) AS i ORDER BY {stable_hash_sql('i.patient_key')}, "
            f"i.patient_key LIMIT {int(max_fit_patients)}) AS fit ORDER BY patient_key")


def single_segment_sql(inputs_sql: str) -> str:
    """marts.patient_segments with everyone in one segment (too few buyers to cluster)."""
    return ("CREATE OR REPLACE TABLE marts.patient_segments AS SELECT i.patient_key, CAST(0 AS INTEGER) AS segment_id, "
            "'all patients' AS segment_label, CAST(NULL AS VARCHAR) AS distinctive_category, "
            "CAST(NULL AS VARCHAR) AS distinctive_channel, 'single_segment' AS model "
            f"FROM ({inputs_sql}) AS i ORDER BY i.patient_key")


def assign(model: Segmenter, batch: pd.DataFrame) -> pd.DataFrame:
    """(patient_key, segment_id) of a batch of `inputs_sql` rows: the function the executors run."""
    return pd.DataFrame({"patient_key": batch["patient_key"].astype(str).to_numpy(),
                         "segment_id": model.predict(batch).astype("int32")})


def profile_means_sql(columns: list[str], features_table: str = "features.patient_features") -> str:
    """Per segment, the mean of the profile columns the labels read (monetary, cat__ and ch__ shares)."""
    used = [c for c in columns if c == "monetary" or c.startswith(("cat__", "ch__"))]
    means = ", ".join(f"avg(CAST(f.{c} AS DOUBLE)) AS {c}" for c in used)
    return (f"SELECT s.segment_id, {means} FROM {SEGMENT_IDS_VIEW} s JOIN {features_table} f USING (patient_key) "
            "GROUP BY s.segment_id ORDER BY s.segment_id")


# the most common known age band of each segment (ties: the first band), as pandas' mode() picks it
AGE_BANDS_SQL = (
    "SELECT segment_id, age_band FROM (SELECT s.segment_id, p.age_band, row_number() OVER ("
    "PARTITION BY s.segment_id ORDER BY count(*) DESC, p.age_band) AS pick "
    f"FROM {SEGMENT_IDS_VIEW} s JOIN marts.patient_profiles p USING (patient_key) "
    "WHERE p.age_band IS NOT NULL AND p.age_band <> 'unknown' GROUP BY s.segment_id, p.age_band) AS bands "
    "WHERE pick = 1")


def segment_labels(means: pd.DataFrame, age_bands: pd.DataFrame) -> pd.DataFrame:
    """segment_id and the label columns of marts.patient_segments from the per-segment means
    (profile_means_sql) and modal age bands (AGE_BANDS_SQL), as segments.segment_table labels them."""
    means = means.set_index("segment_id")
    means.index = means.index.astype(np.int64)
    bands = age_bands.set_index(age_bands.segment_id.astype(np.int64)).age_band
    means["age_band"] = bands.reindex(means.index).fillna("unknown")
    labels, parts = label_segments(means), label_parts(means)
    return pd.DataFrame({"segment_id": means.index.astype("int32"), "segment_label": labels.to_numpy(),
                         "distinctive_category": parts.category.to_numpy(),
                         "distinctive_channel": parts.channel.to_numpy()})


def publish_on_spark(con, model: Segmenter, inputs_sql: str, columns: list[str], model_name: str) -> pd.Series:
    """Write marts.patient_segments on Spark: every row of `inputs_sql` labelled by `model` in the
    executors, the segments' labels from Spark's per-segment aggregates; no patient row reaches the
    driver. Returns the label of each segment."""
    from medmkt_assets.lib.models import on_spark

    assigned = on_spark.map_batches(con.dataframe(inputs_sql), lambda batch: assign(model, batch),
                                    SEGMENT_IDS_SCHEMA).cache()
    con.register(SEGMENT_IDS_VIEW, assigned)
    labels = segment_labels(con.execute(profile_means_sql(columns)).fetchdf(), con.execute(AGE_BANDS_SQL).fetchdf())
    con.write_frame(labels, "marts.patient_segments", query=(
        "SELECT s.patient_key, CAST(s.segment_id AS INTEGER) AS segment_id, "
        + ", ".join(f"CAST(l.{c} AS VARCHAR) AS {c}" for c in LABEL_COLUMNS)
        + f", '{model_name}' AS model FROM {SEGMENT_IDS_VIEW} s JOIN frame l USING (segment_id) ORDER BY s.patient_key"))
    assigned.unpersist()
    return labels.set_index("segment_id").segment_label
