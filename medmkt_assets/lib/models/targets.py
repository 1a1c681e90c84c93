"""One model per target, chosen, logged and registered: P(convert | contacted) for each planned
campaign, the risk of a new diagnosis for each common condition, and the uplift of each planned
campaign. The assets (defs/campaigns/propensity.py) read the rows, call these and publish the scores.

A disease-risk target's model families are cross-validated on at most `max_selection_rows` rows and
logged as one MLflow run each; the champion (lib.models.propensity.choose_champion) is refitted on
every row, registered with its calibration, gain and fairness reports, and wrapped as a Scorer. A
planned campaign's model is the way of borrowing from past campaigns that transfers best to a
held-out past campaign (lib.models.transfer), refitted for it, logged beside the plain baseline.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import mlflow
import numpy as np
import pandas as pd
from mlflow import log_metrics, log_params, set_tags

from medmkt_assets.lib.engine.sql import quote_ident, stable_hash_sql
from medmkt_assets.lib.engine.warehouse import Session
from medmkt_assets.lib.models import campaign_models as cm
from medmkt_assets.lib.models import transfer
from medmkt_assets.lib.models.campaign_features import TRAINING_TABLE, target_share_sql
from medmkt_assets.lib.models.disease_risk import risk_model_columns
from medmkt_assets.lib.models.features import feature_columns
from medmkt_assets.lib.models.propensity import (
    UPLIFT_LEARNERS,
    auc_by_group,
    calibration,
    campaign_model_columns,
    evaluate_models,
    lift_table,
    make_model,
    qini_curve,
    stratified_cap,
    suppress_groups,
    training_rows_for,
)
from medmkt_assets.lib.privacy.audiences import PLANNED_CAMPAIGNS_SQL
from medmkt_assets.lib.tracking import mlflow_runs, plots
from medmkt_assets.lib.tracking.mlflow_runs import RunTracker

CURRENT_FEATURES = "features.patient_features"
# Everyone's mean share of spend in a category, which the proxy score compares a patient's with.
SHARE_MEAN_SQL = ("SELECT coalesce(avg({column}), 0) FROM features.patient_features "
                  "SEMI JOIN marts.patient_profiles USING (patient_key)")
PROPENSITY_EXPERIMENT = "medmkt-propensity"
UPLIFT_EXPERIMENT = "medmkt-uplift"
METRICS = ("auc", "pr_auc", "brier", "log_loss", "top_decile_lift", "base_rate", "auc_fold_sd",
           "log_loss_fold_sd", "auc_gap_to_best", "auc_gap_se")


@dataclass(frozen=True)
class FitSettings:
    """How much data a target's models see (the propensity asset's configuration)."""

    min_campaign_rows: int = 1000
    max_training_rows: int = 20_000
    max_selection_rows: int = 12_000
    seed: int = 42


@dataclass
class Targets:
    """What fitting a set of targets gives the asset: scorers, a summary row and MLflow link per
    target, and warnings for the run's log."""

    scorers: list = field(default_factory=list)
    summary: list[dict] = field(default_factory=list)
    links: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def __add__(self, other: "Targets") -> "Targets":
        return Targets(self.scorers + other.scorers, self.summary + other.summary,
                       {**self.links, **other.links}, self.warnings + other.warnings)


@dataclass(frozen=True)
class FittedTarget:
    champion: object               # the refitted champion pipeline
    evaluation: object             # lib.models.propensity.Evaluation: scorecard and out-of-fold scores
    run_url: str
    fairness: pd.DataFrame | None  # AUC per group, when groups were given
    registered: str                # "<registered model> v<version>"

    def summary(self, target: str, basis: str) -> dict:
        """The row this target adds to the asset's `targets` table."""
        scores = (self.evaluation.scorecard.set_index("model")
                  .loc[self.evaluation.champion, ["auc", "pr_auc", "brier"]].astype(float))
        return {"target": target, "basis": basis, "model": self.evaluation.champion,
                **scores.round(4).to_dict(), "registered": self.registered, "why": self.evaluation.why}


