"""lib.models.rules: arules semantics on integer counts, known answers worked out by hand."""
from __future__ import annotations

import json
import math
from itertools import combinations

import duckdb
import numpy as np
import pandas as pd
import pytest
from scipy import sparse

from medmkt_assets.lib.models.rules import RULE_COLUMNS, encode_baskets, mine_rules


def baskets_of(*baskets: str) -> pd.DataFrame:
    """Basket i (from 1) holds the space-separated items of the i-th argument."""
    rows = [(str(i), item) for i, basket in enumerate(baskets, start=1) for item in basket.split()]
    return pd.DataFrame(rows, columns=["basket_id", "item_id"])


def rule(rules: pd.DataFrame, antecedents: list[str], consequents: list[str]) -> pd.Series:
    hits = rules[(rules.antecedents.map(tuple) == tuple(antecedents))
                 & (rules.consequents.map(tuple) == tuple(consequents))]
    assert len(hits) == 1, f"{antecedents} -> {consequents}: {len(hits)} rows"
    return hits.iloc[0]


def rule_keys(rules: pd.DataFrame) -> set[tuple[tuple[str, ...], tuple[str, ...]]]:
    return set(zip(rules.antecedents.map(tuple), rules.consequents.map(tuple)))


def with_antecedent(rules: pd.DataFrame) -> pd.DataFrame:
    """The rules other than arules' {} -> {X} (an item whose support reaches min_confidence)."""
    return rules[rules.antecedents.map(len) > 0]


# 5 baskets; A in 4, B in 4, C in 3, D in 1; AB 3, BC 2, AC 2, AD 1, BD 1, ABC 1, ABD 1.
FIVE = baskets_of("A B C", "A B", "A C", "B C", "A B D")


def test_hand_computed_measures_for_a_negative_rule():
    rules = mine_rules(FIVE, min_support=0.2, min_confidence=0.1)
    r = rule(rules, ["A"], ["B"])
    # n=5, n_A=4, n_B=4, n_AB=3
    assert (r.antecedent_count, r.consequent_count, r.support_count, r.n_baskets) == (4, 4, 3, 5)
    assert r.antecedent_support == pytest.approx(0.8)
    assert r.consequent_support == pytest.approx(0.8)
    assert r.support == pytest.approx(0.6)
    assert r.confidence == pytest.approx(0.75)
    assert r.lift == pytest.approx(0.9375)           # 0.75 / 0.8
    assert r.leverage == pytest.approx(-0.04)        # 0.6 - 0.8 * 0.8
    assert r.conviction == pytest.approx(0.8)        # (1 - 0.8) / (1 - 0.75)
    assert r.zhangs_metric == pytest.approx(-0.25)   # -0.04 / max(0.6 * 0.2, 0.8 * 0.2)
    # 2x2 table (A, B): 11 -> 3, 10 -> 1, 01 -> 1, 00 -> 0 (0 log 0 = 0)
    mi = 0.6 * math.log2(0.6 / 0.64) + 0.2 * math.log2(0.2 / 0.16) + 0.2 * math.log2(0.2 / 0.16)
    assert r.mutual_information == pytest.approx(mi)
    assert r.mutual_information == pytest.approx(0.0729056, abs=1e-6)


def test_hand_computed_measures_for_c_to_b_and_a_certain_rule():
    rules = mine_rules(FIVE, min_support=0.2, min_confidence=0.1)
    r = rule(rules, ["C"], ["B"])  # n_C=3, n_B=4, n_BC=2
    assert r.confidence == pytest.approx(2 / 3)
    assert r.lift == pytest.approx((2 / 3) / 0.8)
    assert r.leverage == pytest.approx(0.4 - 0.6 * 0.8)
    assert r.conviction == pytest.approx(0.2 / (1 / 3))
    assert r.zhangs_metric == pytest.approx(-0.08 / 0.24)  # max(0.4 * 0.4, 0.6 * 0.4) = 0.24
    # table (C, B): 11 -> 2, 10 -> 1, 01 -> 2, 00 -> 0
    mi = 0.4 * math.log2(0.4 / (0.6 * 0.8)) + 0.2 * math.log2(0.2 / (0.6 * 0.2)) + 0.4 * math.log2(0.4 / (0.4 * 0.8))
    assert r.mutual_information == pytest.approx(mi)
    assert r.mutual_information == pytest.approx(0.1709506, abs=1e-6)

    certain = rule(rules, ["D"], ["A"])  # the only D basket holds A
    assert certain.confidence == 1.0
    assert certain.lift == pytest.approx(1.25)
    assert certain.leverage == pytest.approx(0.04)
    assert certain.conviction == np.inf
    assert certain.zhangs_metric == pytest.approx(0.04 / 0.16)

    two_items = rule(rules, ["A", "D"], ["B"])  # ABD once, AD once
    assert (two_items.antecedent_count, two_items.support_count, two_items.confidence) == (1, 1, 1.0)


