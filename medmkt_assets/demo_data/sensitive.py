"""The planted sensitive part of the demo world: opioid dependence, its treatment and a care programme.

Drawn from its own random streams after everything else, so every other planted truth stays what it
was. The signal is strong on purpose (world.SENSITIVE_INCIDENT): without the sensitive-data policy
the pipeline would make F11.20 its top disease-risk target and mine "F11.20 -> treatment" rules;
with it, none of this reaches a marketing output, and only the care programme (world.CARE_CAMPAIGN)
sees it, for the patients who consented to it.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from medmkt_assets.demo_data import world as W

SECONDS_PER_DAY = 86_400
MONTH = 30 * SECONDS_PER_DAY
NEVER = np.iinfo(np.int64).max


def _seconds(value: np.datetime64) -> int:
    return int(value.astype("datetime64[s]").astype(np.int64))


def onsets(seed: int, first: int, age: np.ndarray, female: np.ndarray, conditions: np.ndarray,
           deceased: np.ndarray, window_end: int) -> np.ndarray:
    """Onset seconds of W.SENSITIVE_INCIDENT per patient (NEVER: none before the window ends)."""
    _, _, _, intercept, per_decade, female_weight, weights = W.SENSITIVE_INCIDENT
    weight = np.array([weights.get(c[0], 0.0) for c in W.CONDITIONS])
    risk = 1 / (1 + np.exp(-(intercept + per_decade * (age - 60) / 10 + female_weight * female + conditions @ weight)))
    rng = np.random.default_rng([seed, first, 104729])
    years = rng.exponential(1 / -np.log1p(-risk))
    onset = _seconds(W.SENSITIVE_SINCE) + (years * 365 * SECONDS_PER_DAY).astype(np.int64)
    onset[(onset > window_end) | deceased] = NEVER
    return onset


def diagnoses(patient_id: np.ndarray, onset: np.ndarray) -> pd.DataFrame:
    ill = np.flatnonzero(onset != NEVER)
    code, name = W.SENSITIVE_INCIDENT[:2]
    return pd.DataFrame({"patient_id": patient_id[ill], "condition_code": code, "condition_name": name,
                         "diagnosed_at": pd.to_datetime(onset[ill], unit="s").strftime("%Y-%m-%d")})


def treatment_orders(seed: int, first: int, patient_id: np.ndarray, onset: np.ndarray, window_end: int,
                     product_id: str, price: float) -> pd.DataFrame:
    """Monthly fills of the treatment after onset, each month with chance W.SENSITIVE_REFILL; one order
    line each, order ids `R<patient chunk><n>` apart from the other orders'."""
    rng = np.random.default_rng([seed, first, 104743])
    ill = np.flatnonzero(onset != NEVER)
    months = np.maximum((window_end - onset[ill]) // MONTH, 0) + 1
    who = np.repeat(ill, months)
    step = np.arange(len(who)) - np.repeat(np.cumsum(months) - months, months)
    at = onset[who] + step * MONTH + rng.integers(0, 5 * SECONDS_PER_DAY, len(who))
    keep = (rng.random(len(who)) < W.SENSITIVE_REFILL) & (at <= window_end)
    who, at = who[keep], at[keep]
    return pd.DataFrame({
        "order_id": [f"R{first + 1:07d}-{i:06d}" for i in range(len(who))], "line_no": 1,
        "patient_id": patient_id[who], "product_id": product_id,
        "ordered_at": pd.to_datetime(at, unit="s").strftime("%Y-%m-%d %H:%M:%S"), "quantity": 1,
        "unit_price": price, "channel": "store",
        "facility_id": np.char.add("FAC", np.char.zfill(rng.integers(1, 40, len(who)).astype(str), 3)),
    })


def care_consents(seed: int, first: int, patient_id: np.ndarray, onset: np.ndarray,
                  window_end: int) -> pd.DataFrame:
    """W.SENSITIVE_CONSENT of the patients with the condition grant the care programme's purpose."""
    rng = np.random.default_rng([seed, first, 104759])
    ill = np.flatnonzero(onset != NEVER)
    who = ill[rng.random(len(ill)) < W.SENSITIVE_CONSENT]
    at = np.minimum(onset[who] + rng.integers(1, 90, len(who)) * SECONDS_PER_DAY, window_end)
    return pd.DataFrame({"patient_id": patient_id[who], "purpose": W.CARE_CAMPAIGN[2], "channel": "all",
                         "status": "granted", "recorded_at": pd.to_datetime(at, unit="s").strftime("%Y-%m-%d %H:%M:%S")})


def truth(patient_id: np.ndarray, onset: np.ndarray, consents: pd.DataFrame) -> pd.DataFrame:
    """Who has the condition and who consented to the care programme (the tests' truth)."""
    ill = np.flatnonzero(onset != NEVER)
    return pd.DataFrame({"patient_id": patient_id[ill], "condition_code": W.SENSITIVE_INCIDENT[0],
                         "onset": pd.to_datetime(onset[ill], unit="s").strftime("%Y-%m-%d"),
                         "care_consent": np.isin(patient_id[ill], consents.patient_id.to_numpy()).astype(int)})
