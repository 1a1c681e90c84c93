"""Choosing and serving the recommender: training rows, candidate evaluation, the champion,
and batch serving under the business rules. The asset only reads and writes the tables.

Patients arrive as small integer `user_id` codes (the warehouse maps them back to
`patient_key`): string keys would cost memory and time in every split and fit.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Iterator

import numpy as np
import pandas as pd

from medmkt_assets.lib.models.rec_metrics import (
    chronological_split,
    evaluate,
    item_reach,
    stratified_split,
)
from medmkt_assets.lib.models.recommenders import (
    EASE,
    ContentBased,
    Hybrid,
    Interactions,
    ItemKNN,
    ItemStatistics,
    Popularity,
    Recommender,
    business_rule_ranks,
)

# Segment popularity is a reported baseline, never the champion: segments are fitted on
# every order, the held-out ones included, so its holdout score is optimistic.
OPTIMISTIC_BASELINE = "popularity_by_segment"
FALLBACK_CHAMPION = "ease_l200"  # serves when there is too little history to evaluate anything


@dataclass(frozen=True)
class Evaluation:
    table: pd.DataFrame                       # one row per (model, split) with every metric
    metrics: dict[str, dict[str, float]]      # model label → metrics as logged (holdout unprefixed)


@dataclass(frozen=True)
class ServingRules:
    k: int = 10
    exclude_rx_only: bool = True
    exclude_seen: bool = True
    one_time_kinds: tuple[str, ...] = ("service", "test")
    max_per_category: int = 4
    new_item_slots: int = 1


def candidates(item_text: pd.Series, segments: pd.Series, half_life_days: float,
               ease_lambdas: list[float]) -> list[Recommender]:
    """Every model fitted and evaluated on each run; the two popularity baselines come first."""
    return [Popularity(), Popularity(by=segments), ItemKNN("cosine"), ItemKNN("jaccard"), ItemKNN("lift"),
            ItemKNN("cosine", half_life_days=half_life_days), ContentBased(item_text),
            *[EASE(lambda_=lam) for lam in ease_lambdas]]


def label(model: Recommender) -> str:
    """The name a model is reported and served under (EASE carries its penalty)."""
    return f"ease_l{model.lambda_:g}" if isinstance(model, EASE) else model.name


def training_rows(interactions: pd.DataFrame, user_ids: pd.Series, max_users: int, seed: int) -> pd.DataFrame:
    """The histories candidates are compared on: every patient's, or a seeded sample of
    `max_users` patients (item-item statistics from a sample rank models as all would)."""
    if user_ids.size <= max_users:
        return interactions
    chosen = user_ids.sample(max_users, random_state=seed)
    return interactions[interactions.user_id.isin(chosen)]


def sample_users(n_users: int, max_users: int, seed: int) -> np.ndarray | None:
    """`training_rows`' seeded choice of patients when they are coded 1..n_users (the asset's codes),
    without their codes in pandas: None when all of them are compared on."""
    if n_users <= max_users:
        return None
    return pd.Series(np.arange(1, n_users + 1)).sample(max_users, random_state=seed).to_numpy()


def empty_evaluation(k: int) -> pd.DataFrame:
    """The evaluation table's columns when nothing could be evaluated."""
    metrics = evaluate(pd.DataFrame(columns=["user_id", "item_id", "rank"]), pd.DataFrame(columns=["user_id", "item_id"]),
                       pd.DataFrame(columns=["user_id", "item_id"]), 0, k=k)
    return pd.DataFrame(columns=["model", "split", *metrics])


