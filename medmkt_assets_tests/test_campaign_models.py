"""Known answers for the campaign model helpers: Qini, stratified caps, lift tables, batch scoring, training rows."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from medmkt_assets.lib.models import campaign_models as cm
from medmkt_assets.lib.models.propensity import (
    _auc,
    auc_gap_noise,
    choose_champion,
    folds,
    lift_table,
    qini_auc,
    stratified_cap,
)


def test_qini_auc_rewards_a_right_ranking_and_penalizes_a_reversed_one():
    y, treated = np.array([1, 0, 1, 0]), np.array([1, 1, 0, 0])
    # ranked as given: Qini curve 1, 1, -1, 0 against a flat random line → mean 0.25, over 4 rows
    assert qini_auc(y, treated, np.array([4, 3, 2, 1])) == pytest.approx(0.0625)
    assert qini_auc(y, treated, np.array([1, 2, 3, 4])) == pytest.approx(-0.03125)


def test_stratified_cap_keeps_the_class_balance_and_everything_when_small():
    y = np.array([0] * 80 + [1] * 20)
    keep = stratified_cap(y, 10, seed=1)
    assert len(keep) == 10 and (y[keep] == 1).sum() == 2 and list(keep) == sorted(keep)
    assert list(keep) == list(stratified_cap(y, 10, seed=1))
    assert list(stratified_cap(y, 500)) == list(range(100))


def test_lift_table_by_decile():
    y = np.array([1, 1, 0, 0, 0, 0, 0, 0, 0, 0])
    table = lift_table(y, np.arange(10, 0, -1).astype(float))
    assert table.positives.tolist() == [1, 1, 0, 0, 0, 0, 0, 0, 0, 0]
    assert table.lift.iloc[0] == pytest.approx(5.0) and table.lift.iloc[2] == 0
    assert table.cumulative_gain.tolist()[:3] == [0.5, 1.0, 1.0]


def test_scores_come_in_batches_in_row_order():
    frame = pd.DataFrame({"a": np.arange(7.0), "b": 1.0})
    calls = []

    def predict(X):
        calls.append(len(X))
        return X.a.to_numpy() * 2

    assert cm.score_in_batches(predict, frame, ["a"], batch=3).tolist() == [0, 2, 4, 6, 8, 10, 12]
    assert calls == [3, 3, 1]
    assert cm.score_in_batches(predict, frame.iloc[:0], ["a"]).size == 0


def test_target_columns_are_the_category_columns_or_zero():
    features = pd.DataFrame({"cat__dermatology": [0.5, 0.0], "evt__dermatology": [3.0, 1.0],
                             "monetary": [80.0, 20.0], "order_lines": [4.0, 2.0]})
    columns = list(features.columns)
    derm = cm.with_target_share(features, "dermatology", columns)
    assert derm.target_share.tolist() == [0.5, 0.0] and derm.target_spend.tolist() == [40.0, 0.0]
    assert derm.target_events.tolist() == [3.0, 1.0]
    assert derm.target_interest.tolist() == [5.0, 1.0]  # 2 of 4 lines in the category, and the events
    cardio = cm.with_target_share(features, "cardiology", columns)
    assert cardio.target_share.tolist() == [0.0, 0.0] and cardio.target_spend.tolist() == [0.0, 0.0]
    assert cardio.target_events.tolist() == [0.0, 0.0] and cardio.target_interest.tolist() == [0.0, 0.0]


def test_uplift_learns_from_the_same_category_only_with_both_arms_and_outcomes():
    same = pd.DataFrame({"target_category": "skin", "arm": ["treatment", "control"] * 3, "converted": [1, 0, 0, 1, 0, 0]})
    other = pd.DataFrame({"target_category": "heart", "arm": ["treatment", "control"], "converted": [1, 0]})
    training = pd.concat([same, other], ignore_index=True)
    rows, basis = cm.uplift_training_rows(training, "skin", min_rows=4)
    assert basis == "same target category" and len(rows) == 6
    rows, basis = cm.uplift_training_rows(training, "skin", min_rows=7)
    assert basis == cm.POOLED and len(rows) == 8
    assert cm.has_both_arms_and_outcomes(rows)
    assert not cm.has_both_arms_and_outcomes(same[same.arm == "treatment"])
    assert not cm.has_both_arms_and_outcomes(same.iloc[:0])


def test_auc_by_group_hides_small_groups_and_the_sibling_that_would_reveal_them():
    from medmkt_assets.lib.models.propensity import suppress_groups

    fairness = pd.DataFrame({"dimension": ["gender", "gender", "gender", "age_band", "age_band"],
                             "group": ["F", "M", "U", "30-39", "40-49"], "rows": [120, 7, 300, 200, 227],
                             "auc": [0.7, 0.9, 0.72, 0.71, 0.69]})
    shown = suppress_groups(fairness)
    assert shown.suppressed.tolist() == [True, True, False, False, False]  # M (7) and its smallest sibling F
    assert shown.rows.isna().tolist() == [True, True, False, False, False]
    assert shown.auc.isna().tolist() == [True, True, False, False, False]


@pytest.mark.parametrize("ranks_audience, expected", [(True, ["k1", "k2", "k3"]), (False, ["k3", "k2", "k1"])])
def test_audiences_rank_by_uplift_only_when_its_model_beat_random(ranks_audience, expected):
    import duckdb

    from medmkt_assets.lib.privacy.audiences import judge_audiences

    con = duckdb.connect()
    for schema in ("marts", "restricted", "staging"):
        con.execute(f"CREATE SCHEMA {schema}")
    con.execute("CREATE TABLE marts.patient_profiles AS SELECT * FROM (VALUES ('k1', false, TIMESTAMP '2026-06-30'), "
                "('k2', false, TIMESTAMP '2026-06-30'), ('k3', false, TIMESTAMP '2026-06-30')) t(patient_key, is_deceased, as_of)")
    con.execute("CREATE TABLE restricted.patients AS SELECT patient_key, '+86 138' AS phone, 'a@b.c' AS email "
                "FROM marts.patient_profiles")
    con.execute("CREATE TABLE marts.patient_segments AS SELECT patient_key, 0 AS segment_id, 'all' AS segment_label "
                "FROM marts.patient_profiles")
    con.execute("CREATE TABLE marts.uplift_scores AS SELECT * FROM (VALUES ('k1', 'C9', 0.30), ('k2', 'C9', 0.20), "
                "('k3', 'C9', 0.10)) t(patient_key, campaign_id, expected_uplift)")
    con.execute("CREATE TABLE marts.propensity_scores AS SELECT * FROM (VALUES ('k1', 'C9', 0.1), ('k2', 'C9', 0.2), "
                "('k3', 'C9', 0.3)) t(patient_key, target, score)")
    con.execute(f"CREATE TABLE marts.uplift_models AS SELECT 'C9' AS campaign_id, {ranks_audience} AS ranks_audience")
    con.execute("CREATE TABLE staging.consents AS SELECT patient_key, 'marketing' AS purpose, 'all' AS channel, "
                "'granted' AS status, TIMESTAMP '2026-01-01' AS recorded_at FROM marts.patient_profiles")
    con.execute("CREATE TABLE staging.orders (patient_key VARCHAR, product_id VARCHAR, ordered_at TIMESTAMP)")
    con.execute("CREATE TABLE staging.products (product_id VARCHAR, kind VARCHAR, category VARCHAR)")
    judge_audiences(con, [("C9", "marketing", "sms", "skin", "Skin offer")], audience_share=1.0, max_size=0,
                    holdout_share=0.0)
    audience = con.execute("SELECT patient_key, ranked_by FROM marts.audiences ORDER BY audience_rank").fetchall()
    assert [k for k, _ in audience] == expected
    assert {r for _, r in audience} == {"expected uplift" if ranks_audience else "propensity score"}


def test_proxy_scores_rank_by_past_response_and_category_affinity():
    features = pd.DataFrame({"patient_key": ["a", "b", "c", "d"], "cat__skin": [0.0, 0.0, 0.5, 0.5],
                             "monetary": [1.0, 1.0, 1.0, 1.0]})
    contacts = pd.DataFrame({"patient_key": ["a", "a", "b", "b", "c", "d"],
                             "arm": ["treatment"] * 4 + ["control", "treatment"],
                             "converted": [1, 1, 0, 0, 1, 0]})
    scores = cm.proxy_scores(features, "skin", ["cat__skin", "monetary"], contacts)
    overall = 2 / 5  # converted treated contacts / treated contacts (c converted as a control)
    prior = cm.PROXY_PRIOR_CONTACTS
    response = np.array([(2 + prior * overall) / (2 + prior), (0 + prior * overall) / (2 + prior),
                         overall, (0 + prior * overall) / (1 + prior)])  # c was only a control
    affinity = (1 + np.array([0, 0, 0.5, 0.5])) / 1.25
    np.testing.assert_allclose(scores, np.clip(response * affinity, 0, 1))
    assert scores[0] > scores[1] and scores[2] > scores[3]
    # no campaign ever converted anyone: the category share alone ranks
    np.testing.assert_allclose(cm.proxy_scores(features, "skin", ["cat__skin"], contacts.assign(converted=0)),
                               [0, 0, 0.5, 0.5])
    # a category that is no feature column: everyone's affinity is equal
    assert np.allclose(cm.proxy_scores(features, "eyes", ["cat__skin"], contacts), response)


def _scored(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    signal = rng.normal(size=n)
    y = (rng.random(n) < 1 / (1 + np.exp(-(2 * signal - 2)))).astype(int)
    return rng, signal, y


def _card(y, oof):
    from sklearn.metrics import average_precision_score, roc_auc_score
    return pd.DataFrame([{"model": m, "auc": roc_auc_score(y, s), "pr_auc": average_precision_score(y, s),
                          "brier": 0.1, "log_loss": 0.3} for m, s in oof.items()])


def test_the_simpler_model_wins_unless_a_complex_one_is_better_beyond_the_noise():
    rng, signal, y = _scored(4000)
    noise, other = rng.normal(0, 0.9, len(y)), rng.normal(0, 0.9, len(y))
    logistic = 2 * signal + noise
    for shrink, expected in ((0.97, "logistic_regression"), (0.5, "gradient_boosting")):
        complex_ = 2 * signal + (0.8 * noise + 0.6 * other) * shrink  # less noise: a better model
        oof = {"logistic_regression": logistic, "gradient_boosting": complex_}
        card, champion, why = choose_champion(y, oof, _card(y, oof))
        assert card.set_index("model").auc.idxmax() == "gradient_boosting"
        assert champion == expected, why
        assert ("within the noise" if expected == "logistic_regression" else "more than the noise") in why


def test_the_subsampled_bootstrap_gives_the_full_bootstrap_error():
    rng, signal, y = _scored(20_000, seed=8)
    a = signal + rng.normal(0, 1.0, len(y))
    b = signal + rng.normal(0, 1.2, len(y))
    gap, se_sampled = auc_gap_noise(y, a, b, max_rows=4000)
    _, se_full = auc_gap_noise(y, a, b, max_rows=len(y), draws=60)
    assert gap > 0 and se_sampled == pytest.approx(se_full, rel=0.35)


def test_grouped_folds_keep_each_patient_in_one_fold_and_the_class_balance():
    rng = np.random.default_rng(4)
    patients = rng.integers(0, 900, 3000)
    y = (rng.random(3000) < 0.1).astype(int)
    splits = folds(y, patients, None, n_splits=4, seed=1)
    assert len(splits) == 4
    assert sorted(np.concatenate([test for _, test in splits])) == list(range(3000))
    for train, test in splits:
        assert not set(patients[train]) & set(patients[test])
        assert abs(y[test].mean() - y.mean()) < 0.03
    # ordered periods: train on the earlier, test on the next
    period = np.repeat([1, 2, 3], 1000)
    assert [(set(period[tr]), set(period[te])) for tr, te in folds(y, patients, period)] == [
        ({1}, {2}), ({1, 2}, {3})]
    # an earlier period with too few of a class to train on is no fold; with none left, grouped folds
    few = y.copy()
    few[:1000] = 0
    few[:3] = 1
    assert [(set(period[tr]), set(period[te])) for tr, te in folds(few, patients, period)] == [({1, 2}, {3})]
    only_early = np.where(period == 1, few, 0)
    only_early[2500:2520] = 1
    assert len(folds(only_early, patients, period, n_splits=4)) == 4  # 3 positives before period 3: grouped


def test_the_rank_auc_is_roc_auc_with_ties():
    from sklearn.metrics import roc_auc_score
    rng = np.random.default_rng(2)
    y, score = (rng.random(500) < 0.3).astype(int), np.round(rng.random(500), 1)
    assert _auc(y, score) == pytest.approx(roc_auc_score(y, score), abs=1e-12)


def test_both_uplift_learners_find_a_planted_effect_and_the_better_one_wins():
    rng = np.random.default_rng(6)
    n = 6000
    X = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n)})
    treated = rng.random(n) < 0.7
    effect = np.where(X.a > 0, 0.25, 0.0)               # only patients with a > 0 respond to contact
    y = (rng.random(n) < 0.1 + 0.05 * (X.b > 0) + effect * treated).astype(int)
    patients = np.arange(n)
    best, qini, oof = cm.best_uplift_learner(X, y, treated, patients, seed=1)
    assert set(qini) == {"t_learner_logistic", "x_learner_ridge"} and best == max(qini, key=qini.get)
    for name, scores in oof.items():
        assert qini[name] > 0.01, name
        assert np.corrcoef(scores, effect)[0, 1] > 0.6, name


def test_score_columns_come_back_keyed_by_row_id_with_their_flags():
    import duckdb

    from medmkt_assets.lib.engine.warehouse import Session

    con = Session(duckdb.connect())
    con.execute("CREATE TABLE keys AS SELECT * FROM (VALUES ('kc'), ('ka'), ('kb')) t(patient_key)")
    query = cm.ScoreColumns.keyed_sql("SELECT rowid AS row, patient_key FROM keys", "k.patient_key, CAST(f.target "
                                      "AS VARCHAR) AS target, f.score, CAST(f.model AS VARCHAR) AS model, f.flag AS already")
    scores = cm.ScoreColumns(np.array([1, 2, 0]))  # computed for ka, kb, kc: their row ids in keys
    scores.add("risk:E11", "lr", np.array([0.1, np.nan, 0.3]), flag=np.array([False, True, False]))
    scores.add("C007", "gbm", np.array([0.5, 0.6, 0.7]))
    con.write_frame(scores.frame(), "out", query=query)
    assert con.execute("SELECT * FROM out ORDER BY target, patient_key").fetchall() == [
        ("ka", "C007", 0.5, "gbm", None), ("kb", "C007", 0.6, "gbm", None), ("kc", "C007", 0.7, "gbm", None),
        ("ka", "risk:E11", 0.1, "lr", False), ("kb", "risk:E11", None, "lr", True),
        ("kc", "risk:E11", 0.3, "lr", False)]
    with pytest.raises(ValueError):
        scores.add("C008", "lr", np.array([0.1]))
    con.write_frame(cm.ScoreColumns(np.arange(3)).frame(), "none", query=query)  # no target: an empty table, same columns
    assert [r[0] for r in con.execute("DESCRIBE none").fetchall()] == ["patient_key", "target", "score", "model",
                                                                       "already"]


def _scoring_world(session) -> list[cm.Scorer]:
    """Three profiled patients (one unprofiled), one past treated conversion, N18 for two of them."""
    from medmkt_assets.lib.sources.staging import ensure_schemas

    ensure_schemas(session)
    session.write_frame(pd.DataFrame({"patient_key": ["k1", "k2", "k3", "k9"], "monetary": [10.0, 0.0, 5.0, 1.0],
                                      "cat__diabetes": [0.5, 0.0, 1.0, 0.0]}), "features.patient_features")
    session.write_frame(pd.DataFrame({"patient_key": ["k3", "k1", "k2"], "gender": ["F", "M", "F"],
                                      "age_band": ["40-49", "50-59", "60-69"]}), "marts.patient_profiles")
    session.write_frame(pd.DataFrame({"campaign_id": ["C1", "C1"], "patient_key": ["k1", "k2"],
                                      "arm": ["treatment", "control"], "converted": [1, 0]}), "features.campaign_training")
    session.write_frame(pd.DataFrame({"patient_key": ["k1", "k1", "k3"], "condition_code": ["N18", "E11", "N18"]}),
                        "staging.diagnoses")
    return [cm.Scorer("risk:N18", "logistic", lambda b: b.monetary.to_numpy() / 100, not_for_code="N18"),
            cm.Scorer("C2", cm.PROXY_MODEL, cm.proxy_predictor("diabetes", ["monetary", "cat__diabetes"], 1.0, 0.5))]


SCORED = "patient_key, CAST(f.target AS VARCHAR) AS target, f.score, CAST(f.model AS VARCHAR) AS model, f.flag AS flag"


def test_scorers_write_every_profiled_patient_with_flags_and_proxy_history():
    import duckdb

    from medmkt_assets.lib.engine.warehouse import Session

    con = Session(duckdb.connect())
    cm.write_scores(con, cm.scoring_sql(["N18"]), _scoring_world(con), "marts.s", SCORED)
    rows = con.execute("SELECT * FROM marts.s ORDER BY target, patient_key").fetchall()
    # proxy: (past conversions + 5 x 1.0) / (past treated + 5) x (1 + share) / (1 + 0.5), clipped to 1
    assert rows == [("k1", "C2", 1.0, cm.PROXY_MODEL, None), ("k2", "C2", 2 / 3, cm.PROXY_MODEL, None),
                    ("k3", "C2", 1.0, cm.PROXY_MODEL, None), ("k1", "risk:N18", None, "logistic", True),
                    ("k2", "risk:N18", 0.0, "logistic", False), ("k3", "risk:N18", None, "logistic", True)]


def test_scorers_in_spark_executors_write_what_duckdb_writes(spark, tmp_path):
    import duckdb

    from medmkt_assets.lib.engine.spark.session import SparkWarehouseSession
    from medmkt_assets.lib.engine.warehouse import Session
    from medmkt_assets_tests.conftest import isolated_lakehouse

    tables = []
    for con in (Session(duckdb.connect()), SparkWarehouseSession(spark, isolated_lakehouse(tmp_path / "lake"), tmp_path / "w.duckdb")):
        cm.write_scores(con, cm.scoring_sql(["N18"]), _scoring_world(con), "marts.s", SCORED)
        tables.append(con.execute("SELECT * FROM marts.s ORDER BY target, patient_key").fetchall())
        con.close()
    assert tables[0] == tables[1]


def test_the_qini_interval_says_whether_a_ranking_is_clearly_better_than_random():
    rng = np.random.default_rng(3)
    n = 4000
    treated = rng.random(n) < 0.7
    responsive = rng.random(n) < 0.5
    y = (rng.random(n) < np.where(treated & responsive, 0.30, 0.05)).astype(int)
    patients = np.arange(n) // 2  # two contacts per patient: resampled together
    good = responsive + rng.normal(0, 0.1, n)
    low, high = cm.qini_interval(y, treated, good, patients, seed=1)
    assert 0 < low < qini_auc(y, treated, good) < high
    assert cm.ranks_by_uplift(qini_auc(y, treated, good), low)
    noise = rng.normal(size=n)
    low, high = cm.qini_interval(y, treated, noise, patients, seed=1)
    assert low < 0 < high and not cm.ranks_by_uplift(qini_auc(y, treated, noise), low)
    # a Qini above 0 whose interval reaches below 0 is no ranking
    assert not cm.ranks_by_uplift(0.004, -0.001) and not cm.ranks_by_uplift(0.004, float("nan"))
    assert np.isnan(cm.qini_interval(y[:1], treated[:1], good[:1], patients[:1], seed=1)[0])
