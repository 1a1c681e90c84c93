"""Propensity and risk classifiers: four model families, honest cross-validation, one scorecard.

Every model is a scikit-learn pipeline (imputation and scaling fitted inside each fold)
so evaluation never sees the rows it scores. Folds are grouped and time-aware when the
rows come from several campaigns (train on earlier campaigns, test on the next one);
otherwise stratified folds grouped by patient.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from scipy.stats import rankdata
from sklearn.calibration import CalibratedClassifierCV, calibration_curve
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.metrics import (
    average_precision_score,
    brier_score_loss,
    log_loss,
    roc_auc_score,
)
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import LinearSVC
from sklearn.tree import DecisionTreeClassifier

from medmkt_assets.lib.privacy.suppression import hide_complement, is_small_cell

MODEL_NAMES = ("logistic_regression", "decision_tree", "linear_svm", "gradient_boosting")


def make_model(name: str, seed: int = 42) -> Pipeline:
    """A fresh, unfitted classifier pipeline of the named family, with calibrated probabilities:
    logistic regression and gradient boosting through their log-loss fit, the tree's leaf
    frequencies and the SVM's margins through Platt (sigmoid) calibration on 3 folds."""
    impute = SimpleImputer(strategy="median", keep_empty_features=True)
    if name == "logistic_regression":
        return make_pipeline(impute, StandardScaler(), LogisticRegression(max_iter=2000, C=0.5))
    if name == "decision_tree":
        return make_pipeline(impute, CalibratedClassifierCV(
            DecisionTreeClassifier(max_depth=6, min_samples_leaf=40, random_state=seed), method="sigmoid", cv=3))
    if name == "linear_svm":
        return make_pipeline(impute, StandardScaler(),
                             CalibratedClassifierCV(LinearSVC(C=0.1), method="sigmoid", cv=3))
    if name == "gradient_boosting":
        return make_pipeline(impute, HistGradientBoostingClassifier(
            max_iter=100, learning_rate=0.1, max_leaf_nodes=15, min_samples_leaf=40,
            l2_regularization=1.0, random_state=seed))
    raise ValueError(f"unknown model {name!r}; choose from {', '.join(MODEL_NAMES)}")


MIN_CLASS_ROWS = 10  # a training fold needs this many of each class (calibration splits it in 3)


def _fold_trainable(y: np.ndarray) -> bool:
    counts = np.bincount(y.astype(int), minlength=2)
    return len(counts) == 2 and counts.min() >= MIN_CLASS_ROWS


def folds(y: np.ndarray, groups: np.ndarray, period: np.ndarray | None = None, n_splits: int = 5,
          seed: int = 42) -> list[tuple[np.ndarray, np.ndarray]]:
    """Time-aware folds over periods (e.g. campaigns by start) when there are several, else grouped K-fold.

    With periods p0 < p1 < … each fold trains on all periods before p_i and tests on p_i.
    """
    if period is not None:
        ordered = np.sort(np.unique(period))
        if len(ordered) >= 2:
            splits = [(np.flatnonzero(period < p), np.flatnonzero(period == p)) for p in ordered[1:]]
            splits = [(tr, te) for tr, te in splits
                      if _fold_trainable(y[tr]) and len(np.unique(y[te])) == 2]
            if splits:
                return splits
    n_splits = int(max(2, min(n_splits, np.bincount(y.astype(int)).min())))
    # Stratified by each patient's highest label, every patient's rows in one fold: what
    # sklearn's StratifiedGroupKFold aims at, without its per-group loop (1 s per call at 30,000 patients).
    keys, group_of = np.unique(groups, return_inverse=True)
    label = np.zeros(len(keys), int)
    np.maximum.at(label, group_of, y.astype(int))
    order = np.random.default_rng(seed).permutation(len(keys))
    fold_of_group = np.empty(len(keys), int)
    for value in np.unique(label):
        members = order[label[order] == value]
        fold_of_group[members] = np.arange(len(members)) % n_splits
    fold = fold_of_group[group_of]
    return [(np.flatnonzero(fold != k), np.flatnonzero(fold == k)) for k in range(n_splits)]