@dataclass(frozen=True)
class CampaignInputs:
    """What campaign targets learn from: the feature columns, every past contact, the planned
    campaigns and everyone's mean share of spend in each planned category."""

    columns: list[str]
    training: pd.DataFrame
    planned: list[transfer.CampaignProfile]
    share_means: dict[str, float]


def training_contacts_sql(contacts: int, max_contacts: int) -> str:
    """The past contacts the campaign models learn from, by campaign and patient: every one while
    they number at most `max_contacts`, else that many chosen by a hash of the patient key (the
    same on every engine; a patient's contacts stay together), so no patient-sized table comes to
    the driver. Every target then fits on at most max_training_rows of them."""
    if contacts <= max_contacts:
        return f"SELECT * FROM {TRAINING_TABLE} ORDER BY campaign_id, patient_key"
    return (f"SELECT * FROM (SELECT * FROM {TRAINING_TABLE} t ORDER BY {stable_hash_sql('t.patient_key')}, "
            f"t.patient_key, t.campaign_id LIMIT {int(max_contacts)}) AS s ORDER BY campaign_id, patient_key")


def campaign_inputs(con: Session, max_contacts: int) -> CampaignInputs:
    """Read the campaign targets' inputs: at most `max_contacts` past contacts (training_contacts_sql;
    every patient's features are read only to score them, by lib.models.campaign_models.write_scores)."""
    columns = feature_columns(con, CURRENT_FEATURES)
    (contacts,) = con.execute(f"SELECT count(*) FROM {TRAINING_TABLE}").fetchone()
    training = con.execute(training_contacts_sql(int(contacts), max_contacts)).fetchdf()
    planned = [transfer.CampaignProfile(cid, purpose, channel, category)
               for cid, purpose, channel, category, _ in con.execute(PLANNED_CAMPAIGNS_SQL).fetchall()]
    means = {}
    for category in {p.category for p in planned}:
        column = target_share_sql(category, columns)
        means[category] = (float(con.execute(SHARE_MEAN_SQL.format(column=quote_ident(column))).fetchall()[0][0])
                           if column in columns else 0.0)
    return CampaignInputs(columns, training, planned, means)


def fit_target(tracker: RunTracker, target: str, X: pd.DataFrame, y: np.ndarray, groups: np.ndarray,
               period: np.ndarray | None, params: dict, settings: FitSettings,
               by_group: dict[str, pd.Series] | None = None) -> FittedTarget:
    """Cross-validate all model families for one target on at most `max_selection_rows` of the rows, log
    each as a run, refit the champion on every row and register it."""
    full_X, full_y = X, y
    pick = stratified_cap(y, settings.max_selection_rows, settings.seed)
    X, y, groups = X.iloc[pick], y[pick], groups[pick]
    period = period[pick] if period is not None else None
    by_group = {name: g.iloc[pick].reset_index(drop=True) for name, g in (by_group or {}).items()}
    evaluation = evaluate_models(X, y, groups, period, seed=settings.seed)
    champion_run = None
    for row in evaluation.scorecard.itertuples():
        with tracker.start_run(PROPENSITY_EXPERIMENT, f"{target} · {row.model}",
                               tags={"target": target, "model_family": row.model,
                                     "champion": str(row.model == evaluation.champion).lower()}) as run:
            log_params({**params, "target": target, "model": row.model, "training_rows": len(full_y),
                        "selection_rows": len(y), "features": X.shape[1], "folds": row.folds,
                        "validation": evaluation.validation})
            set_tags({"champion_reason": evaluation.why})
            mlflow_runs.log_dataset(full_X, f"{target} training rows")
            log_metrics({k: float(getattr(row, k)) for k in METRICS if pd.notna(getattr(row, k))})
            scores = evaluation.out_of_fold[row.model]
            tested = ~np.isnan(scores)
            mlflow_runs.log_frame(lift_table(y[tested], scores[tested]), "lift_by_decile.csv")
            if row.model == evaluation.champion:
                champion_run = run
    champion = make_model(evaluation.champion, settings.seed).fit(full_X, full_y)
    registered = f"medmkt-propensity-{target.replace(':', '-')}"
    with tracker.resume(champion_run):
        _log_reports(target, y, evaluation)
        fairness = _log_fairness(y, evaluation, by_group) if by_group else None
        version = mlflow_runs.log_model(
            champion, X.head(200), registered, what=_model_description(target),
            why=f"{evaluation.why} ({len(y)} rows, validation {evaluation.validation}; every family in "
                f"scorecard.csv); refitted on {len(full_y)} rows.", predict_fn="predict_proba")
    return FittedTarget(champion, evaluation, tracker.run_url(champion_run), fairness, f"{registered} v{version}")


