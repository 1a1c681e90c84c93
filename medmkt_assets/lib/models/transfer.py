"""How a planned campaign borrows from past ones, and which way of borrowing to trust.

A planned campaign has no outcomes of its own, so its model learns from past campaigns' treated
contacts, in one of three ways (STRATEGIES):
- `most_similar`: only the past campaign(s) most like it by target category, channel and purpose
  (the next most similar joins until the rows can train a model);
- `similarity_weighted`: every past campaign, each contact weighted by its campaign's similarity;
- `pooled`: every past campaign alike;
and with one of two feature sets: `patient` (how much, how often and how recently a patient buys and
engages, POOLED_COLUMNS) or `patient_x_campaign` (recency, frequency and monetary value with what the
patient's history says of the campaign's own category, TARGET_COLUMNS: its share of their spend,
their spend, their events and their order lines and events in it). Counts and amounts enter on a
log scale, as everywhere in medmkt.

Which way transfers is measured, not assumed: leave one past campaign out, train on the others as
the candidate says (similarity to the held-out campaign), score its contacts and take the AUC on
what they did. The champion is the simplest candidate (CANDIDATES order) within one standard error
of the best mean AUC, the error of the gap paired by held-out campaign: the rule
lib.models.propensity.choose_champion applies to model families. The BASELINE, a plain logistic
regression on recency, frequency, monetary value and category affinity learnt from the most
similar past campaign, is the simplest candidate, so the champion is never below it by more than
the noise.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer

from medmkt_assets.lib.models.propensity import (
    FIT_JOBS,
    MIN_CLASS_ROWS,
    MODEL_NAMES,
    POOLED_COLUMNS,
    TARGET_COLUMNS,
    make_model,
    stratified_cap,
)

STRATEGIES = ("most_similar", "similarity_weighted", "pooled")
BASELINE_COLUMNS = ("recency_days", "frequency", "monetary", "target_share")
WEIGHT_FLOOR = 0.25  # similarity-weighted pooling: an unlike campaign still counts a quarter of a like one


@dataclass(frozen=True)
class CampaignProfile:
    """What makes two campaigns alike: its purpose, channel and target category."""

    campaign_id: str
    purpose: str | None
    channel: str | None
    category: str | None


def similarity(a: CampaignProfile, b: CampaignProfile) -> float:
    """0 to 1: the target category counts twice (what is offered), channel and purpose once each."""
    return (2 * (a.category == b.category) + (a.channel == b.channel) + (a.purpose == b.purpose)) / 4


@dataclass(frozen=True)
class Candidate:
    """One way to build a planned campaign's model: which past contacts, which features, which family."""

    strategy: str
    family: str
    features: str  # "baseline", "patient" or "patient_x_campaign"

    @property
    def name(self) -> str:
        return "baseline" if self.features == "baseline" else f"{self.family} · {self.strategy} · {self.features}"

    def columns(self, available: list[str]) -> list[str]:
        if self.features == "baseline":
            return list(BASELINE_COLUMNS)
        if self.features == "patient_x_campaign":
            return [*BASELINE_COLUMNS[:3], *TARGET_COLUMNS]
        return [c for c in available if c in POOLED_COLUMNS]


BASELINE = Candidate("most_similar", "logistic_regression", "baseline")
# Simplest first: the baseline, then logistic regression with each feature set and strategy, then
# the other families with the campaign-aware features.
CANDIDATES = (BASELINE,
              *(Candidate(s, "logistic_regression", f) for f in ("patient", "patient_x_campaign") for s in STRATEGIES),
              *(Candidate(s, m, "patient_x_campaign") for m in MODEL_NAMES[1:] for s in STRATEGIES))


def profiles_of(rows: pd.DataFrame) -> dict[str, CampaignProfile]:
    """Each campaign's profile from campaign_id, campaign_purpose, campaign_channel and target_category."""
    first = rows.drop_duplicates("campaign_id")
    return {r.campaign_id: CampaignProfile(r.campaign_id, r.campaign_purpose, r.campaign_channel, r.target_category)
            for r in first.itertuples()}


