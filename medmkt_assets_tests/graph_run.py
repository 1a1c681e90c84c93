"""The whole graph (its assets, and with `--checks` its quality gates), then a sensor batch (with its
gates), on Spark in a process of its own:
`python -m medmkt_assets_tests.graph_run --source S --root R (--remote sc://.. | --master spark://..) [--checks]`;
and a reader: `.. --read marts.recommendations .. --metastore M --root R` opens a new local Spark on the
metastore folder M and writes each table, read by name from the catalog, to R/<table>.parquet, and
R/catalog.json: each table's location and every database's tables.

A Python process holds one Spark driver (or one Spark Connect session, never both), and the test
process has its local Spark: the Spark Connect and standalone cluster tests run the graph here.
The warehouse, lakehouse and MLflow store go under R; R/result.json says what failed.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from medmkt_assets_tests.conftest import (
    demo_batch,
    make_resources,
    materialize_all,
    run_sensor_batch,
)


def failed_steps(result) -> list[str]:
    return [e.step_key for e in result.all_events if e.is_step_failure]


def check_verdicts(result) -> list[list]:
    """[check name, passed] of every asset check a run evaluated, sorted."""
    return sorted([e.asset_check_evaluation_data.check_name, e.asset_check_evaluation_data.passed]
                  for e in result.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION")


def main(argv: list[str] | None = None) -> None:
    from medmkt_assets.definitions import build_definitions
    from medmkt_assets.settings import Settings

    parser = argparse.ArgumentParser()
    parser.add_argument("--source", type=Path)
    parser.add_argument("--root", type=Path, required=True)
    parser.add_argument("--remote", default="")
    parser.add_argument("--master", default="")
    parser.add_argument("--read", nargs="*", default=[])
    parser.add_argument("--metastore", default="")
    parser.add_argument("--checks", action="store_true", help="the graph's quality gates too")
    args = parser.parse_args(argv)
    if args.read:
        read_by_name(args.read, args.metastore, args.root)
        return
    spark = {"spark_remote": args.remote} if args.remote else {"spark_master": args.master}
    resources = make_resources(args.source, args.root / "warehouse.duckdb",
                               f"sqlite:///{args.root / 'mlflow' / 'mlflow.db'}", engine="spark", **spark)
    definitions = build_definitions(Settings.from_env())
    started = time.time()
    # On Spark the gates are a third of a whole-graph run (each metric is a Spark query): one of the
    # tests' runs holds their verdicts to DuckDB's (--checks), the other runs the assets only. The
    # sensor batch below runs its gates in both.
    graph = materialize_all(definitions, resources, checks=args.checks)
    graph_seconds = time.time() - started
    batch = run_sensor_batch(definitions, resources, demo_batch(args.source)) if graph.success else None
    (args.root / "result.json").write_text(json.dumps({
        "graph": failed_steps(graph), "graph_success": graph.success, "graph_seconds": round(graph_seconds),
        "graph_checks": check_verdicts(graph),
        "batch": failed_steps(batch) if batch else None, "batch_success": bool(batch and batch.success),
        "batch_seconds": round(time.time() - started - graph_seconds)}))


def read_by_name(tables: list[str], metastore: str, out: Path) -> None:
    from medmkt_assets.lib.engine.spark.session import spark_session

    spark = spark_session("local[1]", driver_memory="1g", partitions=2, metastore=metastore)
    try:
        locations = {}
        for table in tables:
            spark.table(table).toPandas().to_parquet(out / f"{table}.parquet")
            locations[table] = (spark.sql(f"DESCRIBE TABLE EXTENDED {table}").where("col_name = 'Location'")
                                .collect()[0][1])
        schemas = {d.name: sorted(t.name for t in spark.catalog.listTables(d.name))
                   for d in spark.catalog.listDatabases()}
        (out / "catalog.json").write_text(json.dumps({"locations": locations, "schemas": schemas}))
    finally:
        spark.stop()


if __name__ == "__main__":
    main()
