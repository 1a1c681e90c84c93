"""Named jobs a data team launches from the UI (or that schedules and sensors launch)."""
import dagster as dg

INGESTION = dg.AssetSelection.groups("ingest", "staging")
FEATURES = dg.AssetSelection.groups("profiles")
MODELS = dg.AssetSelection.groups("segments", "rules", "recommend", "campaigns")
CAMPAIGN_REPORT = dg.AssetSelection.keys(
    dg.AssetKey(["marts", "campaign_effects"]), dg.AssetKey(["marts", "campaign_effects_by_group"]))

full_refresh_job = dg.define_asset_job(
    "full_refresh", selection=dg.AssetSelection.all(),
    description="Everything: ingest the sources, stage, profile, retrain every model, report and export audiences.")
ingestion_job = dg.define_asset_job(
    "ingestion", selection=INGESTION | FEATURES,
    description="Load the source files and accepted batches, stage them with their quality gates, refresh "
                "patient profiles, demand trends and model features.")
model_retraining_job = dg.define_asset_job(
    "model_retraining", selection=MODELS,
    description="Refit segments, association rules, recommenders, propensity/risk and uplift models; rebuild "
                "audiences. Every fit is an MLflow run; champions are promoted by alias.")
campaign_report_job = dg.define_asset_job(
    "campaign_report", selection=CAMPAIGN_REPORT,
    description="Campaign effects (uplift with confidence intervals, ROI) overall, by segment and by channel.")
incoming_batch_job = dg.define_asset_job(
    "ingest_incoming_batch", selection=INGESTION,
    description="Started by the incoming-files sensor for one accepted batch: reload that table's raw and "
                "staging tables; downstream assets follow through declarative automation.")

jobs = [full_refresh_job, ingestion_job, model_retraining_job, campaign_report_job, incoming_batch_job]
