"""The way the field usually does it, for the side-by-side comparison in `make bench`.

Each stage runs alone in a child process with a memory cap and a time limit, so a naive
method that runs out of either is reported as such instead of taking the machine down.
Run one stage: `python -m medmkt_assets.bench.naive STAGE SOURCE_DIR`.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

STAGES = ("pandas_profiles", "dense_apriori", "rbf_svc", "agglomerative_all")


def _read(source: Path, table: str) -> pd.DataFrame:
    parquet, csv = source / f"{table}.parquet", source / f"{table}.csv"
    return pd.read_parquet(parquet) if parquet.exists() else pd.read_csv(csv, dtype=str)


def pandas_profiles(source: Path) -> int:
    """Cleaning, joins and RFM aggregation entirely in pandas."""
    patients, products, orders = (_read(source, t) for t in ("patients", "products", "orders"))
    orders["patient_id"] = orders["patient_id"].astype(str).str.strip()
    orders["quantity"] = pd.to_numeric(orders["quantity"], errors="coerce")
    orders["unit_price"] = pd.to_numeric(orders["unit_price"], errors="coerce")
    orders["ordered_at"] = pd.to_datetime(orders["ordered_at"], errors="coerce")
    orders = orders[(orders["quantity"] > 0) & orders["ordered_at"].notna()]
    lines = orders.merge(products[["product_id", "category"]], on="product_id").merge(
        patients[["patient_id", "region"]], on="patient_id")
    lines["amount"] = lines["quantity"] * lines["unit_price"]
    as_of = lines["ordered_at"].max()
    profile = lines.groupby("patient_id").agg(
        frequency=("order_id", "nunique"), monetary=("amount", "sum"), last=("ordered_at", "max"))
    profile["recency"] = (as_of - profile["last"]).dt.days
    top = lines.groupby(["patient_id", "category"])["amount"].sum().reset_index()
    top = top.sort_values("amount").groupby("patient_id").tail(1)
    return len(profile.join(top.set_index("patient_id")))


def dense_apriori(source: Path) -> int:
    """mlxtend apriori on a dense baskets × items one-hot frame."""
    from mlxtend.frequent_patterns import apriori, association_rules

    orders = _read(source, "orders")[["order_id", "product_id"]].drop_duplicates()
    onehot = pd.crosstab(orders["order_id"], orders["product_id"]).astype(bool)
    itemsets = apriori(onehot, min_support=0.0005, use_colnames=True, max_len=3)
    return len(association_rules(itemsets, metric="confidence", min_threshold=0.3))


def _profile_matrix(source: Path) -> tuple[np.ndarray, np.ndarray]:
    orders = _read(source, "orders")
    orders["quantity"] = pd.to_numeric(orders["quantity"], errors="coerce").fillna(1)
    orders["unit_price"] = pd.to_numeric(orders["unit_price"], errors="coerce").fillna(0)
    orders["amount"] = orders["quantity"] * orders["unit_price"]
    features = orders.groupby("patient_id").agg(n=("order_id", "nunique"), spend=("amount", "sum"),
                                                lines=("product_id", "size"))
    diagnoses = _read(source, "diagnoses")
    label = features.index.isin(diagnoses.loc[diagnoses["condition_code"] == "E11", "patient_id"])
    return np.log1p(features.to_numpy(dtype=float)), label.astype(int)


def rbf_svc(source: Path) -> int:
    """A kernel SVC with probabilities (Platt scaling) on every patient."""
    from sklearn.svm import SVC

    x, y = _profile_matrix(source)
    model = SVC(kernel="rbf", probability=True).fit(x, y)
    return len(model.predict_proba(x))


def agglomerative_all(source: Path) -> int:
    """Ward clustering on all patients: an n × n problem."""
    from sklearn.cluster import AgglomerativeClustering

    x, _ = _profile_matrix(source)
    return len(set(AgglomerativeClustering(n_clusters=5, linkage="ward").fit_predict(x)))


def main() -> None:
    stage, source = sys.argv[1], Path(sys.argv[2])
    start = time.time()
    n = globals()[stage](source)
    print(f"{stage}: {n} results in {time.time() - start:.1f}s", flush=True)


if __name__ == "__main__":
    main()
