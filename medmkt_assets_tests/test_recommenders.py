"""Recommenders: metric known answers, splits without leakage, models, business rules, demo quality."""
from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd
import pytest

from medmkt_assets.lib import recommenders as R
from medmkt_assets.lib.rec_metrics import (
    catalog_coverage, chronological_split, evaluate, map_at_k, ndcg_at_k, novelty, precision_at_k, recall_at_k,
    stratified_split,
)

TRUTH = pd.DataFrame({"user_id": ["u", "u", "v"], "item_id": ["a", "b", "c"]})


def _recs(rows):
    return pd.DataFrame(rows, columns=["user_id", "item_id", "rank"])


def test_metrics_zero_hits_perfect_list_and_a_hand_computed_case():
    miss = _recs([("u", "x", 1), ("u", "y", 2), ("v", "z", 1)])
    for metric in (precision_at_k, recall_at_k, ndcg_at_k, map_at_k):
        assert metric(miss, TRUTH, 2) == 0.0
    perfect = _recs([("u", "a", 1), ("u", "b", 2), ("v", "c", 1)])
    assert recall_at_k(perfect, TRUTH, 2) == ndcg_at_k(perfect, TRUTH, 2) == map_at_k(perfect, TRUTH, 2) == 1.0
    assert precision_at_k(perfect, TRUTH, 1) == 1.0
    # u: hit at rank 2 only (of 2 relevant); v: hit at rank 1 (of 1)
    partial = _recs([("u", "x", 1), ("u", "a", 2), ("v", "c", 1), ("v", "y", 2)])
    assert precision_at_k(partial, TRUTH, 2) == pytest.approx((1 / 2 + 1 / 2) / 2)
    assert recall_at_k(partial, TRUTH, 2) == pytest.approx((1 / 2 + 1) / 2)
    ndcg_u = (1 / np.log2(3)) / (1 + 1 / np.log2(3))
    assert ndcg_at_k(partial, TRUTH, 2) == pytest.approx((ndcg_u + 1) / 2)
    assert map_at_k(partial, TRUTH, 2) == pytest.approx(((1 / 2) / 2 + 1) / 2)
    # a user with no list counts as zero
    assert recall_at_k(perfect[perfect.user_id == "u"], TRUTH, 2) == pytest.approx(0.5)


def test_coverage_and_novelty():
    train = pd.DataFrame({"user_id": ["u", "v", "w", "u"], "item_id": ["a", "a", "a", "b"]})
    recs = _recs([("x", "a", 1), ("x", "b", 2)])
    assert catalog_coverage(recs, 4) == 0.5
    assert novelty(recs, train) == pytest.approx((0 + -np.log2(1 / 3)) / 2)


def _planted(users=1500, items=120, groups=6, seed=0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    group = rng.integers(0, groups, users)
    rows = []
    for u in range(users):
        liked = np.arange(group[u] * 20, group[u] * 20 + 20)
        picks = np.concatenate([rng.choice(liked, 8, replace=False), rng.choice(items, 2, replace=False)])
        rows += [(f"u{u}", f"i{i}", pd.Timestamp("2025-01-01") + pd.Timedelta(days=int(d)))
                 for i, d in zip(picks, rng.integers(0, 365, len(picks)))]
    return pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"]).drop_duplicates(["user_id", "item_id"])


def test_splits_do_not_leak():
    data = _planted()
    train, test = chronological_split(data, 60)
    assert train.timestamp.max() < test.timestamp.min()
    assert test.merge(train, on=["user_id", "item_id"]).empty
    train, test = stratified_split(data, 0.75, seed=42)
    again, _ = stratified_split(data, 0.75, seed=42)
    assert train.equals(again)
    assert set(test.user_id) <= set(train.user_id)
    assert 0.7 <= len(train) / len(data) <= 0.82  # round(0.75 · 10) = 8 of most users' 10 items


@pytest.mark.parametrize("model", [R.Popularity(), R.ItemKNN("cosine"), R.ItemKNN("jaccard"), R.ItemKNN("lift"),
                                   R.EASE(100.0)])
def test_models_return_k_unseen_items_ranked(model):
    data = _planted(300)
    recs = model.fit(data).recommend(["u1", "u2"], k=5)
    assert recs.groupby("user_id").size().tolist() == [5, 5]
    assert recs.groupby("user_id")["rank"].apply(list).tolist() == [[1, 2, 3, 4, 5]] * 2
    assert recs.merge(data, on=["user_id", "item_id"]).empty


def test_strong_models_beat_popularity_on_planted_tastes():
    train, test = stratified_split(_planted(), 0.75, seed=42)
    ndcg = {}
    for model in (R.Popularity(), R.ItemKNN("cosine"), R.EASE(100.0)):
        recs = model.fit(train).recommend(test.user_id.unique(), k=10)
        ndcg[model.name] = evaluate(recs, test, train, 120)["ndcg_at_10"]
    assert ndcg["ease"] > 2 * ndcg["popularity"] and ndcg["itemknn_cosine"] > 2 * ndcg["popularity"]


def test_time_decay_changes_item_knn_scores():
    data = _planted(300)
    plain = R.ItemKNN("cosine").fit(data)._scores(np.array([0]))
    decayed = R.ItemKNN("cosine", half_life_days=30).fit(data)._scores(np.array([0]))
    assert not np.allclose(plain, decayed)


def test_content_based_reaches_never_bought_items_and_unknown_users_get_popular_ones():
    data = pd.DataFrame({"user_id": ["u", "u", "v"], "item_id": ["glucose meter", "insulin pen", "sunscreen"]})
    text = pd.Series({"glucose meter": "diabetes glucose meter device", "insulin pen": "diabetes insulin drug",
                      "test strips": "diabetes glucose test strips", "sunscreen": "skin sunscreen cream"})
    recs = R.ContentBased(text).fit(data).recommend(["u"], k=1)
    assert recs.item_id.tolist() == ["test strips"]
    fallback = R.fit(data, "popularity").recommend(["stranger"], k=2)
    assert len(fallback) == 2
    assert R.fit(data).recommend(["u"], k=1).item_id.tolist()  # default model (EASE) answers


def test_business_rules_drop_rx_only_and_cap_categories():
    products = pd.DataFrame({"item_id": list("abcde"), "category": ["x", "x", "x", "y", "y"],
                             "rx_only": [False, False, False, True, False], "kind": ["drug"] * 5})
    candidates = pd.DataFrame({"user_id": "u", "item_id": list("abcde"), "score": [5, 4, 3, 2, 1], "rank": [1, 2, 3, 4, 5]})
    out = R.apply_business_rules(candidates, products, k=3, max_per_category=2)
    assert out.item_id.tolist() == ["a", "b", "e"] and out["rank"].tolist() == [1, 2, 3]


def test_demo_recommendations_cover_everyone_and_beat_popularity(demo_pipeline):
    con = duckdb.connect(str(demo_pipeline["warehouse"]), read_only=True)
    profiled = con.execute("SELECT count(*) FROM marts.patient_profiles").fetchone()[0]
    covered = con.execute("SELECT count(DISTINCT patient_key) FROM marts.recommendations").fetchone()[0]
    assert covered == profiled
    rx = con.execute("SELECT count(*) FROM marts.recommendations JOIN staging.products USING (product_id) "
                     "WHERE rx_only").fetchone()[0]
    assert rx == 0
    ndcg = dict(con.execute("SELECT model, ndcg_at_10 FROM marts.recommendation_evaluation "
                            "WHERE split = 'holdout'").fetchall())
    assert max(ndcg.values()) > 2.5 * ndcg["popularity"]
