"""Campaign training rows, marts.propensity_scores (campaign and disease-risk targets) and uplift scores."""
from dataclasses import dataclass

import dagster as dg
import numpy as np
import pandas as pd
from mlflow import log_metrics, log_params, set_tags
from pydantic import Field

from medmkt_assets.defs.resources import MlflowTracker, Warehouse
from medmkt_assets.defs.warehouse import (
    REFRESH_WHEN_INPUTS_CHANGE, WAREHOUSE_POOL, row_count,
)
from medmkt_assets.lib import campaign_models as cm
from medmkt_assets.lib import plots, tracking
from medmkt_assets.lib.audiences import PLANNED_CAMPAIGNS_SQL
from medmkt_assets.lib.campaign_features import TRAINING_TABLE, build_campaign_training, target_share_sql
from medmkt_assets.lib.disease_risk import (
    RISK_CONDITIONS_SQL, RISK_ROWS_SQL, RISK_TRAINING_TABLE, build_risk_training, risk_model_columns,
)
from medmkt_assets.lib.features import feature_columns
from medmkt_assets.lib.propensity import (
    UPLIFT_LEARNERS, auc_by_group, calibration, campaign_model_columns, evaluate_models, lift_table, make_model,
    qini_curve, stratified_cap, suppress_groups, training_rows_for,
)
from medmkt_assets.lib.sql import quote_ident
from medmkt_assets.lib.suppression import suppress_frame

CURRENT_FEATURES = "features.patient_features"
# The published columns over the long scores `f` (lib.campaign_models.write_scores).
SCORE_COLUMNS = ("patient_key, CAST(f.target AS VARCHAR) AS target, f.score, CAST(f.model AS VARCHAR) AS model, "
                 "f.flag AS already_diagnosed")
UPLIFT_COLUMNS = ("patient_key, CAST(f.target AS VARCHAR) AS campaign_id, f.score AS expected_uplift, "
                  "CAST(f.model AS VARCHAR) AS model")
# Everyone's mean share of spend in a category, which the proxy score compares a patient's with.
SHARE_MEAN_SQL = ("SELECT coalesce(avg({column}), 0) FROM features.patient_features "
                  "SEMI JOIN marts.patient_profiles USING (patient_key)")
# Per planned campaign: the uplift model's Qini on past contacts and whether audiences may rank by it.
UPLIFT_MODEL_COLUMNS = {"campaign_id": "str", "basis": "str", "model": "str", "qini_auc": "float",
                        "ranks_audience": "bool",
                        "mean_expected_uplift": "float", "mlflow": "str"}
MEAN_UPLIFT_SQL = "SELECT campaign_id, avg(expected_uplift) FROM marts.uplift_scores GROUP BY campaign_id"
UPLIFT_MODELS_SQL = ("SELECT CAST(campaign_id AS VARCHAR) AS campaign_id, CAST(basis AS VARCHAR) AS basis, "
                     "CAST(model AS VARCHAR) AS model, "
                     "CAST(qini_auc AS DOUBLE) AS qini_auc, CAST(ranks_audience AS BOOLEAN) AS ranks_audience "
                     "FROM frame ORDER BY campaign_id")


class RiskTrainingConfig(dg.Config):
    horizon_days: int = Field(default=365, description=(
        "Disease risk is the risk of a new diagnosis within this many days after an index date."))
    index_dates: int = Field(default=2, description=(
        "Index dates, one horizon apart, ending one horizon before the data's as-of time: the latest tests "
        "a model trained on the earlier ones (temporal validation); the published model learns from all."))


class PropensityConfig(dg.Config):
    risk_conditions: int = Field(default=3, description="Conditions with the most new diagnoses that get a "
                                                        "disease-risk model.")
    min_positives: int = Field(default=30, description=(
        "Fewest positive examples a target needs to be modelled (for disease risk: new diagnoses over all "
        "index windows)."))
    min_campaign_rows: int = Field(default=1000, description=(
        "Treated contacts of same-category campaigns needed to train on them alone; with fewer, every past "
        "campaign is used and the patient's share of spend in the target category carries the difference."))
    max_training_rows: int = Field(default=20_000, description="Training rows sampled (class balance kept) at scale.")
    max_selection_rows: int = Field(default=12_000, description=(
        "Rows (of the training rows, class balance kept) the model families are cross-validated on; the "
        "champion is refitted on every training row."))
    seed: int = Field(default=42, description="Random seed for folds, sampling and models.")