def _trainable(y: np.ndarray) -> bool:
    counts = np.bincount(np.asarray(y, dtype=int), minlength=2)
    return len(y) > 0 and counts.min() >= 2 * MIN_CLASS_ROWS


def training_rows(past: pd.DataFrame, profiles: dict[str, CampaignProfile], target: CampaignProfile,
                  strategy: str) -> tuple[pd.DataFrame, np.ndarray | None, str]:
    """The treated contacts `strategy` learns from for `target`, their weights (None: equal) and the
    basis in words. `past` holds only other campaigns' treated contacts."""
    alike = {cid: similarity(profiles[cid], target) for cid in past.campaign_id.unique()}
    if strategy == "most_similar":
        chosen: list[str] = []
        for level in sorted(set(alike.values()), reverse=True):
            chosen += sorted(cid for cid, s in alike.items() if s == level)
            rows = past[past.campaign_id.isin(chosen)]
            if _trainable(rows.converted.to_numpy()):
                break
        return rows, None, f"most similar past campaign(s): {', '.join(chosen)}"
    if strategy == "similarity_weighted":
        weights = past.campaign_id.map(alike).to_numpy(dtype=float) + WEIGHT_FLOOR
        return past, weights, "every past campaign, weighted by similarity"
    if strategy == "pooled":
        return past, None, "every past campaign alike"
    raise ValueError(f"unknown strategy {strategy!r}; choose from {', '.join(STRATEGIES)}")


def log_scale(X: pd.DataFrame) -> pd.DataFrame:
    """log(1 + x) of every (non-negative) input: counts and amounts are skewed, shares barely change."""
    return np.log1p(X.clip(lower=0))


def fit_candidate(candidate: Candidate, rows: pd.DataFrame, weights: np.ndarray | None, available: list[str],
                  seed: int) -> Pipeline:
    """The candidate's model (its inputs on a log scale, then the family's pipeline) fitted on `rows`,
    the sample weights passed to the family's estimator."""
    family = make_model(candidate.family, seed)
    model = Pipeline([("log_scale", FunctionTransformer(log_scale, feature_names_out="one-to-one")),
                      ("model", family)])
    extra = {f"model__{family.steps[-1][0]}__sample_weight": weights} if weights is not None else {}
    return model.fit(rows[candidate.columns(available)], rows.converted.to_numpy(dtype=int), **extra)


def _held_out_auc(candidate: Candidate, past: pd.DataFrame, held: pd.DataFrame, profiles: dict,
                  available: list[str], seed: int) -> tuple[np.ndarray, int]:
    rows, weights, _ = training_rows(past, profiles, profiles[held.campaign_id.iloc[0]], candidate.strategy)
    model = fit_candidate(candidate, rows, weights, available, seed)
    return model.predict_proba(held[candidate.columns(available)])[:, 1], len(rows)


@dataclass(frozen=True)
class Transfer:
    """The leave-one-campaign-out study: per held-out campaign and candidate (`table`), per candidate
    (`scorecard`), the champion and why, and each candidate's held-out scores (for calibration and
    gain plots) beside the outcomes `y`."""

    table: pd.DataFrame
    scorecard: pd.DataFrame
    champion: Candidate
    why: str
    y: np.ndarray
    scores: dict[str, np.ndarray]

    def metric(self, candidate: Candidate, column: str) -> float:
        return float(self.scorecard.set_index("candidate").loc[candidate.name, column])


def held_out_campaigns(treated: pd.DataFrame) -> list[str]:
    """Past campaigns that can be held out: both outcomes among their treated contacts, and enough
    other campaigns' contacts left to train on."""
    codes, campaigns = pd.factorize(treated.campaign_id, sort=True)
    y = treated.converted.to_numpy(dtype=int)
    every = np.bincount(y, minlength=2)
    out = []
    for k, cid in enumerate(campaigns):
        own = np.bincount(y[codes == k], minlength=2)
        if own.min() >= MIN_CLASS_ROWS and len(y) > own.sum() and (every - own).min() >= 2 * MIN_CLASS_ROWS:
            out.append(cid)
    return out