def evaluate_candidates(models: list[Recommender], rows: pd.DataFrame, items: pd.Index, *, k: int,
                        holdout_days: int, split_ratio: float, seed: int, eval_users: int) -> Evaluation:
    """Each model fitted on a chronological holdout and a stratified split of `rows`, scored on
    at most `eval_users` test users per split. Each split's training rows are prepared once
    (`Interactions`), so the candidates share its matrices."""
    splits = {}
    for split, (train, test) in {"holdout": chronological_split(rows, holdout_days),
                                 "stratified": stratified_split(rows, split_ratio, seed)}.items():
        if test.empty:
            continue
        users = pd.Series(test.user_id.unique())
        if len(users) > eval_users:
            users = users.sample(eval_users, random_state=seed)
            test = test[test.user_id.isin(users)]
        splits[split] = Interactions(train), test, users, item_reach(train)
    table, metrics = [], {}
    for model in models:
        name, logged = label(model), {}
        for split, (train, test, users, reach) in splits.items():
            fitted = model.fit(train, items=items)
            scores = evaluate(fitted.recommend(users, k=k), test, None, len(items), k=k, reach=reach)
            logged.update({(m if split == "holdout" else f"{split}_{m}"): v for m, v in scores.items()})
            table.append({"model": name, "split": split, **scores})
        metrics[name] = logged
    return Evaluation(pd.DataFrame(table, columns=empty_evaluation(k).columns), metrics)


def ranking_split(evaluation: pd.DataFrame) -> pd.DataFrame:
    """The rows models are ranked on: the chronological holdout, else the stratified split."""
    holdout = evaluation[evaluation.split == "holdout"]
    return holdout if not holdout.empty else evaluation[evaluation.split == "stratified"]


def pick_champion(evaluation: pd.DataFrame, k: int) -> str:
    """The best NDCG@k on the ranking split, the optimistic baseline excluded; ties keep the
    earlier candidate; FALLBACK_CHAMPION when nothing was evaluated."""
    eligible = ranking_split(evaluation)
    eligible = eligible[eligible.model != OPTIMISTIC_BASELINE]
    if eligible.empty:
        return FALLBACK_CHAMPION
    return str(eligible.sort_values(f"ndcg_at_{k}", ascending=False).model.iloc[0])


def serving_policy(champion: Recommender, interactions: pd.DataFrame | ItemStatistics, items: pd.Index,
                   item_text: pd.Series, segments: pd.Series, new_item_slots: int) -> Hybrid:
    """The champion (refitted on every history) with its fallbacks: segment favourites for
    patients without history, content picks for never-bought products; all three fitted on the
    same prepared rows (one users x items matrix), or on every history's item statistics (then
    they hold no user and serve through `ServedRecommender.serve_rows`)."""
    data = interactions if isinstance(interactions, ItemStatistics) else Interactions(interactions)
    champion.fit(data, items=items)
    popularity = Popularity(by=segments).fit(data, items=items)
    content = ContentBased(item_text).fit(data)
    return Hybrid(champion, popularity, content, new_item_slots=new_item_slots)


def allowed_products(products: pd.DataFrame, exclude_rx_only: bool) -> pd.Index:
    """Products that may be recommended; every product when all are prescription-only (the rule
    would leave nothing to offer, so it is not applied)."""
    allowed = products[~products.rx_only.fillna(False)].item_id if exclude_rx_only else products.item_id
    return pd.Index(products.item_id if allowed.empty else allowed)


def serve(policy: Hybrid, user_ids: pd.Series, products: pd.DataFrame, interactions: pd.DataFrame,
          segments: pd.Series, rules: ServingRules, champion_label: str, batch_size: int) -> Iterator[pd.DataFrame]:
    """Top-k lists (user_id, rank, product_id, score, model) for every user, `batch_size` users at
    a time so memory stays bounded; the champion's rows carry its label. product_id is the
    products' item_id (the item codes the models were fitted on)."""
    allowed = allowed_products(products, rules.exclude_rx_only)
    bought = interactions[["user_id", "item_id"]] if not rules.exclude_seen else None
    for start in range(0, len(user_ids), batch_size):
        batch = user_ids.iloc[start:start + batch_size]
        lists = policy.ranked(batch, k=3 * rules.k, groups=segments,  # room for the category cap
                              exclude_seen=rules.exclude_seen, allowed=allowed)
        ranks = business_rule_ranks(lists, products, k=rules.k, exclude_rx_only=rules.exclude_rx_only,
                                    max_per_category=rules.max_per_category,
                                    bought=bought[bought.user_id.isin(batch)] if bought is not None else None,
                                    one_time_kinds=rules.one_time_kinds)
        lists.models[:] = [champion_label if m == policy.main.name else m for m in lists.models]
        final = lists.frame(ranks).rename(columns={"item_id": "product_id"})
        yield final[["user_id", "rank", "product_id", "score", "model"]]


