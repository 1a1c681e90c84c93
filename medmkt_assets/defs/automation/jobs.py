"""Named jobs a data team launches from the UI (or that schedules and sensors launch)."""
import dagster as dg

# What started a run, beside Dagster's own dagster/sensor_name and dagster/schedule_name: one
# tag to filter the Runs page by. Named jobs default to "manual" (a launch from the UI or the
# CLI); the sensors' and schedules' run requests override it with their own name. A job's
# `tags` (not only `run_tags`) reach every run: a launch from the UI merges the job's `tags`.
TRIGGER_TAG = "medmkt/trigger"
MANUAL = {TRIGGER_TAG: "manual"}


def triggered_by(kind: str, name: str) -> dict[str, str]:
    """The trigger tag of a run a sensor or schedule starts, e.g. {"medmkt/trigger": "sensor:incoming_files"}."""
    return {TRIGGER_TAG: f"{kind}:{name}"}


INGESTION = dg.AssetSelection.groups("ingest", "staging")
FEATURES = dg.AssetSelection.groups("profiles")
MODELS = dg.AssetSelection.groups("segments", "rules", "recommend", "campaigns", "privacy", "insight")
CAMPAIGN_REPORT = dg.AssetSelection.assets(
    dg.AssetKey(["marts", "campaign_effects"]), dg.AssetKey(["marts", "campaign_effects_by_group"]))

full_refresh_job = dg.define_asset_job(
    "full_refresh", tags=MANUAL, selection=dg.AssetSelection.all(),
    description="Everything: ingest the sources, stage, profile, retrain every model, report and export audiences.")
ingestion_job = dg.define_asset_job(
    "ingestion", tags=MANUAL, selection=INGESTION | FEATURES,
    description="Load the source files and accepted batches, stage them with their quality gates, refresh "
                "patient profiles, demand trends and model features.")
model_retraining_job = dg.define_asset_job(
    "model_retraining", tags=MANUAL, selection=MODELS,
    description="Refit segments, association rules, recommenders, propensity/risk and uplift models; rebuild "
                "audiences; publish the insight app's snapshot. Every fit is an MLflow run; champions are promoted "
                "by alias.")
campaign_report_job = dg.define_asset_job(
    "campaign_report", tags=MANUAL, selection=CAMPAIGN_REPORT,
    description="Campaign effects (uplift with confidence intervals, ROI) overall, by segment and by channel.")
incoming_batch_job = dg.define_asset_job(
    "ingest_incoming_batch", tags=MANUAL, selection=INGESTION,
    description="Started by the incoming-files sensor for one accepted batch: reload that table's raw and "
                "staging tables; downstream assets follow through declarative automation.")

jobs = [full_refresh_job, ingestion_job, model_retraining_job, campaign_report_job, incoming_batch_job]
