"""Champion choice, training rows and batch serving of the recommender, on small known answers."""
from __future__ import annotations

import pandas as pd

from medmkt_assets.lib.models import recommender_selection as sel
from medmkt_assets.lib.models.recommenders import Popularity


def _evaluation(rows):
    return pd.DataFrame(rows, columns=["model", "split", "ndcg_at_10"])


def test_the_champion_is_the_best_holdout_ndcg_but_never_segment_popularity():
    table = _evaluation([("popularity", "holdout", 0.10), ("popularity_by_segment", "holdout", 0.50),
                         ("itemknn_cosine", "holdout", 0.30), ("ease_l50", "holdout", 0.29),
                         ("ease_l50", "stratified", 0.90)])
    assert sel.pick_champion(table, k=10) == "itemknn_cosine"


def test_without_a_holdout_the_stratified_split_ranks_and_without_anything_ease_serves():
    table = _evaluation([("popularity", "stratified", 0.2), ("ease_l1000", "stratified", 0.4)])
    assert sel.pick_champion(table, k=10) == "ease_l1000"
    assert sel.pick_champion(_evaluation([]), k=10) == sel.FALLBACK_CHAMPION
    only_baseline = _evaluation([("popularity_by_segment", "holdout", 0.9)])
    assert sel.pick_champion(only_baseline, k=10) == sel.FALLBACK_CHAMPION


def test_training_rows_are_everyone_or_a_seeded_sample_of_whole_histories():
    interactions = pd.DataFrame({"user_id": [1, 1, 2, 3, 3, 3, 4], "item_id": list("abacdea")})
    users = pd.Series([1, 2, 3, 4])
    assert sel.training_rows(interactions, users, 10, seed=0) is interactions
    sample = sel.training_rows(interactions, users, 2, seed=0)
    assert sample.user_id.nunique() == 2
    for user, part in sample.groupby("user_id"):  # whole histories, never a part of one
        assert len(part) == (interactions.user_id == user).sum()
    assert sample.equals(sel.training_rows(interactions, users, 2, seed=0))


def test_allowed_products_drop_prescription_only_unless_nothing_would_remain():
    products = pd.DataFrame({"item_id": ["a", "b"], "rx_only": [True, False]})
    assert list(sel.allowed_products(products, exclude_rx_only=True)) == ["b"]
    assert list(sel.allowed_products(products, exclude_rx_only=False)) == ["a", "b"]
    every_rx = products.assign(rx_only=True)
    assert list(sel.allowed_products(every_rx, exclude_rx_only=True)) == ["a", "b"]


def test_serving_covers_every_user_in_batches_under_the_rules():
    interactions = pd.DataFrame({"user_id": [1, 1, 2, 2, 3], "item_id": ["a", "b", "a", "c", "b"],
                                 "weight": 1.0, "timestamp": pd.Timestamp("2025-01-01")})
    products = pd.DataFrame({"item_id": list("abcde"), "name": list("ABCDE"), "category": ["x", "x", "y", "y", "z"],
                             "kind": "drug", "rx_only": [False, False, False, True, False],
                             "text": ["alpha", "beta", "gamma", "delta", "epsilon"]})
    segments = pd.Series(["s1", "s1", "s2", "s2"], index=[1, 2, 3, 4])
    items = pd.Index(products.item_id)
    policy = sel.serving_policy(Popularity(), interactions, items, products.set_index("item_id").text, segments, 1)
    rules = sel.ServingRules(k=3)
    batches = list(sel.serve(policy, pd.Series([1, 2, 3, 4]), products, interactions, segments, rules,
                             "popularity", batch_size=3))
    assert [sorted(b.user_id.unique()) for b in batches] == [[1, 2, 3], [4]]
    served = pd.concat(batches)
    assert list(served.columns) == ["user_id", "rank", "product_id", "score", "model"]
    assert "d" not in set(served.product_id)                                   # prescription-only
    assert served.groupby("user_id").product_id.apply(set).loc[1].isdisjoint({"a", "b"})  # already bought
    assert (served.groupby("user_id")["rank"].max() <= 3).all()
    assert set(served.user_id) == {1, 2, 3, 4}                                 # the new patient 4 too


def test_a_recommender_fitted_on_item_codes_serves_product_ids():
    interactions = pd.DataFrame({"user_id": [1, 1, 2, 2, 3], "item_id": [10, 11, 10, 12, 11],
                                 "weight": 1.0, "timestamp": pd.Timestamp("2025-01-01")})
    products = pd.DataFrame({"item_id": [10, 11, 12, 13, 14], "product_id": list("abcde"), "name": list("ABCDE"),
                             "category": ["x", "x", "y", "y", "z"], "kind": "drug",
                             "rx_only": [False, False, False, True, False],
                             "text": ["alpha", "beta", "gamma", "delta", "epsilon"]})
    segments = pd.Series(["s1", "s1", "s2", "s2"], index=[1, 2, 3, 4])
    policy = sel.serving_policy(Popularity(), interactions, pd.Index(products.item_id),
                                products.set_index("item_id").text, segments, 1)
    rules = sel.ServingRules(k=3, exclude_seen=False)  # bought services and tests are still left out
    server = sel.ServedRecommender.build(policy, products, segments, rules, "popularity", interactions,
                                         products.set_index("item_id").product_id)
    codes = pd.concat(list(server.batches(pd.Series([1, 2, 3, 4]), batch_size=2)), ignore_index=True)
    served = server.recommend([1, 2, 3, 4])
    assert served.item_id.tolist() == codes.product_id.map(dict(zip(products.item_id, products.product_id))).tolist()
    assert set(served.item_id) <= {"a", "b", "c", "e"}                         # d is prescription-only
    assert set(served[served.user_id == 1].item_id) == {"a", "b", "c"}       # bought drugs may come again


def test_the_sample_of_coded_patients_is_the_one_training_rows_takes():
    users = pd.Series(range(1, 501))
    interactions = pd.DataFrame({"user_id": users.repeat(2).to_numpy(), "item_id": "a"})
    assert sel.sample_users(500, 500, seed=7) is None
    chosen = sel.sample_users(500, 40, seed=7)
    assert sorted(chosen) == sorted(sel.training_rows(interactions, users, 40, seed=7).user_id.unique())
