"""Ranking metrics and splits for recommenders, defined as Microsoft's `recommenders` library does.

Using the same definitions lets our figures be read against published benchmark tables:
binary relevance; precision@k = hits / k; recall@k = hits / relevant; NDCG@k with a
log2(rank + 1) discount over the ideal of min(relevant, k) hits; MAP@k = sum of the
precision at each hit's rank / relevant (the library's classic `map_at_k`). Metrics average
over users in `truth`; a user with no recommendations counts as zero. Everything is
vectorized (pandas group-bys, no loop over users).
"""
from __future__ import annotations

import numpy as np
import pandas as pd


def _hits(recs: pd.DataFrame, truth: pd.DataFrame, k: int) -> tuple[pd.DataFrame, pd.Series]:
    relevant = truth[["user_id", "item_id"]].drop_duplicates()
    n_relevant = relevant.groupby("user_id").size()
    top = recs.loc[recs["rank"] <= k, ["user_id", "item_id", "rank"]]
    hits = top.merge(relevant, on=["user_id", "item_id"])
    return hits, n_relevant


def precision_at_k(recs: pd.DataFrame, truth: pd.DataFrame, k: int = 10) -> float:
    hits, n_relevant = _hits(recs, truth, k)
    if n_relevant.empty:
        return 0.0
    return float(hits.groupby("user_id").size().reindex(n_relevant.index, fill_value=0).div(k).mean())


def recall_at_k(recs: pd.DataFrame, truth: pd.DataFrame, k: int = 10) -> float:
    hits, n_relevant = _hits(recs, truth, k)
    if n_relevant.empty:
        return 0.0
    return float(hits.groupby("user_id").size().reindex(n_relevant.index, fill_value=0).div(n_relevant).mean())


def ndcg_at_k(recs: pd.DataFrame, truth: pd.DataFrame, k: int = 10) -> float:
    hits, n_relevant = _hits(recs, truth, k)
    if n_relevant.empty:
        return 0.0
    dcg = (1.0 / np.log2(hits["rank"] + 1)).groupby(hits.user_id).sum().reindex(n_relevant.index, fill_value=0.0)
    ideal_discounts = np.cumsum(1.0 / np.log2(np.arange(2, k + 2)))
    idcg = pd.Series(ideal_discounts[np.minimum(n_relevant.to_numpy(), k) - 1], index=n_relevant.index)
    return float((dcg / idcg).mean())


def map_at_k(recs: pd.DataFrame, truth: pd.DataFrame, k: int = 10) -> float:
    hits, n_relevant = _hits(recs, truth, k)
    if n_relevant.empty:
        return 0.0
    hits = hits.sort_values(["user_id", "rank"])
    hits["precision_at_hit"] = (hits.groupby("user_id").cumcount() + 1) / hits["rank"]
    summed = hits.groupby("user_id").precision_at_hit.sum().reindex(n_relevant.index, fill_value=0.0)
    return float((summed / n_relevant).mean())


def catalog_coverage(recs: pd.DataFrame, n_items: int) -> float:
    """Share of the catalog that appears in at least one list."""
    return float(recs.item_id.nunique() / n_items) if n_items else 0.0


def novelty(recs: pd.DataFrame, train: pd.DataFrame) -> float:
    """Mean self-information -log2(share of users who have the item) over recommended items."""
    users = train.user_id.nunique()
    if users == 0 or recs.empty:
        return 0.0
    reach = train[["user_id", "item_id"]].drop_duplicates().groupby("item_id").size() / users
    info = -np.log2(recs.item_id.map(reach).dropna())
    return float(info.mean()) if len(info) else 0.0


def evaluate(recs: pd.DataFrame, truth: pd.DataFrame, train: pd.DataFrame, n_items: int, k: int = 10) -> dict:
    """Every metric under the same names in every run, so MLflow's compare view lines models up."""
    return {
        f"precision_at_{k}": precision_at_k(recs, truth, k),
        f"recall_at_{k}": recall_at_k(recs, truth, k),
        f"ndcg_at_{k}": ndcg_at_k(recs, truth, k),
        f"map_at_{k}": map_at_k(recs, truth, k),
        "catalog_coverage": catalog_coverage(recs[recs["rank"] <= k], n_items),
        "novelty": novelty(recs[recs["rank"] <= k], train),
    }


def chronological_split(interactions: pd.DataFrame, holdout_days: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Train on everything before the last `holdout_days`; test on what users first bought after it.

    Test keeps only users and items known in train, and only pairs not already in train
    (a model that excludes seen items cannot be credited for re-purchases).
    """
    cut = interactions.timestamp.max() - pd.Timedelta(days=holdout_days)
    train = interactions[interactions.timestamp <= cut]
    test = interactions[interactions.timestamp > cut]
    test = test[test.user_id.isin(train.user_id) & test.item_id.isin(train.item_id)]
    seen = train[["user_id", "item_id"]].drop_duplicates()
    test = test.merge(seen, on=["user_id", "item_id"], how="left", indicator=True)
    test = test[test._merge == "left_only"].drop(columns="_merge")
    return train, test


def stratified_split(interactions: pd.DataFrame, ratio: float = 0.75, seed: int = 42) -> tuple[pd.DataFrame,
                                                                                                 pd.DataFrame]:
    """Per-user random split of distinct user-item pairs: round(ratio · n) to train, the rest to test."""
    pairs = interactions.drop_duplicates(["user_id", "item_id"]).reset_index(drop=True)
    order = np.random.default_rng(seed).permutation(len(pairs))
    shuffled = pairs.iloc[order]
    position = shuffled.groupby("user_id").cumcount()
    size = shuffled.groupby("user_id").user_id.transform("size")
    in_train = position < np.maximum(np.round(ratio * size), 1)
    return shuffled[in_train.to_numpy()].reset_index(drop=True), shuffled[~in_train.to_numpy()].reset_index(drop=True)
