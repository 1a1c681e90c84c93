"""Per-campaign model inputs and scoring shared by the propensity and uplift assets.

Which past contacts a planned campaign learns from, the target-category share a pooled
model needs, cross-validated uplift with its Qini, and scoring every patient in batches
so memory stays bounded.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import pandas as pd
from joblib import Parallel, delayed

from medmkt_assets.lib.engine.sql import quote_ident, sql_list, sql_literal
from medmkt_assets.lib.models.campaign_features import target_events_sql, target_share_sql
from medmkt_assets.lib.models.propensity import (
    FIT_JOBS,
    UPLIFT_LEARNERS,
    TwoModelUplift,
    folds,
    qini_auc,
)

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
    """The features plus what they say of the campaign's category (0 where the category has no
    feature column), as lib.models.campaign_features writes them for past contacts:
    `target_share` (share of spend in it), `target_spend` (what they spent in it), `target_events`
    (digital events in it) and `target_interest` (order lines and events in it). A model learnt on
    other categories' campaigns transfers through them, and the products carry affinity times
    activity, which a linear model cannot form from the two apart."""
    share, events = target_share_sql(category, columns), target_events_sql(category, columns)
    shares = features[share] if share in features else 0.0
    counts = features[events] if events in features else 0.0
    return features.assign(target_share=shares, target_spend=shares * features["monetary"], target_events=counts,
                           target_interest=shares * features["order_lines"] + counts)


def uplift_training_rows(training: pd.DataFrame, category: str, min_rows: int) -> tuple[pd.DataFrame, str]:
    """Past contacts of same-category campaigns when there are enough with both arms and both
    outcomes, else every past campaign's; with the basis in words."""
    rows = training[training.target_category == category]
    if len(rows) < min_rows or rows.arm.nunique() < 2 or rows.converted.nunique() < 2:
        return training, POOLED
    return rows, "same target category"


def has_both_arms_and_outcomes(rows: pd.DataFrame) -> bool:
    return not rows.empty and rows.arm.nunique() == 2 and rows.converted.nunique() == 2


def _fold_uplift(learner: type, seed: int, X: pd.DataFrame, y: np.ndarray, treated: np.ndarray,
                 train: np.ndarray, test: np.ndarray) -> np.ndarray:
    return learner(seed=seed).fit(X.iloc[train], y[train], treated[train]).predict(X.iloc[test])


def cross_validated_uplift(X: pd.DataFrame, y: np.ndarray, treated: np.ndarray, patients: np.ndarray,
                           seed: int, learners: dict[str, type] | None = None) -> dict[str, np.ndarray]:
    """Out-of-fold uplift of each of `learners` (default UPLIFT_LEARNERS; 4 folds grouped by patient,
    stratified by arm and outcome): what the Qini of a planned campaign's model is judged on. Every
    (learner, fold) fit is independent: they are spread over the machine's cores."""
    learners = learners or UPLIFT_LEARNERS
    splits = folds(y * 2 + treated, patients, None, n_splits=4, seed=seed)
    fitted = iter(Parallel(n_jobs=FIT_JOBS)(delayed(_fold_uplift)(learner, seed, X, y, treated, train, test)
                                            for learner in learners.values() for train, test in splits))
    oof = {}
    for name in learners:
        oof[name] = np.full(len(y), np.nan)
        for _, test in splits:
            oof[name][test] = next(fitted)
    return oof


def best_uplift_learner(X: pd.DataFrame, y: np.ndarray, treated: np.ndarray, patients: np.ndarray,
                        seed: int) -> tuple[str, dict[str, float], dict[str, np.ndarray]]:
    """Every learner of UPLIFT_LEARNERS judged by its out-of-fold Qini; the T-learner (the simpler)
    unless another beats it. Returns the winner, each learner's Qini and out-of-fold uplift."""
    oof = cross_validated_uplift(X, y, treated, patients, seed)
    qini = {name: qini_auc(y, treated, scores) for name, scores in oof.items()}
    best = max(qini, key=lambda name: (qini[name], name == TwoModelUplift.name))
    return best, qini, oof