SERVED_EMPTY = pd.DataFrame({"user_id": pd.Series(dtype="int64"), "rank": pd.Series(dtype="int32"),
                             "product_id": pd.Series(dtype="int64"), "score": pd.Series(dtype="float64"),
                             "model": pd.Series(dtype=object)})


@dataclass
class ServedRecommender:
    """Everything marts.recommendations is served from, as one object: the fitted policy, the
    business rules, the catalogue and the segment of each user. The registered MLflow model is
    this object, so a patient served from MLflow gets exactly the list the warehouse published."""
    policy: Hybrid
    products: pd.DataFrame
    segments: pd.Series                 # user_id -> segment label
    rules: ServingRules
    champion_label: str
    bought: pd.DataFrame                # (user_id, item_id) pairs; empty unless exclude_seen is off
    product_ids: pd.Series | None = None  # item_id -> product_id when the models were fitted on item codes

    @classmethod
    def build(cls, policy: Hybrid, products: pd.DataFrame, segments: pd.Series, rules: ServingRules,
              champion_label: str, interactions: pd.DataFrame,
              product_ids: pd.Series | None = None) -> "ServedRecommender":
        bought = interactions[["user_id", "item_id"]].drop_duplicates() if not rules.exclude_seen \
            else interactions[["user_id", "item_id"]].iloc[:0]
        return cls(policy, products, segments, rules, champion_label, bought.reset_index(drop=True), product_ids)

    def batches(self, user_ids: pd.Series, batch_size: int, k: int | None = None) -> Iterator[pd.DataFrame]:
        """Top-k lists (user_id, rank, product_id, score, model), batch_size users at a time."""
        rules = self.rules if k is None else replace(self.rules, k=k)
        return serve(self.policy, user_ids, self.products, self.bought, self.segments, rules, self.champion_label,
                     batch_size)

    def serve_rows(self, rows: pd.DataFrame, k: int | None = None) -> pd.DataFrame:
        """Top-k lists (user_id, rank, product_id, score, model) of the users in `rows`, from their own
        rows: every order line of each user (user_id, item_id, weight, timestamp) with the user's
        segment_label, and one row without an item for a user who bought nothing. The policy is
        rebound to these users (`Hybrid.rebind`), so each list is the one a server holding every
        history gives that user: a policy fitted on item statistics serves anywhere the rows are
        (the Spark executors), users in any grouping."""
        users = pd.Series(np.sort(rows.user_id.unique()))
        groups = rows.drop_duplicates("user_id").set_index("user_id").segment_label
        history = rows[rows.item_id.notna()]
        history = history.assign(item_id=history.item_id.astype(self.products.item_id.dtype))
        rules = self.rules if k is None else replace(self.rules, k=k)
        lists = list(serve(self.policy.rebind(history, groups), users, self.products, history, groups, rules,
                           self.champion_label, max(len(users), 1)))
        return pd.concat(lists, ignore_index=True) if lists else SERVED_EMPTY.copy()

    def recommend(self, user_ids, k: int | None = None) -> pd.DataFrame:
        """One frame for these users, in the recommenders' column names (item_id, the product's own id)."""
        users = pd.Series(list(user_ids))
        lists = pd.concat(list(self.batches(users, max(len(users), 1), k)), ignore_index=True)
        if self.product_ids is not None:
            lists["product_id"] = lists.product_id.map(self.product_ids)
        return lists.rename(columns={"product_id": "item_id"})
