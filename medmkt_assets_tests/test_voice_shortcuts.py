"""The shortcuts that keep the patient-voice steps fast must not change what they find.

- The engine decides which (author, text) pairs may hold one of the author's own identifiers
  (lib.voice.sql.own_identifier_ctes); every pair Python's own test (deidentify._known_rules) would
  find must be among them, and for plain text and values exactly those (but for long Latin names).
- A rule is skipped for a text holding none of the characters every match of it needs
  (deidentify.required_characters): every match found must hold one.
- The two driver outcomes share one design and pseudo-inverse: the tables are exactly a fit per outcome.
- Sentiment is screened on distinct comments (the same model up to rounding); published labels come
  from the model on every row, as before.
- Topics tokenize each distinct comment once: the same topics as comment by comment.
"""
from __future__ import annotations

import datetime as dt
import random
import re

import duckdb
import numpy as np
import pandas as pd
import pytest

from medmkt_assets.lib.voice import deidentify as D
from medmkt_assets.lib.voice import drivers as Dr
from medmkt_assets.lib.voice import sentiment as S
from medmkt_assets.lib.voice import sql as Q
from medmkt_assets.lib.voice import topics as T
from medmkt_assets_tests.test_voice_deidentify import KNOWN_ANSWERS, ORDINARY

CJK_NAMES = ["王秀英", "李娜", "欧阳明月", "张伟", "郭宁英", "马超", "陈静", "丁玲", "刘洋"]
LATIN_NAMES = ["John Smith", "Mary Jane Watson", "Li A", "O’Brien Kate", "Anne-Marie Stone", "Bo  Li",
               "Jean Paul Marie Louis", "Émile Zola"]
ODD = ["\u3000", "\xa0", "１３８", "٣", "É", "\u2028", "\t", "ǅ", "Ａ"]


def _variant(value: str, rng: random.Random) -> str:
    """The value as a patient might write it: another case, spaces or dashes inside, a part of it."""
    choice = rng.randrange(6)
    if choice == 0:
        return value.upper() if rng.random() < 0.5 else value.lower()
    if choice == 1:
        return rng.choice([" ", "-", "  ", ""]).join(value)
    if choice == 2 and len(value) > 3:
        start = rng.randrange(len(value) - 2)
        return value[start:start + rng.randrange(2, len(value) - start + 1)]
    if choice == 3:
        return re.sub(r"\d", lambda m: chr(ord(m.group(0)) + 0xFEE0), value)  # full-width digits
    if choice == 4:
        return value[::-1]
    return value


def _patient(i: int, rng: random.Random) -> dict:
    name = rng.choice(CJK_NAMES + LATIN_NAMES + [rng.choice(ODD) + "王芳", "  李雷 ", "A", ""])
    phone = rng.choice([f"+86 13{rng.randrange(10**9):09d}", f"({rng.randrange(100, 999)}) 555-{rng.randrange(10**4):04d}",
                        f"0755-{rng.randrange(10**7):07d}", "12345", f"１３{rng.randrange(10**9):09d}", None])
    email = rng.choice([f"patient{i}@example.com", f"Xm.{i}@Mail.CN", None, "@"])
    address = rng.choice([f"Guangzhou黄河路{i % 500}号", f"{i % 90} Park Road", "Baker Street", "人民路", None,
                          f"幸福小区{i % 9}栋\u3000501"])
    patient_id = rng.choice([f"MRN{i:08d}", f"P{i}", "1985-03-02", None, f" ID{i}"])
    birth = dt.date(1940, 1, 1) + dt.timedelta(days=rng.randrange(30000)) if rng.random() < 0.9 else None
    return {"patient_key": f"k{i}", "full_name": name or None, "phone": phone, "email": email, "address": address,
            "patient_id": patient_id, "birth_date": birth}


