"""Ranking metrics and train/test splits for recommenders, defined as Microsoft's `recommenders` does.

Why these definitions: using the same ones as `recommenders.evaluation.python_evaluation`
lets our figures be read against published benchmark tables (e.g. EASE on MovieLens 100k).
Relevance is binary; `recs` has user_id, item_id, rank (1 = best); `truth` has the held-out
user_id, item_id pairs.

- precision@k = hits in the top k / k
- recall@k    = hits in the top k / number of relevant items
- NDCG@k      = DCG with a 1 / log2(rank + 1) discount over the ideal DCG of min(relevant, k) hits
- MAP@k       = sum of precision at each hit's rank / number of relevant items (the library's
  classic `map_at_k`; newer releases call this `map` and divide `map_at_k` by min(relevant, k))

One deliberate difference: metrics average over every user in `truth`, and a user without a
list counts as zero (the library averages over users present in both frames, which flatters
a model that skips users). Everything is vectorized (merges and group-bys, no loop over
users), so evaluation runs on a million users.
"""
from __future__ import annotations

import numpy as np
import pandas as pd


def as_datetime(values: pd.Series) -> pd.Series:
    """Timestamps as datetimes; already typed ones as they are (`pd.to_datetime` spends seconds on
    millions of them for nothing)."""
    return values if pd.api.types.is_datetime64_any_dtype(values) else pd.to_datetime(values)


def _pair_codes(interactions: pd.DataFrame) -> np.ndarray:
    """One integer per distinct (user_id, item_id) pair of the rows (equal pairs, equal codes)."""
    users = pd.factorize(interactions["user_id"], use_na_sentinel=False)[0]
    items, labels = pd.factorize(interactions["item_id"], use_na_sentinel=False)
    return users.astype(np.int64) * max(len(labels), 1) + items


def _hits(recs: pd.DataFrame, truth: pd.DataFrame, k: int) -> tuple[pd.DataFrame, pd.Series]:
    """Top-k rows of `recs` that are relevant, and the number of relevant items per truth user."""
    relevant = truth[["user_id", "item_id"]].drop_duplicates()
    n_relevant = relevant.groupby("user_id").size()
    top = recs.loc[recs["rank"] <= k, ["user_id", "item_id", "rank"]].drop_duplicates(["user_id", "item_id"])
    hits = top.merge(relevant, on=["user_id", "item_id"])
    return hits, n_relevant


def _per_user(values: pd.Series, users: pd.Index) -> pd.Series:
    return values.reindex(users, fill_value=0.0).astype(float)


def _precision(hits: pd.DataFrame, n_relevant: pd.Series, k: int) -> float:
    return float((_per_user(hits.groupby("user_id").size(), n_relevant.index) / k).mean())


def _recall(hits: pd.DataFrame, n_relevant: pd.Series, k: int) -> float:
    return float((_per_user(hits.groupby("user_id").size(), n_relevant.index) / n_relevant).mean())


def _ndcg(hits: pd.DataFrame, n_relevant: pd.Series, k: int) -> float:
    gains = pd.Series(1.0 / np.log2(hits["rank"].to_numpy(dtype=float) + 1), index=hits.index)
    dcg = _per_user(gains.groupby(hits["user_id"]).sum(), n_relevant.index)
    ideal = np.cumsum(1.0 / np.log2(np.arange(2, k + 2)))
    return float((dcg.to_numpy() / ideal[np.minimum(n_relevant.to_numpy(), k) - 1]).mean())


def _map(hits: pd.DataFrame, n_relevant: pd.Series, k: int) -> float:
    hits = hits.sort_values(["user_id", "rank"])
    precision_at_hit = (hits.groupby("user_id").cumcount() + 1) / hits["rank"]
    summed = _per_user(precision_at_hit.groupby(hits["user_id"]).sum(), n_relevant.index)
    return float((summed / n_relevant).mean())


def _metric(kernel, recs: pd.DataFrame, truth: pd.DataFrame, k: int) -> float:
    hits, n_relevant = _hits(recs, truth, k)
    return kernel(hits, n_relevant, k) if len(n_relevant) else 0.0


def precision_at_k(recs: pd.DataFrame, truth: pd.DataFrame, k: int = 10) -> float:
    """Mean over truth users of hits in the top k divided by k."""
    return _metric(_precision, recs, truth, k)


def recall_at_k(recs: pd.DataFrame, truth: pd.DataFrame, k: int = 10) -> float:
    """Mean over truth users of hits in the top k divided by the user's number of relevant items."""
    return _metric(_recall, recs, truth, k)


def ndcg_at_k(recs: pd.DataFrame, truth: pd.DataFrame, k: int = 10) -> float:
    """Binary-relevance NDCG@k: sum of 1/log2(rank+1) over hits / the same for min(relevant, k) hits at the top."""
    return _metric(_ndcg, recs, truth, k)


