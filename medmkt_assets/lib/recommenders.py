"""Recommenders behind one small interface, and `fit`, the entry point notebooks and checks use.

All models see the same sparse users × items matrix (scipy CSR); an items × items dense
matrix is fine for catalogs of a few thousand products, a users × items dense matrix
never exists: scoring runs in batches of users. Models:

- `Popularity` (overall or per group, e.g. segment): the baseline to beat.
- `ItemKNN`: item-item collaborative filtering on the co-occurrence matrix, cosine,
  Jaccard or lift similarity, optional exponential time decay of older purchases.
- `ContentBased`: TF-IDF over product text; can recommend products nobody bought yet.
- `EASE` (Steck 2019): closed-form item-item regression, B = I - P·diag(1/diag(P)) with
  P = (XᵀX + λI)⁻¹; strong on implicit data and our default.
- `Hybrid`: the main model for patients with history, group popularity for new ones,
  and a slot for never-bought products picked by content.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import sparse
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.preprocessing import normalize

BATCH_USERS = 20_000
RESULT_COLUMNS = ["user_id", "item_id", "score", "rank"]


class Recommender:
    """Shared indexing, batching, seen-item masking and top-k selection."""

    name = "base"

    def fit(self, interactions: pd.DataFrame, items: pd.Index | None = None) -> "Recommender":
        """Index users and items (`items` may add catalog items nobody interacted with) and fit."""
        frame = _validated(interactions)
        universe = pd.Index(pd.unique(pd.concat([frame.item_id, pd.Series(items, dtype=object)]))
                            if items is not None else pd.unique(frame.item_id))
        self.items_ = pd.Index(universe.astype(str))
        self.users_ = pd.Index(pd.unique(frame.user_id))
        self.X_ = self._matrix(frame, self._weights(frame))
        self.seen_ = self.X_.astype(bool).tocsr()
        self.popularity_ = np.asarray(self.seen_.sum(axis=0)).ravel().astype(float)
        self._fit(frame)
        return self

    def _weights(self, frame: pd.DataFrame) -> np.ndarray:
        return np.ones(len(frame))

    def _matrix(self, frame: pd.DataFrame, weights: np.ndarray) -> sparse.csr_matrix:
        rows = self.users_.get_indexer(frame.user_id)
        cols = self.items_.get_indexer(frame.item_id.astype(str))
        matrix = sparse.csr_matrix((weights, (rows, cols)), shape=(len(self.users_), len(self.items_)))
        matrix.sum_duplicates()
        return matrix

    def _fit(self, frame: pd.DataFrame) -> None:
        raise NotImplementedError

    def _scores(self, rows: np.ndarray) -> np.ndarray:
        """Dense scores for a batch of known users (rows of X_)."""
        raise NotImplementedError

    def _fallback(self, n: int) -> np.ndarray:
        return np.tile(self.popularity_, (n, 1))

    def recommend(self, user_ids, k: int = 10, exclude_seen: bool = True,
                  allowed: pd.Index | None = None) -> pd.DataFrame:
        """Top-k items per user as user_id, item_id, score, rank; unknown users get popular items.

        `allowed` limits the items that may be recommended (business rules applied while
        scoring, so no longer candidate lists are needed).
        """
        users = pd.Index(pd.unique(pd.Series(list(user_ids), dtype=object)))
        codes = self.users_.get_indexer(users)
        blocked = ~self.items_.isin(allowed) if allowed is not None else None
        frames = []
        for start in range(0, len(users), BATCH_USERS):
            batch = codes[start:start + BATCH_USERS]
            known = batch >= 0
            scores = np.empty((len(batch), len(self.items_)))
            if known.any():
                scores[known] = self._scores(batch[known])
            if (~known).any():
                scores[~known] = self._fallback(int((~known).sum()))
            if exclude_seen and known.any():
                seen = self.seen_[batch[known]]
                masked = scores[known]
                masked[seen.nonzero()] = -np.inf
                scores[known] = masked
            if blocked is not None:
                scores[:, blocked] = -np.inf
            frames.append(_top_k(users[start:start + BATCH_USERS], scores, self.items_, k))
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=RESULT_COLUMNS)


def _validated(interactions: pd.DataFrame) -> pd.DataFrame:
    missing = {"user_id", "item_id"} - set(interactions.columns)
    if missing:
        raise ValueError(f"interactions needs columns user_id and item_id; missing {sorted(missing)}")
    frame = interactions.dropna(subset=["user_id", "item_id"]).copy()
    frame["item_id"] = frame.item_id.astype(str)
    if "weight" not in frame:
        frame["weight"] = 1.0
    return frame


def _top_k(users: pd.Index, scores: np.ndarray, items: pd.Index, k: int) -> pd.DataFrame:
    k = min(k, scores.shape[1])
    if k == 0 or len(users) == 0:
        return pd.DataFrame(columns=RESULT_COLUMNS)
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    part_scores = np.take_along_axis(scores, part, axis=1)
    order = np.argsort(-part_scores, axis=1, kind="stable")
    top = np.take_along_axis(part, order, axis=1)
    top_scores = np.take_along_axis(part_scores, order, axis=1)
    valid = np.isfinite(top_scores)
    user_rows = np.repeat(np.arange(len(users)), k).reshape(len(users), k)
    ranks = np.cumsum(valid, axis=1)
    return pd.DataFrame({
        "user_id": np.asarray(users)[user_rows[valid]], "item_id": np.asarray(items)[top[valid]],
        "score": top_scores[valid], "rank": ranks[valid].astype(np.int32),
    })


class Popularity(Recommender):
    """Most-bought items overall, or within the user's group (segment) when `groups` is given."""

    name = "popularity"

    def __init__(self, groups: pd.Series | None = None):
        self.groups = groups

    def _fit(self, frame: pd.DataFrame) -> None:
        self.group_of_ = None
        if self.groups is not None:
            group = self.groups.reindex(self.users_)
            codes, self.group_names_ = pd.factorize(group)
            self.group_of_ = codes
            indicator = sparse.csr_matrix((np.ones(len(codes))[codes >= 0], (codes[codes >= 0],
                                           np.flatnonzero(codes >= 0))), shape=(len(self.group_names_), len(codes)))
            self.group_popularity_ = np.asarray((indicator @ self.seen_).todense(), dtype=float)
            self.name = "popularity_by_segment"

    def scores_for_groups(self, groups) -> np.ndarray:
        """Popularity rows for named groups (unknown groups get overall popularity)."""
        if self.group_of_ is None:
            return self._fallback(len(groups))
        codes = self.group_names_.get_indexer(pd.Index(groups))
        out = np.tile(self.popularity_, (len(codes), 1))
        out[codes >= 0] = self.group_popularity_[codes[codes >= 0]] + 1e-6 * self.popularity_
        return out

    def _scores(self, rows: np.ndarray) -> np.ndarray:
        if self.group_of_ is None:
            return self._fallback(len(rows))
        codes = self.group_of_[rows]
        out = np.tile(self.popularity_, (len(rows), 1))
        out[codes >= 0] = self.group_popularity_[codes[codes >= 0]] + 1e-6 * self.popularity_
        return out


