"""How well planned-campaign scores rank patients, on a demo world where the truth is known.

`python -m medmkt_assets.bench.transfer_study --warehouse W --truth DIR [--key-env MEDMKT_PSEUDONYM_KEY]`

The demo world writes each living patient's true probability of converting if contacted by each
planned campaign (`_truth/planned_propensity.csv`). What they would do is drawn from it `draws`
times; a score's AUC is its mean AUC over the draws, its standard error the spread over them. The
oracle (the true probabilities) sets the ceiling. Beside the published scores, every way of
borrowing from past campaigns (lib.models.transfer.CANDIDATES) is refitted for each planned
campaign and judged the same way: the study issue 34 asked for, and what the tests hold the
published scores to (within 0.03 of the oracle, never below the baseline by more than its error).
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from medmkt_assets.lib.models import transfer
from medmkt_assets.lib.models.campaign_models import with_target_share
from medmkt_assets.lib.privacy.pseudonym import DEVELOPMENT_KEY, pseudonymize

FEATURES_SQL = ("SELECT f.* FROM features.patient_features f SEMI JOIN marts.patient_profiles USING (patient_key) "
                "ORDER BY patient_key")
TREATED_SQL = "SELECT * FROM features.campaign_training WHERE arm = 'treatment' ORDER BY campaign_id, patient_key"
PUBLISHED_SQL = "SELECT patient_key, target AS campaign_id, score FROM marts.propensity_scores WHERE target = ?"
PLANNED_SQL = "SELECT campaign_id, purpose, channel, target_category FROM staging.campaigns WHERE campaign_id = ?"


def draw_auc(scores: np.ndarray, probability: np.ndarray, draws: int = 30, seed: int = 0) -> np.ndarray:
    """AUC of `scores` on each of `draws` outcomes drawn from the true probabilities (same draws
    for every score given the same seed, so gaps between scores are paired)."""
    rng = np.random.default_rng(seed)
    return np.array([roc_auc_score(rng.random(len(probability)) < probability, scores) for _ in range(draws)])


def study(warehouse: str, truth_dir: str, key: str, draws: int = 30,
          candidates: tuple[transfer.Candidate, ...] = transfer.CANDIDATES) -> pd.DataFrame:
    """Per planned campaign: the oracle, the published scores and each of `candidates`, with the mean
    AUC over the draws, its standard error and the gap to the oracle."""
    con = duckdb.connect(warehouse, read_only=True)
    features = con.execute(FEATURES_SQL).fetchdf()
    treated = con.execute(TREATED_SQL).fetchdf()
    columns = [c for c in features.columns if c != "patient_key"]
    truth = pd.read_csv(Path(truth_dir) / "planned_propensity.csv", dtype={"patient_id": str})
    truth["patient_key"] = truth.patient_id.str.strip().map(lambda p: pseudonymize(p, key))
    rows = []
    for campaign_id, part in truth.groupby("campaign_id", sort=True):
        (cid, purpose, channel, category), = con.execute(PLANNED_SQL, [campaign_id]).fetchall()
        planned = transfer.CampaignProfile(cid, purpose, channel, category)
        people = part.merge(features, on="patient_key")
        X = with_target_share(people, category, columns)
        published = con.execute(PUBLISHED_SQL, [campaign_id]).fetchdf().set_index("patient_key").score
        scores = {"oracle": people.probability.to_numpy(),
                  "published": published.reindex(people.patient_key).to_numpy()}
        for candidate in candidates:
            past, weights, _ = transfer.training_rows(treated, transfer.profiles_of(treated), planned,
                                                      candidate.strategy)
            model = transfer.fit_candidate(candidate, past, weights, columns, seed=42)
            scores[candidate.name] = model.predict_proba(X[candidate.columns(columns)])[:, 1]
        aucs = {name: draw_auc(s, people.probability.to_numpy(), draws) for name, s in scores.items()}
        for name, auc in aucs.items():
            rows.append({"campaign_id": campaign_id, "scores": name, "auc": auc.mean(),
                         "auc_se": auc.std(ddof=1), "gap_to_oracle": (aucs["oracle"] - auc).mean()})
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--warehouse", required=True)
    parser.add_argument("--truth", required=True, help="the demo world's _truth folder")
    parser.add_argument("--key-env", default="MEDMKT_PSEUDONYM_KEY",
                        help="variable holding the pseudonym key the run used (unset: the development key)")
    parser.add_argument("--draws", type=int, default=30)
    args = parser.parse_args()
    table = study(args.warehouse, args.truth, os.environ.get(args.key_env) or DEVELOPMENT_KEY, args.draws)
    print(table.round(3).to_markdown(index=False))


if __name__ == "__main__":
    main()
