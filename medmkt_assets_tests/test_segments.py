"""Segmentation: known answers on planted blobs, labels, summary suppression, and the demo truth."""
from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd
from sklearn.metrics import adjusted_rand_score

from medmkt_assets.lib.models.segment_summary import SEGMENT_SUMMARY_SQL
from medmkt_assets.lib.models.segments import (
    MicroWard,
    choose_k,
    choose_method,
    elbow_k,
    label_segments,
    segment_patients,
    segment_table,
)
from medmkt_assets.lib.privacy.pseudonym import pseudonymize


def _blobs(n_per: int = 300, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = np.array([[1, 0.9, 0.1], [40, 0.1, 0.9], [8, 0.5, 0.5]])
    truth = np.repeat(np.arange(3), n_per)
    frame = pd.DataFrame({
        "frequency": np.clip(rng.normal(centres[truth, 0], 0.5), 0.5, None),
        "cat__a": np.clip(rng.normal(centres[truth, 1], 0.05), 0, 1),
        "ch__store": np.clip(rng.normal(centres[truth, 2], 0.05), 0, 1),
    })
    return frame, truth


def test_kmeans_and_ward_recover_planted_blobs_and_k():
    frame, truth = _blobs()
    result = segment_patients(frame, (2, 6), sample_size=600)
    assert result.k == 3
    assert adjusted_rand_score(truth, result.labels) > 0.95
    assert set(result.comparison.method) == {"kmeans", "ward"}
    assert (result.comparison.silhouette > 0.5).all()


def test_micro_ward_never_needs_all_pairs_and_predicts_new_rows():
    frame, truth = _blobs(2000)
    z = (frame - frame.mean()) / frame.std()
    model = MicroWard(n_clusters=3, n_micro=50).fit(z.to_numpy())
    assert adjusted_rand_score(truth, model.labels_) > 0.95
    assert (model.predict(z.to_numpy()[:10]) == model.labels_[:10]).all()


def test_patients_without_orders_get_their_own_segment():
    frame, _ = _blobs(100)
    frame.loc[:4, "frequency"] = 0
    result = segment_patients(frame, (2, 4), sample_size=300)
    assert (result.labels[:5] == result.k).all()
    assert (result.labels[5:] < result.k).all()
    assert (result.model.predict(frame.iloc[:8]) == result.labels[:8]).all()


def test_elbow_is_where_inertia_bends_most():
    scan = pd.DataFrame({"k": [2, 3, 4, 5], "inertia": [100.0, 40.0, 35.0, 31.0]})
    assert elbow_k(scan) == 3


def test_silhouette_chooses_and_the_elbow_or_stability_break_near_ties():
    scan = pd.DataFrame({"k": [2, 3, 4, 5, 6], "inertia": [100.0, 40.0, 30.0, 25.0, 22.0],
                         "silhouette": [0.40, 0.50, 0.51, 0.45, 0.30]})
    assert elbow_k(scan) == 3
    assert choose_k(scan) == 3               # 0.50 is within 0.02 of 0.51: the elbow wins the tie
    assert choose_k(scan, tolerance=0.0) == 4  # no tolerance: the plain best silhouette
    clear = scan.assign(silhouette=[0.40, 0.30, 0.60, 0.45, 0.30])
    assert choose_k(clear) == 4              # a clear winner is not overruled by the elbow
    methods = pd.DataFrame({"method": ["kmeans", "ward"], "silhouette": [0.50, 0.49],
                            "stability_ari": [0.70, 0.95]})
    assert methods.method[choose_method(methods)] == "ward"
    assert methods.method[choose_method(methods.assign(silhouette=[0.50, 0.40]))] == "kmeans"


def test_labels_name_value_category_channel_and_age():
    means = pd.DataFrame({
        "monetary": [2000.0, 500.0, 1000.0, 0.0],
        "cat__diabetes_care": [0.6, 0.1, 0.2, 0.0], "cat__dermatology": [0.1, 0.7, 0.2, 0.0],
        "ch__store": [0.8, 0.1, 0.5, 0.0], "ch__app": [0.1, 0.9, 0.5, 0.0],
        "age_band": ["70-79", "20-29", "40-49", "30-39"],
    })
    labels = label_segments(means)
    assert labels[0] == "high value · diabetes care · store · 70-79"
    assert labels[1] == "low value · dermatology · app · 20-29"
    assert labels[3] == "no purchases yet · 30-39"
    assert labels.is_unique


def test_demo_segments_recover_the_planted_segments(demo_pipeline):
    con = duckdb.connect(str(demo_pipeline["warehouse"]), read_only=True)
    published = con.execute("SELECT patient_key, segment_id FROM marts.patient_segments").fetchdf()
    buyers = con.execute("SELECT patient_key FROM marts.patient_profiles WHERE frequency > 0").fetchdf()
    truth = pd.read_csv(demo_pipeline["truth"] / "patient_segments.csv", dtype={"patient_id": str},
                        usecols=["patient_id", "segment"])
    truth["patient_key"] = truth.patient_id.str.strip().map(lambda p: pseudonymize(p, demo_pipeline["key"]))
    joined = published.merge(truth, on="patient_key").merge(buyers, on="patient_key")
    assert adjusted_rand_score(joined.segment_id, joined.segment) >= 0.6


def test_demo_segmentation_run_holds_plots_and_the_summary(demo_pipeline):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{demo_pipeline['root'] / 'mlflow' / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("medmkt-segmentation")
    runs = client.search_runs([experiment.experiment_id])
    assert sorted(r.data.tags["method"] for r in runs) == ["kmeans", "ward"]  # one run per method
    (run,) = [r for r in runs if r.data.tags["champion"] == "true"]
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"elbow.png", "silhouette.png", "projection.png", "segment_summary.csv"} <= artifacts
    assert run.data.tags["data_snapshot"] not in ("", "unknown")
    assert client.get_model_version_by_alias("medmkt-segmentation", "champion").run_id == run.info.run_id


def _summary_world(con, segments: pd.DataFrame, channel: str = "store") -> None:
    """marts.patient_segments as given; every member's profile the same, preferring `channel`."""
    for schema in ("marts", "features", "staging"):
        con.execute(f"CREATE SCHEMA {schema}")
    con.register("segments", segments)
    con.execute("CREATE TABLE marts.patient_segments AS SELECT * FROM segments")
    con.execute(f"""CREATE TABLE marts.patient_profiles AS SELECT patient_key, '30-39' AS age_band, 'F' AS gender,
        10 AS recency_days, 2 AS frequency, 100.0 AS monetary, 50.0 AS avg_order_value, 3 AS digital_events,
        4.0 AS avg_satisfaction, 0 AS chronic_conditions, true AS marketing_consent, '{channel}' AS preferred_channel
        FROM marts.patient_segments""")
    con.execute("CREATE TABLE features.patient_features AS SELECT patient_key, 3 AS digital_events "
                "FROM marts.patient_segments")
    con.execute("CREATE TABLE staging.orders (patient_key VARCHAR, product_id VARCHAR, quantity INT, unit_price DOUBLE)")
    con.execute("CREATE TABLE staging.products (product_id VARCHAR, category VARCHAR)")
    con.execute("CREATE TABLE staging.campaign_contacts (patient_key VARCHAR, arm VARCHAR, converted BOOLEAN)")
    con.execute(SEGMENT_SUMMARY_SQL)


def test_segment_summary_hides_small_segments_and_their_complement(tmp_path):
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    sizes = {0: 50, 1: 30, 2: 4}
    _summary_world(con, pd.DataFrame(
        [(f"{s}-{i}", s, "x", "checkup", "app") for s, n in sizes.items() for i in range(n)],
        columns=["patient_key", "segment_id", "segment_label", "distinctive_category", "distinctive_channel"]))
    summary = con.execute("SELECT segment_id, patients, avg_monetary, suppressed FROM marts.segment_summary "
                          "ORDER BY 1").fetchall()
    assert summary == [(0, 50, 100.0, False), (1, None, None, True), (2, None, None, True)]


def test_the_summary_shows_the_labels_distinctive_channel_beside_the_most_common_one():
    # segment 1 orders in store more than anywhere else, but by phone far more than the others do
    features = pd.DataFrame({"monetary": [100.0] * 24, "cat__checkup": [0.5] * 12 + [0.2] * 12,
                             "cat__dermatology": [0.5] * 12 + [0.8] * 12,
                             "ch__store": [0.9] * 12 + [0.6] * 12, "ch__phone": [0.1] * 12 + [0.4] * 12})
    keys = pd.Series([f"k{i}" for i in range(24)])
    segments, labels = segment_table(keys, features, pd.Series(["40-49"] * 24), np.repeat([0, 1], 12), "kmeans_k2")
    assert labels[1] == "mid value · dermatology · phone · 40-49"
    con = duckdb.connect()
    _summary_world(con, segments, channel="store")
    row = con.execute("SELECT segment_label, preferred_channel, distinctive_channel, distinctive_category "
                      "FROM marts.segment_summary WHERE segment_id = 1").fetchone()
    assert row == (labels[1], "store", "phone", "dermatology")