def _log_reports(target: str, y: np.ndarray, evaluation) -> None:
    """The champion run's calibration and gain plots of every family, and the scorecard."""
    curves = {m: calibration(y, s) for m, s in evaluation.out_of_fold.items()}
    gains = {m: lift_table(y[~np.isnan(s)], s[~np.isnan(s)]) for m, s in evaluation.out_of_fold.items()}
    risk = target.startswith("risk:")
    mlflow_runs.log_figure(plots.calibration_plot(curves), "calibration.png")
    mlflow_runs.log_figure(plots.gain_plot(gains, "patients" if risk else "patients contacted",
                                           "patients with the condition" if risk else "conversions"), "gain.png")
    mlflow_runs.log_frame(evaluation.scorecard, "scorecard.csv")


def _log_fairness(y: np.ndarray, evaluation, by_group: dict[str, pd.Series]) -> pd.DataFrame:
    """The champion's out-of-fold AUC per group (small groups suppressed), logged to the current run."""
    oof = evaluation.out_of_fold[evaluation.champion]
    fairness = suppress_groups(pd.concat([auc_by_group(y, oof, g).assign(dimension=name)
                                          for name, g in by_group.items()], ignore_index=True))
    mlflow_runs.log_frame(fairness, "auc_by_group.csv")
    log_metrics({"auc_min_group": float(fairness.auc.min())} if fairness.auc.notna().any() else {})
    return fairness


def _model_description(target: str) -> str:
    """What the registered model predicts, for its registry description."""
    if target.startswith("risk:"):
        what = f"Risk of a new {target[5:]} diagnosis within the horizon, for a patient without it"
    else:
        what = f"P(convert | contacted) for planned campaign {target}"
    return (what + ": served predict returns [P(no), P(yes)] for rows of the patient features the signature names"
            + ("." if target.startswith("risk:")
               else " (target_share = the patient's share of spend in the campaign's category)."))


def campaign_targets(tracker: RunTracker, settings: FitSettings, inputs: CampaignInputs) -> Targets:
    """P(convert | contacted) for each planned campaign, learnt from past campaigns the way that
    transfers best to a held-out past campaign (lib.models.transfer); with fewer than two past
    campaigns to hold out, from the past campaigns most like it (cross-validated within them), or a
    proxy score (past response x category affinity) when no past campaign can teach it."""
    treated = inputs.training[inputs.training.arm == "treatment"]
    study = (transfer.leave_one_campaign_out(treated, inputs.columns, settings.seed, settings.max_selection_rows)
             if inputs.planned else None)
    out = Targets()
    for planned in inputs.planned:
        out += (_transferred_target(tracker, settings, inputs, treated, study, planned) if study is not None
                else _within_campaign_target(tracker, settings, inputs, planned))
    return out