QINI_BOOTSTRAPS = 200  # resamples behind a Qini's 95 % interval


def qini_interval(y: np.ndarray, treated: np.ndarray, uplift: np.ndarray, patients: np.ndarray, seed: int,
                  n_boot: int = QINI_BOOTSTRAPS) -> tuple[float, float]:
    """95 % percentile bootstrap interval of the Qini (qini_auc) of fixed out-of-fold scores:
    patients resampled with replacement, each with all their contacts (a patient contacted in
    several past campaigns is one draw). NaN, NaN without two patients."""
    codes, _ = pd.factorize(pd.Series(patients))
    order = np.argsort(codes, kind="stable")  # each patient's rows together: starts[i], sizes[i] long
    starts = np.flatnonzero(np.r_[True, np.diff(codes[order]) != 0]) if len(codes) else np.empty(0, int)
    if len(starts) < 2:
        return float("nan"), float("nan")
    sizes = np.diff(np.r_[starts, len(order)])
    y, treated, uplift = np.asarray(y), np.asarray(treated).astype(bool), np.asarray(uplift, float)
    rng = np.random.default_rng(seed)
    stats = []
    for _ in range(n_boot):
        drawn = rng.integers(0, len(starts), len(starts))
        lengths = sizes[drawn]  # the drawn patients' rows one after another, as positions in `order`
        rows = order[np.repeat(starts[drawn] - np.cumsum(lengths) + lengths, lengths) + np.arange(lengths.sum())]
        stats.append(qini_auc(y[rows], treated[rows], uplift[rows]))
    low, high = np.nanpercentile(stats, [2.5, 97.5])
    return float(low), float(high)


def ranks_by_uplift(qini: float, ci_low: float) -> bool:
    """Whether audiences may be ranked by this model's expected uplift: only when, on past
    contacts it did not learn from, targeting by it clearly beat random targeting: the Qini is
    above 0 and so is the lower end of its 95 % bootstrap interval (a Qini barely above 0 whose
    interval reaches below it is no ranking)."""
    return bool(np.isfinite(qini) and qini > 0 and np.isfinite(ci_low) and ci_low > 0)


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
    per_patient = treated.groupby("patient_key").converted.agg(["sum", "count"])
    history = per_patient.reindex(features.patient_key).fillna(0.0)
    column = target_share_sql(category, columns)
    share = features[column].to_numpy(dtype=float) if column in features else np.zeros(len(features))
    predict = proxy_predictor(category, columns, past_response_rate(past_contacts),
                              float(share.mean()) if len(share) else 0.0)
    return predict(features.assign(_past_conversions=history["sum"].to_numpy(),
                                   _past_treated=history["count"].to_numpy()))


def past_response_rate(past_contacts: pd.DataFrame) -> float:
    """Everyone's conversion rate when treated: the proxy's prior."""
    treated = past_contacts[past_contacts.arm == "treatment"]
    return float(treated.converted.mean()) if len(treated) else 0.0


def proxy_predictor(category: str | None, columns: list[str], overall: float,
                    share_mean: float) -> Callable[[pd.DataFrame], np.ndarray]:
    """proxy_scores as a function of a batch of patients alone, given everyone's response rate and
    mean share: the batch carries each patient's past treated contacts and conversions
    (`_past_treated`, `_past_conversions`, as SCORING_SQL joins them)."""
    column = target_share_sql(category, columns)  # the share column alone: no copy of every feature

    def predict(batch: pd.DataFrame) -> np.ndarray:
        share = batch[column].to_numpy(dtype=float) if column in batch else np.zeros(len(batch))
        if overall == 0:  # no campaign has ever converted anyone: affinity alone ranks
            return np.clip(share, 0, 1)
        response = ((batch["_past_conversions"].to_numpy(dtype=float) + PROXY_PRIOR_CONTACTS * overall)
                    / (batch["_past_treated"].to_numpy(dtype=float) + PROXY_PRIOR_CONTACTS))
        return np.clip(response * (1 + share) / (1 + share_mean), 0, 1)

    return predict