def test_output_columns_types_and_order():
    rules = mine_rules(FIVE, min_support=0.2, min_confidence=0.1)
    assert list(rules.columns) == list(RULE_COLUMNS)
    assert rules.rule_id.tolist() == [f"R{i:06d}" for i in range(1, len(rules) + 1)]
    for column in ("antecedent_count", "consequent_count", "support_count", "n_baskets"):
        assert rules[column].dtype == np.int64
    assert all(isinstance(a, list) and a == sorted(a) for a in rules.antecedents)
    assert all(isinstance(c, list) and c == sorted(c) for c in rules.consequents)
    key = list(zip(-rules.lift, -rules.confidence, -rules.support))
    assert key == sorted(key)
    # every rule of every itemset (A, B, C, D; 2- and 3-itemsets present): 2 per pair, 6 per triple,
    # and {} -> {X} for each item (its support, at least 0.2, reaches the confidence 0.1)
    pairs = ["AB", "AC", "AD", "BC", "BD"]
    assert len(rules) == 4 + 2 * len(pairs) + 6 * 2
    # the ids are stable between runs and for shuffled input
    again = mine_rules(FIVE.sample(frac=1, random_state=3), min_support=0.2, min_confidence=0.1)
    pd.testing.assert_frame_equal(rules, again)


def test_support_exactly_at_threshold_is_frequent_despite_float_rounding():
    # 100 baskets, {X, Y} in exactly 7: 0.07 * 100 == 7.000000000000001 in floats,
    # so a float threshold ceil(0.07 * n) = 8 would lose it; arules keeps support >= 0.07.
    assert math.ceil(0.07 * 100) == 8
    data = baskets_of(*(["X Y"] * 7 + ["Z"] * 93))
    rules = with_antecedent(mine_rules(data, min_support=0.07, min_confidence=0.5))
    assert rule_keys(rules) == {(("X",), ("Y",)), (("Y",), ("X",))}
    assert rules.support_count.tolist() == [7, 7]
    # one basket fewer is below the threshold
    fewer = baskets_of(*(["X Y"] * 6 + ["X"] + ["Z"] * 93))
    assert with_antecedent(mine_rules(fewer, min_support=0.07, min_confidence=0.5)).empty


@pytest.mark.parametrize("n", [17, 85, 1234])
def test_support_given_as_a_float_share_of_baskets(n):
    # the rules asset passes min_support = min_support_count / n; exactly 11 baskets must pass
    data = baskets_of(*(["X Y"] * 11 + ["Z"] * (n - 11)))
    rules = with_antecedent(mine_rules(data, min_support=11 / n, min_confidence=0.5))
    assert rule_keys(rules) == {(("X",), ("Y",)), (("Y",), ("X",))}
    assert with_antecedent(mine_rules(data, min_support=12 / n, min_confidence=0.5)).empty


def test_confidence_exactly_at_threshold_is_kept():
    # 6 baskets, X in 5 and XY in 4: confidence 4/5 = 0.8 exactly, but the float ratio of
    # supports (4/6) / (5/6) is just below 0.8 - the comparison must be on counts.
    assert (4 / 6) / (5 / 6) < 0.8
    data = baskets_of("X Y", "X Y", "X Y", "X Y", "X", "W")
    rules = mine_rules(data, min_support=0.1, min_confidence=0.8)
    r = rule(rules, ["X"], ["Y"])
    assert (r.support_count, r.antecedent_count) == (4, 5)
    assert r.confidence == 0.8
    assert (("Y",), ("X",)) in rule_keys(rules)  # confidence 1
    # a hair above 4/5 drops it
    assert (("X",), ("Y",)) not in rule_keys(mine_rules(data, min_support=0.1, min_confidence=0.8000001))