def _transferred_target(tracker: RunTracker, settings: FitSettings, inputs: CampaignInputs, treated: pd.DataFrame,
                        study: transfer.Transfer, planned: transfer.CampaignProfile) -> Targets:
    """The study's champion refitted for `planned` on the past contacts its strategy picks, logged
    with the leave-one-campaign-out table and the plain baseline beside it, registered and wrapped."""
    champion = study.champion
    rows, weights, basis = transfer.training_rows(treated, transfer.profiles_of(treated), planned, champion.strategy)
    keep = stratified_cap(rows.converted.to_numpy(), settings.max_training_rows, settings.seed)
    rows, weights = rows.iloc[keep], (weights[keep] if weights is not None else None)
    model = transfer.fit_candidate(champion, rows, weights, inputs.columns, settings.seed)
    columns = champion.columns(inputs.columns)
    registered = f"medmkt-propensity-{planned.campaign_id}"
    params = {"basis": basis, "target_category": planned.category, "channel": planned.channel,
              "purpose": planned.purpose, "training_rows": len(rows), "features": len(columns),
              "validation": f"leave one past campaign out ({study.metric(champion, 'campaigns'):.0f} campaigns)"}
    runs = {}
    for candidate in dict.fromkeys([champion, transfer.BASELINE]):
        with tracker.start_run(PROPENSITY_EXPERIMENT, f"{planned.campaign_id} · {candidate.name}",
                               tags={"target": planned.campaign_id, "model_family": candidate.family,
                                     "transfer_strategy": candidate.strategy, "feature_set": candidate.features,
                                     "champion": str(candidate == champion).lower(),
                                     "role": "champion" if candidate == champion else "baseline"}) as run:
            _log_transfer(study, candidate, params)
            runs[candidate] = run
    with tracker.resume(runs[champion]):
        set_tags({"champion_reason": study.why})
        mlflow_runs.log_dataset(rows[columns], f"{planned.campaign_id} training rows")
        mlflow_runs.log_frame(study.table.round(4), "leave_one_campaign_out.csv")
        mlflow_runs.log_frame(study.scorecard.round(4), "transfer_scorecard.csv")
        version = mlflow_runs.log_model(
            model, rows[columns].head(200), registered, what=_model_description(planned.campaign_id),
            why=f"{study.why}; refitted on {len(rows)} contacts ({basis}).", predict_fn="predict_proba")
    out = Targets()
    out.scorers.append(cm.Scorer(planned.campaign_id, champion.family, cm.model_predictor(
        cm.probabilities(model), columns, planned.category, inputs.columns)))
    out.links[planned.campaign_id] = tracker.run_url(runs[champion])
    out.summary.append({"target": planned.campaign_id, "basis": basis, "model": champion.family,
                        "auc": round(study.metric(champion, "mean_auc"), 4),
                        "baseline_auc": round(study.metric(transfer.BASELINE, "mean_auc"), 4),
                        "registered": f"{registered} v{version}", "why": study.why})
    return out


def _log_transfer(study: transfer.Transfer, candidate: transfer.Candidate, params: dict) -> None:
    """A candidate's held-out metrics, the baseline's beside them, and its held-out gain and calibration."""
    log_params({**params, "model": candidate.family, "transfer_strategy": candidate.strategy,
                "feature_set": candidate.features})
    scores = study.scores[candidate.name]
    log_metrics({"auc": study.metric(candidate, "mean_auc"), "auc_campaign_sd": study.metric(candidate, "auc_sd"),
                 "auc_gap_to_best": study.metric(candidate, "gap_to_best"),
                 "auc_gap_se": study.metric(candidate, "gap_se"),
                 "baseline_auc": study.metric(transfer.BASELINE, "mean_auc"),
                 "auc_over_baseline": study.metric(candidate, "mean_auc") - study.metric(transfer.BASELINE, "mean_auc"),
                 "base_rate": float(study.y.mean())})
    mlflow_runs.log_frame(lift_table(study.y, scores), "lift_by_decile.csv")
    mlflow_runs.log_figure(plots.calibration_plot({candidate.name: calibration(study.y, scores)}), "calibration.png")