class ItemKNN(Recommender):
    """Item-item CF: a user's (time-decayed) purchases times an item similarity from co-occurrence."""

    name = "itemknn"

    def __init__(self, similarity: str = "cosine", half_life_days: float | None = None):
        if similarity not in ("cosine", "jaccard", "lift"):
            raise ValueError("similarity must be cosine, jaccard or lift")
        self.similarity = similarity
        self.half_life_days = half_life_days
        self.name = f"itemknn_{similarity}" + ("_decay" if half_life_days else "")

    def _weights(self, frame: pd.DataFrame) -> np.ndarray:
        weights = frame.weight.to_numpy(dtype=float)
        if self.half_life_days and "timestamp" in frame:
            age = (frame.timestamp.max() - frame.timestamp).dt.total_seconds().to_numpy() / 86_400
            weights = weights * 0.5 ** (age / self.half_life_days)
        return weights

    def _fit(self, frame: pd.DataFrame) -> None:
        binary = self.seen_.astype(np.float64)
        co = (binary.T @ binary).toarray()
        count = np.diag(co).copy()
        with np.errstate(divide="ignore", invalid="ignore"):
            if self.similarity == "cosine":
                sim = co / np.sqrt(np.outer(count, count))
            elif self.similarity == "jaccard":
                sim = co / (count[:, None] + count[None, :] - co)
            else:
                sim = co * binary.shape[0] / np.outer(count, count)
        sim = np.nan_to_num(sim, nan=0.0, posinf=0.0)
        np.fill_diagonal(sim, 0.0)
        self.similarity_ = sim

    def _scores(self, rows: np.ndarray) -> np.ndarray:
        return np.asarray(self.X_[rows] @ self.similarity_) + 1e-9 * self.popularity_