@dg.asset(
    key=["features", "campaign_training"], group_name="campaigns", kinds={"duckdb"}, pool=WAREHOUSE_POOL, automation_condition=REFRESH_WHEN_INPUTS_CHANGE,
    deps=[dg.AssetKey(["features", "patient_features"]), dg.AssetKey(["staging", "campaigns"]),
          dg.AssetKey(["staging", "campaign_contacts"])],
)
def campaign_training(warehouse: Warehouse) -> dg.MaterializeResult:
    """Every past campaign contact with features as of the campaign's start (nothing after it leaks in)."""
    with warehouse.transaction() as con:
        campaigns = build_campaign_training(con, CURRENT_FEATURES)
        n = row_count(con, TRAINING_TABLE)
        by_campaign = con.execute(f"SELECT campaign_id, arm, count(*) AS contacts, avg(converted) AS conversion "
                                  f"FROM {TRAINING_TABLE} GROUP BY ALL ORDER BY ALL").fetchdf()
    by_campaign = suppress_frame(by_campaign, "contacts", also=["conversion"])  # metadata is a report too
    return dg.MaterializeResult(metadata={
        "dagster/row_count": n, "campaigns": campaigns,
        "by_campaign": dg.MetadataValue.md(by_campaign.round(4).to_markdown(index=False) if n else "(no contacts)"),
    })


@dg.asset(
    key=["features", "risk_training"], group_name="campaigns", kinds={"duckdb"}, pool=WAREHOUSE_POOL,
    automation_condition=REFRESH_WHEN_INPUTS_CHANGE,
    deps=[dg.AssetKey(["features", "patient_features"]), dg.AssetKey(["marts", "patient_profiles"]),
          dg.AssetKey(["staging", "diagnoses"])],
)
def risk_training(config: RiskTrainingConfig, warehouse: Warehouse) -> dg.MaterializeResult:
    """Per index date, every patient who could get a new diagnosis after it, with features from before it."""
    with warehouse.transaction() as con:
        dates = build_risk_training(con, config.horizon_days, config.index_dates)
        n = row_count(con, RISK_TRAINING_TABLE)
        by_index = con.execute(f"SELECT CAST(index_date AS DATE) AS index_date, CAST(horizon_end AS DATE) "
                               f"AS horizon_end, count(*) AS patients FROM {RISK_TRAINING_TABLE} "
                               "GROUP BY ALL ORDER BY 1").fetchdf()
    by_index = suppress_frame(by_index, "patients")
    return dg.MaterializeResult(metadata={
        "dagster/row_count": n,
        "horizon_days": config.horizon_days, "index_dates": ", ".join(d.date().isoformat() for d in dates),
        "by_index_date": dg.MetadataValue.md(by_index.to_markdown(index=False)),
    })


@dataclass(frozen=True)
class FittedTarget:
    champion: object               # the refitted champion pipeline
    evaluation: object             # lib.propensity.Evaluation: scorecard and out-of-fold scores
    run_url: str
    fairness: pd.DataFrame | None  # AUC per group, when groups were given
    registered: str                # "<registered model> v<version>"

    def summary(self, target: str, basis: str) -> dict:
        """The row this target adds to the asset's `targets` table."""
        scores = self.evaluation.scorecard.set_index("model").loc[self.evaluation.champion, ["auc", "pr_auc", "brier"]].astype(float)
        return {"target": target, "basis": basis, "model": self.evaluation.champion,
                **scores.round(4).to_dict(), "registered": self.registered, "why": self.evaluation.why}


