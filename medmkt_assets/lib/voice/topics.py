"""What patients talk about: keyword clusters from a reviewed theme lexicon, and NMF topics for the rest.

Comments are short and come in two languages that share no words, and a survey's phrasing is
narrow (the same few sentences with small changes): a topic model on words alone splits one theme
into a topic per phrasing and per language, and merges small themes into large ones. So a topic is
first a *theme* a marketer already has a name for (themes.yaml: waiting time, price, delivery, ...
with keywords in both languages): each comment belongs to the theme most of its words name, and a
theme that at least `min_comments` comments belong to is a topic. What no theme names is not lost:
the remaining comments go to an NMF topic model on TF-IDF (k chosen by `select_k`, labelled by its
top three terms), so a new concern shows up as its own topic. Every topic's top terms are the real
words of its comments that set them apart (class-based TF-IDF), in both languages.

Topics are fitted on a seeded sample of at most `max_fit` comments; every comment is assigned
afterwards (`TopicModel.assign`).
"""
from __future__ import annotations

import warnings
from collections import Counter
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
    """Fitted topics: the theme topics first (`themes`), then the discovered ones (`residual`), with top
    terms, labels and coherence per topic; `assign` for any text."""

    k: int
    top_terms: list[list[str]]
    term_weights: list[list[float]]
    coherence: list[float]
    labels: list[tuple[str, str]]
    selection: dict[int, float] = field(default_factory=dict)  # k -> mean - sd of NPMI, when k was chosen
    themes: tuple[str, ...] = ()
    theme_keywords: tuple[tuple[str, ...], ...] = field(default=(), repr=False)
    residual: "_Discovered | None" = field(default=None, repr=False)

    def assign(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Topic per text (-1: no theme and none of the discovered topics' words) and its weight (0-1):
        the share of the text's theme words that name its theme, or its NMF topic's share."""
        tokens = _tokens(texts)
        topic = np.full(len(tokens), -1, dtype=np.int64)
        weight = np.zeros(len(tokens), dtype=np.float64)
        matcher = _ThemeMatcher([Theme(name, "", "", keywords) for name, keywords in zip(self.themes, self.theme_keywords)])
        primary: dict[int, tuple[int, float]] = {}  # by token list: a repeated comment shares its list
        rest = []
        for i, words in enumerate(tokens):
            found = primary.get(id(words))
            if found is None:
                found = primary[id(words)] = matcher.primary(words)
            topic[i], weight[i] = found
            if topic[i] < 0:
                rest.append(i)
        if self.residual is not None and rest:
            ids, shares = self.residual.assign_tokens([tokens[i] for i in rest])
            found = ids >= 0
            topic[np.array(rest)[found]] = ids[found] + len(self.themes)
            weight[np.array(rest)[found]] = shares[found]
        return topic, weight


def _tokens(texts: Sequence[str]) -> list[list[str]]:
    """`tokenize` of each text, one list per distinct text (shared by its repeats, which must not change it)."""
    done: dict[str, list[str]] = {}
    return [done[t] if t in done else done.setdefault(t, tokenize(t)) for t in texts]


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
    ranked = np.argsort(-h, axis=1)[:, :MIN_DEFINING]  # the floor may reach zero-weight words: a phrase is no theme
    for t, ids in enumerate(tops):
        keep = ids[h[t, ids] >= DEFINING_SHARE * h[t, ids[0]]] if len(ids) else ids
        out.append(keep if len(keep) >= MIN_DEFINING else ranked[t])
    return out


def select_k(x: sparse.csr_matrix, candidates: Sequence[int], seed: int = 0) -> tuple[int, dict[int, float]]:
    """The k whose topics are all coherent: highest mean minus standard deviation of the topics' NPMI.

    Why this recovers planted topics: with too few topics, two themes share one topic, whose terms
    rarely occur together (NPMI towards -1), or one theme hides under another's strong words while
    the rest stay coherent, which the spread exposes; with too many, a theme is split and the parts
    are padded with weakly related words (NPMI towards 0, uneven across topics). Plain mean NPMI
    over-splits (a few very coherent fragments lift the average) and sometimes merges two themes
    when the others are strong; mean - sd penalises both. On synthetic corpora (2-5 themes, one or
    two languages, in the tests) it found the planted number or a little more, in our runs never
    fewer; a theme split in two keeps its name on both parts. No tolerance band towards smaller k
    (only exact ties go to it): when k and k+1 score alike, the larger is as coherent and may show
    a theme that the smaller hides.
    """
    binary = (x > 0).astype(np.float64).tocsc()
    scores: dict[int, float] = {}
    for k in candidates:
        h = _fit_nmf(x, k, seed).components_
        coherence = np.array([npmi_coherence(binary, ids) for ids in _defining(h, _top(h))])
        scores[k] = float(coherence.mean() - coherence.std())
    return max(scores, key=lambda k: (scores[k], -k)), scores


def fit_topics(texts: Sequence[str], n_topics: int | None = None, seed: int = 0, max_topics: int = 12,
               max_fit: int = MAX_FIT, min_comments: int | None = None) -> TopicModel:
    """Theme topics (each theme at least `min_comments` comments belong to; default: 11, or 1 % of
    the comments when that is more) and NMF topics over the comments no such theme holds (k given by
    `n_topics`, else chosen by `select_k` up to `max_topics`)."""
    texts = list(texts)
    rng = np.random.default_rng(seed)
    sample = texts if len(texts) <= max_fit else [texts[i] for i in np.sort(rng.choice(len(texts), max_fit, replace=False))]
    tokens = _tokens(sample)
    themes = load_themes()
    matcher = _ThemeMatcher(themes)
    primary = np.array([matcher.primary(t)[0] for t in tokens], dtype=np.int64)
    floor = min_comments if min_comments is not None else max(SMALL_CELL_FLOOR, int(0.01 * len(sample)))
    counts = {th.name: int((primary == i).sum()) for i, th in enumerate(themes)}
    kept = [i for i, th in enumerate(themes) if counts[th.name] >= floor]
    kept.sort(key=lambda i: -counts[themes[i].name])
    rest = [i for i, p in enumerate(primary) if p < 0 or p not in kept]
    discovered = _discover([tokens[i] for i in rest], n_topics, seed, max_topics, floor)
    groups = [[j for j, p in enumerate(primary) if p == i] for i in kept]
    if discovered is not None:
        ids, _ = discovered.assign_tokens([tokens[i] for i in rest])
        groups += [[rest[j] for j in np.flatnonzero(ids == t)] for t in range(discovered.nmf.n_components)]
    top_terms, term_weights = _characteristic_terms(tokens, groups)
    labels = [(themes[i].label_en, themes[i].label_zh) for i in kept]
    labels += label_topics(top_terms[len(kept):], term_weights[len(kept):], match_themes=False)
    binary, vocab = _binary(tokens)
    coherence = [npmi_coherence(binary, [vocab[w] for w in terms if w in vocab]) for terms in top_terms]
    return TopicModel(k=len(groups), top_terms=top_terms, term_weights=term_weights, coherence=coherence,
                      labels=labels, selection=discovered.selection if discovered else {},
                      themes=tuple(themes[i].name for i in kept), theme_keywords=tuple(themes[i].keywords for i in kept),
                      residual=discovered)


SMALL_CELL_FLOOR = 11   # a topic fewer people write about cannot be shown anyway


class _ThemeMatcher:
    """Which themes each word names, remembered per word (a corpus has far fewer words than tokens)."""

    def __init__(self, themes: Sequence[Theme]):
        self.themes = tuple(themes)
        self._named: dict[str, tuple[int, ...]] = {}

    def named(self, token: str) -> tuple[int, ...]:
        found = self._named.get(token)
        if found is None:
            word = token.lower()
            found = self._named[token] = tuple(i for i, th in enumerate(self.themes)
                                               if any(_matches(word, kw) for kw in th.keywords))
        return found

    def primary(self, tokens: Sequence[str]) -> tuple[int, float]:
        """The theme most of the comment's words name (ties: the one named first) and its share of the
        theme words; (-1, 0) when no word names a theme."""
        hits: dict[int, int] = {}
        for token in tokens:
            for i in self.named(token):
                hits[i] = hits.get(i, 0) + 1  # dicts keep insertion order: the first named wins a tie
        if not hits:
            return -1, 0.0
        best = max(hits, key=hits.get)
        return best, hits[best] / sum(hits.values())


@dataclass
class _Discovered:
    """NMF topics of the comments no theme holds."""

    vectorizer: TfidfVectorizer
    nmf: NMF
    selection: dict[int, float]

    def assign_tokens(self, tokens: Sequence[Sequence[str]]) -> tuple[np.ndarray, np.ndarray]:
        topic = np.full(len(tokens), -1, dtype=np.int64)
        weight = np.zeros(len(tokens))
        for start in range(0, len(tokens), ASSIGN_BATCH):  # batches keep the dense W small
            w = self.nmf.transform(self.vectorizer.transform(list(tokens[start:start + ASSIGN_BATCH])))
            total = w.sum(axis=1)
            has = total > 0
            rows = np.arange(start, start + len(w))[has]
            topic[rows] = w[has].argmax(axis=1)
            weight[rows] = w[has].max(axis=1) / total[has]
        return topic, weight


def _identity(tokens):
    return tokens


def _discover(tokens: list[list[str]], n_topics: int | None, seed: int, max_topics: int,
              floor: int) -> _Discovered | None:
    """NMF topics of the leftover comments, when there are enough of them to hold a topic."""
    if len(tokens) < 2 * floor:
        return None
    vectorizer = TfidfVectorizer(tokenizer=_identity, preprocessor=_identity, lowercase=False, token_pattern=None,
                                 min_df=2 if len(tokens) < 10_000 else 5, max_df=0.8, sublinear_tf=True)
    try:
        x = vectorizer.fit_transform(tokens).tocsr()
    except ValueError:  # no recurring content word
        return None
    upper = min(max_topics, x.shape[1] - 1, x.shape[0] // floor)
    if upper < 1:
        return None
    selection: dict[int, float] = {}
    if n_topics is None:
        n_topics, selection = select_k(x, range(2, upper + 1), seed) if upper >= 2 else (1, {})
    return _Discovered(vectorizer, _fit_nmf(x, min(n_topics, upper), seed), selection)


def _characteristic_terms(tokens: Sequence[Sequence[str]], groups: Sequence[Sequence[int]],
                          top_n: int = TOP_N) -> tuple[list[list[str]], list[list[float]]]:
    """Each group's words that set it apart: class-based TF-IDF (a word's frequency in the group times
    log(1 + average words per group / its frequency over all groups))."""
    counts = [Counter(w for i in group for w in set(tokens[i])) for group in groups]
    overall = Counter()
    for c in counts:
        overall.update(c)
    average = np.mean([sum(c.values()) for c in counts]) if counts else 0.0
    terms, weights = [], []
    for c in counts:
        size = max(sum(c.values()), 1)
        scored = sorted(((n / size * np.log(1 + average / overall[w]), w) for w, n in c.items() if n >= 2),
                        key=lambda x: (-x[0], x[1]))[:top_n]
        terms.append([w for _, w in scored])
        weights.append([float(v) for v, _ in scored])
    return terms, weights


def _binary(tokens: Sequence[Sequence[str]]) -> tuple[sparse.csc_matrix, dict[str, int]]:
    vocab: dict[str, int] = {}
    rows, cols = [], []
    for r, words in enumerate(tokens):
        for w in set(words):
            rows.append(r)
            cols.append(vocab.setdefault(w, len(vocab)))
    matrix = sparse.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(tokens), max(len(vocab), 1)))
    return matrix.tocsc(), vocab


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
    if _CJK_CHAR.match(term):  # the keyword inside a longer word (等待 in 等待时间), not the other way
        return len(keyword) >= 2 and keyword in term
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


def label_topics(top_terms: Sequence[Sequence[str]], weights: Sequence[Sequence[float]] | None = None,
                 match_themes: bool = True) -> list[tuple[str, str]]:
    """`label_topic` for each topic (match_themes=False: always the top terms, for topics no theme
    held); topics sharing a label get their own top term appended."""
    labels = [label_topic(t, None if weights is None else weights[i], None if match_themes else ())
              for i, t in enumerate(top_terms)]
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

