"""Models on the Spark engine, where pulling every row to the driver would not scale.

Each function takes Spark DataFrames (from SparkWarehouseSession.dataframe) and returns what the
DuckDB path's pandas code returns, so the asset and the rest of lib/ stay engine-blind.
PySpark is imported inside the functions: this module loads without it.
"""
from __future__ import annotations

import numpy as np
import pandas as pd


def frequent_itemsets(baskets, min_count: int, max_len: int | None) -> tuple[pd.DataFrame, int]:
    """The itemsets of (basket_id, item_id) rows in at least `min_count` baskets, of at most `max_len`
    items, counted in Spark: columns itemsets (frozensets) and count, as lib.models.rules.frequent_itemsets
    gives, and the number of baskets.

    Level by level (Apriori): a basket's k-itemsets grow from its frequent (k-1)-itemsets by one
    larger frequent item, are counted, and only the frequent ones grow further, so the work is
    bounded by `max_len`. MLlib's FPGrowth has no length bound: on patient histories (dozens of
    items each) it enumerated every length and did not finish on the 111-patient Synthea sample.
    """
    from pyspark.sql import functions as F

    pairs = (baskets.where(F.col("item_id").isNotNull())
             .select("basket_id", F.col("item_id").cast("string").alias("item_id")).distinct().cache())
    n = pairs.select("basket_id").distinct().count()
    singles = pairs.groupBy("item_id").count().where(F.col("count") >= min_count).collect()
    found = [(frozenset([row["item_id"]]), row["count"]) for row in singles]
    if len(singles) >= 2 and max_len != 1:
        frequent = pairs.join(F.broadcast(pairs.sparkSession.createDataFrame(
            [(row["item_id"],) for row in singles], "item_id string")), "item_id").cache()
        instances = frequent.select("basket_id", F.col("item_id").alias("i1"))
        k = 2
        while max_len is None or k <= max_len:
            columns = [f"i{j}" for j in range(1, k + 1)]
            grown = (instances.join(frequent.withColumnRenamed("item_id", columns[-1]), "basket_id")
                     .where(F.col(columns[-1]) > F.col(columns[-2])))
            counts = grown.groupBy(*columns).count().where(F.col("count") >= min_count).cache()
            rows = counts.collect()
            if not rows:
                break
            found += [(frozenset(row[c] for c in columns), row["count"]) for row in rows]
            instances = grown.join(F.broadcast(counts.select(*columns)), columns)
            k += 1
        frequent.unpersist()
    pairs.unpersist()
    return pd.DataFrame({"itemsets": pd.Series([f for f, _ in found], dtype=object),
                         "count": np.array([c for _, c in found], dtype=np.int64)}), n


def map_batches(frame, score_batch, schema: str):
    """`score_batch(pandas batch) -> pandas rows` over every partition of a Spark DataFrame, in the
    executors (mapInPandas): fitted scikit-learn models travel with the function, rows stay put."""
    def run(batches):
        for batch in batches:
            yield score_batch(batch)

    return frame.mapInPandas(run, schema)


def map_groups(frame, key: str, groups: int, apply, schema: str):
    """`apply(pandas rows) -> pandas rows` over `groups` groups of a Spark DataFrame's rows, each group
    every row of the keys whose `key` falls in it (key mod groups), in the executors (applyInPandas):
    for functions of whole histories, such as serving a patient from every order line of theirs."""
    from pyspark.sql import functions as F

    return (frame.withColumn("_group", F.pmod(F.col(key), F.lit(groups)))
            .groupBy("_group").applyInPandas(lambda rows: apply(rows.drop(columns="_group")), schema))
