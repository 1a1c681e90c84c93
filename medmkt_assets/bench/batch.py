"""Child process of the benchmark: a new orders batch of 1 % of the data, through the sensor path.

Run as `python -m medmkt_assets.bench.batch --source DIR --warehouse FILE --mlflow URI
--incoming DIR --out result.json` after the whole pipeline has built the warehouse. It
writes a CSV batch (1 % of the order lines, as new orders of existing patients) into
`<incoming>/orders/`, lets the `incoming_files` sensor find, hash, probe and accept it
(two ticks: the file must stop growing), then materializes exactly the run the sensor
requested (with its asset checks) on the existing warehouse. The parent reads the peak
RSS from the OS.
"""
from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import dagster as dg
import duckdb

from medmkt_assets.bench.memory import RssSampler
from medmkt_assets.bench.worker import step_records


def write_batch(source: Path, incoming: Path, share: float) -> tuple[Path, int]:
    """A CSV of `share` of the source's order lines, re-keyed as new orders (as a CRM would send)."""
    orders = next(source / f"orders.{s}" for s in ("parquet", "csv") if (source / f"orders.{s}").exists())
    target = incoming / "orders" / "batch_bench.csv"
    target.parent.mkdir(parents=True, exist_ok=True)
    reader = "read_parquet" if orders.suffix == ".parquet" else "read_csv"
    con = duckdb.connect()
    con.execute(f"""COPY (SELECT 'BENCH-' || order_id AS order_id, * EXCLUDE (order_id)
                          FROM {reader}('{orders}') USING SAMPLE {share * 100:g} PERCENT (bernoulli, 7))
                    TO '{target}' (HEADER, DELIMITER ',')""")
    (rows,) = con.execute(f"SELECT count(*) FROM read_csv('{target}')").fetchall()[0]
    con.close()
    return target, rows


def main() -> None:
    parser = argparse.ArgumentParser()
    for flag in ("--source", "--warehouse", "--mlflow", "--incoming", "--out"):
        parser.add_argument(flag, required=True)
    parser.add_argument("--share", type=float, default=0.01)
    args = parser.parse_args()
    os.environ.update({"MEDMKT_SOURCE_DIR": args.source, "MEDMKT_WAREHOUSE": args.warehouse,
                       "MLFLOW_TRACKING_URI": args.mlflow, "MEDMKT_INCOMING_DIR": args.incoming})
    os.environ.setdefault("MEDMKT_PSEUDONYM_KEY", "medmkt-benchmark-key")
    from medmkt_assets.definitions import (
        build_definitions,  # after the environment is set
    )
    from medmkt_assets.defs.automation.sensors import incoming_files

    defs = build_definitions()
    _, rows = write_batch(Path(args.source), Path(args.incoming), args.share)
    sensor_resources = {k: defs.resources[k] for k in ("sources", "alerts")}

    started = time.time()
    first = dg.build_sensor_context(resources=sensor_resources)
    incoming_files(first)  # the first look only remembers the size
    second = dg.build_sensor_context(cursor=first.cursor, resources=sensor_resources)
    requests = [r for r in incoming_files(second) or [] if isinstance(r, dg.RunRequest)]
    sensor_seconds = time.time() - started
    if len(requests) != 1:
        raise SystemExit(f"the sensor requested {len(requests)} runs for one batch, expected 1")
    (request,) = requests

    instance = dg.DagsterInstance.ephemeral()
    with RssSampler() as sampler:
        run_started = time.time()
        result = dg.materialize(list(defs.assets or []) + list(defs.asset_checks or []), resources=defs.resources,
                                selection=request.asset_selection, raise_on_error=False,
                                instance=instance, tags=request.tags)
        run_seconds = time.time() - run_started
    con = duckdb.connect(args.warehouse, read_only=True)
    (landed,) = con.execute("SELECT count(*) FROM staging.orders WHERE order_id LIKE 'BENCH-%'").fetchall()[0]
    con.close()
    Path(args.out).write_text(json.dumps({
        "success": result.success and landed > 0, "batch_rows": rows, "staged_batch_rows": landed,
        "sensor_seconds": round(sensor_seconds, 2), "run_seconds": round(run_seconds, 2),
        "seconds": round(sensor_seconds + run_seconds, 2),
        "assets": ", ".join(k.to_user_string() for k in request.asset_selection),
        "steps": step_records(instance.all_logs(result.run_id), sampler),
    }, indent=1))


if __name__ == "__main__":
    main()
