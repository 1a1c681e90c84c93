"""Association rules with R arules' semantics, mined by mlxtend FP-growth on a sparse matrix.

Why integer counts: thresholds like support 0.001 or confidence 0.8 sit exactly on many
real rules (4/5 = 0.8), and float arithmetic puts some of them on the wrong side. Here
an itemset is frequent when count ≥ ceil(min_support · n) computed exactly, and a rule
A → C is kept when count(A∪C) · q ≥ p · count(A) for min_confidence = p/q, so the rule set
equals arules' for the same data and thresholds (arules' default of one-item consequents
is `single_consequent=True`; rules with an empty antecedent are not generated).
"""
from __future__ import annotations

import math
import warnings
from fractions import Fraction
from itertools import combinations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from mlxtend.frequent_patterns import fpgrowth
from scipy import sparse

from medmkt_assets.lib.pseudonym import ID_WHITESPACE

RULE_COLUMNS = ("rule_id", "antecedents", "consequents", "antecedent_support", "consequent_support", "support",
                "confidence", "lift", "leverage", "conviction", "zhangs_metric", "mutual_information",
                "antecedent_count", "consequent_count", "support_count", "n_baskets")


def _clean_ids(values) -> pa.Array:
    """Ids as trimmed text (the same whitespace set as patient ids), via Arrow for speed at scale."""
    array = pa.array(values, from_pandas=True)
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    if not (pa.types.is_string(array.type) or pa.types.is_large_string(array.type)):
        array = pc.cast(array, pa.string())
    return pc.utf8_trim(array, characters=ID_WHITESPACE)


def _codes(array: pa.Array, sort: bool) -> tuple[np.ndarray, pd.Index]:
    encoded = array.dictionary_encode()
    codes = encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64)
    labels = encoded.dictionary.to_pandas().to_numpy(dtype=object)
    if sort:
        order = np.argsort(labels.astype(str), kind="stable")
        remap = np.empty(len(order), dtype=np.int64)
        remap[order] = np.arange(len(order))
        codes, labels = remap[codes], labels[order]
    return codes, pd.Index(labels.astype(str))


def encode_baskets(baskets: pd.DataFrame) -> tuple[sparse.csr_matrix, pd.Index, pd.Index]:
    """A sparse boolean baskets × items matrix (ids trimmed; duplicate pairs once) and both indexes."""
    missing = {"basket_id", "item_id"} - set(baskets.columns)
    if missing:
        raise ValueError(f"baskets needs columns basket_id and item_id; missing {sorted(missing)}")
    basket_ids, item_ids = _clean_ids(baskets["basket_id"]), _clean_ids(baskets["item_id"])
    keep = pc.and_(pc.and_(pc.is_valid(basket_ids), pc.is_valid(item_ids)),
                   pc.and_(pc.not_equal(basket_ids, ""), pc.not_equal(item_ids, "")))
    keep = pc.fill_null(keep, False)
    basket_codes, basket_index = _codes(basket_ids.filter(keep), sort=False)
    item_codes, item_index = _codes(item_ids.filter(keep), sort=True)
    matrix = sparse.csr_matrix((np.ones(len(basket_codes), dtype=bool), (basket_codes, item_codes)),
                               shape=(len(basket_index), len(item_index)))
    matrix.sum_duplicates()
    matrix.data[:] = True  # a pair listed twice still counts once
    return matrix, item_index, basket_index


def _fraction(value: float, name: str) -> Fraction:
    if not 0 < value <= 1:
        raise ValueError(f"{name} must be in (0, 1], got {value}")
    return Fraction(str(value))


def frequent_itemsets(matrix: sparse.csr_matrix, items: pd.Index, min_count: int,
                      max_len: int) -> dict[frozenset, int]:
    """Every itemset contained in at least min_count baskets (and at most max_len items), with its count."""
    n = matrix.shape[0]
    if n == 0 or matrix.nnz == 0:
        return {}
    with warnings.catch_warnings():  # pandas' bool sparse fill-value deprecation, harmless here
        warnings.simplefilter("ignore", FutureWarning)
        frame = pd.DataFrame.sparse.from_spmatrix(matrix, columns=list(items))
    # a float threshold half a basket below the integer one: FP-growth never drops a
    # boundary itemset to rounding, and the exact integer filter below decides
    found = fpgrowth(frame, min_support=max(min_count - 0.5, 0.5) / n, use_colnames=True, max_len=max_len)
    counts = np.rint(found.support.to_numpy() * n).astype(np.int64)
    return {frozenset(s): int(c) for s, c in zip(found.itemsets, counts) if c >= min_count}