def _fit_target(context, tracker: MlflowTracker, target: str, X: pd.DataFrame, y: np.ndarray,
                groups: np.ndarray, period: np.ndarray | None, params: dict, config: PropensityConfig,
                by_group: dict[str, pd.Series] | None = None) -> FittedTarget:
    """Cross-validate all model families for one target on at most `max_selection_rows` of the rows, log
    each as a run, refit the champion on every row and register it."""
    seed = config.seed
    full_X, full_y = X, y
    pick = stratified_cap(y, config.max_selection_rows, seed)
    X, y, groups = X.iloc[pick], y[pick], groups[pick]
    period = period[pick] if period is not None else None
    by_group = {name: g.iloc[pick].reset_index(drop=True) for name, g in (by_group or {}).items()}
    evaluation = evaluate_models(X, y, groups, period, seed=seed)
    champion_run = None
    for row in evaluation.scorecard.itertuples():
        with tracker.start_run(context, "medmkt-propensity", f"{target} · {row.model}",
                               tags={"target": target, "model_family": row.model,
                                     "champion": str(row.model == evaluation.champion).lower()}) as run:
            log_params({**params, "target": target, "model": row.model, "training_rows": len(full_y),
                        "selection_rows": len(y), "features": X.shape[1], "folds": row.folds,
                        "validation": evaluation.validation})
            set_tags({"champion_reason": evaluation.why})
            tracking.log_dataset(full_X, f"{target} training rows")
            log_metrics({k: float(getattr(row, k)) for k in ("auc", "pr_auc", "brier", "log_loss",
                                                              "top_decile_lift", "base_rate", "auc_fold_sd",
                                                              "log_loss_fold_sd", "auc_gap_to_best", "auc_gap_se")
                         if pd.notna(getattr(row, k))})
            scores = evaluation.out_of_fold[row.model]
            tested = ~np.isnan(scores)
            tracking.log_frame(lift_table(y[tested], scores[tested]), "lift_by_decile.csv")
            if row.model == evaluation.champion:
                champion_run = run
    curves = {m: calibration(y, s) for m, s in evaluation.out_of_fold.items()}
    gains = {m: lift_table(y[~np.isnan(s)], s[~np.isnan(s)]) for m, s in evaluation.out_of_fold.items()}
    champion = make_model(evaluation.champion, seed).fit(full_X, full_y)
    fairness = None
    registered = f"medmkt-propensity-{target.replace(':', '-')}"
    with tracker.resume(champion_run):
        tracking.log_figure(plots.calibration_plot(curves), "calibration.png")
        risk = target.startswith("risk:")
        tracking.log_figure(plots.gain_plot(gains, "patients" if risk else "patients contacted",
                                            "patients with the condition" if risk else "conversions"), "gain.png")
        tracking.log_frame(evaluation.scorecard, "scorecard.csv")
        if by_group:
            oof = evaluation.out_of_fold[evaluation.champion]
            fairness = suppress_groups(pd.concat([auc_by_group(y, oof, g).assign(dimension=name)
                                                  for name, g in by_group.items()], ignore_index=True))
            tracking.log_frame(fairness, "auc_by_group.csv")
            log_metrics({"auc_min_group": float(fairness.auc.min())} if fairness.auc.notna().any() else {})
        version = tracking.log_model(
            champion, X.head(200), registered,
            what=(f"Risk of a new {target[5:]} diagnosis within the horizon, for a patient without it"
                  if risk else f"P(convert | contacted) for planned campaign {target}")
                 + ": served predict returns [P(no), P(yes)] for rows of the patient features the signature names"
                 + ("." if risk else " (target_share = the patient's share of spend in the campaign's category)."),
            why=f"{evaluation.why} ({len(y)} rows, validation {evaluation.validation}; every family in "
                f"scorecard.csv); refitted on {len(full_y)} rows.", predict_fn="predict_proba")
    return FittedTarget(champion, evaluation, tracker.run_url(champion_run), fairness, f"{registered} v{version}")


