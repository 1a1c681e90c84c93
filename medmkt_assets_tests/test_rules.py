"""Association rules: hand-computed measures, arules threshold semantics, mlxtend agreement."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from mlxtend.frequent_patterns import association_rules, fpgrowth

from medmkt_assets.lib.rules import encode_baskets, mine_rules


def _baskets(rows: dict[str, list[str]]) -> pd.DataFrame:
    return pd.DataFrame([(b, i) for b, items in rows.items() for i in items], columns=["basket_id", "item_id"])


# 5 baskets: A in 4, B in 3, A&B in 3, C in 2
TINY = _baskets({"1": ["A", "B"], "2": ["A", "B", "C"], "3": ["A", "B"], "4": ["A", "C"], "5": ["D"]})


def _rule(rules: pd.DataFrame, antecedents: list[str], consequents: list[str]) -> pd.Series:
    match = rules[(rules.antecedents.map(tuple) == tuple(antecedents)) & (rules.consequents.map(tuple) == tuple(consequents))]
    assert len(match) == 1, (antecedents, consequents)
    return match.iloc[0]


def test_every_measure_by_hand():
    rules = mine_rules(TINY, min_support=0.2, min_confidence=0.1)
    r = _rule(rules, ["A"], ["B"])
    s_a, s_b, s_ab = 0.8, 0.6, 0.6
    assert r.support == pytest.approx(s_ab)
    assert r.antecedent_support == pytest.approx(s_a) and r.consequent_support == pytest.approx(s_b)
    assert r.confidence == pytest.approx(0.75)
    assert r.lift == pytest.approx(0.75 / 0.6)
    assert r.leverage == pytest.approx(0.6 - 0.48)
    assert r.conviction == pytest.approx((1 - 0.6) / (1 - 0.75))
    assert r.zhangs_metric == pytest.approx(0.12 / max(0.6 * 0.2, 0.8 * 0.0))
    # 2x2 table: AB=3, A¬B=1, ¬AB=0, ¬A¬B=1 (n=5)
    mi = 0.6 * math.log2(0.6 / (0.8 * 0.6)) + 0.2 * math.log2(0.2 / (0.8 * 0.4)) + 0.2 * math.log2(0.2 / (0.2 * 0.4))
    assert r.mutual_information == pytest.approx(mi)
    assert (r.antecedent_count, r.consequent_count, r.support_count, r.n_baskets) == (4, 3, 3, 5)
    b_to_a = _rule(rules, ["B"], ["A"])
    assert b_to_a.confidence == 1.0 and b_to_a.conviction == np.inf


def test_thresholds_are_inclusive_on_exact_counts():
    # 10 baskets; {A,B} in 3 → support exactly 0.3 (0.3 * 10 is 3.0000000000000004 in floats)
    rows = {str(i): ["A", "B"] for i in range(3)} | {str(i): ["A"] for i in range(3, 5)} | {
        str(i): ["Z"] for i in range(5, 10)}
    rules = mine_rules(_baskets(rows), min_support=0.3, min_confidence=0.6)
    assert ["A"] in rules.antecedents.tolist()            # A→B: 3/5 = 0.6, exactly at the threshold
    assert _rule(rules, ["A"], ["B"]).confidence == pytest.approx(0.6)
    # confidence exactly 4/5 at 0.8 is in
    rows = {str(i): ["X", "Y"] for i in range(4)} | {"4": ["X"]}
    assert len(mine_rules(_baskets(rows), min_support=0.1, min_confidence=0.8).query("support_count == 4")) == 2
    assert mine_rules(_baskets(rows), min_support=0.81, min_confidence=0.1).empty


def test_max_len_and_single_consequent():
    all_rules = mine_rules(TINY, 0.2, 0.1)
    assert all_rules.apply(lambda r: len(r.antecedents) + len(r.consequents), axis=1).max() == 3
    assert mine_rules(TINY, 0.2, 0.1, max_len=2).apply(
        lambda r: len(r.antecedents) + len(r.consequents), axis=1).max() == 2
    assert mine_rules(TINY, 0.2, 0.1, single_consequent=True).consequents.map(len).max() == 1
    assert all_rules.consequents.map(len).max() == 2


def test_ids_are_trimmed_and_pairs_counted_once():
    messy = pd.DataFrame({"basket_id": ["1", " 1", "2", "2\u3000"], "item_id": [" A", "A\u3000", "A", "B "]})
    matrix, items, baskets = encode_baskets(messy)
    assert list(items) == ["A", "B"] and list(baskets) == ["1", "2"]
    assert matrix.sum() == 3


def test_prune_redundant_drops_rules_no_better_than_a_general_one():
    rules = mine_rules(TINY, 0.2, 0.1)
    pruned = mine_rules(TINY, 0.2, 0.1, prune_redundant=True)
    # B→A has confidence 1; {B,C}→A also 1, so it is redundant
    assert len(_rule(rules, ["B", "C"], ["A"])) and not ((pruned.antecedents.map(tuple) == ("B", "C"))
                                                          & (pruned.consequents.map(tuple) == ("A",))).any()
    assert len(pruned) < len(rules)


def test_empty_and_bad_input():
    assert list(mine_rules(TINY.iloc[:0], 0.1, 0.5).columns)[:3] == ["rule_id", "antecedents", "consequents"]
    assert mine_rules(TINY, 0.9, 0.5).empty
    with pytest.raises(ValueError, match="basket_id"):
        mine_rules(pd.DataFrame({"order": [1], "item_id": ["A"]}), 0.1, 0.5)
    with pytest.raises(ValueError, match="min_support"):
        mine_rules(TINY, 0, 0.5)


def test_agrees_with_mlxtend_away_from_the_thresholds():
    rng = np.random.default_rng(3)
    rows = [(b, f"i{i:02d}") for b in range(2000) for i in np.flatnonzero(rng.random(30) < np.linspace(.05, .4, 30))]
    baskets = pd.DataFrame(rows, columns=["basket_id", "item_id"])
    ours = mine_rules(baskets, min_support=0.0213, min_confidence=0.3137, max_len=3)
    matrix, items, _ = encode_baskets(baskets)
    frame = pd.DataFrame.sparse.from_spmatrix(matrix, columns=list(items))
    theirs = association_rules(fpgrowth(frame, min_support=0.0213, use_colnames=True, max_len=3),
                               metric="confidence", min_threshold=0.3137)
    key = lambda a, c: (tuple(sorted(a)), tuple(sorted(c)))  # noqa: E731
    ours_map = {key(a, c): conf for a, c, conf in zip(ours.antecedents, ours.consequents, ours.confidence)}
    theirs_map = {key(a, c): conf for a, c, conf in zip(theirs.antecedents, theirs.consequents, theirs.confidence)}
    assert ours_map.keys() == theirs_map.keys() and len(ours_map) > 50
    assert all(ours_map[k] == pytest.approx(theirs_map[k]) for k in ours_map)
    lifts = dict(zip(theirs.apply(lambda r: key(r.antecedents, r.consequents), axis=1), theirs.lift))
    assert all(lift == pytest.approx(lifts[key(a, c)]) for a, c, lift in zip(ours.antecedents, ours.consequents, ours.lift))


def test_planted_bundle_comes_out_with_its_confidence():
    rng = np.random.default_rng(0)
    rows = []
    for b in range(5000):
        items = list(rng.choice([f"p{i}" for i in range(20)], size=2, replace=False))
        if "p1" in items and rng.random() < 0.8:
            items.append("BUNDLE")
        rows += [(b, i) for i in items]
    rules = mine_rules(pd.DataFrame(rows, columns=["basket_id", "item_id"]), 0.01, 0.5)
    assert _rule(rules, ["p1"], ["BUNDLE"]).confidence == pytest.approx(0.8, abs=0.03)


def test_demo_bundles_are_published_with_their_planted_confidence(demo_pipeline):
    import json

    import duckdb

    con = duckdb.connect(str(demo_pipeline["warehouse"]), read_only=True)
    for bundle in json.loads((demo_pipeline["truth"] / "bundles.json").read_text()):
        found = con.execute("SELECT confidence FROM marts.association_rules WHERE scope = 'basket' "
                            "AND antecedents = [?] AND consequents = [?]",
                            [bundle["antecedent"], bundle["consequent"]]).fetchall()
        assert found, bundle
        assert found[0][0] == pytest.approx(bundle["probability"], abs=0.06), bundle
    scopes = dict(con.execute("SELECT scope, count(*) FROM marts.association_rules GROUP BY 1").fetchall())
    assert scopes.keys() == {"basket", "patient"}
    condition_rules = con.execute("SELECT count(*) FROM marts.association_rules WHERE scope = 'patient' AND "
                                  "list_contains(antecedents, 'condition:E11')").fetchone()[0]
    assert condition_rules > 0
