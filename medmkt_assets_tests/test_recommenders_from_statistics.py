"""Recommenders fitted on the warehouse's item statistics and served from each patient's own rows
(issue 26: on Spark no order line reaches the driver) give exactly what the in-memory fit and
server give: the same item parameters, and the same lists for every patient, in any batching."""
from __future__ import annotations

from copy import deepcopy

import duckdb
import numpy as np
import pandas as pd
import pytest

from medmkt_assets.lib.engine.warehouse import Session
from medmkt_assets.lib.models import recommender_selection as sel
from medmkt_assets.lib.models.rec_statistics import item_statistics
from medmkt_assets.lib.models.recommenders import EASE, Interactions, ItemKNN, Popularity

USERS, ITEMS = 400, 40


def _world(seed: int = 3) -> tuple[pd.DataFrame, pd.DataFrame, pd.Series]:
    """Order lines of USERS patients (codes 1..USERS; every tenth bought nothing) over ITEMS products
    in 4 tastes, some lines of quantity 0 (left out of every fit), timestamps over two years; the
    products (two prescription-only, two services, one never bought) and segments (some missing)."""
    rng = np.random.default_rng(seed)
    lines = []
    for user in range(1, USERS + 1):
        if user % 10 == 0:
            continue
        taste = user % 4
        for line, item in enumerate(rng.choice(np.arange(taste * 10, taste * 10 + 10), rng.integers(1, 7))):
            lines.append((user, int(item) + 1, float(rng.integers(0, 4)),
                          pd.Timestamp("2024-01-01") + pd.Timedelta(days=int(rng.integers(0, 700))),
                          f"o{user}-{line // 2}", line))
    orders = pd.DataFrame(lines, columns=["user_id", "item_id", "weight", "timestamp", "order_id", "line_no"])
    orders = orders[orders.item_id != ITEMS].sort_values(["user_id", "timestamp", "order_id", "line_no"])
    products = pd.DataFrame({"item_id": np.arange(1, ITEMS + 1, dtype="int32"),
                             "name": [f"product {i}" for i in range(1, ITEMS + 1)],
                             "category": [f"cat{i % 5}" for i in range(1, ITEMS + 1)],
                             "kind": ["service" if i in (3, 14) else "drug" for i in range(1, ITEMS + 1)],
                             "rx_only": [i in (5, 17) for i in range(1, ITEMS + 1)]})
    products["text"] = products.name + " " + products.category + " taste" + ((products.item_id - 1) // 10).astype(str)
    segments = pd.Series([None if u % 7 == 0 else f"s{u % 3}" for u in range(1, USERS + 1)],
                         index=np.arange(1, USERS + 1)).astype("category")
    return orders.reset_index(drop=True), products, segments


@pytest.fixture(scope="module")
def world():
    orders, products, segments = _world()
    con = duckdb.connect()
    con.register("orders_frame", orders)
    con.register("segments_frame", segments.rename("group_label").rename_axis("user_id").reset_index())
    stats = item_statistics(Session(con), "SELECT * FROM orders_frame",
                            "SELECT user_id, CAST(group_label AS VARCHAR) AS group_label FROM segments_frame")
    yield orders, products, segments, stats
    con.close()


def test_the_warehouse_statistics_are_those_pandas_counts(world):
    orders, _, segments, stats = world
    data = Interactions(orders)
    assert stats.items.tolist() == data.items.tolist()         # first-seen order, quantity-0 lines left out
    assert stats.n_users == data.n_users == orders[orders.weight > 0].user_id.nunique()
    assert stats.latest == orders[orders.weight > 0].timestamp.max()
    X, seen, popularity, tiebreak = data.matrix(len(data.items), (True, None), lambda: np.ones(len(data)))
    np.testing.assert_array_equal(stats.cooccurrence, data.gram(len(data.items), (True, None), pattern=True))
    np.testing.assert_array_equal(np.diag(stats.cooccurrence), popularity)
    names, counts = data.group_counts(segments, seen)
    assert sorted(map(str, names)) == stats.groups.tolist()
    np.testing.assert_array_equal(counts[names.get_indexer(stats.groups)], stats.group_users)


@pytest.mark.parametrize("model", [Popularity(), ItemKNN("cosine"), ItemKNN("jaccard"), ItemKNN("lift"),
                                   ItemKNN("cosine", half_life_days=180), EASE(200.0)], ids=sel.label)
def test_a_model_fitted_on_statistics_has_the_parameters_of_one_fitted_on_the_rows(world, model):
    orders, products, _, stats = world
    items = pd.Index(products.item_id)
    on_rows, on_stats = deepcopy(model).fit(orders, items=items), deepcopy(model).fit(stats, items=items)
    assert on_stats.items_.equals(on_rows.items_)
    np.testing.assert_array_equal(on_stats.popularity_, on_rows.popularity_)
    np.testing.assert_array_equal(on_stats.tiebreak_, on_rows.tiebreak_)
    for fitted in ("similarity_", "B_"):
        if hasattr(on_rows, fitted):
            np.testing.assert_allclose(getattr(on_stats, fitted), getattr(on_rows, fitted), rtol=1e-12, atol=1e-12)
    assert on_stats.latest_ == on_rows.latest_


@pytest.mark.parametrize("label", ["itemknn_cosine_decay", "ease_l200", "popularity", "content"])
@pytest.mark.parametrize("exclude_seen", [True, False])
def test_serving_each_batch_from_its_rows_gives_every_patient_the_whole_servers_list(world, label, exclude_seen):
    orders, products, segments, stats = world
    items, text = pd.Index(products.item_id), products.set_index("item_id").text
    rules = sel.ServingRules(k=5, exclude_seen=exclude_seen, max_per_category=2)

    def champion():
        return next(m for m in sel.candidates(text, segments, 180.0, [200.0]) if sel.label(m) == label)

    whole = sel.ServedRecommender.build(sel.serving_policy(champion(), orders, items, text, segments, 1), products,
                                        segments, rules, label, orders)
    expected = pd.concat(list(whole.batches(pd.Series(segments.index), batch_size=150)), ignore_index=True)
    lean = sel.ServedRecommender.build(sel.serving_policy(champion(), stats, items, text, pd.Series(dtype=object), 1),
                                      products, pd.Series(dtype=object), rules, label, orders.iloc[:0])
    assert lean.policy.main.users_.empty and lean.segments.empty   # no patient travels with the model
    rows = segments.rename("segment_label").rename_axis("user_id").reset_index().merge(orders, how="left")
    served = pd.concat([lean.serve_rows(part) for _, part in rows.groupby(rows.user_id % 3)])
    served = served.sort_values(["user_id", "rank"]).reset_index(drop=True)
    assert served.user_id.nunique() == USERS                       # the patients without orders too
    pd.testing.assert_frame_equal(served, expected, check_dtype=False)


def test_the_registered_model_of_statistics_serves_order_lines_as_the_warehouse_did(world):
    """On Spark the registered model holds no patient: given a patient's order lines (product ids,
    as a caller has them) it answers with that patient's published list."""
    from medmkt_assets.lib.tracking.mlflow_runs import RecommenderModel

    orders, products, segments, stats = world
    products = products.assign(product_id=[f"P{i:03d}" for i in products.item_id])
    items, text = pd.Index(products.item_id), products.set_index("item_id").text
    rules = sel.ServingRules(k=4)
    policy = sel.serving_policy(EASE(200.0), stats, items, text, pd.Series(dtype=object), 1)
    server = sel.ServedRecommender.build(policy, products, pd.Series(dtype=object), rules, "ease_l200", orders.iloc[:0],
                                         products.set_index("item_id").product_id)
    rows = segments.rename("segment_label").rename_axis("user_id").reset_index().merge(orders, how="left")
    published = server.serve_rows(rows).sort_values(["user_id", "rank"]).reset_index(drop=True)
    lines = rows[rows.user_id.isin([1, 2, 10])]              # patient 10 bought nothing
    model_input = pd.DataFrame({"patient_key": "k" + lines.user_id.astype(str),
                                "product_id": lines.item_id.map(server.product_ids), "quantity": lines.weight,
                                "ordered_at": lines.timestamp, "segment_label": lines.segment_label.astype(object)})
    answer = RecommenderModel(server, None).predict(None, model_input, params={"k": 4})
    expected = published[published.user_id.isin([1, 2, 10])]
    assert answer.patient_key.tolist() == ("k" + expected.user_id.astype(str)).tolist()
    assert answer.product_id.tolist() == expected.product_id.map(server.product_ids).tolist()
    np.testing.assert_array_equal(answer.score.to_numpy(), expected.score.to_numpy())


def test_a_batch_of_patients_who_bought_nothing_gets_their_segments_favourites(world):
    orders, products, segments, stats = world
    items, text = pd.Index(products.item_id), products.set_index("item_id").text
    policy = sel.serving_policy(EASE(200.0), stats, items, text, pd.Series(dtype=object), 1)
    server = sel.ServedRecommender.build(policy, products, pd.Series(dtype=object), sel.ServingRules(k=3), "ease_l200",
                                         orders.iloc[:0])
    rows = pd.DataFrame({"user_id": [10, 20], "item_id": [np.nan, np.nan], "weight": np.nan,
                         "timestamp": pd.NaT, "segment_label": ["s1", None]})
    served = server.serve_rows(rows)
    assert served.groupby("user_id").size().to_dict() == {10: 3, 20: 3}
    assert set(served.model) <= {"popularity_by_segment", "popularity", "content_for_new_patient"}
    s1 = served[served.user_id == 10].product_id.tolist()
    assert s1[0] == stats.items[stats.group_users[stats.groups.get_loc("s1")].argmax()]  # s1's favourite first
    assert server.serve_rows(rows.iloc[:0]).empty