def lift_table(y: np.ndarray, score: np.ndarray, bins: int = 10) -> pd.DataFrame:
    """Rate, lift and cumulative gain per score decile (decile 1 = highest scores)."""
    order = np.argsort(-score, kind="stable")
    decile = np.empty(len(y), int)
    decile[order] = np.minimum(np.arange(len(y)) * bins // max(len(y), 1), bins - 1) + 1
    table = (pd.DataFrame({"decile": decile, "y": y}).groupby("decile").y.agg(["size", "sum"])
             .rename(columns={"size": "rows", "sum": "positives"}).reset_index())
    base = y.mean() if len(y) else np.nan
    table["rate"] = table.positives / table.rows
    table["lift"] = table.rate / base if base else np.nan
    table["cumulative_gain"] = table.positives.cumsum() / max(y.sum(), 1)
    return table


def score_metrics(y: np.ndarray, score: np.ndarray) -> dict[str, float]:
    """AUC, PR-AUC, Brier, log loss and top-decile lift (the same names in every run)."""
    y = np.asarray(y).astype(int)
    clipped = np.clip(score, 1e-6, 1 - 1e-6)
    two_classes = len(np.unique(y)) == 2
    return {
        "auc": float(roc_auc_score(y, score)) if two_classes else float("nan"),
        "pr_auc": float(average_precision_score(y, score)) if two_classes else float("nan"),
        "brier": float(brier_score_loss(y, clipped)),
        "log_loss": float(log_loss(y, clipped, labels=[0, 1])),
        "top_decile_lift": float(lift_table(y, score).lift.iloc[0]) if len(y) >= 10 else float("nan"),
        "base_rate": float(y.mean()),
    }


@dataclass
class Evaluation:
    scorecard: pd.DataFrame                   # one row per model: metrics, their fold spread, the gap to the best
    out_of_fold: dict[str, np.ndarray]        # model -> out-of-fold scores (NaN where never tested)
    champion: str
    why: str                                  # why the champion won, in words
    validation: str                           # how the folds were made


def split_description(period: np.ndarray | None, splits: list) -> str:
    """How a model was validated, for MLflow and metadata."""
    if period is not None and len(np.unique(period)) >= 2 and len(splits) and \
            all(np.max(period[tr]) < np.min(period[te]) for tr, te in splits):
        return f"time-ordered: {len(splits)} fold(s), each trained on earlier periods and tested on the next"
    return f"grouped stratified {len(splits)}-fold (no two periods to order)"


def _auc(y: np.ndarray, score: np.ndarray) -> float:
    """ROC AUC as the Mann-Whitney statistic (ties count half, as in roc_auc_score), without the
    input checks that make roc_auc_score slow inside a bootstrap."""
    positives = y == 1
    n1 = positives.sum()
    return float((rankdata(score)[positives].sum() - n1 * (n1 + 1) / 2) / (n1 * (len(y) - n1)))


def auc_gap_noise(y: np.ndarray, best: np.ndarray, other: np.ndarray, draws: int = 60, seed: int = 42,
                  max_rows: int = 5000) -> tuple[float, float]:
    """AUC(best) - AUC(other) on the same rows, and the paired-bootstrap standard error of that gap.

    The bootstrap runs on a sample of at most max_rows rows (class shares kept) and its spread is
    scaled by sqrt(sample / rows) (a standard error shrinks with the square root of the rows):
    a bootstrap over every row would take seconds per model for the same answer.
    """
    gap = roc_auc_score(y, best) - roc_auc_score(y, other)
    sample = stratified_cap(y, max_rows, seed)
    y_s, best_s, other_s = y[sample], best[sample], other[sample]
    rng = np.random.default_rng(seed)
    gaps = []
    for _ in range(draws):
        rows = rng.integers(0, len(y_s), len(y_s))
        if y_s[rows].min() != y_s[rows].max():
            gaps.append(_auc(y_s[rows], best_s[rows]) - _auc(y_s[rows], other_s[rows]))
    if len(gaps) < 2:
        return float(gap), float("nan")
    return float(gap), float(np.std(gaps, ddof=1) * np.sqrt(len(sample) / len(y)))


def choose_champion(y: np.ndarray, out_of_fold: dict[str, np.ndarray], scorecard: pd.DataFrame,
                    seed: int = 42) -> tuple[pd.DataFrame, str, str]:
    """The simplest model (MODEL_NAMES order: logistic regression first) whose AUC is within one
    standard error of the best AUC; a more complex model wins only by more than the noise.

    The gap to the best is paired (same rows, bootstrapped together), so models that err on the
    same rows are not mistaken for different. Returns the scorecard with gap columns, the champion
    and the reason in words.
    """
    best = str(scorecard.sort_values(["auc", "pr_auc"], ascending=False).model.iloc[0])
    tested = ~np.isnan(out_of_fold[best])
    gaps = {m: auc_gap_noise(y[tested], out_of_fold[best][tested], out_of_fold[m][tested], seed=seed)
            if m != best else (0.0, 0.0) for m in scorecard.model}
    card = scorecard.assign(auc_gap_to_best=[gaps[m][0] for m in scorecard.model],
                            auc_gap_se=[gaps[m][1] for m in scorecard.model])
    card["within_noise"] = card.auc_gap_to_best <= card.auc_gap_se.fillna(0)
    simplest = [m for m in MODEL_NAMES if m in set(card.model[card.within_noise])]
    champion = simplest[0]
    row = card.set_index("model").loc[champion]
    if champion == best:
        beaten = card[card.model != best]
        why = (f"{best} has the best AUC ({row.auc:.3f}) and beats every simpler model by more than the noise"
               if (beaten.model.map(MODEL_NAMES.index) < MODEL_NAMES.index(best)).any() else
               f"{best} has the best AUC ({row.auc:.3f}) and is the simplest candidate")
    else:
        top = card.set_index("model").loc[best]
        why = (f"{champion} is the simplest model within the noise of the best AUC: {best} {top.auc:.3f} vs "
               f"{row.auc:.3f}, a gap of {row.auc_gap_to_best:.3f} against a standard error of {row.auc_gap_se:.3f}")
    why += f"; PR-AUC {row.pr_auc:.3f}, log loss {row.log_loss:.4f}, Brier {row.brier:.4f}"
    return card, champion, why


FIT_JOBS = min(4, os.cpu_count() or 1)


def _fit_and_score(name: str, seed: int, X_train: pd.DataFrame, y_train: np.ndarray,
                   X_test: pd.DataFrame) -> np.ndarray:
    return make_model(name, seed).fit(X_train, y_train).predict_proba(X_test)[:, 1]


def evaluate_models(X: pd.DataFrame, y: np.ndarray, groups: np.ndarray, period: np.ndarray | None = None,
                    models: tuple[str, ...] = MODEL_NAMES, seed: int = 42, n_splits: int = 4) -> Evaluation:
    """Cross-validate every model family on the same folds, with the fold-to-fold spread of each
    metric, and choose the champion with `choose_champion`."""
    y = np.asarray(y).astype(int)
    splits = folds(y, np.asarray(groups), period, n_splits=n_splits, seed=seed)
    # every (family, fold) fit is independent: spread them over the machine's cores
    fitted = iter(Parallel(n_jobs=FIT_JOBS)(
        delayed(_fit_and_score)(name, seed, X.iloc[train], y[train], X.iloc[test])
        for name in models for train, test in splits))
    rows, oof = [], {}
    for name in models:
        scores = np.full(len(y), np.nan)
        per_fold = []
        for _, test in splits:
            scores[test] = next(fitted)
            per_fold.append(score_metrics(y[test], scores[test]))
        tested = ~np.isnan(scores)
        spread = pd.DataFrame(per_fold)[["auc", "log_loss"]].std(ddof=1) if len(per_fold) > 1 else None
        rows.append({"model": name, "folds": len(splits), "tested_rows": int(tested.sum()),
                     **score_metrics(y[tested], scores[tested]),
                     "auc_fold_sd": float(spread.auc) if spread is not None else float("nan"),
                     "log_loss_fold_sd": float(spread.log_loss) if spread is not None else float("nan")})
        oof[name] = scores
    scorecard, champion, why = choose_champion(y, oof, pd.DataFrame(rows), seed)
    return Evaluation(scorecard, oof, champion, why, split_description(period, splits))


def calibration(y: np.ndarray, score: np.ndarray, bins: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """Mean predicted probability and observed rate per quantile bin."""
    tested = ~np.isnan(score)
    observed, predicted = calibration_curve(y[tested], score[tested], n_bins=bins, strategy="quantile")
    return predicted, observed


def auc_by_group(y: np.ndarray, score: np.ndarray, groups: pd.Series, min_rows: int = 50) -> pd.DataFrame:
    """AUC within each group (e.g. gender, age band) so a model that serves one group only shows."""
    frame = pd.DataFrame({"y": np.asarray(y).astype(int), "score": score, "group": groups.to_numpy()}).dropna()
    rows = []
    for group, part in frame.groupby("group"):
        ok = len(part) >= min_rows and part.y.nunique() == 2
        rows.append({"group": group, "rows": len(part),
                     "auc": roc_auc_score(part.y, part.score) if ok else np.nan})
    return pd.DataFrame(rows)


def suppress_groups(fairness: pd.DataFrame) -> pd.DataFrame:
    """auc_by_group rows fit to publish: a group of 1-10 patients shows neither its size nor its
    AUC, nor does the sibling its size could be had from (a dimension's rows add up to the
    training rows, which are logged)."""
    small = fairness["rows"].apply(is_small_cell)
    hidden = hide_complement(small, fairness["rows"], fairness[["dimension"]])
    return fairness.assign(rows=fairness["rows"].astype("Float64").mask(hidden),
                           auc=fairness["auc"].astype("Float64").mask(hidden), suppressed=hidden)


class TwoModelUplift:
    """T-learner: one model on the treated arm, one on the control arm; uplift = difference.

    Arms are often small (a control arm of a few hundred), so the base learner is a
    strongly regularized logistic regression: a difference of two noisy models is noisier.
    """

    name = "t_learner_logistic"

    def __init__(self, C: float = 0.05, seed: int = 42):
        self.C = C
        self.seed = seed

    def _base(self) -> Pipeline:
        return make_pipeline(SimpleImputer(strategy="median", keep_empty_features=True), StandardScaler(),
                             LogisticRegression(max_iter=2000, C=self.C))

    def fit(self, X: pd.DataFrame, y: np.ndarray, treated: np.ndarray) -> "TwoModelUplift":
        y, treated = np.asarray(y).astype(int), np.asarray(treated).astype(bool)
        self.treated_ = self._base().fit(X[treated], y[treated])
        self.control_ = self._base().fit(X[~treated], y[~treated])
        return self

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return self.treated_.predict_proba(X)[:, 1] - self.control_.predict_proba(X)[:, 1]


class XLearnerUplift:
    """X-learner (Kunzel et al., 2019): the T-learner's two outcome models impute each contact's
    own effect (a treated patient's outcome minus what the control model expected, and the other
    way round), two ridge regressions learn those effects, and the share of treated contacts
    weighs them. It borrows strength from the larger arm when the control arm is small.
    """

    name = "x_learner_ridge"

    def __init__(self, C: float = 0.05, alpha: float = 10.0, seed: int = 42):
        self.C, self.alpha, self.seed = C, alpha, seed

    def _effect_model(self) -> Pipeline:
        return make_pipeline(SimpleImputer(strategy="median", keep_empty_features=True), StandardScaler(),
                             Ridge(alpha=self.alpha))

    def fit(self, X: pd.DataFrame, y: np.ndarray, treated: np.ndarray) -> "XLearnerUplift":
        y, treated = np.asarray(y).astype(float), np.asarray(treated).astype(bool)
        outcomes = TwoModelUplift(self.C, self.seed).fit(X, y, treated)
        imputed_treated = y[treated] - outcomes.control_.predict_proba(X[treated])[:, 1]
        imputed_control = outcomes.treated_.predict_proba(X[~treated])[:, 1] - y[~treated]
        self.effect_treated_ = self._effect_model().fit(X[treated], imputed_treated)
        self.effect_control_ = self._effect_model().fit(X[~treated], imputed_control)
        self.share_treated_ = float(treated.mean())
        return self

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        # randomized arms: the propensity is the constant treated share
        return (self.share_treated_ * self.effect_control_.predict(X)
                + (1 - self.share_treated_) * self.effect_treated_.predict(X))


UPLIFT_LEARNERS = {TwoModelUplift.name: TwoModelUplift, XLearnerUplift.name: XLearnerUplift}


def _qini(y: np.ndarray, treated: np.ndarray, uplift: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The Qini curve and the random-targeting line, per patient targeted in uplift order."""
    order = np.argsort(-uplift, kind="stable")
    y, t = np.asarray(y)[order].astype(float), np.asarray(treated)[order].astype(bool)
    n_t, n_c = np.cumsum(t), np.cumsum(~t)
    y_t, y_c = np.cumsum(y * t), np.cumsum(y * ~t)
    with np.errstate(divide="ignore", invalid="ignore"):
        qini = y_t - np.where(n_c > 0, y_c * n_t / n_c, 0)
    return qini, (np.linspace(0, qini[-1], len(qini)) if len(qini) else qini)


def qini_curve(y: np.ndarray, treated: np.ndarray, uplift: np.ndarray) -> pd.DataFrame:
    """Incremental conversions captured when targeting by uplift (Qini), against random targeting,
    per share of patients targeted."""
    qini, random = _qini(y, treated, uplift)
    return pd.DataFrame({"share_targeted": np.arange(1, len(qini) + 1) / max(len(qini), 1), "qini": qini,
                         "random": random})


def qini_auc(y: np.ndarray, treated: np.ndarray, uplift: np.ndarray) -> float:
    """Area between the Qini curve and the random line, normalized by the number of rows (> 0:
    targeting by this uplift beats random targeting on these contacts). In numpy alone: a
    bootstrap calls it hundreds of times."""
    qini, random = _qini(y, treated, uplift)
    with np.errstate(invalid="ignore"):
        mean = np.nanmean(qini - random) if len(qini) else float("nan")
    return float(mean / max(len(qini), 1))


def training_rows_for(training: pd.DataFrame, target_category: str | None, channel: str | None,
                      min_rows: int = 200) -> tuple[pd.DataFrame, str]:
    """Treated contacts of past campaigns like the planned one: same category and channel, else same
    category, else every past campaign (the target-share feature carries the category then); each
    with at least min_rows contacts and 2 x MIN_CLASS_ROWS of each outcome (else cross-validation
    has folds without a class)."""
    treated = training[training.arm == "treatment"]
    choices = (
        ("same target category and channel", (treated.target_category == target_category)
         & (treated.campaign_channel == channel)),
        ("same target category", treated.target_category == target_category),
        ("all past campaigns", pd.Series(True, index=treated.index)),
    )
    for basis, mask in choices:
        rows = treated[mask]
        outcomes = np.bincount(rows.converted.astype(int), minlength=2)
        if len(rows) >= min_rows and len(outcomes) == 2 and outcomes.min() >= 2 * MIN_CLASS_ROWS:
            return rows, basis
    return treated.iloc[:0], "no usable past campaign"


def stratified_cap(y: np.ndarray, max_rows: int, seed: int = 42) -> np.ndarray:
    """Row indices of at most max_rows, keeping the class balance (models train on a sample at scale)."""
    if len(y) <= max_rows:
        return np.arange(len(y))
    rng = np.random.default_rng(seed)
    keep = []
    for label in np.unique(y):
        rows = np.flatnonzero(y == label)
        keep.append(rng.choice(rows, size=max(1, round(max_rows * len(rows) / len(y))), replace=False))
    return np.sort(np.concatenate(keep))


# What a pooled model may learn from: how much, how often and how recently a patient buys and
# engages. Age, sex, channel, category and condition columns say who bought in the pooled
# campaigns' categories (women for a women's-health campaign) and would mislead a model for another.
POOLED_COLUMNS = ("has_orders", "recency_days", "frequency", "monetary", "avg_order_value", "distinct_products",
                  "digital_events", "order_lines", "satisfaction", "has_survey")


def campaign_model_columns(columns: list[str], pooled: bool) -> list[str]:
    """Inputs of a campaign model: everything plus the target-category share and spend, or, when past
    campaigns of other categories are pooled, only what means the same for every category
    (category and condition columns would teach the model the old campaigns' categories)."""
    if pooled:
        columns = [c for c in columns if c in POOLED_COLUMNS]
    return [*columns, *TARGET_COLUMNS]


# What campaign models see of the campaign's own category (lib.models.campaign_models.with_target_share).
TARGET_COLUMNS = ("target_share", "target_spend", "target_events", "target_interest")
