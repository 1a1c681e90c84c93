"""What patients search for: each (de-identified) query's theme, as a demand signal beside orders.

A search event may carry the source's own category; when it does not, the query is matched to
the catalogue: each category is described by its name and its products' names and descriptions
(both languages, when the products have a `name_zh`), and the query goes to the category whose
description it resembles most, by character n-grams (which need no word segmentation and
forgive plurals and typos). A query like none of them is "other".
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.preprocessing import normalize

OTHER = "other"
MIN_SIMILARITY = 0.12


def category_documents(products: pd.DataFrame) -> dict[str, str]:
    """One text per category: its name and every product's name (and name_zh, description)."""
    text_columns = [c for c in ("name", "name_zh", "description") if c in products]
    frame = products.assign(_text=products[text_columns].fillna("").astype(str).agg(" ".join, axis=1))
    return {str(category): str(category).replace("_", " ") + " " + " ".join(group._text)
            for category, group in frame.groupby("category") if pd.notna(category)}


def assign_themes(queries: Sequence[str], documents: dict[str, str],
                  min_similarity: float = MIN_SIMILARITY) -> np.ndarray:
    """The best-matching category of each query (OTHER below min_similarity, or with no catalogue)."""
    themes = np.full(len(queries), OTHER, dtype=object)
    if not documents or not len(queries):
        return themes
    names = list(documents)
    vectorizer = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 3), lowercase=True, sublinear_tf=True)
    catalogue = vectorizer.fit_transform([documents[n] for n in names])
    asked = normalize(vectorizer.transform([q or "" for q in queries]))
    similarity = (asked @ normalize(catalogue).T).toarray()
    best = similarity.argmax(axis=1)
    found = similarity[np.arange(len(queries)), best] >= min_similarity
    themes[found] = np.array(names, dtype=object)[best[found]]
    return themes