def test_confidence_nine_tenths_at_boundary():
    # 12 baskets, X in 10, XY in 9: (9/12) / (10/12) < 0.9 in floats, 9/10 exactly.
    assert (9 / 12) / (10 / 12) < 0.9
    data = baskets_of(*(["X Y"] * 9 + ["X"] + ["V", "W"]))
    rules = mine_rules(data, min_support=0.5, min_confidence=0.9)
    assert rule_keys(rules) == {(("X",), ("Y",)), (("Y",), ("X",))}


def test_max_len_bounds_both_sides_together():
    data = baskets_of(*(["A B C D"] * 4 + ["A B", "C D"]))
    full = mine_rules(data, min_support=0.5, min_confidence=0.5)
    assert (full.antecedents.map(len) + full.consequents.map(len)).max() == 4
    # 4-set, four 3-sets, six pairs, and {} -> {X} for the four items (each in 5 of 6 baskets)
    assert len(full) == 2 ** 4 - 2 + 4 * (2 ** 3 - 2) + 6 * (2 ** 2 - 2) + 4
    for max_len in (2, 3):
        rules = mine_rules(data, min_support=0.5, min_confidence=0.5, max_len=max_len)
        sizes = rules.antecedents.map(len) + rules.consequents.map(len)
        assert sizes.max() == max_len
        assert rule_keys(rules) == {k for k in rule_keys(full) if len(k[0]) + len(k[1]) <= max_len}
    assert rule_keys(mine_rules(data, min_support=0.5, min_confidence=0.5, max_len=1)) == {
        ((), (x,)) for x in "ABCD"}
    assert rule_keys(mine_rules(data, min_support=0.5, min_confidence=0.5, max_len=None)) == rule_keys(full)
    with pytest.raises(ValueError, match="max_len"):
        mine_rules(data, min_support=0.5, min_confidence=0.5, max_len=0)


def test_single_consequent():
    data = baskets_of(*(["A B C"] * 3 + ["A"]))
    rules = mine_rules(data, min_support=0.5, min_confidence=0.5, single_consequent=True)
    assert set(rules.consequents.map(len)) == {1}
    assert len(rules) == 3 + 3 * 2 + 3  # {} -> X; pairs: 2 each; the triple: one per item as consequent
    both = mine_rules(data, min_support=0.5, min_confidence=0.5)
    assert len(both) == 3 + 3 * 2 + 6
    assert rule_keys(rules) == {k for k in rule_keys(both) if len(k[1]) == 1}


def test_an_item_as_frequent_as_the_confidence_gives_an_empty_antecedent_rule():
    # arules (minlen = 1): {} -> {X} when support(X) >= min_confidence; confidence = support, lift 1
    data = baskets_of("A B", "A B", "A", "A", "C")  # A 4/5, B 2/5, C 1/5
    rules = mine_rules(data, min_support=0.2, min_confidence=0.5)
    r = rule(rules, [], ["A"])
    assert (r.antecedent_count, r.consequent_count, r.support_count) == (5, 4, 4)
    assert (r.confidence, r.lift, r.leverage, r.conviction, r.mutual_information) == pytest.approx(
        (0.8, 1.0, 0.0, 1.0, 0.0))
    assert ((), ("B",)) not in rule_keys(rules)  # 0.4 < 0.5
    pruned = mine_rules(data, min_support=0.2, min_confidence=0.5, prune_redundant=True)
    assert rule_keys(pruned) == {((), ("A",)), (("B",), ("A",)), (("A",), ("B",))}  # B -> A: 1.0 > 0.8
    # C -> A (3/4) is less confident than {} -> A (9/10): redundant
    skewed = baskets_of(*(["A C"] * 3 + ["C"] + ["A"] * 6))
    assert (("C",), ("A",)) in rule_keys(mine_rules(skewed, 0.2, 0.5))
    assert rule_keys(mine_rules(skewed, 0.2, 0.5, prune_redundant=True)) == {((), ("A",))}
    assert mine_rules(data, min_support=0.2, min_confidence=0.5, min_lift=1.01).antecedents.map(len).min() > 0