# Every profiled patient's current features with what scoring needs beside them: past treated
# contacts and conversions (the proxy score) and, per condition code of a risk target, whether they
# have been diagnosed with it (`diagnosed_column`: a risk score is not given for a condition one has).
SCORING_SQL = """
SELECT f.*, coalesce(h.treated, 0) AS _past_treated, coalesce(h.conversions, 0) AS _past_conversions{flags}
FROM features.patient_features f JOIN marts.patient_profiles p USING (patient_key)
LEFT JOIN (SELECT patient_key, count(*) AS treated, sum(converted) AS conversions
           FROM features.campaign_training WHERE arm = 'treatment' GROUP BY patient_key) h USING (patient_key){diagnoses}"""
DIAGNOSES_SQL = """
LEFT JOIN (SELECT patient_key, {flags} FROM staging.diagnoses WHERE condition_code IN ({codes})
           GROUP BY patient_key) d USING (patient_key)"""


def diagnosed_column(code: str) -> str:
    """The SCORING_SQL column saying whether a patient has been diagnosed with `code`."""
    return f"_diagnosed:{code}"


def scoring_sql(codes: list[str]) -> str:
    """SCORING_SQL with a diagnosed flag for each of the risk targets' condition codes."""
    if not codes:
        return SCORING_SQL.format(flags="", diagnoses="")
    columns = [quote_ident(diagnosed_column(code)) for code in codes]
    return SCORING_SQL.format(
        flags="".join(f", coalesce(d.{c}, false) AS {c}" for c in columns),
        diagnoses=DIAGNOSES_SQL.format(codes=sql_list(codes), flags=", ".join(
            f"count(*) FILTER (WHERE condition_code = {sql_literal(code)}) > 0 AS {c}"
            for code, c in zip(codes, columns))))


@dataclass(frozen=True)
class Scorer:
    """How one target scores a batch of SCORING_SQL rows, with what was learnt: a pure function of
    the batch, so it runs the same in pandas on the driver (DuckDB) and in Spark's executors."""

    target: str
    model: str
    predict: Callable[[pd.DataFrame], np.ndarray]
    not_for_code: str | None = None  # risk: a patient diagnosed with it gets no score, and the flag

    def apply(self, batch: pd.DataFrame) -> tuple[np.ndarray, np.ndarray | None]:
        scores = np.asarray(self.predict(batch), dtype="float64")
        if self.not_for_code is None:
            return scores, None
        already = batch[diagnosed_column(self.not_for_code)].to_numpy(dtype=bool)
        return np.where(already, np.nan, scores), already


def model_predictor(predict: Callable[[pd.DataFrame], np.ndarray], columns: list[str], category: str | None = None,
                    feature_columns: list[str] | None = None) -> Callable[[pd.DataFrame], np.ndarray]:
    """A fitted model's predict on a batch: its columns, with the campaign's target share added
    when `category` is given (campaign models; from the columns it reads alone, not a copy of the batch)."""
    reads = {*columns, "monetary", "order_lines", target_share_sql(category, feature_columns or []),
             target_events_sql(category, feature_columns or [])}

    def run(batch: pd.DataFrame) -> np.ndarray:
        if category is not None:
            batch = with_target_share(batch[[c for c in batch.columns if c in reads]], category, feature_columns or [])
        return score_in_batches(predict, batch, columns)
    return run


# The long form scorers give a batch in: what Spark's mapInPandas hands back.
LONG_SCORES_SCHEMA = "patient_key string, target string, score double, model string, flag boolean"


