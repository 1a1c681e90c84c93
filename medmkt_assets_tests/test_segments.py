"""Segmentation: known answers on planted blobs, labels, summary suppression, and the demo truth."""
from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd
from sklearn.metrics import adjusted_rand_score

from medmkt_assets.lib.engine.warehouse import Session
from medmkt_assets.lib.models.segment_assignment import write_labels
from medmkt_assets.lib.models.segment_summary import LABEL_WORDS_SQL, SEGMENT_SUMMARY_SQL
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
    words = pd.DataFrame({
        "avg_monetary": [2000.0, 500.0, 1000.0, 0.0],
        "top_category": ["diabetes_care", "dermatology", "checkup", None],
        "preferred_channel": ["store", "app", "store", None],
        "typical_age_band": ["70-79", "20-29", "40-49", "30-39"],
    })
    labels = label_segments(words)
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


def _summary_world(con, segments: pd.DataFrame, channel: str = "store", orders: list[tuple] = ()) -> None:
    """marts.patient_segments as given; every member's profile the same, preferring `channel`;
    `orders` as (patient_key, category, amount)."""
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
    for key, category, amount in orders:
        con.execute("INSERT INTO staging.orders VALUES (?, ?, 1, ?)", [key, category, amount])
        con.execute("INSERT INTO staging.products SELECT ?, ? WHERE ? NOT IN (SELECT product_id FROM staging.products)",
                    [category, category, category])
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


def test_a_label_names_the_channel_category_and_age_its_summary_row_shows():
    # segment 1 orders in store more than anywhere else, but by phone far more than the others do:
    # the label says "store" (what the table shows as preferred_channel), phone is only distinctive
    features = pd.DataFrame({"monetary": [100.0] * 24, "cat__checkup": [0.5] * 12 + [0.2] * 12,
                             "cat__dermatology": [0.5] * 12 + [0.8] * 12,
                             "ch__store": [0.9] * 12 + [0.6] * 12, "ch__phone": [0.1] * 12 + [0.4] * 12})
    keys = pd.Series([f"k{i}" for i in range(24)])
    segments = segment_table(keys, features, np.repeat([0, 1], 12), "kmeans_k2")
    orders = [(k, "dermatology" if i >= 12 else "checkup", 80.0) for i, k in enumerate(keys)] + [
        (k, "vaccination", 20.0) for k in keys]
    con = duckdb.connect()
    _summary_world(con, segments, channel="store", orders=orders)
    labels = label_segments(con.execute(LABEL_WORDS_SQL).fetchdf().set_index("segment_id"))
    assert labels[1] == "mid value · dermatology · store · 30-39"
    write_labels(Session(con), labels)
    con.execute(SEGMENT_SUMMARY_SQL)
    rows = con.execute("SELECT segment_label, avg_monetary, top_categories, preferred_channel, typical_age_band, "
                       "distinctive_channel, distinctive_category FROM marts.segment_summary ORDER BY segment_id"
                       ).fetchall()
    assert rows[1] == (labels[1], 100.0, "dermatology, vaccination", "store", "30-39", "phone", "dermatology")
    for label, _, top, channel, age, *_ in rows:
        assert label_words_agree(label, top, channel, age), (label, top, channel, age)


def label_words_agree(label: str, top_categories: str, preferred_channel: str, typical_age_band: str) -> bool:
    """A label's category, channel and age words are the first of top_categories, preferred_channel and
    typical_age_band (the value tier comes first; '#<id>' may follow)."""
    words = label.split(" #")[0].split(" · ")
    return words[1:] == [top_categories.split(", ")[0].replace("_", " "), preferred_channel, typical_age_band]


def test_demo_segment_labels_agree_with_their_summary_rows(demo_pipeline):
    con = duckdb.connect(str(demo_pipeline["warehouse"]), read_only=True)
    rows = con.execute("SELECT segment_label, top_categories, preferred_channel, typical_age_band "
                       "FROM marts.segment_summary WHERE NOT suppressed AND top_categories IS NOT NULL").fetchall()
    assert len(rows) >= 3
    for row in rows:
        assert label_words_agree(*row), row
    # every patient's label is their segment's published label
    (mismatched,) = con.execute("SELECT count(*) FROM marts.patient_segments p JOIN marts.segment_summary s "
                                "USING (segment_id) WHERE p.segment_label <> s.segment_label").fetchone()
    assert mismatched == 0