def test_ids_are_trimmed_and_pairs_count_once():
    messy = pd.DataFrame({
        "basket_id": [1, 1, "1 ", " 2", "2\u3000", 3, 3, 3, 4, None, 4, "  "],
        "item_id": [" A", "B", "A\u3000", "A", "B ", "A", "A", "B", "C", "A", "", "B"],
    })
    matrix, items, baskets = encode_baskets(messy)
    assert sparse.issparse(matrix) and matrix.format == "csr" and matrix.dtype == bool
    assert items.tolist() == ["A", "B", "C"]
    assert sorted(baskets.tolist()) == ["1", "2", "3", "4"]
    assert matrix.shape == (4, 3)
    assert matrix.nnz == 7 and matrix.sum(axis=0).tolist() == [[3, 3, 1]]

    rules = mine_rules(messy, min_support=0.5, min_confidence=0.5)
    r = rule(rules, ["A"], ["B"])
    assert (r.antecedent_count, r.consequent_count, r.support_count, r.n_baskets) == (3, 3, 3, 4)


def test_integer_and_text_ids_agree():
    numeric = pd.DataFrame({"basket_id": [10, 10, 20, 20, 30], "item_id": [1, 2, 1, 2, 11]})
    text = numeric.astype(str)
    pd.testing.assert_frame_equal(mine_rules(numeric, 0.4, 0.5), mine_rules(text, 0.4, 0.5))
    _, items, _ = encode_baskets(numeric)
    assert items.tolist() == ["1", "11", "2"]  # ids are text, sorted as text


def test_empty_results_keep_columns_and_dtypes():
    for data in (pd.DataFrame({"basket_id": [], "item_id": []}),
                 pd.DataFrame({"basket_id": ["", None], "item_id": ["A", "B"]}),
                 baskets_of("A", "B", "C", "D")):  # no pair reaches the threshold
        rules = mine_rules(data, min_support=0.5, min_confidence=0.5)
        assert rules.empty and list(rules.columns) == list(RULE_COLUMNS)
        assert rules.support_count.dtype == np.int64 and rules.lift.dtype == np.float64
        assert rules.antecedents.dtype == object
    assert mine_rules(FIVE, min_support=0.2, min_confidence=0.1, min_lift=100).empty


def test_min_lift_filters():
    rules = mine_rules(FIVE, min_support=0.2, min_confidence=0.1, min_lift=1.0)
    assert len(rules) > 0 and (rules.lift >= 1.0).all()
    everything = mine_rules(FIVE, min_support=0.2, min_confidence=0.1)
    assert rule_keys(rules) == set(rule_keys(everything[everything.lift >= 1.0]))
    assert (("A",), ("B",)) not in rule_keys(rules)  # lift 0.9375


def test_prune_redundant():
    # A -> C holds in 4 of 4 A baskets, so {A, B} -> C (also always) adds nothing.
    # B -> D 2/4 but {A, B} -> D 2/2: the specific rule is more confident and stays.
    data = baskets_of("A B C D", "A B C D", "A C", "A C", "B", "B")
    raw = mine_rules(data, min_support=0.3, min_confidence=0.5)
    pruned = mine_rules(data, min_support=0.3, min_confidence=0.5, prune_redundant=True)
    assert (("A", "B"), ("C",)) in rule_keys(raw)
    assert (("A", "B"), ("C",)) not in rule_keys(pruned)
    assert (("A", "B"), ("D",)) in rule_keys(pruned)
    assert (("A",), ("C",)) in rule_keys(pruned)
    # equal confidence also counts as redundant: {B, D} -> A (1.0) vs D -> A (1.0)
    assert (("B", "D"), ("A",)) not in rule_keys(pruned)
    # brute force: pruned = raw minus rules with an at-least-as-confident generalisation ({} included)
    conf = {(frozenset(a), frozenset(c)): x for a, c, x in zip(raw.antecedents, raw.consequents, raw.confidence)}
    # ... and rules whose consequent holds an item the rest of the rule implies (same support without it)
    sets = [set(b.split()) for b in ("A B C D", "A B C D", "A C", "A C", "B", "B")]

    def count(items) -> int:
        return sum(set(items) <= b for b in sets)

    expected = {(a, c) for a, c in rule_keys(raw)
                if not any(conf.get((frozenset(s), frozenset(c)), -1) >= conf[(frozenset(a), frozenset(c))]
                           for k in range(len(a)) for s in combinations(a, k))
                and not (len(c) > 1 and any(count(set(a) | set(c) - {x}) == count(set(a) | set(c)) for x in c))}
    assert rule_keys(pruned) == expected
    assert len(pruned) < len(raw)