def _within_campaign_target(tracker: RunTracker, settings: FitSettings, inputs: CampaignInputs,
                            planned: transfer.CampaignProfile) -> Targets:
    """Fewer than two past campaigns to hold out: the model families cross-validated within the past
    campaigns most like the planned one, or the proxy score when none can teach it."""
    campaign_id, category = planned.campaign_id, planned.category
    out = Targets()
    rows, basis = training_rows_for(inputs.training, category, planned.channel, min_rows=settings.min_campaign_rows)
    model_columns = campaign_model_columns(inputs.columns, pooled=basis == cm.POOLED)
    if rows.empty:
        out.warnings.append(
            f"Planned campaign {campaign_id}: no past campaign to learn from ({basis}); scored by the proxy "
            f"(past response to any campaign x affinity for {category}), model = {cm.PROXY_MODEL}.")
        out.scorers.append(cm.Scorer(campaign_id, cm.PROXY_MODEL, cm.proxy_predictor(
            category, inputs.columns, cm.past_response_rate(inputs.training), inputs.share_means[category])))
        out.summary.append({"target": campaign_id, "basis": f"{basis}: proxy score", "model": cm.PROXY_MODEL})
        return out
    rows = rows.iloc[stratified_cap(rows.converted.to_numpy(), settings.max_training_rows, settings.seed)]
    fit = fit_target(tracker, campaign_id, rows[model_columns], rows.converted.to_numpy(),
                     rows.patient_key.to_numpy(), pd.to_datetime(rows.start_date).to_numpy(),
                     {"basis": basis, "target_category": category, "channel": planned.channel}, settings)
    out.scorers.append(cm.Scorer(campaign_id, fit.evaluation.champion, cm.model_predictor(
        cm.probabilities(fit.champion), model_columns, category, inputs.columns)))
    out.links[campaign_id] = fit.run_url
    out.summary.append(fit.summary(campaign_id, basis))
    return out


def risk_targets(tracker: RunTracker, settings: FitSettings, columns: list[str],
                 training: dict[str, pd.DataFrame]) -> Targets:
    """The risk of a new diagnosis of each condition within the horizon, trained and validated on its
    features.risk_training rows (a patient who already has the condition is not scored, contract)."""
    out = Targets()
    for code, rows in training.items():
        target, model_columns = f"risk:{code}", risk_model_columns(columns, code)
        y = rows.new_diagnosis.to_numpy()
        fit = fit_target(
            tracker, target, rows[model_columns], y, rows.patient_key.to_numpy(), rows.index_date.to_numpy(),
            {"condition_code": code, "new_diagnoses": int(y.sum()),
             "horizon_days": int((rows.horizon_end - rows.index_date).dt.days.iloc[0]),
             "index_dates": ", ".join(sorted(str(d) for d in rows.index_date.dt.date.unique()))}, settings,
            by_group={"gender": rows["_gender"].reset_index(drop=True),
                      "age_band": rows["_age_band"].reset_index(drop=True)})
        out.scorers.append(cm.Scorer(target, fit.evaluation.champion,
                                     cm.model_predictor(cm.probabilities(fit.champion), model_columns),
                                     not_for_code=code))
        out.links[target] = fit.run_url
        worst = fit.fairness.dropna(subset=["auc"]).sort_values("auc").head(1) if fit.fairness is not None else None
        out.summary.append({**fit.summary(target, f"{int(y.sum())} new diagnoses at {rows.index_date.nunique()} "
                                                  "index dates"),
                            "weakest_group": (f"{worst.dimension.iloc[0]}={worst.group.iloc[0]} "
                                              f"AUC {worst.auc.iloc[0]:.3f}") if worst is not None and len(worst) else None})
    return out


