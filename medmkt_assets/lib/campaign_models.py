"""Per-campaign model inputs and scoring shared by the propensity and uplift assets.

Which past contacts a planned campaign learns from, the target-category share a pooled
model needs, cross-validated uplift with its Qini, and scoring every patient in batches
so memory stays bounded.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import pandas as pd

from medmkt_assets.lib.campaign_features import target_share_sql
from medmkt_assets.lib.propensity import UPLIFT_LEARNERS, TwoModelUplift, folds, qini_auc

SCORE_BATCH = 200_000
POOLED = "all past campaigns"


def score_in_batches(predict: Callable[[pd.DataFrame], np.ndarray], frame: pd.DataFrame, columns: list[str],
                     batch: int = SCORE_BATCH) -> np.ndarray:
    """predict(frame[columns]) for every row, `batch` rows at a time."""
    if frame.empty:
        return np.empty(0)
    return np.concatenate([predict(frame.iloc[start:start + batch][columns])
                           for start in range(0, len(frame), batch)])


def probabilities(model) -> Callable[[pd.DataFrame], np.ndarray]:
    """A fitted classifier's P(positive) as a predict function."""
    return lambda X: model.predict_proba(X)[:, 1]


def with_target_share(features: pd.DataFrame, category: str, columns: list[str]) -> pd.DataFrame:
    """The features plus `target_share`, the patient's share of spend in the campaign's category (0
    where the category has no feature column), and `target_spend`, what they spent in it: pooled
    models condition on them, and the spend carries affinity times activity, which a linear
    model cannot form from the two apart."""
    share = target_share_sql(category, columns)
    shares = features[share] if share in features else 0.0
    return features.assign(target_share=shares, target_spend=shares * features["monetary"])


def uplift_training_rows(training: pd.DataFrame, category: str, min_rows: int) -> tuple[pd.DataFrame, str]:
    """Past contacts of same-category campaigns when there are enough with both arms and both
    outcomes, else every past campaign's; with the basis in words."""
    rows = training[training.target_category == category]
    if len(rows) < min_rows or rows.arm.nunique() < 2 or rows.converted.nunique() < 2:
        return training, POOLED
    return rows, "same target category"


def has_both_arms_and_outcomes(rows: pd.DataFrame) -> bool:
    return not rows.empty and rows.arm.nunique() == 2 and rows.converted.nunique() == 2


def cross_validated_uplift(X: pd.DataFrame, y: np.ndarray, treated: np.ndarray, patients: np.ndarray,
                           seed: int, learner: type = TwoModelUplift) -> np.ndarray:
    """Out-of-fold uplift of `learner` (4 folds grouped by patient, stratified by arm and outcome):
    what the Qini of a planned campaign's model is judged on."""
    oof = np.full(len(y), np.nan)
    for train, test in folds(y * 2 + treated, patients, None, n_splits=4, seed=seed):
        oof[test] = learner(seed=seed).fit(X.iloc[train], y[train], treated[train]).predict(X.iloc[test])
    return oof


def best_uplift_learner(X: pd.DataFrame, y: np.ndarray, treated: np.ndarray, patients: np.ndarray,
                        seed: int) -> tuple[str, dict[str, float], dict[str, np.ndarray]]:
    """Every learner of UPLIFT_LEARNERS judged by its out-of-fold Qini; the T-learner (the simpler)
    unless another beats it. Returns the winner, each learner's Qini and out-of-fold uplift."""
    oof = {name: cross_validated_uplift(X, y, treated, patients, seed, learner)
           for name, learner in UPLIFT_LEARNERS.items()}
    qini = {name: qini_auc(y, treated, scores) for name, scores in oof.items()}
    best = max(qini, key=lambda name: (qini[name], name == TwoModelUplift.name))
    return best, qini, oof


def ranks_by_uplift(qini: float) -> bool:
    """Whether audiences may be ranked by this model's expected uplift: only when, on past
    contacts it did not learn from, targeting by it beat random targeting (Qini above 0)."""
    return bool(np.isfinite(qini) and qini > 0)


