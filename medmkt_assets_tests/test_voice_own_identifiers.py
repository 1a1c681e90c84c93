"""The shortcuts that keep de-identification fast must not change what it catches.

- The engine decides which (author, text) pairs may hold one of the author's own identifiers
  (lib.voice.sql.own_identifier_ctes); every pair Python's own test (deidentify._known_rules) would
  find must be among them, and for plain text and values exactly those (but for long Latin names).
- A rule is skipped for a text holding none of the characters every match of it needs
  (deidentify.required_characters): every match found must hold one.
"""
from __future__ import annotations

import datetime as dt
import random
import re

import duckdb
import pytest

from medmkt_assets.lib.voice import deidentify as D
from medmkt_assets.lib.voice import sql as Q
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