def long_scores(batch: pd.DataFrame, scorers: list[Scorer]) -> pd.DataFrame:
    """Every scorer's rows for a batch: patient_key, target, score, model, flag."""
    parts = []
    for scorer in scorers:
        scores, flag = scorer.apply(batch)
        parts.append(pd.DataFrame({
            "patient_key": batch["patient_key"].to_numpy(), "target": scorer.target,
            "score": pd.array(scores, dtype="Float64"),  # NaN (no score) as NULL
            "model": scorer.model,
            "flag": pd.array(flag if flag is not None else [pd.NA] * len(batch), dtype="boolean")}))
    if not parts:
        return pd.DataFrame({"patient_key": pd.Series(dtype=object), "target": pd.Series(dtype=object),
                             "score": pd.array([], dtype="Float64"), "model": pd.Series(dtype=object),
                             "flag": pd.array([], dtype="boolean")})
    return pd.concat(parts, ignore_index=True)


# The rows being scored, kept in the warehouse so the scores need not carry their keys.
SCORING_TABLE = "_medmkt_scoring"


def write_scores(con, sql: str, scorers: list[Scorer], table: str, columns: str) -> None:
    """Score every row of `sql` with every scorer and write `table` as SELECT `columns` over the long
    scores `f` (patient_key, f.target, f.score, f.model, f.flag), in target then row order.

    On DuckDB the rows are kept in a temporary table and only their numbers come to pandas (no key
    strings), scores are kept by row id and the engine joins the keys back (ScoreColumns); on Spark
    the executors score each partition (mapInPandas) and the rows never reach the driver."""
    if con.engine == "spark":
        from medmkt_assets.lib.models import on_spark

        scored = on_spark.map_batches(con.dataframe(sql), lambda batch: long_scores(batch, scorers),
                                          LONG_SCORES_SCHEMA)
        con.register("_medmkt_scores", scored)
        con.execute(f"CREATE OR REPLACE TABLE {table} AS SELECT {columns} FROM _medmkt_scores f "
                    "ORDER BY f.target, patient_key")
        return
    con.execute(f"CREATE OR REPLACE TEMP TABLE {SCORING_TABLE} AS {sql}")
    features = con.execute(f"SELECT rowid AS _row, * EXCLUDE (patient_key) FROM {SCORING_TABLE}").fetchdf()
    outputs = ScoreColumns(features.pop("_row").to_numpy())
    for scorer in scorers:
        scores, flag = scorer.apply(features)
        outputs.add(scorer.target, scorer.model, scores, flag=flag)
    del features
    con.write_frame(outputs.frame(), table, query=ScoreColumns.keyed_sql(
        f"SELECT rowid AS row, patient_key FROM {SCORING_TABLE}", columns))
    con.execute(f"DROP TABLE {SCORING_TABLE}")


class ScoreColumns:
    """Per-patient scores of several targets, kept as arrays beside each patient's row id and
    written in one statement. Millions of rows with a 64-character key each cost more to
    hand to the engine than to compute; here each row carries only its id, and the engine
    joins the keys back (`keyed_sql`)."""

    def __init__(self, rows: np.ndarray):
        self.rows = np.asarray(rows, dtype="int64")
        self.targets: list[str] = []
        self.models: list[str] = []
        self.scores: list[np.ndarray] = []
        self.flags: list[np.ndarray | None] = []

    def add(self, target: str, model: str, scores: np.ndarray, flag: np.ndarray | None = None) -> None:
        if len(scores) != len(self.rows):
            raise ValueError(f"{target}: {len(scores)} scores for {len(self.rows)} patients")
        self.targets.append(target)
        self.models.append(model)
        self.scores.append(np.asarray(scores, dtype="float64"))
        self.flags.append(flag)

    def frame(self) -> pd.DataFrame:
        """row (the patient's row id), target, score, model, flag (NA where a target has none)."""
        n, count = len(self.rows), len(self.targets)
        flags = [np.asarray(f, dtype="float64") if f is not None else np.full(n, np.nan) for f in self.flags]
        flag = np.concatenate(flags) if count else np.empty(0)
        targets, models = sorted(self.targets), sorted(set(self.models))
        return pd.DataFrame({
            "row": np.tile(self.rows, count),
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
        """SELECT `columns` over `frame` joined to the patient keys by row id: `keys_sql` lists
        `row, patient_key`."""
        return f"SELECT {columns} FROM frame f JOIN ({keys_sql}) k USING (row) ORDER BY f.target, f.row"