def leave_one_campaign_out(treated: pd.DataFrame, available: list[str], seed: int = 42,
                           max_rows: int = 8000) -> Transfer | None:
    """Every candidate trained without each past campaign in turn and judged on it; None when fewer
    than two past campaigns can be held out (no spread to judge a transfer by)."""
    held = held_out_campaigns(treated)
    if len(held) < 2:
        return None
    profiles = profiles_of(treated)
    # only what the candidates read goes to the workers (each task is pickled with its rows)
    needed = ["campaign_id", "converted", *dict.fromkeys(col for c in CANDIDATES for col in c.columns(available))]
    codes, campaigns = pd.factorize(treated.campaign_id)
    converted = treated.converted.to_numpy()
    tests, pasts = {}, {}
    for cid in held:
        own = codes == campaigns.get_loc(cid)
        test, past = np.flatnonzero(own), np.flatnonzero(~own)
        tests[cid] = treated.iloc[test[stratified_cap(converted[test], max_rows, seed)]][needed]
        pasts[cid] = treated.iloc[past[stratified_cap(converted[past], max_rows, seed)]][needed]
    work = [(cid, c) for cid in held for c in CANDIDATES]
    results = Parallel(n_jobs=FIT_JOBS)(delayed(_held_out_auc)(c, pasts[cid], tests[cid], profiles, available, seed)
                                        for cid, c in work)
    rows, scores = [], {c.name: [] for c in CANDIDATES}
    for (cid, candidate), (score, trained_on) in zip(work, results):
        y = tests[cid].converted.to_numpy(dtype=int)
        scores[candidate.name].append(score)
        rows.append({"held_out": cid, "candidate": candidate.name, "strategy": candidate.strategy,
                     "family": candidate.family, "features": candidate.features, "auc": roc_auc_score(y, score),
                     "contacts": len(y), "conversions": int(y.sum()), "training_rows": trained_on})
    table = pd.DataFrame(rows)
    scorecard, champion, why = choose_transfer(table)
    y = np.concatenate([tests[cid].converted.to_numpy(dtype=int) for cid in held])
    return Transfer(table, scorecard, champion, why, y, {k: np.concatenate(v) for k, v in scores.items()})


def choose_transfer(table: pd.DataFrame) -> tuple[pd.DataFrame, Candidate, str]:
    """Per candidate: mean held-out AUC, the gap to the best and its standard error (paired by
    held-out campaign); the champion is the simplest candidate within one standard error of the best."""
    wide = table.pivot(index="held_out", columns="candidate", values="auc")
    means = wide.mean()
    best = str(means.idxmax())
    gaps = wide[best].to_numpy()[:, None] - wide.to_numpy()
    se = gaps.std(axis=0, ddof=1) / np.sqrt(len(wide)) if len(wide) > 1 else np.full(len(means), np.nan)
    card = pd.DataFrame({"candidate": wide.columns, "mean_auc": means.to_numpy(), "auc_sd": wide.std(ddof=1).to_numpy(),
                         "gap_to_best": gaps.mean(axis=0), "gap_se": se, "campaigns": len(wide)})
    card["within_noise"] = card.gap_to_best <= np.nan_to_num(card.gap_se)
    order = {c.name: i for i, c in enumerate(CANDIDATES)}
    card = card.sort_values("candidate", key=lambda s: s.map(order)).reset_index(drop=True)
    champion = next(c for c in CANDIDATES if card.set_index("candidate").within_noise.get(c.name, False))
    row, top = card.set_index("candidate").loc[champion.name], card.set_index("candidate").loc[best]
    if champion.name == best:
        why = f"{best} transfers best (mean held-out AUC {row.mean_auc:.3f} over {len(wide)} past campaigns)"
    else:
        why = (f"{champion.name} is the simplest candidate within the noise of the best transfer: {best} "
               f"{top.mean_auc:.3f} vs {row.mean_auc:.3f} mean held-out AUC over {len(wide)} past campaigns, "
               f"a gap of {row.gap_to_best:.3f} against a standard error of {row.gap_se:.3f}")
    return card, champion, why
