"""How a planned campaign borrows from past ones (lib.models.transfer): known answers on small fixtures."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from medmkt_assets.lib.models import transfer as T
from medmkt_assets.lib.models.propensity import POOLED_COLUMNS, TARGET_COLUMNS

PLANNED = T.CampaignProfile("P", "marketing", "sms", "diabetes_care")


def test_similarity_counts_the_category_twice_channel_and_purpose_once():
    assert T.similarity(PLANNED, T.CampaignProfile("A", "marketing", "sms", "diabetes_care")) == 1.0
    assert T.similarity(PLANNED, T.CampaignProfile("B", "education", "email", "diabetes_care")) == 0.5
    assert T.similarity(PLANNED, T.CampaignProfile("C", "marketing", "sms", "dermatology")) == 0.5
    assert T.similarity(PLANNED, T.CampaignProfile("D", "education", "call", "cardiology")) == 0.0


def _contacts(campaign: str, purpose: str, channel: str, category: str, n: int, positives: int) -> pd.DataFrame:
    return pd.DataFrame({"campaign_id": campaign, "campaign_purpose": purpose, "campaign_channel": channel,
                         "target_category": category, "arm": "treatment",
                         "converted": [1] * positives + [0] * (n - positives)})


def test_most_similar_adds_the_next_most_similar_until_a_model_can_train():
    past = pd.concat([_contacts("A", "marketing", "sms", "diabetes_care", 30, 5),      # 1.0, too few converters
                      _contacts("B", "marketing", "email", "diabetes_care", 60, 25),   # 0.75
                      _contacts("C", "education", "call", "cardiology", 80, 40)], ignore_index=True)
    profiles = T.profiles_of(past)
    rows, weights, basis = T.training_rows(past, profiles, PLANNED, "most_similar")
    assert set(rows.campaign_id) == {"A", "B"} and weights is None and basis.endswith("A, B")
    rows, weights, _ = T.training_rows(past, profiles, PLANNED, "similarity_weighted")
    assert len(rows) == 170
    assert dict(zip(rows.campaign_id, weights)) == {"A": 1.25, "B": 1.0, "C": 0.25}
    rows, weights, _ = T.training_rows(past, profiles, PLANNED, "pooled")
    assert len(rows) == 170 and weights is None
    with pytest.raises(ValueError, match="unknown strategy"):
        T.training_rows(past, profiles, PLANNED, "nearest")


def _table(aucs: dict[str, list[float]]) -> pd.DataFrame:
    return pd.DataFrame([{"held_out": f"H{i}", "candidate": name, "auc": auc}
                         for name, values in aucs.items() for i, auc in enumerate(values)])


def test_the_champion_is_the_simplest_candidate_within_one_standard_error_of_the_best():
    simple, other = T.CANDIDATES[0].name, T.CANDIDATES[5].name
    # the better candidate wins on two campaigns and loses on the third: gap 0.01, standard error 0.01
    card, champion, why = T.choose_transfer(_table({simple: [0.60, 0.62, 0.64], other: [0.62, 0.64, 0.63]}))
    assert champion == T.CANDIDATES[0] and "within the noise" in why
    assert card.set_index("candidate").loc[simple, "gap_to_best"] == pytest.approx(0.01)
    assert card.set_index("candidate").loc[simple, "gap_se"] == pytest.approx(0.01)
    # better on every campaign by 0.03 to 0.05: beyond the noise
    card, champion, why = T.choose_transfer(_table({simple: [0.60, 0.62, 0.64], other: [0.64, 0.66, 0.67]}))
    assert champion == T.CANDIDATES[5] and "transfers best" in why


def _world(seed: int = 3) -> pd.DataFrame:
    """Four past campaigns of four categories; a contact converts by their affinity for the
    campaign's category (target_share, target_interest) and by nothing else."""
    rng = np.random.default_rng(seed)
    parts = []
    for cid, category, channel in (("A", "diabetes_care", "sms"), ("B", "dermatology", "email"),
                                   ("C", "cardiology", "sms"), ("D", "vaccination", "wechat")):
        n = 600
        frame = pd.DataFrame({c: rng.gamma(2.0, 2.0, n) for c in POOLED_COLUMNS})
        share = rng.beta(1, 4, n)
        frame = frame.assign(target_share=share, target_spend=share * frame.monetary,
                             target_events=rng.poisson(10 * share), target_interest=share * frame.order_lines)
        converted = rng.random(n) < 0.03 + 0.5 * share
        parts.append(frame.assign(campaign_id=cid, campaign_purpose="marketing", campaign_channel=channel,
                                  target_category=category, arm="treatment", converted=converted.astype(int)))
    return pd.concat(parts, ignore_index=True)


def test_leave_one_campaign_out_finds_that_only_campaign_aware_features_transfer():
    treated = _world()
    study = T.leave_one_campaign_out(treated, list(POOLED_COLUMNS), seed=1, max_rows=2000)
    assert set(study.table.held_out) == {"A", "B", "C", "D"}
    assert len(study.table) == 4 * len(T.CANDIDATES)
    card = study.scorecard.set_index("candidate")
    aware = card.loc[T.Candidate("pooled", "logistic_regression", "patient_x_campaign").name, "mean_auc"]
    blind = card.loc[T.Candidate("pooled", "logistic_regression", "patient").name, "mean_auc"]
    assert aware > 0.65 and abs(blind - 0.5) < 0.06  # the truth itself ranks at about 0.70
    assert study.champion.features != "patient"
    assert set(study.champion.columns(list(POOLED_COLUMNS))) & set(TARGET_COLUMNS)
    assert len(study.y) == len(study.scores[study.champion.name]) == len(treated)


def test_with_one_campaign_to_hold_out_there_is_no_study():
    treated = _world()
    assert T.leave_one_campaign_out(treated[treated.campaign_id == "A"], list(POOLED_COLUMNS)) is None


def test_events_per_category_count_the_named_category_or_the_products_before_the_cutoff():
    """`evt__<category>`: a patient's digital events in each category, whether the event names the
    category or only a product, strictly before the cut-off; anonymous events count for nobody."""
    from medmkt_assets.lib.models.features import build_patient_features
    from medmkt_assets_tests.conftest import session_from_script

    from .test_disease_risk import WORLD

    con = session_from_script(WORLD)
    con.execute("""INSERT INTO staging.events VALUES
        ('k1', TIMESTAMP '2025-03-01 09:00:00', NULL, 'Cardiology'),
        ('k1', TIMESTAMP '2025-03-02 09:00:00', 'C', NULL),
        ('k1', TIMESTAMP '2025-03-03 09:00:00', 'L', NULL),
        ('k1', TIMESTAMP '2026-02-01 09:00:00', NULL, 'cardiology'),
        (NULL, TIMESTAMP '2025-03-01 09:00:00', NULL, 'cardiology'),
        ('k3', TIMESTAMP '2025-03-01 09:00:00', NULL, 'dermatology')""")
    vocabulary = build_patient_features(con, "features.f", cutoff="TIMESTAMP '2026-01-01 00:00:00'")
    assert vocabulary["evt"] == vocabulary["cat"] == ["checkup", "cardiology"]  # by revenue before the cut-off
    got = {key: (events, cardiology, checkup) for key, events, cardiology, checkup in con.execute(
        "SELECT patient_key, digital_events, evt__cardiology, evt__checkup FROM features.f").fetchall()}
    assert got["k1"] == (3, 2, 1)  # the February 2026 event is after the cut-off
    assert got["k3"] == (1, 0, 0)  # dermatology is not among the categories bought
    assert got["k2"] == (0, 0, 0)
