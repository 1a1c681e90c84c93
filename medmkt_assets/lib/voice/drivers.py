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

import warnings

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
    return fit_all_drivers(responses, (outcome,), factors, min_level, alpha)


def fit_all_drivers(responses: pd.DataFrame, outcomes: tuple[str, ...] = OUTCOMES,
                    factors: tuple[str, ...] = FACTORS, min_level: int = MIN_LEVEL_RESPONDENTS,
                    alpha: float = 0.05) -> pd.DataFrame:
    """`fit_drivers` of each outcome, one after the other in one table; outcomes answered by the same
    respondents share one design matrix and what the fit works out from it alone (`_OlsHc3`)."""
    tables, shared, fits = [], {}, {}
    for outcome in outcomes:
        data = responses.dropna(subset=[outcome])
        key = tuple(data.index)
        if key not in shared:
            shared[key] = _design(data, factors, min_level)
        levels, references, design = shared[key]
        if design is None or len(data) < 2 * design.shape[1]:
            tables.append(pd.DataFrame(columns=list(COLUMNS)))
            continue
        if key not in fits:
            fits[key] = _OlsHc3(design)
        fit = fits[key].fit(data[outcome].astype(float).to_numpy())
        tables.append(_effects(fit, outcome, design, levels, references, alpha))
    return pd.concat(tables, ignore_index=True) if len(tables) > 1 else tables[0]


def _design(data: pd.DataFrame, factors: tuple[str, ...], min_level: int):
    """Each factor's levels, its reference (most common) level, and the design: a constant and one 0/1
    column per other level, factors in order and levels sorted, as pd.get_dummies and sm.add_constant
    lay it out (the column order decides the fit's last bits); None without a factor of two levels."""
    levels = {f: _levels(data[f], min_level) for f in factors if f in data}
    levels = {f: v for f, v in levels.items() if v.nunique() > 1}
    references = {f: v.value_counts().index[0] for f, v in levels.items()}
    if not levels:
        return levels, references, None
    names, blocks = ["const"], []
    for f, v in levels.items():
        codes, kinds = pd.factorize(v.to_numpy(dtype=object), sort=True)
        kept = [i for i, level in enumerate(kinds) if level != references[f]]
        names += [f"{f}={kinds[i]}" for i in kept]
        blocks.append((codes, kept))
    matrix = np.zeros((len(names), len(data)))  # transposed: the design is read column by column (Fortran order)
    matrix[0] = 1.0
    row = 1
    for codes, kept in blocks:
        for i in kept:
            matrix[row] = codes == i
            row += 1
    return levels, references, pd.DataFrame(matrix.T, index=data.index, columns=names, copy=False)


class _OlsHc3:
    """statsmodels' OLS(y, design).fit(cov_type="HC3") for several outcomes on one design.

    Why: the pseudo-inverse (an SVD of respondents x parameters) and the leverage of every respondent
    depend on the design alone, and are most of the fit's time. They are worked out once, by statsmodels'
    own functions on the same arrays, so every fit is what OLS.fit(method="pinv") gives, to the last bit
    (test_voice_shortcuts compares it with statsmodels' fit)."""

    def __init__(self, design: pd.DataFrame):
        import statsmodels.api as sm  # here, not at the top: loading it costs every Dagster process a second
        from statsmodels.regression.linear_model import OLSResults
        from statsmodels.tools.tools import pinv_extended

        self.design, self._sm = design, sm
        self.pinv, singular = pinv_extended(sm.OLS(np.zeros(len(design)), design).wexog)
        self.singular = singular
        self.normalized_cov = np.dot(self.pinv, np.transpose(self.pinv))
        self.rank = np.linalg.matrix_rank(np.diag(singular))
        leverage: list[np.ndarray] = []

        class Results(OLSResults):
            def _abat_diagonal(self, a, b):  # HC3's leverage, the same for every outcome
                if not leverage:
                    leverage.append(super()._abat_diagonal(a, b))
                return leverage[0]

        self._results = Results

    def fit(self, y: np.ndarray):
        from statsmodels.regression.linear_model import RegressionResultsWrapper
        from statsmodels.tools.sm_exceptions import SingularMatrixWarning

        model = self._sm.OLS(y, self.design)
        model.pinv_wexog, model.normalized_cov_params = self.pinv, self.normalized_cov
        model.wexog_singular_values, model.rank = self.singular, self.rank
        if model.rank < model.wexog.shape[1]:
            warnings.warn("The design matrix is rank-deficient. The model parameters are not uniquely determined.",
                          SingularMatrixWarning, stacklevel=2)
        beta = np.dot(model.pinv_wexog, model.wendog)
        if model._df_model is None:
            model._df_model = float(model.rank - model.k_constant)
        if model._df_resid is None:
            model.df_resid = model.nobs - model.rank
        return RegressionResultsWrapper(self._results(model, beta, normalized_cov_params=model.normalized_cov_params,
                                                      cov_type="HC3", cov_kwds=None, use_t=None))


def _effects(fit, outcome: str, design: pd.DataFrame, levels: dict, references: dict, alpha: float) -> pd.DataFrame:
    interval = fit.conf_int(alpha)
    counts = {f: v.value_counts() for f, v in levels.items()}
    rows = []
    for name in design.columns.drop("const"):
        factor, level = name.split("=", 1)
        rows.append({"outcome": outcome, "factor": factor, "level": level, "reference_level": references[factor],
                     "respondents": int(counts[factor].get(level, 0)), "effect": float(fit.params[name]),
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

