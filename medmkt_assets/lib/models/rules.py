"""Association rules with R arules' semantics, mined by mlxtend FP-growth on a sparse matrix.

Why integer counts: thresholds such as support 0.3 or confidence 0.8 sit exactly on real
rules (3 of 10 baskets, 4 of 5), and float arithmetic puts some of them on the wrong side
(``0.3 * 10 == 3.0000000000000004``, ``(7/n) / (10/n) < 0.7`` for some n). arules keeps an
itemset when support >= minsupp and a rule when confidence >= minconf; here both tests are
done on integer counts: an itemset is frequent when its count >= ceil(min_support * n - 1e-9), and a
rule A -> C is kept when count(A u C) * q >= p * count(A) for min_confidence = p/q exactly
(``Fraction(str(min_confidence))``). FP-growth is asked for a threshold half a basket lower
so float rounding never drops a boundary itemset; the integer filter decides.

Rules are generated here from the frequent itemsets (every non-empty proper subset as the
antecedent; ``single_consequent=True`` gives arules' one-item consequents), vectorised per
itemset size with counts looked up by binary search, so ~100k itemsets take seconds. The
baskets x items matrix is only ever built sparse.
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
from scipy import sparse

with warnings.catch_warnings():
    # mlxtend's fpcommon calls warnings.simplefilter("always", DeprecationWarning) when imported,
    # for the whole process: every library's deprecation notice would then be printed in every run
    # (`make run`). catch_warnings puts the process's filters back as they were.
    from mlxtend.frequent_patterns.fpcommon import FPTree
    from mlxtend.frequent_patterns.fpgrowth import fpg_step

from medmkt_assets.lib.privacy.pseudonym import (
    ID_WHITESPACE,  # includes the ideographic space U+3000
)

RULE_COLUMNS = ("rule_id", "antecedents", "consequents", "antecedent_support", "consequent_support", "support",
                "confidence", "lift", "leverage", "conviction", "zhangs_metric", "mutual_information",
                "antecedent_count", "consequent_count", "support_count", "n_baskets")
_OBJECT_COLUMNS = ("rule_id", "antecedents", "consequents")
_INT_COLUMNS = ("antecedent_count", "consequent_count", "support_count", "n_baskets")
_COUNT_TOLERANCE = Fraction(1, 10 ** 9)
_CODE = np.dtype(">i4")  # big-endian, so rows viewed as bytes compare like tuples of codes


# --------------------------------------------------------------------------- encoding

def _clean_codes(values: pd.Series) -> tuple[np.ndarray, pd.Index]:
    """Categorical codes of the trimmed text ids (-1 for missing/empty) and the sorted labels."""
    if pd.api.types.is_integer_dtype(values.dtype):  # nothing to trim: hash-encode, then label as text
        codes, uniques = pd.factorize(values)
        return codes.astype(np.int64), pd.Index(np.asarray(uniques).astype(str).astype(object), dtype=object)
    # Arrow trims and dictionary-encodes millions of ids in C++ (pandas string methods
    # would loop in Python); labels come back in first-seen order, _compact sorts them.
    try:
        text = pa.array(values, from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError):  # mixed types, e.g. 1 and "1 ": compare as text
        text = pa.array([None if pd.isna(v) else str(v) for v in values], type=pa.string())
    if isinstance(text, pa.ChunkedArray):  # an Arrow-backed column: one dictionary for all its chunks
        text = text.combine_chunks()
    if not (pa.types.is_string(text.type) or pa.types.is_large_string(text.type)):
        text = pc.cast(text, pa.string())
    text = pc.utf8_trim(text, characters=ID_WHITESPACE)
    text = pc.if_else(pc.equal(text, ""), pa.scalar(None, text.type), text)
    encoded = text.dictionary_encode()
    codes = pc.fill_null(encoded.indices, -1).to_numpy(zero_copy_only=False).astype(np.int64)
    return codes, pd.Index(encoded.dictionary.to_pandas().to_numpy(dtype=object), dtype=object)


def _compact(codes: np.ndarray, labels: pd.Index, sort: bool) -> tuple[np.ndarray, pd.Index]:
    """Drop labels no code uses; optionally renumber so labels are in text order."""
    used = np.bincount(codes, minlength=len(labels)) > 0
    keep = np.flatnonzero(used)
    kept = labels[keep]
    if sort:
        order = np.argsort(kept.to_numpy(dtype=str), kind="stable")
        keep, kept = keep[order], kept[order]
    remap = np.full(len(labels), -1, dtype=np.int64)
    remap[keep] = np.arange(len(keep))
    return remap[codes], pd.Index(kept, dtype=object)


def encode_baskets(baskets: pd.DataFrame) -> tuple[sparse.csr_matrix, pd.Index, pd.Index]:
    """Sparse bool baskets x items CSR matrix, item index (sorted text) and basket index.

    Ids become text trimmed of whitespace (U+3000 included); rows with an empty id are
    dropped and a (basket, item) pair listed twice counts once.
    """
    _check_columns(baskets)
    basket_codes, basket_labels = _clean_codes(baskets["basket_id"])
    item_codes, item_labels = _clean_codes(baskets["item_id"])
    valid = (basket_codes >= 0) & (item_codes >= 0)
    basket_codes, basket_index = _compact(basket_codes[valid], basket_labels, sort=False)
    item_codes, item_index = _compact(item_codes[valid], item_labels, sort=True)
    matrix = sparse.csr_matrix((np.ones(len(basket_codes), dtype=bool), (basket_codes, item_codes)),
                               shape=(len(basket_index), len(item_index)), dtype=bool)
    matrix.sum_duplicates()
    matrix.data[:] = True  # a pair listed twice still counts once
    return matrix, item_index, basket_index


def _check_columns(baskets: pd.DataFrame) -> None:
    missing = [c for c in ("basket_id", "item_id") if c not in getattr(baskets, "columns", ())]
    if missing:
        raise ValueError(f"baskets needs columns basket_id and item_id; missing {missing}")


# --------------------------------------------------------------------------- mining

def _fraction(value: float, name: str) -> Fraction:
    """The threshold as an exact fraction of its decimal text; must lie in (0, 1]."""
    try:
        ok = 0 < value <= 1
    except TypeError:
        ok = False
    if not ok or isinstance(value, bool):
        raise ValueError(f"{name} must be a number in (0, 1], got {value!r}")
    return Fraction(str(value))


def frequent_itemsets(matrix: sparse.csr_matrix, items: pd.Index, min_count: int,
                      max_len: int | None) -> pd.DataFrame:
    """FP-growth itemsets in at least `min_count` baskets: columns itemsets (frozensets), count.

    FP-growth builds its tree one basket at a time in Python, so it sees only the baskets that
    can hold what is left to find. Single items are counted straight from the matrix and pairs
    by one sparse product of it with itself; FP-growth then mines the baskets holding three or
    more frequent items for the itemsets of three and more: no other basket can hold one, so
    the itemsets and counts are the same while most baskets (an order of one or two products)
    never reach it.
    """
    n = matrix.shape[0]
    empty = pd.DataFrame({"itemsets": pd.Series(dtype=object), "count": pd.Series(dtype=np.int64)})
    if n == 0 or matrix.nnz == 0:
        return empty
    item_counts = np.asarray(matrix.sum(axis=0)).ravel().astype(np.int64)
    frequent = np.flatnonzero(item_counts >= min_count)
    labels = items.to_numpy(dtype=object)[frequent]
    singles = pd.DataFrame({"itemsets": [frozenset([label]) for label in labels], "count": item_counts[frequent]})
    if len(frequent) < 2 or max_len == 1:
        return singles if len(singles) else empty
    reduced = matrix[:, frequent].tocsr()
    sizes = np.diff(reduced.indptr)
    found = [singles, _frequent_pairs(reduced[sizes >= 2], labels, min_count)]
    larger = reduced[sizes >= 3]
    if (max_len is None or max_len >= 3) and len(frequent) >= 3 and larger.shape[0] >= min_count:
        found.append(_fp_growth(larger, labels, min_count, max_len))
    return pd.concat(found, ignore_index=True)


def _frequent_pairs(baskets: sparse.csr_matrix, labels: np.ndarray, min_count: int) -> pd.DataFrame:
    """Pairs of items in at least `min_count` baskets, counted exactly by the items x items product."""
    together = (baskets.T.astype(np.int64) @ baskets.astype(np.int64)).toarray()
    first, second = np.triu_indices(len(labels), k=1)
    counts = together[first, second]
    keep = counts >= min_count
    return pd.DataFrame({"itemsets": [frozenset(pair) for pair in zip(labels[first[keep]], labels[second[keep]])],
                         "count": counts[keep].astype(np.int64)})


def _fp_growth(baskets: sparse.csr_matrix, labels: np.ndarray, min_count: int, max_len: int | None) -> pd.DataFrame:
    """mlxtend's FP-growth (its FPTree, mined by fpg_step with the integer threshold) on these
    baskets: the itemsets of three or more items, with their counts.

    mlxtend's `fpgrowth` inserts every basket into the tree one at a time in Python. Identical
    baskets go in once here, with their number (`FPTree.insert_itemset(itemset, count)`): at
    1,000,000 patients 2.3 M orders of three or more frequent items hold 148,000 different baskets.
    Items are ranked as mlxtend ranks them (the more frequent nearer the root)."""
    rows, weights = _distinct_rows(baskets)
    sizes = np.array([len(row) for row in rows], dtype=np.int64)
    item_counts = np.bincount(np.concatenate(rows) if rows else np.zeros(0, np.int64),
                              weights=np.repeat(weights, sizes), minlength=len(labels)).astype(np.int64)
    frequent = np.flatnonzero(item_counts >= min_count)
    rank = {int(item): i for i, item in enumerate(frequent[np.argsort(item_counts[frequent], kind="stable")])}
    tree = FPTree(rank)
    for row, weight in zip(rows, weights.tolist()):
        itemset = sorted((int(item) for item in row if int(item) in rank), key=rank.get, reverse=True)
        tree.insert_itemset(itemset, weight)
    itemsets, counts = [], []
    for count, itemset in fpg_step(tree, min_count, None, max_len, False):
        if len(itemset) >= 3 and count >= min_count:
            itemsets.append(frozenset(labels[list(itemset)]))
            counts.append(count)
    return pd.DataFrame({"itemsets": pd.Series(itemsets, dtype=object), "count": np.array(counts, dtype=np.int64)})


def _distinct_rows(matrix: sparse.csr_matrix) -> tuple[list[np.ndarray], np.ndarray]:
    """The different rows of a sparse bool matrix (each as its sorted column indices) and how many
    times each occurs. Rows of one length are compared as fixed-width byte strings, never densely."""
    matrix = matrix.tocsr()
    matrix.sort_indices()
    sizes = np.diff(matrix.indptr)
    order = np.argsort(sizes, kind="stable")
    grouped = matrix[order]
    starts, sorted_sizes = grouped.indptr[:-1], sizes[order]
    rows: list[np.ndarray] = []
    weights: list[np.ndarray] = []
    for size in np.unique(sorted_sizes):
        if size == 0:
            continue
        block = np.flatnonzero(sorted_sizes == size)
        first = starts[block[0]]
        codes = np.ascontiguousarray(grouped.indices[first:first + len(block) * size].astype(_CODE).reshape(-1, size))
        distinct, count = np.unique(_row_keys(codes), return_counts=True)
        decoded = np.frombuffer(distinct.tobytes(), dtype=_CODE).reshape(-1, size).astype(np.int64)
        rows.extend(decoded)
        weights.append(count)
    return rows, (np.concatenate(weights) if weights else np.zeros(0, np.int64)).astype(np.int64)


class _CountLookup:
    """Counts of frequent itemsets of each size, found by binary search on rows of sorted codes."""

    def __init__(self, by_size: dict[int, tuple[np.ndarray, np.ndarray]]):
        self._tables = {}
        for size, (rows, counts) in by_size.items():
            keys = _row_keys(rows)
            order = np.argsort(keys, kind="stable")
            self._tables[size] = (keys[order], counts[order])

    def __call__(self, rows: np.ndarray) -> np.ndarray:
        keys, counts = self._tables[rows.shape[1]]
        found = np.searchsorted(keys, _row_keys(rows))
        if len(found) and (found.max() >= len(keys) or not np.array_equal(keys[found], _row_keys(rows))):
            raise AssertionError("a subset of a frequent itemset is missing")  # cannot happen: downward closure
        return counts[found]


def _row_keys(rows: np.ndarray) -> np.ndarray:
    rows = np.ascontiguousarray(rows, dtype=_CODE)
    return rows.view(np.dtype((np.void, rows.shape[1] * _CODE.itemsize))).ravel()


def _at_least(numerator: np.ndarray, denominator: np.ndarray, p: int, q: int) -> np.ndarray:
    """numerator * q >= p * denominator, exactly (Python ints when int64 could overflow)."""
    bound = max(int(numerator.max(initial=0)), int(denominator.max(initial=0)))
    if bound * max(p, q) < 2 ** 62:
        return numerator * q >= p * denominator
    return np.array([a * q >= p * b for a, b in zip(numerator.tolist(), denominator.tolist())], dtype=bool)


def _generate(itemsets: pd.DataFrame, items: pd.Index, n: int, confidence: Fraction, single_consequent: bool,
              prune_redundant: bool) -> dict[str, list | np.ndarray]:
    """Rules from frequent itemsets: antecedent/consequent code rows and their integer counts.

    Like arules (minlen = 1), a frequent item X whose support reaches the confidence
    threshold also gives the rule {} -> {X} (confidence = support, lift 1).
    """
    code_of = {item: i for i, item in enumerate(items)}
    grouped: dict[int, list] = {}
    for itemset, count in zip(itemsets["itemsets"], itemsets["count"]):
        grouped.setdefault(len(itemset), []).append((sorted(code_of[i] for i in itemset), count))
    by_size = {size: (np.array([r for r, _ in group], dtype=np.int64).reshape(len(group), size),
                      np.array([c for _, c in group], dtype=np.int64)) for size, group in grouped.items()}
    lookup = _CountLookup(by_size)
    p, q = confidence.numerator, confidence.denominator
    labels = items.to_numpy(dtype=object)
    out: dict[str, list] = {"antecedents": [], "consequents": [], "n_a": [], "n_c": [], "n_ac": []}
    for size, (rows, n_ac) in sorted(by_size.items()):
        if size == 1:
            n_all = np.full(len(n_ac), n, dtype=np.int64)
            keep = _at_least(n_ac, n_all, p, q)
            out["antecedents"].extend([] for _ in range(int(keep.sum())))
            out["consequents"].extend(labels[rows[keep]].tolist())
            out["n_a"].append(n_all[keep])
            out["n_c"].append(n_ac[keep])
            out["n_ac"].append(n_ac[keep])
            continue
        positions = range(size)
        for c_size in ([1] if single_consequent else range(1, size)):
            for c_pos in combinations(positions, c_size):
                a_pos = [i for i in positions if i not in c_pos]
                antecedent, consequent = rows[:, a_pos], rows[:, list(c_pos)]
                n_a = lookup(antecedent)
                keep = _at_least(n_ac, n_a, p, q)
                if prune_redundant and keep.any():
                    keep[keep] = ~(_redundant(rows[keep], a_pos, list(c_pos), n_ac[keep], n_a[keep], lookup, n)
                                   | _implied_consequent(rows[keep], list(c_pos), n_ac[keep], lookup))
                if not keep.any():
                    continue
                out["antecedents"].extend(labels[antecedent[keep]].tolist())
                out["consequents"].extend(labels[consequent[keep]].tolist())
                out["n_a"].append(n_a[keep])
                out["n_c"].append(lookup(consequent[keep]))
                out["n_ac"].append(n_ac[keep])
    for key in ("n_a", "n_c", "n_ac"):
        out[key] = np.concatenate(out[key]) if out[key] else np.zeros(0, dtype=np.int64)
    return out


def _redundant(rows: np.ndarray, a_pos: list[int], c_pos: list[int], n_ac: np.ndarray, n_a: np.ndarray,
               lookup: _CountLookup, n: int) -> np.ndarray:
    """True where a rule with the same consequent and a strict subset antecedent is at least as confident.

    That more general rule always passes the same confidence and lift thresholds (same
    consequent, so lift orders like confidence), so its counts can be read from the itemsets.
    The most general, {} -> {C}, exists for one-item consequents only (as in arules).
    """
    redundant = np.zeros(len(rows), dtype=bool)
    if len(c_pos) == 1:
        redundant |= lookup(rows[:, c_pos]) * n_a >= n_ac * n  # conf({} -> C) = support(C)
    for sub_size in range(1, len(a_pos)):
        for sub in combinations(a_pos, sub_size):
            n_sub = lookup(rows[:, list(sub)])
            n_sub_c = lookup(rows[:, sorted(list(sub) + c_pos)])
            redundant |= n_sub_c * n_a >= n_ac * n_sub  # conf(sub -> C) >= conf(A -> C), exactly
    return redundant


def _implied_consequent(rows: np.ndarray, c_pos: list[int], n_ac: np.ndarray, lookup: _CountLookup) -> np.ndarray:
    """True where a consequent item is implied by the rest of the rule: A -> C u {x} counted in as many
    baskets as A -> C (every basket holding A and C holds x, as `category:vaccination` comes with
    every vaccine). The shorter rule has the same support and confidence, so the longer one only
    repeats it with an item that adds nothing ("Pneumococcal -> Influenza + category vaccination")."""
    implied = np.zeros(len(rows), dtype=bool)
    if len(c_pos) < 2:
        return implied
    for drop in c_pos:
        rest = [i for i in range(rows.shape[1]) if i != drop]
        implied |= lookup(rows[:, rest]) == n_ac
    return implied


def _measures(n_a: np.ndarray, n_c: np.ndarray, n_ac: np.ndarray, n: int) -> dict[str, np.ndarray]:
    """Rule measures from integer counts (ratios of exact integer products where possible)."""
    a, c, ac, nf = n_a.astype(float), n_c.astype(float), n_ac.astype(float), float(n)
    with np.errstate(divide="ignore", invalid="ignore"):
        confidence = ac / a
        lift = (ac * nf) / (a * c)
        leverage_num = ac * nf - a * c  # n^2 * leverage
        conviction = np.where(n_ac >= n_a, np.inf, ((nf - c) * a) / (nf * (a - ac)))
        zhang_den = np.maximum(ac * (nf - a), a * (c - ac))  # n^2 * mlxtend's denominator
        zhang = np.where(zhang_den > 0, leverage_num / zhang_den, 0.0)
        mutual_information = np.zeros(len(a))
        for joint, row, col in ((ac, a, c), (a - ac, a, nf - c), (c - ac, nf - a, c),
                                (nf - a - c + ac, nf - a, nf - c)):
            term = (joint / nf) * np.log2((joint * nf) / (row * col))
            mutual_information += np.where(joint > 0, term, 0.0)  # 0 * log 0 = 0
    return {"antecedent_support": a / nf, "consequent_support": c / nf, "support": ac / nf,
            "confidence": confidence, "lift": lift, "leverage": leverage_num / (nf * nf),
            "conviction": conviction, "zhangs_metric": zhang, "mutual_information": mutual_information}


def empty_rules() -> pd.DataFrame:
    """A rule table with no rows and the output columns and dtypes."""
    return pd.DataFrame({c: pd.Series(dtype=object if c in _OBJECT_COLUMNS else
                                      ("int64" if c in _INT_COLUMNS else "float64")) for c in RULE_COLUMNS})


def mine_rules(baskets: pd.DataFrame, min_support: float, min_confidence: float, max_len: int | None = 10,
               single_consequent: bool = False, min_lift: float | None = None,
               prune_redundant: bool = False) -> pd.DataFrame:
    """Association rules of `baskets` (columns basket_id, item_id) with arules' threshold semantics.

    One row per rule, best lift first: rule_id, antecedents and consequents (sorted lists
    of item ids), supports, confidence, lift, leverage, conviction, Zhang's metric, the
    mutual information (bits) between "has A" and "has C", and the integer counts. As in
    arules, an item whose own support reaches `min_confidence` gives a rule with an empty
    antecedent ({} -> {X}, lift 1); `min_lift` above 1 leaves such rules out.
    `max_len` bounds the items in a rule (both sides; None: no bound); `prune_redundant` drops a rule
    when a rule with the same consequent and a smaller antecedent is at least as confident, and a rule
    whose consequent holds an item the rest of the rule implies (A -> {B, x} where every basket with
    A and B has x: A -> {B} says the same with the same support and confidence).
    """
    _check_columns(baskets)
    _fraction(min_confidence, "min_confidence")
    if max_len is not None and (isinstance(max_len, bool) or int(max_len) != max_len or max_len < 1):
        raise ValueError(f"max_len must be a positive integer or None, got {max_len!r}")
    matrix, items, _ = encode_baskets(baskets)
    n = matrix.shape[0]
    if n == 0:
        return empty_rules()
    itemsets = frequent_itemsets(matrix, items, min_count_for(min_support, n), None if max_len is None else int(max_len))
    return rules_from_itemsets(itemsets, n, min_confidence, single_consequent, min_lift, prune_redundant)


def min_count_for(min_support: float, n: int) -> int:
    """The least number of baskets an itemset needs: ceil(min_support * n), less a 1e-9 basket so
    that a share computed as k / n in floats (Fraction('0.6470588235294118') * 17 is a hair above
    11) still means k baskets."""
    return max(1, math.ceil(_fraction(min_support, "min_support") * n - _COUNT_TOLERANCE))


def rules_from_itemsets(itemsets: pd.DataFrame, n: int, min_confidence: float, single_consequent: bool = False,
                        min_lift: float | None = None, prune_redundant: bool = False) -> pd.DataFrame:
    """mine_rules' second half, from frequent itemsets (itemsets as frozensets, count) of `n` baskets
    found by any miner (mlxtend here, Spark MLlib's FPGrowth on the Spark engine)."""
    confidence_frac = _fraction(min_confidence, "min_confidence")
    items = pd.Index(sorted({item for itemset in itemsets["itemsets"] for item in itemset}), dtype=object)
    if n == 0 or len(items) == 0:
        return empty_rules()
    found = _generate(itemsets, items, n, confidence_frac, single_consequent, prune_redundant)
    if len(found["n_ac"]) == 0:
        return empty_rules()
    rules = pd.DataFrame({"antecedents": found["antecedents"], "consequents": found["consequents"],
                          **_measures(found["n_a"], found["n_c"], found["n_ac"], n),
                          "antecedent_count": found["n_a"], "consequent_count": found["n_c"],
                          "support_count": found["n_ac"], "n_baskets": np.full(len(found["n_ac"]), n, np.int64)})
    if min_lift is not None:
        rules = rules[rules["lift"] >= min_lift]
        if rules.empty:
            return empty_rules()
    antecedent_text = pd.factorize(rules["antecedents"].map(" ".join).to_numpy(dtype=object), sort=True)[0]
    consequent_text = pd.factorize(rules["consequents"].map(" ".join).to_numpy(dtype=object), sort=True)[0]
    order = np.lexsort((consequent_text, antecedent_text, -rules["support"].to_numpy(),
                        -rules["confidence"].to_numpy(), -rules["lift"].to_numpy()))
    rules = rules.iloc[order].reset_index(drop=True)
    rules.insert(0, "rule_id", [f"R{i + 1:06d}" for i in range(len(rules))])
    return rules[list(RULE_COLUMNS)]
