"""Child process of the benchmark: materialize every asset once and time each step.

Run as `python -m medmkt_assets.bench.worker --source DIR --warehouse FILE --mlflow URI
--out result.json`; the parent reads the JSON and measures the whole run's memory itself.
The engine comes from the environment as in any run (MEDMKT_ENGINE, MEDMKT_LAKEHOUSE,
MEDMKT_SPARK_MASTER, MEDMKT_SPARK_PARTITIONS; the parent sets them). A step's peak RSS
covers this process and what it started: the Spark JVM that does a step's work on Spark (and
its Python workers), and joblib's workers.
"""
from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import dagster as dg

from medmkt_assets.bench.memory import RssSampler, peak_rss_bytes


def step_records(entries: list, sampler: RssSampler) -> list[dict]:
    """Per-step seconds, peak RSS and rows from the run's event log entries (which carry timestamps).

    peak_rss_mb is this process and its descendants together; python_peak_rss_mb is this process,
    jvm_peak_rss_mb the Spark JVM (which lives across steps, so its figure is what it held during
    the step, not what the step added)."""
    starts, rows = {}, {}
    records = []
    for entry in entries:
        event = entry.dagster_event
        if event is None:
            continue
        key = event.step_key
        if event.event_type == dg.DagsterEventType.STEP_START:
            starts[key] = entry.timestamp
        elif event.event_type == dg.DagsterEventType.ASSET_MATERIALIZATION:
            meta = event.event_specific_data.materialization.metadata
            if "dagster/row_count" in meta:
                rows[key] = int(meta["dagster/row_count"].value)
        elif event.event_type in (dg.DagsterEventType.STEP_SUCCESS, dg.DagsterEventType.STEP_FAILURE):
            start = starts.get(key, entry.timestamp)
            total, own, below = (round(b / 2**20, 1) for b in sampler.peaks_between(start, entry.timestamp))
            records.append({
                "step": key, "status": "ok" if event.event_type == dg.DagsterEventType.STEP_SUCCESS else "failed",
                "seconds": round(entry.timestamp - start, 3),
                "peak_rss_mb": total, "python_peak_rss_mb": own, "jvm_peak_rss_mb": below,
                "rows": rows.get(key),
            })
    return records


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--source", required=True)
    parser.add_argument("--warehouse", required=True)
    parser.add_argument("--mlflow", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--select", default="*")
    args = parser.parse_args()
    work = Path(args.warehouse).parent  # every output of the run beside its warehouse, none in the repo's data/
    os.environ.update({"MEDMKT_SOURCE_DIR": args.source, "MEDMKT_WAREHOUSE": args.warehouse,
                       "MLFLOW_TRACKING_URI": args.mlflow, "MEDMKT_EXPORT_DIR": str(work / "exports"),
                       "MEDMKT_QUALITY_DIR": str(work / "quality"), "MEDMKT_ALERT_DIR": str(work / "alerts"),
                       "MEDMKT_INCOMING_DIR": str(work / "incoming"),
                       "MEDMKT_INSIGHT_SNAPSHOT": str(work / "insight" / "insight.duckdb")})
    os.environ.setdefault("MEDMKT_PSEUDONYM_KEY", "medmkt-benchmark-key")
    from medmkt_assets.definitions import (
        build_definitions,  # after the environment is set
    )

    defs = build_definitions()
    assets = list(defs.assets or []) + list(defs.asset_checks or [])
    resources = defs.resources
    with RssSampler() as sampler:
        start = time.time()
        instance = dg.DagsterInstance.ephemeral()
        result = dg.materialize(assets, resources=resources, selection=args.select, raise_on_error=False,
                                instance=instance)
        seconds = time.time() - start
    Path(args.out).write_text(json.dumps({
        "success": result.success, "seconds": round(seconds, 2),
        "peak_rss_mb": round(peak_rss_bytes() / 2**20, 1), "steps": step_records(instance.all_logs(result.run_id), sampler),
    }, indent=1))


if __name__ == "__main__":
    main()
