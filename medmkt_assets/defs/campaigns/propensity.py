"""Campaign training rows, marts.propensity_scores (campaign and disease-risk targets) and uplift scores."""
import dagster as dg
import pandas as pd
from mlflow import log_metrics
from pydantic import Field

from medmkt_assets.defs.resources import MlflowTracker, Warehouse
from medmkt_assets.defs.warehouse import (
    REFRESH_WHEN_INPUTS_CHANGE,
    WAREHOUSE_POOL,
    row_count,
)
from medmkt_assets.lib.models import campaign_models as cm
from medmkt_assets.lib.models.campaign_features import (
    TRAINING_TABLE,
    build_campaign_training,
)
from medmkt_assets.lib.models.disease_risk import (
    RISK_CONDITIONS_SQL,
    RISK_TRAINING_TABLE,
    build_risk_training,
    risk_training_rows,
)
from medmkt_assets.lib.models.targets import (
    CURRENT_FEATURES,
    FitSettings,
    campaign_inputs,
    campaign_targets,
    risk_targets,
    uplift_targets,
)
from medmkt_assets.lib.privacy.suppression import suppress_frame

# The published columns over the long scores `f` (lib.models.campaign_models.write_scores).
SCORE_COLUMNS = ("patient_key, CAST(f.target AS VARCHAR) AS target, f.score, CAST(f.model AS VARCHAR) AS model, "
                 "f.flag AS already_diagnosed")
UPLIFT_COLUMNS = ("patient_key, CAST(f.target AS VARCHAR) AS campaign_id, f.score AS expected_uplift, "
                  "CAST(f.model AS VARCHAR) AS model")
# Per planned campaign: the uplift model's Qini on past contacts with its 95 % bootstrap interval, and whether
# audiences may rank by it (only when the interval's lower end is above 0).
UPLIFT_MODEL_COLUMNS = {"campaign_id": "str", "basis": "str", "model": "str", "qini_auc": "float",
                        "qini_ci_low": "float", "qini_ci_high": "float", "ranks_audience": "bool",
                        "mean_expected_uplift": "float", "mlflow": "str"}
MEAN_UPLIFT_SQL = "SELECT campaign_id, avg(expected_uplift) FROM marts.uplift_scores GROUP BY campaign_id"
UPLIFT_MODELS_SQL = ("SELECT CAST(campaign_id AS VARCHAR) AS campaign_id, CAST(basis AS VARCHAR) AS basis, "
                     "CAST(model AS VARCHAR) AS model, "
                     "CAST(qini_auc AS DOUBLE) AS qini_auc, CAST(qini_ci_low AS DOUBLE) AS qini_ci_low, "
                     "CAST(qini_ci_high AS DOUBLE) AS qini_ci_high, CAST(ranks_audience AS BOOLEAN) AS ranks_audience "
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
        "Uplift, and propensity when fewer than two past campaigns can be held out: treated contacts of "
        "same-category campaigns needed to train on them alone; with fewer, every past campaign is used and "
        "the patient's share of spend in the target category carries the difference."))
    max_training_rows: int = Field(default=20_000, description="Training rows sampled (class balance kept) at scale.")
    max_selection_rows: int = Field(default=12_000, description=(
        "Rows (of the training rows, class balance kept) the model families are cross-validated on, and the "
        "most of a past campaign's and of the other campaigns' contacts a planned campaign's leave-one-campaign-"
        "out study uses; the champion is refitted on every training row."))
    max_campaign_contacts: int = Field(default=500_000, description=(
        "Past contacts the campaign models learn from (all when fewer): a sample by a hash of the patient key, "
        "the same on every engine, so no patient-sized table comes to the driver; each target then fits on at "
        "most max_training_rows of them."))
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
          dg.AssetKey(["staging", "diagnoses"]), dg.AssetKey(["staging", "as_of"])],
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


def _settings(config: PropensityConfig) -> FitSettings:
    return FitSettings(min_campaign_rows=config.min_campaign_rows, max_training_rows=config.max_training_rows,
                       max_selection_rows=config.max_selection_rows, seed=config.seed)


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
        inputs = campaign_inputs(con, config.max_campaign_contacts)
        conditions = con.execute(RISK_CONDITIONS_SQL, {"min_positives": config.min_positives,
                                                       "conditions": config.risk_conditions}).fetchall()
        risk_training = risk_training_rows(con, [code for code, _ in conditions], config.seed,
                                           config.max_training_rows)
    if not conditions:
        context.log.warning("No condition has %d new diagnoses in the index windows of %s: no disease-risk "
                            "target this run (a model learnt from fewer would rank by chance).",
                            config.min_positives, RISK_TRAINING_TABLE)
    runs, settings = tracker.for_asset(context), _settings(config)
    targets = (campaign_targets(runs, settings, inputs)
               + risk_targets(runs, settings, inputs.columns, risk_training))
    for warning in targets.warnings:
        context.log.warning(warning)
    with warehouse.transaction() as con:
        cm.write_scores(con, cm.scoring_sql([code for code, _ in conditions]), targets.scorers,
                        "marts.propensity_scores", SCORE_COLUMNS)
        n = row_count(con, "marts.propensity_scores")
    table = pd.DataFrame(targets.summary)
    return dg.MaterializeResult(metadata={
        "dagster/row_count": n,
        "targets": dg.MetadataValue.md(table.to_markdown(index=False) if len(table) else "(no targets)"),
        **{f"mlflow_run_{t}": dg.MetadataValue.url(u) for t, u in targets.links.items()},
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
        inputs = campaign_inputs(con, config.max_campaign_contacts)
    targets, runs = uplift_targets(tracker.for_asset(context), _settings(config), inputs)
    for warning in targets.warnings:
        context.log.warning(warning)
    with warehouse.transaction() as con:
        cm.write_scores(con, cm.scoring_sql([]), targets.scorers, "marts.uplift_scores", UPLIFT_COLUMNS)
        means = dict(con.execute(MEAN_UPLIFT_SQL).fetchall())
        for row in targets.summary:  # the champion's mean expected uplift over every profiled patient
            row["mean_expected_uplift"] = round(float(means[row["campaign_id"]]), 4)
            with tracker.resume(runs[row["campaign_id"]]):
                log_metrics({"mean_expected_uplift": float(means[row["campaign_id"]])})
        models = pd.DataFrame(targets.summary, columns=list(UPLIFT_MODEL_COLUMNS)).astype(UPLIFT_MODEL_COLUMNS)
        con.write_frame(models, "marts.uplift_models", query=UPLIFT_MODELS_SQL)
        n = row_count(con, "marts.uplift_scores")
    table = pd.DataFrame(targets.summary)
    return dg.MaterializeResult(metadata={
        "dagster/row_count": n,
        "models": dg.MetadataValue.md(table.to_markdown(index=False) if len(table) else "(no planned campaigns)"),
    })
