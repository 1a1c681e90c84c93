"""Segments for every patient without every patient on the driver.

The segmentation (lib.models.segments) is fitted on a bounded sample of patients: all of them
while they number at most `max_fit_patients` (then nothing changes: the fit is the published
labelling), else a sample chosen by an engine-neutral hash of the key, the same on DuckDB and
Spark. The fitted `Segmenter` is a pure function of a batch of patients, so it labels every
patient where the rows live: on DuckDB in pandas, on Spark in the executors (mapInPandas). The
segments' labels come from what the warehouse says of their members (k rows reach the driver).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from medmkt_assets.lib.engine.sql import sql_literal, stable_hash_sql
from medmkt_assets.lib.models.segment_summary import LABEL_WORDS_SQL
from medmkt_assets.lib.models.segments import (
    SegmentationResult,
    Segmenter,
    distinctive_parts,
    label_segments,
    segment_table,
)

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


# The rows to label when the fit did not see everyone, kept in the warehouse so their keys need not
# come to pandas and go back.
INPUTS_TABLE = "_medmkt_segment_inputs"
# marts.patient_segments with each segment's label (`frame`: segment_id, segment_label).
LABELLED_SQL = ("SELECT s.patient_key, s.segment_id, CAST(l.segment_label AS VARCHAR) AS segment_label, "
                "s.distinctive_category, s.distinctive_channel, s.model "
                "FROM marts.patient_segments s LEFT JOIN frame l USING (segment_id)")


def publish_segments(con, result: SegmentationResult, inputs_sql: str, features: pd.DataFrame, keys: pd.Series,
                     whole: bool, model_name: str) -> pd.Series:
    """Write marts.patient_segments for every row of `inputs_sql` and return each segment's label.

    The memberships are written first (unlabelled), then named from what the warehouse says of the
    members (segment_summary.LABEL_WORDS_SQL: the numbers segment_summary shows) and labelled in
    SQL. On DuckDB the fit's own labels are written when it saw everyone (`whole`), else the
    model's prediction for every patient, whose features (not keys) come to pandas from a
    temporary table that the keys are joined back from. On Spark the executors label every
    patient (mapInPandas) and only per-segment aggregates reach the driver."""
    if con.engine == "spark":
        return _publish_on_spark(con, result.model, inputs_sql, list(features.columns), model_name)
    if whole:
        con.write_frame(segment_table(keys, features, result.labels, model_name), "marts.patient_segments")
    else:
        con.execute(f"CREATE OR REPLACE TEMP TABLE {INPUTS_TABLE} AS {inputs_sql}")  # in key order
        features = con.execute(f"SELECT rowid AS _row, * EXCLUDE (patient_key) FROM {INPUTS_TABLE}").fetchdf()
        rows = features.pop("_row").to_numpy()
        if (np.diff(rows) < 0).any():  # the patients in key order, as the fit saw them
            order = np.argsort(rows, kind="stable")
            features, rows = features.iloc[order].reset_index(drop=True), rows[order]
        segments = segment_table(pd.Series(rows), features, result.model.predict(features), model_name)
        con.write_frame(segments.rename(columns={"patient_key": "row"}), "marts.patient_segments", query=(
            "SELECT k.patient_key, f.* EXCLUDE (row) FROM frame f "
            f"JOIN (SELECT rowid AS row, patient_key FROM {INPUTS_TABLE}) k USING (row) ORDER BY row"))
        con.execute(f"DROP TABLE {INPUTS_TABLE}")
    labels = _labels(con)
    write_labels(con, labels)
    return labels


def write_labels(con, labels: pd.Series) -> None:
    """Give every row of marts.patient_segments its segment's label (`labels` by segment_id)."""
    con.write_frame(pd.DataFrame({"segment_id": labels.index.to_numpy().astype("int32"),
                                  "segment_label": labels.to_numpy(dtype=object)}),
                    "marts.patient_segments", query=LABELLED_SQL)


def _labels(con) -> pd.Series:
    """Each written segment's label, from the numbers segment_summary will show (k rows)."""
    return label_segments(con.execute(LABEL_WORDS_SQL).fetchdf().set_index("segment_id"))


def _publish_on_spark(con, model: Segmenter, inputs_sql: str, columns: list[str], model_name: str) -> pd.Series:
    """publish_segments on Spark: every row labelled by `model` in the executors; the distinctive
    parts from Spark's per-segment means and the labels from LABEL_WORDS_SQL (k rows each)."""
    from medmkt_assets.lib.models import on_spark

    assigned = on_spark.map_batches(con.dataframe(inputs_sql), lambda batch: assign(model, batch),
                                    SEGMENT_IDS_SCHEMA).cache()
    con.register(SEGMENT_IDS_VIEW, assigned)
    means = con.execute(profile_means_sql(columns)).fetchdf().set_index("segment_id")
    parts = distinctive_parts(means)
    frame = pd.DataFrame({"segment_id": means.index.astype("int32"), "segment_label": "",
                          "distinctive_category": parts.category.to_numpy(),
                          "distinctive_channel": parts.channel.to_numpy()})
    query = ("SELECT s.patient_key, CAST(s.segment_id AS INTEGER) AS segment_id, "
             + ", ".join(f"CAST(l.{c} AS VARCHAR) AS {c}" for c in LABEL_COLUMNS)
             + f", {sql_literal(model_name)} AS model FROM {SEGMENT_IDS_VIEW} s JOIN frame l USING (segment_id) "
               "ORDER BY s.patient_key")
    con.write_frame(frame, "marts.patient_segments", query=query)
    labels = _labels(con)
    con.write_frame(frame.assign(segment_label=labels.reindex(frame.segment_id.to_numpy()).to_numpy()),
                    "marts.patient_segments", query=query)
    assigned.unpersist()
    return labels
