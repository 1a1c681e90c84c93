"""Recommenders behind one small interface, and `fit`, the entry point notebooks and checks use.

Why this shape: every model sees the same sparse users x items matrix (scipy CSR; users and
items indexed by their factorized, i.e. categorical, codes), so models are interchangeable
in evaluation and serving. A dense items x items matrix is fine for catalogs of a few
thousand products; a dense users x items matrix never exists: scoring runs over batches (at most
`BATCH_USERS` users and `BATCH_CELLS` scores at a time), seen items are masked with -inf and
the top k are picked with `argpartition`, so memory stays flat for a million patients.

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

import numpy as np
import pandas as pd
from scipy import sparse
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.preprocessing import normalize

from medmkt_assets.lib.models.rec_metrics import evaluate

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


def _validated(interactions: pd.DataFrame) -> pd.DataFrame:
    """Rows with user and item ids and a positive weight (default 1)."""
    missing = {"user_id", "item_id"} - set(interactions.columns)
    if missing:
        raise ValueError(f"interactions needs columns user_id and item_id; missing {sorted(missing)}")
    columns = [c for c in ("user_id", "item_id", "weight", "timestamp") if c in interactions]
    frame = interactions[columns].dropna(subset=["user_id", "item_id"])
    weight = frame["weight"].astype(float).fillna(1.0) if "weight" in frame else pd.Series(1.0, index=frame.index)
    frame = frame.assign(weight=weight)
    return frame[frame["weight"] > 0]


def _empty() -> pd.DataFrame:
    return pd.DataFrame({"user_id": pd.Series(dtype=object), "item_id": pd.Series(dtype=object),
                         "score": pd.Series(dtype=float), "rank": pd.Series(dtype=np.int32)})


def _top_k(users: pd.Index, scores: np.ndarray, items: pd.Index, k: int) -> pd.DataFrame:
    """Top k finite scores per row (descending) as user_id, item_id, score, rank."""
    k = min(k, scores.shape[1])
    if k <= 0 or len(users) == 0:
        return _empty()
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    part_scores = np.take_along_axis(scores, part, axis=1)
    order = np.argsort(-part_scores, axis=1, kind="stable")
    top = np.take_along_axis(part, order, axis=1)
    top_scores = np.take_along_axis(part_scores, order, axis=1)
    valid = np.isfinite(top_scores)  # -inf = seen or not allowed; they sort last
    rows = np.broadcast_to(np.arange(len(users))[:, None], top.shape)
    return pd.DataFrame({
        "user_id": users.to_numpy()[rows[valid]], "item_id": items.to_numpy()[top[valid]],
        "score": top_scores[valid], "rank": np.cumsum(valid, axis=1)[valid].astype(np.int32),
    })


class Recommender:
    """Shared indexing, user x item matrix, batching, seen-item masking and top-k selection.

    Subclasses implement `_fit(frame)` and `_scores(rows)` (dense scores for a batch of known
    user codes). `binarize=True` makes the matrix 0/1 (the most recent purchase's time-decay
    factor for `ItemKNN`); otherwise weights of repeated rows are summed.
    """

    name = "base"
    binarize = True

    def fit(self, interactions: pd.DataFrame, items: Iterable | None = None) -> "Recommender":
        """Index users and items (`items` may add catalog items nobody interacted with) and fit."""
        frame = _validated(interactions)
        user_codes, users = pd.factorize(frame["user_id"])
        item_codes, seen_items = pd.factorize(frame["item_id"])
        self.users_ = pd.Index(users)
        self.items_ = pd.Index(seen_items)
        if items is not None:
            self.items_ = self.items_.append(_as_index(items).difference(self.items_, sort=False))
        self.X_ = self._matrix(user_codes, item_codes, self._weights(frame))
        self.seen_ = (self.X_ > 0).astype(bool).tocsr()
        self.popularity_ = np.asarray(self.seen_.sum(axis=0), dtype=float).ravel()  # distinct users per item
        top = self.popularity_.max() if len(self.popularity_) else 0.0
        self.tiebreak_ = 1e-9 * self.popularity_ / top if top > 0 else np.zeros(len(self.items_))
        self._fit(frame)
        return self

    def _weights(self, frame: pd.DataFrame) -> np.ndarray:
        return np.ones(len(frame)) if self.binarize else frame["weight"].to_numpy(dtype=float)

    def _matrix(self, rows: np.ndarray, cols: np.ndarray, weights: np.ndarray) -> sparse.csr_matrix:
        shape = (len(self.users_), len(self.items_))
        if self.binarize and len(rows):  # one value per pair: the largest (1, or the latest decay factor)
            key = rows.astype(np.int64) * shape[1] + cols
            order = np.argsort(key, kind="stable")
            key, weights = key[order], weights[order]
            starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
            weights = np.maximum.reduceat(weights, starts)
            rows, cols = np.divmod(key[starts], shape[1])
        matrix = sparse.csr_matrix((weights, (rows, cols)), shape=shape)
        matrix.sum_duplicates()
        return matrix

    def _fit(self, frame: pd.DataFrame) -> None:
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
        codes = self.users_.get_indexer(users)
        blocked = None if allowed is None else ~self.items_.isin(_as_index(allowed))
        frames = []
        step = self._batch_size()
        for start in range(0, len(users), step):
            batch, batch_users = codes[start:start + step], users[start:start + step]
            known = batch >= 0
            scores = np.empty((len(batch), len(self.items_)))
            if known.any():
                scores[known] = self._scores(batch[known]) + self.tiebreak_
            if (~known).any():
                scores[~known] = self._unknown_scores(batch_users[~known]) + self.tiebreak_
            if exclude_seen and known.any():
                seen_rows, seen_cols = self.seen_[batch[known]].nonzero()
                scores[np.flatnonzero(known)[seen_rows], seen_cols] = -np.inf
            if blocked is not None:
                scores[:, blocked] = -np.inf
            frames.append(_top_k(batch_users, scores, self.items_, k))
        return pd.concat(frames, ignore_index=True) if frames else _empty()

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

    def _fit(self, frame: pd.DataFrame) -> None:
        self.group_of_ = None
        if self.by is None:
            return
        codes, self.group_names_ = pd.factorize(self.by.reindex(self.users_))
        members = codes >= 0
        indicator = sparse.csr_matrix((np.ones(members.sum()), (codes[members], np.flatnonzero(members))),
                                      shape=(len(self.group_names_), len(codes)))
        self.group_popularity_ = (indicator @ self.seen_.astype(np.float64)).toarray()
        self.group_of_ = codes

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

    def _weights(self, frame: pd.DataFrame) -> np.ndarray:
        weights = super()._weights(frame)
        if self.half_life_days:
            if "timestamp" not in frame:
                raise ValueError("half_life_days needs a timestamp column")
            stamps = pd.to_datetime(frame["timestamp"])
            age_days = (stamps.max() - stamps).dt.total_seconds().to_numpy() / 86_400
            weights = weights * 0.5 ** (age_days / self.half_life_days)
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

    def fit(self, interactions: pd.DataFrame, items: Iterable | None = None) -> "ContentBased":
        catalog = pd.Index(self.item_text.index)
        if items is not None:
            catalog = catalog.append(_as_index(items)).unique()
        return super().fit(interactions, catalog)

    def _fit(self, frame: pd.DataFrame) -> None:
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

    def _fit(self, frame: pd.DataFrame) -> None:
        X = self.X_.astype(np.float64)
        gram = (X.T @ X).toarray()
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
    rows = [{"lambda_": lam, **evaluate(EASE(lam).fit(train).recommend(users, k=k), test, train, n_items, k)}
            for lam in lambdas]
    table = pd.DataFrame(rows)
    return float(table.loc[table[f"{metric}_at_{k}"].idxmax(), "lambda_"]), table


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

    def fit(self, interactions: pd.DataFrame, items: Iterable | None = None) -> "Hybrid":
        """Fit every part on the same interactions (a missing popularity part becomes overall popularity)."""
        self.main.fit(interactions, items=items)
        self.popularity = (self.popularity or Popularity()).fit(interactions, items=items)
        if self.content is not None:
            self.content.fit(interactions, items=items)
        return self

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
        users = _as_index(user_ids)
        known = users.isin(self.main.users_)
        allowed = None if allowed is None else _as_index(allowed)
        lists = []
        if known.any():
            main = self.main.recommend(users[known], k=k, exclude_seen=exclude_seen, allowed=allowed)
            lists.append(main.assign(model=self.main.name))
        if (~known).any():
            new_users = users[~known]
            popularity = self.popularity if self.popularity is not None else _overall(self.main)
            mapping = groups if groups is not None else getattr(popularity, "by", None)
            group = mapping.reindex(new_users).to_numpy() if mapping is not None else [None] * len(new_users)
            scores = popularity.scores_for_groups(group) + popularity.tiebreak_
            if allowed is not None:
                scores[:, ~popularity.items_.isin(allowed)] = -np.inf
            by_group = mapping is not None and popularity.group_of_ is not None
            lists.append(_top_k(new_users, scores, popularity.items_, k)
                         .assign(model="popularity_by_segment" if by_group else "popularity"))
        recs = pd.concat(lists, ignore_index=True)
        if self.content is not None and self.new_item_slots > 0:
            if known.any():
                recs = self._with_new_items(recs, users[known], k, allowed)
            if (~known).any():
                recs = self._with_content_for_new_users(recs, users[~known], k, allowed)
        return recs.reset_index(drop=True)

    def _with_content_for_new_users(self, recs: pd.DataFrame, users: pd.Index, k: int,
                                    allowed: pd.Index | None, batch: int = 20_000) -> pd.DataFrame:
        """Content picks for users without history: items most like those already on their list."""
        items = self.content.items_
        listed = recs[recs["user_id"].isin(users)]
        user_row = pd.Index(users).get_indexer(listed["user_id"])
        item_col = items.get_indexer(listed["item_id"])
        ok = item_col >= 0
        weights = sparse.csr_matrix((np.ones(int(ok.sum())), (user_row[ok], item_col[ok])),
                                    shape=(len(users), len(items)))
        blocked = None if allowed is None else ~items.isin(allowed)
        picks = []
        for start in range(0, len(users), batch):
            part = weights[start:start + batch]
            scores = self.content.scores_from(part)
            scores[part.nonzero()] = -np.inf  # not what the list already holds
            if blocked is not None:
                scores[:, blocked] = -np.inf
            scores[part.getnnz(axis=1) == 0] = -np.inf  # nothing listed: nothing to be like
            picks.append(_top_k(pd.Index(users[start:start + batch]), scores, items, min(self.new_item_slots, k)))
        return self._insert(recs, pd.concat(picks, ignore_index=True).assign(model="content_for_new_patient"), k)

    def _with_new_items(self, recs: pd.DataFrame, users: pd.Index, k: int, allowed: pd.Index | None) -> pd.DataFrame:
        bought = self.main.items_[self.main.popularity_ > 0]
        never_bought = self.content.items_[~self.content.items_.isin(bought)]
        if allowed is not None:
            never_bought = never_bought[never_bought.isin(allowed)]
        slots = min(self.new_item_slots, k)
        if not len(never_bought) or not slots:
            return recs
        picks = self.content.recommend(users, k=slots, exclude_seen=True, allowed=never_bought)
        return self._insert(recs, picks.assign(model="content_new_item"), k)

    def _insert(self, recs: pd.DataFrame, picks: pd.DataFrame, k: int) -> pd.DataFrame:
        """Put each user's picks (ranked 1..slots) into the list at the new-item position."""
        if picks.empty:
            return recs
        slots = int(picks["rank"].max())
        position = max(1, min(self.new_item_position, k) - slots + 1)
        recs = recs.assign(_order=recs["rank"].astype(float))
        shift = recs["user_id"].isin(picks["user_id"]) & (recs["rank"] >= position)
        recs.loc[shift, "_order"] += slots  # make room for the picks
        picks = picks.assign(_order=(position + picks["rank"] - 1).astype(float))
        recs = (pd.concat([recs, picks], ignore_index=True).drop_duplicates(["user_id", "item_id"])
                .sort_values(["user_id", "_order"], kind="stable"))
        recs["rank"] = (recs.groupby("user_id", sort=False).cumcount() + 1).astype(np.int32)
        return recs[recs["rank"] <= k].drop(columns="_order")


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
    recs = candidates.merge(products[["item_id", "category", "rx_only", "kind"]], on="item_id", how="left")
    if exclude_rx_only:
        recs = recs[~recs.rx_only.fillna(False).astype(bool)]
    if bought is not None and one_time_kinds:
        once = recs.kind.isin(one_time_kinds)
        already = recs[["user_id", "item_id"]].merge(bought[["user_id", "item_id"]].drop_duplicates(),
                                                     how="left", indicator=True)
        recs = recs[~(once.to_numpy() & (already._merge == "both").to_numpy())]
    recs = recs.sort_values(["user_id", "rank"], kind="stable")
    if max_per_category:
        recs = recs[recs.groupby(["user_id", "category"], dropna=False).cumcount() < max_per_category]
    recs = recs.assign(rank=recs.groupby("user_id").cumcount() + 1)
    return recs[recs["rank"] <= k].drop(columns=["category", "rx_only", "kind"]).reset_index(drop=True)
