"""What patients talk about: NMF topics over TF-IDF of comment tokens, named from a theme lexicon.

Why NMF on TF-IDF: comments are short (a few words), where LDA's word counts are too sparse to
estimate; NMF with NNDSVD initialisation is deterministic for a given matrix and gives additive,
readable topics. Chinese and English comments share no words, so a theme raised in both languages
usually comes out as one topic per language; both get the theme's label and are told apart by
their top term.

The number of topics, when not given, is the k in 2..max_topics whose topics are all coherent: the
highest mean minus standard deviation of the NPMI coherence of their defining terms (see `select_k`). Topics are fitted on a seeded sample of at most `max_fit` comments
(the vocabulary and the factors stay sparse/small), and every comment is assigned afterwards.
"""
from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
import yaml
from scipy import sparse
from sklearn.decomposition import NMF
from sklearn.exceptions import ConvergenceWarning
from sklearn.feature_extraction.text import TfidfVectorizer

from medmkt_assets.lib.voice.text import _CJK_CHAR, tokenize

THEMES_FILE = Path(__file__).with_name("themes.yaml")
TOP_N = 10
MAX_FIT = 50_000
MIN_THEME_SCORE = 0.15  # share of a topic's top-term weight that must hit one theme's keywords
ASSIGN_BATCH = 20_000
DEFINING_SHARE = 0.1
MIN_DEFINING = 5