def map_at_k(recs: pd.DataFrame, truth: pd.DataFrame, k: int = 10) -> float:
    """MAP@k as Microsoft recommenders' classic `map_at_k`: sum of precision@rank over hits / |relevant|.

    The divisor is the number of relevant items (not min(relevant, k)), so a user with more
    than k held-out items cannot reach 1; this matches the published benchmark numbers.
    """
    return _metric(_map, recs, truth, k)


def catalog_coverage(recs: pd.DataFrame, n_items: int) -> float:
    """Distinct recommended items / catalog size (`n_items`)."""
    return float(recs["item_id"].nunique() / n_items) if n_items else 0.0


def item_reach(train: pd.DataFrame) -> pd.Series:
    """Share of train users who have each item (compute once per split; novelty reads it)."""
    users = train["user_id"].nunique()
    if users == 0:
        return pd.Series(dtype=float)
    first = ~pd.Series(_pair_codes(train)).duplicated().to_numpy()
    return train.loc[first, "item_id"].groupby(train.loc[first, "item_id"]).size().rename_axis("item_id") / users


def novelty(recs: pd.DataFrame, train: pd.DataFrame | None = None, reach: pd.Series | None = None) -> float:
    """Mean over recommendations of -log2(share of train users who have the item), as in MS recommenders.

    Items absent from train have no defined popularity and are left out. Pass `reach`
    (`item_reach(train)`) when scoring many lists against the same train set.
    """
    reach = item_reach(train) if reach is None else reach
    if reach.empty or recs.empty:
        return 0.0
    info = -np.log2(recs["item_id"].map(reach).dropna().astype(float))
    return float(info.mean()) if len(info) else 0.0


def evaluate(recs: pd.DataFrame, truth: pd.DataFrame, train: pd.DataFrame, n_items: int, k: int = 10,
             reach: pd.Series | None = None) -> dict:
    """All metrics under fixed names (precision_at_{k}, ..., catalog_coverage, novelty), for comparing runs.

    `reach` (`item_reach(train)`) saves recomputing item popularity for every model of a split.
    """
    top = recs[recs["rank"] <= k]
    hits, n_relevant = _hits(top, truth, k)  # one merge for the four ranking metrics
    ranking = {name: kernel(hits, n_relevant, k) if len(n_relevant) else 0.0
               for name, kernel in (("precision", _precision), ("recall", _recall), ("ndcg", _ndcg), ("map", _map))}
    return {
        **{f"{name}_at_{k}": value for name, value in ranking.items()},
        "catalog_coverage": catalog_coverage(top, n_items),
        "novelty": novelty(top, train, reach),
    }


def chronological_split(interactions: pd.DataFrame, holdout_days: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Train on everything up to the last `holdout_days` of timestamps; test on what comes after.

    Test keeps only users and items known in train (a model cannot be judged on what it never
    saw) and only pairs not already in train (a model that leaves out bought items cannot be
    credited for re-purchases). Every test timestamp is later than every train timestamp.
    """
    stamps = as_datetime(interactions["timestamp"])
    cut = stamps.max() - pd.Timedelta(days=holdout_days)
    before, after = (stamps <= cut).to_numpy(), (stamps > cut).to_numpy()
    train = interactions[before]
    pairs = pd.Series(_pair_codes(interactions))
    new = (after & interactions["user_id"].isin(train["user_id"]).to_numpy()
           & interactions["item_id"].isin(train["item_id"]).to_numpy())
    new[new] = ~pairs[new].isin(pairs[before]).to_numpy()
    return train.reset_index(drop=True), interactions[new].reset_index(drop=True)


def stratified_split(interactions: pd.DataFrame, ratio: float = 0.75, seed: int = 42) -> tuple[pd.DataFrame,
                                                                                                 pd.DataFrame]:
    """Per-user random split of distinct user-item pairs, like MS `python_stratified_split`.

    Each user's pairs are shuffled (seeded) and round(ratio * n) go to train, clipped to
    [1, n - 1] so every user with two or more distinct items lands on both sides; users with
    one item stay in train. All rows of a pair go to the same side (no leakage through
    repeat purchases). Row order of the input is kept.
    """
    if not 0 < ratio < 1:
        raise ValueError("ratio must be between 0 and 1")
    pair = pd.factorize(_pair_codes(interactions))[0]  # numbered in order of first appearance
    first = np.flatnonzero(np.diff(np.maximum.accumulate(pair), prepend=-1) > 0)  # each pair's first row
    pairs = interactions.iloc[first][["user_id"]].reset_index(drop=True)  # row i = pair i
    order = np.random.default_rng(seed).permutation(len(pairs))
    shuffled_users = pairs["user_id"].iloc[order]
    position = np.empty(len(pairs), dtype=np.int64)
    position[order] = shuffled_users.groupby(shuffled_users, sort=False).cumcount().to_numpy()
    size = pairs.groupby("user_id", sort=False)["user_id"].transform("size").to_numpy()
    n_train = np.clip(np.round(ratio * size), 1, np.maximum(size - 1, 1))
    pair_in_train = position < n_train
    in_train = pair_in_train[pair]
    return (interactions[in_train].reset_index(drop=True), interactions[~in_train].reset_index(drop=True))
