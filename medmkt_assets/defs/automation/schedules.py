"""Schedules (times in Asia/Shanghai). Ingestion and retraining run unless switched off;
the campaign report waits until a user switches it on, since not every team runs campaigns."""
import dagster as dg

from medmkt_assets.defs.automation.jobs import (
    campaign_report_job,
    ingestion_job,
    model_retraining_job,
    triggered_by,
)

TIMEZONE = "Asia/Shanghai"

nightly_ingestion = dg.ScheduleDefinition(
    name="nightly_ingestion", job=ingestion_job, cron_schedule="0 2 * * *", execution_timezone=TIMEZONE,
    default_status=dg.DefaultScheduleStatus.RUNNING, tags=triggered_by("schedule", "nightly_ingestion"),
    description="02:00 every night: reload sources and batches, stage, refresh profiles and features.")
weekly_model_retraining = dg.ScheduleDefinition(
    name="weekly_model_retraining", job=model_retraining_job, cron_schedule="0 4 * * 1",
    execution_timezone=TIMEZONE, default_status=dg.DefaultScheduleStatus.RUNNING,
    tags=triggered_by("schedule", "weekly_model_retraining"),
    description="Mondays 04:00: refit every model on the latest features and promote champions.")
daily_campaign_report = dg.ScheduleDefinition(
    name="daily_campaign_report", job=campaign_report_job, cron_schedule="0 7 * * *", execution_timezone=TIMEZONE,
    default_status=dg.DefaultScheduleStatus.STOPPED, tags=triggered_by("schedule", "daily_campaign_report"),
    description="07:00 daily: campaign effects for the morning review (off until switched on).")

schedules = [nightly_ingestion, weekly_model_retraining, daily_campaign_report]