def _campaign_inputs(con) -> tuple[list[str], pd.DataFrame, list[tuple]]:
    """The feature columns, past contacts and planned campaigns (every patient's features are read
    only to score them, by lib.campaign_models.write_scores)."""
    return (feature_columns(con, CURRENT_FEATURES),
            con.execute(f"SELECT * FROM {TRAINING_TABLE} ORDER BY campaign_id, patient_key").fetchdf(),
            [(cid, category, channel) for cid, _, channel, category, _ in con.execute(PLANNED_CAMPAIGNS_SQL).fetchall()])


def _share_means(con, planned: list[tuple], columns: list[str]) -> dict[str, float]:
    """Everyone's mean share of spend in each planned campaign's category (for proxy scores)."""
    means = {}
    for _, category, _ in planned:
        column = target_share_sql(category, columns)
        means[category] = (float(con.execute(SHARE_MEAN_SQL.format(column=quote_ident(column))).fetchall()[0][0])
                           if column in columns else 0.0)
    return means


def _campaign_targets(context, tracker: MlflowTracker, config: PropensityConfig, columns: list[str],
                      training: pd.DataFrame, planned: list[tuple], share_means: dict[str, float]):
    """P(convert | contacted) for each planned campaign: its scorer, summary rows, MLflow links."""
    scorers, summary, links = [], [], {}
    for campaign_id, category, channel in planned:
        rows, basis = training_rows_for(training, category, channel, min_rows=config.min_campaign_rows)
        model_columns = campaign_model_columns(columns, pooled=basis == cm.POOLED)
        if rows.empty:
            context.log.warning("Planned campaign %s: no past campaign to learn from (%s); scored by the proxy "
                                "(past response to any campaign x affinity for %s), model = %s.",
                                campaign_id, basis, category, cm.PROXY_MODEL)
            scorers.append(cm.Scorer(campaign_id, cm.PROXY_MODEL, cm.proxy_predictor(
                category, columns, cm.past_response_rate(training), share_means[category])))
            summary.append({"target": campaign_id, "basis": f"{basis}: proxy score", "model": cm.PROXY_MODEL})
            continue
        rows = rows.iloc[stratified_cap(rows.converted.to_numpy(), config.max_training_rows, config.seed)]
        fit = _fit_target(context, tracker, campaign_id, rows[model_columns], rows.converted.to_numpy(),
                          rows.patient_key.to_numpy(), pd.to_datetime(rows.start_date).to_numpy(),
                          {"basis": basis, "target_category": category, "channel": channel}, config)
        scorers.append(cm.Scorer(campaign_id, fit.evaluation.champion, cm.model_predictor(
            cm.probabilities(fit.champion), model_columns, category, columns)))
        links[campaign_id] = fit.run_url
        summary.append(fit.summary(campaign_id, basis))
    return scorers, summary, links


def _risk_targets(context, tracker: MlflowTracker, config: PropensityConfig, columns: list[str],
                  training: dict[str, pd.DataFrame]):
    """The risk of a new diagnosis of each condition within the horizon: its scorer (a patient who
    already has the condition is not scored, contract), summary rows, MLflow links. Trained and
    validated on features.risk_training."""
    scorers, summary, links = [], [], {}
    for code, rows in training.items():
        target, model_columns = f"risk:{code}", risk_model_columns(columns, code)
        y = rows.new_diagnosis.to_numpy()
        fit = _fit_target(
            context, tracker, target, rows[model_columns], y, rows.patient_key.to_numpy(),
            rows.index_date.to_numpy(),
            {"condition_code": code, "new_diagnoses": int(y.sum()),
             "horizon_days": int((rows.horizon_end - rows.index_date).dt.days.iloc[0]),
             "index_dates": ", ".join(sorted(str(d) for d in rows.index_date.dt.date.unique()))}, config,
            by_group={"gender": rows["_gender"].reset_index(drop=True),
                      "age_band": rows["_age_band"].reset_index(drop=True)})
        scorers.append(cm.Scorer(target, fit.evaluation.champion,
                                 cm.model_predictor(cm.probabilities(fit.champion), model_columns), not_for_code=code))
        links[target] = fit.run_url
        worst = fit.fairness.dropna(subset=["auc"]).sort_values("auc").head(1) if fit.fairness is not None else None
        summary.append({**fit.summary(target, f"{int(y.sum())} new diagnoses at {rows.index_date.nunique()} "
                                              "index dates"),
                        "weakest_group": (f"{worst.dimension.iloc[0]}={worst.group.iloc[0]} "
                                          f"AUC {worst.auc.iloc[0]:.3f}") if worst is not None and len(worst) else None})
    return scorers, summary, links