class ContentBased(Recommender):
    """TF-IDF of each product's text; a user's profile is the sum of what they bought."""

    name = "content"

    def __init__(self, item_text: pd.Series):
        self.item_text = item_text

    def fit(self, interactions: pd.DataFrame, items: pd.Index | None = None) -> "ContentBased":
        catalog = pd.Index(self.item_text.index.astype(str))
        return super().fit(interactions, catalog if items is None else catalog.append(pd.Index(items)).unique())

    def _fit(self, frame: pd.DataFrame) -> None:
        text = self.item_text.copy()
        text.index = text.index.astype(str)
        text = text.reindex(self.items_).fillna("")
        tfidf = TfidfVectorizer(min_df=1, ngram_range=(1, 2), sublinear_tf=True).fit_transform(text)
        self.tfidf_ = normalize(tfidf)
        self.item_similarity_ = (self.tfidf_ @ self.tfidf_.T).toarray()
        np.fill_diagonal(self.item_similarity_, 0.0)

    def _scores(self, rows: np.ndarray) -> np.ndarray:
        return np.asarray(self.seen_[rows].astype(np.float64) @ self.item_similarity_)


class EASE(Recommender):
    """Embarrassingly Shallow Autoencoder: closed-form item-item weights with L2 penalty λ."""

    name = "ease"

    def __init__(self, lambda_: float = 200.0):
        self.lambda_ = lambda_

    def _fit(self, frame: pd.DataFrame) -> None:
        X = self.seen_.astype(np.float64)
        gram = (X.T @ X).toarray()
        gram[np.diag_indices_from(gram)] += self.lambda_
        precision = np.linalg.inv(gram)
        self.B_ = -precision / np.diag(precision)
        np.fill_diagonal(self.B_, 0.0)

    def _scores(self, rows: np.ndarray) -> np.ndarray:
        return np.asarray(self.seen_[rows].astype(np.float64) @ self.B_) + 1e-9 * self.popularity_