def test_a_consequent_item_implied_by_the_rest_is_pruned():
    # Every influenza basket also holds the category item: Pneumo -> {Flu, cat} has the support and
    # confidence of Pneumo -> Flu (3 of 4), so only the shorter rule is published.
    data = baskets_of("Pneumo Flu cat", "Pneumo Flu cat", "Pneumo Flu cat", "Pneumo", "Flu cat", "cat X", "X")
    raw = mine_rules(data, min_support=0.4, min_confidence=0.7)
    pruned = mine_rules(data, min_support=0.4, min_confidence=0.7, prune_redundant=True)
    assert (("Pneumo",), ("Flu", "cat")) in rule_keys(raw)
    assert rule(raw, ["Pneumo"], ["Flu", "cat"]).support == rule(raw, ["Pneumo"], ["Flu"]).support == 3 / 7
    assert (("Pneumo",), ("Flu", "cat")) not in rule_keys(pruned)
    assert rule(pruned, ["Pneumo"], ["Flu"]).confidence == 0.75
    # the pruning only drops a longer consequent: the one-item rules into the category stay
    assert {(("Flu",), ("cat",)), (("Pneumo",), ("cat",))} <= rule_keys(pruned)


@pytest.mark.parametrize("kwargs, message", [
    ({"min_support": 0, "min_confidence": 0.5}, "min_support"),
    ({"min_support": 1.5, "min_confidence": 0.5}, "min_support"),
    ({"min_support": 0.5, "min_confidence": 0}, "min_confidence"),
    ({"min_support": 0.5, "min_confidence": -0.1}, "min_confidence"),
    ({"min_support": 0.5, "min_confidence": float("nan")}, "min_confidence"),
])
def test_bad_thresholds(kwargs, message):
    with pytest.raises(ValueError, match=message):
        mine_rules(FIVE, **kwargs)


def test_missing_columns():
    with pytest.raises(ValueError, match="basket_id"):
        mine_rules(pd.DataFrame({"order": [1], "item_id": ["A"]}), 0.5, 0.5)
    with pytest.raises(ValueError, match="item_id"):
        encode_baskets(pd.DataFrame({"basket_id": [1], "product": ["A"]}))


def test_thresholds_of_one_are_allowed():
    data = baskets_of("A B", "A B", "A B")
    assert rule_keys(mine_rules(data, 1, 1)) == {(("A",), ("B",)), (("B",), ("A",)), ((), ("A",)), ((), ("B",))}


