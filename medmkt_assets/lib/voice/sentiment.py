"""Per-comment sentiment, offline, checked against the satisfaction score each comment comes with.

Two methods: a bilingual lexicon with negation and intensifiers (no training, works on any amount
of text) and a supervised model (TF-IDF of words and word pairs plus the lexicon score, logistic
regression). The satisfaction score (1-2 negative, 3 neutral, 4-5 positive) is the truth both are
judged by; the supervised model's labels are out-of-fold (5 folds), so no comment is labelled by a
model that saw its own score, and its figures are comparable with the lexicon's. The supervised
model labels the comments only when its out-of-fold Cohen's kappa beats the lexicon's by more than
MIN_KAPPA_GAIN; with fewer than MIN_SUPERVISED scored comments or a class under MIN_CLASS, only the lexicon is used (too little to learn from).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from itertools import pairwise
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from scipy import sparse
from scipy.stats import spearmanr
from sklearn.compose import ColumnTransformer
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import (
    accuracy_score,
    cohen_kappa_score,
    confusion_matrix,
    f1_score,
)
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import normalize
from threadpoolctl import threadpool_limits

from medmkt_assets.lib.voice.text import _CJK_CHAR, CLAUSE_BREAK, raw_tokens

LEXICON_FILE = Path(__file__).with_name("sentiment_lexicon.yaml")
CLASSES = ("negative", "neutral", "positive")
POSITIVE_AT = 0.1  # lexicon score above: positive; below -NEGATIVE_AT: negative (fixed, not tuned on the truth)
NEGATIVE_AT = 0.1
MIN_SUPERVISED = 200
MIN_CLASS = 20
MIN_KAPPA_GAIN = 0.02  # kappa a supervised model must add over the lexicon to be used
SCREEN_MARGIN = 0.005  # the screening model (`_screen`) settles on the lexicon only this far below MIN_KAPPA_GAIN
FOLDS = 5
NEGATION_WINDOW = 3  # a negator reaches the next sentiment word within this many words
NEGATED = -0.75  # "not good" is bad, but less than "bad"; "not bad" is mildly good
INTENSITY = 1.5
CONTRAST_BEFORE, CONTRAST_AFTER = 0.5, 1.5


@dataclass(frozen=True)
class Lexicon:
    positive: frozenset[str]
    negative: frozenset[str]
    negators: frozenset[str]
    intensifiers: frozenset[str]
    contrast: frozenset[str]


@lru_cache(maxsize=4)
def load_lexicon(path: str | Path = LEXICON_FILE) -> Lexicon:
    """The reviewed bilingual lexicon (sentiment_lexicon.yaml beside this file)."""
    raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))

    def words(key: str) -> frozenset[str]:
        return frozenset(str(w).lower() for lang in ("zh", "en") for w in raw.get(key, {}).get(lang, []))
    return Lexicon(words("positive"), words("negative"), words("negators"), words("intensifiers"), words("contrast"))


def _word_polarity(word: str, lex: Lexicon) -> float:
    if word in lex.positive:
        return 1.0
    if word in lex.negative:
        return -1.0
    return 0.0


def _polarity(token: str, lex: Lexicon) -> float:
    """Polarity of one token: a listed word; negator + listed word inside one jieba word (不太好, 不满意);
    else the listed 2-4 character words inside it, longest first (single characters only as whole tokens:
    好 inside 好像 is not praise)."""
    p = _word_polarity(token, lex)
    if p or not _CJK_CHAR.match(token) or len(token) < 2:
        return p
    for neg in sorted((n for n in lex.negators if _CJK_CHAR.match(n)), key=len, reverse=True):
        if token.startswith(neg) and len(token) > len(neg):
            inner = _word_polarity(token[len(neg):], lex)
            if inner:
                return NEGATED * inner
    total, i = 0.0, 0
    while i < len(token):
        for size in (4, 3, 2):
            piece = token[i:i + size]
            if len(piece) == size and _word_polarity(piece, lex):
                total += _word_polarity(piece, lex)
                i += size
                break
        else:
            i += 1
    return total


def _is_negator(token: str, lex: Lexicon) -> bool:
    return token in lex.negators or token.endswith("n't")


def token_score(tokens: Sequence[str], lex: Lexicon | None = None) -> float:
    """Lexicon score of `raw_tokens` output in [-1, 1]: (P - N) / (P + N + 1).

    Negators flip the next sentiment word within NEGATION_WINDOW words of the same clause,
    intensifiers multiply it by INTENSITY, and a contrast word ("but", 但是) halves what came before
    and weighs what follows by 1.5. The +1 keeps a single mild word from reading as certainty.
    """
    lex = load_lexicon() if lex is None else lex
    hits: list[float] = []
    negate, boost, weight = 0, 1.0, 1.0
    tokens = list(tokens)
    for i, tok in enumerate(tokens):
        if tok == CLAUSE_BREAK:
            negate, boost = 0, 1.0
            continue
        if tok in lex.contrast:
            hits = [h * CONTRAST_BEFORE for h in hits]
            negate, boost, weight = 0, 1.0, CONTRAST_AFTER
            continue
        if _is_negator(tok, lex):
            negate = NEGATION_WINDOW
            continue
        nxt = tokens[i + 1] if i + 1 < len(tokens) else ""
        if tok in lex.intensifiers and nxt and (_polarity(nxt, lex) or _is_negator(nxt, lex)):
            boost *= INTENSITY
            continue
        p = _polarity(tok, lex)
        if p:
            hits.append(p * boost * weight * (NEGATED if negate else 1.0))
            negate, boost = 0, 1.0
        elif negate:
            negate -= 1
    pos = sum(h for h in hits if h > 0)
    neg = -sum(h for h in hits if h < 0)
    return float((pos - neg) / (pos + neg + 1.0))


def lexicon_score(text: str) -> float:
    """Lexicon sentiment of one comment in [-1, 1] (see `token_score`)."""
    return token_score(raw_tokens(text))


def lexicon_label(score: float) -> str:
    return "positive" if score > POSITIVE_AT else ("negative" if score < -NEGATIVE_AT else "neutral")


def satisfaction_label(satisfaction: float) -> str | None:
    """Truth from the 1-5 score: 1-2 negative, 3 neutral, 4-5 positive; None when missing or out of range."""
    if satisfaction is None or pd.isna(satisfaction) or not 1 <= float(satisfaction) <= 5:
        return None
    s = round(float(satisfaction))
    return "negative" if s <= 2 else ("neutral" if s == 3 else "positive")


@dataclass
class SentimentResult:
    """Labels and scores per comment, the method that made them and how well it agrees with satisfaction."""

    labels: np.ndarray
    scores: np.ndarray
    method: str
    report: dict
    model: Pipeline | None = field(default=None, repr=False)


def _bigrams(tokens: list[str]) -> list[str]:
    """Words (clause breaks dropped) and adjacent pairs within a clause: 不 好 -> "不 好" keeps negation."""
    words = [t for t in tokens if t != CLAUSE_BREAK]
    pairs = [f"{a} {b}" for a, b in pairwise(tokens) if CLAUSE_BREAK not in (a, b)]
    return words + pairs


def _identity(tokens: list[str]) -> list[str]:
    return tokens


def _frame(texts: Sequence[str]) -> pd.DataFrame:
    """Words and pairs, and the lexicon score, of each text (worked out once per distinct text: comments repeat)."""
    done = {}
    for text in texts:
        if text not in done:
            tokens = raw_tokens(text)
            done[text] = (_bigrams(tokens), token_score(tokens))
    return pd.DataFrame({"grams": [done[t][0] for t in texts], "lexicon": [done[t][1] for t in texts]})


def _model(seed: int) -> Pipeline:
    features = ColumnTransformer([("tfidf", TfidfVectorizer(analyzer=_identity, min_df=2, sublinear_tf=True), "grams"),
                                  ("lexicon", "passthrough", ["lexicon"])])
    return Pipeline([("features", features),
                     ("clf", LogisticRegression(class_weight="balanced", max_iter=2000, random_state=seed))])


def _figures(truth: np.ndarray, labels: np.ndarray, scores: np.ndarray, satisfaction: np.ndarray) -> dict:
    if len(truth) == 0:  # no comment has a satisfaction score: nothing to validate against
        return {"n": 0, "accuracy": float("nan"), "macro_f1": float("nan"), "cohen_kappa": float("nan"),
                "spearman": None, "confusion_labels": list(CLASSES), "confusion": [[0] * 3 for _ in CLASSES]}
    rho = spearmanr(scores, satisfaction).statistic if len(truth) > 2 and np.ptp(scores) > 0 else float("nan")
    # the metrics on class numbers: the same figures, without sorting hundreds of thousands of strings
    true, found, classes = (pd.Categorical(truth, CLASSES).codes, pd.Categorical(labels, CLASSES).codes,
                            list(range(len(CLASSES))))
    return {"n": len(truth),
            "accuracy": float(accuracy_score(true, found)),
            "macro_f1": float(f1_score(true, found, labels=classes, average="macro", zero_division=0)),
            "cohen_kappa": float(cohen_kappa_score(true, found, labels=classes)),
            "spearman": None if np.isnan(rho) else float(rho),
            # what a marketer asks first: of the clearly pleased (4-5) and displeased (1-2), how many
            # comments read that way (a 3 can be written either way, so it is left out here)
            "polar_agreement": _polar_agreement(truth, labels),
            "confusion_labels": list(CLASSES),
            "confusion": confusion_matrix(true, found, labels=classes).tolist()}


def _polar_agreement(truth: np.ndarray, labels: np.ndarray) -> float:
    polar = truth != "neutral"
    return float((labels[polar] == truth[polar]).mean()) if polar.any() else float("nan")


def fit_sentiment(texts: Sequence[str], satisfaction: Sequence[float], seed: int = 0) -> SentimentResult:
    """Label every comment by the better of lexicon and supervised model, judged out-of-fold on satisfaction.

    The out-of-fold model is first worked out on distinct comments (`_screen`); when that leaves it clearly
    short of replacing the lexicon, the lexicon's labels are final (and the report's supervised figures are
    the screen's), else the model is fitted on every row, fold by fold, and decides as it always did."""
    texts = [t if isinstance(t, str) else "" for t in texts]
    sat = np.asarray(pd.to_numeric(pd.Series(list(satisfaction)), errors="coerce"), dtype=float)
    if len(sat) != len(texts):
        raise ValueError(f"{len(texts)} texts but {len(sat)} satisfaction scores")
    frame = _frame(texts)
    lex_scores = frame["lexicon"].to_numpy(dtype=float)
    lex_labels = np.array([lexicon_label(s) for s in lex_scores], dtype=object)
    truth_all = np.array([satisfaction_label(s) for s in sat], dtype=object)
    scored = np.array([t is not None for t in truth_all], dtype=bool)
    truth = truth_all[scored].astype(str)
    counts = {c: int((truth == c).sum()) for c in CLASSES}
    methods = {"lexicon": _figures(truth, lex_labels[scored], lex_scores[scored], sat[scored]), "supervised": None}
    report = {"class_counts": counts, "thresholds": {"positive_above": POSITIVE_AT, "negative_below": -NEGATIVE_AT},
              "methods": methods}
    if len(truth) < MIN_SUPERVISED or min(counts.values()) < MIN_CLASS:
        report["reason"] = (f"lexicon only: {len(truth)} scored comments, smallest class {min(counts.values())} "
                            f"(supervised needs >= {MIN_SUPERVISED} and >= {MIN_CLASS} per class)")
        return SentimentResult(lex_labels.astype(str), lex_scores, "lexicon", {**report, **methods["lexicon"],
                               "method": "lexicon", "labels_out_of_fold": False})
    folds = StratifiedKFold(n_splits=FOLDS, shuffle=True, random_state=seed)
    order = sorted(CLASSES)  # LogisticRegression.classes_ is sorted
    proba = _screen(np.asarray(texts, dtype=object)[scored], frame[scored], truth, folds, seed)
    every_row = proba is None
    if every_row:
        proba = cross_val_predict(_model(seed), frame[scored], truth, cv=folds, method="predict_proba")
    while True:
        sup_labels = np.array(order, dtype=object)[proba.argmax(axis=1)]
        sup_scores = proba[:, order.index("positive")] - proba[:, order.index("negative")]
        methods["supervised"] = _figures(truth, sup_labels, sup_scores, sat[scored])
        # the lexicon is transparent and needs no labels: the model must beat it by more than noise
        gain = methods["supervised"]["cohen_kappa"] - methods["lexicon"]["cohen_kappa"]
        if every_row or gain <= MIN_KAPPA_GAIN - SCREEN_MARGIN:
            break  # decided: the lexicon's labels and figures, or the model's on every row, are published
        proba, every_row = cross_val_predict(_model(seed), frame[scored], truth, cv=folds, method="predict_proba"), True
    method = "supervised" if gain > MIN_KAPPA_GAIN else "lexicon"
    report["reason"] = (f"{method}: out-of-fold Cohen's kappa against satisfaction {gain:+.3f} for the supervised "
                        f"model (it needs more than {MIN_KAPPA_GAIN:+.2f} to replace the lexicon)")
    if method == "lexicon":
        return SentimentResult(lex_labels.astype(str), lex_scores, method,
                               {**report, **methods["lexicon"], "method": method, "labels_out_of_fold": False})
    model = _model(seed).fit(frame[scored], truth)
    labels, scores = np.empty(len(texts), dtype=object), np.zeros(len(texts))
    labels[scored], scores[scored] = sup_labels, sup_scores
    if (~scored).any():  # comments without a score never enter validation: the full model labels them
        labels[~scored], scores[~scored] = _predict(model, frame[~scored])
    return SentimentResult(labels.astype(str), scores, method,
                           {**report, **methods["supervised"], "method": method, "labels_out_of_fold": True}, model)


