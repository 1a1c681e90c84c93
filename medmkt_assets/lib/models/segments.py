"""Patient segmentation: K-means and scalable Ward clustering, compared, with readable labels.

The transform (log of skewed counts and money, then scaling) is fitted once and kept in
the same scikit-learn pipeline as the clusterer, so scoring new patients reuses it.
Model choice never needs an n×n distance matrix: k is chosen by silhouette on a sample
(near-ties go to the k nearest the elbow of the inertia curve), and Ward runs over K-means
micro-clusters whose centres stand in for the patients they hold.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClusterMixin
from sklearn.cluster import AgglomerativeClustering, KMeans, MiniBatchKMeans
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.metrics import adjusted_rand_score, pairwise_distances_chunked, silhouette_score
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

from medmkt_assets.lib.models.features import LOG_COLUMNS

# Silhouettes closer than this are a tie, broken by the elbow (k) or by stability (method).
SILHOUETTE_TIE = 0.02


# Context features (diagnoses, surveys) describe a patient but are sparse and noisy; they
# count half as much as behaviour so they refine segments rather than split them.
CONTEXT_WEIGHT = 0.5


def is_context(column: str) -> bool:
    return column.startswith("cond__") or column in ("satisfaction", "has_survey", "chronic_conditions")


def make_transform(columns: list[str]) -> ColumnTransformer:
    """log1p for skewed columns, median imputation for gaps, unit variance, context down-weighted."""
    logged = [c for c in columns if c in LOG_COLUMNS]
    context = [c for c in columns if is_context(c)]
    rest = [c for c in columns if c not in LOG_COLUMNS and not is_context(c)]

    def scaled() -> Pipeline:
        return make_pipeline(SimpleImputer(strategy="median", keep_empty_features=True), StandardScaler())
    return ColumnTransformer([
        ("log", make_pipeline(FunctionTransformer(np.log1p, feature_names_out="one-to-one"),
                              StandardScaler()), logged),
        ("behaviour", scaled(), rest),
        ("context", scaled(), context),
    ], transformer_weights={"log": 1.0, "behaviour": 1.0, "context": CONTEXT_WEIGHT},
        verbose_feature_names_out=False)


class MicroWard(BaseEstimator, ClusterMixin):
    """Ward clustering that scales: Ward over K-means micro-cluster centres, weighted by size.

    Each micro-cluster centre is repeated in proportion to its size (at most 20 copies)
    so large groups pull the dendrogram as they would with every patient present.
    """

    def __init__(self, n_clusters: int = 5, n_micro: int = 200, random_state: int = 0):
        self.n_clusters = n_clusters
        self.n_micro = n_micro
        self.random_state = random_state

    def fit(self, X, y=None):
        n_micro = min(self.n_micro, len(X))
        self.micro_ = MiniBatchKMeans(n_clusters=n_micro, random_state=self.random_state, n_init=3,
                                      batch_size=4096).fit(X)
        sizes = np.bincount(self.micro_.labels_, minlength=n_micro)
        copies = np.clip(np.round(20 * sizes / max(sizes.max(), 1)), 1, 20).astype(int)
        centres = np.repeat(self.micro_.cluster_centers_, copies, axis=0)
        owner = np.repeat(np.arange(n_micro), copies)
        ward = AgglomerativeClustering(n_clusters=min(self.n_clusters, n_micro), linkage="ward").fit(centres)
        # a micro-cluster goes where most of its copies went
        votes = pd.crosstab(owner, ward.labels_)
        self.micro_to_segment_ = votes.idxmax(axis=1).reindex(range(n_micro)).to_numpy()
        self.labels_ = self.micro_to_segment_[self.micro_.labels_]
        self.cluster_centers_ = np.vstack([X[self.labels_ == s].mean(axis=0) if (self.labels_ == s).any()
                                           else np.zeros(X.shape[1]) for s in range(self.n_clusters)])
        return self

    def predict(self, X):
        return self.micro_to_segment_[self.micro_.predict(X)]


class Segmenter(BaseEstimator):
    """The published model: buyers go through the fitted pipeline, non-buyers to their own segment."""

    def __init__(self, pipeline: Pipeline, columns: list[str], no_purchase_segment: int):
        self.pipeline = pipeline
        self.columns = columns
        self.no_purchase_segment = no_purchase_segment

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        buyers = _buyers(X)
        labels = np.full(len(X), self.no_purchase_segment, dtype=np.int64)
        if buyers.any():
            labels[buyers] = self.pipeline.predict(X.loc[buyers, self.columns])
        return labels


def _buyers(X: pd.DataFrame) -> np.ndarray:
    return (X["frequency"] > 0).to_numpy() if "frequency" in X.columns else np.ones(len(X), bool)


@dataclass
class SegmentationResult:
    method: str
    k: int
    model: Segmenter
    labels: np.ndarray
    metrics: dict[str, float]
    k_scan: pd.DataFrame                          # k, inertia, silhouette (K-means)
    comparison: pd.DataFrame                      # method, silhouette, stability
    sample_index: np.ndarray = field(repr=False)  # rows (of the input) used for silhouettes and plots
    sample_transformed: np.ndarray = field(repr=False)
    sample_labels: np.ndarray = field(repr=False)


def _kmeans(k: int, seed: int) -> KMeans:
    return KMeans(n_clusters=k, n_init=4, random_state=seed)


def elbow_k(k_scan: pd.DataFrame) -> int:
    """The k where the inertia curve bends most (largest second difference)."""
    if len(k_scan) < 3:
        return int(k_scan.k.iloc[0])
    inertia = k_scan.inertia.to_numpy()
    bend = inertia[:-2] - 2 * inertia[1:-1] + inertia[2:]
    return int(k_scan.k.iloc[1 + int(np.argmax(bend))])


def choose_k(k_scan: pd.DataFrame, tolerance: float = SILHOUETTE_TIE) -> int:
    """The silhouette decides; among the ks within `tolerance` of the best, the one nearest the elbow."""
    near_best = k_scan[k_scan.silhouette >= k_scan.silhouette.max() - tolerance]
    elbow = elbow_k(k_scan)
    return int(near_best.k.iloc[int(np.argmin(np.abs(near_best.k.to_numpy() - elbow)))])


def choose_method(comparison: pd.DataFrame, tolerance: float = SILHOUETTE_TIE) -> int:
    """Index of the published method: the best silhouette, unless a method within `tolerance`
    of it is more stable across bootstrap samples (a segmentation that moves is no use)."""
    near_best = comparison[comparison.silhouette >= comparison.silhouette.max() - tolerance]
    return int(near_best.stability_ari.idxmax())


def stability(make_model, Z: np.ndarray, seed: int, rounds: int = 3, fit_size: int = 20_000) -> float:
    """Mean adjusted Rand index between models fitted on bootstrap samples, compared on all rows."""
    rng = np.random.default_rng(seed)
    predictions = []
    for r in range(rounds):
        rows = rng.choice(len(Z), size=min(fit_size, len(Z)), replace=True)
        predictions.append(make_model(seed + r + 1).fit(Z[rows]).predict(Z))
    scores = [adjusted_rand_score(predictions[i], predictions[j])
              for i in range(rounds) for j in range(i + 1, rounds)]
    return float(np.mean(scores))


# Distances between the sampled patients are kept for all silhouettes when they take at most this
# much memory (silhouette_score's own working memory computes them at once up to that size too).
SILHOUETTE_MEMORY = 1024 * 2**20


def sample_distances(X: np.ndarray) -> np.ndarray | None:
    """Euclidean distances between the rows of X as silhouette_score computes them (scikit-learn's
    chunks, the diagonal zero), to score every labelling of the same rows from one computation;
    None when they would take more than SILHOUETTE_MEMORY."""
    if 8 * len(X) ** 2 > SILHOUETTE_MEMORY:
        return None
    chunks = list(pairwise_distances_chunked(X))
    return chunks[0] if len(chunks) == 1 else np.vstack(chunks)


def silhouette(X: np.ndarray, labels: np.ndarray, distances: np.ndarray | None = None) -> float:
    """silhouette_score(X, labels), from `distances` (sample_distances(X)) when given: the same number."""
    return float(silhouette_score(distances, labels, metric="precomputed") if distances is not None
                 else silhouette_score(X, labels))


def segment_patients(features: pd.DataFrame, k_range: tuple[int, int] = (3, 8), sample_size: int = 10_000,
                     seed: int = 42) -> SegmentationResult:
    """Fit both methods over k_range on buyers, keep the better one, and label every row.

    Patients with no purchases yet share nothing to cluster on but their age; they get a
    segment of their own (id k), so every patient has a segment.
    """
    buyers = _buyers(features)
    if buyers.sum() < 3:
        raise ValueError(f"segmentation needs at least 3 patients with orders, found {int(buyers.sum())}")
    # events per category are campaign models' interest signals; segments describe what patients buy
    columns = [c for c in features.columns if c != "has_orders" and not c.startswith("evt__")]
    everyone = features
    features = features.loc[buyers, columns]
    transform = make_transform(columns)
    Z = transform.fit_transform(features)
    rng = np.random.default_rng(seed)
    sample = np.sort(rng.choice(len(Z), size=min(sample_size, len(Z)), replace=False))
    ks = [k for k in range(k_range[0], k_range[1] + 1) if 2 <= k < len(sample)] or [2]
    Z_sample = Z[sample]
    distances = sample_distances(Z_sample)

    scan = []
    for k in ks:
        model = _kmeans(k, seed).fit(Z_sample)
        labels = model.labels_
        score = silhouette(Z_sample, labels, distances) if len(set(labels)) > 1 else -1.0
        scan.append({"k": k, "inertia": float(model.inertia_), "silhouette": float(score)})
    k_scan = pd.DataFrame(scan)
    k = choose_k(k_scan)

    candidates = {
        "kmeans": lambda s: _kmeans(k, s),
        "ward": lambda s: MicroWard(n_clusters=k, random_state=s),
    }
    rows, fitted = [], {}
    for method, make in candidates.items():
        model = make(seed).fit(Z)
        labels = model.labels_
        score = silhouette(Z_sample, labels[sample], distances) if len(set(labels[sample])) > 1 else -1.0
        rows.append({"method": method, "k": k, "silhouette": float(score),
                     "stability_ari": stability(make, Z, seed)})
        fitted[method] = model
    del distances
    comparison = pd.DataFrame(rows)
    best = comparison.loc[choose_method(comparison)]
    method = str(best.method)
    model = fitted[method]
    pipeline = Pipeline([("transform", transform), ("cluster", model)])
    labels = np.full(len(everyone), k, dtype=np.int64)
    labels[buyers] = model.labels_
    metrics = {"patients_clustered": float(buyers.sum()), "patients_without_orders": float((~buyers).sum()),"k": float(k), "elbow_k": float(elbow_k(k_scan)), "silhouette": float(best.silhouette),
               "stability_ari": float(best.stability_ari),
               "inertia": float(((Z - model.cluster_centers_[model.labels_]) ** 2).sum()),
               **{f"{r.method}_silhouette": r.silhouette for r in comparison.itertuples()},
               **{f"{r.method}_stability_ari": r.stability_ari for r in comparison.itertuples()}}
    return SegmentationResult(method, k, Segmenter(pipeline, columns, k), labels, metrics, k_scan, comparison,
                              np.flatnonzero(buyers)[sample], Z_sample, model.labels_[sample])


def _value_tier(monetary: pd.Series) -> pd.Series:
    """High/low value relative to the typical buying segment (median of segment means)."""
    overall = monetary[monetary > 0].median()
    return pd.Series(np.select([monetary <= 0, monetary >= 1.2 * overall, monetary <= 0.8 * overall],
                               ["no purchases yet", "high value", "low value"], "mid value"), index=monetary.index)


def _distinctive(profile_means: pd.DataFrame, prefix: str) -> pd.Series:
    """Per segment, the value (column slug after `<prefix>__`) whose share is highest relative to
    the average segment's share: what sets the segment apart, which need not be what most of its
    patients use (marts.segment_summary shows that as preferred_channel / top_categories)."""
    columns = [c for c in profile_means.columns if c.startswith(f"{prefix}__")]
    if not columns:
        return pd.Series(None, index=profile_means.index, dtype=object)
    lifted = profile_means[columns] / profile_means[columns].mean().replace(0, np.nan)
    return lifted.fillna(0).idxmax(axis=1).str.split("__").str[1]


def distinctive_parts(profile_means: pd.DataFrame) -> pd.DataFrame:
    """What sets each segment apart: its distinctive category and channel (None for a segment
    without purchases). `profile_means` is indexed by segment with columns monetary and the
    `cat__`/`ch__` shares. Published beside the label, never as its words."""
    buyers = profile_means["monetary"] > 0
    return pd.DataFrame({"category": _distinctive(profile_means, "cat").where(buyers, None),
                         "channel": _distinctive(profile_means, "ch").where(buyers, None)})


def label_segments(words: pd.DataFrame) -> pd.Series:
    """Readable labels made of the numbers marts.segment_summary shows, e.g.
    'high value · diabetes care · store · 70-79': the value tier of `avg_monetary` (against the
    median of the buying segments), `top_category` (the most spend), `preferred_channel` (the
    channel most of its patients prefer) and `typical_age_band`. `words` is indexed by segment
    (lib.models.segment_summary.LABEL_WORDS_SQL). Labels are made unique by appending the segment id."""
    tier = _value_tier(words["avg_monetary"].fillna(0.0))
    buyers = words["avg_monetary"].fillna(0.0) > 0
    category = words["top_category"].where(buyers).fillna("").astype(str).str.replace("_", " ")
    channel = words["preferred_channel"].where(buyers).fillna("").astype(str)
    age = words["typical_age_band"].fillna("").astype(str)
    parts = pd.DataFrame({"tier": tier, "category": category, "channel": channel, "age": age})
    labels = parts.apply(lambda r: " · ".join(x for x in (r.tier, r.category, r.channel, r.age) if x), axis=1)
    labels = labels.astype(object)
    duplicated = labels.duplicated(keep=False)
    labels[duplicated] = labels[duplicated] + " #" + labels.index[duplicated].astype(str)
    return labels


def segment_table(keys: pd.Series, features: pd.DataFrame, labels_by_row: np.ndarray,
                  model_name: str) -> pd.DataFrame:
    """marts.patient_segments rows before labelling (segment_label empty: label_segments names each
    segment from what the warehouse says of its members once they are written). Each row carries its
    segment's distinctive category and channel, which marts.segment_summary shows beside the label."""
    means = features.assign(segment_id=labels_by_row).groupby("segment_id").mean(numeric_only=True)
    parts = distinctive_parts(means)
    return pd.DataFrame({"patient_key": keys, "segment_id": labels_by_row.astype("int32"),
                         "segment_label": "",
                         "distinctive_category": parts.category.reindex(labels_by_row).to_numpy(),
                         "distinctive_channel": parts.channel.reindex(labels_by_row).to_numpy(),
                         "model": model_name})