PROXY_MODEL = "proxy_affinity_response"
PROXY_PRIOR_CONTACTS = 5  # past contacts a patient's own response rate needs to outweigh everyone's


def proxy_scores(features: pd.DataFrame, category: str | None, columns: list[str],
                 past_contacts: pd.DataFrame) -> np.ndarray:
    """A planned campaign with nothing like it in the past still gets scores: the patient's past
    response to any campaign (treated contacts, shrunk towards everyone's rate by
    PROXY_PRIOR_CONTACTS pseudo-contacts) times their affinity for the campaign's category (share of
    spend in it, relative to the average patient's). A documented ranking heuristic, not a fitted
    model: rows carry model = PROXY_MODEL so audiences and reviewers can tell.

    `features` has patient_key and the feature columns; `past_contacts` has patient_key, arm and converted.
    """
    treated = past_contacts[past_contacts.arm == "treatment"]
    overall = float(treated.converted.mean()) if len(treated) else 0.0
    per_patient = treated.groupby("patient_key").converted.agg(["sum", "count"])
    history = per_patient.reindex(features.patient_key).fillna(0.0).to_numpy()
    response = (history[:, 0] + PROXY_PRIOR_CONTACTS * overall) / (history[:, 1] + PROXY_PRIOR_CONTACTS)
    column = target_share_sql(category, columns)  # the share column alone: no copy of every feature
    share = features[column].to_numpy(dtype=float) if column in features else np.zeros(len(features))
    affinity = (1 + share) / (1 + share.mean()) if len(share) else share
    if overall == 0:  # no campaign has ever converted anyone: affinity alone ranks
        return np.clip(share, 0, 1)
    return np.clip(response * affinity, 0, 1)


class ScoreColumns:
    """Per-patient scores of several targets, kept as arrays in the patients' key order and
    written in one statement. Millions of rows with a 64-character key each cost more to
    hand to the engine than to compute; here each row carries only its position, and the
    engine joins the keys back (`keyed_sql`)."""

    def __init__(self, patients: int):
        self.patients = patients
        self.targets: list[str] = []
        self.models: list[str] = []
        self.scores: list[np.ndarray] = []
        self.flags: list[np.ndarray | None] = []

    def add(self, target: str, model: str, scores: np.ndarray, flag: np.ndarray | None = None) -> None:
        if len(scores) != self.patients:
            raise ValueError(f"{target}: {len(scores)} scores for {self.patients} patients")
        self.targets.append(target)
        self.models.append(model)
        self.scores.append(np.asarray(scores, dtype="float64"))
        self.flags.append(flag)

    def frame(self) -> pd.DataFrame:
        """row (position in key order), target, score, model, flag (NA where a target has none)."""
        n, count = self.patients, len(self.targets)
        flags = [np.asarray(f, dtype="float64") if f is not None else np.full(n, np.nan) for f in self.flags]
        flag = np.concatenate(flags) if count else np.empty(0)
        targets, models = sorted(self.targets), sorted(set(self.models))
        return pd.DataFrame({
            "row": np.tile(np.arange(n, dtype="int64"), count),
            # categories from codes (sorted, so the table sorts by name): repeating the strings
            # 5 million times would cost seconds
            "target": pd.Categorical.from_codes(np.repeat([targets.index(t) for t in self.targets], n).astype(int),
                                                categories=targets),
            "score": np.concatenate(self.scores) if count else np.empty(0),
            "model": pd.Categorical.from_codes(np.repeat([models.index(m) for m in self.models], n).astype(int),
                                               categories=models),
            "flag": pd.arrays.BooleanArray(flag == 1, np.isnan(flag)),
        })

    @staticmethod
    def keyed_sql(keys_sql: str, columns: str) -> str:
        """SELECT `columns` over `frame` joined to the patient keys by position: `keys_sql` must list
        patient_key in the order the scores were computed in (here: ORDER BY patient_key)."""
        return (f"SELECT {columns} FROM frame f JOIN (SELECT patient_key, row_number() OVER (ORDER BY patient_key) - 1 "
                f"AS row FROM ({keys_sql})) k USING (row) ORDER BY f.target, f.row")