@dataclass
class TopicModel:
    """A fitted topic model: top terms, labels and coherence per topic, and `assign` for any text."""

    k: int
    top_terms: list[list[str]]
    term_weights: list[list[float]]
    coherence: list[float]
    labels: list[tuple[str, str]]
    selection: dict[int, float] = field(default_factory=dict)  # k -> mean - sd of NPMI, when k was chosen
    vectorizer: TfidfVectorizer | None = field(default=None, repr=False)
    nmf: NMF | None = field(default=None, repr=False)

    def assign(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Dominant topic per text (-1 when none of its words is known) and that topic's share (0-1)."""
        texts = list(texts)
        topic = np.full(len(texts), -1, dtype=np.int64)
        weight = np.zeros(len(texts), dtype=np.float64)
        if self.nmf is None:  # fitted on comments without recurring words: no topics
            return topic, weight
        for start in range(0, len(texts), ASSIGN_BATCH):  # batches keep the dense W small
            w = self.nmf.transform(self.vectorizer.transform(texts[start:start + ASSIGN_BATCH]))
            total = w.sum(axis=1)
            has = total > 0
            rows = np.arange(start, start + len(w))[has]
            topic[rows] = w[has].argmax(axis=1)
            weight[rows] = w[has].max(axis=1) / total[has]
        return topic, weight


def npmi_coherence(binary_docs: sparse.csc_matrix, term_ids: Sequence[int]) -> float:
    """Mean normalised PMI of all pairs of `term_ids` over document co-occurrence.

    NPMI is in [-1, 1]: 1 when two terms always occur together, 0 when independent, -1 when never
    together. It needs no reference corpus and tracks human judgements of topic quality (Bouma 2009;
    Röder et al. 2015); a topic with fewer than two terms scores -1.
    """
    ids = list(term_ids)
    if len(ids) < 2:
        return -1.0
    n = binary_docs.shape[0]
    sub = binary_docs[:, ids]
    co = np.asarray((sub.T @ sub).todense(), dtype=np.float64)
    df = np.diag(co).copy()
    values = []
    for i in range(len(ids)):
        for j in range(i + 1, len(ids)):
            if co[i, j] == 0:
                values.append(-1.0)
                continue
            p_ij = co[i, j] / n
            if p_ij >= 1.0:
                values.append(1.0)
                continue
            pmi = np.log(p_ij / ((df[i] / n) * (df[j] / n)))
            values.append(float(pmi / -np.log(p_ij)))
    return float(np.mean(values))


def _top(h: np.ndarray, top_n: int = TOP_N) -> list[np.ndarray]:
    """Indices of each topic's top terms, strongest first, only terms with weight > 0."""
    order = np.argsort(-h, axis=1)[:, :top_n]
    return [row[h[t, row] > 0] for t, row in enumerate(order)]


def _fit_nmf(x: sparse.csr_matrix, k: int, seed: int) -> NMF:
    """NMF with NNDSVD start; an unconverged fit after 500 iterations is still usable for topics."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return NMF(n_components=k, init="nndsvd", random_state=seed, max_iter=500, tol=1e-4).fit(x)


def _defining(h: np.ndarray, tops: list[np.ndarray]) -> list[np.ndarray]:
    """Terms coherence is judged on: top-10 terms with >= 10% of the topic's strongest weight, at least 5.

    Why: a topic of a small vocabulary has a tail of near-zero-weight words that say nothing about
    it; scoring them would punish real topics, while the floor of 5 stops a topic of one fixed
    phrase (3 words that always occur together) from looking perfect.
    """
    out = []
    for t, ids in enumerate(tops):
        keep = ids[h[t, ids] >= DEFINING_SHARE * h[t, ids[0]]] if len(ids) else ids
        out.append(keep if len(keep) >= MIN_DEFINING else ids[:MIN_DEFINING])
    return out


def select_k(x: sparse.csr_matrix, candidates: Sequence[int], seed: int = 0) -> tuple[int, dict[int, float]]:
    """The k whose topics are all coherent: highest mean minus standard deviation of the topics' NPMI.

    Why this recovers planted topics: with too few topics, two themes share one topic, whose terms
    rarely occur together (NPMI towards -1), or one theme hides under another's strong words while
    the rest stay coherent, which the spread exposes; with too many, a theme is split and the parts
    are padded with weakly related words (NPMI towards 0, uneven across topics). Plain mean NPMI
    over-splits (a few very coherent fragments lift the average) and sometimes merges two themes
    when the others are strong; mean - sd penalises both. On synthetic corpora (2-5 themes, one or
    two languages, in the tests) it finds the planted number or a little more, never fewer; a theme
    split in two keeps its name on both parts. Ties (within 0.005) go to the smaller k.
    """
    binary = (x > 0).astype(np.float64).tocsc()
    scores: dict[int, float] = {}
    for k in candidates:
        h = _fit_nmf(x, k, seed).components_
        coherence = np.array([npmi_coherence(binary, ids) for ids in _defining(h, _top(h))])
        scores[k] = float(coherence.mean() - coherence.std())
    best = max(scores.values())
    return min(k for k, s in scores.items() if s >= best - 0.005), scores


def fit_topics(texts: Sequence[str], n_topics: int | None = None, seed: int = 0, max_topics: int = 12,
               max_fit: int = MAX_FIT) -> TopicModel:
    """Topics of `texts`: NMF on TF-IDF of `tokenize`d comments, k given or chosen by `select_k`."""
    texts = list(texts)
    rng = np.random.default_rng(seed)
    sample = texts if len(texts) <= max_fit else [texts[i] for i in np.sort(rng.choice(len(texts), max_fit, replace=False))]
    # a word must recur to describe a theme; a word in most comments describes none
    min_df = 1 if len(sample) < 20 else (2 if len(sample) < 10_000 else 5)
    vectorizer = TfidfVectorizer(tokenizer=tokenize, lowercase=False, token_pattern=None, min_df=min_df,
                                 max_df=0.8 if len(sample) >= 20 else 1.0, sublinear_tf=True)
    try:
        x = vectorizer.fit_transform(sample).tocsr()
    except ValueError:  # no comment has a content word (empty vocabulary)
        x = sparse.csr_matrix((len(sample), 0))
    if x.shape[1] < 2 or x.shape[0] < 3:  # nothing to factorise: no topics, every comment -1
        return TopicModel(k=0, top_terms=[], term_weights=[], coherence=[], labels=[])
    upper = min(max_topics, x.shape[1] - 1, x.shape[0] - 1)
    selection: dict[int, float] = {}
    if n_topics is None:
        n_topics, selection = select_k(x, range(2, max(upper, 2) + 1), seed)
    nmf = _fit_nmf(x, n_topics, seed)
    vocab = vectorizer.get_feature_names_out()
    binary = (x > 0).astype(np.float64).tocsc()
    tops = _top(nmf.components_)
    top_terms = [[str(vocab[i]) for i in ids] for ids in tops]
    term_weights = [[float(nmf.components_[t, i]) for i in ids] for t, ids in enumerate(tops)]
    return TopicModel(k=n_topics, top_terms=top_terms, term_weights=term_weights,
                      coherence=[npmi_coherence(binary, ids) for ids in _defining(nmf.components_, tops)],
                      labels=label_topics(top_terms, term_weights), selection=selection,
                      vectorizer=vectorizer, nmf=nmf)


# --------------------------------------------------------------------------- labels

@dataclass(frozen=True)
class Theme:
    name: str
    label_en: str
    label_zh: str
    keywords: tuple[str, ...]


@lru_cache(maxsize=4)
def load_themes(path: str | Path = THEMES_FILE) -> tuple[Theme, ...]:
    """The reviewed bilingual theme lexicon (themes.yaml beside this file)."""
    raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))["themes"]
    return tuple(Theme(name, spec["label_en"], spec["label_zh"],
                       tuple(str(w).lower() for w in spec.get("keywords_zh", []) + spec.get("keywords_en", [])))
                 for name, spec in raw.items())


def _matches(term: str, keyword: str) -> bool:
    """A top term names a keyword: equal, CJK containment (2+ chars), or an English stem (4+ letters)."""
    if term == keyword:
        return True
    if _CJK_CHAR.match(term):
        return len(keyword) >= 2 and (keyword in term or (len(term) >= 2 and term in keyword))
    return len(keyword) >= 4 and term.startswith(keyword)


def theme_scores(top_terms: Sequence[str], weights: Sequence[float] | None = None,
                 themes: Sequence[Theme] | None = None) -> dict[str, float]:
    """Share of the topic's top-term weight that matches each theme's keywords (0-1)."""
    themes = load_themes() if themes is None else themes
    terms = [str(t).lower() for t in top_terms]
    w = np.asarray(weights if weights is not None else [1.0 / (r + 1) for r in range(len(terms))], dtype=float)
    w = w / w.sum() if w.sum() > 0 else w
    return {th.name: float(sum(wi for t, wi in zip(terms, w) if any(_matches(t, kw) for kw in th.keywords)))
            for th in themes}


def label_topic(top_terms: Sequence[str], weights: Sequence[float] | None = None,
                themes: Sequence[Theme] | None = None) -> tuple[str, str]:
    """(English, Chinese) label: the best-matching theme, or the top three terms when none matches.

    Without weights, terms count 1/rank, so the words that define the topic decide its name.
    """
    themes = load_themes() if themes is None else themes
    scores = theme_scores(top_terms, weights, themes)
    best = max(themes, key=lambda th: scores[th.name]) if themes else None
    if best is not None and scores[best.name] >= MIN_THEME_SCORE:
        return best.label_en, best.label_zh
    head = [str(t) for t in top_terms[:3]]
    return "Topic: " + ", ".join(head), "话题：" + "、".join(head)


def label_topics(top_terms: Sequence[Sequence[str]], weights: Sequence[Sequence[float]] | None = None) -> list[tuple[str, str]]:
    """`label_topic` for each topic; topics sharing a theme get their own top term appended."""
    labels = [label_topic(t, None if weights is None else weights[i]) for i, t in enumerate(top_terms)]
    out = list(labels)
    for label in set(labels):
        same = [i for i, lab in enumerate(labels) if lab == label]
        if len(same) < 2:
            continue
        used: set[str] = set()
        for i in same:
            term = next((t for t in top_terms[i] if t not in used), top_terms[i][0] if top_terms[i] else str(i))
            used.add(term)
            out[i] = (f"{label[0]} ({term})", f"{label[1]}（{term}）")
    return out
