"""Recommenders behind one small interface, and `fit`, the entry point notebooks and checks use.

Why this shape: every model sees the same sparse users x items matrix (scipy CSR; users and
items indexed by their factorized, i.e. categorical, codes), so models are interchangeable
in evaluation and serving. A dense items x items matrix is fine for catalogs of a few
thousand products; a dense users x items matrix never exists: scoring runs over batches (at most
`BATCH_USERS` users and `BATCH_CELLS` scores at a time), seen items are masked with -inf and
the top k are picked with `argpartition`, so memory stays flat for a million patients.
Training rows are prepared once (`Interactions`: ids indexed, the matrix and its Gram matrix
built once) and every model fitted on them shares that work; serving keeps each user's list
as a row of fixed-width arrays (`RankedLists`) until the final frame.

Models:

- `Popularity` (overall, or per group such as a segment with `by=`): the baseline to beat.
- `ItemKNN`: item-item collaborative filtering on the co-occurrence matrix with cosine,
  Jaccard or lift similarity and optional exponential time decay of older purchases.
- `ContentBased`: TF-IDF over product text; a user's profile is the weighted mean of the
  TF-IDF rows of what they bought, so it can recommend products nobody bought yet.
- `EASE` (Steck 2019): closed-form item-item regression, P = (X'X + lambda I)^-1,
  B = -P / diag(P) with a zero diagonal; strong on implicit data and our default.
- `Hybrid`: the serving policy: the main model for users with history, group (segment)
  popularity and then global popularity for new users, plus a slot for never-bought
  products picked by content.

Users the model never saw always get popular items, so every requested user gets a list
as long as there are items left to recommend.
"""
from __future__ import annotations

from collections.abc import Iterable
from copy import copy
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
from scipy import sparse
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.preprocessing import normalize

from medmkt_assets.lib.models.rec_metrics import as_datetime, evaluate

BATCH_USERS = 20_000
BATCH_CELLS = 8_000_000  # dense scores per batch (64 MB of float64), whatever the catalog size
RESULT_COLUMNS = ["user_id", "item_id", "score", "rank"]


def _as_index(values) -> pd.Index:
    """Unique labels of a list, array, Series, Index, generator or single id, in first-seen order."""
    if isinstance(values, (str, bytes)) or np.isscalar(values):
        values = [values]
    elif not isinstance(values, (pd.Index, pd.Series, np.ndarray, list, tuple)):
        values = list(values)
    return pd.Index(values).unique()


def _empty() -> pd.DataFrame:
    return pd.DataFrame({"user_id": pd.Series(dtype=object), "item_id": pd.Series(dtype=object),
                         "score": pd.Series(dtype=float), "rank": pd.Series(dtype=np.int32)})


