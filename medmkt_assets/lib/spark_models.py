"""Models on the Spark engine, where pulling every row to the driver would not scale.

Each function takes Spark DataFrames (from SparkWarehouseSession.dataframe) and returns what the
DuckDB path's pandas code returns, so the asset and the rest of lib/ stay engine-blind.
PySpark is imported inside the functions: this module loads without it.
"""
from __future__ import annotations

import numpy as np
import pandas as pd


def frequent_itemsets(baskets, min_count: int, max_len: int | None) -> tuple[pd.DataFrame, int]:
    """Spark MLlib FPGrowth over (basket_id, item_id) rows: the itemsets in at least `min_count`
    baskets (columns itemsets as frozensets, count, as lib.rules.frequent_itemsets gives) and the
    number of baskets. MLlib keeps itemsets of every size; longer than `max_len` are dropped here."""
    from pyspark.ml.fpm import FPGrowth
    from pyspark.sql import functions as F

    transactions = (baskets.where(F.col("item_id").isNotNull()).groupBy("basket_id")
                    .agg(F.array_distinct(F.collect_list("item_id")).alias("items")).cache())
    n = transactions.count()
    if n == 0:
        transactions.unpersist()
        return pd.DataFrame({"itemsets": pd.Series(dtype=object), "count": pd.Series(dtype=np.int64)}), 0
    # MLlib keeps itemsets seen in ceil(minSupport * n) baskets or more: (min_count - 0.5) / n gives min_count
    model = FPGrowth(itemsCol="items", minSupport=(min_count - 0.5) / n, minConfidence=1.0).fit(transactions)
    found = model.freqItemsets
    if max_len is not None:
        found = found.where(F.size("items") <= max_len)
    rows = found.toPandas()
    transactions.unpersist()
    return pd.DataFrame({"itemsets": [frozenset(items) for items in rows["items"]],
                         "count": rows["freq"].astype(np.int64)}), n
