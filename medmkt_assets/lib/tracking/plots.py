"""Matplotlib figures logged to MLflow as PNG (headless backend; no Dagster here)."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from sklearn.decomposition import PCA  # noqa: E402


def k_scan_plot(k_scan: pd.DataFrame, column: str, chosen: int, title: str):
    figure, axis = plt.subplots(figsize=(5, 3.5))
    axis.plot(k_scan.k, k_scan[column], marker="o")
    axis.axvline(chosen, color="grey", linestyle="--", label=f"chosen k = {chosen}")
    axis.set(xlabel="k (segments)", ylabel=column, title=title)
    axis.legend()
    figure.tight_layout()
    return figure


def projection_plot(points: np.ndarray, labels: np.ndarray, names: dict[int, str] | None = None):
    """Patients on the first two principal components, coloured by segment."""
    xy = PCA(n_components=2, random_state=0).fit_transform(points) if points.shape[1] > 2 else points
    figure, axis = plt.subplots(figsize=(7, 5))
    for segment in np.unique(labels):
        mask = labels == segment
        axis.scatter(xy[mask, 0], xy[mask, 1], s=4, alpha=0.5,
                     label=(names or {}).get(int(segment), str(segment)))
    axis.set(xlabel="PC 1", ylabel="PC 2", title="Segments (sample, first two principal components)")
    axis.legend(fontsize=7, markerscale=3, loc="best")
    figure.tight_layout()
    return figure


def rules_scatter(rules: pd.DataFrame):
    """Support against confidence, coloured by lift."""
    figure, axis = plt.subplots(figsize=(6, 4))
    points = axis.scatter(rules.support, rules.confidence, c=rules.lift, cmap="viridis", s=10)
    figure.colorbar(points, ax=axis, label="lift")
    axis.set(xscale="log", xlabel="support", ylabel="confidence", title="Association rules")
    figure.tight_layout()
    return figure


def calibration_plot(curves: dict[str, tuple[np.ndarray, np.ndarray]]):
    """Observed rate against mean predicted probability per bin, one line per model."""
    figure, axis = plt.subplots(figsize=(5, 5))
    axis.plot([0, 1], [0, 1], color="grey", linestyle="--", label="perfect")
    for name, (predicted, observed) in curves.items():
        axis.plot(predicted, observed, marker="o", label=name)
    axis.set(xlabel="mean predicted probability", ylabel="observed rate", title="Calibration")
    axis.legend(fontsize=8)
    figure.tight_layout()
    return figure


def gain_plot(gains: dict[str, pd.DataFrame], ranked: str = "patients contacted", positives: str = "conversions"):
    """Cumulative share of positives captured by decile, one line per model (axes named for the
    target: conversions of contacted patients, or patients with a condition)."""
    figure, axis = plt.subplots(figsize=(5, 4))
    axis.plot([0, 1], [0, 1], color="grey", linestyle="--", label="random")
    for name, table in gains.items():
        axis.plot(np.r_[0, table.decile / 10], np.r_[0, table.cumulative_gain], marker="o", label=name)
    axis.set(xlabel=f"share of {ranked} (by score)", ylabel=f"share of {positives}", title="Gain")
    axis.legend(fontsize=8)
    figure.tight_layout()
    return figure


def qini_plot(curve: pd.DataFrame):
    """Incremental conversions when targeting by uplift against random targeting (out of fold)."""
    figure, axis = plt.subplots(figsize=(5, 4))
    axis.plot(curve.share_targeted, curve.random, color="grey", linestyle="--", label="random")
    axis.plot(curve.share_targeted, curve.qini, label="by expected uplift")
    axis.set(xlabel="share of past contacts targeted (by expected uplift)", ylabel="incremental conversions",
             title="Qini curve")
    axis.legend(fontsize=8)
    figure.tight_layout()
    return figure

