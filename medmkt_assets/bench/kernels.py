"""The analytics kernels alone, at the sizes the issues set targets for.

`python -m medmkt_assets.bench.kernels KERNEL OUT.json` runs one kernel on synthetic data
of that size and writes a JSON result (seconds of the measured part, rows); the parent
(`make bench`) runs each in its own process and reads its peak RSS from the OS.

- rules: 1,000,000 baskets over 500 products, min_support 0.0005 (encoding + mining + rules; target 20 s, 2 GB)
- segments: 1,000,000 patients (target 60 s, 4 GB)
- recommend: 1,000,000 patients × 500 products, fit and top-10 for everyone (target 90 s, 6 GB)
- quality: the staged-orders Great Expectations suite on 10,000,000 order lines (target 30 s added to a run)
"""
from __future__ import annotations

import json
import sys
import time

import numpy as np
import pandas as pd

TARGETS = {"rules": (20, 2), "segments": (60, 4), "recommend": (90, 6), "quality": (30, None)}  # s, GB


def _baskets(n_baskets: int = 1_000_000, n_items: int = 500, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    sizes = 1 + rng.poisson(1.5, n_baskets)
    popularity = 1 / np.arange(1, n_items + 1) ** 0.9
    items = rng.choice(n_items, size=sizes.sum(), p=popularity / popularity.sum())
    basket = np.repeat(np.arange(n_baskets), sizes)
    # a few planted pairs so there are rules to find
    pair = rng.random(len(items)) < 0.15
    items = np.concatenate([items, (items[pair] + 1) % n_items])
    basket = np.concatenate([basket, basket[pair]])
    return pd.DataFrame({"basket_id": basket, "item_id": items.astype(str)})


def rules() -> dict:
    from medmkt_assets.lib.models.rules import mine_rules

    baskets = _baskets()
    started = time.perf_counter()
    found = mine_rules(baskets, min_support=0.0005, min_confidence=0.1, max_len=4)
    return {"seconds": time.perf_counter() - started, "rows": len(baskets), "rules": len(found)}


def segments() -> dict:
    from medmkt_assets.lib.models.segments import segment_patients

    rng = np.random.default_rng(1)
    n, k = 1_000_000, 5
    group = rng.integers(0, k, n)
    centres = rng.random((k, 10))
    shares = np.clip(centres[group] + rng.normal(0, 0.08, (n, 10)), 0, None)
    shares /= shares.sum(axis=1, keepdims=True)
    frame = pd.DataFrame(shares, columns=[f"cat__c{i}" for i in range(10)])
    frame["frequency"] = rng.poisson(3 + 3 * group)
    frame["monetary"] = frame.frequency * rng.gamma(2, 60, n)
    frame["recency_days"] = rng.integers(0, 700, n)
    frame["age_years"] = (25 + 10 * group + rng.normal(0, 5, n)).round()
    for c in range(5):
        frame[f"ch__c{c}"] = rng.random(n)
    started = time.perf_counter()
    result = segment_patients(frame)
    return {"seconds": time.perf_counter() - started, "rows": n, "k": result.k, "method": result.method}


def recommend() -> dict:
    from medmkt_assets.lib.models.recommenders import EASE

    rng = np.random.default_rng(2)
    n_users, n_items = 1_000_000, 500
    per_user = 1 + rng.poisson(9, n_users)
    users = np.repeat(np.arange(n_users), per_user)
    taste = rng.integers(0, 10, n_users)
    items = (taste[users] * 50 + rng.integers(0, 80, len(users))) % n_items
    interactions = pd.DataFrame({"user_id": users, "item_id": items.astype(str)})
    started = time.perf_counter()
    model = EASE(lambda_=200).fit(interactions)
    recs = model.recommend(np.arange(n_users), k=10)
    return {"seconds": time.perf_counter() - started, "rows": len(interactions), "recommendations": len(recs)}


def quality() -> dict:
    """Every gate of the staged-orders suite (metrics in DuckDB, judged by GX, Data Docs rebuilt)."""
    import tempfile
    from pathlib import Path

    import duckdb

    from medmkt_assets.lib.ops.quality import (
        ensure_baselines,
        measure,
        record_baselines,
        staged_checks,
        validate,
    )

    n_lines, n_patients = 10_000_000, 1_000_000
    folder = Path(tempfile.mkdtemp(prefix="medmkt-quality-"))
    con = duckdb.connect(str(folder / "warehouse.duckdb"))
    con.execute("CREATE SCHEMA staging; CREATE SCHEMA ops; CREATE SCHEMA raw; CREATE SCHEMA quarantine")
    con.execute(f"""CREATE TABLE staging.patients AS SELECT md5(i::VARCHAR) AS patient_key
                    FROM range({n_patients}) t(i)""")
    con.execute("""CREATE TABLE staging.products AS SELECT 'P' || i AS product_id, 'c' || (i % 12) AS category
                   FROM range(500) t(i)""")
    con.execute(f"""CREATE TABLE staging.orders AS SELECT 'O' || (i // 2) AS order_id, (i % 2 + 1)::INTEGER AS line_no,
                        md5((hash(i) % {n_patients})::VARCHAR) AS patient_key, 'P' || (hash(i * 7) % 500) AS product_id,
                        TIMESTAMP '2024-01-01' + to_seconds((hash(i * 3) % 60000000)::BIGINT) AS ordered_at,
                        (1 + i % 3)::INTEGER AS quantity, 10.0 + i % 90 AS unit_price,
                        ['store', 'online', 'app', 'phone', 'clinic'][1 + i % 5] AS channel
                    FROM range({n_lines}) t(i)""")
    con.execute(f"CREATE TABLE raw.orders AS SELECT i FROM range({n_lines} + 1000) t(i)")
    con.execute("CREATE TABLE quarantine.orders AS SELECT 'bad row' AS _reason FROM range(1000)")
    checks = staged_checks("orders")
    started = time.perf_counter()
    ensure_baselines(con)
    observed = measure(con, checks)
    record_baselines(con, "staging.orders")
    outcomes = validate("staging.orders", checks, observed, folder / "quality")
    seconds = time.perf_counter() - started
    con.close()
    failed = [o.check.name for o in outcomes if not o.passed]
    return {"seconds": seconds, "rows": n_lines, "gates": len(outcomes), "failed": ",".join(failed) or "none"}


if __name__ == "__main__":
    kernel, out = sys.argv[1], sys.argv[2]
    with open(out, "w") as handle:
        json.dump({"kernel": kernel, **globals()[kernel]()}, handle)
