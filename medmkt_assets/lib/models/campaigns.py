"""Campaign effect statistics: uplift of a randomized treatment arm over its control arm.

The interval for the difference of two proportions is Newcombe's hybrid score interval
(method 10, from Wilson score intervals of each arm): unlike the Wald interval it stays
inside [-1, 1] and keeps its coverage when conversion rates are small, as they usually
are. The p-value is the pooled two-proportion z-test (two-sided).
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import norm

from medmkt_assets.lib.privacy.suppression import SMALL_CELL_MAX, hide_complement

Z95 = float(norm.ppf(0.975))

# When a ROI is not to be believed as it stands (published as roi_flag, roi_plausible = false; the
# number itself is kept, since the contract publishes it). A fully loaded contact (message or call,
# content, platform, offer) costs more than a tenth of a currency unit; below that the costs are
# incomplete (a campaign once showed CN¥6.90 for 690 contacts and a ROI of 104,088.8 %). A ROI
# above 1,000 % is beyond what direct marketing returns; with an uplift interval that includes
# zero the incremental revenue, and so the ROI, is not distinguishable from noise.
MIN_COST_PER_CONTACT = 0.10
MAX_PLAUSIBLE_ROI = 10.0
ROI_FLAGS = {
    "no_cost": "no cost recorded: ROI undefined",
    "cost_incomplete": f"cost per contact below {MIN_COST_PER_CONTACT:.2f}: costs look incomplete",
    "implausibly_high": f"ROI above {MAX_PLAUSIBLE_ROI:.0%}: check the recorded costs and revenue",
    "uplift_not_significant": "the uplift's 95% interval includes 0: the ROI may be noise",
}

# Shown with the campaign effect assets (dagster/column_schema).
COLUMN_NOTES = {
    "cost": "cost of contacting the treated arm (the control arm is never contacted)",
    "cost_per_contact": "cost / treated patients",
    "roi": "(incremental revenue - cost) / cost; read it with roi_plausible and roi_flag",
    "roi_plausible": "false where the ROI is not to be believed as it stands (see roi_flag)",
    "roi_flag": "why not: " + "; ".join(f"{k} = {v}" for k, v in ROI_FLAGS.items()),
    "suppressed": "true where counts and the measures that would reveal them are hidden (1-10 people)",
}


def roi_flags(cost: pd.Series, treated: pd.Series, roi: pd.Series, ci_low: pd.Series,
              ci_high: pd.Series) -> pd.Series:
    """Why a ROI is not plausible as it stands (a key of ROI_FLAGS), or None; the first reason that applies."""
    with np.errstate(divide="ignore", invalid="ignore"):
        per_contact = np.asarray(cost, float) / np.asarray(treated, float)
    roi, low, high = (np.asarray(v, float) for v in (roi, ci_low, ci_high))
    flags = np.select(
        [np.asarray(cost, float) <= 0, per_contact < MIN_COST_PER_CONTACT, roi > MAX_PLAUSIBLE_ROI,
         (low <= 0) & (high >= 0)],
        ["no_cost", "cost_incomplete", "implausibly_high", "uplift_not_significant"], "")
    return pd.Series(flags, index=cost.index, dtype="string").replace("", pd.NA)


def wilson_interval(successes, trials, z: float = Z95) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval of a proportion (NaN where trials is 0)."""
    x, n = np.asarray(successes, float), np.asarray(trials, float)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = x / n
        centre = (p + z * z / (2 * n)) / (1 + z * z / n)
        half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