def random_baskets(n_baskets: int, n_items: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    p = rng.uniform(0.02, 0.35, n_items)
    hits = rng.random((n_baskets, n_items)) < p
    basket, item = np.nonzero(hits)
    return pd.DataFrame({"basket_id": basket, "item_id": [f"i{j:02d}" for j in item]})


def test_matches_mlxtend_association_rules_off_the_boundaries():
    from mlxtend.frequent_patterns import association_rules, fpgrowth

    data = random_baskets(2000, 30, seed=7)
    n = data.basket_id.nunique()
    min_support, min_confidence = 0.0123, 0.2345  # no count sits exactly on these
    ours = with_antecedent(mine_rules(data, min_support, min_confidence, max_len=4)).copy()

    onehot = pd.crosstab(data.basket_id, data.item_id).astype(bool)
    frequent = fpgrowth(onehot, min_support=min_support, use_colnames=True, max_len=4)
    theirs = association_rules(frequent, num_itemsets=n, metric="confidence", min_threshold=min_confidence)

    assert len(ours) > 500
    key = lambda a, c: (tuple(sorted(a)), tuple(sorted(c)))  # noqa: E731
    theirs.index = [key(a, c) for a, c in zip(theirs.antecedents, theirs.consequents)]
    ours.index = [key(a, c) for a, c in zip(ours.antecedents, ours.consequents)]
    assert set(ours.index) == set(theirs.index)
    theirs = theirs.loc[ours.index]
    for ours_col, theirs_col in [("antecedent_support", "antecedent support"),
                                 ("consequent_support", "consequent support"), ("support", "support"),
                                 ("confidence", "confidence"), ("lift", "lift"), ("leverage", "leverage"),
                                 ("conviction", "conviction"), ("zhangs_metric", "zhangs_metric")]:
        np.testing.assert_allclose(ours[ours_col].to_numpy(), theirs[theirs_col].to_numpy(), rtol=1e-9,
                                   atol=1e-12, err_msg=ours_col)
    assert (ours.mutual_information >= 0).all()


def test_mutual_information_matches_a_direct_computation():
    data = random_baskets(500, 8, seed=11)
    rules = mine_rules(data, 0.01, 0.05, max_len=3)
    assert len(rules) >= 20
    matrix, items, _ = encode_baskets(data)
    dense = pd.DataFrame(matrix.toarray(), columns=items)  # small: fine for the test
    for r in rules.sample(20, random_state=0).itertuples():
        x, y = dense[r.antecedents].all(axis=1), dense[r.consequents].all(axis=1)
        table = pd.crosstab(x, y).reindex(index=[False, True], columns=[False, True], fill_value=0).to_numpy()
        p = table / table.sum()
        px, py = p.sum(axis=1, keepdims=True), p.sum(axis=0, keepdims=True)
        with np.errstate(divide="ignore", invalid="ignore"):
            expected = np.nansum(np.where(p > 0, p * np.log2(p / (px * py)), 0.0))
        assert r.mutual_information == pytest.approx(expected, abs=1e-12)


def test_planted_bundle_is_found():
    rng = np.random.default_rng(2024)
    n = 5000
    has_a = rng.random(n) < 0.3
    has_b = has_a & (rng.random(n) < 0.8)  # B joins an A basket with probability 0.8, never otherwise
    background = rng.random((n, 20)) < 0.1
    rows = [(i, "A") for i in np.flatnonzero(has_a)] + [(i, "B") for i in np.flatnonzero(has_b)]
    rows += [(i, f"x{j}") for i, j in zip(*np.nonzero(background))]
    data = pd.DataFrame(rows, columns=["basket_id", "item_id"])
    rules = mine_rules(data, min_support=0.05, min_confidence=0.5, max_len=2, min_lift=1.5)
    assert rule_keys(rules) == {(("A",), ("B",)), (("B",), ("A",))}
    r = rule(rules, ["A"], ["B"])
    assert r.confidence == pytest.approx(0.8, abs=0.03)
    assert rule(rules, ["B"], ["A"]).confidence == 1.0
    assert rules.rule_id.tolist() == ["R000001", "R000002"]


def test_demo_bundles_come_out_with_their_planted_confidence(demo_pipeline):
    con = duckdb.connect(str(demo_pipeline["warehouse"]), read_only=True)
    rules = con.execute("SELECT antecedents, consequents, confidence, lift FROM marts.association_rules "
                        "WHERE scope = 'basket'").fetchdf()
    con.close()
    found = {(tuple(a), tuple(c)): (conf, lift) for a, c, conf, lift in rules.itertuples(index=False)}
    bundles = json.loads((demo_pipeline["truth"] / "bundles.json").read_text())
    assert bundles
    for bundle in bundles:
        key = ((bundle["antecedent"],), (bundle["consequent"],))
        assert key in found, f"planted bundle {key} not published"
        confidence, lift = found[key]
        assert confidence == pytest.approx(bundle["probability"], abs=0.08), bundle
        assert lift > 1.5


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("max_len", [2, 3, None])
def test_frequent_itemsets_match_plain_fpgrowth_on_every_basket(seed, max_len):
    """Counting pairs by a sparse product and leaving baskets with fewer than three frequent items
    out of FP-growth changes nothing."""
    from mlxtend.frequent_patterns import fpgrowth

    from medmkt_assets.lib.models.rules import frequent_itemsets

    rng = np.random.default_rng(seed)
    sizes = rng.choice([1, 1, 1, 2, 3, 5], 400)
    popularity = rng.dirichlet(np.full(12, 0.6))
    rows = [(b, item) for b, size in enumerate(sizes) for item in rng.choice(12, size, p=popularity)]
    matrix, items, _ = encode_baskets(pd.DataFrame(rows, columns=["basket_id", "item_id"]))
    ours = frequent_itemsets(matrix, items, min_count=9, max_len=max_len)
    dense = pd.DataFrame(matrix.toarray(), columns=list(items))
    plain = fpgrowth(dense, min_support=8.5 / len(dense), use_colnames=True, max_len=max_len)
    expected = dict(zip(plain.itemsets, np.rint(plain.support * len(dense)).astype(int)))
    assert dict(zip(ours.itemsets, ours["count"])) == {k: v for k, v in expected.items() if v >= 9}
    assert ours["count"].dtype == np.int64 and len(ours.itemsets) == len(set(ours.itemsets))
    assert any(len(s) == 2 for s in ours.itemsets) and (sizes == 1).sum() > 100
    assert any(len(s) == 3 for s in ours.itemsets) == (max_len != 2)


def test_identical_baskets_are_found_once_with_their_number():
    """FP-growth's tree takes each different basket once, with its count."""
    from scipy import sparse

    from medmkt_assets.lib.models.rules import _distinct_rows

    baskets = [[0, 2, 3], [3, 0, 2], [1], [0, 2, 3], [1, 2], [], [2, 1], [0, 1, 2, 3]]
    rows = [r for r, basket in enumerate(baskets) for _ in basket]
    cols = [c for basket in baskets for c in basket]
    matrix = sparse.csr_matrix((np.ones(len(rows), bool), (rows, cols)), shape=(len(baskets), 4))
    distinct, counts = _distinct_rows(matrix)
    assert sorted((tuple(r), int(c)) for r, c in zip(distinct, counts)) == [
        ((0, 1, 2, 3), 1), ((0, 2, 3), 3), ((1,), 1), ((1, 2), 2)]


def test_rules_in_the_metadata_read_as_names_with_their_codes():
    from medmkt_assets.defs.rules.assets import ITEM_NAMES_SQL, _readable

    con = duckdb.connect()
    con.execute("CREATE SCHEMA staging")
    con.execute("CREATE TABLE staging.products AS SELECT * FROM (VALUES ('P002', 'Metformin 500 mg tablets'), "
                "('P011', 'Strips | 50'), ('P012', NULL)) t(product_id, name)")
    con.execute("CREATE TABLE staging.diagnoses AS SELECT * FROM (VALUES ('k1', 'E11', 'Type 2 diabetes'), "
                "('k2', 'E11', 'Type 2 diabetes')) t(patient_key, condition_code, condition_name)")
    items = ["P002", "P011", "P012", "category:diabetes_care", "condition:E11", "condition:Z99"]
    names = dict(con.execute(ITEM_NAMES_SQL, {"items": items}).fetchall())
    assert names == {"P002": "Metformin 500 mg tablets (P002)", "P011": "Strips | 50 (P011)", "P012": "P012",
                     "category:diabetes_care": "category: diabetes care",
                     "condition:E11": "diagnosis: Type 2 diabetes (E11)", "condition:Z99": "diagnosis: Z99"}
    rules = pd.DataFrame({"antecedents": [["P002", "condition:E11"], []], "consequents": [["P011"], ["P002"]]})
    assert _readable(rules, names).tolist() == [
        "Metformin 500 mg tablets (P002) + diagnosis: Type 2 diabetes (E11) → Strips / 50 (P011)",
        "{} → Metformin 500 mg tablets (P002)"]


@pytest.mark.parametrize("seed", [0, 1])
def test_spark_itemset_counts_find_the_same_itemsets_counts_and_rules(spark, seed):
    """The Spark engine's level-wise itemset counts against mlxtend FP-growth on the same baskets, arules
    semantics kept: every itemset and count, then the same rules ({} -> {X} and pruning included)."""
    from medmkt_assets.lib.models import on_spark
    from medmkt_assets.lib.models.rules import (
        encode_baskets,
        frequent_itemsets,
        min_count_for,
        rules_from_itemsets,
    )

    baskets = random_baskets(400, 12, seed)
    min_count = min_count_for(0.03, baskets.basket_id.nunique())
    matrix, items, _ = encode_baskets(baskets)
    expected = frequent_itemsets(matrix, items, min_count, 3)
    found, n = on_spark.frequent_itemsets(spark.createDataFrame(baskets.astype({"item_id": str})), min_count, 3)
    as_set = lambda f: set(zip(f.itemsets, f["count"]))  # noqa: E731
    assert n == matrix.shape[0] and as_set(found) == as_set(expected)
    settings = dict(min_lift=None, prune_redundant=True)
    pd.testing.assert_frame_equal(rules_from_itemsets(found, n, 0.3, **settings),
                                  mine_rules(baskets, 0.03, 0.3, max_len=3, **settings))


def test_importing_the_rules_leaves_the_process_warning_filters_alone():
    """mlxtend sets simplefilter("always", DeprecationWarning) for the whole process when imported: every
    library's deprecation notice then showed in `make run`. The rules module imports it inside
    catch_warnings, so a fresh process has no such filter after importing it."""
    import subprocess
    import sys

    code = ("import warnings, medmkt_assets.lib.models.rules; "
            "print(any(f[0] == 'always' and f[2] is DeprecationWarning for f in warnings.filters))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False", out.stdout + out.stderr