class Hybrid:
    """The serving policy: main model for known users, group popularity for new ones, content for new items.

    `new_item_slots` places that many never-bought products (picked by content similarity
    to the user's history) at the end of a known user's list, so new services get seen.
    """

    def __init__(self, main: Recommender, popularity: Popularity, content: ContentBased | None = None,
                 new_item_slots: int = 1):
        self.main, self.popularity, self.content, self.new_item_slots = main, popularity, content, new_item_slots

    def recommend(self, user_ids, k: int = 10, exclude_seen: bool = True, groups: pd.Series | None = None,
                  allowed: pd.Index | None = None) -> pd.DataFrame:
        """Lists with a `model` column saying which part of the policy produced each row."""
        users = pd.Index(pd.unique(pd.Series(list(user_ids), dtype=object)))
        known = users.isin(self.main.users_)
        lists = []
        if known.any():
            main = self.main.recommend(users[known], k=k, exclude_seen=exclude_seen, allowed=allowed)
            lists.append(main.assign(model=self.main.name))
        if (~known).any():
            new_users = users[~known]
            group = (groups.reindex(new_users) if groups is not None else pd.Series(index=new_users, dtype=object))
            scores = self.popularity.scores_for_groups(group.to_numpy())
            if allowed is not None:
                scores[:, ~self.popularity.items_.isin(allowed)] = -np.inf
            fallback = _top_k(new_users, scores, self.popularity.items_, k)
            lists.append(fallback.assign(model="popularity_by_segment" if groups is not None else "popularity"))
        recs = pd.concat(lists, ignore_index=True)
        if self.content is not None and self.new_item_slots > 0:
            never_bought = self.content.items_[~self.content.items_.isin(self.main.items_[self.main.popularity_ > 0])]
            if allowed is not None:
                never_bought = never_bought[never_bought.isin(allowed)]
            if len(never_bought):
                picks = self.content.recommend(users[known], k=self.new_item_slots, exclude_seen=True,
                                               allowed=never_bought)
                picks = picks.sort_values(["user_id", "rank"]).groupby("user_id").head(self.new_item_slots)
                recs = pd.concat([recs.sort_values(["user_id", "rank"]).groupby("user_id")
                                  .head(k - self.new_item_slots), picks.assign(model="content_new_item")])
        recs = recs.drop_duplicates(["user_id", "item_id"]).sort_values(["user_id", "rank", "score"],
                                                                        ascending=[True, True, False])
        recs["rank"] = recs.groupby("user_id").cumcount() + 1
        return recs[recs["rank"] <= k].reset_index(drop=True)


MODELS = {"popularity": Popularity, "itemknn": ItemKNN, "ease": EASE}


def fit(interactions: pd.DataFrame, model: str | Recommender | None = None, **params) -> Recommender:
    """Fit a recommender on user_id, item_id[, weight, timestamp] rows; None means EASE, our best model.

    The result's `.recommend(user_ids, k=10, exclude_seen=True)` returns user_id, item_id,
    score, rank; unknown users get the most popular items.
    """
    if model is None:
        model = EASE(**params)
    elif isinstance(model, str):
        if model == "content":
            model = ContentBased(**params)
        elif model in MODELS:
            model = MODELS[model](**params)
        else:
            raise ValueError(f"unknown model {model!r}; choose from content, {', '.join(MODELS)}")
    return model.fit(interactions)


def apply_business_rules(candidates: pd.DataFrame, products: pd.DataFrame, k: int = 10,
                         exclude_rx_only: bool = True, max_per_category: int | None = 4,
                         bought: pd.DataFrame | None = None, one_time_kinds: tuple[str, ...] = ()) -> pd.DataFrame:
    """Filter and re-rank scored candidates (longer than k) after scoring.

    Drops prescription-only products (they may not be marketed to patients directly),
    optionally products of one-time kinds the patient already bought (`bought`: user_id,
    item_id), and keeps at most `max_per_category` products of one category per list.
    `products` has item_id, category, rx_only and kind.
    """
    recs = candidates.merge(products[["item_id", "category", "rx_only", "kind"]], on="item_id", how="left")
    if exclude_rx_only:
        recs = recs[~recs.rx_only.fillna(False).astype(bool)]
    if bought is not None and one_time_kinds:
        once = recs.kind.isin(one_time_kinds)
        already = recs[["user_id", "item_id"]].merge(bought.drop_duplicates(), how="left", indicator=True)
        recs = recs[~(once.to_numpy() & (already._merge == "both").to_numpy())]
    recs = recs.sort_values(["user_id", "rank"])
    if max_per_category:
        recs = recs[recs.groupby(["user_id", "category"]).cumcount() < max_per_category]
    recs = recs.assign(rank=recs.groupby("user_id").cumcount() + 1)
    return recs[recs["rank"] <= k].drop(columns=["category", "rx_only", "kind"]).reset_index(drop=True)