def _text(patient: dict, rng: random.Random) -> str | None:
    filler = rng.choice(["等待时间太长，", "the nurse was kind. ", "降压药 ", "价格偏贵，希望改进。", "call me ",
                         "1985年生 ", "2023 review ", "", "小明 ", "smith "] + ODD)
    values = [str(v) for k, v in patient.items() if k != "patient_key" and v is not None]
    parts = [filler]
    for _ in range(rng.randrange(3)):
        if values and rng.random() < 0.6:
            parts.append(_variant(rng.choice(values), rng))
        else:
            parts.append(rng.choice(["送药很快", "Dr. Lee", "13800001111", "王秀英", "20", "  ", "-", "john"]))
    text = rng.choice(["", " "]).join(parts)
    return rng.choice([text, text, text, None, "   "])


@pytest.fixture(scope="module")
def pairs_and_flags():
    rng = random.Random(7)
    patients = [_patient(i, rng) for i in range(1500)]
    rows = [(p["patient_key"], _text(p, rng)) for p in patients for _ in range(3)]
    rows += [(None, "降压药 王秀英"), ("missing", "13800001111")]  # anonymous, and not in the patients table
    con = duckdb.connect()
    con.execute("CREATE SCHEMA restricted")
    con.execute("CREATE TABLE restricted.patients (patient_key VARCHAR, full_name VARCHAR, phone VARCHAR, "
                "email VARCHAR, address VARCHAR, patient_id VARCHAR, birth_date DATE)")
    con.executemany("INSERT INTO restricted.patients VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [[p[c] for c in ("patient_key", *Q.KNOWN_COLUMNS)] for p in patients])
    con.execute("CREATE TABLE texts (patient_key VARCHAR, text VARCHAR)")
    con.executemany("INSERT INTO texts VALUES (?, ?)", rows)
    own = set(con.execute(f"WITH pairs AS (SELECT DISTINCT patient_key, text FROM texts), "
                          f"{Q.own_identifier_ctes('pairs')} SELECT patient_key, text FROM own").fetchall())
    by_key = {p["patient_key"]: p for p in patients}
    return rows, own, by_key


def _python_finds(patient: dict | None, text: str | None) -> bool:
    """What redact_many asks: does any of the author's identifiers give a rule for this text?"""
    if patient is None or not isinstance(text, str):
        return False
    known = [str(patient[c]) for c in Q.KNOWN_COLUMNS if patient[c] is not None and str(patient[c]).strip()]
    return bool(known) and bool(D._known_rules(known, text))


def _long_latin(value: str) -> bool:
    """A value without digits, '@' or CJK whose words the engine does not count (more than three, or
    split by more than one space): it keeps every pair of its author."""
    return not re.search(r"[\d@\u4e00-\u9fff]", value) and (len(value.split(" ")) > 3 or bool(re.search(r"\s\s|[\t\n\r]", value)))


def _plain(*texts) -> bool:
    return not any(t is not None and re.search(f"[^{Q.PLAIN_CHARS}]", str(t)) for t in texts)


def test_the_engine_keeps_every_pair_python_would_find(pairs_and_flags):
    rows, own, by_key = pairs_and_flags
    found = {(k, t) for k, t in rows if _python_finds(by_key.get(k), t)}
    assert len(found) > 100  # the generator plants enough
    assert not found - own


def test_on_plain_text_the_engine_finds_exactly_what_python_finds(pairs_and_flags):
    rows, own, by_key = pairs_and_flags
    checked = 0
    for key, text in set(rows):
        patient = by_key.get(key)
        values = [patient[c] for c in Q.KNOWN_COLUMNS if patient[c] is not None] if patient else []
        if _plain(text, *values) and not any(str(v) != str(v).strip() or _long_latin(str(v)) for v in values):
            checked += 1
            assert ((key, text) in own) == _python_finds(patient, text), (key, text)
    assert checked > 1000


def test_plain_characters_mean_the_same_to_python_and_duckdb():
    """Case, white space and digits of every plain character as _might_contain reads them, and DuckDB's lower."""
    plain = [chr(c) for c in range(0x110000) if re.fullmatch(f"[{Q.PLAIN_CHARS}]", chr(c))]
    lowered = duckdb.connect().execute("SELECT list_transform(?, lambda c: lower(c))", [plain]).fetchall()[0][0]
    for c, low in zip(plain, lowered):
        ascii_letter = "A" <= c <= "Z" or "a" <= c <= "z"
        assert c.lower() == low == (c.lower() if ascii_letter else c)
        assert c.isspace() == (c in " \t\n\r") and bool(re.match(r"\s", c)) == (c in " \t\n\r")
        assert c.isdigit() == bool(re.match(r"\d", c)) == ("0" <= c <= "9")


SAMPLES = [t for t, _, _ in KNOWN_ANSWERS] + ORDINARY + [
    "Dr smith at 12 Baker Street, PO Box 42, SW1A 1AA, flat 3", "born in 1985, 03/2024, 3/2/85",
    "微信号 wx_abc123 qq 123456789", "TEL: (020) 1234-5678, mobile 415.555.0100", "AB-123456 ZH20231234",
    "就诊卡号：A123456，病历号 12345", "一九八五年生，三月二日", "感谢王大夫，找的是张医生", "my name is Mary Watson"]


@pytest.mark.parametrize("index", range(len(D._RULES)))
def test_every_match_holds_a_character_the_rule_needs(index):
    _, pattern, _ = D._RULES[index]
    needs = D._NEEDS[index]
    for text in SAMPLES:
        for m in pattern.finditer(text):
            assert needs is None or needs.search(m.group(0)), (pattern.pattern, m.group(0))


@pytest.mark.parametrize(("pattern", "needed", "not_needed"), [
    (r"[xyz]@[ab]", "@", "xyzab"),
    (r"(?:x|yz)\d", "xy", "z0"),
    (r"(?i:ab)", "aA", "bBc"),
    (r"q?r+", "r", "q"),
    (r"(?=\d)[a-z]{2}", "a", "0"),
])
def test_required_characters_known_answers(pattern, needed, not_needed):
    needs = D.required_characters(re.compile(pattern, re.ASCII))
    assert all(needs.search(c) for c in needed)
    assert not any(needs.search(c) for c in not_needed)


@pytest.mark.parametrize("pattern", [r"[^a]", r"a*", r".b?", r"(?:a|)", r"(?<=x)", r"\W"])
def test_nothing_required_when_a_match_may_hold_anything(pattern):
    assert D.required_characters(re.compile(pattern, re.ASCII)) is None


def _redact_as_before(text: str, known=()) -> D.Redacted | None:
    """redact without the shortcuts: every rule on every pass, nothing remembered."""
    if text is None or not text.strip():
        return None
    out = text.translate(D._FULLWIDTH)
    known_rules = D._known_rules(known, out)
    counts = D.Counter()
    for _ in range(D.MAX_PASSES):
        before = out
        for kind, pattern in known_rules:
            out = D._apply(pattern, kind, out, counts)
        for kind, pattern, check in D._RULES:
            out = D._apply(pattern, kind, out, counts, D._CHECKS[check] if check else None)
        if D._HAS_CJK.search(out):
            out = D._jieba_names(out, counts)
        if out == before:
            break
    return D.Redacted(out, dict(counts))


def test_redaction_is_the_same_with_and_without_the_shortcuts(pairs_and_flags):
    rows, _, by_key = pairs_and_flags
    cases = [(t, []) for t in SAMPLES + [t.upper() for t in SAMPLES]]
    cases += [(t, [str(v) for c, v in by_key[k].items() if c != "patient_key" and v is not None])
              for k, t in rows[:600] if k in by_key]
    for text, known in cases:
        fast, slow = D.redact(text, known), _redact_as_before(text, known)
        assert fast == slow and (fast is None or list(fast.counts) == list(slow.counts)), text


# ---- satisfaction drivers: one design and one pseudo-inverse for both outcomes ----------------------------

def _drivers_as_before(responses: pd.DataFrame, outcome: str) -> pd.DataFrame:
    """fit_drivers as it was: pd.get_dummies, sm.add_constant and a fit of its own per outcome."""
    import statsmodels.api as sm

    data = responses.dropna(subset=[outcome])
    levels = {f: Dr._levels(data[f], Dr.MIN_LEVEL_RESPONDENTS) for f in Dr.FACTORS if f in data}
    levels = {f: v for f, v in levels.items() if v.nunique() > 1}
    references = {f: v.value_counts().index[0] for f, v in levels.items()}
    dummies = [pd.get_dummies(v, prefix=f, prefix_sep="=", dtype=float).drop(columns=f"{f}={references[f]}")
               for f, v in levels.items()]
    design = sm.add_constant(pd.concat(dummies, axis=1), has_constant="add")
    fit = sm.OLS(data[outcome].astype(float).to_numpy(), design).fit(cov_type="HC3")
    interval = fit.conf_int(0.05)
    rows = [{"outcome": outcome, "factor": name.split("=", 1)[0], "level": name.split("=", 1)[1],
             "reference_level": references[name.split("=", 1)[0]],
             "respondents": int((levels[name.split("=", 1)[0]] == name.split("=", 1)[1]).sum()),
             "effect": float(fit.params[name]), "ci_low": float(interval.loc[name, 0]),
             "ci_high": float(interval.loc[name, 1]), "p_value": float(fit.pvalues[name]), "model": Dr.MODEL}
            for name in design.columns.drop("const")]
    table = pd.DataFrame(rows, columns=list(Dr.COLUMNS))
    return table.sort_values(["factor", "effect"], ascending=[True, False], kind="stable").reset_index(drop=True)


def _responses(n: int, seed: int, nps_missing: bool) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({
        "segment": rng.choice(["high value · 30-39", "low value", "new", "rare"], n, p=[0.4, 0.35, 0.24, 0.01]),
        "channel": rng.choice(["app", "clinic", "online", None], n),
        "category": rng.choice(["vaccination", "checkup", "wellbeing", "dental"], n),
        "facility": rng.choice([f"FAC{i:03d}" for i in range(12)], n),
        "campaign": rng.choice(["C1", "C2", None], n, p=[0.1, 0.05, 0.85]),
    })
    frame["satisfaction"] = np.clip(np.round(3 + (frame.channel == "app") - (frame.category == "dental")
                                             + rng.normal(0, 1, n)), 1, 5)
    frame["nps"] = np.clip(np.round(7 + 2 * (frame.segment == "new") + rng.normal(0, 2, n)), 0, 10)
    if nps_missing:
        frame.loc[rng.random(n) < 0.2, "nps"] = np.nan
    return frame


@pytest.mark.parametrize("nps_missing", [False, True])
def test_drivers_are_exactly_what_a_fit_per_outcome_gives(nps_missing):
    responses = _responses(3000, 5, nps_missing)
    expected = pd.concat([_drivers_as_before(responses, o) for o in Dr.OUTCOMES], ignore_index=True)
    pd.testing.assert_frame_equal(Dr.fit_all_drivers(responses), expected, check_exact=True)


# ---- sentiment: the screening model, and the figures on class numbers -------------------------------------

def test_figures_on_class_numbers_are_the_figures_on_labels():
    from sklearn.metrics import accuracy_score, cohen_kappa_score, confusion_matrix, f1_score

    rng = np.random.default_rng(2)
    truth, labels = (rng.choice(S.CLASSES, 500, p=[0.1, 0.3, 0.6]).astype(object) for _ in range(2))
    got = S._figures(truth, labels, rng.random(500), rng.integers(1, 6, 500))
    classes = list(S.CLASSES)
    assert got["accuracy"] == accuracy_score(truth, labels)
    assert got["macro_f1"] == f1_score(truth, labels, labels=classes, average="macro", zero_division=0)
    assert got["cohen_kappa"] == cohen_kappa_score(truth, labels, labels=classes)
    assert got["confusion"] == confusion_matrix(truth, labels, labels=classes).tolist()


def _comments(n: int, seed: int, signal: float) -> tuple[list[str], list[int]]:
    """Few distinct phrasings, repeated (as survey comments are); `signal`: how often the words match the score."""
    rng = np.random.default_rng(seed)
    words = {1: ["太差了", "很失望", "态度恶劣"], 3: ["一般般", "还行吧", "普通"], 5: ["非常满意", "很耐心", "太棒了"]}
    texts, scores = [], []
    for _ in range(n):
        score = int(rng.choice([1, 3, 5], p=[0.2, 0.3, 0.5]))
        said = score if rng.random() < signal else int(rng.choice([1, 3, 5]))
        texts.append(str(rng.choice(words[said])) + str(rng.choice(["，排队", "，取药", ""])))
        scores.append(score)
    return texts, scores


def test_the_screening_model_is_the_model_on_every_row_up_to_rounding():
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    texts, scores = _comments(1500, 4, 0.7)
    truth = np.array([S.satisfaction_label(s) for s in scores], dtype=object).astype(str)
    frame = S._frame(texts)
    folds = StratifiedKFold(n_splits=S.FOLDS, shuffle=True, random_state=3)
    exact = cross_val_predict(S._model(3), frame, truth, cv=folds, method="predict_proba")
    screened = S._screen(np.asarray(texts, dtype=object), frame, truth, folds, 3)
    assert np.allclose(screened, exact, atol=1e-4)


@pytest.mark.parametrize("signal", [0.97, 0.0])
def test_sentiment_labels_are_those_of_the_model_on_every_row(signal):
    """Whichever method wins, what is published is what fitting every row gives (the screen only decides)."""
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    texts, scores = _comments(1200, 6, signal)
    result = S.fit_sentiment(texts, scores, seed=1)
    frame = S._frame(texts)
    truth = np.array([S.satisfaction_label(s) for s in scores], dtype=object).astype(str)
    folds = StratifiedKFold(n_splits=S.FOLDS, shuffle=True, random_state=1)
    proba = cross_val_predict(S._model(1), frame, truth, cv=folds, method="predict_proba")
    order = sorted(S.CLASSES)
    if signal:
        assert result.method == "supervised"
        assert np.array_equal(result.scores, proba[:, order.index("positive")] - proba[:, order.index("negative")])
        assert list(result.labels) == list(np.array(order)[proba.argmax(axis=1)])
    else:
        assert result.method == "lexicon"
        assert list(result.labels) == [S.lexicon_label(S.lexicon_score(t)) for t in texts]


# ---- topics: one token list per distinct comment --------------------------------------------------------------

def _assign_as_before(model: T.TopicModel, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """TopicModel.assign as it was: each comment tokenized and matched on its own."""
    from medmkt_assets.lib.voice.text import tokenize

    tokens = [tokenize(t) for t in texts]
    topic, weight = np.full(len(tokens), -1, dtype=np.int64), np.zeros(len(tokens))
    matcher = T._ThemeMatcher([T.Theme(n, "", "", k) for n, k in zip(model.themes, model.theme_keywords)])
    rest = []
    for i, words in enumerate(tokens):
        topic[i], weight[i] = matcher.primary(words)
        if topic[i] < 0:
            rest.append(i)
    if model.residual is not None and rest:
        ids, shares = model.residual.assign_tokens([tokens[i] for i in rest])
        found = ids >= 0
        topic[np.array(rest)[found]] = ids[found] + len(model.themes)
        weight[np.array(rest)[found]] = shares[found]
    return topic, weight


def test_topics_of_repeated_comments_are_those_of_each_comment_alone():
    from medmkt_assets.lib.voice.text import tokenize

    texts, _ = _comments(800, 8, 0.8)
    texts += ["医保报销很麻烦", "网上预约很难", "预约挂号抢不到号", "停车位太少了", "停车场收费贵"] * 30
    model = T.fit_topics(texts, seed=2, min_comments=20)
    assert model.residual is not None  # the comments no theme holds go through the NMF topics too
    topic, weight = model.assign(texts)
    before = _assign_as_before(model, texts)
    assert np.array_equal(topic, before[0]) and np.array_equal(weight, before[1])
    assert T._tokens(texts) == [tokenize(t) for t in texts]