@dg.asset(
    key=["marts", "propensity_scores"], group_name="campaigns", kinds={"duckdb", "scikitlearn", "mlflow"},
    pool=WAREHOUSE_POOL, automation_condition=REFRESH_WHEN_INPUTS_CHANGE,
    deps=[dg.AssetKey(["features", "campaign_training"]), dg.AssetKey(["features", "risk_training"]),
          dg.AssetKey(["marts", "patient_profiles"]), dg.AssetKey(["staging", "diagnoses"])],
)
def propensity_scores(context: dg.AssetExecutionContext, config: PropensityConfig, warehouse: Warehouse,
                      tracker: MlflowTracker) -> dg.MaterializeResult:
    """P(convert | contacted) for each planned campaign, and the risk of each common chronic condition."""
    with warehouse.session() as con:
        columns, training, planned = _campaign_inputs(con)
        share_means = _share_means(con, planned, columns)
        conditions = con.execute(RISK_CONDITIONS_SQL, {"min_positives": config.min_positives,
                                                       "conditions": config.risk_conditions}).fetchall()
        risk_training = {code: con.execute(RISK_ROWS_SQL, {"code": code, "seed": config.seed,
                                                           "max_rows": config.max_training_rows}).fetchdf()
                         for code, _ in conditions}
    if not conditions:
        context.log.warning("No condition has %d new diagnoses in the index windows of %s: no disease-risk "
                            "target this run (a model learnt from fewer would rank by chance).",
                            config.min_positives, RISK_TRAINING_TABLE)
    campaign_scorers, campaign_summary, campaign_links = _campaign_targets(context, tracker, config, columns,
                                                                           training, planned, share_means)
    risk_scorers, risk_summary, risk_links = _risk_targets(context, tracker, config, columns, risk_training)
    summary, links = campaign_summary + risk_summary, {**campaign_links, **risk_links}
    with warehouse.transaction() as con:
        cm.write_scores(con, cm.scoring_sql([code for code, _ in conditions]), campaign_scorers + risk_scorers,
                        "marts.propensity_scores", SCORE_COLUMNS)
        n = row_count(con, "marts.propensity_scores")
    table = pd.DataFrame(summary)
    return dg.MaterializeResult(metadata={
        "dagster/row_count": n,
        "targets": dg.MetadataValue.md(table.to_markdown(index=False) if len(table) else "(no targets)"),
        **{f"mlflow_run_{t}": dg.MetadataValue.url(u) for t, u in links.items()},
    })