def _screen(texts: np.ndarray, frame: pd.DataFrame, truth: np.ndarray, folds: StratifiedKFold,
            seed: int) -> np.ndarray | None:
    """Out-of-fold probabilities of `_model` on the same folds, worked out on distinct comments.

    Why: comments repeat (a survey's phrasing is narrow), and the model's features depend only on the
    text. Each fold's TF-IDF is counted over its training comments as the vectorizer counts them (document
    frequencies with repeats, min_df, smoothed idf, sublinear tf, l2), and the regression is fitted on each
    distinct (comment, label) once, weighted by how often it occurs: the same loss as on every row, so the
    same model up to the solver's rounding (the balanced class weights count sample weights). That is
    precise enough to settle a clear decision for the lexicon; `fit_sentiment` refits on every row as
    before whenever the supervised model comes near to being used, so published labels never come from here.
    """
    ids, distinct = pd.factorize(texts)
    first = np.unique(ids, return_index=True)[1]
    grams, lexicon = frame["grams"].to_numpy()[first], frame["lexicon"].to_numpy(dtype=float)[first]
    vocabulary: dict[str, int] = {}
    rows, cols = [], []
    for r, words in enumerate(grams):
        for w in words:
            rows.append(r)
            cols.append(vocabulary.setdefault(w, len(vocabulary)))
    counts = sparse.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(distinct), max(len(vocabulary), 1)))
    counts.sum_duplicates()
    present = (counts > 0).astype(np.float64).tocsc()
    order = np.array(sorted(CLASSES), dtype=object)
    label = np.searchsorted(order, truth)
    proba = np.zeros((len(texts), len(order)))
    with threadpool_limits(limits=1):  # small matrices: threads cost more than they bring
        for train, test in folds.split(np.zeros(len(texts)), truth):
            found = _screen_fold(train, test, ids, counts, present, lexicon, label, order, seed)
            if found is None:
                return None
            proba[test] = found
    return proba


