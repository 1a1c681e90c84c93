"""What one operation costs on a local Spark, whatever the data: `python -m medmkt_assets.bench.spark_ops`.

At demo sizes a Spark run is a few hundred statements, each paying for its jobs and catalog calls,
not for its rows. This times each kind on a table of 1,000 rows, in the session the pipeline opens
(same settings, an embedded Derby metastore), `--repeat` times after one warm-up, and prints a
Markdown table (milliseconds per operation).
"""
from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> None:
    from medmkt_assets.lib.engine.spark.session import spark_session

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args(argv)
    root = Path(tempfile.mkdtemp(prefix="medmkt_spark_ops_"))
    spark = spark_session(args.master, partitions=args.partitions, driver_memory="2g",
                          metastore=str(root / "metastore"))
    try:
        base, written = str(root / "base"), iter(range(10**9))
        spark.range(1000).selectExpr("id", "id % 7 AS g").write.parquet(base)
        spark.sql(f"CREATE DATABASE m LOCATION '{root / 'm'}'")
        spark.sql(f"CREATE TABLE m.t USING parquet LOCATION '{base}'")
        operations = {
            "write 1,000 rows as Parquet": lambda: spark.range(1000).selectExpr("id", "id % 7 AS g")
            .write.parquet(str(root / f"w{next(written)}")),
            "write a GROUP BY (a shuffle) as Parquet": lambda: spark.read.parquet(base).groupBy("g").count()
            .write.parquet(str(root / f"w{next(written)}")),
            "collect a GROUP BY": lambda: spark.read.parquet(base).groupBy("g").count().collect(),
            "collect a join and GROUP BY": lambda: spark.sql(
                f"SELECT a.g, count(*) FROM parquet.`{base}` a JOIN parquet.`{base}` b USING (id) GROUP BY a.g"
            ).collect(),
            "read a Parquet folder's schema": lambda: spark.read.parquet(base).columns,
            "catalog: tableExists": lambda: spark.catalog.tableExists("m.t"),
            "catalog: DESCRIBE TABLE EXTENDED": lambda: spark.sql("DESCRIBE TABLE EXTENDED m.t").collect(),
            "catalog: SHOW TBLPROPERTIES": lambda: spark.sql("SHOW TBLPROPERTIES m.t ('p')").collect(),
            "catalog: a table's schema": lambda: spark.table("m.t").schema,
            "catalog: ALTER TABLE SET LOCATION": lambda: spark.sql(f"ALTER TABLE m.t SET LOCATION '{base}'"),
            "catalog: ALTER TABLE SET TBLPROPERTIES": lambda: spark.sql(
                "ALTER TABLE m.t SET TBLPROPERTIES ('p' = 'v')"),
        }
        print(f"| operation ({args.master}, {args.partitions} shuffle partitions) | ms |\n|---|---|")
        for name, operation in operations.items():
            operation()  # warm-up: the first call compiles and caches
            started = time.perf_counter()
            for _ in range(args.repeat):
                operation()
            print(f"| {name} | {1000 * (time.perf_counter() - started) / args.repeat:.0f} |", flush=True)
    finally:
        spark.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
