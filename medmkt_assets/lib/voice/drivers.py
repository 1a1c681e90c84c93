"""What goes with higher or lower satisfaction and NPS: one regression, effects with intervals.

Raw averages by segment or channel mix their causes (app users are younger; young patients
rate differently), so every factor enters one linear model together: the effect of a level is
the difference in mean score against the factor's reference level (its most common one) with
the other factors held fixed. Scores are bounded and their spread differs between groups, so the
intervals use heteroskedasticity-robust (HC3) standard errors. Levels answered by fewer than
`min_level` respondents are pooled as "other" (an effect of a handful of people is noise, and a
level of 1-10 people is a small cell).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

FACTORS = ("segment", "channel", "category", "facility", "campaign")
OUTCOMES = ("satisfaction", "nps")
MIN_LEVEL_RESPONDENTS = 20
OTHER = "other"
NONE = "none"   # a missing level: no visit found, no campaign contact before the response
MODEL = "ols_hc3"
COLUMNS = ("outcome", "factor", "level", "reference_level", "respondents", "effect", "ci_low", "ci_high",
           "p_value", "model")


def _levels(values: pd.Series, min_level: int) -> pd.Series:
    """Text levels, missing as NONE, rare ones pooled as OTHER."""
    text = values.astype("string").fillna(NONE)
    counts = text.value_counts()
    return text.where(text.map(counts) >= min_level, OTHER)


def fit_drivers(responses: pd.DataFrame, outcome: str, factors: tuple[str, ...] = FACTORS,
                min_level: int = MIN_LEVEL_RESPONDENTS, alpha: float = 0.05) -> pd.DataFrame:
    """One row per non-reference level of each factor: its adjusted effect on `outcome`, a (1-alpha)
    interval and p-value; empty when there are too few responses to fit (fewer than two per parameter)."""
    import statsmodels.api as sm  # here, not at the top: loading it costs every Dagster process a second

    data = responses.dropna(subset=[outcome])
    levels = {f: _levels(data[f], min_level) for f in factors if f in data}
    levels = {f: v for f, v in levels.items() if v.nunique() > 1}
    references = {f: v.value_counts().index[0] for f, v in levels.items()}
    dummies = [pd.get_dummies(v, prefix=f, prefix_sep="=", dtype=float).drop(columns=f"{f}={references[f]}")
               for f, v in levels.items()]
    design = sm.add_constant(pd.concat(dummies, axis=1) if dummies else pd.DataFrame(index=data.index),
                             has_constant="add")
    if not dummies or len(data) < 2 * design.shape[1]:
        return pd.DataFrame(columns=list(COLUMNS))
    fit = sm.OLS(data[outcome].astype(float).to_numpy(), design).fit(cov_type="HC3")
    interval = fit.conf_int(alpha)
    rows = []
    for name in design.columns.drop("const"):
        factor, level = name.split("=", 1)
        rows.append({"outcome": outcome, "factor": factor, "level": level, "reference_level": references[factor],
                     "respondents": int((levels[factor] == level).sum()), "effect": float(fit.params[name]),
                     "ci_low": float(interval.loc[name, 0]), "ci_high": float(interval.loc[name, 1]),
                     "p_value": float(fit.pvalues[name]), "model": MODEL})
    table = pd.DataFrame(rows, columns=list(COLUMNS))
    return table.sort_values(["factor", "effect"], ascending=[True, False], kind="stable").reset_index(drop=True)


def nps_interval(promoters: np.ndarray, detractors: np.ndarray, respondents: np.ndarray,
                 z: float = 1.959964) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """NPS (-100..100) and its normal-approximation interval: with shares p (promoters) and d
    (detractors), Var(p - d) = (p + d - (p - d)^2) / n."""
    n = np.asarray(respondents, float)
    with np.errstate(divide="ignore", invalid="ignore"):
        p, d = np.asarray(promoters) / n, np.asarray(detractors) / n
        half = z * np.sqrt((p + d - (p - d) ** 2) / n)
    nps = 100 * (p - d)
    return nps, np.maximum(nps - 100 * half, -100), np.minimum(nps + 100 * half, 100)