@dg.asset(
    key=["marts", "uplift_scores"], group_name="campaigns", kinds={"duckdb", "scikitlearn", "mlflow"},
    pool=WAREHOUSE_POOL, automation_condition=REFRESH_WHEN_INPUTS_CHANGE,
    deps=[dg.AssetKey(["features", "campaign_training"]), dg.AssetKey(["marts", "patient_profiles"])],
)
def uplift_scores(context: dg.AssetExecutionContext, config: PropensityConfig, warehouse: Warehouse,
                  tracker: MlflowTracker) -> dg.MaterializeResult:
    """Expected uplift per patient and planned campaign from the better of a T- and an X-learner (out-of-fold
    Qini) on past treated and control arms."""
    with warehouse.session() as con:
        columns, training, planned = _campaign_inputs(con)
    scorers, summary, runs = [], [], {}
    for campaign_id, category, _ in planned:
        rows, basis = cm.uplift_training_rows(training, category, config.min_campaign_rows)
        model_columns = campaign_model_columns(columns, pooled=basis == cm.POOLED)
        if not cm.has_both_arms_and_outcomes(rows):
            context.log.warning("Planned campaign %s: no past treated and control arms; no uplift model.", campaign_id)
            continue
        rows = rows.iloc[stratified_cap(rows.converted.to_numpy() * 2 + (rows.arm == "treatment").to_numpy(),
                                        config.max_training_rows, config.seed)].reset_index(drop=True)
        X, y, treated = rows[model_columns], rows.converted.to_numpy(), (rows.arm == "treatment").to_numpy()
        learner, qinis, oof = cm.best_uplift_learner(X, y, treated, rows.patient_key.to_numpy(), config.seed)
        qini = qinis[learner]
        model = UPLIFT_LEARNERS[learner](seed=config.seed).fit(X, y, treated)
        scorers.append(cm.Scorer(campaign_id, learner, cm.model_predictor(model.predict, model_columns, category,
                                                                          columns)))
        for name, scores in oof.items():
            run = _log_uplift(context, tracker, campaign_id, name, name == learner, basis, len(rows),
                              qini_curve(y, treated, scores))
            runs[campaign_id] = run if name == learner else runs.get(campaign_id)
        if not cm.ranks_by_uplift(qini):
            context.log.warning("Planned campaign %s: the uplift model's Qini on past contacts is %.4f (no better "
                                "than random targeting): its audience is ranked by propensity instead.", campaign_id,
                                qini)
        summary.append({"campaign_id": campaign_id, "basis": basis, "model": learner, "qini_auc": round(qini, 5),
                        "ranks_audience": cm.ranks_by_uplift(qini), "mlflow": tracker.run_url(runs[campaign_id])})
    with warehouse.transaction() as con:
        cm.write_scores(con, cm.scoring_sql([]), scorers, "marts.uplift_scores", UPLIFT_COLUMNS)
        means = dict(con.execute(MEAN_UPLIFT_SQL).fetchall())
        for row in summary:  # the champion's mean expected uplift over every profiled patient
            row["mean_expected_uplift"] = round(float(means[row["campaign_id"]]), 4)
            with tracker.resume(runs[row["campaign_id"]]):
                log_metrics({"mean_expected_uplift": float(means[row["campaign_id"]])})
        models = pd.DataFrame(summary, columns=list(UPLIFT_MODEL_COLUMNS)).astype(UPLIFT_MODEL_COLUMNS)
        con.write_frame(models, "marts.uplift_models", query=UPLIFT_MODELS_SQL)
        n = row_count(con, "marts.uplift_scores")
    table = pd.DataFrame(summary)
    return dg.MaterializeResult(metadata={
        "dagster/row_count": n,
        "models": dg.MetadataValue.md(table.to_markdown(index=False) if len(table) else "(no planned campaigns)"),
    })


def _log_uplift(context, tracker: MlflowTracker, campaign_id: str, learner: str, champion: bool, basis: str,
                rows: int, curve: pd.DataFrame):
    """One MLflow run per planned campaign and uplift learner with its out-of-fold Qini curve; returns the run
    (the champion's gets its mean expected uplift once the patients are scored)."""
    qini = float((curve.qini - curve.random).mean() / max(len(curve), 1))
    with tracker.start_run(context, "medmkt-uplift", f"{campaign_id} · {learner}",
                           tags={"target": campaign_id, "champion": str(champion).lower(), "method": learner}) as run:
        log_params({"campaign_id": campaign_id, "basis": basis, "training_rows": rows, "learner": learner})
        log_metrics({"qini_auc": qini})
        set_tags({"ranks_audience": str(champion and cm.ranks_by_uplift(qini)).lower()})
        step = max(len(curve) // 200, 1)  # about 200 points: enough to draw, no row-level detail
        tracking.log_frame(curve.iloc[::step].round(4), "qini_curve.csv")
        tracking.log_figure(plots.qini_plot(curve.iloc[::step]), "qini_curve.png")
        return run