def uplift_test(x_treated, n_treated, x_control, n_control, z: float = Z95) -> pd.DataFrame:
    """Rates, uplift, its Newcombe 95% interval and the two-sided p-value, element-wise."""
    x1, n1, x2, n2 = (np.asarray(v, float) for v in (x_treated, n_treated, x_control, n_control))
    with np.errstate(divide="ignore", invalid="ignore"):
        p1, p2 = x1 / n1, x2 / n2
        l1, u1 = wilson_interval(x1, n1, z)
        l2, u2 = wilson_interval(x2, n2, z)
        d = p1 - p2
        low = d - np.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2)
        high = d + np.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)
        pooled = (x1 + x2) / (n1 + n2)
        se = np.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
        p_value = np.where(se > 0, 2 * norm.sf(np.abs(d) / se), np.where(d == 0, 1.0, 0.0))
    return pd.DataFrame({"treated_conversion_rate": p1, "control_conversion_rate": p2, "uplift": d,
                         "uplift_ci_low": low, "uplift_ci_high": high, "p_value": p_value})


def campaign_effects(arms: pd.DataFrame) -> pd.DataFrame:
    """One row per group from per-arm totals.

    `arms` has the group columns plus treated, control (patients), treated_conversions,
    control_conversions, treated_revenue, control_revenue and cost (of contacting the
    treated arm; the control arm is never contacted). Incremental revenue scales the
    revenue-per-patient difference to the treated arm; roi = (incremental revenue - cost) / cost,
    with `roi_flag` (why it is not to be believed as it stands, see ROI_FLAGS) and `roi_plausible`.
    """
    stats = uplift_test(arms.treated_conversions, arms.treated, arms.control_conversions, arms.control)
    out = pd.concat([arms.reset_index(drop=True), stats], axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        per_patient = out.treated_revenue / out.treated - out.control_revenue / out.control
    out["cost"] = out.cost.fillna(0)
    out["incremental_conversions"] = out.uplift * out.treated
    out["incremental_revenue"] = per_patient * out.treated
    out["roi"] = np.where(out.cost > 0, (out.incremental_revenue - out.cost) / out.cost, np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        out["cost_per_contact"] = np.where(out.treated > 0, out.cost / out.treated, np.nan)
    out["roi_flag"] = roi_flags(out.cost, out.treated, out.roi, out.uplift_ci_low, out.uplift_ci_high)
    out["roi_plausible"] = (out.roi_flag.isna() & out.roi.notna()).astype("boolean")
    return out


def suppress_effects(effects: pd.DataFrame, max_small: int = SMALL_CELL_MAX,
                     partition: list[str] | None = None) -> pd.DataFrame:
    """Hide arms of 1..max_small patients, and rates from which 1..max_small converters follow.

    A hidden row keeps its keys and a `suppressed` flag; every measure that could reveal
    a small count (sizes, rates, uplift, revenue, cost) is blanked. With `partition`
    (columns whose rows sum to a total published elsewhere, e.g. the segments of one
    campaign), a lone hidden row takes its smallest sibling with it.
    """
    def small(v: pd.Series) -> pd.Series:
        return v.between(1, max_small)

    out = effects.copy().reset_index(drop=True)
    hide_all = small(out.treated) | small(out.control)
    hide_rates = hide_all | small(out.treated_conversions) | small(out.control_conversions)
    if partition:
        size = out.treated + out.control
        hide_all = hide_complement(hide_all, size, out[partition])
        hide_rates = hide_complement(hide_rates | hide_all, size, out[partition])
    measures = ["treated_conversion_rate", "control_conversion_rate", "uplift", "uplift_ci_low", "uplift_ci_high",
                "p_value", "incremental_conversions", "incremental_revenue", "roi"]
    for column in measures:
        if column in out:
            out[column] = out[column].astype(float).mask(hide_rates)
    for column in ("treated", "control", "cost", "cost_per_contact"):
        if column in out:
            out[column] = out[column].astype("Float64").mask(hide_all)
    for column in ("roi_flag", "roi_plausible"):  # they say something of the hidden rates
        if column in out:
            out[column] = out[column].astype("string" if column == "roi_flag" else "boolean").mask(hide_rates)
    out["suppressed"] = hide_rates
    return out.drop(columns=[c for c in ("treated_conversions", "control_conversions", "treated_revenue",
                                         "control_revenue") if c in out])