def _measures(n_a: np.ndarray, n_c: np.ndarray, n_ac: np.ndarray, n: int) -> dict[str, np.ndarray]:
    s_a, s_c, s_ac = n_a / n, n_c / n, n_ac / n
    confidence = n_ac / n_a
    with np.errstate(divide="ignore", invalid="ignore"):
        lift = confidence / s_c
        leverage = s_ac - s_a * s_c
        conviction = np.where(confidence >= 1, np.inf, (1 - s_c) / (1 - confidence))
        zhang_den = np.maximum(s_ac * (1 - s_a), s_a * (s_c - s_ac))
        zhang = np.where(zhang_den > 0, leverage / zhang_den, 0.0)
        cells = [(n_ac, n_a, n_c), (n_a - n_ac, n_a, n - n_c), (n_c - n_ac, n - n_a, n_c),
                 (n - n_a - n_c + n_ac, n - n_a, n - n_c)]
        mutual_information = np.zeros(len(n_a))
        for joint, row, col in cells:
            term = (joint / n) * np.log2(joint * n / (row * col))
            mutual_information += np.where(joint > 0, term, 0.0)
    return {"antecedent_support": s_a, "consequent_support": s_c, "support": s_ac, "confidence": confidence,
            "lift": lift, "leverage": leverage, "conviction": conviction, "zhangs_metric": zhang,
            "mutual_information": mutual_information}


def _prune_redundant(rules: pd.DataFrame) -> pd.DataFrame:
    """Drop a rule when a rule with the same consequent and a smaller antecedent is at least as confident."""
    confidence = {(frozenset(a), frozenset(c)): conf
                  for a, c, conf in zip(rules.antecedents, rules.consequents, rules.confidence)}
    keep = []
    for a, c, conf in zip(rules.antecedents, rules.consequents, rules.confidence):
        general = (confidence.get((frozenset(sub), frozenset(c))) for size in range(1, len(a))
                   for sub in combinations(a, size))
        keep.append(not any(g is not None and g >= conf for g in general))
    return rules[np.array(keep, dtype=bool)] if len(rules) else rules


def empty_rules() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=object if c in ("rule_id", "antecedents", "consequents") else
                                       ("int64" if c.endswith("count") or c == "n_baskets" else "float64"))
                         for c in RULE_COLUMNS})


def mine_rules(baskets: pd.DataFrame, min_support: float, min_confidence: float, max_len: int = 10,
               single_consequent: bool = False, min_lift: float | None = None,
               prune_redundant: bool = False) -> pd.DataFrame:
    """Association rules of `baskets` (columns basket_id, item_id) with arules' threshold semantics.

    Returns one row per rule: rule_id, antecedents and consequents (sorted lists of item
    ids), supports, confidence, lift, leverage, conviction, Zhang's metric, the mutual
    information (bits) between antecedent and consequent, and the integer counts behind them.
    """
    support_frac = _fraction(min_support, "min_support")
    confidence_frac = _fraction(min_confidence, "min_confidence")
    if max_len < 2:
        raise ValueError("max_len must be at least 2 for a rule to have both sides")
    matrix, items, _ = encode_baskets(baskets)
    n = matrix.shape[0]
    if n == 0:
        return empty_rules()
    min_count = max(1, math.ceil(support_frac * n))
    counts = frequent_itemsets(matrix, items, min_count, max_len)
    antecedents, consequents, n_a, n_c, n_ac = [], [], [], [], []
    p, q = confidence_frac.numerator, confidence_frac.denominator
    for itemset, count in counts.items():
        if len(itemset) < 2:
            continue
        ordered = sorted(itemset)
        sizes = [1] if single_consequent else range(1, len(ordered))
        for size in sizes:
            for consequent in combinations(ordered, size):
                antecedent = itemset.difference(consequent)
                count_a = counts[antecedent]
                if count * q >= p * count_a:
                    antecedents.append(sorted(antecedent))
                    consequents.append(list(consequent))
                    n_a.append(count_a)
                    n_c.append(counts[frozenset(consequent)])
                    n_ac.append(count)
    if not antecedents:
        return empty_rules()
    n_a, n_c, n_ac = (np.asarray(v, dtype=np.int64) for v in (n_a, n_c, n_ac))
    rules = pd.DataFrame({"antecedents": antecedents, "consequents": consequents,
                          **_measures(n_a.astype(float), n_c.astype(float), n_ac.astype(float), n),
                          "antecedent_count": n_a, "consequent_count": n_c, "support_count": n_ac,
                          "n_baskets": np.int64(n)})
    if min_lift is not None:
        rules = rules[rules.lift >= min_lift]
    if prune_redundant:
        rules = _prune_redundant(rules)
    rules = (rules.assign(_key=rules.antecedents.map(" ".join) + " => " + rules.consequents.map(" ".join))
             .sort_values(["lift", "confidence", "support", "_key"], ascending=[False, False, False, True])
             .drop(columns="_key").reset_index(drop=True))
    rules.insert(0, "rule_id", [f"R{i + 1:06d}" for i in range(len(rules))])
    return rules[list(RULE_COLUMNS)]