def _top(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Top k finite scores per row (descending): column positions (-1 past the last finite one) and scores."""
    k = min(k, scores.shape[1])
    if k <= 0 or len(scores) == 0:
        return np.full((len(scores), max(k, 0)), -1, dtype=np.int64), np.full((len(scores), max(k, 0)), -np.inf)
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    part_scores = np.take_along_axis(scores, part, axis=1)
    order = np.argsort(-part_scores, axis=1, kind="stable")
    top = np.take_along_axis(part, order, axis=1)
    top_scores = np.take_along_axis(part_scores, order, axis=1)
    top[~np.isfinite(top_scores)] = -1  # -inf = seen or not allowed; they sort last
    return top, top_scores


def _frame(users: pd.Index, cols: np.ndarray, scores: np.ndarray, items: pd.Index) -> pd.DataFrame:
    """Fixed-width top-k arrays (one row per user, -1 past a list's end) as user_id, item_id, score, rank."""
    if cols.shape[1] == 0 or len(users) == 0:
        return _empty()
    valid = cols >= 0
    rows = np.broadcast_to(np.arange(len(users))[:, None], cols.shape)
    return pd.DataFrame({
        "user_id": users.to_numpy()[rows[valid]], "item_id": items.to_numpy()[cols[valid]],
        "score": scores[valid], "rank": np.cumsum(valid, axis=1)[valid].astype(np.int32),
    })


class Interactions:
    """Training rows prepared once for every model fitted on them.

    Checking the rows, indexing users and items and building the users x items matrix cost more
    than most fits, and the same rows are fitted many times (every candidate on each split, three
    models at serving). Models fitted on one `Interactions` share its matrices (read-only) and
    its items x items Gram matrices; `fit` accepts a frame too and prepares it on the spot.
    Rows need user and item ids; a missing weight counts 1, rows of weight <= 0 are left out.
    """

    def __init__(self, interactions: pd.DataFrame, items: pd.Index | None = None):
        """`items`: a fitted model's catalog to index items by (serving other users with that model,
        `Recommender.rebind`); rows of other items are left out. None: items in first-seen order."""
        missing = {"user_id", "item_id"} - set(interactions.columns)
        if missing:
            raise ValueError(f"interactions needs columns user_id and item_id; missing {sorted(missing)}")
        weight = (interactions["weight"].to_numpy(dtype=float, na_value=np.nan) if "weight" in interactions
                  else np.ones(len(interactions)))
        if np.isnan(weight).any():
            weight = np.where(np.isnan(weight), 1.0, weight)
        keep = weight > 0
        for column in ("user_id", "item_id"):
            if interactions[column].hasnans:
                keep &= interactions[column].notna().to_numpy()
        if items is not None:
            item_codes = pd.Index(items).get_indexer(interactions["item_id"])
            keep &= item_codes >= 0
        rows = slice(None) if keep.all() else keep
        self.user_codes, self.users = pd.factorize(interactions["user_id"][rows])
        if items is None:
            self.item_codes, self.items = pd.factorize(interactions["item_id"][rows])
        else:
            self.item_codes, self.items = item_codes[rows], items
        self.users, self.items = pd.Index(self.users), pd.Index(self.items)
        self.weight = weight[rows]
        self.timestamp = interactions["timestamp"][rows] if "timestamp" in interactions else None
        self._matrices: dict = {}
        self._patterns: dict = {}
        self._grams: dict = {}  # id of a cached matrix -> (that matrix, its X'X)

    def __len__(self) -> int:
        return len(self.weight)

    @property
    def n_users(self) -> int:
        """Users with interactions."""
        return len(self.users)

    @property
    def latest(self) -> pd.Timestamp | None:
        """The latest timestamp: the reference time-decayed weights count ages from."""
        return as_datetime(self.timestamp).max() if self.timestamp is not None and len(self.timestamp) else None

    def group_counts(self, by: pd.Series, seen: sparse.csr_matrix) -> tuple[pd.Index, np.ndarray]:
        """Distinct users per item in each group of `by` (user_id -> group), from the seen pattern
        (users x items): the group labels and a groups x items array."""
        codes, names = pd.factorize(by.reindex(self.users))
        members = codes >= 0
        indicator = sparse.csr_matrix((np.ones(members.sum()), (codes[members], np.flatnonzero(members))),
                                      shape=(len(names), len(codes)))
        return pd.Index(names), (indicator @ seen.astype(np.float64)).toarray()

    def catalog(self, items: Iterable | None) -> pd.Index:
        """Items with interactions (first seen first), then those of `items` nobody interacted with."""
        if items is None:
            return self.items
        return self.items.append(_as_index(items).difference(self.items, sort=False))

    def matrix(self, n_items: int, key, weights) -> tuple:
        """X (users x n_items, one value per pair: the largest of `weights()` when `key[0]` says
        binarize, else their sum), the seen pattern, distinct users per item and the tiebreak
        of popular items; built once per key. Binarized matrices share one pattern (0/1 data: no
        weights to look at)."""
        if (n_items, key) not in self._matrices:
            shape = (len(self.users), n_items)
            if key[0] and len(self):  # one value per pair: the largest (1, or the latest decay factor)
                order, starts, pattern = self._pattern(n_items)
                data = np.ones(pattern.nnz) if key == _BINARY else np.maximum.reduceat(weights()[order], starts)
                X = sparse.csr_matrix((data, pattern.indices, pattern.indptr), shape=shape)
                X.indices, X.indptr = pattern.indices, pattern.indptr  # one copy of the structure (memory, pickles)
                seen = pattern if (data > 0).all() else (X > 0).astype(bool).tocsr()
            else:
                X = sparse.csr_matrix((weights(), (self.user_codes, self.item_codes)), shape=shape)
                X.sum_duplicates()
                seen = (X > 0).astype(bool).tocsr()
            popularity = np.asarray(seen.sum(axis=0), dtype=float).ravel()  # distinct users per item
            top = popularity.max() if len(popularity) else 0.0
            tiebreak = 1e-9 * popularity / top if top > 0 else np.zeros(n_items)
            self._matrices[n_items, key] = X, seen, popularity, tiebreak
        return self._matrices[n_items, key]

    def _pattern(self, n_items: int) -> tuple[np.ndarray, np.ndarray, sparse.csr_matrix]:
        """The distinct (user, item) pairs: the rows sorted by pair, where each pair's rows start,
        and the 0/1 users x items matrix of them."""
        if n_items not in self._patterns:
            key = self.user_codes.astype(np.int64) * n_items + self.item_codes
            order = np.argsort(key, kind="stable")
            key = key[order]
            starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
            rows, cols = np.divmod(key[starts], n_items)  # sorted and unique: the CSR arrays as they are
            indptr = np.r_[0, np.cumsum(np.bincount(rows, minlength=len(self.users)))]
            pattern = sparse.csr_matrix((np.ones(len(starts), dtype=bool), cols, indptr),
                                        shape=(len(self.users), n_items))
            self._patterns[n_items] = order, starts, pattern
        return self._patterns[n_items]

    def gram(self, n_items: int, key, pattern: bool, batch: int = 65_536) -> np.ndarray:
        """X'X (dense items x items) of the matrix built for `key`, or of its 0/1 pattern (the
        co-occurrence counts); a binary X is its own pattern, so both share one product.

        Counts are whole numbers, exact in any order of summation, so a pattern's product is
        summed over batches of users as sparse x dense (a third of scipy's sparse x sparse time)."""
        X, seen, _, _ = self._matrices[n_items, key]
        M = seen if pattern or key == _BINARY else X
        if id(M) not in self._grams:
            if M is seen:
                gram = np.zeros((n_items, n_items))
                for start in range(0, M.shape[0], batch):
                    part = M[start:start + batch].astype(np.float64)
                    gram += part.T @ part.toarray()
            else:
                M64 = M.astype(np.float64)
                gram = (M64.T @ M64).toarray()
            self._grams[id(M)] = M, gram
        return self._grams[id(M)][1]


_BINARY = (True, None)  # the matrix key of 0/1 data: binarized, no time decay


@dataclass
class ItemStatistics:
    """What fitting on every history needs, aggregated where the rows live (the warehouse; on
    Spark the executors): models fitted on it hold item parameters only, and serve users through
    `rebind` with those users' own rows. Binarized models only (every candidate the pipeline fits):
    their X'X is the co-occurrence matrix. `rec_statistics.item_statistics` builds it in SQL.

    items: items with interactions in first-seen order; n_users: users with interactions;
    cooccurrence: distinct users with both items (diagonal: with the item), in `items` order;
    groups / group_users: distinct users per item in each group (groups x items); latest: the
    latest timestamp (time decay counts ages from it)."""

    items: pd.Index
    n_users: int
    cooccurrence: np.ndarray
    groups: pd.Index
    group_users: np.ndarray
    latest: pd.Timestamp | None = None
    users = pd.Index([])  # fitted models hold no user

    def catalog(self, items: Iterable | None) -> pd.Index:
        return self.items if items is None else self.items.append(_as_index(items).difference(self.items, sort=False))

    def _pad(self, n_items: int) -> np.ndarray:
        out = np.zeros((n_items, n_items))
        out[:len(self.items), :len(self.items)] = self.cooccurrence
        return out

    def matrix(self, n_items: int, key, weights) -> tuple:
        """No user rows: an empty X and pattern, the popularity and tiebreak of every history."""
        if not key[0]:
            raise ValueError("item statistics fit binarized models only (binarize=True)")
        empty = sparse.csr_matrix((0, n_items))
        popularity = np.diag(self._pad(n_items)).copy()
        top = popularity.max() if len(popularity) else 0.0
        return empty, empty.astype(bool), popularity, 1e-9 * popularity / top if top > 0 else np.zeros(n_items)

    def gram(self, n_items: int, key, pattern: bool) -> np.ndarray:
        if not (pattern or key == _BINARY):
            raise ValueError("item statistics hold the co-occurrence matrix only (binarized, undecayed X'X)")
        return self._pad(n_items)

    def group_counts(self, by: pd.Series | None, seen) -> tuple[pd.Index, np.ndarray]:
        counts = np.zeros((len(self.groups), seen.shape[1]))
        counts[:, :self.group_users.shape[1]] = self.group_users
        return self.groups, counts


class Recommender:
    """Shared indexing, user x item matrix, batching, seen-item masking and top-k selection.

    Subclasses implement `_fit(data)` (an `Interactions`) and `_scores(rows)` (dense scores for a
    batch of known user codes). `binarize=True` makes the matrix 0/1 (the most recent purchase's
    time-decay factor for `ItemKNN`); otherwise weights of repeated rows are summed.
    """

    name = "base"
    binarize = True

    def fit(self, interactions: pd.DataFrame | Interactions | ItemStatistics,
            items: Iterable | None = None) -> "Recommender":
        """Index users and items (`items` may add catalog items nobody interacted with) and fit."""
        data = interactions if isinstance(interactions, (Interactions, ItemStatistics)) \
            else Interactions(interactions)
        self.latest_ = data.latest if self._decays() else None
        self.users_ = data.users
        self.items_ = data.catalog(items)
        self.X_, self.seen_, self.popularity_, self.tiebreak_ = data.matrix(
            len(self.items_), self._matrix_key(), lambda: self._weights(data))
        self._fit(data)
        return self

    def _matrix_key(self) -> tuple:
        """What the matrix depends on besides the data (models with equal keys share one matrix)."""
        return (bool(self.binarize), None)

    def _decays(self) -> bool:
        """Whether weights age from the latest timestamp (kept as `latest_` for serving)."""
        return False

    def rebind(self, rows: pd.DataFrame, groups: pd.Series | None = None) -> "Recommender":
        """This fitted model serving other users: their matrix from `rows` (user_id, item_id[, weight,
        timestamp], on this model's catalog), every fitted parameter kept (item similarities,
        popularity and its tiebreak, the time-decay reference). Each user's scores are those the
        model gives when it was fitted with that user's rows, so users can be served in batches
        where their rows live (the Spark executors). `groups` (user_id -> group) is the grouping of
        these users for a model fitted with one."""
        bound = copy(self)
        data = Interactions(rows, items=self.items_)
        bound.users_ = data.users
        bound.X_, bound.seen_, _, _ = data.matrix(len(self.items_), self._matrix_key(),
                                                   lambda: bound._weights(data))
        bound._rebind(groups)
        return bound

    def _rebind(self, groups: pd.Series | None) -> None:
        """What a model keeps per user besides its matrix (none but Popularity's groups)."""

    def _weights(self, data: Interactions) -> np.ndarray:
        return np.ones(len(data)) if self.binarize else data.weight

    def _fit(self, data: Interactions) -> None:
        raise NotImplementedError

    def _scores(self, rows: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _unknown_scores(self, users: pd.Index) -> np.ndarray:
        """Scores for users without history: overall popularity."""
        return np.tile(self.popularity_, (len(users), 1))

    def _batch_size(self) -> int:
        return max(1, min(BATCH_USERS, BATCH_CELLS // max(len(self.items_), 1)))

    def recommend(self, user_ids, k: int = 10, exclude_seen: bool = True,
                  allowed: Iterable | None = None) -> pd.DataFrame:
        """Top-k items per user as user_id, item_id, score, rank (1 = best); unknown users get popular items.

        `exclude_seen` leaves out items the user already has; `allowed` limits the items that
        may be recommended (business rules applied while scoring).
        """
        users = _as_index(user_ids)
        return _frame(users, *self.top(users, k, exclude_seen, allowed), self.items_)

    def top(self, users: pd.Index, k: int, exclude_seen: bool = True,
            allowed: Iterable | None = None) -> tuple[np.ndarray, np.ndarray]:
        """`recommend` as arrays, one row per user: positions in `items_` (-1 past the end of a
        list) and scores, best first."""
        codes = self.users_.get_indexer(users)
        blocked = None if allowed is None else ~self.items_.isin(_as_index(allowed))
        parts = [_top(np.empty((0, len(self.items_))), k)]
        step = self._batch_size()
        for start in range(0, len(users), step):
            batch, batch_users = codes[start:start + step], users[start:start + step]
            known = batch >= 0
            if known.all():  # the usual batch: no copy into a frame of mixed rows
                scores = self._scores(batch) + self.tiebreak_
            else:
                scores = np.empty((len(batch), len(self.items_)))
                if known.any():
                    scores[known] = self._scores(batch[known]) + self.tiebreak_
                scores[~known] = self._unknown_scores(batch_users[~known]) + self.tiebreak_
            if exclude_seen and known.any():
                seen_rows, seen_cols = self.seen_[batch[known]].nonzero()
                scores[np.flatnonzero(known)[seen_rows], seen_cols] = -np.inf
            if blocked is not None:
                scores[:, blocked] = -np.inf
            parts.append(_top(scores, k))
        return np.concatenate([c for c, _ in parts]), np.concatenate([s for _, s in parts])

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


class Popularity(Recommender):
    """Most-bought items (distinct users) overall, or within the user's group when `by` is given.

    `by` maps user_id -> group (e.g. segment). Users in a group get that group's ranking
    (ties broken by overall popularity), even without history of their own; users without
    a group get the overall ranking.
    """

    name = "popularity"

    def __init__(self, by: pd.Series | None = None):
        self.by = by
        if self.by is not None:
            self.name = "popularity_by_segment"

    def _fit(self, data: Interactions | ItemStatistics) -> None:
        self.group_of_ = None
        if self.by is None:
            return
        self.group_names_, self.group_popularity_ = data.group_counts(self.by, self.seen_)
        self._rebind(self.by)

    def _rebind(self, groups: pd.Series | None) -> None:
        if self.by is None:
            return
        self.by = groups if groups is not None else pd.Series(dtype=object)
        self.group_of_ = self.group_names_.get_indexer(self.by.reindex(self.users_))

    def scores_for_groups(self, groups) -> np.ndarray:
        """Popularity rows for group labels (missing or unknown groups get overall popularity)."""
        groups = np.asarray(list(groups) if not isinstance(groups, np.ndarray) else groups, dtype=object)
        out = np.tile(self.popularity_, (len(groups), 1))
        if self.group_of_ is not None and len(groups):
            codes = self.group_names_.get_indexer(pd.Index(groups))
            out[codes >= 0] = self.group_popularity_[codes[codes >= 0]] + 1e-6 * self.popularity_
        return out

    def _scores(self, rows: np.ndarray) -> np.ndarray:
        if self.group_of_ is None:
            return np.tile(self.popularity_, (len(rows), 1))
        codes = self.group_of_[rows]
        out = np.tile(self.popularity_, (len(rows), 1))
        out[codes >= 0] = self.group_popularity_[codes[codes >= 0]] + 1e-6 * self.popularity_
        return out

    def _unknown_scores(self, users: pd.Index) -> np.ndarray:
        if self.by is None:
            return super()._unknown_scores(users)
        return self.scores_for_groups(self.by.reindex(users).to_numpy())


class ItemKNN(Recommender):
    """Item-item CF: score = a user's (time-decayed) purchases x item similarity from co-occurrence.

    `similarity`: "cosine" = c_ij / sqrt(c_i c_j), "jaccard" = c_ij / (c_i + c_j - c_ij),
    "lift" = c_ij N / (c_i c_j), with c counting users. `half_life_days` weights each
    purchase by 0.5 ** (age / half_life) (age from the latest timestamp in the data), so
    recent purchases drive the recommendations; it needs a `timestamp` column.
    """

    name = "itemknn"

    def __init__(self, similarity: str = "cosine", half_life_days: float | None = None, binarize: bool = True):
        if similarity not in ("cosine", "jaccard", "lift"):
            raise ValueError("similarity must be cosine, jaccard or lift")
        self.similarity = similarity
        self.half_life_days = half_life_days
        self.binarize = binarize
        self.name = f"itemknn_{similarity}" + ("_decay" if half_life_days else "")

    def _matrix_key(self) -> tuple:
        return (bool(self.binarize), self.half_life_days or None)

    def _decays(self) -> bool:
        return bool(self.half_life_days)

    def _weights(self, data: Interactions) -> np.ndarray:
        weights = super()._weights(data)
        if self.half_life_days:
            if data.timestamp is None:
                raise ValueError("half_life_days needs a timestamp column")
            stamps = as_datetime(data.timestamp)
            age_days = (self.latest_ - stamps).dt.total_seconds().to_numpy() / 86_400
            weights = weights * 0.5 ** (age_days / self.half_life_days)
        return weights

    def _fit(self, data: Interactions) -> None:
        co = data.gram(len(self.items_), self._matrix_key(), pattern=True)
        count = np.diag(co).copy()
        with np.errstate(divide="ignore", invalid="ignore"):
            if self.similarity == "cosine":
                sim = co / np.sqrt(np.outer(count, count))
            elif self.similarity == "jaccard":
                sim = co / (count[:, None] + count[None, :] - co)
            else:
                sim = co * data.n_users / np.outer(count, count)
        sim = np.nan_to_num(sim, nan=0.0, posinf=0.0, neginf=0.0)
        np.fill_diagonal(sim, 0.0)
        self.similarity_ = sim

    def _scores(self, rows: np.ndarray) -> np.ndarray:
        return np.asarray(self.X_[rows] @ self.similarity_)


class ContentBased(Recommender):
    """TF-IDF of each item's text; score = cosine of an item with the user's profile.

    The profile is the weighted mean of the (L2-normalized) TF-IDF rows of the user's items.
    Items in `item_text` that nobody interacted with are part of the catalog, so they can
    be recommended (the cold-start case collaborative models cannot handle).
    """

    name = "content"

    def __init__(self, item_text: pd.Series, binarize: bool = True, **tfidf_params):
        self.item_text = item_text
        self.binarize = binarize
        self.tfidf_params = {"ngram_range": (1, 2), "sublinear_tf": True, **tfidf_params}

    def fit(self, interactions: pd.DataFrame | Interactions, items: Iterable | None = None) -> "ContentBased":
        catalog = pd.Index(self.item_text.index)
        if items is not None:
            catalog = catalog.append(_as_index(items)).unique()
        return super().fit(interactions, catalog)

    def _fit(self, data: Interactions) -> None:
        text = self.item_text[~self.item_text.index.duplicated()].reindex(self.items_).fillna("").astype(str)
        try:
            tfidf = TfidfVectorizer(**self.tfidf_params).fit_transform(text)
        except ValueError:  # empty vocabulary: every text empty
            tfidf = sparse.csr_matrix((len(self.items_), 1))
        self.tfidf_ = normalize(tfidf).tocsr()

    def _scores(self, rows: np.ndarray) -> np.ndarray:
        return self.scores_from(self.X_[rows])

    def scores_from(self, weights: sparse.csr_matrix) -> np.ndarray:
        """Scores of every item for users described by item weights (users x items, any users)."""
        profile = normalize(weights, norm="l1") @ self.tfidf_  # weighted mean, users x terms
        return (profile @ self.tfidf_.T).toarray()


class EASE(Recommender):
    """Embarrassingly Shallow Autoencoder (Steck 2019) with L2 penalty `lambda_`.

    G = X'X + lambda I, P = G^-1, B = -P / diag(P) (column-wise), diag(B) = 0, scores = X B.
    The default lambda (500) suits catalogs of a few hundred to a few thousand items with
    binary data (MovieLens-100k's usual range is 250-1000); `tune_ease` picks it on a split.
    """

    name = "ease"

    def __init__(self, lambda_: float = 500.0, binarize: bool = True):
        self.lambda_ = float(lambda_)
        self.binarize = binarize

    def _fit(self, data: Interactions) -> None:
        gram = data.gram(len(self.items_), self._matrix_key(), pattern=False).copy()
        gram[np.diag_indices_from(gram)] += self.lambda_
        precision = np.linalg.inv(gram)
        self.B_ = -precision / np.diag(precision)
        np.fill_diagonal(self.B_, 0.0)

    def _scores(self, rows: np.ndarray) -> np.ndarray:
        return np.asarray(self.X_[rows] @ self.B_)


def tune_ease(train: pd.DataFrame, test: pd.DataFrame, lambdas=(50, 100, 200, 500, 1000, 2000, 5000),
              k: int = 10, metric: str = "ndcg") -> tuple[float, pd.DataFrame]:
    """Fit EASE for each lambda on `train`, score on `test`; return the best lambda and the table."""
    n_items = pd.concat([train["item_id"], test["item_id"]]).nunique()
    users = test["user_id"].unique()
    data = Interactions(train)
    rows = [{"lambda_": lam, **evaluate(EASE(lam).fit(data).recommend(users, k=k), test, train, n_items, k)}
            for lam in lambdas]
    table = pd.DataFrame(rows)
    return float(table.loc[table[f"{metric}_at_{k}"].idxmax(), "lambda_"]), table


@dataclass
class RankedLists:
    """Users' lists as fixed-width arrays, one row per user, best first, -1 past the end of a list:
    positions in `items`, their scores, and the part of the policy that picked each (a position
    in `models`). Serving inserts picks and applies the business rules on these arrays (every list
    has the same width) and makes one frame at the end."""

    users: pd.Index
    items: pd.Index
    cols: np.ndarray
    scores: np.ndarray
    source: np.ndarray
    models: list[str]

    def frame(self, ranks: np.ndarray | None = None) -> pd.DataFrame:
        """user_id, item_id, score, rank, model; `ranks` (0 = left out) as `business_rule_ranks` gives them."""
        if ranks is None:
            ranks = np.where(self.cols >= 0, np.cumsum(self.cols >= 0, axis=1), 0)
        keep = ranks > 0
        rows = np.broadcast_to(np.arange(len(self.users))[:, None], keep.shape)[keep]
        return pd.DataFrame({"user_id": self.users.to_numpy()[rows], "item_id": self.items.to_numpy()[self.cols[keep]],
                             "score": self.scores[keep], "rank": ranks[keep].astype(np.int32),
                             "model": np.asarray(self.models, dtype=object)[self.source[keep]]})

    def insert(self, rows: np.ndarray, picks: np.ndarray, scores: np.ndarray, source: int, position: int,
               k: int) -> "RankedLists":
        """Put each of `rows`' picks (best first, -1 for none) into its list from `position` on, as
        ranks 1..slots of the picks; a pick the list already holds stays where the list has it, and
        lists are cut at k."""
        slots = int((picks >= 0).sum(axis=1).max()) if picks.size else 0
        if not slots:
            return self
        picks, scores = picks[:, :slots], scores[:, :slots]
        left = min(max(1, min(position, k) - slots + 1) - 1, self.cols.shape[1])
        cols = self.cols[rows]
        picks = np.where((picks[:, :, None] == cols[:, None, :]).any(axis=2), -1, picks)
        merged = [np.concatenate([part[rows][:, :left], new, part[rows][:, left:]], axis=1) for part, new in
                  ((self.cols, picks), (self.scores, scores), (self.source, np.full(picks.shape, source)))]
        order = np.argsort(merged[0] < 0, axis=1, kind="stable")  # close the gaps, keeping the order
        width = min(k, self.cols.shape[1] + slots)
        out = []
        for part, new, empty in zip((self.cols, self.scores, self.source), merged, (-1, -np.inf, 0)):
            whole = np.full((len(part), width), empty, dtype=part.dtype)
            kept = min(part.shape[1], width)
            whole[:, :kept] = part[:, :kept]
            whole[rows] = np.take_along_axis(new, order, axis=1)[:, :width]
            out.append(whole)
        return replace(self, cols=out[0], scores=out[1], source=out[2])


def _positions(cols: np.ndarray, items: pd.Index, catalog: pd.Index) -> np.ndarray:
    """Positions in `items` (-1 = none) as positions in `catalog`."""
    if items.equals(catalog):
        return cols
    return np.where(cols >= 0, catalog.get_indexer(items)[cols], -1)


class Hybrid:
    """The serving policy: main model for known users, group then global popularity for new ones.

    `new_item_slots` > 0 with a `content` model puts that many content-based picks into each
    list from rank `new_item_position` on (default 10, the end of a usual list, clamped to k):
    for a known user, never-bought products most like the user's history, so new services
    get seen; for a new user (no history), products most like the group-popular ones listed.
    """

    name = "hybrid"

    def __init__(self, main: Recommender, popularity: Popularity | None = None,
                 content: ContentBased | None = None, new_item_slots: int = 1, new_item_position: int = 10):
        self.main, self.popularity, self.content = main, popularity, content
        self.new_item_slots, self.new_item_position = new_item_slots, new_item_position

    def fit(self, interactions: pd.DataFrame | Interactions, items: Iterable | None = None) -> "Hybrid":
        """Fit every part on the same interactions (a missing popularity part becomes overall popularity)."""
        data = interactions if isinstance(interactions, Interactions) else Interactions(interactions)
        self.main.fit(data, items=items)
        self.popularity = (self.popularity or Popularity()).fit(data, items=items)
        if self.content is not None:
            self.content.fit(data, items=items)
        return self

    def rebind(self, rows: pd.DataFrame, groups: pd.Series | None = None) -> "Hybrid":
        """Every part serving the users of `rows` (Recommender.rebind): `groups` maps them to segments."""
        bound = copy(self)
        bound.main = self.main.rebind(rows, groups)
        bound.popularity = self.popularity.rebind(rows, groups) if self.popularity is not None else None
        bound.content = self.content.rebind(rows, groups) if self.content is not None else None
        return bound

    @property
    def users_(self) -> pd.Index:
        return self.main.users_

    @property
    def items_(self) -> pd.Index:
        return self.main.items_

    def recommend(self, user_ids, k: int = 10, exclude_seen: bool = True, groups: pd.Series | None = None,
                  allowed: Iterable | None = None) -> pd.DataFrame:
        """Lists with a `model` column saying which part of the policy produced each row.

        `groups` (user_id -> group) overrides the popularity part's own mapping for new users.
        """
        return self.ranked(user_ids, k, exclude_seen, groups, allowed).frame()

    def ranked(self, user_ids, k: int = 10, exclude_seen: bool = True, groups: pd.Series | None = None,
               allowed: Iterable | None = None) -> RankedLists:
        """`recommend` as `RankedLists` over the items of every part."""
        users = _as_index(user_ids)
        known = users.isin(self.main.users_)
        allowed = None if allowed is None else _as_index(allowed)
        popularity = self.popularity if self.popularity is not None else _overall(self.main)
        catalog = self.main.items_
        for part in (popularity, self.content):
            if part is not None and not part.items_.equals(catalog):
                catalog = catalog.append(part.items_.difference(catalog, sort=False))
        width = max(min(k, len(self.main.items_)), min(k, len(popularity.items_)), 0)
        lists = RankedLists(users, catalog, np.full((len(users), width), -1, dtype=np.int64),
                            np.full((len(users), width), -np.inf), np.zeros((len(users), width), dtype=np.int8),
                            [self.main.name, "popularity", "content_new_item", "content_for_new_patient"])
        if known.any():
            cols, scores = self.main.top(users[known], k, exclude_seen, allowed)
            lists.cols[known, :cols.shape[1]] = _positions(cols, self.main.items_, catalog)
            lists.scores[known, :cols.shape[1]] = scores
        if (~known).any():
            new_users = users[~known]
            mapping = groups if groups is not None else getattr(popularity, "by", None)
            group = mapping.reindex(new_users).to_numpy() if mapping is not None else [None] * len(new_users)
            scores = popularity.scores_for_groups(group) + popularity.tiebreak_
            if allowed is not None:
                scores[:, ~popularity.items_.isin(allowed)] = -np.inf
            cols, scores = _top(scores, k)
            lists.cols[~known, :cols.shape[1]] = _positions(cols, popularity.items_, catalog)
            lists.scores[~known, :cols.shape[1]] = scores
            lists.source[~known] = 1
            if mapping is not None and popularity.group_of_ is not None:
                lists.models[1] = "popularity_by_segment"
        if self.content is not None and self.new_item_slots > 0:
            if known.any():
                lists = self._with_new_items(lists, np.flatnonzero(known), k, allowed)
            if (~known).any():
                lists = self._with_content_for_new_users(lists, np.flatnonzero(~known), k, allowed)
        return lists

    def _with_content_for_new_users(self, lists: RankedLists, rows: np.ndarray, k: int,
                                    allowed: pd.Index | None, batch: int = 20_000) -> RankedLists:
        """Content picks for users without history: items most like those already on their list."""
        items = self.content.items_
        listed = lists.cols[rows]
        valid = listed >= 0
        user_row = np.broadcast_to(np.arange(len(rows))[:, None], listed.shape)[valid]
        item_col = items.get_indexer(lists.items)[listed[valid]]
        ok = item_col >= 0
        weights = sparse.csr_matrix((np.ones(int(ok.sum())), (user_row[ok], item_col[ok])),
                                    shape=(len(rows), len(items)))
        blocked = None if allowed is None else ~items.isin(allowed)
        picks = [_top(np.empty((0, len(items))), min(self.new_item_slots, k))]
        for start in range(0, len(rows), batch):
            part = weights[start:start + batch]
            scores = self.content.scores_from(part)
            scores[part.nonzero()] = -np.inf  # not what the list already holds
            if blocked is not None:
                scores[:, blocked] = -np.inf
            scores[part.getnnz(axis=1) == 0] = -np.inf  # nothing listed: nothing to be like
            picks.append(_top(scores, min(self.new_item_slots, k)))
        cols, scores = np.concatenate([c for c, _ in picks]), np.concatenate([s for _, s in picks])
        return lists.insert(rows, _positions(cols, items, lists.items), scores, 3, self.new_item_position, k)

    def _with_new_items(self, lists: RankedLists, rows: np.ndarray, k: int, allowed: pd.Index | None) -> RankedLists:
        bought = self.main.items_[self.main.popularity_ > 0]
        never_bought = self.content.items_[~self.content.items_.isin(bought)]
        if allowed is not None:
            never_bought = never_bought[never_bought.isin(allowed)]
        slots = min(self.new_item_slots, k)
        if not len(never_bought) or not slots:
            return lists
        cols, scores = self.content.top(lists.users[rows], slots, exclude_seen=True, allowed=never_bought)
        return lists.insert(rows, _positions(cols, self.content.items_, lists.items), scores, 2,
                            self.new_item_position, k)


def _overall(model: Recommender) -> Popularity:
    """Overall popularity from an already fitted model's matrix (no refit)."""
    pop = Popularity()
    pop.users_, pop.items_, pop.X_, pop.seen_ = model.users_, model.items_, model.X_, model.seen_
    pop.popularity_, pop.tiebreak_, pop.group_of_ = model.popularity_, model.tiebreak_, None
    return pop


MODELS = {"popularity": Popularity, "itemknn": ItemKNN, "content": ContentBased, "ease": EASE}


def fit(interactions: pd.DataFrame, model: str | Recommender | Hybrid | None = None, **params):
    """Fit a recommender on user_id, item_id[, weight, timestamp] rows; None means EASE, our best model.

    `model` is a name (popularity, itemknn, content, ease; `params` go to its constructor,
    e.g. `fit(df, "itemknn", similarity="jaccard")`, `fit(df, "content", item_text=texts)`)
    or an unfitted instance. The result's `.recommend(user_ids, k=10, exclude_seen=True)`
    returns user_id, item_id, score, rank; users it never saw get the most popular items.
    """
    items = params.pop("items", None)
    if model is None:
        model = EASE(**params)
    elif isinstance(model, str):
        key = model.lower()
        if key not in MODELS:
            raise ValueError(f"unknown model {model!r}; choose from {', '.join(MODELS)}")
        model = MODELS[key](**params)
    elif params:
        raise TypeError("parameters go to the constructor when model is an instance")
    return model.fit(interactions, items=items)


def apply_business_rules(candidates: pd.DataFrame, products: pd.DataFrame, k: int = 10,
                         exclude_rx_only: bool = True, max_per_category: int | None = 4,
                         bought: pd.DataFrame | None = None, one_time_kinds: tuple[str, ...] = ()) -> pd.DataFrame:
    """Filter and re-rank scored candidates (longer than k) after scoring.

    Drops prescription-only products (they may not be marketed to patients directly),
    optionally products of one-time kinds the patient already bought (`bought`: user_id,
    item_id), and keeps at most `max_per_category` products of one category per list.
    `products` has item_id, category, rx_only and kind.
    """
    recs = candidates.sort_values(["user_id", "rank"], kind="stable")
    user_codes, users = pd.factorize(recs["user_id"], use_na_sentinel=False)
    if not len(users):
        return recs.reset_index(drop=True)
    starts = np.flatnonzero(np.r_[True, user_codes[1:] != user_codes[:-1]])
    slot = np.arange(len(recs)) - np.repeat(starts, np.diff(np.r_[starts, len(recs)]))
    items = pd.Index(recs["item_id"]).unique()
    cols = np.full((len(users), int(slot.max()) + 1), -1, dtype=np.int64)
    cols[user_codes, slot] = items.get_indexer(recs["item_id"])
    lists = RankedLists(pd.Index(users), items, cols, np.zeros(cols.shape), np.zeros(cols.shape, dtype=np.int8), [])
    ranks = business_rule_ranks(lists, products, k, exclude_rx_only, max_per_category, bought, one_time_kinds)
    rank = ranks[user_codes, slot]
    return recs[rank > 0].assign(rank=rank[rank > 0].astype(np.int64)).reset_index(drop=True)


def business_rule_ranks(lists: RankedLists, products: pd.DataFrame, k: int = 10, exclude_rx_only: bool = True,
                        max_per_category: int | None = 4, bought: pd.DataFrame | None = None,
                        one_time_kinds: tuple[str, ...] = ()) -> np.ndarray:
    """`apply_business_rules` on ranked lists: each cell's rank in the final list, 0 where it is left out."""
    info = products.drop_duplicates("item_id").set_index("item_id").reindex(lists.items)
    cols = lists.cols
    valid = cols >= 0
    at = np.where(valid, cols, 0)
    if exclude_rx_only:  # unknown products (no rx_only) are not prescription-only
        rx_only, known = np.zeros(len(info), dtype=bool), info["rx_only"].notna().to_numpy()
        rx_only[known] = info["rx_only"][known].astype(bool).to_numpy()
        valid &= ~rx_only[at]
    if bought is not None and one_time_kinds:
        rows, slots = np.nonzero(valid & info["kind"].isin(one_time_kinds).to_numpy()[at])
        pairs = pd.MultiIndex.from_arrays([lists.users.to_numpy()[rows], lists.items.to_numpy()[cols[rows, slots]]])
        already = pairs.isin(pd.MultiIndex.from_frame(bought[["user_id", "item_id"]]))
        valid[rows[already], slots[already]] = False
    if max_per_category:
        codes = pd.factorize(info["category"], use_na_sentinel=False)[0]  # a missing category is one too
        other = codes.max() + 1 if len(codes) else 0  # where left-out cells are counted
        category = np.where(valid, codes[at], other)
        seen = np.zeros((len(cols), other + 1), dtype=np.int32)  # each list's running count per category
        rows = np.arange(len(cols))
        for slot in range(cols.shape[1]):
            seen[rows, category[:, slot]] += 1
            valid[:, slot] &= seen[rows, category[:, slot]] <= max_per_category
    ranks = np.cumsum(valid, axis=1)
    return np.where(valid & (ranks <= k), ranks, 0)