def uplift_targets(tracker: RunTracker, settings: FitSettings, inputs: CampaignInputs) -> tuple[Targets, dict]:
    """Expected uplift per planned campaign from the better of a T- and an X-learner (out-of-fold Qini)
    on past treated and control arms; also each campaign's champion run, to add its mean uplift to."""
    out, runs = Targets(), {}
    for campaign_id, category in ((p.campaign_id, p.category) for p in inputs.planned):
        rows, basis = cm.uplift_training_rows(inputs.training, category, settings.min_campaign_rows)
        model_columns = campaign_model_columns(inputs.columns, pooled=basis == cm.POOLED)
        if not cm.has_both_arms_and_outcomes(rows):
            out.warnings.append(f"Planned campaign {campaign_id}: no past treated and control arms; no uplift model.")
            continue
        rows = rows.iloc[stratified_cap(rows.converted.to_numpy() * 2 + (rows.arm == "treatment").to_numpy(),
                                        settings.max_training_rows, settings.seed)].reset_index(drop=True)
        X, y, treated = rows[model_columns], rows.converted.to_numpy(), (rows.arm == "treatment").to_numpy()
        learner, qinis, oof = cm.best_uplift_learner(X, y, treated, rows.patient_key.to_numpy(), settings.seed)
        qini = qinis[learner]
        low, high = cm.qini_interval(y, treated, oof[learner], rows.patient_key.to_numpy(), settings.seed)
        ranks = cm.ranks_by_uplift(qini, low)
        model = UPLIFT_LEARNERS[learner](seed=settings.seed).fit(X, y, treated)
        out.scorers.append(cm.Scorer(campaign_id, learner, cm.model_predictor(model.predict, model_columns, category,
                                                                              inputs.columns)))
        for name, scores in oof.items():
            run = log_uplift_run(tracker, campaign_id, name, name == learner, basis, len(rows),
                                 qini_curve(y, treated, scores), ranks, (low, high) if name == learner else None)
            if name == learner:
                runs[campaign_id] = run
        if not ranks:
            out.warnings.append(f"Planned campaign {campaign_id}: the uplift model's Qini on past contacts is "
                                f"{qini:.4f} (95 % CI {low:.4f} to {high:.4f}: not clearly better than random "
                                "targeting): its audience is ranked by propensity instead.")
        out.links[campaign_id] = tracker.run_url(runs[campaign_id])
        out.summary.append({"campaign_id": campaign_id, "basis": basis, "model": learner,
                            "qini_auc": round(qini, 5), "qini_ci_low": round(low, 5),
                            "qini_ci_high": round(high, 5), "ranks_audience": ranks,
                            "mlflow": out.links[campaign_id]})
    return out, runs


def log_uplift_run(tracker: RunTracker, campaign_id: str, learner: str, champion: bool, basis: str,
                   rows: int, curve: pd.DataFrame, ranks: bool = False,
                   interval: tuple[float, float] | None = None) -> mlflow.ActiveRun:
    """One MLflow run per planned campaign and uplift learner with its out-of-fold Qini curve (the
    champion's with its bootstrap interval, and whether audiences rank by it: `ranks`); returns the run
    (the champion's gets its mean expected uplift once the patients are scored)."""
    qini = float((curve.qini - curve.random).mean() / max(len(curve), 1))
    with tracker.start_run(UPLIFT_EXPERIMENT, f"{campaign_id} · {learner}",
                           tags={"target": campaign_id, "champion": str(champion).lower(), "method": learner}) as run:
        log_params({"campaign_id": campaign_id, "basis": basis, "training_rows": rows, "learner": learner})
        log_metrics({"qini_auc": qini, **({"qini_ci_low": interval[0], "qini_ci_high": interval[1]}
                                          if interval else {})})
        set_tags({"ranks_audience": str(champion and ranks).lower()})
        step = max(len(curve) // 200, 1)  # about 200 points: enough to draw, no row-level detail
        mlflow_runs.log_frame(curve.iloc[::step].round(4), "qini_curve.csv")
        mlflow_runs.log_figure(plots.qini_plot(curve.iloc[::step]), "qini_curve.png")
        return run
