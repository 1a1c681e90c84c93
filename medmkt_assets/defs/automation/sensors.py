"""Sensors: incoming batch files, downstream automation, and alerts on failed runs."""
import json

import dagster as dg

from medmkt_assets.defs.automation.jobs import incoming_batch_job, triggered_by
from medmkt_assets.defs.resources import AlertFolder, SourceFiles
from medmkt_assets.lib.ops.alerts import FileAlertSink
from medmkt_assets.lib.sources import incoming

# What a batch in the export's own format can change: everything its adapter maps.
NATIVE_BATCH_TABLES = ("patients", "products", "orders", "diagnoses")


@dg.sensor(job=incoming_batch_job, minimum_interval_seconds=15, default_status=dg.DefaultSensorStatus.RUNNING,
           description="New <table>/<file>.csv|.parquet (or, for a FHIR source, export/<file>.ndjson|.json) in "
                       "MEDMKT_INCOMING_DIR: one ingestion run per batch "
                       "(run key = content hash), once the file has stopped growing.")
def incoming_files(context: dg.SensorEvaluationContext, sources: SourceFiles, alerts: AlertFolder):
    drop_zone = sources.incoming_path
    seen = json.loads(context.cursor) if context.cursor else {}
    waiting, requests = {}, []
    for candidate in incoming.scan(drop_zone, sources.source_format):
        key = str(candidate.path)
        if seen.get(key) != candidate.size:  # new or still growing: look again next tick
            waiting[key] = candidate.size
            continue
        digest = incoming.sha256(candidate.path)
        if incoming.already_accepted(drop_zone, candidate.table, digest):
            moved = incoming.set_aside_duplicate(drop_zone, candidate)
            context.log.info("%s: same content as an accepted batch, set aside in %s", candidate.path.name, moved)
            continue
        problem = incoming.probe(candidate.table, candidate.path)
        if problem:
            moved = incoming.reject(drop_zone, candidate, problem)
            FileAlertSink(alerts.folder).send({"kind": "batch_rejected", "id": candidate.path.name,
                                               "title": f"Batch for {candidate.table} rejected",
                                               "reason": problem, "moved_to": str(moved)})
            context.log.warning("Rejected %s: %s", candidate.path.name, problem)
            continue
        accepted = incoming.accept(drop_zone, candidate, digest)
        tables = NATIVE_BATCH_TABLES if candidate.table == incoming.NATIVE else (candidate.table,)
        requests.append(dg.RunRequest(
            run_key=f"{candidate.table}:{digest}",
            # the as-of time is resolved again: a batch of new days moves it (lib.sources.as_of)
            asset_selection=[dg.AssetKey(["ops", "source_files"]), dg.AssetKey(["staging", "as_of"])]
                            + [dg.AssetKey([layer, t]) for t in tables for layer in ("raw", "staging")],
            tags={**triggered_by("sensor", "incoming_files"), "medmkt/batch_table": candidate.table,
                  "medmkt/batch_file": accepted.name, "medmkt/batch_sha256": digest},
        ))
    context.update_cursor(json.dumps(waiting))
    if requests:
        return requests
    return dg.SkipReason(f"No complete new batch ({len(waiting)} file(s) waiting to stop growing)."
                         if waiting else "No new batch files.")


refresh_downstream = dg.AutomationConditionSensorDefinition(
    "refresh_downstream", target=dg.AssetSelection.all(), default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=30, run_tags=triggered_by("sensor", "refresh_downstream"),
    description="Declarative automation: profiles, features and models refresh eagerly after their inputs change.")


@dg.run_failure_sensor(default_status=dg.DefaultSensorStatus.RUNNING,
                       description="Writes an alert (log line + JSON file under MEDMKT_ALERT_DIR) for every failed run.")
def alert_on_failure(context: dg.RunFailureSensorContext, alerts: AlertFolder):
    run = context.dagster_run
    FileAlertSink(alerts.folder).send({
        "kind": "run_failed", "id": run.run_id, "title": f"Run of {run.job_name} failed",
        "job": run.job_name, "run_id": run.run_id, "error": context.failure_event.message,
        "tags": {k: v for k, v in run.tags.items() if k.startswith("medmkt/")},
    })


sensors = [incoming_files, refresh_downstream, alert_on_failure]