def _screen_fold(train, test, ids, counts, present, lexicon, label, order, seed) -> np.ndarray | None:
    """One fold of `_screen`; None when no word occurs twice (the vectorizer would refuse)."""
    n_train = np.bincount(ids[train], minlength=counts.shape[0]).astype(np.float64)
    df = present.T @ n_train
    kept = np.flatnonzero(df >= 2)  # the vectorizer's min_df
    if not len(kept):
        return None
    tf = counts[:, kept].tocsr()
    tf.data = np.log(tf.data) + 1.0
    tf = normalize(tf @ sparse.diags(np.log((1.0 + len(train)) / (1.0 + df[kept])) + 1.0))
    features = sparse.hstack([tf, lexicon[:, None]]).tocsr()
    pairs, weight = np.unique(ids[train] * len(order) + label[train], return_counts=True)
    model = LogisticRegression(class_weight="balanced", max_iter=2000, random_state=seed)
    model.fit(features[pairs // len(order)], order[pairs % len(order)], sample_weight=weight.astype(float))
    return model.predict_proba(features)[ids[test]]


def _predict(model: Pipeline, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    proba = model.predict_proba(frame)
    classes = list(model.classes_)
    return (np.asarray(model.classes_, dtype=object)[proba.argmax(axis=1)],
            proba[:, classes.index("positive")] - proba[:, classes.index("negative")])


def classify(texts: Sequence[str], result: SentimentResult) -> tuple[np.ndarray, np.ndarray]:
    """Labels and scores of new comments by the method `result` chose."""
    frame = _frame([t if isinstance(t, str) else "" for t in texts])
    if result.method == "supervised" and result.model is not None:
        labels, scores = _predict(result.model, frame)
        return labels.astype(str), scores
    scores = frame["lexicon"].to_numpy(dtype=float)
    return np.array([lexicon_label(s) for s in scores], dtype=str), scores
